/* Robustness: many clients at once, clients that reset, trickle or send
 * garbage, and connection churn; the gateway keeps serving and leaks no
 * descriptors. */

#include "gateway_proc.h"
#include "wsclient.h"

#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define TIMEOUT_MS 5000
#define MANY 200
#define CHURN 500
#define RESETS 20
#define SERVED_WITHIN_MS 2000
#define TRICKLED_BYTES 4
#define FD_SETTLE_MS 5000

static struct fmqt_fixture gateway;

/* Waits up to FD_SETTLE_MS for the gateway to hold at most `want` fds. */
static void assert_fds_settle(void **state, int want) {
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  int64_t deadline = fmqt_now_ms() + FD_SETTLE_MS;
  int have;
  while ((have = fmqt_gateway_fd_count(gw)) > want && fmqt_now_ms() < deadline) {
    poll(NULL, 0, 20);
  }
  if (have > want) {
    fail_msg("the gateway holds %d descriptors, %d before the test", have, want);
  }
}

static void many_clients_at_once_each_get_their_pong(void **state) {
  int fds[MANY];
  for (int i = 0; i < MANY; i++) {
    fds[i] = fmqt_fixture_connect(state);
  }
  for (int i = 0; i < MANY; i++) {
    char text[64];
    snprintf(text, sizeof text, "{\"type\":\"ping\",\"id\":%d}", i);
    fmqt_ws_send_text(fds[i], text);
  }
  for (int i = 0; i < MANY; i++) {
    json_t *reply = fmqt_ws_recv_json(fds[i], TIMEOUT_MS);
    if (reply == NULL) {
      fail_msg("client %d: no pong", i);
    }
    assert_string_equal(fmqt_json_str(reply, "type"), "pong");
    assert_int_equal(json_integer_value(json_object_get(reply, "id")), i);
    json_decref(reply);
  }
  for (int i = 0; i < MANY; i++) {
    fmqt_ws_close_cleanly(fds[i], 1000);
  }
}

/* Clients reset the connection within the request and within a frame. */
static void resets_mid_handshake_and_mid_frame_are_survived(void **state) {
  int baseline = fmqt_gateway_fd_count(fmqt_fixture_gateway(state));
  const char *partial = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webs";
  uint8_t frame[64];
  size_t frame_len = fmqt_ws_build(frame, 0x81, 1, "{\"type\":\"ping\"}", 15);
  for (int i = 0; i < RESETS; i++) {
    int fd = fmqt_tcp_connect(fmqt_fixture_port(state));
    fmqt_send_all(fd, partial, strlen(partial));
    fmqt_abort(fd);

    fd = fmqt_fixture_connect(state);
    fmqt_send_all(fd, frame, frame_len / 2);
    fmqt_abort(fd);
  }
  assert_true(fmqt_gateway_alive(fmqt_fixture_gateway(state)));
  fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt");
  assert_fds_settle(state, baseline);
}

/* A client sending the first bytes of its request one per second. Static:
 * the thread may outlive a failing test. */
static struct trickle {
  int fd;
  char request[1024];
  size_t len;
  int result;
  atomic_bool done;
} trickle;

static void *trickle_run(void *arg) {
  (void)arg;
  trickle.result = fmqt_send_slowly(trickle.fd, trickle.request, TRICKLED_BYTES, 1000);
  atomic_store(&trickle.done, true);
  return NULL;
}

/* While one client sends its request a byte a second, others are served at
 * once; the trickled request is then completed and upgraded. */
static void a_trickling_client_does_not_hold_up_others(void **state) {
  char key[25], head[4096];
  trickle.len = fmqt_ws_request(trickle.request, sizeof trickle.request, "/mqtt", "", key);
  trickle.fd = fmqt_tcp_connect(fmqt_fixture_port(state));
  atomic_init(&trickle.done, false);
  pthread_t thread;
  assert_int_equal(pthread_create(&thread, NULL, trickle_run, NULL), 0);
  int served = 0;
  while (!atomic_load(&trickle.done)) {
    int64_t start = fmqt_now_ms();
    fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt");
    int64_t took = fmqt_now_ms() - start;
    if (took > SERVED_WITHIN_MS) {
      fail_msg("a normal client took %lld ms beside a trickling one", (long long)took);
    }
    served++;
    poll(NULL, 0, 250);
  }
  assert_int_equal(pthread_join(thread, NULL), 0);
  assert_int_equal(trickle.result, 0);
  assert_true(served >= TRICKLED_BYTES - 1);
  fmqt_send_all(trickle.fd, trickle.request + TRICKLED_BYTES, trickle.len - TRICKLED_BYTES);
  assert_int_equal(fmqt_http_read_head(trickle.fd, head, sizeof head, TIMEOUT_MS), 101);
  fmqt_ws_close_cleanly(trickle.fd, 1000);
}

static void garbage_instead_of_http_gets_400(void **state) {
  static const char *const garbage[] = {
      "hello world\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
      "GET\r\n\r\n",
      "GET /mqtt HTTP/1.1\r\nNo colon here\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
    char head[4096];
    int status = fmqt_http_refused(fmqt_fixture_port(state), garbage[i], strlen(garbage[i]), head,
                                   sizeof head);
    if (status != 400) {
      fail_msg("garbage %zu: status %d, want 400", i, status);
    }
  }
  fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt");
}

/* "CONNECT \r" gives llhttp an empty target before anything else was
 * read; the sanitized gateway once died of it at once. The request is still
 * incomplete, so the gateway waits, serves others, and answers the rest. */
static void connect_with_empty_target_is_survived(void **state) {
  static const char start[] = "CONNECT \r";
  static const char rest[] = "\n\r\n";
  char head[4096];
  int fd = fmqt_tcp_connect(fmqt_fixture_port(state));
  fmqt_send_all(fd, start, sizeof start - 1);
  fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt");
  fmqt_send_all(fd, rest, sizeof rest - 1);
  assert_int_equal(fmqt_http_read_head(fd, head, sizeof head, TIMEOUT_MS), 404);
  fmqt_close(fd);
  assert_true(fmqt_gateway_alive(fmqt_fixture_gateway(state)));
}

/* Upgraded connections dropped without a close frame are cleaned up. */
static void churn_without_close_frames_leaks_nothing(void **state) {
  int baseline = fmqt_gateway_fd_count(fmqt_fixture_gateway(state));
  for (int i = 0; i < CHURN; i++) {
    int fd = fmqt_fixture_connect(state);
    if (i % 2 == 1) {
      fmqt_ws_send_text(fd, "{\"type\":\"ping\"}");
    }
    fmqt_close(fd);
  }
  assert_fds_settle(state, baseline);
  fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt");
  assert_true(fmqt_gateway_alive(fmqt_fixture_gateway(state)));
}

static int group_setup(void **state) {
  *state = &gateway;
  return fmqt_fixture_setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(many_clients_at_once_each_get_their_pong),
      cmocka_unit_test(resets_mid_handshake_and_mid_frame_are_survived),
      cmocka_unit_test(a_trickling_client_does_not_hold_up_others),
      cmocka_unit_test(garbage_instead_of_http_gets_400),
      cmocka_unit_test(connect_with_empty_target_is_survived),
      cmocka_unit_test(churn_without_close_frames_leaks_nothing),
  };
  return cmocka_run_group_tests(tests, group_setup, fmqt_fixture_teardown);
}
