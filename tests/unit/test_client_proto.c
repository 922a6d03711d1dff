#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_str(const char *s, struct fmq_client_msg *m, struct fmq_client_error *err) {
  return fmq_client_parse((const uint8_t *)s, strlen(s), m, err);
}

/* Expects s to be refused with code and message, and m->id to stay NULL. */
static void expect_refused(const char *s, enum fmq_client_error_code code, const char *message) {
  struct fmq_client_msg m;
  struct fmq_client_error err = {.code = FMQ_CE_INTERNAL, .message = NULL};
  int rc = parse_str(s, &m, &err);

  if (rc != -1 || err.code != code || err.message == NULL || strcmp(err.message, message) != 0)
    print_error("refused otherwise: %s\n", s);
  assert_int_equal(rc, -1);
  assert_int_equal(err.code, code);
  assert_non_null(err.message);
  assert_string_equal(err.message, message);
  assert_null(m.id);
  fmq_client_msg_close(&m);
}

/* Checks that b holds exactly one unmasked FIN text frame with a minimally
 * encoded length; returns its payload and sets *len. */
static const uint8_t *frame_payload(const struct fmq_buf *b, size_t *len) {
  size_t hlen;
  uint64_t plen;

  assert_non_null(b);
  assert_true(b->len >= 2);
  assert_int_equal(b->data[0], 0x81);
  assert_int_equal(b->data[1] & 0x80, 0);
  plen = b->data[1] & 0x7f;
  if (plen < 126) {
    hlen = 2;
  } else if (plen == 126) {
    assert_true(b->len >= 4);
    hlen = 4;
    plen = (uint64_t)b->data[2] << 8 | b->data[3];
    assert_true(plen >= 126);
  } else {
    assert_true(b->len >= 10);
    hlen = 10;
    plen = 0;
    for (int i = 2; i < 10; i++)
      plen = plen << 8 | b->data[i];
    assert_true(plen > 0xffff);
  }
  assert_int_equal(b->len, hlen + plen);
  *len = (size_t)plen;
  return b->data + hlen;
}

/* Checks that b is one such frame whose payload is exactly `json`. */
static void expect_frame(const struct fmq_buf *b, const char *json) {
  size_t len;
  const uint8_t *p = frame_payload(b, &len);

  assert_int_equal(len, strlen(json));
  assert_memory_equal(p, json, len);
}

/* The frame's payload as parsed by jansson (NUL allowed); the caller owns it. */
static json_t *frame_json(const struct fmq_buf *b) {
  size_t len;
  const uint8_t *p = frame_payload(b, &len);
  json_t *v = json_loadb((const char *)p, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);

  assert_non_null(v);
  return v;
}

static void expect_pong_for(const char *msg, const char *pong) {
  struct fmq_client_msg m;
  struct fmq_client_error err;
  struct fmq_buf *b;

  assert_int_equal(parse_str(msg, &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_PING);
  assert_non_null(m.id);
  b = fmq_client_encode_pong(m.id);
  expect_frame(b, pong);
  fmq_buf_unref(b);
  fmq_client_msg_close(&m);
}

static void test_parse_ping(void **state) {
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  assert_int_equal(parse_str("{\"type\":\"ping\"}", &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_PING);
  assert_string_equal(m.type, "ping");
  assert_int_equal(m.type_len, 4);
  assert_null(m.id);
  assert_true(json_is_object(m.root));
  fmq_client_msg_close(&m);
  assert_null(m.root);
  assert_null(m.type);
  assert_null(m.id);

  /* Whitespace around the object and extra fields are fine. */
  assert_int_equal(parse_str(" \n{ \"x\" : [1, {}], \"type\" : \"ping\" }\t", &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_PING);
  fmq_client_msg_close(&m);
}

static void test_parse_other_types(void **state) {
  static const char *const types[] = {"subscribeSession", "Ping", "ping ", "", "pong",
                                      "Subscribe", "PUBLISH", "unsubscribe2", "publish "};
  char text[64];
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    snprintf(text, sizeof(text), "{\"type\":\"%s\",\"topic\":\"a/b\"}", types[i]);
    assert_int_equal(parse_str(text, &m, &err), 0);
    assert_int_equal(m.kind, FMQ_CLIENT_OTHER);
    assert_string_equal(m.type, types[i]);
    fmq_client_msg_close(&m);
  }
}

static void test_parse_honours_len(void **state) {
  static const char text[] = "{\"type\":\"ping\"}garbage";
  size_t json_len = strlen("{\"type\":\"ping\"}");
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  assert_int_equal(fmq_client_parse((const uint8_t *)text, json_len, &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_PING);
  fmq_client_msg_close(&m);

  assert_int_equal(fmq_client_parse((const uint8_t *)text, json_len - 1, &m, &err), -1);
  assert_int_equal(err.code, FMQ_CE_BAD_JSON);
  fmq_client_msg_close(&m);

  assert_int_equal(fmq_client_parse((const uint8_t *)text, sizeof(text) - 1, &m, &err), -1);
  assert_int_equal(err.code, FMQ_CE_BAD_JSON);
  fmq_client_msg_close(&m);

  /* A raw NUL byte after the object is part of the message, not its end. */
  assert_int_equal(fmq_client_parse((const uint8_t *)"{\"type\":\"ping\"}\0", json_len + 1, &m, &err),
                   -1);
  assert_int_equal(err.code, FMQ_CE_BAD_JSON);
  fmq_client_msg_close(&m);
}

static void test_id_echo(void **state) {
  (void)state;
  expect_pong_for("{\"type\":\"ping\",\"id\":\"abc/1\"}", "{\"type\":\"pong\",\"id\":\"abc/1\"}");
  expect_pong_for("{\"id\":\"\",\"type\":\"ping\"}", "{\"type\":\"pong\",\"id\":\"\"}");
  expect_pong_for("{\"type\":\"ping\",\"id\":42}", "{\"type\":\"pong\",\"id\":42}");
  expect_pong_for("{\"type\":\"ping\",\"id\":-7}", "{\"type\":\"pong\",\"id\":-7}");
  expect_pong_for("{\"type\":\"ping\",\"id\":9007199254740993}",
                  "{\"type\":\"pong\",\"id\":9007199254740993}");
  expect_pong_for("{\"type\":\"ping\",\"id\":1.5}", "{\"type\":\"pong\",\"id\":1.5}");
  expect_pong_for("{\"type\":\"ping\",\"id\":-0.25}", "{\"type\":\"pong\",\"id\":-0.25}");
}

static void test_id_kinds(void **state) {
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  assert_int_equal(parse_str("{\"type\":\"x\",\"id\":\"s\"}", &m, &err), 0);
  assert_true(json_is_string(m.id));
  assert_string_equal(json_string_value(m.id), "s");
  assert_ptr_equal(m.id, json_object_get(m.root, "id"));
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str("{\"type\":\"x\",\"id\":12}", &m, &err), 0);
  assert_true(json_is_integer(m.id));
  assert_int_equal(json_integer_value(m.id), 12);
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str("{\"type\":\"x\",\"id\":2.5}", &m, &err), 0);
  assert_true(json_is_real(m.id));
  assert_true(json_real_value(m.id) == 2.5);
  fmq_client_msg_close(&m);
}

static void test_id_bad_types(void **state) {
  static const char *const msgs[] = {
      "{\"type\":\"ping\",\"id\":{}}",    "{\"type\":\"ping\",\"id\":{\"a\":1}}",
      "{\"type\":\"ping\",\"id\":[]}",    "{\"type\":\"ping\",\"id\":[1]}",
      "{\"type\":\"ping\",\"id\":true}",  "{\"type\":\"ping\",\"id\":false}",
      "{\"type\":\"ping\",\"id\":null}",  "{\"id\":null}",
  };

  (void)state;
  for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
    expect_refused(msgs[i], FMQ_CE_BAD_REQUEST, "\"id\" must be a string or a number");
}

static void test_type_bad(void **state) {
  static const char *const msgs[] = {
      "{}",
      "{\"id\":\"a\"}",
      "{\"Type\":\"ping\"}",
      "{\"type\":1}",
      "{\"type\":1.5}",
      "{\"type\":null}",
      "{\"type\":true}",
      "{\"type\":[\"ping\"]}",
      "{\"type\":{\"ping\":1}}",
  };
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
    assert_int_equal(parse_str(msgs[i], &m, &err), -1);
    assert_int_equal(err.code, FMQ_CE_BAD_REQUEST);
    assert_string_equal(err.message, "\"type\" is missing or not a string");
    assert_null(m.type);
    fmq_client_msg_close(&m);
  }
}

