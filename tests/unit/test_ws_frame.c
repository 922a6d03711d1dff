#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "ws_frame.h"
#include "wsclient.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t MASK[4] = {0x37, 0xFA, 0x21, 0x3D};

/* A frame written literally (see fmqt_ws_header_encoded): plen payload
 * bytes, masked when mask is non-NULL. plen may be less than length to build
 * a header with only part of its payload. */
static size_t build(uint8_t *out, uint8_t b0, int enc, uint64_t length, const uint8_t *mask,
                    const uint8_t *payload, size_t plen) {
  size_t n = fmqt_ws_header_encoded(out, b0, enc, length, mask);
  for (size_t i = 0; i < plen; i++)
    out[n + i] = mask != NULL ? payload[i] ^ mask[i % 4] : payload[i];
  return n + plen;
}

#define MAX_FRAMES 8

struct frame_rec {
  struct fmq_frame_header h;
  uint8_t *payload;
  size_t len, cap;
  int payload_events;
  int ended;
};

struct dec_result {
  struct frame_rec frames[MAX_FRAMES];
  size_t nframes;
  int rc;
  size_t err_at; /* total bytes consumed when the error was returned */
};

static void result_free(struct dec_result *r) {
  for (size_t i = 0; i < r->nframes; i++)
    free(r->frames[i].payload);
  memset(r, 0, sizeof(*r));
}

/* Feeds one piece until it is consumed or an error; returns the error. */
static int feed_piece(struct fmq_frame_decoder *d, uint8_t *piece, size_t n, size_t *total,
                      struct dec_result *res) {
  size_t off = 0;
  for (;;) {
    struct fmq_frame_event ev;
    size_t used = 99;
    int rc = fmq_frame_decode(d, piece + off, n - off, &used, &ev);
    assert_true(used <= n - off);
    off += used;
    *total += used;
    if (rc != 0)
      return rc;
    struct frame_rec *f = res->nframes ? &res->frames[res->nframes - 1] : NULL;
    switch (ev.type) {
    case FMQ_FRAME_NONE:
      assert_int_equal(off, n);
      return 0;
    case FMQ_FRAME_HEADER:
      assert_true(f == NULL || f->ended);
      assert_true(res->nframes < MAX_FRAMES);
      f = &res->frames[res->nframes++];
      f->h = d->header;
      assert_int_equal(ev.len, 0);
      break;
    case FMQ_FRAME_PAYLOAD:
      assert_non_null(f);
      assert_false(f->ended);
      assert_true(ev.len > 0);
      /* The chunk is the bytes just consumed, unmasked where they lie. */
      assert_ptr_equal(ev.data, piece + off - used);
      assert_int_equal(ev.len, used);
      if (f->len + ev.len > f->cap) {
        f->cap = (f->len + ev.len) * 2;
        f->payload = realloc(f->payload, f->cap);
        assert_non_null(f->payload);
      }
      memcpy(f->payload + f->len, ev.data, ev.len);
      f->len += ev.len;
      f->payload_events++;
      break;
    case FMQ_FRAME_END:
      assert_non_null(f);
      assert_false(f->ended);
      assert_int_equal(used, 0);
      assert_int_equal(f->len, f->h.length);
      f->ended = 1;
      break;
    }
  }
}

/* Feeds the pieces in[cuts[i]..cuts[i+1]), each copied into its own heap
 * block so that ASan catches a decoder that keeps a pointer to an old read. */
static void run_pieces(const uint8_t *in, const size_t *cuts, size_t ncuts, uint64_t max_length,
                       int require_mask, struct dec_result *res) {
  struct fmq_frame_decoder d;
  size_t total = 0;

  memset(res, 0, sizeof(*res));
  fmq_frame_decoder_init(&d, max_length, require_mask);
  for (size_t i = 0; i + 1 < ncuts; i++) {
    size_t n = cuts[i + 1] - cuts[i];
    uint8_t *piece = malloc(n ? n : 1);
    assert_non_null(piece);
    memcpy(piece, in + cuts[i], n);
    int rc = feed_piece(&d, piece, n, &total, res);
    free(piece);
    if (rc != 0) {
      res->rc = rc;
      res->err_at = total;
      return;
    }
  }
}

