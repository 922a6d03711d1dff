/* RFC 6455 framing on the server side: control frames, fragmentation, UTF-8,
 * close codes, size limits, and the close code each violation gets. */

#include "gateway_proc.h"
#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_MESSAGE_SIZE (128 * 1024)
#define MAX_FRAGMENTS 8
#define TIMEOUT_MS 5000

static struct fmqt_fixture gateway = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_MAX_MESSAGE_SIZE=128KiB",
                                 "FERRYMQ_WEBSOCKET_MAX_FRAGMENTS=8", NULL}};

/* Asserts the gateway sends close(code) and closes the connection. */
static void expect_closed_with(int fd, int code) {
  int got = fmqt_ws_expect_close(fd, TIMEOUT_MS, NULL, 0);
  if (got != code) {
    fail_msg("expected close %d, got %d", code, got);
  }
  assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
  fmqt_close(fd);
}

/* Sends one frame (first byte b0) on a new connection and returns the close
 * code it causes, after checking the gateway also closed TCP. */
static int close_code_for(void **state, uint8_t b0, int masked, const void *payload, size_t len) {
  int fd = fmqt_fixture_connect(state);
  uint8_t *frame = malloc(len + 14);
  assert_non_null(frame);
  size_t n = fmqt_ws_build(frame, b0, masked, payload, len);
  (void)fmqt_try_send(fd, frame, n);
  free(frame);
  int code = fmqt_ws_expect_close(fd, TIMEOUT_MS, NULL, 0);
  assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
  fmqt_close(fd);
  return code;
}

static void assert_close_code_for(void **state, uint8_t b0, int masked, const void *payload,
                                  size_t len, int want) {
  int got = close_code_for(state, b0, masked, payload, len);
  if (got != want) {
    fail_msg("frame 0x%02x (%zu bytes%s): close %d, want %d", b0, len,
             masked ? "" : ", unmasked", got, want);
  }
}

