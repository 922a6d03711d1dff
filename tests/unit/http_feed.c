#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "http_feed.h"

#include <string.h>

/* Feeds a first chunk of `first` bytes, then chunks of `step`, until the
 * request completes, fails, or the bytes run out. */
static int feed_chunks(struct fmq_http_request *r, const uint8_t *req, size_t len,
                       size_t first, size_t step, size_t *consumed) {
  size_t off = 0, n = first, c;
  int rc = FMQ_ENEEDMORE;

  while (rc == FMQ_ENEEDMORE && off < len) {
    if (n > len - off)
      n = len - off;
    rc = fmq_http_request_feed(r, req + off, n, &c);
    if (rc == FMQ_ENEEDMORE)
      assert_int_equal(c, n);
    else if (rc == 0)
      assert_true(c <= n);
    else
      assert_int_equal(c, 0);
    off += c;
    n = step;
  }

  /* Sticky: nothing more is taken once the request is done or failed. */
  if (rc != FMQ_ENEEDMORE) {
    assert_int_equal(fmq_http_request_feed(r, (const uint8_t *)"G", 1, &c), rc);
    assert_int_equal(c, 0);
  }
  *consumed = rc == 0 || rc == FMQ_ENEEDMORE ? off : 0;
  return rc;
}

static void assert_same_span(const struct fmq_http_request *a, uint32_t a_off,
                             const struct fmq_http_request *b, uint32_t b_off, uint32_t len) {
  if (len > 0)
    assert_memory_equal(a->buf + a_off, b->buf + b_off, len);
}

static void assert_same_request(const struct fmq_http_request *a,
                                const struct fmq_http_request *b) {
  assert_int_equal(a->complete, b->complete);
  assert_int_equal(a->error, b->error);
  if (!a->complete)
    return;
  assert_int_equal(a->method, b->method);
  assert_int_equal(a->http_major, b->http_major);
  assert_int_equal(a->http_minor, b->http_minor);
  assert_int_equal(a->head_bytes, b->head_bytes);
  assert_int_equal(a->target_len, b->target_len);
  assert_int_equal(a->path_len, b->path_len);
  assert_same_span(a, a->target_off, b, b->target_off, a->target_len);
  assert_int_equal(a->nfields, b->nfields);
  for (unsigned i = 0; i < a->nfields; i++) {
    const struct fmq_http_field *fa = &a->fields[i], *fb = &b->fields[i];

    assert_int_equal(fa->name_len, fb->name_len);
    assert_same_span(a, fa->name_off, b, fb->name_off, fa->name_len);
    assert_int_equal(fa->value_len, fb->value_len);
    assert_same_span(a, fa->value_off, b, fb->value_off, fa->value_len);
  }
}

static void parse_again(const struct fmq_http_request *whole, int whole_rc, size_t whole_consumed,
                        const uint8_t *req, size_t len, size_t max_header_size, size_t first,
                        size_t step) {
  struct fmq_http_request r;
  size_t consumed;

  fmq_http_request_init(&r, max_header_size);
  assert_int_equal(feed_chunks(&r, req, len, first, step, &consumed), whole_rc);
  assert_int_equal(consumed, whole_consumed);
  assert_same_request(whole, &r);
  fmq_http_request_close(&r);
}

int fmqt_http_parse(struct fmq_http_request *r, const void *req, size_t len,
                    size_t max_header_size, size_t *consumed) {
  int rc;

  fmq_http_request_init(r, max_header_size);
  rc = feed_chunks(r, req, len, len, len, consumed);
  parse_again(r, rc, *consumed, req, len, max_header_size, 1, 1);
  for (size_t k = 1; k < len; k++)
    parse_again(r, rc, *consumed, req, len, max_header_size, k, len);
  return rc;
}