static void assert_same(const struct dec_result *a, const struct dec_result *b) {
  assert_int_equal(a->rc, b->rc);
  assert_int_equal(a->err_at, b->err_at);
  assert_int_equal(a->nframes, b->nframes);
  for (size_t i = 0; i < a->nframes; i++) {
    const struct frame_rec *x = &a->frames[i], *y = &b->frames[i];
    assert_int_equal(x->h.fin, y->h.fin);
    assert_int_equal(x->h.opcode, y->h.opcode);
    assert_int_equal(x->h.masked, y->h.masked);
    assert_memory_equal(x->h.mask, y->h.mask, 4);
    assert_int_equal(x->h.length, y->h.length);
    assert_int_equal(x->len, y->len);
    if (x->len)
      assert_memory_equal(x->payload, y->payload, x->len);
    assert_int_equal(x->payload_events > 0, y->payload_events > 0);
    assert_int_equal(x->ended, y->ended);
  }
}

/* Large inputs are split at every offset near both ends and at a stride in
 * between; anything up to 4 KiB at every offset. */
static int split_here(size_t k, size_t n) {
  return n <= 4096 || k < 300 || n - k < 300 || k % 251 == 0;
}

/* Decodes in whole, one byte at a time, and split in two at every offset;
 * all must agree. Returns the result of the whole feed in *res. */
static void decode_all(const uint8_t *in, size_t n, uint64_t max_length, int require_mask,
                       struct dec_result *res) {
  struct dec_result other;
  size_t whole[2] = {0, n};

  run_pieces(in, whole, 2, max_length, require_mask, res);

  size_t *cuts = malloc((n + 1) * sizeof(*cuts));
  assert_non_null(cuts);
  for (size_t i = 0; i <= n; i++)
    cuts[i] = i;
  run_pieces(in, cuts, n + 1, max_length, require_mask, &other);
  assert_same(res, &other);
  result_free(&other);
  free(cuts);

  for (size_t k = 0; k <= n; k++) {
    if (!split_here(k, n))
      continue;
    size_t two[3] = {0, k, n};
    run_pieces(in, two, 3, max_length, require_mask, &other);
    assert_same(res, &other);
    result_free(&other);
  }
}

static void expect_error(const uint8_t *in, size_t n, uint64_t max_length, int rc, size_t err_at) {
  struct dec_result res;
  decode_all(in, n, max_length, 1, &res);
  assert_int_equal(res.rc, rc);
  assert_int_equal(res.err_at, err_at);
  result_free(&res);
}

static void expect_frame(const struct frame_rec *f, int fin, int opcode, const uint8_t *mask,
                         const void *payload, size_t len) {
  assert_int_equal(f->h.fin, fin);
  assert_int_equal(f->h.opcode, opcode);
  assert_int_equal(f->h.masked, mask != NULL);
  if (mask != NULL)
    assert_memory_equal(f->h.mask, mask, 4);
  assert_int_equal(f->h.length, len);
  assert_int_equal(f->len, len);
  if (len)
    assert_memory_equal(f->payload, payload, len);
  assert_int_equal(f->payload_events > 0, len > 0);
  assert_true(f->ended);
}

