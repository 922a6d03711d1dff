/* Shutdown (protocol-v1 section 7): on SIGTERM/SIGINT the gateway stops
 * accepting, closes every client with 1001, completes the close handshakes
 * within close_timeout and exits 0. */

#include "gateway_proc.h"
#include "wsclient.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#define CLIENTS 3
#define TIMEOUT_MS 5000
#define PROMPT_EXIT_MS 4000

/* A close timeout far above PROMPT_EXIT_MS: exiting within PROMPT_EXIT_MS
 * shows the gateway did not wait once every client had answered. */
static struct fmqt_fixture long_close_timeout = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=20s", NULL}};
static struct fmqt_fixture short_close_timeout = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=1s", NULL}};
static struct fmqt_fixture defaults;

/* Signals the gateway while CLIENTS WebSocket clients are open; each gets
 * close 1001, new connections are refused by then, and once all answered
 * the gateway exits 0 promptly. */
static void clients_answering_the_close_let_it_exit_at_once(void **state, int sig) {
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  int fds[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    fds[i] = fmqt_ws_connect(gw->port, "/mqtt", "");
  }
  fmqt_gateway_signal(gw, sig);
  for (int i = 0; i < CLIENTS; i++) {
    assert_int_equal(fmqt_ws_expect_close(fds[i], TIMEOUT_MS, NULL, 0), 1001);
  }
  assert_int_equal(fmqt_tcp_try_connect(gw->port), -ECONNREFUSED);
  int64_t answered = fmqt_now_ms();
  for (int i = 0; i < CLIENTS; i++) {
    fmqt_ws_send_close(fds[i], 1001, NULL);
  }
  for (int i = 0; i < CLIENTS; i++) {
    assert_true(fmqt_wait_eof(fds[i], TIMEOUT_MS));
    fmqt_close(fds[i]);
  }
  assert_int_equal(fmqt_gateway_wait(gw, PROMPT_EXIT_MS), 0);
  int64_t took = fmqt_now_ms() - answered;
  if (took > PROMPT_EXIT_MS) {
    fail_msg("exit took %lld ms after every client answered", (long long)took);
  }
}

static void sigterm_closes_clients_with_1001(void **state) {
  clients_answering_the_close_let_it_exit_at_once(state, SIGTERM);
}

static void sigint_closes_clients_with_1001(void **state) {
  clients_answering_the_close_let_it_exit_at_once(state, SIGINT);
}

/* A client that never answers the close holds the exit for close_timeout
 * (1 s) at most. */
static void silent_client_delays_the_exit_by_close_timeout_at_most(void **state) {
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  int fd = fmqt_ws_connect(gw->port, "/mqtt", "");
  int64_t start = fmqt_now_ms();
  fmqt_gateway_signal(gw, SIGTERM);
  assert_int_equal(fmqt_ws_expect_close(fd, TIMEOUT_MS, NULL, 0), 1001);
  int status = fmqt_gateway_wait(gw, 1000 + 2500);
  int64_t took = fmqt_now_ms() - start;
  if (status != 0) {
    fail_msg("status %d %lld ms after SIGTERM, want exit 0 within 3.5 s", status,
             (long long)took);
  }
  if (took < 700) {
    fail_msg("exited %lld ms after SIGTERM, without waiting for the client's close",
             (long long)took);
  }
  assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
  fmqt_close(fd);
}

/* Connections still in the HTTP phase (part of a request, or nothing) do
 * not keep the gateway from exiting 0; they are closed. */
static void connections_in_the_http_phase_do_not_block_the_exit(void **state) {
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  int partial = fmqt_tcp_connect(gw->port);
  int silent = fmqt_tcp_connect(gw->port);
  const char *begin = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  fmqt_send_all(partial, begin, strlen(begin));
  /* A served request shows both connections were accepted by now. */
  fmqt_assert_serving(gw->port, "/mqtt");
  fmqt_gateway_signal(gw, SIGTERM);
  assert_int_equal(fmqt_gateway_wait(gw, 5000 + 2500), 0);
  assert_true(fmqt_wait_eof(partial, TIMEOUT_MS));
  assert_true(fmqt_wait_eof(silent, TIMEOUT_MS));
  fmqt_close(partial);
  fmqt_close(silent);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(sigterm_closes_clients_with_1001,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &long_close_timeout),
      cmocka_unit_test_prestate_setup_teardown(sigint_closes_clients_with_1001,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &long_close_timeout),
      cmocka_unit_test_prestate_setup_teardown(
          silent_client_delays_the_exit_by_close_timeout_at_most, fmqt_fixture_setup,
          fmqt_fixture_teardown, &short_close_timeout),
      cmocka_unit_test_prestate_setup_teardown(
          connections_in_the_http_phase_do_not_block_the_exit, fmqt_fixture_setup,
          fmqt_fixture_teardown, &defaults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
