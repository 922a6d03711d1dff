/* Liveness (protocol-v1 section 5): idle timeout, the gateway's pings, what
 * counts as activity, and the handshake timeout. */

#include "gateway_proc.h"
#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define IDLE_MS 1000
#define LATEST_CLOSE_MS 3500  /* idle timeout plus a generous margin */
#define RUN_MS 3200           /* well past the idle timeout */
#define ACTIVITY_EVERY_MS 300
#define TIMEOUT_MS 5000

/* close_timeout 1s: a silent client does not answer the idle close, so the
 * gateway closes TCP that long after its close frame. */
static struct fmqt_fixture idle_no_pings = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=1s",
                                 "FERRYMQ_WEBSOCKET_PING_INTERVAL=0",
                                 "FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=1s", NULL}};
static struct fmqt_fixture idle_with_pings = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=1s",
                                 "FERRYMQ_WEBSOCKET_PING_INTERVAL=300ms",
                                 "FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=1s", NULL}};
/* close_timeout 5s: long enough that waiting it out is told apart from not. */
static struct fmqt_fixture idle_long_close = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=1s",
                                 "FERRYMQ_WEBSOCKET_PING_INTERVAL=0",
                                 "FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=5s", NULL}};
static struct fmqt_fixture short_handshake = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_HANDSHAKE_TIMEOUT=1s", NULL}};

/* Asserts a silent client gets close 1001 "idle timeout" after roughly
 * IDLE_MS, and EOF within the close timeout. Frames before the close are
 * ignored. */
static void assert_idle_close(int fd, int64_t since) {
  char reason[128];
  int code = fmqt_ws_expect_close(fd, LATEST_CLOSE_MS, reason, sizeof reason);
  int64_t elapsed = fmqt_now_ms() - since;
  if (code != 1001) {
    fail_msg("expected close 1001 within %d ms, got %d", LATEST_CLOSE_MS, code);
  }
  assert_string_equal(reason, "idle timeout");
  if (elapsed < IDLE_MS / 2) {
    fail_msg("closed after %lld ms, before the idle timeout", (long long)elapsed);
  }
  assert_true(fmqt_wait_eof(fd, LATEST_CLOSE_MS));
  fmqt_close(fd);
}

static void silent_client_is_closed_with_1001(void **state) {
  int fd = fmqt_fixture_connect(state);
  assert_idle_close(fd, fmqt_now_ms());
  fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt");
}

/* After the idle close, a protocol violation instead of the awaited close
 * frame fails the connection at once rather than after the close timeout. */
static void violation_while_closing_ends_the_connection_at_once(void **state) {
  int fd = fmqt_fixture_connect(state);
  char reason[128];
  assert_int_equal(fmqt_ws_expect_close(fd, LATEST_CLOSE_MS, reason, sizeof reason), 1001);
  /* Let the gateway finish the write of its close frame first, so the
   * violation meets a connection with nothing left to write. */
  usleep(200 * 1000);
  uint8_t unmasked[4 + 14];
  size_t n = fmqt_ws_build(unmasked, 0x81, 0, "oops", 4);
  fmqt_send_all(fd, unmasked, n);
  int64_t sent = fmqt_now_ms();
  assert_true(fmqt_wait_eof(fd, 4000));
  int64_t elapsed = fmqt_now_ms() - sent;
  if (elapsed > 2000)
    fail_msg("connection closed %lld ms after the violation; expected well before the 5 s "
             "close timeout", (long long)elapsed);
  fmqt_close(fd);
}

/* Liveness counts frames, not bytes: a frame whose payload trickles in and
 * never completes does not keep the connection open. The close frame must
 * already be waiting when the trickle (well past the idle timeout) ends. */
static void trickled_frame_is_not_activity(void **state) {
  int fd = fmqt_fixture_connect(state);
  uint8_t header[14];
  const uint8_t mask[4] = {1, 2, 3, 4};
  fmqt_send_all(fd, header, fmqt_ws_header(header, 0x81, 100, mask));
  int64_t until = fmqt_now_ms() + IDLE_MS * 5 / 2;
  while (fmqt_now_ms() < until) {
    assert_true(fmqt_try_send(fd, "x", 1) >= 0);
    usleep(ACTIVITY_EVERY_MS * 1000);
  }
  char reason[128];
  assert_int_equal(fmqt_ws_expect_close(fd, 100, reason, sizeof reason), 1001);
  assert_string_equal(reason, "idle timeout");
  fmqt_close(fd);
}