static void pings_are_answered_with_the_same_payload(void **state) {
  uint8_t payload[125];
  for (size_t i = 0; i < sizeof payload; i++) {
    payload[i] = (uint8_t)(i * 7);
  }
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_assert_ping(fd, "", 0, TIMEOUT_MS);
  fmqt_ws_assert_ping(fd, "hello", 5, TIMEOUT_MS);
  fmqt_ws_assert_ping(fd, payload, sizeof payload, TIMEOUT_MS);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void client_pongs_get_no_answer(void **state) {
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_send(fd, 1, 0xA, "unsolicited", 11);
  fmqt_ws_assert_ping(fd, "after", 5, TIMEOUT_MS);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void frames_arriving_byte_by_byte_are_decoded(void **state) {
  uint8_t frame[64];
  size_t n = fmqt_ws_build(frame, 0x89, 1, "slow", 4);
  int fd = fmqt_fixture_connect(state);
  assert_int_equal(fmqt_send_slowly(fd, frame, n, 2), 0);
  struct fmqt_frame f;
  assert_int_equal(fmqt_ws_recv(fd, &f, TIMEOUT_MS), 0);
  assert_int_equal(f.opcode, 0xA);
  assert_int_equal(f.len, 4);
  assert_memory_equal(f.payload, "slow", 4);
  fmqt_frame_free(&f);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void frames_in_one_write_are_answered_in_order(void **state) {
  static const char *const payloads[] = {"a", "bb", "ccc", "dddd"};
  uint8_t buf[256];
  size_t n = 0;
  for (size_t i = 0; i < 4; i++) {
    n += fmqt_ws_build(buf + n, 0x89, 1, payloads[i], strlen(payloads[i]));
  }
  int fd = fmqt_fixture_connect(state);
  fmqt_send_all(fd, buf, n);
  for (size_t i = 0; i < 4; i++) {
    struct fmqt_frame f;
    assert_int_equal(fmqt_ws_recv(fd, &f, TIMEOUT_MS), 0);
    assert_int_equal(f.opcode, 0xA);
    assert_string_equal((char *)f.payload, payloads[i]);
    fmqt_frame_free(&f);
  }
  fmqt_ws_close_cleanly(fd, 1000);
}

/* Messages with 7-bit, 16-bit and 64-bit lengths, the last exactly at
 * max_message_size. */
static void every_length_encoding_is_accepted_up_to_the_limit(void **state) {
  static const size_t sizes[] = {100, 300, 70000, MAX_MESSAGE_SIZE};
  const size_t overhead = strlen("{\"type\":\"ping\",\"id\":\"\"}");
  int fd = fmqt_fixture_connect(state);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t id_len = sizes[i] - overhead;
    char *id = malloc(id_len + 1);
    assert_non_null(id);
    memset(id, 'a' + (int)i, id_len);
    id[id_len] = '\0';
    fmqt_ws_assert_json_ping(fd, id, TIMEOUT_MS);
    free(id);
  }
  fmqt_ws_close_cleanly(fd, 1000);
}

static void unmasked_frames_get_1002(void **state) {
  assert_close_code_for(state, 0x89, 0, "x", 1, 1002);
  assert_close_code_for(state, 0x81, 0, "{\"type\":\"ping\"}", 15, 1002);
}

static void reserved_bits_get_1002(void **state) {
  static const uint8_t rsv[] = {0x40, 0x20, 0x10};
  for (size_t i = 0; i < sizeof rsv; i++) {
    assert_close_code_for(state, 0x89 | rsv[i], 1, "x", 1, 1002);
    assert_close_code_for(state, 0x81 | rsv[i], 1, "{}", 2, 1002);
  }
}

static void unknown_opcodes_get_1002(void **state) {
  static const uint8_t opcodes[] = {3, 4, 5, 6, 7, 11, 12, 13, 14, 15};
  for (size_t i = 0; i < sizeof opcodes; i++) {
    assert_close_code_for(state, 0x80 | opcodes[i], 1, "x", 1, 1002);
  }
}

static void oversized_control_frames_get_1002(void **state) {
  uint8_t payload[126] = {0x03, 0xE8};
  memset(payload + 2, 'r', sizeof payload - 2);
  assert_close_code_for(state, 0x89, 1, payload, sizeof payload, 1002);
  assert_close_code_for(state, 0x8A, 1, payload, sizeof payload, 1002);
  assert_close_code_for(state, 0x88, 1, payload, sizeof payload, 1002);
}

static void fragmented_control_frames_get_1002(void **state) {
  assert_close_code_for(state, 0x09, 1, "x", 1, 1002);
  assert_close_code_for(state, 0x0A, 1, "x", 1, 1002);
}

static void continuation_without_a_message_gets_1002(void **state) {
  assert_close_code_for(state, 0x80, 1, "abc", 3, 1002);
  assert_close_code_for(state, 0x00, 1, "abc", 3, 1002);
}

static void new_message_inside_a_fragmented_one_gets_1002(void **state) {
  static const uint8_t second[] = {0x81, 0x82, 0x01};
  for (size_t i = 0; i < sizeof second; i++) {
    int fd = fmqt_fixture_connect(state);
    fmqt_ws_send(fd, 0, 0x1, "{\"type\":", 8);
    fmqt_ws_send(fd, second[i] >> 7, second[i] & 0x0F, "\"ping\"}", 7);
    expect_closed_with(fd, 1002);
  }
}

static void length_with_the_top_bit_set_gets_1002(void **state) {
  static const uint8_t mask[4] = {1, 2, 3, 4};
  uint8_t header[14];
  size_t n = fmqt_ws_header(header, 0x82, 0x8000000000000010ull, mask);
  int fd = fmqt_fixture_connect(state);
  fmqt_send_all(fd, header, n);
  expect_closed_with(fd, 1002);
}

static void invalid_utf8_text_gets_1007(void **state) {
  static const char *const texts[] = {
      "\xff",                 /* never valid */
      "\"\xc0\xaf\"",         /* overlong '/' */
      "\"\xed\xa0\x80\"",     /* a surrogate */
      "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
      "\"abc\xc3",            /* ends inside a sequence */
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    assert_close_code_for(state, 0x81, 1, texts[i], strlen(texts[i]), 1007);
  }
}

/* The first fragment is already invalid: 1007 comes before the message ends. */
static void invalid_utf8_fails_fast_within_a_fragmented_message(void **state) {
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_send(fd, 0, 0x1, "{\"id\":\"\xff", 8);
  expect_closed_with(fd, 1007);
}

static void code_points_split_across_fragments_are_valid(void **state) {
  /* {"type":"ping","id":"é€"}, split inside both multi-byte characters. */
  static const char *const parts[] = {"{\"type\":\"ping\",\"id\":\"\xc3", "\xa9\xe2\x82",
                                      "\xac\"}"};
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_send(fd, 0, 0x1, parts[0], strlen(parts[0]));
  fmqt_ws_send(fd, 0, 0x0, parts[1], strlen(parts[1]));
  fmqt_ws_send(fd, 1, 0x0, parts[2], strlen(parts[2]));
  json_t *pong = fmqt_ws_recv_json(fd, TIMEOUT_MS);
  assert_non_null(pong);
  assert_string_equal(fmqt_json_str(pong, "type"), "pong");
  assert_string_equal(fmqt_json_str(pong, "id"), "\xc3\xa9\xe2\x82\xac");
  json_decref(pong);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void pings_between_fragments_are_answered_at_once(void **state) {
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_send(fd, 0, 0x1, "{\"type\":\"pi", 11);
  fmqt_ws_assert_ping(fd, "mid", 3, TIMEOUT_MS);
  fmqt_ws_send(fd, 0, 0x0, "ng\",", 4);
  fmqt_ws_assert_ping(fd, "", 0, TIMEOUT_MS);
  fmqt_ws_send(fd, 1, 0x0, "\"id\":\"frag\"}", 12);
  json_t *pong = fmqt_ws_recv_json(fd, TIMEOUT_MS);
  assert_non_null(pong);
  assert_string_equal(fmqt_json_str(pong, "type"), "pong");
  assert_string_equal(fmqt_json_str(pong, "id"), "frag");
  json_decref(pong);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* Control frames may come between fragments; a close ends the connection. */
static void close_within_a_fragmented_message_is_echoed(void **state) {
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_send(fd, 0, 0x1, "{\"type\":", 8);
  fmqt_ws_send_close(fd, 1000, NULL);
  expect_closed_with(fd, 1000);
}

static void close_codes_are_echoed(void **state) {
  static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                              1010, 1011, 1012, 1013, 1014, 3000, 4999};
  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
    int fd = fmqt_fixture_connect(state);
    fmqt_ws_send_close(fd, valid[i], "bye");
    expect_closed_with(fd, valid[i]);
  }
}

static void empty_close_gets_an_empty_close(void **state) {
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_send_close(fd, -1, NULL);
  struct fmqt_frame f;
  assert_int_equal(fmqt_ws_recv(fd, &f, TIMEOUT_MS), 0);
  assert_int_equal(f.opcode, 0x8);
  assert_int_equal(f.len, 0);
  assert_false(f.masked);
  fmqt_frame_free(&f);
  assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
  fmqt_close(fd);
}

static void invalid_close_codes_get_1002(void **state) {
  static const int invalid[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535};
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    int fd = fmqt_fixture_connect(state);
    fmqt_ws_send_close(fd, invalid[i], NULL);
    int got = fmqt_ws_expect_close(fd, TIMEOUT_MS, NULL, 0);
    if (got != 1002) {
      fail_msg("close code %d answered with %d, want 1002", invalid[i], got);
    }
    assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
    fmqt_close(fd);
  }
}

static void one_byte_close_payload_gets_1002(void **state) {
  assert_close_code_for(state, 0x88, 1, "\x03", 1, 1002);
}

static void invalid_utf8_close_reason_gets_1007(void **state) {
  assert_close_code_for(state, 0x88, 1, "\x03\xe8\xff\xfe", 4, 1007);
}

/* Only the header is sent: the declared length alone must be refused. */
static void oversized_frame_gets_1009_from_its_header(void **state) {
  static const uint8_t mask[4] = {9, 8, 7, 6};
  static const uint8_t first[] = {0x81, 0x82, 0x01};
  for (size_t i = 0; i < sizeof first; i++) {
    uint8_t header[14];
    size_t n = fmqt_ws_header(header, first[i], MAX_MESSAGE_SIZE + 1, mask);
    int fd = fmqt_fixture_connect(state);
    fmqt_send_all(fd, header, n);
    expect_closed_with(fd, 1009);
  }
}

/* Fragments within the limit each, whose sum exceeds it. */
static void growing_fragmented_message_gets_1009(void **state) {
  size_t half = MAX_MESSAGE_SIZE / 2;
  uint8_t *payload = malloc(half);
  assert_non_null(payload);
  memset(payload, 'a', half);
  uint8_t *frame = malloc(half + 14);
  assert_non_null(frame);
  int fd = fmqt_fixture_connect(state);
  size_t n = fmqt_ws_build(frame, 0x01, 1, payload, half);
  fmqt_send_all(fd, frame, n);
  n = fmqt_ws_build(frame, 0x00, 1, payload, half);
  fmqt_send_all(fd, frame, n);
  n = fmqt_ws_build(frame, 0x80, 1, payload, 16);
  (void)fmqt_try_send(fd, frame, n);
  free(frame);
  free(payload);
  expect_closed_with(fd, 1009);
}

/* Sends {"type":"ping"} as `frames` fragments: the first frames empty, the
 * last one carrying the text. */
static void send_ping_in_fragments(int fd, int frames) {
  static const char ping[] = "{\"type\":\"ping\",\"id\":\"frag\"}";
  for (int i = 0; i < frames - 1; i++) {
    fmqt_ws_send(fd, 0, i == 0 ? 0x1 : 0x0, "", 0);
  }
  fmqt_ws_send(fd, 1, frames == 1 ? 0x1 : 0x0, ping, sizeof ping - 1);
}

/* websocket.max_fragments bounds the data frames of one message, so that a
 * message of empty fragments cannot go on forever. */
static void message_past_max_fragments_gets_1009(void **state) {
  int fd = fmqt_fixture_connect(state);
  send_ping_in_fragments(fd, MAX_FRAGMENTS);
  json_t *pong = fmqt_ws_recv_json(fd, TIMEOUT_MS);
  assert_non_null(pong);
  assert_string_equal(fmqt_json_str(pong, "type"), "pong");
  assert_string_equal(fmqt_json_str(pong, "id"), "frag");
  json_decref(pong);

  send_ping_in_fragments(fd, MAX_FRAGMENTS + 1);
  char reason[128];
  assert_int_equal(fmqt_ws_expect_close(fd, TIMEOUT_MS, reason, sizeof reason), 1009);
  assert_string_equal(reason, "too many fragments");
  assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
  fmqt_close(fd);
}

static int group_setup(void **state) {
  *state = &gateway;
  return fmqt_fixture_setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pings_are_answered_with_the_same_payload),
      cmocka_unit_test(client_pongs_get_no_answer),
      cmocka_unit_test(frames_arriving_byte_by_byte_are_decoded),
      cmocka_unit_test(frames_in_one_write_are_answered_in_order),
      cmocka_unit_test(every_length_encoding_is_accepted_up_to_the_limit),
      cmocka_unit_test(unmasked_frames_get_1002),
      cmocka_unit_test(reserved_bits_get_1002),
      cmocka_unit_test(unknown_opcodes_get_1002),
      cmocka_unit_test(oversized_control_frames_get_1002),
      cmocka_unit_test(fragmented_control_frames_get_1002),
      cmocka_unit_test(continuation_without_a_message_gets_1002),
      cmocka_unit_test(new_message_inside_a_fragmented_one_gets_1002),
      cmocka_unit_test(length_with_the_top_bit_set_gets_1002),
      cmocka_unit_test(invalid_utf8_text_gets_1007),
      cmocka_unit_test(invalid_utf8_fails_fast_within_a_fragmented_message),
      cmocka_unit_test(code_points_split_across_fragments_are_valid),
      cmocka_unit_test(pings_between_fragments_are_answered_at_once),
      cmocka_unit_test(close_within_a_fragmented_message_is_echoed),
      cmocka_unit_test(close_codes_are_echoed),
      cmocka_unit_test(empty_close_gets_an_empty_close),
      cmocka_unit_test(invalid_close_codes_get_1002),
      cmocka_unit_test(one_byte_close_payload_gets_1002),
      cmocka_unit_test(invalid_utf8_close_reason_gets_1007),
      cmocka_unit_test(oversized_frame_gets_1009_from_its_header),
      cmocka_unit_test(growing_fragmented_message_gets_1009),
      cmocka_unit_test(message_past_max_fragments_gets_1009),
  };
  return cmocka_run_group_tests(tests, group_setup, fmqt_fixture_teardown);
}