/* An error after the id was found still carries it, for the reply. */
static void test_error_keeps_id(void **state) {
  struct fmq_client_msg m;
  struct fmq_client_error err;
  struct fmq_buf *b;

  (void)state;
  assert_int_equal(parse_str("{\"id\":7}", &m, &err), -1);
  assert_int_equal(err.code, FMQ_CE_BAD_REQUEST);
  assert_true(json_is_integer(m.id));
  assert_int_equal(json_integer_value(m.id), 7);
  b = fmq_client_encode_error(err.code, err.message, m.id);
  expect_frame(b, "{\"type\":\"error\",\"code\":\"bad_request\","
                  "\"message\":\"\\\"type\\\" is missing or not a string\",\"id\":7}");
  fmq_buf_unref(b);
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str("{\"type\":false,\"id\":\"q1\"}", &m, &err), -1);
  assert_int_equal(err.code, FMQ_CE_BAD_REQUEST);
  assert_string_equal(json_string_value(m.id), "q1");
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str("{\"type\":[],\"id\":0.5}", &m, &err), -1);
  assert_true(json_is_real(m.id));
  fmq_client_msg_close(&m);
}

static void test_not_object(void **state) {
  static const char *const msgs[] = {"[]", "[{\"type\":\"ping\"}]", "42", "-1.5", "\"ping\"",
                                     "null", "true"};

  (void)state;
  for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
    expect_refused(msgs[i], FMQ_CE_BAD_REQUEST, "message is not a JSON object");
}

static void test_bad_json(void **state) {
  static const char *const msgs[] = {
      "",
      " ",
      "{",
      "{\"type\":\"ping\"",
      "{\"type\":\"ping\"} {}",
      "{\"type\":\"ping\"}x",
      "{\"type\":\"ping\",}",
      "{'type':'ping'}",
      "{type:\"ping\"}",
      "ping",
      "{\"type\":\"ping\",\"id\":01}",
      "{\"type\":\"ping\",\"id\":NaN}",
      /* duplicate keys, also nested and also for id */
      "{\"type\":\"ping\",\"type\":\"ping\"}",
      "{\"type\":\"ping\",\"id\":1,\"id\":2}",
      "{\"type\":\"ping\",\"a\":{\"b\":1,\"b\":1}}",
      "{\"type\":\"publish\",\"topic\":\"t\",\"payload\":1,\"payload\":2}",
      /* invalid UTF-8 inside strings: a stray byte, overlong '/', a surrogate, truncated */
      "{\"type\":\"p\xffing\"}",
      "{\"type\":\"ping\",\"id\":\"\xc0\xaf\"}",
      "{\"type\":\"ping\",\"id\":\"\xed\xa0\x80\"}",
      "{\"type\":\"ping\",\"id\":\"\xe2\x82\"}",
      /* a lone surrogate escape; NUL in a key (NUL in a value is allowed) */
      "{\"type\":\"ping\",\"id\":\"\\ud800\"}",
      "{\"type\":\"publish\",\"topic\":\"t\",\"payload\":\"\\udc00\"}",
      "{\"type\":\"ping\",\"ty\\u0000pe\":1}",
  };

  (void)state;
  for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
    expect_refused(msgs[i], FMQ_CE_BAD_JSON, "message is not valid JSON");
}

static void test_bad_json_raw_nul(void **state) {
  static const char text[] = "{\"type\":\"pi\0ng\"}";
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  assert_int_equal(fmq_client_parse((const uint8_t *)text, sizeof(text) - 1, &m, &err), -1);
  assert_int_equal(err.code, FMQ_CE_BAD_JSON);
  fmq_client_msg_close(&m);
}

static void test_msg_close(void **state) {
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  memset(&m, 0, sizeof(m));
  fmq_client_msg_close(&m);
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str("{", &m, &err), -1);
  fmq_client_msg_close(&m);
  assert_int_equal(parse_str("[1]", &m, &err), -1);
  fmq_client_msg_close(&m);
  fmq_client_msg_close(&m);

  /* The same struct is reused for the next message. */
  assert_int_equal(parse_str("{\"type\":\"ping\",\"id\":1}", &m, &err), 0);
  fmq_client_msg_close(&m);
  assert_null(m.root);
  assert_int_equal(parse_str("{\"type\":\"sub\"}", &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_OTHER);
  assert_null(m.id);
  fmq_client_msg_close(&m);
}

static void test_error_names(void **state) {
  static const char *const names[] = {"bad_json",  "bad_request",  "unknown_type",
                                      "invalid_topic", "forbidden", "too_many_subscriptions",
                                      "rate_limited", "unavailable", "internal"};

  (void)state;
  assert_int_equal(sizeof(names) / sizeof(names[0]), FMQ_CE_INTERNAL + 1);
  for (int c = FMQ_CE_BAD_JSON; c <= FMQ_CE_INTERNAL; c++)
    assert_string_equal(fmq_client_error_name((enum fmq_client_error_code)c), names[c]);
}

static void test_encode_pong(void **state) {
  struct fmq_buf *b;

  (void)state;
  b = fmq_client_encode_pong(NULL);
  expect_frame(b, "{\"type\":\"pong\"}");
  assert_int_equal(b->len, 2 + 15);
  assert_int_equal(b->data[1], 15);
  fmq_buf_unref(b);
}

