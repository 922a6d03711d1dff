#ifndef FMQ_ACL_H
#define FMQ_ACL_H

#include <stddef.h>

/* Access control by topic patterns (protocol-v1 section 8). A pattern is an
 * MQTT filter in which "%u" stands for the authenticated user and "%c" for
 * the client id; any other '%' is literal. Pure code; any thread. */

/* 1 when pattern covers filter: every topic that filter can match, pattern
 * matches too (with the '$' rule: a pattern whose first level is '+' or '#'
 * matches no topic starting with '$'). Both are valid filters,
 * NUL-terminated. "devices/alice/#" covers "devices/alice",
 * "devices/alice/x" and "devices/alice/+/temp"; "sensors/+" does not cover
 * "sensors/#"; only "#" covers "#", and "+/#", which matches the same
 * topics. A topic name is a filter without wildcards, so this also decides
 * publishing. */
int fmq_acl_covers(const char *pattern, const char *filter);

/* Checks a configured pattern: with "%u" and "%c" read as one plain level
 * name each, a valid MQTT filter and not a shared one. Returns 0 or -1 with
 * msg (the reason, no prefix). */
int fmq_acl_check_pattern(const char *pattern, char *msg, size_t msglen);

/* Substitutes user for "%u" and client_id for "%c" in pattern. Returns a
 * new string (the caller frees it) that is a valid filter; NULL with
 * *nomem 0 when the pattern cannot apply to this identity (a needed value
 * is NULL, empty, holds '/', '+', '#' or NUL, or the result is not a valid
 * filter or is a shared one): such a pattern grants nothing. NULL with
 * *nomem 1: out of memory. */
char *fmq_acl_expand(const char *pattern, const char *user, const char *client_id, int *nomem);

/* One identity's rights: the patterns already expanded. */
struct fmq_acl_list {
  char **patterns;            /* owned */
  size_t n;
  int any;                    /* everything is allowed, patterns unused */
};

struct fmq_acl {
  struct fmq_acl_list subscribe, publish;
};

/* Builds one list from patterns (borrowed, n of them) for user and
 * client_id (may be NULL): any is copied, patterns that cannot apply are
 * left out. Returns 0 or FMQ_ENOMEM (l then holds nothing). */
int fmq_acl_list_init(struct fmq_acl_list *l, const char *const *patterns, size_t n, int any,
                      const char *user, const char *client_id);
void fmq_acl_list_close(struct fmq_acl_list *l);
void fmq_acl_close(struct fmq_acl *acl);

/* 1 when some pattern of l covers filter (a valid filter or topic name). */
int fmq_acl_allows(const struct fmq_acl_list *l, const char *filter);

#endif
