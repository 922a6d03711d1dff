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

  assert_int_equal(parse_str(s, &m, &err), -1);
  assert_int_equal(err.code, code);
  assert_non_null(err.message);
  assert_string_equal(err.message, message);
  assert_null(m.id);
  fmq_client_msg_close(&m);
}

/* Checks that b holds exactly one unmasked FIN text frame with a minimally
 * encoded length, and that its payload is exactly `json`. */
static void expect_frame(const struct fmq_buf *b, const char *json) {
  size_t want = strlen(json);
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
  assert_int_equal(plen, want);
  assert_memory_equal(b->data + hlen, json, want);
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
  static const char *const types[] = {"subscribe", "subscribeSession", "Ping", "ping ", "", "pong"};
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
      /* invalid UTF-8 inside strings: a stray byte, overlong '/', a surrogate, truncated */
      "{\"type\":\"p\xffing\"}",
      "{\"type\":\"ping\",\"id\":\"\xc0\xaf\"}",
      "{\"type\":\"ping\",\"id\":\"\xed\xa0\x80\"}",
      "{\"type\":\"ping\",\"id\":\"\xe2\x82\"}",
      /* NUL, escaped or raw, and a lone surrogate escape */
      "{\"type\":\"ping\\u0000\"}",
      "{\"type\":\"ping\",\"id\":\"a\\u0000b\"}",
      "{\"type\":\"ping\",\"id\":\"\\ud800\"}",
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
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