static void test_encode_error(void **state) {
  json_t *id = json_string("r-1");
  struct fmq_buf *b;
  char want[256];

  (void)state;
  b = fmq_client_encode_error(FMQ_CE_UNKNOWN_TYPE, "unknown message type", id);
  expect_frame(b, "{\"type\":\"error\",\"code\":\"unknown_type\","
                  "\"message\":\"unknown message type\",\"id\":\"r-1\"}");
  fmq_buf_unref(b);

  b = fmq_client_encode_error(FMQ_CE_BAD_JSON, "message is not valid JSON", NULL);
  expect_frame(b, "{\"type\":\"error\",\"code\":\"bad_json\","
                  "\"message\":\"message is not valid JSON\"}");
  fmq_buf_unref(b);

  /* '/' stays as is, UTF-8 is not escaped, quotes and control bytes are. */
  b = fmq_client_encode_error(FMQ_CE_INVALID_TOPIC, "a/b \"c\" \xc3\xa9\n", NULL);
  expect_frame(b, "{\"type\":\"error\",\"code\":\"invalid_topic\","
                  "\"message\":\"a/b \\\"c\\\" \xc3\xa9\\n\"}");
  fmq_buf_unref(b);

  for (int c = FMQ_CE_BAD_JSON; c <= FMQ_CE_INTERNAL; c++) {
    b = fmq_client_encode_error((enum fmq_client_error_code)c, "m", id);
    snprintf(want, sizeof(want), "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"m\",\"id\":\"r-1\"}",
             fmq_client_error_name((enum fmq_client_error_code)c));
    expect_frame(b, want);
    fmq_buf_unref(b);
  }
  json_decref(id);
}

/* Encoders borrow: neither id nor obj loses or keeps a reference. */
static void test_encode_borrows(void **state) {
  json_t *id = json_integer(5);
  json_t *obj = json_pack("{s:s}", "type", "status");
  struct fmq_buf *b;

  (void)state;
  assert_int_equal(id->refcount, 1);
  b = fmq_client_encode_pong(id);
  fmq_buf_unref(b);
  b = fmq_client_encode_error(FMQ_CE_INTERNAL, "x", id);
  fmq_buf_unref(b);
  assert_int_equal(id->refcount, 1);

  b = fmq_client_frame_json(obj);
  expect_frame(b, "{\"type\":\"status\"}");
  fmq_buf_unref(b);
  assert_int_equal(obj->refcount, 1);
  json_decref(obj);
  json_decref(id);
}

/* Builds {"type":"x","s":"aaa..."} whose compact JSON is exactly total bytes,
 * frames it, and checks the length field's bytes. */
static void check_frame_size(size_t total, const uint8_t *len_bytes, size_t len_bytes_n) {
  static const char prefix[] = "{\"type\":\"x\",\"s\":\"";
  size_t slen = total - (sizeof(prefix) - 1) - 2;
  char *s = malloc(slen + 1);
  char *want = malloc(total + 1);
  json_t *obj;
  struct fmq_buf *b;

  assert_non_null(s);
  assert_non_null(want);
  memset(s, 'a', slen);
  s[slen] = '\0';
  obj = json_pack("{s:s, s:s}", "type", "x", "s", s);
  assert_non_null(obj);
  snprintf(want, total + 1, "%s%s\"}", prefix, s);
  assert_int_equal(strlen(want), total);

  b = fmq_client_frame_json(obj);
  expect_frame(b, want);
  assert_int_equal(b->len, 1 + len_bytes_n + total);
  assert_memory_equal(b->data + 1, len_bytes, len_bytes_n);

  fmq_buf_unref(b);
  json_decref(obj);
  free(want);
  free(s);
}

static void test_frame_json_lengths(void **state) {
  (void)state;
  check_frame_size(125, (const uint8_t[]){125}, 1);
  check_frame_size(126, (const uint8_t[]){126, 0x00, 0x7e}, 3);
  check_frame_size(300, (const uint8_t[]){126, 0x01, 0x2c}, 3);
  check_frame_size(65535, (const uint8_t[]){126, 0xff, 0xff}, 3);
  check_frame_size(65536, (const uint8_t[]){127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, 9);
  check_frame_size(200000, (const uint8_t[]){127, 0, 0, 0, 0, 0, 0x03, 0x0d, 0x40}, 9);
}

static void test_buf_refcount(void **state) {
  struct fmq_buf *b;

  (void)state;
  b = fmq_client_encode_pong(NULL);
  assert_non_null(b);
  assert_int_equal(atomic_load(&b->refs), 1);
  assert_ptr_equal(fmq_buf_ref(b), b);
  assert_ptr_equal(fmq_buf_ref(b), b);
  assert_int_equal(atomic_load(&b->refs), 3);
  fmq_buf_unref(b);
  fmq_buf_unref(b);
  assert_int_equal(atomic_load(&b->refs), 1);
  /* Still alive and intact (ASan would report a use after free otherwise). */
  expect_frame(b, "{\"type\":\"pong\"}");
  fmq_buf_unref(b);
}

/* A string literal that may hold NUL bytes, as pointer and length. */
#define LIT(s) (s), sizeof(s) - 1

struct accepted {
  const char *json;
  enum fmq_client_kind kind;
  const char *topic;
  int qos, retain;
};

static void test_subscribe_unsubscribe_accepted(void **state) {
  static const struct accepted cases[] = {
      {"{\"type\":\"subscribe\",\"topic\":\"a/b\"}", FMQ_CLIENT_SUBSCRIBE, "a/b", 0, 0},
      {"{\"type\":\"subscribe\",\"topic\":\"a/b\",\"qos\":0}", FMQ_CLIENT_SUBSCRIBE, "a/b", 0, 0},
      {"{\"qos\":1,\"topic\":\"devices/+/temp\",\"type\":\"subscribe\"}", FMQ_CLIENT_SUBSCRIBE,
       "devices/+/temp", 1, 0},
      {"{\"type\":\"subscribe\",\"topic\":\"#\",\"qos\":2}", FMQ_CLIENT_SUBSCRIBE, "#", 2, 0},
      {"{\"type\":\"subscribe\",\"topic\":\"+\",\"qos\":-0}", FMQ_CLIENT_SUBSCRIBE, "+", 0, 0},
      {"{\"type\":\"subscribe\",\"topic\":\"a//b/\"}", FMQ_CLIENT_SUBSCRIBE, "a//b/", 0, 0},
      {"{\"type\":\"subscribe\",\"topic\":\"$SYS/#\"}", FMQ_CLIENT_SUBSCRIBE, "$SYS/#", 0, 0},
      {"{\"type\":\"subscribe\",\"topic\":\"caf\\u00e9/+\"}", FMQ_CLIENT_SUBSCRIBE,
       "caf\xc3\xa9/+", 0, 0},
      /* Fields subscribe does not use are ignored, even ill-typed ones. */
      {"{\"type\":\"subscribe\",\"topic\":\"x\",\"retain\":\"no\",\"payload\":1}",
       FMQ_CLIENT_SUBSCRIBE, "x", 0, 0},
      {"{\"type\":\"unsubscribe\",\"topic\":\"a/#\"}", FMQ_CLIENT_UNSUBSCRIBE, "a/#", 0, 0},
      {"{\"type\":\"unsubscribe\",\"topic\":\"a/b\",\"qos\":\"x\"}", FMQ_CLIENT_UNSUBSCRIBE,
       "a/b", 0, 0},
  };
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct accepted *c = &cases[i];
    json_t *topic;

    assert_int_equal(parse_str(c->json, &m, &err), 0);
    assert_int_equal(m.kind, c->kind);
    assert_string_equal(m.topic, c->topic);
    assert_int_equal(m.topic_len, strlen(c->topic));
    topic = json_object_get(m.root, "topic");
    assert_ptr_equal(m.topic, json_string_value(topic));
    assert_int_equal(m.qos, c->qos);
    assert_int_equal(m.retain, 0);
    assert_null(m.payload);
    assert_null(m.payload_owned);
    assert_null(m.topic_owned);
    fmq_client_msg_close(&m);
  }
}

