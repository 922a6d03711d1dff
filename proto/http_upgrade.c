#include "http_upgrade.h"

#include "container.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FMQ_HTTP_ARENA_MIN 512

static struct fmq_http_request *http_request_of(llhttp_t *p) {
  return fmq_container_of(p, struct fmq_http_request, parser);
}

static int http_is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* Fails the callback that llhttp is running; feed reports r->error. */
static int http_fail(struct fmq_http_request *r, int err) {
  r->error = err;
  return HPE_USER;
}

/* Grows the arena to hold `need` bytes: doubling, but never past
 * max_header_size unless need itself is. */
static int http_arena_reserve(struct fmq_http_request *r, size_t need) {
  size_t cap = r->cap ? 2 * (size_t)r->cap : FMQ_HTTP_ARENA_MIN;
  char *buf;

  if (need <= r->cap)
    return 0;
  if (cap > r->max_header_size)
    cap = r->max_header_size;
  if (cap < need)
    cap = need;
  buf = realloc(r->buf, cap);
  if (buf == NULL)
    return FMQ_ENOMEM;
  r->buf = buf;
  r->cap = (uint32_t)cap;
  return 0;
}

/* Every byte appended is a byte of the head, and feed never lets more than
 * max_header_size of those through, so the arena stays within it. llhttp
 * reports empty spans too (the empty target of "CONNECT \r"); the arena
 * exists before the first callback, so they need no case of their own. */
static int http_append(struct fmq_http_request *r, const char *at, size_t n) {
  if (http_arena_reserve(r, (size_t)r->len + n) != 0)
    return http_fail(r, FMQ_ENOMEM);
  memcpy(r->buf + r->len, at, n);
  r->len += (uint32_t)n;
  return 0;
}

static int http_on_url(llhttp_t *p, const char *at, size_t n) {
  struct fmq_http_request *r = http_request_of(p);

  r->target_len += (uint32_t)n;
  return http_append(r, at, n);
}

static int http_on_url_complete(llhttp_t *p) {
  struct fmq_http_request *r = http_request_of(p);
  const char *target = r->buf + r->target_off;
  const char *q = memchr(target, '?', r->target_len);

  r->path_len = q ? (uint32_t)(q - target) : r->target_len;
  return 0;
}

/* fields[nfields] is the field being parsed; its value completes it. One
 * field too many is refused when its name is complete, not when a piece of
 * it arrives, so that a malformed name fails the same however it is split.
 * The trailers of a chunked body come through the same callbacks after the
 * head; they are not part of it and are dropped. */
static int http_on_header_field(llhttp_t *p, const char *at, size_t n) {
  struct fmq_http_request *r = http_request_of(p);
  struct fmq_http_field *f;

  if (r->head_complete || r->nfields == FMQ_HTTP_MAX_HEADERS)
    return 0;
  f = &r->fields[r->nfields];
  if (f->name_len == 0)
    f->name_off = r->len;
  f->name_len += (uint32_t)n;
  return http_append(r, at, n);
}

static int http_on_header_field_complete(llhttp_t *p) {
  struct fmq_http_request *r = http_request_of(p);

  if (r->head_complete)
    return 0;
  if (r->nfields == FMQ_HTTP_MAX_HEADERS)
    return http_fail(r, FMQ_EHEADERS);
  r->fields[r->nfields].value_off = r->len;
  return 0;
}

static int http_on_header_value(llhttp_t *p, const char *at, size_t n) {
  struct fmq_http_request *r = http_request_of(p);

  if (r->head_complete)
    return 0;
  r->fields[r->nfields].value_len += (uint32_t)n;
  return http_append(r, at, n);
}

static int http_on_header_value_complete(llhttp_t *p) {
  struct fmq_http_request *r = http_request_of(p);
  struct fmq_http_field *f;

  if (r->head_complete)
    return 0;
  f = &r->fields[r->nfields++];
  /* llhttp skips the leading whitespace but keeps the trailing. */
  while (f->value_len > 0 && http_is_ows(r->buf[f->value_off + f->value_len - 1]))
    f->value_len--;
  return 0;
}

/* Pauses so that feed learns where the head ended. */
static int http_on_headers_complete(llhttp_t *p) {
  struct fmq_http_request *r = http_request_of(p);

  r->head_complete = 1;
  r->method = p->method;
  r->http_major = p->http_major;
  r->http_minor = p->http_minor;
  return HPE_PAUSED;
}

/* Pauses so that pipelined bytes are not parsed as another request. */
static int http_on_message_complete(llhttp_t *p) {
  http_request_of(p)->complete = 1;
  return HPE_PAUSED;
}

static const llhttp_settings_t http_settings = {
  .on_url = http_on_url,
  .on_url_complete = http_on_url_complete,
  .on_header_field = http_on_header_field,
  .on_header_field_complete = http_on_header_field_complete,
  .on_header_value = http_on_header_value,
  .on_header_value_complete = http_on_header_value_complete,
  .on_headers_complete = http_on_headers_complete,
  .on_message_complete = http_on_message_complete,
};

void fmq_http_request_init(struct fmq_http_request *r, size_t max_header_size) {
  memset(r, 0, sizeof(*r));
  r->max_header_size = max_header_size > UINT32_MAX ? UINT32_MAX : (uint32_t)max_header_size;
  llhttp_init(&r->parser, HTTP_REQUEST, &http_settings);
}