static void test_rfc_examples(void **state) {
  (void)state;
  struct dec_result res;
  static const uint8_t unmasked[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
  static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
  static const uint8_t fragments[] = {0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o'};
  static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};

  decode_all(unmasked, sizeof(unmasked), 1000, 0, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nframes, 1);
  expect_frame(&res.frames[0], 1, FMQ_WS_TEXT, NULL, "Hello", 5);
  result_free(&res);

  decode_all(masked, sizeof(masked), 1000, 1, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nframes, 1);
  expect_frame(&res.frames[0], 1, FMQ_WS_TEXT, MASK, "Hello", 5);
  result_free(&res);

  decode_all(fragments, sizeof(fragments), 1000, 0, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nframes, 2);
  expect_frame(&res.frames[0], 0, FMQ_WS_TEXT, NULL, "Hel", 3);
  expect_frame(&res.frames[1], 1, FMQ_WS_CONTINUATION, NULL, "lo", 2);
  result_free(&res);

  decode_all(pong, sizeof(pong), 1000, 1, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nframes, 1);
  expect_frame(&res.frames[0], 1, FMQ_WS_PONG, MASK, "Hello", 5);
  result_free(&res);
}

static void check_length(uint64_t len, int enc, size_t header_size) {
  uint8_t *payload = fmqt_pattern((size_t)len, (unsigned)len);
  uint8_t *in = malloc((size_t)len + FMQ_WS_HEADER_MAX);
  assert_non_null(in);
  size_t n = build(in, 0x82, enc, len, MASK, payload, (size_t)len);
  assert_int_equal(n, header_size + len);

  struct dec_result res;
  decode_all(in, n, UINT64_MAX, 1, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nframes, 1);
  expect_frame(&res.frames[0], 1, FMQ_WS_BINARY, MASK, payload, (size_t)len);
  result_free(&res);
  free(in);
  free(payload);
}

static void test_length_encodings(void **state) {
  (void)state;
  check_length(0, 7, 6);
  check_length(1, 7, 6);
  check_length(125, 7, 6);
  check_length(126, 16, 8);
  check_length(127, 16, 8);
  check_length(65535, 16, 8);
  check_length(65536, 64, 14);
  check_length(200003, 64, 14);
}

/* Lengths the sender should have encoded shorter are still accepted. */
static void test_non_minimal_lengths(void **state) {
  (void)state;
  uint8_t in[64];
  struct dec_result res;
  size_t n;

  n = build(in, 0x81, 16, 5, MASK, (const uint8_t *)"Hello", 5);
  decode_all(in, n, 1000, 1, &res);
  assert_int_equal(res.rc, 0);
  expect_frame(&res.frames[0], 1, FMQ_WS_TEXT, MASK, "Hello", 5);
  result_free(&res);

  n = build(in, 0x81, 64, 5, MASK, (const uint8_t *)"Hello", 5);
  decode_all(in, n, 1000, 1, &res);
  assert_int_equal(res.rc, 0);
  expect_frame(&res.frames[0], 1, FMQ_WS_TEXT, MASK, "Hello", 5);
  result_free(&res);

  n = build(in, 0x82, 64, 0, MASK, NULL, 0);
  decode_all(in, n, 1000, 1, &res);
  assert_int_equal(res.rc, 0);
  expect_frame(&res.frames[0], 1, FMQ_WS_BINARY, MASK, NULL, 0);
  result_free(&res);

  n = build(in, 0x89, 16, 5, MASK, (const uint8_t *)"Hello", 5);
  decode_all(in, n, 1000, 1, &res);
  assert_int_equal(res.rc, 0);
  expect_frame(&res.frames[0], 1, FMQ_WS_PING, MASK, "Hello", 5);
  result_free(&res);
}

/* A zero-length frame is HEADER then END, with no PAYLOAD between. */
static void test_zero_length_events(void **state) {
  (void)state;
  uint8_t in[16];
  size_t n = build(in, 0x89, 7, 0, MASK, NULL, 0), used;
  struct fmq_frame_decoder d;
  struct fmq_frame_event ev;

  fmq_frame_decoder_init(&d, 1000, 1);
  assert_int_equal(fmq_frame_decode(&d, in, n, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_FRAME_HEADER);
  assert_int_equal(used, n);
  assert_int_equal(d.header.length, 0);
  assert_int_equal(fmq_frame_decode(&d, in + n, 0, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_FRAME_END);
  assert_int_equal(used, 0);
  assert_int_equal(fmq_frame_decode(&d, in + n, 0, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_FRAME_NONE);
  assert_int_equal(used, 0);
}

/* One event per call: HEADER, PAYLOAD (unmasked where it lies), END, then
 * the next frame's HEADER from the rest of the same buffer. */
static void test_event_sequence_in_place(void **state) {
  (void)state;
  uint8_t in[64];
  size_t n = build(in, 0x81, 7, 5, MASK, (const uint8_t *)"Hello", 5), used;
  n += build(in + n, 0x8A, 7, 2, MASK, (const uint8_t *)"ok", 2);
  struct fmq_frame_decoder d;
  struct fmq_frame_event ev;

  fmq_frame_decoder_init(&d, 1000, 1);
  assert_int_equal(fmq_frame_decode(&d, in, n, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_FRAME_HEADER);
  assert_int_equal(used, 6);
  assert_int_equal(fmq_frame_decode(&d, in + 6, n - 6, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_FRAME_PAYLOAD);
  assert_int_equal(used, 5);
  assert_ptr_equal(ev.data, in + 6);
  assert_int_equal(ev.len, 5);
  assert_memory_equal(in + 6, "Hello", 5);
  assert_int_equal(fmq_frame_decode(&d, in + 11, n - 11, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_FRAME_END);
  assert_int_equal(used, 0);
  assert_int_equal(fmq_frame_decode(&d, in + 11, n - 11, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_FRAME_HEADER);
  assert_int_equal(d.header.opcode, FMQ_WS_PONG);
  assert_int_equal(used, 6);
}

static void test_several_frames(void **state) {
  (void)state;
  static const uint8_t mask2[4] = {0x01, 0x02, 0x03, 0x04};
  uint8_t in[512];
  uint8_t *p300 = fmqt_pattern(300, 3);
  size_t n = build(in, 0x02, 7, 3, MASK, (const uint8_t *)"abc", 3);
  n += build(in + n, 0x89, 7, 0, mask2, NULL, 0);
  n += build(in + n, 0x00, 7, 1, mask2, (const uint8_t *)"d", 1);
  n += build(in + n, 0x80, 16, 300, MASK, p300, 300);
  n += build(in + n, 0x88, 7, 2, mask2, (const uint8_t *)"\x03\xE8", 2);

  struct dec_result res;
  decode_all(in, n, 1000, 1, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nframes, 5);
  expect_frame(&res.frames[0], 0, FMQ_WS_BINARY, MASK, "abc", 3);
  expect_frame(&res.frames[1], 1, FMQ_WS_PING, mask2, NULL, 0);
  expect_frame(&res.frames[2], 0, FMQ_WS_CONTINUATION, mask2, "d", 1);
  expect_frame(&res.frames[3], 1, FMQ_WS_CONTINUATION, MASK, p300, 300);
  expect_frame(&res.frames[4], 1, FMQ_WS_CLOSE, mask2, "\x03\xE8", 2);
  result_free(&res);
  free(p300);
}

static void test_mask_required(void **state) {
  (void)state;
  uint8_t in[32];
  struct dec_result res;
  size_t n = build(in, 0x81, 7, 5, NULL, (const uint8_t *)"Hello", 5);

  expect_error(in, n, 1000, FMQ_EPROTO, 2);
  expect_error(in, 2, 1000, FMQ_EPROTO, 2);

  /* Without require_mask both forms decode. */
  decode_all(in, n, 1000, 0, &res);
  assert_int_equal(res.rc, 0);
  expect_frame(&res.frames[0], 1, FMQ_WS_TEXT, NULL, "Hello", 5);
  result_free(&res);
  n = build(in, 0x81, 7, 5, MASK, (const uint8_t *)"Hello", 5);
  decode_all(in, n, 1000, 0, &res);
  assert_int_equal(res.rc, 0);
  expect_frame(&res.frames[0], 1, FMQ_WS_TEXT, MASK, "Hello", 5);
  result_free(&res);
}

static void test_reserved_bits(void **state) {
  (void)state;
  static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x70};
  uint8_t in[32];
  for (size_t i = 0; i < sizeof(rsv); i++) {
    size_t n = build(in, (uint8_t)(0x81 | rsv[i]), 7, 2, MASK, (const uint8_t *)"hi", 2);
    expect_error(in, n, 1000, FMQ_EPROTO, 2);
    n = build(in, (uint8_t)(0x89 | rsv[i]), 7, 0, MASK, NULL, 0);
    expect_error(in, n, 1000, FMQ_EPROTO, 2);
  }
}

static void test_opcodes(void **state) {
  (void)state;
  uint8_t in[32];
  for (unsigned op = 0; op < 16; op++) {
    size_t n = build(in, (uint8_t)(0x80 | op), 7, 2, MASK, (const uint8_t *)"hi", 2);
    int known = op <= 2 || (op >= 8 && op <= 10);
    if (!known) {
      expect_error(in, n, 1000, FMQ_EPROTO, 2);
      continue;
    }
    struct dec_result res;
    decode_all(in, n, 1000, 1, &res);
    assert_int_equal(res.rc, 0);
    expect_frame(&res.frames[0], 1, (int)op, MASK, "hi", 2);
    result_free(&res);
  }
}

static void test_control_frame_rules(void **state) {
  (void)state;
  uint8_t in[300];
  uint8_t *p = fmqt_pattern(126, 9);
  for (unsigned op = 8; op <= 10; op++) {
    size_t n = build(in, (uint8_t)op, 7, 1, MASK, p, 1); /* FIN clear */
    expect_error(in, n, 1000, FMQ_EPROTO, 2);

    n = build(in, (uint8_t)(0x80 | op), 16, 126, MASK, p, 126);
    expect_error(in, n, 1000, FMQ_EPROTO, 4);
    n = build(in, (uint8_t)(0x80 | op), 64, 126, MASK, p, 126);
    expect_error(in, n, 1000, FMQ_EPROTO, 10);
    n = build(in, (uint8_t)(0x80 | op), 64, 1u << 20, MASK, p, 0);
    expect_error(in, n, UINT64_MAX, FMQ_EPROTO, 10);

    n = build(in, (uint8_t)(0x80 | op), 7, 125, MASK, p, 125);
    struct dec_result res;
    /* max_length limits data frames only. */
    decode_all(in, n, 10, 1, &res);
    assert_int_equal(res.rc, 0);
    expect_frame(&res.frames[0], 1, (int)op, MASK, p, 125);
    result_free(&res);
  }
  free(p);
}

static void test_length_top_bit(void **state) {
  (void)state;
  uint8_t in[32];
  struct dec_result res;

  size_t n = build(in, 0x82, 64, UINT64_C(1) << 63, MASK, NULL, 0);
  expect_error(in, n, UINT64_MAX, FMQ_EPROTO, 10);
  n = build(in, 0x82, 64, UINT64_MAX, MASK, NULL, 0);
  expect_error(in, n, UINT64_MAX, FMQ_EPROTO, 10);
  n = build(in, 0x80, 64, UINT64_MAX, MASK, NULL, 0);
  expect_error(in, n, UINT64_MAX, FMQ_EPROTO, 10);

  /* The largest legal length: a header, and no END before the payload. */
  n = build(in, 0x82, 64, INT64_MAX, MASK, (const uint8_t *)"abc", 3);
  decode_all(in, n, UINT64_MAX, 1, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nframes, 1);
  assert_int_equal(res.frames[0].h.length, INT64_MAX);
  assert_int_equal(res.frames[0].len, 3);
  assert_memory_equal(res.frames[0].payload, "abc", 3);
  assert_false(res.frames[0].ended);
  result_free(&res);
}

/* A data frame over max_length fails from its length field, before the mask
 * and before any payload has arrived. */
static void test_too_big(void **state) {
  (void)state;
  uint8_t in[1100];
  uint8_t *p = fmqt_pattern(1001, 1);
  struct dec_result res;

  size_t n = build(in, 0x82, 16, 1000, MASK, p, 1000);
  decode_all(in, n, 1000, 1, &res);
  assert_int_equal(res.rc, 0);
  expect_frame(&res.frames[0], 1, FMQ_WS_BINARY, MASK, p, 1000);
  result_free(&res);

  n = build(in, 0x82, 16, 1001, MASK, p, 1001);
  expect_error(in, n, 1000, FMQ_ETOOBIG, 4);
  expect_error(in, 4, 1000, FMQ_ETOOBIG, 4);
  n = build(in, 0x01, 16, 1001, MASK, p, 0);
  expect_error(in, n, 1000, FMQ_ETOOBIG, 4);
  n = build(in, 0x80, 64, UINT64_C(1) << 40, MASK, p, 0);
  expect_error(in, n, 1000, FMQ_ETOOBIG, 10);
  n = build(in, 0x81, 7, 11, MASK, p, 11);
  expect_error(in, n, 10, FMQ_ETOOBIG, 2);
  free(p);
}

static void test_header_encode(void **state) {
  (void)state;
  uint8_t out[FMQ_WS_HEADER_MAX];

  assert_int_equal(fmq_frame_header_encode(out, 1, FMQ_WS_TEXT, 0, NULL), 2);
  assert_memory_equal(out, "\x81\x00", 2);
  assert_int_equal(fmq_frame_header_encode(out, 1, FMQ_WS_TEXT, 125, NULL), 2);
  assert_memory_equal(out, "\x81\x7D", 2);
  assert_int_equal(fmq_frame_header_encode(out, 1, FMQ_WS_BINARY, 126, NULL), 4);
  assert_memory_equal(out, "\x82\x7E\x00\x7E", 4);
  assert_int_equal(fmq_frame_header_encode(out, 1, FMQ_WS_BINARY, 65535, NULL), 4);
  assert_memory_equal(out, "\x82\x7E\xFF\xFF", 4);
  assert_int_equal(fmq_frame_header_encode(out, 1, FMQ_WS_BINARY, 65536, NULL), 10);
  assert_memory_equal(out, "\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10);
  assert_int_equal(fmq_frame_header_encode(out, 0, FMQ_WS_CONTINUATION,
                                           UINT64_C(0x0102030405060708), NULL), 10);
  assert_memory_equal(out, "\x00\x7F\x01\x02\x03\x04\x05\x06\x07\x08", 10);
  assert_int_equal(fmq_frame_header_encode(out, 0, FMQ_WS_TEXT, 3, NULL), 2);
  assert_memory_equal(out, "\x01\x03", 2);
  assert_int_equal(fmq_frame_header_encode(out, 1, FMQ_WS_PONG, 5, MASK), 6);
  assert_memory_equal(out, "\x8A\x85\x37\xFA\x21\x3D", 6);
  assert_int_equal(fmq_frame_header_encode(out, 1, FMQ_WS_BINARY, 300, MASK), 8);
  assert_memory_equal(out, "\x82\xFE\x01\x2C\x37\xFA\x21\x3D", 8);
  assert_int_equal(fmq_frame_header_encode(out, 1, FMQ_WS_BINARY, 70000, MASK), 14);
  assert_memory_equal(out, "\x82\xFF\x00\x00\x00\x00\x00\x01\x11\x70\x37\xFA\x21\x3D", 14);
}

/* Encoded and masked by the module, decoded by the module: same frame. */
static void test_encode_decode_roundtrip(void **state) {
  (void)state;
  static const uint64_t lens[] = {0, 7, 125, 126, 65535, 65536};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    size_t len = (size_t)lens[i];
    uint8_t *payload = fmqt_pattern(len, 5);
    uint8_t *in = malloc(len + FMQ_WS_HEADER_MAX);
    assert_non_null(in);
    size_t h = fmq_frame_header_encode(in, 1, FMQ_WS_BINARY, len, MASK);
    memcpy(in + h, payload, len);
    assert_int_equal(fmq_frame_mask(in + h, len, MASK, 0), len % 4);

    struct fmq_frame_decoder d;
    struct fmq_frame_event ev;
    size_t used;
    fmq_frame_decoder_init(&d, UINT64_MAX, 1);
    assert_int_equal(fmq_frame_decode(&d, in, h + len, &used, &ev), 0);
    assert_int_equal(ev.type, FMQ_FRAME_HEADER);
    assert_int_equal(used, h);
    assert_int_equal(d.header.length, len);
    if (len) {
      assert_int_equal(fmq_frame_decode(&d, in + h, len, &used, &ev), 0);
      assert_int_equal(ev.type, FMQ_FRAME_PAYLOAD);
      assert_int_equal(ev.len, len);
      assert_memory_equal(ev.data, payload, len);
    }
    assert_int_equal(fmq_frame_decode(&d, in + h + len, 0, &used, &ev), 0);
    assert_int_equal(ev.type, FMQ_FRAME_END);
    free(in);
    free(payload);
  }
}

/* Masking in any pieces, resuming from the returned index, matches the
 * byte-by-byte definition. */
static void test_mask_function(void **state) {
  (void)state;
  uint8_t a[64], b[64];
  for (size_t n = 0; n <= 40; n++) {
    for (unsigned start = 0; start < 4; start++) {
      for (size_t cut = 0; cut <= n; cut++) {
        for (size_t i = 0; i < n; i++)
          a[i] = b[i] = (uint8_t)(i * 13 + n);
        for (size_t i = 0; i < n; i++)
          b[i] ^= MASK[(start + i) % 4];
        unsigned pos = fmq_frame_mask(a, cut, MASK, start);
        assert_int_equal(pos, (start + cut) % 4);
        pos = fmq_frame_mask(a + cut, n - cut, MASK, pos);
        assert_int_equal(pos, (start + n) % 4);
        if (n)
          assert_memory_equal(a, b, n);
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc_examples),
      cmocka_unit_test(test_length_encodings),
      cmocka_unit_test(test_non_minimal_lengths),
      cmocka_unit_test(test_zero_length_events),
      cmocka_unit_test(test_event_sequence_in_place),
      cmocka_unit_test(test_several_frames),
      cmocka_unit_test(test_mask_required),
      cmocka_unit_test(test_reserved_bits),
      cmocka_unit_test(test_opcodes),
      cmocka_unit_test(test_control_frame_rules),
      cmocka_unit_test(test_length_top_bit),
      cmocka_unit_test(test_too_big),
      cmocka_unit_test(test_header_encode),
      cmocka_unit_test(test_encode_decode_roundtrip),
      cmocka_unit_test(test_mask_function),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
