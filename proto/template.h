#ifndef FMQ_TEMPLATE_H
#define FMQ_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

/* Topic templates of mappings (protocol-v1 section 6): text in which
 * "{name}" is replaced by the message's field `name`. '{' and '}' only
 * delimit fields. Pure code; a parsed template is immutable. */

struct fmq_template_part {
  char *text;                 /* owned, NUL-terminated: literal text or a field name */
  size_t len;
  int field;                  /* 1: a field name */
};

struct fmq_template {
  struct fmq_template_part *parts;  /* owned */
  size_t nparts;
};

/* Parses text. Field names are 1..64 characters of [A-Za-z0-9_.-]; a '{'
 * without its '}', a '}' without its '{', an empty or ill-formed name is an
 * error; so is a template without any text. Returns 0, or -1 with msg (the
 * reason, no prefix, e.g. "'{' at offset 9 is not closed"); t then holds
 * nothing. */
int fmq_template_parse(struct fmq_template *t, const char *text, char *msg, size_t msglen);
void fmq_template_close(struct fmq_template *t);

/* Fills t with each field's value placed as is ("x" when obj is NULL; used to
 * check a configured template). Returns a new NUL-terminated string (the
 * caller frees it) in *out, and 0; or:
 *   FMQ_EFIELD  a field is missing, null, not a string or number, an empty
 *               string, or holds '/', '+', '#' or NUL (the formatted number
 *               included, e.g. 1e+20): msg says which field and why, e.g.
 *               "field \"sessionId\" is missing"
 *   FMQ_ENOMEM
 * A string is used as is (JSON strings are valid UTF-8); an integer in
 * decimal; a real in the shortest form that reads back the same ("%.17g"
 * at most). */
int fmq_template_fill(const struct fmq_template *t, const json_t *obj, char **out, char *msg,
                      size_t msglen);

#endif
