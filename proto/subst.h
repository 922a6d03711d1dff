#ifndef FMQ_SUBST_H
#define FMQ_SUBST_H

#include <stddef.h>

/* "%X" placeholders: ACL patterns ("%u" user, "%c" client id) and the
 * broker client id ("%h" host, "%p" process id, "%%"). Mapping templates
 * name JSON fields ("{sessionId}") and decide by the field's type, so they
 * have their own filler (template.h). Pure code; any thread. */

struct fmq_subst_var {
  char letter;        /* "%" letter */
  const char *value;  /* NULL: this placeholder has no value */
};

/* Judges a value a pattern uses (non-NULL); returns 0 to accept it. */
typedef int (*fmq_subst_check_fn)(const char *value);

/* pattern with each "%X" whose X is the letter of one of vars[0..n)
 * replaced by its value, as a new string of *len bytes that the caller
 * frees. A '%' before any other character is copied as it is. Returns NULL
 * with *nomem 0 when a value the pattern uses is NULL or refused by check
 * (check may be NULL), with *nomem 1 when out of memory. */
char *fmq_subst(const char *pattern, const struct fmq_subst_var *vars, size_t n,
                fmq_subst_check_fn check, size_t *len, int *nomem);

#endif
