#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "utf8.h"
#include "ws_message.h"
#include "wsclient.h"

#include <stdlib.h>
#include <string.h>

#define FIN 0x80
#define TEXT 0x1
#define BIN 0x2
#define CONT 0x0
#define CLOSE 0x8
#define PING 0x9
#define PONG 0xA

/* The fragment bound every read uses; test_fragment_limit lowers it. */
static uint32_t max_fragments = 1024;

/* A byte stream of client frames, written literally (minimal lengths, each
 * frame with its own mask) rather than with the module's encoder. */
struct stream {
  uint8_t *p;
  size_t n, cap;
  unsigned frames;
};

static void stream_put(struct stream *s, const void *p, size_t n) {
  if (s->n + n > s->cap) {
    s->cap = (s->n + n) * 2 + 64;
    s->p = realloc(s->p, s->cap);
    assert_non_null(s->p);
  }
  if (n)
    memcpy(s->p + s->n, p, n);
  s->n += n;
}

/* Appends a masked header for a payload of `length`; returns its mask. */
static void put_header(struct stream *s, uint8_t b0, uint64_t length, uint8_t mask[4]) {
  uint8_t h[14];
  s->frames++;
  uint8_t m[4] = {(uint8_t)(0x37 + s->frames), 0xFA, (uint8_t)(0x21 * s->frames), 0x3D};
  stream_put(s, h, fmqt_ws_header(h, b0, length, m));
  if (mask != NULL)
    memcpy(mask, m, 4);
}

static void put(struct stream *s, uint8_t b0, const void *payload, size_t len) {
  uint8_t m[4];
  put_header(s, b0, len, m);
  size_t at = s->n;
  stream_put(s, payload, len);
  for (size_t i = 0; i < len; i++)
    s->p[at + i] ^= m[i % 4];
}

#define PUTS(s, b0, lit) put((s), (b0), (lit), sizeof(lit) - 1)

static void put_close(struct stream *s, unsigned code, const char *reason, size_t len) {
  uint8_t p[200];
  p[0] = (uint8_t)(code >> 8);
  p[1] = (uint8_t)code;
  memcpy(p + 2, reason, len);
  put(s, FIN | CLOSE, p, 2 + len);
}

#define MAX_EVENTS 16

struct ev_rec {
  enum fmq_ws_event_type type;
  uint8_t *data;
  size_t len;
  uint16_t code;
  char *reason;
  size_t reason_len;
  int in_piece; /* data pointed into the buffer being fed (not compared) */
};

struct rd_result {
  struct ev_rec ev[MAX_EVENTS];
  size_t nev;
  int rc;
  uint64_t activity; /* the reader's count at the end */
  size_t err_piece; /* start offset of the piece whose feed failed */
};

static void result_free(struct rd_result *r) {
  for (size_t i = 0; i < r->nev; i++) {
    free(r->ev[i].data);
    free(r->ev[i].reason);
  }
  memset(r, 0, sizeof(*r));
}

static void *dup_bytes(const void *p, size_t n) {
  void *d = malloc(n ? n : 1);
  assert_non_null(d);
  if (n)
    memcpy(d, p, n);
  return d;
}

static void record(struct rd_result *res, const struct fmq_ws_event *ev, const uint8_t *piece,
                   size_t n) {
  assert_true(res->nev < MAX_EVENTS);
  struct ev_rec *e = &res->ev[res->nev++];
  e->type = ev->type;
  e->len = ev->len;
  if (ev->len)
    assert_non_null(ev->data);
  e->data = dup_bytes(ev->data, ev->len);
  uintptr_t d = (uintptr_t)ev->data, b = (uintptr_t)piece;
  e->in_piece = ev->data != NULL && d >= b && d + ev->len <= b + n;
  e->code = ev->close_code;
  e->reason_len = ev->reason_len;
  e->reason = dup_bytes(ev->reason, ev->reason_len);
  if (ev->type == FMQ_WS_EV_CLOSE)
    assert_true(fmq_utf8_valid((const uint8_t *)ev->reason, ev->reason_len));
  else
    assert_int_equal(ev->reason_len, 0);
  if (ev->type == FMQ_WS_EV_TEXT)
    assert_true(fmq_utf8_valid(ev->data, ev->len));
}

/* Feeds in[cuts[i]..cuts[i+1]) the way the gateway does, each piece in its
 * own heap block (freed after it is consumed, so ASan catches a reader that
 * keeps pointing into an old read). Between messages the reader must own no
 * memory; a last feed of 0 bytes releases a just-delivered message. */
