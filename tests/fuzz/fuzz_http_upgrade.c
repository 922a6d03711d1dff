/* Feeds the input to the request parser whole and in random pieces; both must
 * agree on the result, the bytes consumed and the parsed request. A complete
 * request is then judged and its response rendered. */
#include "error.h"
#include "http_upgrade.h"
#include "ws_handshake.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a of the input: the split pattern and the head limit follow from the
 * bytes, so every input replays the same way and the corpus stays plain HTTP. */
static uint32_t fuzz_hash(const uint8_t *data, size_t size) {
  uint32_t h = 2166136261u;

  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 16777619u;
  return h;
}

static uint32_t fuzz_xorshift(uint32_t x) {
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

/* Feeds data in chunks of 1..64 bytes drawn from seed, or whole when seed is 0. */
static int fuzz_feed(struct fmq_http_request *r, const uint8_t *data, size_t size, uint32_t seed,
                     size_t *consumed) {
  size_t off = 0;
  int rc = FMQ_ENEEDMORE;

  while (rc == FMQ_ENEEDMORE && off < size) {
    size_t n = size - off, c;

    if (seed != 0) {
      seed = fuzz_xorshift(seed);
      if (n > 1 + seed % 64)
        n = 1 + seed % 64;
    }
    rc = fmq_http_request_feed(r, data + off, n, &c);
    if (c > n || (rc == FMQ_ENEEDMORE && c != n))
      abort();
    off += c;
  }
  *consumed = off;
  return rc;
}

static int fuzz_same_span(const struct fmq_http_request *a, uint32_t a_off, uint32_t a_len,
                          const struct fmq_http_request *b, uint32_t b_off, uint32_t b_len) {
  return a_len == b_len && (a_len == 0 || memcmp(a->buf + a_off, b->buf + b_off, a_len) == 0);
}

static int fuzz_same_request(const struct fmq_http_request *a, const struct fmq_http_request *b) {
  if (a->head_bytes != b->head_bytes || a->path_len != b->path_len ||
      a->nfields != b->nfields || a->method != b->method ||
      !fuzz_same_span(a, a->target_off, a->target_len, b, b->target_off, b->target_len))
    return 0;
  for (unsigned i = 0; i < a->nfields; i++) {
    const struct fmq_http_field *fa = &a->fields[i], *fb = &b->fields[i];

    if (!fuzz_same_span(a, fa->name_off, fa->name_len, b, fb->name_off, fb->name_len) ||
        !fuzz_same_span(a, fa->value_off, fa->value_len, b, fb->value_off, fb->value_len))
      return 0;
  }
  return 1;
}

/* Walks every topic= as the gateway does, with the buffer size it uses:
 * never FMQ_ESPACE, a decoded value never longer than the target, and the
 * walk always ends. */
static void fuzz_query(const struct fmq_http_request *r) {
  char *out = malloc(r->target_len + 1);
  size_t pos = 0, len, steps = 0;
  int rc;

  if (out == NULL)
    return;
  while ((rc = fmq_http_query_next(r, "topic", &pos, out, r->target_len + 1, &len)) != 0) {
    if (rc == FMQ_ESPACE || (rc == 1 && len > r->target_len) || ++steps > r->target_len + 1)
      abort();
    if (rc != 1)
      break;
  }
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const paths[] = {"/mqtt", "/ws"};
  uint32_t hash = fuzz_hash(data, size);
  size_t max_header_size = 64 + hash % 4096;
  struct fmq_http_request whole, split;
  size_t whole_consumed, split_consumed;
  int rc;

  fmq_http_request_init(&whole, max_header_size);
  fmq_http_request_init(&split, max_header_size);
  rc = fuzz_feed(&whole, data, size, 0, &whole_consumed);
  if (fuzz_feed(&split, data, size, hash | 1, &split_consumed) != rc)
    abort();
  if (rc == 0 || rc == FMQ_ENEEDMORE) {
    if (split_consumed != whole_consumed || whole.head_bytes > max_header_size ||
        whole.cap > max_header_size)
      abort();
  }
  if (rc == 0) {
    struct fmq_handshake hs;
    char out[512];

    if (!fuzz_same_request(&whole, &split))
      abort();
    fmq_handshake_check(&whole, paths, sizeof(paths) / sizeof(paths[0]), &hs);
    if (fmq_handshake_render(&hs, out, sizeof(out)) <= 0)
      abort();
    fuzz_query(&whole);
  }
  fmq_http_request_close(&whole);
  fmq_http_request_close(&split);
  return 0;
}