void fmq_http_request_close(struct fmq_http_request *r) {
  free(r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
}

int fmq_http_request_feed(struct fmq_http_request *r, const uint8_t *buf, size_t len,
                          size_t *consumed) {
  const char *data = (const char *)buf;
  size_t off = 0;

  *consumed = 0;
  if (r->error)
    return r->error;
  if (r->complete)
    return 0;
  /* Offsets into the arena are taken from the first callback on, so it
   * exists before llhttp runs; an unfed request still owns nothing. */
  if (len > 0 && http_arena_reserve(r, 1) != 0) {
    r->error = FMQ_ENOMEM;
    return r->error;
  }

  for (;;) {
    size_t n = len - off;
    size_t pos;
    llhttp_errno_t rc;

    /* Parse no more of an unfinished head than the limit lets through. */
    if (!r->head_complete && n > r->max_header_size - r->head_bytes)
      n = r->max_header_size - r->head_bytes;
    rc = llhttp_execute(&r->parser, data + off, n);
    if (rc == HPE_OK) {
      if (!r->head_complete)
        r->head_bytes += (uint32_t)n;
      if (off + n < len) {
        r->error = FMQ_EHEADERS;
        return r->error;
      }
      *consumed = len;
      return FMQ_ENEEDMORE;
    }
    if (rc != HPE_PAUSED && rc != HPE_PAUSED_UPGRADE) {
      if (!r->error)
        r->error = FMQ_EHTTP;
      return r->error;
    }

    pos = (size_t)(llhttp_get_error_pos(&r->parser) - (data + off));
    off += pos;
    if (r->complete) {
      *consumed = off;
      return 0;
    }
    /* Paused at the end of the head: the rest may be a body. */
    r->head_bytes += (uint32_t)pos;
    llhttp_resume(&r->parser);
  }
}

const char *fmq_http_field_next(const struct fmq_http_request *r, const char *name,
                                unsigned *index, size_t *len) {
  size_t name_len = strlen(name);

  for (unsigned i = *index; i < r->nfields; i++) {
    const struct fmq_http_field *f = &r->fields[i];

    if (f->name_len == name_len && strncasecmp(r->buf + f->name_off, name, name_len) == 0) {
      *index = i + 1;
      *len = f->value_len;
      return r->buf + f->value_off;
    }
  }
  return NULL;
}

const char *fmq_http_field(const struct fmq_http_request *r, const char *name, size_t *len) {
  unsigned index = 0;

  return fmq_http_field_next(r, name, &index, len);
}

const char *fmq_http_list_next(const char **cur, const char *end, size_t *len) {
  while (*cur < end) {
    const char *elem = *cur;
    const char *comma = memchr(elem, ',', (size_t)(end - elem));
    const char *elem_end = comma ? comma : end;

    *cur = comma ? comma + 1 : end;
    while (elem < elem_end && http_is_ows(*elem))
      elem++;
    while (elem_end > elem && http_is_ows(elem_end[-1]))
      elem_end--;
    if (elem < elem_end) {
      *len = (size_t)(elem_end - elem);
      return elem;
    }
  }
  return NULL;
}

int fmq_http_field_has_token(const struct fmq_http_request *r, const char *name,
                             const char *token) {
  size_t token_len = strlen(token);
  unsigned index = 0;
  const char *value;
  size_t value_len;

  while ((value = fmq_http_field_next(r, name, &index, &value_len)) != NULL) {
    const char *cur = value;
    const char *elem;
    size_t elem_len;

    while ((elem = fmq_http_list_next(&cur, value + value_len, &elem_len)) != NULL) {
      if (elem_len == token_len && strncasecmp(elem, token, token_len) == 0)
        return 1;
    }
  }
  return 0;
}

static int http_hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes v[0..len) into out; see fmq_http_query_next. */
static int http_query_decode(const char *v, size_t len, char *out, size_t cap, size_t *out_len) {
  size_t n = 0;

  if (cap == 0)
    return FMQ_ESPACE;
  for (size_t i = 0; i < len; i++) {
    char c = v[i];

    if (c == '#')
      return FMQ_EHTTP;
    if (c == '%') {
      int hi = i + 2 < len ? http_hex(v[i + 1]) : -1;
      int lo = hi >= 0 ? http_hex(v[i + 2]) : -1;

      if (lo < 0)
        return FMQ_EHTTP;
      c = (char)(hi << 4 | lo);
      i += 2;
    }
    if (n == cap - 1) /* no room left for the NUL */
      return FMQ_ESPACE;
    out[n++] = c;
  }
  out[n] = '\0';
  *out_len = n;
  return 1;
}

int fmq_http_query_next(const struct fmq_http_request *r, const char *name, size_t *pos, char *out,
                        size_t cap, size_t *out_len) {
  size_t name_len = strlen(name);
  const char *query;
  size_t query_len;

  if (r->path_len >= r->target_len)
    return 0;
  query = r->buf + r->target_off + r->path_len + 1;
  query_len = r->target_len - r->path_len - 1;
  while (*pos < query_len) {
    const char *param = query + *pos;
    const char *amp = memchr(param, '&', query_len - *pos);
    size_t param_len = amp ? (size_t)(amp - param) : query_len - *pos;
    const char *eq = memchr(param, '=', param_len);
    size_t key_len = eq ? (size_t)(eq - param) : param_len;

    *pos += param_len + (amp != NULL);
    if (key_len == name_len && memcmp(param, name, name_len) == 0) {
      size_t value_off = eq ? key_len + 1 : param_len;

      return http_query_decode(param + value_off, param_len - value_off, out, cap, out_len);
    }
  }
  return 0;
}