static void run_pieces(const uint8_t *in, const size_t *cuts, size_t ncuts, size_t max,
                       struct rd_result *res) {
  struct fmq_ws_reader r;

  memset(res, 0, sizeof(*res));
  fmq_ws_reader_init(&r, max, max_fragments);
  for (size_t i = 0; i + 1 < ncuts && res->rc == 0; i++) {
    size_t n = cuts[i + 1] - cuts[i], off = 0;
    uint8_t *piece = dup_bytes(in + cuts[i], n);
    do {
      struct fmq_ws_event ev;
      size_t used = 99;
      int rc = fmq_ws_reader_feed(&r, piece + off, n - off, &used, &ev);
      assert_true(used <= n - off);
      off += used;
      if (rc != 0) {
        assert_int_equal(ev.type, FMQ_WS_EV_NONE);
        res->rc = rc;
        res->err_piece = cuts[i];
        break;
      }
      if (ev.type == FMQ_WS_EV_NONE) {
        assert_int_equal(off, n);
        if (r.msg_opcode == 0)
          assert_null(r.msg);
        break;
      }
      record(res, &ev, piece, n);
    } while (off < n);
    free(piece);
  }
  if (res->rc == 0) {
    struct fmq_ws_event ev;
    size_t used;
    uint8_t none[1];
    assert_int_equal(fmq_ws_reader_feed(&r, none, 0, &used, &ev), 0);
    assert_int_equal(ev.type, FMQ_WS_EV_NONE);
    assert_int_equal(used, 0);
    if (r.msg_opcode == 0) {
      assert_null(r.msg);
      assert_int_equal(r.msg_cap, 0);
    }
  }
  res->activity = r.activity;
  fmq_ws_reader_close(&r);
}

static void assert_same(const struct rd_result *a, const struct rd_result *b) {
  assert_int_equal(a->rc, b->rc);
  assert_int_equal(a->nev, b->nev);
  assert_int_equal(a->activity, b->activity);
  for (size_t i = 0; i < a->nev; i++) {
    const struct ev_rec *x = &a->ev[i], *y = &b->ev[i];
    assert_int_equal(x->type, y->type);
    assert_int_equal(x->len, y->len);
    assert_memory_equal(x->data, y->data, x->len);
    assert_int_equal(x->code, y->code);
    assert_int_equal(x->reason_len, y->reason_len);
    assert_memory_equal(x->reason, y->reason, x->reason_len);
  }
}

static int split_here(size_t k, size_t n) {
  return n <= 4096 || k < 300 || n - k < 300 || k % 251 == 0;
}

/* Reads s whole, one byte at a time, and split in two at every offset (large
 * inputs: near the ends and at a stride); all must agree. *res is the whole
 * read, with err_piece from the byte-at-a-time read: the index of the byte
 * whose arrival produced the error. */
static void read_all(const struct stream *s, size_t max, struct rd_result *res) {
  struct rd_result other;
  size_t whole[2] = {0, s->n};

  run_pieces(s->p, whole, 2, max, res);

  size_t *cuts = malloc((s->n + 1) * sizeof(*cuts));
  assert_non_null(cuts);
  for (size_t i = 0; i <= s->n; i++)
    cuts[i] = i;
  run_pieces(s->p, cuts, s->n + 1, max, &other);
  free(cuts);
  assert_same(res, &other);
  res->err_piece = other.err_piece;
  result_free(&other);

  for (size_t k = 0; k <= s->n; k++) {
    if (!split_here(k, s->n))
      continue;
    size_t two[3] = {0, k, s->n};
    run_pieces(s->p, two, 3, max, &other);
    assert_same(res, &other);
    result_free(&other);
  }
}

static void expect_ev(const struct rd_result *res, size_t i, enum fmq_ws_event_type type,
                      const void *data, size_t len) {
  assert_true(i < res->nev);
  assert_int_equal(res->ev[i].type, type);
  assert_int_equal(res->ev[i].len, len);
  if (len)
    assert_memory_equal(res->ev[i].data, data, len);
}

#define EXPECT_EV(res, i, type, lit) expect_ev((res), (i), (type), (lit), sizeof(lit) - 1)

static void expect_close(const struct rd_result *res, size_t i, unsigned code, const char *reason,
                         size_t reason_len) {
  assert_true(i < res->nev);
  assert_int_equal(res->ev[i].type, FMQ_WS_EV_CLOSE);
  assert_int_equal(res->ev[i].code, code);
  assert_int_equal(res->ev[i].reason_len, reason_len);
  if (reason_len)
    assert_memory_equal(res->ev[i].reason, reason, reason_len);
}

/* Reads s and expects events before error rc, which the byte at err_byte
 * (in a one-byte-at-a-time read) must trigger. */
static void expect_fail(struct stream *s, size_t max, int rc, size_t err_byte, size_t nev,
                        struct rd_result *res) {
  read_all(s, max, res);
  assert_int_equal(res->rc, rc);
  assert_int_equal(res->err_piece, err_byte);
  assert_int_equal(res->nev, nev);
}