/* Empty fragments that do not end their message are not activity either:
 * a client sending them (well below websocket.max_fragments) past the idle
 * timeout is closed as idle. */
static void empty_fragments_are_not_activity(void **state) {
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_send(fd, 0, 0x1, "", 0);
  int64_t until = fmqt_now_ms() + IDLE_MS * 5 / 2;
  while (fmqt_now_ms() < until) {
    uint8_t frame[14];
    size_t n = fmqt_ws_build(frame, 0x00, 1, "", 0);
    assert_true(fmqt_try_send(fd, frame, n) >= 0);
    usleep(ACTIVITY_EVERY_MS * 1000);
  }
  char reason[128];
  assert_int_equal(fmqt_ws_expect_close(fd, 100, reason, sizeof reason), 1001);
  assert_string_equal(reason, "idle timeout");
  fmqt_close(fd);
}

enum activity { SEND_PONG, SEND_PING, SEND_JSON_PING, ACTIVITY_COUNT };

static void send_activity(int fd, enum activity a) {
  switch (a) {
  case SEND_PONG:
    fmqt_ws_send(fd, 1, 0xA, "beat", 4);
    break;
  case SEND_PING:
    fmqt_ws_send(fd, 1, 0x9, "beat", 4);
    break;
  default:
    fmqt_ws_send_text(fd, "{\"type\":\"ping\"}");
    break;
  }
}

/* Reads every frame due within wait_ms; fails on a close frame or EOF. */
static void drain_without_close(int fd, int wait_ms) {
  int64_t deadline = fmqt_now_ms() + wait_ms;
  for (;;) {
    struct fmqt_frame f;
    int r = fmqt_ws_recv(fd, &f, fmqt_ms_until(deadline));
    if (r == FMQT_TIMEOUT) {
      return;
    }
    if (r == FMQT_EOF) {
      fail_msg("the gateway closed an active connection");
    }
    if (f.opcode == 0x8) {
      fail_msg("the gateway sent close %d to an active connection",
               f.len >= 2 ? f.payload[0] << 8 | f.payload[1] : 1005);
    }
    fmqt_frame_free(&f);
  }
}

/* Three clients, each active in its own way every 300 ms, outlive the 1 s
 * idle timeout. */
static void any_client_frame_counts_as_activity(void **state) {
  int fds[ACTIVITY_COUNT];
  for (int a = 0; a < ACTIVITY_COUNT; a++) {
    fds[a] = fmqt_fixture_connect(state);
  }
  int64_t end = fmqt_now_ms() + RUN_MS;
  while (fmqt_now_ms() < end) {
    for (int a = 0; a < ACTIVITY_COUNT; a++) {
      send_activity(fds[a], (enum activity)a);
    }
    for (int a = 0; a < ACTIVITY_COUNT; a++) {
      drain_without_close(fds[a], a == 0 ? ACTIVITY_EVERY_MS : 0);
    }
  }
  for (int a = 0; a < ACTIVITY_COUNT; a++) {
    drain_without_close(fds[a], ACTIVITY_EVERY_MS / 3);
    fmqt_ws_assert_ping(fds[a], "end", 3, TIMEOUT_MS);
    fmqt_ws_close_cleanly(fds[a], 1000);
  }
}

/* With ping_interval 300ms the gateway pings repeatedly; answering them with
 * pongs keeps the connection past the idle timeout. */
