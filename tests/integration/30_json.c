/* The JSON protocol over text frames (protocol-v1 sections 3 and 4): ping,
 * ids, and the error codes; the connection survives every error. The
 * bridge's message types (subscribe, unsubscribe, publish, binary frames)
 * are tested in 80_bridge.c and after. */

#include "gateway_proc.h"
#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define TIMEOUT_MS 5000

static struct fmqt_fixture gateway;

/* Sends text and returns the JSON reply (asserted to exist). */
static json_t *exchange(int fd, const char *text) {
  fmqt_ws_send_text(fd, text);
  json_t *reply = fmqt_ws_recv_json(fd, TIMEOUT_MS);
  if (reply == NULL) {
    fail_msg("no JSON reply to %s", text);
  }
  return reply;
}

/* Asserts reply is an error with code and a string message. */
static void assert_error(const json_t *reply, const char *code, const char *sent) {
  const char *type = fmqt_json_str(reply, "type");
  const char *got = fmqt_json_str(reply, "code");
  if (type == NULL || strcmp(type, "error") != 0 || got == NULL || strcmp(got, code) != 0 ||
      fmqt_json_str(reply, "message") == NULL) {
    char *text = json_dumps(reply, JSON_COMPACT);
    fail_msg("%s: expected error %s with a message, got %s", sent, code, text);
  }
}

/* For each text, expects error `code` and that the connection stays open. */
static void assert_errors(void **state, const char *const *texts, size_t n, const char *code) {
  int fd = fmqt_fixture_connect(state);
  for (size_t i = 0; i < n; i++) {
    json_t *reply = exchange(fd, texts[i]);
    assert_error(reply, code, texts[i]);
    json_decref(reply);
    fmqt_ws_assert_json_ping(fd, "still-open", TIMEOUT_MS);
  }
  fmqt_ws_close_cleanly(fd, 1000);
}