struct payload_case {
  const char *json;
  const char *payload;
  size_t payload_len;
  int owned; /* 1: a new buffer (JSON text, base64), 0: borrowed from root */
};

#define PUB(fields) "{\"type\":\"publish\",\"topic\":\"t/1\"," fields "}"

static void test_publish_payload_forms(void **state) {
  static const struct payload_case cases[] = {
      {PUB("\"payload\":\"hello\""), LIT("hello"), 0},
      {PUB("\"payload\":\"\""), LIT(""), 0},
      {PUB("\"payload\":\"a\\u0000b\""), LIT("a\0b"), 0},
      {PUB("\"payload\":\"\\u0000\""), LIT("\0"), 0},
      {PUB("\"payload\":\"caf\\u00e9 \\ud83d\\ude00\""), LIT("caf\xc3\xa9 \xf0\x9f\x98\x80"), 0},
      {PUB("\"payload\":\"\xe2\x82\xac \\\"q\\\" \\n\""), LIT("\xe2\x82\xac \"q\" \n"), 0},
      {PUB("\"payload\":\"{\\\"a\\\":1}\""), LIT("{\"a\":1}"), 0},
      {PUB("\"payload\":42"), LIT("42"), 1},
      {PUB("\"payload\":-7"), LIT("-7"), 1},
      {PUB("\"payload\":-1.5"), LIT("-1.5"), 1},
      {PUB("\"payload\":1.0"), LIT("1.0"), 1},
      {PUB("\"payload\":0.1"), LIT("0.1"), 1},
      {PUB("\"payload\":{\"temp\":21.3}"), LIT("{\"temp\":21.3}"), 1},
      {PUB("\"payload\":0.30000000000000004"), LIT("0.30000000000000004"), 1},
      {PUB("\"payload\":1e20"), LIT("1e20"), 1},
      {PUB("\"payload\":{ \"x\" : [1, 2, null, true], \"s\" : \"a/b\" }"),
       LIT("{\"x\":[1,2,null,true],\"s\":\"a/b\"}"), 1},
      {PUB("\"payload\":{\"b\":1,\"a\":2}"), LIT("{\"b\":1,\"a\":2}"), 1},
      {PUB("\"payload\":{}"), LIT("{}"), 1},
      {PUB("\"payload\":[]"), LIT("[]"), 1},
      {PUB("\"payload\":[\"x\\u0000\",\"\\u00e9\"]"), LIT("[\"x\\u0000\",\"\xc3\xa9\"]"), 1},
      {PUB("\"payload\":null"), LIT("null"), 1},
      {PUB("\"payload\":true"), LIT("true"), 1},
      {PUB("\"payload\":false"), LIT("false"), 1},
      {PUB("\"payload_b64\":\"\""), LIT(""), 1},
      {PUB("\"payload_b64\":\"QQ==\""), LIT("A"), 1},
      {PUB("\"payload_b64\":\"QUI=\""), LIT("AB"), 1},
      {PUB("\"payload_b64\":\"QUJD\""), LIT("ABC"), 1},
      {PUB("\"payload_b64\":\"QUJDRA==\""), LIT("ABCD"), 1},
      {PUB("\"payload_b64\":\"AAEC/w==\""), LIT("\x00\x01\x02\xff"), 1},
      {PUB("\"payload_b64\":\"+/+/\""), LIT("\xfb\xff\xbf"), 1},
      {PUB("\"payload_b64\":\"AAAA\""), LIT("\0\0\0"), 1},
      /* '/' may be escaped in JSON; the string is what counts. */
      {PUB("\"payload_b64\":\"\\/w==\""), LIT("\xff"), 1},
      /* Non-zero bits under the padding are tolerated (RFC 4648 3.5). */
      {PUB("\"payload_b64\":\"QR==\""), LIT("A"), 1},
  };
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct payload_case *c = &cases[i];

    assert_int_equal(parse_str(c->json, &m, &err), 0);
    assert_int_equal(m.kind, FMQ_CLIENT_PUBLISH);
    assert_string_equal(m.topic, "t/1");
    assert_non_null(m.payload);
    assert_int_equal(m.payload_len, c->payload_len);
    assert_memory_equal(m.payload, c->payload, c->payload_len);
    if (c->owned) {
      assert_ptr_equal(m.payload, m.payload_owned);
    } else {
      assert_null(m.payload_owned);
      assert_ptr_equal(m.payload, json_string_value(json_object_get(m.root, "payload")));
    }
    assert_int_equal(m.qos, 0);
    assert_int_equal(m.retain, 0);
    fmq_client_msg_close(&m);
    assert_null(m.payload_owned);
  }
}

static void test_publish_qos_retain(void **state) {
  static const struct accepted cases[] = {
      {PUB("\"payload\":\"x\""), FMQ_CLIENT_PUBLISH, "t/1", 0, 0},
      {PUB("\"payload\":\"x\",\"qos\":0,\"retain\":false"), FMQ_CLIENT_PUBLISH, "t/1", 0, 0},
      {PUB("\"payload\":\"x\",\"qos\":1"), FMQ_CLIENT_PUBLISH, "t/1", 1, 0},
      {PUB("\"payload\":\"x\",\"qos\":2,\"retain\":true"), FMQ_CLIENT_PUBLISH, "t/1", 2, 1},
      {PUB("\"payload_b64\":\"\",\"retain\":true"), FMQ_CLIENT_PUBLISH, "t/1", 0, 1},
      {"{\"retain\":true,\"qos\":1,\"payload\":1,\"topic\":\"$x/y z\",\"type\":\"publish\"}",
       FMQ_CLIENT_PUBLISH, "$x/y z", 1, 1},
  };
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(parse_str(cases[i].json, &m, &err), 0);
    assert_int_equal(m.kind, FMQ_CLIENT_PUBLISH);
    assert_string_equal(m.topic, cases[i].topic);
    assert_int_equal(m.qos, cases[i].qos);
    assert_int_equal(m.retain, cases[i].retain);
    fmq_client_msg_close(&m);
  }
}

