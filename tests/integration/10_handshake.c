/* The opening handshake (protocol-v1 section 1, RFC 6455 section 4.2): what
 * upgrades, what is refused with which status, and that every refusal closes
 * the connection. */

#include "gateway_proc.h"
#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define MAX_HEADER_SIZE 4096
#define TIMEOUT_MS 5000

static struct fmqt_fixture gateway = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_MAX_HEADER_SIZE=4096", NULL}};

static char head[8192];

/* The status of a request line plus header lines (each ending in "\r\n"),
 * which the gateway must refuse. */
static int refusal(void **state, const char *request_line, const char *headers) {
  char req[8192];
  int n = snprintf(req, sizeof req, "%s\r\n%s\r\n", request_line, headers);
  assert_true(n > 0 && (size_t)n < sizeof req);
  return fmqt_http_refused(fmqt_fixture_port(state), req, (size_t)n, head, sizeof head);
}

/* The status of the response to a request, read on a new connection; the
 * connection is closed afterwards. */
static int response_status(void **state, const char *req) {
  int fd = fmqt_tcp_connect(fmqt_fixture_port(state));
  fmqt_send_all(fd, req, strlen(req));
  int status = fmqt_http_read_head(fd, head, sizeof head, TIMEOUT_MS);
  fmqt_close(fd);
  return status;
}

static void assert_header(const char *name, const char *value) {
  char got[256];
  if (!fmqt_http_header(head, name, got, sizeof got) || strcasecmp(got, value) != 0) {
    fail_msg("expected \"%s: %s\" in:\n%s", name, value, head);
  }
}

static void upgrade_answers_101_with_the_right_headers(void **state) {
  int fd = fmqt_ws_connect_head(fmqt_fixture_port(state), "/mqtt", "", head, sizeof head);
  assert_header("Upgrade", "websocket");
  char connection[256], protocol[256];
  assert_true(fmqt_http_header(head, "Connection", connection, sizeof connection));
  assert_non_null(strcasestr(connection, "upgrade"));
  assert_false(fmqt_http_header(head, "Sec-WebSocket-Protocol", protocol, sizeof protocol));
  fmqt_ws_assert_ping(fd, "hi", 2, TIMEOUT_MS);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void accept_matches_the_rfc_example(void **state) {
  const char *req = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n";
  assert_int_equal(response_status(state, req), 101);
  assert_header("Sec-WebSocket-Accept", RFC_ACCEPT);
}

static void header_names_and_values_are_case_insensitive(void **state) {
  const char *req = "GET /mqtt HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: WebSocket\r\n"
                    "CONNECTION: keep-alive, UPGRADE\r\nsec-websocket-key: " RFC_KEY "\r\n"
                    "sec-websocket-version: 13\r\n\r\n";
  assert_int_equal(response_status(state, req), 101);
  assert_header("Sec-WebSocket-Accept", RFC_ACCEPT);
}

/* Field values lose the optional whitespace around them (RFC 7230 3.2). */
static void whitespace_around_header_values_is_ignored(void **state) {
  const char *req = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade:  websocket \r\n"
                    "Connection:\tUpgrade\r\nSec-WebSocket-Key:   " RFC_KEY "  \r\n"
                    "Sec-WebSocket-Version: 13 \r\n\r\n";
  assert_int_equal(response_status(state, req), 101);
  assert_header("Sec-WebSocket-Accept", RFC_ACCEPT);
}

/* The offer may be one list or several header lines (RFC 6455 11.3.4). */
static void offered_subprotocol_is_selected(void **state) {
  static const char *const offers[] = {
      "Sec-WebSocket-Protocol: ferrymq.v1\r\n",
      "Sec-WebSocket-Protocol: chat, ferrymq.v1\r\n",
      "Sec-WebSocket-Protocol: chat,ferrymq.v1,superchat\r\n",
      "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: ferrymq.v1\r\n",
  };
  for (size_t i = 0; i < sizeof offers / sizeof offers[0]; i++) {
    int fd = fmqt_ws_connect_head(fmqt_fixture_port(state), "/mqtt", offers[i], head,
                                  sizeof head);
    assert_header("Sec-WebSocket-Protocol", "ferrymq.v1");
    fmqt_ws_close_cleanly(fd, 1000);
  }
}

static void only_unknown_subprotocols_are_refused(void **state) {
  assert_int_equal(refusal(state, "GET /mqtt HTTP/1.1",
                           "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Protocol: chat, superchat\r\n"),
                   400);
}

static void unknown_paths_get_404(void **state) {
  static const char *const lines[] = {"GET /other HTTP/1.1", "GET /mqtt/x HTTP/1.1",
                                      "GET /mqttx HTTP/1.1", "GET / HTTP/1.1"};
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    assert_int_equal(refusal(state, lines[i],
                             "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n"),
                     404);
  }
}

static void other_methods_get_400(void **state) {
  assert_int_equal(refusal(state, "POST /mqtt HTTP/1.1",
                           "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n"
                           "Content-Length: 0\r\n"),
                   400);
}

static void plain_get_gets_426(void **state) {
  assert_int_equal(refusal(state, "GET /mqtt HTTP/1.1", "Host: 127.0.0.1\r\n"), 426);
  assert_int_equal(refusal(state, "GET /mqtt HTTP/1.1",
                           "Host: 127.0.0.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n"),
                   426);
}

static void missing_connection_upgrade_gets_400(void **state) {
  assert_int_equal(refusal(state, "GET /mqtt HTTP/1.1",
                           "Host: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n"),
                   400);
  assert_int_equal(refusal(state, "GET /mqtt HTTP/1.1",
                           "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n"),
                   400);
}