static void ping_gets_pong(void **state) {
  int fd = fmqt_fixture_connect(state);
  json_t *reply = exchange(fd, "{\"type\":\"ping\"}");
  assert_string_equal(fmqt_json_str(reply, "type"), "pong");
  assert_null(json_object_get(reply, "id"));
  json_decref(reply);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void pong_echoes_number_and_string_ids(void **state) {
  int fd = fmqt_fixture_connect(state);
  json_t *reply = exchange(fd, "{\"type\":\"ping\",\"id\":7}");
  assert_string_equal(fmqt_json_str(reply, "type"), "pong");
  assert_true(json_is_integer(json_object_get(reply, "id")));
  assert_int_equal(json_integer_value(json_object_get(reply, "id")), 7);
  json_decref(reply);

  reply = exchange(fd, "{\"id\":\"a\",\"type\":\"ping\"}");
  assert_string_equal(fmqt_json_str(reply, "type"), "pong");
  assert_string_equal(fmqt_json_str(reply, "id"), "a");
  json_decref(reply);

  reply = exchange(fd, "{\"type\":\"ping\",\"id\":-90071992547409}");
  assert_true(json_is_integer(json_object_get(reply, "id")));
  assert_true(json_integer_value(json_object_get(reply, "id")) == -90071992547409LL);
  json_decref(reply);

  reply = exchange(fd, "{\"type\":\"ping\",\"id\":2.5}");
  assert_true(json_is_real(json_object_get(reply, "id")));
  assert_true(json_real_value(json_object_get(reply, "id")) == 2.5);
  json_decref(reply);

  reply = exchange(fd, "{\"type\":\"ping\",\"id\":\"quote\\\" and \\u00e9\"}");
  assert_string_equal(fmqt_json_str(reply, "id"), "quote\" and \xc3\xa9");
  json_decref(reply);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void replies_come_in_request_order(void **state) {
  enum { COUNT = 50 };
  char batch[COUNT * 64];
  size_t n = 0;
  for (int i = 0; i < COUNT; i++) {
    char text[64];
    int len = snprintf(text, sizeof text, "{\"type\":\"ping\",\"id\":%d}", i);
    n += fmqt_ws_build((uint8_t *)batch + n, 0x81, 1, text, (uint64_t)len);
  }
  int fd = fmqt_fixture_connect(state);
  fmqt_send_all(fd, batch, n);
  for (int i = 0; i < COUNT; i++) {
    json_t *reply = fmqt_ws_recv_json(fd, TIMEOUT_MS);
    assert_non_null(reply);
    assert_string_equal(fmqt_json_str(reply, "type"), "pong");
    assert_int_equal(json_integer_value(json_object_get(reply, "id")), i);
    json_decref(reply);
  }
  fmqt_ws_close_cleanly(fd, 1000);
}

static void text_that_is_not_json_gets_bad_json(void **state) {
  static const char *const texts[] = {"hello", "", "{\"type\":\"ping\"", "{\"type\":\"ping\"} x",
                                      "{'type':'ping'}"};
  assert_errors(state, texts, sizeof texts / sizeof texts[0], "bad_json");
}

static void json_that_is_not_an_object_gets_bad_request(void **state) {
  static const char *const texts[] = {"[]", "[{\"type\":\"ping\"}]", "42", "\"ping\"", "null",
                                      "true"};
  assert_errors(state, texts, sizeof texts / sizeof texts[0], "bad_request");
}

static void missing_or_ill_typed_fields_get_bad_request(void **state) {
  static const char *const texts[] = {
      "{}",
      "{\"id\":1}",
      "{\"type\":5}",
      "{\"type\":null}",
      "{\"type\":[\"ping\"]}",
      "{\"type\":\"ping\",\"id\":{}}",
      "{\"type\":\"ping\",\"id\":[1]}",
      "{\"type\":\"ping\",\"id\":true}",
      "{\"type\":\"ping\",\"id\":null}",
  };
  assert_errors(state, texts, sizeof texts / sizeof texts[0], "bad_request");
}

static void unknown_types_get_unknown_type_with_the_id(void **state) {
  int fd = fmqt_fixture_connect(state);
  json_t *reply = exchange(fd, "{\"type\":\"frobnicate\",\"id\":9}");
  assert_error(reply, "unknown_type", "frobnicate with id 9");
  assert_int_equal(json_integer_value(json_object_get(reply, "id")), 9);
  json_decref(reply);

  reply = exchange(fd, "{\"type\":\"PING\",\"id\":\"x\"}");
  assert_error(reply, "unknown_type", "PING with id x");
  assert_string_equal(fmqt_json_str(reply, "id"), "x");
  json_decref(reply);

  reply = exchange(fd, "{\"type\":\"frobnicate\"}");
  assert_error(reply, "unknown_type", "frobnicate without id");
  assert_null(json_object_get(reply, "id"));
  json_decref(reply);
  fmqt_ws_assert_json_ping(fd, "still-open", TIMEOUT_MS);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void fragmented_text_is_reassembled(void **state) {
  static const char *const parts[] = {"{\"ty", "pe\":\"pi", "", "ng\",\"id\":", "42}"};
  int fd = fmqt_fixture_connect(state);
  for (size_t i = 0; i < 5; i++) {
    fmqt_ws_send(fd, i == 4, i == 0 ? 0x1 : 0x0, parts[i], strlen(parts[i]));
  }
  json_t *reply = fmqt_ws_recv_json(fd, TIMEOUT_MS);
  assert_non_null(reply);
  assert_string_equal(fmqt_json_str(reply, "type"), "pong");
  assert_int_equal(json_integer_value(json_object_get(reply, "id")), 42);
  json_decref(reply);
  fmqt_ws_close_cleanly(fd, 1000);
}

static int group_setup(void **state) {
  *state = &gateway;
  return fmqt_fixture_setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ping_gets_pong),
      cmocka_unit_test(pong_echoes_number_and_string_ids),
      cmocka_unit_test(replies_come_in_request_order),
      cmocka_unit_test(text_that_is_not_json_gets_bad_json),
      cmocka_unit_test(json_that_is_not_an_object_gets_bad_request),
      cmocka_unit_test(missing_or_ill_typed_fields_get_bad_request),
      cmocka_unit_test(unknown_types_get_unknown_type_with_the_id),
      cmocka_unit_test(fragmented_text_is_reassembled),
  };
  return cmocka_run_group_tests(tests, group_setup, fmqt_fixture_teardown);
}