struct refusal {
  const char *json;
  enum fmq_client_error_code code;
  const char *message;
};

#define E_TOPIC_MISSING FMQ_CE_BAD_REQUEST, "\"topic\" is missing or not a string"
#define E_FILTER FMQ_CE_INVALID_TOPIC, "topic is not a valid MQTT topic filter"
#define E_NAME FMQ_CE_INVALID_TOPIC, "topic is not a valid MQTT topic name"
#define E_QOS FMQ_CE_BAD_REQUEST, "\"qos\" must be 0, 1 or 2"
#define E_RETAIN FMQ_CE_BAD_REQUEST, "\"retain\" must be true or false"
#define E_ONE_PAYLOAD \
  FMQ_CE_BAD_REQUEST, "exactly one of \"payload\" and \"payload_b64\" is required"
#define E_B64_TYPE FMQ_CE_BAD_REQUEST, "\"payload_b64\" is not a string"
#define E_B64 FMQ_CE_BAD_REQUEST, "\"payload_b64\" is not valid base64"
#define SUB(fields) "{\"type\":\"subscribe\"," fields "}"
#define UNSUB(fields) "{\"type\":\"unsubscribe\"," fields "}"

static const struct refusal refusals[] = {
    /* subscribe: topic */
    {"{\"type\":\"subscribe\"}", E_TOPIC_MISSING},
    {SUB("\"topic\":1"), E_TOPIC_MISSING},
    {SUB("\"topic\":null"), E_TOPIC_MISSING},
    {SUB("\"topic\":[\"a\"]"), E_TOPIC_MISSING},
    {SUB("\"topic\":{\"a\":1}"), E_TOPIC_MISSING},
    {SUB("\"topic\":true"), E_TOPIC_MISSING},
    {SUB("\"Topic\":\"a\""), E_TOPIC_MISSING},
    {SUB("\"topic\":\"\""), E_FILTER},
    {SUB("\"topic\":\"a/#/b\""), E_FILTER},
    {SUB("\"topic\":\"a#\""), E_FILTER},
    {SUB("\"topic\":\"a+\""), E_FILTER},
    {SUB("\"topic\":\"a/b+\""), E_FILTER},
    {SUB("\"topic\":\"#/a\""), E_FILTER},
    {SUB("\"topic\":\"a\\u0000b\""), E_FILTER},
    {SUB("\"topic\":\"\\u0000\""), E_FILTER},
    /* subscribe: qos */
    {SUB("\"topic\":\"a\",\"qos\":3"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":-1"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":1.0"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":0.0"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":1e0"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":2.5"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":\"1\""), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":true"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":null"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":[1]"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":4294967297"), E_QOS},
    {SUB("\"topic\":\"a\",\"qos\":-9223372036854775808"), E_QOS},
    /* subscribe: the topic is judged before the qos */
    {SUB("\"qos\":3"), E_TOPIC_MISSING},
    {SUB("\"topic\":\"a/#/b\",\"qos\":3"), E_FILTER},
    /* unsubscribe */
    {"{\"type\":\"unsubscribe\"}", E_TOPIC_MISSING},
    {UNSUB("\"topic\":5"), E_TOPIC_MISSING},
    {UNSUB("\"topic\":\"\""), E_FILTER},
    {UNSUB("\"topic\":\"a/#/b\""), E_FILTER},
    {UNSUB("\"topic\":\"a\\u0000\""), E_FILTER},
    /* publish: topic */
    {"{\"type\":\"publish\",\"payload\":\"x\"}", E_TOPIC_MISSING},
    {"{\"type\":\"publish\",\"topic\":1,\"payload\":\"x\"}", E_TOPIC_MISSING},
    {"{\"type\":\"publish\",\"topic\":\"a/+\",\"payload\":\"x\"}", E_NAME},
    {"{\"type\":\"publish\",\"topic\":\"#\",\"payload\":\"x\"}", E_NAME},
    {"{\"type\":\"publish\",\"topic\":\"a/#\",\"payload\":\"x\"}", E_NAME},
    {"{\"type\":\"publish\",\"topic\":\"\",\"payload\":\"x\"}", E_NAME},
    {"{\"type\":\"publish\",\"topic\":\"a\\u0000\",\"payload\":\"x\"}", E_NAME},
    /* publish: the topic is judged before everything else */
    {"{\"type\":\"publish\",\"qos\":7}", E_TOPIC_MISSING},
    {"{\"type\":\"publish\",\"topic\":\"a/+\"}", E_NAME},
    {"{\"type\":\"publish\",\"topic\":\"a/+\",\"payload_b64\":\"!\",\"retain\":1}", E_NAME},
    /* publish: payload */
    {PUB("\"qos\":1"), E_ONE_PAYLOAD},
    {PUB("\"payload\":\"x\",\"payload_b64\":\"QQ==\""), E_ONE_PAYLOAD},
    {PUB("\"payload\":null,\"payload_b64\":null"), E_ONE_PAYLOAD},
    {PUB("\"Payload\":\"x\""), E_ONE_PAYLOAD},
    {PUB("\"payload_b64\":1"), E_B64_TYPE},
    {PUB("\"payload_b64\":null"), E_B64_TYPE},
    {PUB("\"payload_b64\":[]"), E_B64_TYPE},
    {PUB("\"payload_b64\":\"Q\""), E_B64},
    {PUB("\"payload_b64\":\"QQ\""), E_B64},
    {PUB("\"payload_b64\":\"QQ=\""), E_B64},
    {PUB("\"payload_b64\":\"QUJ\""), E_B64},
    {PUB("\"payload_b64\":\"QUJDR\""), E_B64},
    {PUB("\"payload_b64\":\"QUJD=\""), E_B64},
    {PUB("\"payload_b64\":\"Q===\""), E_B64},
    {PUB("\"payload_b64\":\"====\""), E_B64},
    {PUB("\"payload_b64\":\"QQ=A\""), E_B64},
    {PUB("\"payload_b64\":\"Q=QQ\""), E_B64},
    {PUB("\"payload_b64\":\"=QQQ\""), E_B64},
    {PUB("\"payload_b64\":\"QQ==QQ==\""), E_B64},
    {PUB("\"payload_b64\":\"QUJD====\""), E_B64},
    {PUB("\"payload_b64\":\" QQ=\""), E_B64},
    {PUB("\"payload_b64\":\"QQ= \""), E_B64},
    {PUB("\"payload_b64\":\"    QUJD\""), E_B64},
    {PUB("\"payload_b64\":\"QUJD    \""), E_B64},
    {PUB("\"payload_b64\":\"\\tQUJDQUJ\""), E_B64},
    {PUB("\"payload_b64\":\"QUJD\\r\\n\\r\\n\""), E_B64},
    {PUB("\"payload_b64\":\"QU\\nJ\""), E_B64},
    {PUB("\"payload_b64\":\"QUJ-\""), E_B64},
    {PUB("\"payload_b64\":\"QUJ_\""), E_B64},
    {PUB("\"payload_b64\":\"QUJ.\""), E_B64},
    {PUB("\"payload_b64\":\"QUJ\\u0000\""), E_B64},
    {PUB("\"payload_b64\":\"QUJD\\u0000\\u0000\\u0000\\u0000\""), E_B64},
    {PUB("\"payload_b64\":\"QU\\u00e9\""), E_B64},
    /* publish: qos and retain */
    {PUB("\"payload\":\"x\",\"qos\":3"), E_QOS},
    {PUB("\"payload\":\"x\",\"qos\":\"1\""), E_QOS},
    {PUB("\"payload\":\"x\",\"qos\":1.0"), E_QOS},
    {PUB("\"payload\":\"x\",\"qos\":false"), E_QOS},
    {PUB("\"payload\":\"x\",\"retain\":1"), E_RETAIN},
    {PUB("\"payload\":\"x\",\"retain\":0"), E_RETAIN},
    {PUB("\"payload\":\"x\",\"retain\":\"true\""), E_RETAIN},
    {PUB("\"payload\":\"x\",\"retain\":null"), E_RETAIN},
    {PUB("\"payload\":\"x\",\"retain\":[true]"), E_RETAIN},
    /* publish: payload, then qos, then retain */
    {PUB("\"qos\":3,\"retain\":1"), E_ONE_PAYLOAD},
    {PUB("\"payload_b64\":\"x\",\"qos\":3"), E_B64},
    {PUB("\"payload\":\"x\",\"qos\":3,\"retain\":1"), E_QOS},
};

