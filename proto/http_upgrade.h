#ifndef FMQ_HTTP_UPGRADE_H
#define FMQ_HTTP_UPGRADE_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

/* An HTTP/1.x request head parsed with llhttp into a bounded struct: method,
 * target (path and query), every header (so more than the upgrade can be
 * routed later). Feed bytes as they arrive; the parser stops at the end of the
 * request, and the bytes after it (a client may send its first frames with
 * the upgrade) are left to the caller. */

#define FMQ_HTTP_MAX_HEADERS 64

struct fmq_http_field {
  uint32_t name_off, name_len;   /* into fmq_http_request.buf */
  uint32_t value_off, value_len;
};

struct fmq_http_request {
  llhttp_t parser;
  char *buf;                     /* owned arena: target, header names and values */
  uint32_t len, cap;
  uint32_t max_header_size;      /* bytes of request head accepted (431 beyond) */
  uint32_t head_bytes;           /* bytes of the head fed so far */
  uint32_t target_off, target_len;
  uint32_t path_len;             /* target up to '?' */
  struct fmq_http_field fields[FMQ_HTTP_MAX_HEADERS];
  unsigned nfields;
  uint8_t head_complete;         /* the blank line ending the head was parsed */
  uint8_t complete;
  uint8_t method;                /* llhttp_method_t */
  uint8_t http_major, http_minor;
  int error;                     /* sticky: 0, FMQ_EHTTP or FMQ_EHEADERS */
};

/* Initialises r. Nothing is allocated until bytes arrive. */
void fmq_http_request_init(struct fmq_http_request *r, size_t max_header_size);
/* Frees the arena. */
void fmq_http_request_close(struct fmq_http_request *r);

/* Feeds buf[0..len). Returns:
 *   0              the request is complete; *consumed bytes belonged to it and
 *                  buf[*consumed..len) belongs to whatever follows
 *   FMQ_ENEEDMORE  all bytes consumed, the request is not complete yet
 *   FMQ_EHTTP      malformed (answer 400)
 *   FMQ_EHEADERS   head larger than max_header_size or more than
 *                  FMQ_HTTP_MAX_HEADERS fields (answer 431)
 *   FMQ_ENOMEM     the arena could not grow
 * Errors are sticky. A request with a body is complete after its body. */
int fmq_http_request_feed(struct fmq_http_request *r, const uint8_t *buf, size_t len,
                          size_t *consumed);

/* Case-insensitive header lookup. Starting at *index (0 for the first), finds
 * the next field with that name; returns its value (not NUL-terminated, OWS
 * trimmed) and sets *len and *index past it, or returns NULL. */
const char *fmq_http_field_next(const struct fmq_http_request *r, const char *name,
                                unsigned *index, size_t *len);
/* The first field with that name, or NULL. */
const char *fmq_http_field(const struct fmq_http_request *r, const char *name, size_t *len);

/* 1 when some comma-separated element of some field `name` equals token
 * (case-insensitive), e.g. Connection: keep-alive, Upgrade. */
int fmq_http_field_has_token(const struct fmq_http_request *r, const char *name,
                             const char *token);

/* Iterates the comma-separated elements of a field value [*cur, end): returns
 * the next non-empty element (OWS trimmed), sets *len and advances *cur past
 * it, or returns NULL at the end. */
const char *fmq_http_list_next(const char **cur, const char *end, size_t *len);

/* Finds the next query parameter called name in the request target,
 * starting at *pos (0 for the first), and moves *pos past it, also when it
 * fails. Names are compared literally: exact, case-sensitive, not
 * percent-decoded. The value ("" for "name=" and for a bare "name") is
 * percent-decoded into out and NUL-terminated; *out_len is its length, any
 * decoded NUL (%00) included. Only %XX is decoded and '+' stays '+':
 * browsers build these URLs with encodeURIComponent, which sends a space
 * as %20 and '+' as %2B, and reading '+' as a space (form encoding) would
 * turn the MQTT wildcard into a space. A raw '#' starts a fragment, which
 * a request target never holds; a value containing one is refused, so that
 * an unencoded "topic=a/#" is not taken for "a/". Returns 1 when found, 0
 * when there are no more, FMQ_EHTTP for a bad %-escape or a raw '#'
 * (answer 400), FMQ_ESPACE when out is too small: an out of target_len + 1
 * bytes never is. */
int fmq_http_query_next(const struct fmq_http_request *r, const char *name, size_t *pos, char *out,
                        size_t cap, size_t *out_len);

static inline const char *fmq_http_path(const struct fmq_http_request *r, size_t *len) {
  *len = r->path_len;
  return r->buf + r->target_off;
}

#endif