static void stream_free(struct stream *s) {
  free(s->p);
  memset(s, 0, sizeof(*s));
}

static void test_single_messages(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;

  PUTS(&s, FIN | TEXT, "Hello");
  PUTS(&s, FIN | BIN, "\x00\x01\xFF");
  PUTS(&s, FIN | TEXT, "");
  PUTS(&s, FIN | BIN, "");
  PUTS(&s, FIN | TEXT, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5 \xF0\x9F\x98\x80");
  read_all(&s, 1000, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nev, 5);
  EXPECT_EV(&res, 0, FMQ_WS_EV_TEXT, "Hello");
  EXPECT_EV(&res, 1, FMQ_WS_EV_BINARY, "\x00\x01\xFF");
  EXPECT_EV(&res, 2, FMQ_WS_EV_TEXT, "");
  EXPECT_EV(&res, 3, FMQ_WS_EV_BINARY, "");
  EXPECT_EV(&res, 4, FMQ_WS_EV_TEXT, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5 \xF0\x9F\x98\x80");
  for (size_t i = 0; i < res.nev; i++)
    if (res.ev[i].len)
      assert_true(res.ev[i].in_piece);
  result_free(&res);
  stream_free(&s);
}

static void test_lengths(void **state) {
  (void)state;
  static const size_t lens[] = {0, 1, 125, 126, 127, 65535, 65536, 100000};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    struct stream s = {0};
    struct rd_result res;
    uint8_t *p = fmqt_pattern(lens[i], (unsigned)i);
    put(&s, FIN | BIN, p, lens[i]);
    put(&s, FIN | PING, p, lens[i] > 125 ? 125 : lens[i]);
    read_all(&s, 100000, &res);
    assert_int_equal(res.rc, 0);
    assert_int_equal(res.nev, 2);
    expect_ev(&res, 0, FMQ_WS_EV_BINARY, p, lens[i]);
    expect_ev(&res, 1, FMQ_WS_EV_PING, p, lens[i] > 125 ? 125 : lens[i]);
    result_free(&res);
    stream_free(&s);
    free(p);
  }
}

static void test_fragments_with_control_frames(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;

  PUTS(&s, TEXT, "Hel");
  PUTS(&s, FIN | PING, "p1");
  PUTS(&s, CONT, "lo, ");
  PUTS(&s, FIN | PONG, "");
  PUTS(&s, CONT, "");
  PUTS(&s, FIN | PING, "");
  PUTS(&s, FIN | CONT, "w\xC3\xB6rld");
  PUTS(&s, BIN, "\xFF");
  PUTS(&s, FIN | CLOSE, "\x03\xE8" "bye");
  PUTS(&s, FIN | CONT, "\xFE");
  PUTS(&s, FIN | TEXT, "after");
  read_all(&s, 1000, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nev, 7);
  EXPECT_EV(&res, 0, FMQ_WS_EV_PING, "p1");
  EXPECT_EV(&res, 1, FMQ_WS_EV_PONG, "");
  EXPECT_EV(&res, 2, FMQ_WS_EV_PING, "");
  EXPECT_EV(&res, 3, FMQ_WS_EV_TEXT, "Hello, w\xC3\xB6rld");
  assert_false(res.ev[3].in_piece);
  expect_close(&res, 4, 1000, "bye", 3);
  EXPECT_EV(&res, 5, FMQ_WS_EV_BINARY, "\xFF\xFE");
  EXPECT_EV(&res, 6, FMQ_WS_EV_TEXT, "after");
  result_free(&res);
  stream_free(&s);
}

static void test_fragment_sequence_errors(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;

  /* Continuation with no message open: at the start, and after a message. */
  PUTS(&s, FIN | CONT, "x");
  expect_fail(&s, 1000, FMQ_EPROTO, 5, 0, &res);
  result_free(&res);
  stream_free(&s);

  PUTS(&s, FIN | TEXT, "a");
  PUTS(&s, CONT, "b");
  expect_fail(&s, 1000, FMQ_EPROTO, 7 + 5, 1, &res);
  EXPECT_EV(&res, 0, FMQ_WS_EV_TEXT, "a");
  result_free(&res);
  stream_free(&s);

  /* A new data frame while a fragmented message is open. */
  PUTS(&s, TEXT, "a");
  PUTS(&s, FIN | TEXT, "b");
  expect_fail(&s, 1000, FMQ_EPROTO, 7 + 5, 0, &res);
  result_free(&res);
  stream_free(&s);

  PUTS(&s, BIN, "a");
  PUTS(&s, FIN | PING, "p");
  PUTS(&s, BIN, "b");
  expect_fail(&s, 1000, FMQ_EPROTO, 7 + 7 + 5, 1, &res);
  EXPECT_EV(&res, 0, FMQ_WS_EV_PING, "p");
  result_free(&res);
  stream_free(&s);

  PUTS(&s, TEXT, "a");
  PUTS(&s, FIN | BIN, "");
  expect_fail(&s, 1000, FMQ_EPROTO, 7 + 5, 0, &res);
  result_free(&res);
  stream_free(&s);
}

/* Frame-level violations reach the reader's caller unchanged. */
static void test_frame_errors(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;
  static const uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
  static const uint8_t rsv1[] = {0xC1, 0x82, 1, 2, 3, 4, 'h', 'i'};
  static const uint8_t opcode3[] = {0x83, 0x80, 1, 2, 3, 4};
  static const uint8_t ping_nofin[] = {0x09, 0x80, 1, 2, 3, 4};
  static const uint8_t ping_126[] = {0x89, 0xFE, 0x00, 0x7E};

  PUTS(&s, FIN | TEXT, "ok");
  stream_put(&s, unmasked, sizeof(unmasked));
  expect_fail(&s, 1000, FMQ_EPROTO, 8 + 1, 1, &res);
  result_free(&res);
  stream_free(&s);

  stream_put(&s, rsv1, sizeof(rsv1));
  expect_fail(&s, 1000, FMQ_EPROTO, 1, 0, &res);
  result_free(&res);
  stream_free(&s);

  stream_put(&s, opcode3, sizeof(opcode3));
  expect_fail(&s, 1000, FMQ_EPROTO, 1, 0, &res);
  result_free(&res);
  stream_free(&s);

  stream_put(&s, ping_nofin, sizeof(ping_nofin));
  expect_fail(&s, 1000, FMQ_EPROTO, 1, 0, &res);
  result_free(&res);
  stream_free(&s);

  stream_put(&s, ping_126, sizeof(ping_126));
  expect_fail(&s, 1000, FMQ_EPROTO, 3, 0, &res);
  result_free(&res);
  stream_free(&s);
}

static void test_text_utf8_fails_fast(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;

  /* In a single frame: fails on the bad byte, not at the end. */
  PUTS(&s, FIN | TEXT, "abc\xFF" "defgh");
  expect_fail(&s, 1000, FMQ_EUTF8, 6 + 3, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* In a non-final fragment, though the message never completes. */
  PUTS(&s, TEXT, "ok \xC0\x80 more");
  expect_fail(&s, 1000, FMQ_EUTF8, 6 + 3, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* In a later fragment, after an interleaved ping. */
  PUTS(&s, TEXT, "fine");
  PUTS(&s, FIN | PING, "");
  PUTS(&s, CONT, "\xE2\x82\xAC\xED\xA0\x80");
  expect_fail(&s, 1000, FMQ_EUTF8, 10 + 6 + 6 + 4, 1, &res);
  EXPECT_EV(&res, 0, FMQ_WS_EV_PING, "");
  result_free(&res);
  stream_free(&s);

  /* A sequence cut by the fragment boundary is checked across it. */
  PUTS(&s, TEXT, "\xF0\x9F");
  PUTS(&s, FIN | CONT, "\x98" "a");
  expect_fail(&s, 1000, FMQ_EUTF8, 8 + 6 + 1, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* Binary messages are not checked. */
  PUTS(&s, FIN | BIN, "\xFF\xC0\x80");
  read_all(&s, 1000, &res);
  assert_int_equal(res.rc, 0);
  EXPECT_EV(&res, 0, FMQ_WS_EV_BINARY, "\xFF\xC0\x80");
  result_free(&res);
  stream_free(&s);
}

static void test_text_must_end_on_code_point(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;

  PUTS(&s, FIN | TEXT, "a\xE2\x82");
  expect_fail(&s, 1000, FMQ_EUTF8, 8, 0, &res);
  result_free(&res);
  stream_free(&s);

  PUTS(&s, TEXT, "a\xE2\x82");
  PUTS(&s, FIN | CONT, "");
  expect_fail(&s, 1000, FMQ_EUTF8, 9 + 5, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* Split code points across fragments are fine, even byte by byte with
   * control frames between. */
  PUTS(&s, TEXT, "\xE2");
  PUTS(&s, CONT, "\x82");
  PUTS(&s, FIN | PONG, "x");
  PUTS(&s, CONT, "");
  PUTS(&s, CONT, "\xAC\xF0\x9F");
  PUTS(&s, FIN | CONT, "\x98\x80");
  read_all(&s, 1000, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nev, 2);
  EXPECT_EV(&res, 0, FMQ_WS_EV_PONG, "x");
  EXPECT_EV(&res, 1, FMQ_WS_EV_TEXT, "\xE2\x82\xAC\xF0\x9F\x98\x80");
  result_free(&res);
  stream_free(&s);
}

static void test_close_frames(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;

  PUTS(&s, FIN | CLOSE, "");
  put_close(&s, 1000, "", 0);
  put_close(&s, 1001, "going \xC3\xA9t\xC3\xA9", 11);
  uint8_t reason[123];
  memset(reason, 'r', sizeof(reason));
  put_close(&s, 4999, (const char *)reason, sizeof(reason));
  read_all(&s, 1000, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nev, 4);
  expect_close(&res, 0, 0, NULL, 0);
  expect_close(&res, 1, 1000, NULL, 0);
  expect_close(&res, 2, 1001, "going \xC3\xA9t\xC3\xA9", 11);
  expect_close(&res, 3, 4999, (const char *)reason, sizeof(reason));
  result_free(&res);
  stream_free(&s);

  PUTS(&s, FIN | CLOSE, "\x03");
  expect_fail(&s, 1000, FMQ_EPROTO, 6, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* One byte, even where the byte after it would make a valid code. */
  put_close(&s, 1000, "", 0);
  PUTS(&s, FIN | CLOSE, "\x03");
  stream_put(&s, "\xE8", 1);
  expect_fail(&s, 1000, FMQ_EPROTO, 8 + 6, 1, &res);
  expect_close(&res, 0, 1000, NULL, 0);
  result_free(&res);
  stream_free(&s);

  put_close(&s, 1000, "\xFF", 1);
  expect_fail(&s, 1000, FMQ_EUTF8, 8, 0, &res);
  result_free(&res);
  stream_free(&s);

  put_close(&s, 1000, "ok\xE2\x82", 4);
  expect_fail(&s, 1000, FMQ_EUTF8, 11, 0, &res);
  result_free(&res);
  stream_free(&s);

  put_close(&s, 1000, "\xED\xA0\x80", 3);
  expect_fail(&s, 1000, FMQ_EUTF8, 10, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* The code is checked before the reason. */
  put_close(&s, 1005, "\xFF", 1);
  expect_fail(&s, 1000, FMQ_EPROTO, 8, 0, &res);
  result_free(&res);
  stream_free(&s);
}

static void test_close_code_ranges(void **state) {
  (void)state;
  static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1011, 1014, 3000, 4000, 4999};
  static const unsigned invalid[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016,
                                     2000, 2999, 5000, 65535};

  for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
    struct stream s = {0};
    struct rd_result res;
    assert_true(fmq_ws_close_code_valid(valid[i]));
    put_close(&s, valid[i], "r", 1);
    read_all(&s, 1000, &res);
    assert_int_equal(res.rc, 0);
    expect_close(&res, 0, valid[i], "r", 1);
    result_free(&res);
    stream_free(&s);
  }
  for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
    struct stream s = {0};
    struct rd_result res;
    assert_false(fmq_ws_close_code_valid(invalid[i]));
    put_close(&s, invalid[i], "", 0);
    expect_fail(&s, 1000, FMQ_EPROTO, 7, 0, &res);
    result_free(&res);
    stream_free(&s);
  }
  unsigned count = 0;
  for (unsigned code = 0; code < 70000; code++)
    count += fmq_ws_close_code_valid(code) != 0;
  assert_int_equal(count, 4 + 8 + 2000);
}

static void test_close_code_for(void **state) {
  (void)state;
  assert_int_equal(fmq_ws_close_code_for(FMQ_EPROTO), 1002);
  assert_int_equal(fmq_ws_close_code_for(FMQ_EUTF8), 1007);
  assert_int_equal(fmq_ws_close_code_for(FMQ_ETOOBIG), 1009);
  assert_int_equal(fmq_ws_close_code_for(FMQ_EFRAGMENTS), 1009);
  assert_int_equal(fmq_ws_close_code_for(FMQ_ENOMEM), 1011);
}

static void test_message_size_limit(void **state) {
  (void)state;
  uint8_t *p = fmqt_pattern(101, 3);
  struct stream s = {0};
  struct rd_result res;

  put(&s, FIN | TEXT, "", 0);
  read_all(&s, 0, &res);
  assert_int_equal(res.rc, 0);
  result_free(&res);
  PUTS(&s, FIN | TEXT, "x");
  expect_fail(&s, 0, FMQ_ETOOBIG, 6 + 1, 1, &res);
  result_free(&res);
  stream_free(&s);

  /* A single frame: exactly at the limit, then one over, refused from its
   * length byte. */
  put(&s, FIN | BIN, p, 100);
  read_all(&s, 100, &res);
  assert_int_equal(res.rc, 0);
  expect_ev(&res, 0, FMQ_WS_EV_BINARY, p, 100);
  result_free(&res);
  put(&s, FIN | BIN, p, 101);
  expect_fail(&s, 100, FMQ_ETOOBIG, 106 + 1, 1, &res);
  result_free(&res);
  stream_free(&s);

  /* Fragments add up; control frames do not count. */
  put(&s, BIN, p, 60);
  put(&s, FIN | PING, p, 100);
  put(&s, FIN | CONT, p + 60, 40);
  read_all(&s, 100, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nev, 2);
  expect_ev(&res, 0, FMQ_WS_EV_PING, p, 100);
  expect_ev(&res, 1, FMQ_WS_EV_BINARY, p, 100);
  result_free(&res);
  stream_free(&s);

  put(&s, BIN, p, 60);
  put(&s, FIN | CONT, p + 60, 41);
  expect_fail(&s, 100, FMQ_ETOOBIG, 66 + 5, 0, &res);
  result_free(&res);
  stream_free(&s);

  put(&s, BIN, "a", 1);
  put(&s, CONT, p, 99);
  put(&s, CONT, "", 0);
  put(&s, FIN | CONT, "b", 1);
  expect_fail(&s, 100, FMQ_ETOOBIG, 7 + 105 + 6 + 5, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* A later message starts from zero again. */
  put(&s, BIN, p, 50);
  put(&s, FIN | CONT, p, 50);
  put(&s, FIN | BIN, p, 100);
  read_all(&s, 100, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nev, 2);
  result_free(&res);
  stream_free(&s);
  free(p);
}

/* A message may take max_fragments data frames; control frames between
 * them do not count, and each message counts from zero. */
static void test_fragment_limit(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;

  max_fragments = 3;
  PUTS(&s, TEXT, "a");
  PUTS(&s, FIN | PING, "");
  PUTS(&s, CONT, "b");
  PUTS(&s, FIN | PONG, "");
  PUTS(&s, FIN | CONT, "c");
  PUTS(&s, BIN, "d");
  PUTS(&s, CONT, "");
  PUTS(&s, FIN | CONT, "e");
  read_all(&s, 1000, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nev, 4);
  EXPECT_EV(&res, 2, FMQ_WS_EV_TEXT, "abc");
  EXPECT_EV(&res, 3, FMQ_WS_EV_BINARY, "de");
  result_free(&res);
  stream_free(&s);

  /* The fourth frame is refused from its header, before its payload. */
  PUTS(&s, TEXT, "a");
  PUTS(&s, CONT, "b");
  PUTS(&s, CONT, "c");
  PUTS(&s, FIN | CONT, "d");
  expect_fail(&s, 1000, FMQ_EFRAGMENTS, 3 * 7 + 5, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* Empty fragments count like any other. */
  PUTS(&s, TEXT, "");
  PUTS(&s, CONT, "");
  PUTS(&s, CONT, "");
  PUTS(&s, CONT, "");
  expect_fail(&s, 1000, FMQ_EFRAGMENTS, 3 * 6 + 5, 0, &res);
  result_free(&res);
  stream_free(&s);

  /* One: no fragmentation at all. */
  max_fragments = 1;
  PUTS(&s, FIN | TEXT, "whole");
  PUTS(&s, BIN, "a");
  PUTS(&s, FIN | CONT, "b");
  expect_fail(&s, 1000, FMQ_EFRAGMENTS, 11 + 7 + 5, 1, &res);
  EXPECT_EV(&res, 0, FMQ_WS_EV_TEXT, "whole");
  result_free(&res);
  stream_free(&s);
  max_fragments = 1024;
}

/* Every complete frame is activity except a data frame that carries nothing
 * and does not end its message. */
static void test_activity(void **state) {
  (void)state;
  struct stream s = {0};
  struct rd_result res;

  PUTS(&s, TEXT, "");        /* no */
  PUTS(&s, CONT, "");        /* no */
  PUTS(&s, CONT, "x");       /* yes: data */
  PUTS(&s, FIN | PING, "");  /* yes */
  PUTS(&s, CONT, "");        /* no */
  PUTS(&s, FIN | PONG, "");  /* yes */
  PUTS(&s, FIN | CONT, "");  /* yes: ends the message */
  PUTS(&s, FIN | BIN, "");   /* yes */
  PUTS(&s, BIN, "");         /* no */
  read_all(&s, 1000, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.nev, 4);
  EXPECT_EV(&res, 2, FMQ_WS_EV_TEXT, "x");
  assert_int_equal(res.activity, 5);
  result_free(&res);
  stream_free(&s);

  PUTS(&s, FIN | CLOSE, "");
  read_all(&s, 1000, &res);
  assert_int_equal(res.activity, 1);
  result_free(&res);
  stream_free(&s);
}

/* A frame that is a whole message and arrives in one buffer is delivered in
 * place; anything else from the reader's own buffer. */
static void test_zero_copy(void **state) {
  (void)state;
  struct stream s = {0};
  struct fmq_ws_reader r;
  struct fmq_ws_event ev;
  size_t used;

  PUTS(&s, FIN | TEXT, "Hello");
  PUTS(&s, FIN | PING, "p");
  PUTS(&s, FIN | BIN, "");
  fmq_ws_reader_init(&r, 1000, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p, s.n, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_TEXT);
  assert_int_equal(used, 11);
  assert_ptr_equal(ev.data, s.p + 6);
  assert_memory_equal(ev.data, "Hello", 5);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p + 11, s.n - 11, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_PING);
  assert_ptr_equal(ev.data, s.p + 17);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p + 18, s.n - 18, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_BINARY);
  assert_int_equal(ev.len, 0);
  assert_int_equal(used, 6);
  assert_null(r.msg);
  fmq_ws_reader_close(&r);
  stream_free(&s);
}

static void test_owned_buffer_released(void **state) {
  (void)state;
  struct stream s = {0};
  struct fmq_ws_reader r;
  struct fmq_ws_event ev;
  size_t used;

  /* Fragmented, all in one buffer: copied, released on the next call. */
  PUTS(&s, TEXT, "Hel");
  PUTS(&s, FIN | CONT, "lo");
  fmq_ws_reader_init(&r, 1 << 20, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p, 9, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_NONE);
  assert_non_null(r.msg);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p + 9, s.n - 9, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_TEXT);
  assert_ptr_equal(ev.data, r.msg);
  assert_memory_equal(ev.data, "Hello", 5);
  fmq_ws_reader_done(&r);
  assert_null(r.msg);
  assert_int_equal(r.msg_len, 0);
  assert_int_equal(r.msg_cap, 0);
  fmq_ws_reader_close(&r);
  stream_free(&s);

  /* One frame over two reads: the buffer holds exactly the frame. */
  uint8_t *p = fmqt_pattern(5000, 1);
  put(&s, FIN | BIN, p, 5000);
  fmq_ws_reader_init(&r, 1 << 20, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p, 3000, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_NONE);
  assert_int_equal(used, 3000);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p + 3000, s.n - 3000, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_BINARY);
  assert_ptr_equal(ev.data, r.msg);
  assert_int_equal(r.msg_cap, 5000);
  assert_memory_equal(ev.data, p, 5000);
  /* The next message's bytes release it as well. */
  PUTS(&s, FIN | TEXT, "x");
  assert_int_equal(fmq_ws_reader_feed(&r, s.p + s.n - 7, 7, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_TEXT);
  assert_null(r.msg);
  fmq_ws_reader_close(&r);
  stream_free(&s);

  /* Small messages get small buffers: the frame's size, or at most
   * max_message_size while more fragments may come. */
  put(&s, FIN | BIN, p, 10);
  fmq_ws_reader_init(&r, 1 << 20, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p, 10, &used, &ev), 0);
  assert_int_equal(r.msg_cap, 10);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p + 10, 6, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_BINARY);
  assert_int_equal(r.msg_cap, 10);
  fmq_ws_reader_close(&r);
  stream_free(&s);
  put(&s, BIN, p, 10);
  fmq_ws_reader_init(&r, 100, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p, s.n, &used, &ev), 0);
  assert_int_equal(r.msg_cap, 100);
  fmq_ws_reader_close(&r);
  stream_free(&s);

  /* Growth stops at max_message_size. */
  put(&s, BIN, p, 3000);
  put(&s, CONT, p, 1000);
  put(&s, FIN | CONT, p, 1000);
  fmq_ws_reader_init(&r, 5000, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p, s.n - 1, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_NONE);
  assert_true(r.msg_cap <= 5000);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p + s.n - 1, 1, &used, &ev), 0);
  assert_int_equal(ev.type, FMQ_WS_EV_BINARY);
  assert_int_equal(ev.len, 5000);
  assert_int_equal(r.msg_cap, 5000);
  /* Closing with a message open frees it too (ASan reports a leak if not). */
  fmq_ws_reader_close(&r);
  fmq_ws_reader_init(&r, 5000, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p, 3010, &used, &ev), 0);
  assert_non_null(r.msg);
  fmq_ws_reader_close(&r);
  assert_null(r.msg);
  stream_free(&s);
  free(p);
}