static void test_field_refusals(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
    expect_refused(refusals[i].json, refusals[i].code, refusals[i].message);
}

/* A refused request of a known type still says what it was, and no topic. */
static void test_field_refusal_state(void **state) {
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  assert_int_equal(parse_str(SUB("\"topic\":\"a/#/b\",\"id\":\"s1\""), &m, &err), -1);
  assert_int_equal(err.code, FMQ_CE_INVALID_TOPIC);
  assert_int_equal(m.kind, FMQ_CLIENT_SUBSCRIBE);
  assert_null(m.topic);
  assert_string_equal(json_string_value(m.id), "s1");
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str(PUB("\"payload\":{},\"retain\":1,\"id\":9"), &m, &err), -1);
  assert_int_equal(err.code, FMQ_CE_BAD_REQUEST);
  assert_int_equal(m.kind, FMQ_CLIENT_PUBLISH);
  assert_int_equal(json_integer_value(m.id), 9);
  fmq_client_msg_close(&m);
  assert_null(m.payload_owned);

  assert_int_equal(parse_str(PUB("\"payload_b64\":\"QUJD====\""), &m, &err), -1);
  fmq_client_msg_close(&m);
}

/* Topics up to 65535 bytes are valid, in subscribe and publish alike. */
static void test_topic_length_limit(void **state) {
  static const char *const fmts[] = {"{\"type\":\"subscribe\",\"topic\":\"%s\"}",
                                     "{\"type\":\"publish\",\"topic\":\"%s\",\"payload\":\"\"}"};
  size_t cap = 65536 + 128;
  char *topic = malloc(65537);
  char *text = malloc(cap);
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  assert_non_null(topic);
  assert_non_null(text);
  for (size_t f = 0; f < 2; f++) {
    memset(topic, 'a', 65536);
    topic[65535] = '\0';
    snprintf(text, cap, fmts[f], topic);
    assert_int_equal(parse_str(text, &m, &err), 0);
    assert_int_equal(m.topic_len, 65535);
    fmq_client_msg_close(&m);

    topic[65535] = 'a';
    topic[65536] = '\0';
    snprintf(text, cap, fmts[f], topic);
    assert_int_equal(parse_str(text, &m, &err), -1);
    assert_int_equal(err.code, FMQ_CE_INVALID_TOPIC);
    fmq_client_msg_close(&m);
  }
  free(text);
  free(topic);
}

/* With JSON_ALLOW_NUL, NUL in a string value is data: a type holding one is
 * no known type, an id holding one is echoed whole. */
static void test_nul_in_strings(void **state) {
  struct fmq_client_msg m;
  struct fmq_client_error err;
  struct fmq_buf *b;

  (void)state;
  assert_int_equal(parse_str("{\"type\":\"ping\\u0000\"}", &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_OTHER);
  assert_int_equal(m.type_len, 5);
  assert_memory_equal(m.type, "ping\0", 5);
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str("{\"type\":\"subscribe\\u0000x\",\"topic\":\"#/a\"}", &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_OTHER);
  assert_int_equal(m.type_len, 11);
  assert_null(m.topic);
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str("{\"type\":\"\\u0000\"}", &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_OTHER);
  assert_int_equal(m.type_len, 1);
  fmq_client_msg_close(&m);

  assert_int_equal(parse_str("{\"type\":\"ping\",\"id\":\"a\\u0000b\"}", &m, &err), 0);
  assert_int_equal(m.kind, FMQ_CLIENT_PING);
  assert_int_equal(m.type_len, 4);
  assert_int_equal(json_string_length(m.id), 3);
  b = fmq_client_encode_pong(m.id);
  expect_frame(b, "{\"type\":\"pong\",\"id\":\"a\\u0000b\"}");
  fmq_buf_unref(b);
  fmq_client_msg_close(&m);
}

struct binary_case {
  const char *data;
  size_t len;
  int rc;
  enum fmq_client_error_code code;
  const char *message;
  const char *topic;
  size_t payload_len;
};

#define E_NO_LENGTH FMQ_CE_BAD_REQUEST, "binary message has no topic length"
#define E_SHORT FMQ_CE_BAD_REQUEST, "binary message is shorter than its topic length"

static void test_parse_binary(void **state) {
  static const struct binary_case cases[] = {
      {LIT("\x00\x03" "a/bhello"), 0, 0, NULL, "a/b", 5},
      {LIT("\x00\x03" "a/b"), 0, 0, NULL, "a/b", 0},
      {LIT("\x00\x01" "x\x00\xff\x80\x00"), 0, 0, NULL, "x", 4},
      {LIT("\x00\x06" "caf\xc3\xa9/{\"a\":1}"), 0, 0, NULL, "caf\xc3\xa9/", 7},
      {LIT("\x00\x04" "$x/yz"), 0, 0, NULL, "$x/y", 1},
      {LIT(""), -1, E_NO_LENGTH, NULL, 0},
      {LIT("\x00"), -1, E_NO_LENGTH, NULL, 0},
      {LIT("\x00\x04" "abc"), -1, E_SHORT, NULL, 0},
      {LIT("\x01\x00" "abc"), -1, E_SHORT, NULL, 0},
      {LIT("\xff\xff"), -1, E_SHORT, NULL, 0},
      {LIT("\x00\x00"), -1, E_NAME, NULL, 0},
      {LIT("\x00\x00" "payload"), -1, E_NAME, NULL, 0},
      {LIT("\x00\x02" "\xc3\x28"), -1, E_NAME, NULL, 0},
      {LIT("\x00\x02" "a\xc3" "\xa9"), -1, E_NAME, NULL, 0},
      {LIT("\x00\x03" "\xed\xa0\x80"), -1, E_NAME, NULL, 0},
      {LIT("\x00\x03" "a/+x"), -1, E_NAME, NULL, 0},
      {LIT("\x00\x01" "#"), -1, E_NAME, NULL, 0},
      {LIT("\x00\x03" "a\x00" "b"), -1, E_NAME, NULL, 0},
  };
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct binary_case *c = &cases[i];
    const uint8_t *data = (const uint8_t *)c->data;
    size_t topic_len;

    assert_int_equal(fmq_client_parse_binary(data, c->len, &m, &err), c->rc);
    assert_int_equal(m.kind, FMQ_CLIENT_PUBLISH);
    assert_string_equal(m.type, "publish");
    assert_int_equal(m.type_len, 7);
    assert_null(m.root);
    assert_null(m.id);
    if (c->rc != 0) {
      assert_int_equal(err.code, c->code);
      assert_string_equal(err.message, c->message);
      assert_null(m.topic);
      fmq_client_msg_close(&m);
      continue;
    }
    topic_len = strlen(c->topic);
    assert_ptr_equal(m.topic, m.topic_owned);
    assert_int_equal(m.topic_len, topic_len);
    assert_string_equal(m.topic, c->topic);
    assert_ptr_equal(m.payload, data + 2 + topic_len);
    assert_int_equal(m.payload_len, c->payload_len);
    assert_int_equal(m.qos, 0);
    assert_int_equal(m.retain, 0);
    assert_null(m.payload_owned);
    fmq_client_msg_close(&m);
    assert_null(m.topic_owned);
  }
}