static void http_1_0_gets_400(void **state) {
  assert_int_equal(refusal(state, "GET /mqtt HTTP/1.0",
                           "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n"),
                   400);
}

static void missing_version_gets_400(void **state) {
  assert_int_equal(refusal(state, "GET /mqtt HTTP/1.1",
                           "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\n"),
                   400);
}

static void other_version_gets_426_naming_13(void **state) {
  assert_int_equal(refusal(state, "GET /mqtt HTTP/1.1",
                           "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 8\r\n"),
                   426);
  assert_header("Sec-WebSocket-Version", "13");
}

static void bad_keys_get_400(void **state) {
  static const char *const key_lines[] = {
      "",                                                       /* missing */
      "Sec-WebSocket-Key: c2hvcnQ=\r\n",                        /* 5 bytes */
      "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n",    /* 20 bytes */
      "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n",        /* not base64 */
      "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Key: " RFC_KEY "\r\n", /* twice */
  };
  for (size_t i = 0; i < sizeof key_lines / sizeof key_lines[0]; i++) {
    char headers[512];
    snprintf(headers, sizeof headers,
             "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%s"
             "Sec-WebSocket-Version: 13\r\n",
             key_lines[i]);
    int status = refusal(state, "GET /mqtt HTTP/1.1", headers);
    if (status != 400) {
      fail_msg("key lines \"%s\": status %d, want 400", key_lines[i], status);
    }
  }
}

/* A head over max_header_size is refused before it ends. */
static void oversized_head_gets_431_at_once(void **state) {
  char req[MAX_HEADER_SIZE + 1024];
  size_t n = (size_t)snprintf(req, sizeof req, "GET /mqtt HTTP/1.1\r\nX-Padding: ");
  memset(req + n, 'a', sizeof req - n);
  assert_int_equal(fmqt_http_refused(fmqt_fixture_port(state), req, sizeof req, head,
                                     sizeof head),
                   431);
}

static void head_under_the_limit_is_accepted(void **state) {
  char extra[MAX_HEADER_SIZE / 2 + 32];
  size_t n = (size_t)snprintf(extra, sizeof extra, "X-Padding: ");
  memset(extra + n, 'a', MAX_HEADER_SIZE / 2);
  memcpy(extra + n + MAX_HEADER_SIZE / 2, "\r\n", 3);
  int fd = fmqt_ws_connect(fmqt_fixture_port(state), "/mqtt", extra);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* A ping sent in the same write as the request is answered after the 101. */
static void frames_right_after_the_request_are_processed(void **state) {
  char req[1024], key[25];
  size_t n = fmqt_ws_request(req, sizeof req, "/mqtt", "", key);
  n += fmqt_ws_build((uint8_t *)req + n, 0x89, 1, "early", 5);
  int fd = fmqt_tcp_connect(fmqt_fixture_port(state));
  fmqt_send_all(fd, req, n);
  assert_int_equal(fmqt_http_read_head(fd, head, sizeof head, TIMEOUT_MS), 101);
  struct fmqt_frame f;
  assert_int_equal(fmqt_ws_recv(fd, &f, TIMEOUT_MS), 0);
  assert_int_equal(f.opcode, 0xA);
  assert_int_equal(f.len, 5);
  assert_memory_equal(f.payload, "early", 5);
  fmqt_frame_free(&f);
  fmqt_ws_close_cleanly(fd, 1000);
}

static struct fmqt_fixture custom_path = {
    .args = (const char *const[]){"--path", "/ws/live", NULL}};

static void configured_path_replaces_the_default(void **state) {
  int fd = fmqt_ws_connect(fmqt_fixture_port(state), "/ws/live", "");
  fmqt_ws_assert_ping(fd, "x", 1, TIMEOUT_MS);
  fmqt_ws_close_cleanly(fd, 1000);
  assert_int_equal(refusal(state, "GET /ws/other HTTP/1.1",
                           "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: 13\r\n"),
                   404);
}

static int default_gateway(void **state) {
  *state = &gateway;
  return fmqt_fixture_setup(state);
}

static int custom_path_gateway(void **state) {
  *state = &custom_path;
  return fmqt_fixture_setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(upgrade_answers_101_with_the_right_headers),
      cmocka_unit_test(accept_matches_the_rfc_example),
      cmocka_unit_test(header_names_and_values_are_case_insensitive),
      cmocka_unit_test(whitespace_around_header_values_is_ignored),
      cmocka_unit_test(offered_subprotocol_is_selected),
      cmocka_unit_test(only_unknown_subprotocols_are_refused),
      cmocka_unit_test(unknown_paths_get_404),
      cmocka_unit_test(other_methods_get_400),
      cmocka_unit_test(plain_get_gets_426),
      cmocka_unit_test(missing_connection_upgrade_gets_400),
      cmocka_unit_test(http_1_0_gets_400),
      cmocka_unit_test(missing_version_gets_400),
      cmocka_unit_test(other_version_gets_426_naming_13),
      cmocka_unit_test(bad_keys_get_400),
      cmocka_unit_test(oversized_head_gets_431_at_once),
      cmocka_unit_test(head_under_the_limit_is_accepted),
      cmocka_unit_test(frames_right_after_the_request_are_processed),
  };
  const struct CMUnitTest custom_path_tests[] = {
      cmocka_unit_test(configured_path_replaces_the_default),
  };
  int failed = cmocka_run_group_tests_name("default settings", tests, default_gateway,
                                           fmqt_fixture_teardown);
  failed += cmocka_run_group_tests_name("--path /ws/live", custom_path_tests,
                                        custom_path_gateway, fmqt_fixture_teardown);
  return failed;
}