static void check_close_encode(unsigned code, const char *reason, size_t len, const void *want,
                               size_t want_len) {
  uint8_t out[FMQ_WS_HEADER_MAX + 2 + 300];
  size_t n = fmq_ws_close_frame_encode(out, (uint16_t)code, reason, len);
  assert_int_equal(n, want_len);
  assert_memory_equal(out, want, want_len);
}

static void test_close_frame_encode(void **state) {
  (void)state;
  char reason[300];
  uint8_t want[300];

  check_close_encode(0, NULL, 0, "\x88\x00", 2);
  check_close_encode(0, "ignored", 7, "\x88\x00", 2);
  check_close_encode(1000, NULL, 0, "\x88\x02\x03\xE8", 4);
  check_close_encode(1001, "bye", 3, "\x88\x05\x03\xE9" "bye", 7);
  check_close_encode(1011, "\xC3\xA9", 2, "\x88\x04\x03\xF3\xC3\xA9", 6);

  /* 123 reason bytes fit; more are cut to 123. */
  memset(reason, 'a', sizeof(reason));
  want[0] = 0x88;
  want[1] = 125;
  want[2] = 0x03;
  want[3] = 0xE8;
  memset(want + 4, 'a', 123);
  check_close_encode(1000, reason, 123, want, 127);
  check_close_encode(1000, reason, 124, want, 127);
  check_close_encode(1000, reason, 300, want, 127);

  /* A code point across the cut is dropped whole: a 3-byte one at 122..124,
   * a 4-byte one at 120..123, a 2-byte one at 122..123 fits. */
  memcpy(reason + 122, "\xE2\x82\xAC", 3);
  want[1] = 124;
  check_close_encode(1000, reason, 125, want, 126);
  memset(reason, 'a', sizeof(reason));
  memcpy(reason + 120, "\xF0\x9F\x98\x80", 4);
  want[1] = 122;
  check_close_encode(1000, reason, 124, want, 124);
  memset(reason, 'a', sizeof(reason));
  memcpy(reason + 121, "\xC3\xA9", 2);
  memcpy(want + 4 + 121, "\xC3\xA9", 2);
  want[1] = 125;
  check_close_encode(1000, reason, 130, want, 127);

  /* What the encoder writes, the reader accepts (once masked). */
  for (size_t len = 0; len <= 130; len++) {
    struct stream s = {0};
    struct rd_result res;
    uint8_t out[FMQ_WS_HEADER_MAX + 2 + 300];
    memset(reason, 'a', sizeof(reason));
    memcpy(reason + 119, "\xF0\x9F\x98\x80\xE2\x82\xAC", 7);
    size_t n = fmq_ws_close_frame_encode(out, 1000, reason, len);
    assert_true(n <= 2 + FMQ_WS_CONTROL_MAX);
    put(&s, out[0], out + 2, n - 2);
    read_all(&s, 1000, &res);
    if (len >= 120 && len <= 122)
      assert_int_equal(res.rc, FMQ_EUTF8); /* the caller passed a cut sequence */
    else
      assert_int_equal(res.rc, 0);
    result_free(&res);
    stream_free(&s);
  }
}