/* The topic length is big-endian, and the topic is a copy. */
static void test_parse_binary_long_topic(void **state) {
  uint8_t frame[2 + 300 + 3];
  struct fmq_client_msg m;
  struct fmq_client_error err;

  (void)state;
  frame[0] = 0x01;
  frame[1] = 0x2c;
  memset(frame + 2, 't', 300);
  memcpy(frame + 302, "xyz", 3);
  assert_int_equal(fmq_client_parse_binary(frame, sizeof(frame), &m, &err), 0);
  assert_int_equal(m.topic_len, 300);
  assert_int_equal(strlen(m.topic), 300);
  assert_int_equal(m.payload_len, 3);
  assert_memory_equal(m.payload, "xyz", 3);
  memset(frame + 2, 'u', 300);
  assert_int_equal(m.topic[0], 't');
  assert_int_equal(m.topic[299], 't');
  fmq_client_msg_close(&m);
}

static void test_encode_replies(void **state) {
  json_t *sid = json_string("s/1");
  json_t *nid = json_integer(42);
  struct fmq_buf *b;

  (void)state;
  b = fmq_client_encode_subscribed("devices/+/temp", 1, sid);
  expect_frame(b, "{\"type\":\"subscribed\",\"topic\":\"devices/+/temp\",\"qos\":1,\"id\":\"s/1\"}");
  fmq_buf_unref(b);
  b = fmq_client_encode_subscribed("#", 0, NULL);
  expect_frame(b, "{\"type\":\"subscribed\",\"topic\":\"#\",\"qos\":0}");
  fmq_buf_unref(b);
  b = fmq_client_encode_subscribed("caf\xc3\xa9", 2, nid);
  expect_frame(b, "{\"type\":\"subscribed\",\"topic\":\"caf\xc3\xa9\",\"qos\":2,\"id\":42}");
  fmq_buf_unref(b);

  b = fmq_client_encode_unsubscribed("a/#", sid);
  expect_frame(b, "{\"type\":\"unsubscribed\",\"topic\":\"a/#\",\"id\":\"s/1\"}");
  fmq_buf_unref(b);
  b = fmq_client_encode_unsubscribed("a/#", NULL);
  expect_frame(b, "{\"type\":\"unsubscribed\",\"topic\":\"a/#\"}");
  fmq_buf_unref(b);
  b = fmq_client_encode_unsubscribed_topics((const char *const[]){"s/42/#", "s/7/#"}, 2, nid);
  expect_frame(b, "{\"type\":\"unsubscribed\",\"topics\":[\"s/42/#\",\"s/7/#\"],\"id\":42}");
  fmq_buf_unref(b);
  b = fmq_client_encode_unsubscribed_topics(NULL, 0, NULL);
  expect_frame(b, "{\"type\":\"unsubscribed\",\"topics\":[]}");
  fmq_buf_unref(b);

  b = fmq_client_encode_puback(nid);
  expect_frame(b, "{\"type\":\"puback\",\"id\":42}");
  fmq_buf_unref(b);
  b = fmq_client_encode_puback(NULL);
  expect_frame(b, "{\"type\":\"puback\"}");
  fmq_buf_unref(b);

  b = fmq_client_encode_status(1);
  expect_frame(b, "{\"type\":\"status\",\"broker\":\"up\"}");
  fmq_buf_unref(b);
  b = fmq_client_encode_status(0);
  expect_frame(b, "{\"type\":\"status\",\"broker\":\"down\"}");
  fmq_buf_unref(b);

  assert_int_equal(sid->refcount, 1);
  assert_int_equal(nid->refcount, 1);
  json_decref(sid);
  json_decref(nid);
}

static void test_encode_message_exact(void **state) {
  struct fmq_buf *b;

  (void)state;
  b = fmq_client_encode_message("message", "a/b", (const uint8_t *)"hello", 5, 0, 0);
  expect_frame(b, "{\"type\":\"message\",\"topic\":\"a/b\",\"payload\":\"hello\",\"qos\":0,"
                  "\"retain\":false}");
  fmq_buf_unref(b);

  b = fmq_client_encode_message("sessionUpdate", "s/42", (const uint8_t *)"{\"a\":1}", 7, 2, 1);
  expect_frame(b, "{\"type\":\"sessionUpdate\",\"topic\":\"s/42\",\"payload\":\"{\\\"a\\\":1}\","
                  "\"qos\":2,\"retain\":true}");
  fmq_buf_unref(b);

  b = fmq_client_encode_message("message", "t", (const uint8_t *)"a\0b\n\xc3\xa9", 6, 1, 0);
  expect_frame(b, "{\"type\":\"message\",\"topic\":\"t\",\"payload\":\"a\\u0000b\\n\xc3\xa9\","
                  "\"qos\":1,\"retain\":false}");
  fmq_buf_unref(b);

  b = fmq_client_encode_message("message", "t", NULL, 0, 0, 0);
  expect_frame(b, "{\"type\":\"message\",\"topic\":\"t\",\"payload\":\"\",\"qos\":0,"
                  "\"retain\":false}");
  fmq_buf_unref(b);

  b = fmq_client_encode_message("message", "t", (const uint8_t *)"\xff", 1, 0, 0);
  expect_frame(b, "{\"type\":\"message\",\"topic\":\"t\",\"payload_b64\":\"/w==\",\"qos\":0,"
                  "\"retain\":false}");
  fmq_buf_unref(b);

  b = fmq_client_encode_message("message", "t", (const uint8_t *)"\xff\xfe", 2, 0, 0);
  expect_frame(b, "{\"type\":\"message\",\"topic\":\"t\",\"payload_b64\":\"//4=\",\"qos\":0,"
                  "\"retain\":false}");
  fmq_buf_unref(b);

  b = fmq_client_encode_message("message", "t", (const uint8_t *)"\xfb\xff\xbf", 3, 0, 0);
  expect_frame(b, "{\"type\":\"message\",\"topic\":\"t\",\"payload_b64\":\"+/+/\",\"qos\":0,"
                  "\"retain\":false}");
  fmq_buf_unref(b);
}