static void answering_gateway_pings_keeps_the_connection(void **state) {
  int fd = fmqt_fixture_connect(state);
  int pings = 0;
  int64_t end = fmqt_now_ms() + RUN_MS;
  while (fmqt_now_ms() < end) {
    struct fmqt_frame f;
    int r = fmqt_ws_recv(fd, &f, fmqt_ms_until(end));
    if (r == FMQT_TIMEOUT) {
      break;
    }
    assert_int_equal(r, 0);
    if (f.opcode == 0x8) {
      fail_msg("closed after %d pings although every ping was answered", pings);
    }
    assert_int_equal(f.opcode, 0x9);
    assert_false(f.masked);
    pings++;
    fmqt_ws_send(fd, 1, 0xA, f.payload, f.len);
    fmqt_frame_free(&f);
  }
  /* About ten are due; a third of that is plenty to show repetition. */
  if (pings < 3) {
    fail_msg("only %d pings in %d ms with ping_interval 300ms", pings, RUN_MS);
  }
  fmqt_ws_assert_ping(fd, "end", 3, TIMEOUT_MS);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* The gateway's own pings are not activity: a client that never answers is
 * still closed as idle. */
static void unanswered_gateway_pings_do_not_keep_the_connection(void **state) {
  int fd = fmqt_fixture_connect(state);
  assert_idle_close(fd, fmqt_now_ms());
}

/* A request that never completes, and a connection that sends nothing, are
 * closed after the handshake timeout (with 408 or at least EOF). */
static void incomplete_requests_time_out(void **state) {
  int partial = fmqt_tcp_connect(fmqt_fixture_port(state));
  int silent = fmqt_tcp_connect(fmqt_fixture_port(state));
  int64_t start = fmqt_now_ms();
  const char *begin = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  fmqt_send_all(partial, begin, strlen(begin));
  int fds[] = {partial, silent};
  for (size_t i = 0; i < 2; i++) {
    char head[1024];
    int status = fmqt_http_read_head(fds[i], head, sizeof head, LATEST_CLOSE_MS);
    if (status != 408 && status != FMQT_EOF) {
      fail_msg("connection %zu: expected 408 or EOF, got %d", i, status);
    }
    assert_true(fmqt_wait_eof(fds[i], TIMEOUT_MS));
    fmqt_close(fds[i]);
  }
  assert_true(fmqt_now_ms() - start >= 500);
  fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt");
}

/* The whole request must arrive within the handshake timeout: a client that
 * keeps sending a byte now and then is still cut off. */
static void trickled_request_is_cut_off_by_the_handshake_timeout(void **state) {
  char req[1024], key[25], head[1024];
  size_t n = fmqt_ws_request(req, sizeof req, "/mqtt", "", key);
  int fd = fmqt_tcp_connect(fmqt_fixture_port(state));
  int64_t deadline = fmqt_now_ms() + LATEST_CLOSE_MS;
  int status = FMQT_TIMEOUT;
  for (size_t sent = 0; status == FMQT_TIMEOUT && fmqt_now_ms() < deadline; sent++) {
    if (sent < n) {
      (void)fmqt_try_send(fd, req + sent, 1);
    }
    status = fmqt_http_read_head(fd, head, sizeof head, 200);
  }
  if (status != 408 && status != FMQT_EOF) {
    fail_msg("expected 408 or EOF within %d ms, got %d", LATEST_CLOSE_MS, status);
  }
  assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
  fmqt_close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(silent_client_is_closed_with_1001,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &idle_no_pings),
      cmocka_unit_test_prestate_setup_teardown(
          violation_while_closing_ends_the_connection_at_once, fmqt_fixture_setup,
          fmqt_fixture_teardown, &idle_long_close),
      cmocka_unit_test_prestate_setup_teardown(trickled_frame_is_not_activity,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &idle_long_close),
      cmocka_unit_test_prestate_setup_teardown(empty_fragments_are_not_activity,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &idle_long_close),
      cmocka_unit_test_prestate_setup_teardown(any_client_frame_counts_as_activity,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &idle_no_pings),
      cmocka_unit_test_prestate_setup_teardown(answering_gateway_pings_keeps_the_connection,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &idle_with_pings),
      cmocka_unit_test_prestate_setup_teardown(
          unanswered_gateway_pings_do_not_keep_the_connection, fmqt_fixture_setup,
          fmqt_fixture_teardown, &idle_with_pings),
      cmocka_unit_test_prestate_setup_teardown(incomplete_requests_time_out, fmqt_fixture_setup,
                                               fmqt_fixture_teardown, &short_handshake),
      cmocka_unit_test_prestate_setup_teardown(
          trickled_request_is_cut_off_by_the_handshake_timeout, fmqt_fixture_setup,
          fmqt_fixture_teardown, &short_handshake),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