static void test_reinit_after_error(void **state) {
  (void)state;
  struct stream s = {0};
  struct fmq_ws_reader r;
  struct fmq_ws_event ev;
  size_t used;

  PUTS(&s, TEXT, "abc");
  PUTS(&s, FIN | CONT, "\xFF");
  uint8_t *copy = dup_bytes(s.p, s.n);
  fmq_ws_reader_init(&r, 100, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, s.p, s.n, &used, &ev), FMQ_EUTF8);
  assert_int_equal(ev.type, FMQ_WS_EV_NONE);
  fmq_ws_reader_close(&r);
  fmq_ws_reader_init(&r, 100, max_fragments);
  assert_int_equal(fmq_ws_reader_feed(&r, copy, 9, &used, &ev), 0);
  assert_int_equal(used, 9);
  assert_int_equal(ev.type, FMQ_WS_EV_NONE);
  assert_non_null(r.msg);
  fmq_ws_reader_close(&r);
  free(copy);
  stream_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_messages),
      cmocka_unit_test(test_lengths),
      cmocka_unit_test(test_fragments_with_control_frames),
      cmocka_unit_test(test_fragment_sequence_errors),
      cmocka_unit_test(test_frame_errors),
      cmocka_unit_test(test_text_utf8_fails_fast),
      cmocka_unit_test(test_text_must_end_on_code_point),
      cmocka_unit_test(test_close_frames),
      cmocka_unit_test(test_close_code_ranges),
      cmocka_unit_test(test_close_code_for),
      cmocka_unit_test(test_message_size_limit),
      cmocka_unit_test(test_fragment_limit),
      cmocka_unit_test(test_activity),
      cmocka_unit_test(test_zero_copy),
      cmocka_unit_test(test_owned_buffer_released),
      cmocka_unit_test(test_close_frame_encode),
      cmocka_unit_test(test_reinit_after_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