/* Encodes payload, checks the frame with jansson, and feeds the payload back
 * through a publish, which must yield the same bytes. */
static void expect_message_round_trip(const void *payload, size_t len, int as_text) {
  struct fmq_buf *b = fmq_client_encode_message("message", "r/t", payload, len, 1, 1);
  json_t *v = frame_json(b);
  json_t *text = json_object_get(v, "payload");
  json_t *b64 = json_object_get(v, "payload_b64");
  char *pub_text;
  struct fmq_client_msg m;
  struct fmq_client_error err;

  assert_int_equal(json_object_size(v), 5);
  assert_string_equal(json_string_value(json_object_get(v, "type")), "message");
  assert_string_equal(json_string_value(json_object_get(v, "topic")), "r/t");
  assert_int_equal(json_integer_value(json_object_get(v, "qos")), 1);
  assert_true(json_is_true(json_object_get(v, "retain")));
  if (as_text) {
    assert_null(b64);
    assert_true(json_is_string(text));
    assert_int_equal(json_string_length(text), len);
    assert_memory_equal(json_string_value(text), payload, len);
  } else {
    assert_null(text);
    assert_true(json_is_string(b64));
    assert_int_equal(json_string_length(b64), (len + 2) / 3 * 4);
  }

  json_object_set_new(v, "type", json_string("publish"));
  pub_text = json_dumps(v, JSON_COMPACT);
  assert_non_null(pub_text);
  assert_int_equal(parse_str(pub_text, &m, &err), 0);
  assert_int_equal(m.payload_len, len);
  if (len > 0)
    assert_memory_equal(m.payload, payload, len);
  fmq_client_msg_close(&m);
  free(pub_text);
  json_decref(v);
  fmq_buf_unref(b);
}

static void test_encode_message_round_trip(void **state) {
  static const struct {
    const char *bytes;
    size_t len;
    int as_text;
  } cases[] = {
      {LIT("plain text"), 1},
      {LIT(""), 1},
      {LIT("\0"), 1},
      {LIT("a\0b\0"), 1},
      {LIT("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 1},
      {LIT("\"\\/\b\f\n\r\t\x01\x1f\x7f"), 1},
      {LIT("\xff"), 0},
      {LIT("\x80\x80"), 0},
      {LIT("ab\xc3"), 0},
      {LIT("\xe2\x82"), 0},
      {LIT("\xc0\xaf"), 0},
      {LIT("\xed\xa0\x80"), 0},
      {LIT("\xf4\x90\x80\x80"), 0},
      {LIT("\x00\x01\x02\x03\xfe"), 0},
      {LIT("text then \xff"), 0},
  };
  uint8_t *big;

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    expect_message_round_trip(cases[i].bytes, cases[i].len, cases[i].as_text);

  /* Every byte value, and sizes that need the 16- and 64-bit frame lengths. */
  big = malloc(70000);
  assert_non_null(big);
  for (size_t i = 0; i < 70000; i++)
    big[i] = (uint8_t)(i * 7);
  expect_message_round_trip(big, 256, 0);
  expect_message_round_trip(big, 70000, 0);
  memset(big, 'x', 70000);
  expect_message_round_trip(big, 200, 1);
  expect_message_round_trip(big, 70000, 1);
  free(big);
}

/* A publish's payload delivered back as a message keeps its bytes. */
static void test_publish_to_message(void **state) {
  static const char *const pubs[] = {
      PUB("\"payload\":\"hi \\u0000 \\u00e9\""),
      PUB("\"payload\":{\"n\":[1,2.5]}"),
      PUB("\"payload_b64\":\"/w==\""),
      PUB("\"payload_b64\":\"AP8A/w==\""),
      PUB("\"payload_b64\":\"\""),
  };
  struct fmq_client_msg m, back;
  struct fmq_client_error err;

  (void)state;
  for (size_t i = 0; i < sizeof(pubs) / sizeof(pubs[0]); i++) {
    struct fmq_buf *b;
    json_t *v;
    char *text;

    assert_int_equal(parse_str(pubs[i], &m, &err), 0);
    b = fmq_client_encode_message("message", m.topic, m.payload, m.payload_len, m.qos, m.retain);
    v = frame_json(b);
    json_object_set_new(v, "type", json_string("publish"));
    text = json_dumps(v, JSON_COMPACT);
    assert_int_equal(parse_str(text, &back, &err), 0);
    assert_int_equal(back.payload_len, m.payload_len);
    assert_memory_equal(back.payload, m.payload, m.payload_len);
    fmq_client_msg_close(&back);
    free(text);
    json_decref(v);
    fmq_buf_unref(b);
    fmq_client_msg_close(&m);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_ping),
      cmocka_unit_test(test_parse_other_types),
      cmocka_unit_test(test_parse_honours_len),
      cmocka_unit_test(test_id_echo),
      cmocka_unit_test(test_id_kinds),
      cmocka_unit_test(test_id_bad_types),
      cmocka_unit_test(test_type_bad),
      cmocka_unit_test(test_error_keeps_id),
      cmocka_unit_test(test_not_object),
      cmocka_unit_test(test_bad_json),
      cmocka_unit_test(test_bad_json_raw_nul),
      cmocka_unit_test(test_msg_close),
      cmocka_unit_test(test_error_names),
      cmocka_unit_test(test_encode_pong),
      cmocka_unit_test(test_encode_error),
      cmocka_unit_test(test_encode_borrows),
      cmocka_unit_test(test_frame_json_lengths),
      cmocka_unit_test(test_buf_refcount),
      cmocka_unit_test(test_subscribe_unsubscribe_accepted),
      cmocka_unit_test(test_publish_payload_forms),
      cmocka_unit_test(test_publish_qos_retain),
      cmocka_unit_test(test_field_refusals),
      cmocka_unit_test(test_field_refusal_state),
      cmocka_unit_test(test_topic_length_limit),
      cmocka_unit_test(test_nul_in_strings),
      cmocka_unit_test(test_parse_binary),
      cmocka_unit_test(test_parse_binary_long_topic),
      cmocka_unit_test(test_encode_replies),
      cmocka_unit_test(test_encode_message_exact),
      cmocka_unit_test(test_encode_message_round_trip),
      cmocka_unit_test(test_publish_to_message),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
