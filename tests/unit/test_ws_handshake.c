#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "http_feed.h"
#include "ws_handshake.h"

#include <string.h>

#define GET "GET /mqtt HTTP/1.1\r\n"
#define HOST "Host: gw.example\r\n"
#define UPGRADE "Upgrade: websocket\r\n"
#define CONNECTION "Connection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VERSION "Sec-WebSocket-Version: 13\r\n"
#define END "\r\n"

#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char *const paths[] = {"/mqtt", "/ws"};

/* Parses req every way (see fmqt_http_parse), then judges it. */
static int check(const char *req, struct fmq_handshake *hs) {
  struct fmq_http_request r;
  size_t consumed;
  int status;

  assert_int_equal(fmqt_http_parse(&r, req, strlen(req), 8192, &consumed), 0);
  assert_int_equal(consumed, strlen(req));
  status = fmq_handshake_check(&r, paths, sizeof(paths) / sizeof(paths[0]), hs);
  assert_int_equal(status, hs->status);
  fmq_http_request_close(&r);
  return status;
}

static void assert_refused(const char *req, int status, const char *reason) {
  struct fmq_handshake hs;

  assert_int_equal(check(req, &hs), status);
  assert_string_equal(hs.reason, reason);
}

static void assert_accepted(const char *req, int subprotocol) {
  struct fmq_handshake hs;

  assert_int_equal(check(req, &hs), 101);
  assert_int_equal(hs.subprotocol, subprotocol);
  assert_string_equal(hs.accept, RFC_ACCEPT);
}

static void assert_rendered(const struct fmq_handshake *hs, const char *want) {
  char out[512];
  size_t len = strlen(want);

  assert_int_equal(fmq_handshake_render(hs, out, sizeof(out)), (int)len);
  assert_memory_equal(out, want, len);
  assert_int_equal(fmq_handshake_render(hs, out, len + 1), (int)len);
  assert_int_equal(fmq_handshake_render(hs, out, len), FMQ_ESPACE);
}

static void test_accept_rfc_vectors(void **state) {
  char accept[FMQ_WS_ACCEPT_LEN + 1];

  (void)state;
  fmq_handshake_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
  assert_string_equal(accept, RFC_ACCEPT);
  fmq_handshake_accept("x3JJHMbDL1EzLkh9GBhXDw==", 24, accept);
  assert_string_equal(accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_upgrade_accepted(void **state) {
  struct fmq_handshake hs;

  (void)state;
  assert_int_equal(check(GET HOST UPGRADE CONNECTION KEY VERSION END, &hs), 101);
  assert_int_equal(hs.subprotocol, 0);
  assert_string_equal(hs.accept, RFC_ACCEPT);
  assert_rendered(&hs, "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                       "\r\n");

  assert_accepted("GET /ws HTTP/1.1\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 0);
  assert_accepted("GET /mqtt?token=abc&topic=a/b HTTP/1.1\r\n" HOST UPGRADE CONNECTION KEY VERSION END,
                  0);
}

static void test_subprotocol_selected(void **state) {
  struct fmq_handshake hs;

  (void)state;
  assert_int_equal(check(GET HOST UPGRADE CONNECTION KEY VERSION
                         "Sec-WebSocket-Protocol: chat, ferrymq.v1\r\n" END, &hs), 101);
  assert_int_equal(hs.subprotocol, 1);
  assert_rendered(&hs, "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                       "Sec-WebSocket-Protocol: ferrymq.v1\r\n"
                       "\r\n");

  assert_accepted(GET HOST UPGRADE CONNECTION KEY VERSION
                  "Sec-WebSocket-Protocol: ferrymq.v1\r\n" END, 1);
  assert_accepted(GET HOST UPGRADE CONNECTION KEY VERSION
                  "Sec-WebSocket-Protocol: chat\r\n"
                  "Sec-WebSocket-Protocol: superchat,ferrymq.v1 , mqtt\r\n" END, 1);
  assert_accepted(GET HOST UPGRADE CONNECTION KEY VERSION
                  "Sec-WebSocket-Protocol: ferrymq.v1\r\n"
                  "Sec-WebSocket-Protocol: chat\r\n" END, 1);
}

static void test_subprotocol_refused(void **state) {
  static const char *const offers[] = {
    "Sec-WebSocket-Protocol: chat, mqtt\r\n",
    "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: mqtt\r\n",
    "Sec-WebSocket-Protocol: Ferrymq.V1\r\n",
    "Sec-WebSocket-Protocol: ferrymq.v1x\r\n",
    "Sec-WebSocket-Protocol: ferrymq\r\n",
    "Sec-WebSocket-Protocol:\r\n",
    "Sec-WebSocket-Protocol: , \r\n",
  };
  char req[512];

  (void)state;
  for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
    strcpy(req, GET HOST UPGRADE CONNECTION KEY VERSION);
    strcat(req, offers[i]);
    strcat(req, END);
    assert_refused(req, 400, "unsupported subprotocol");
  }
}

static void test_unknown_path_404(void **state) {
  struct fmq_handshake hs;

  (void)state;
  assert_refused("GET / HTTP/1.1\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 404, "unknown path");
  assert_refused("GET /mqtt/ HTTP/1.1\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 404, "unknown path");
  assert_refused("GET /MQTT HTTP/1.1\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 404, "unknown path");
  assert_refused("GET /mqttx HTTP/1.1\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 404, "unknown path");
  assert_refused("GET /mqt?t HTTP/1.1\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 404, "unknown path");
  /* The path comes first: nothing else about the request matters. */
  assert_refused("POST /other HTTP/1.0\r\n"
                 "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 8\r\n" END,
                 404, "unknown path");
  assert_refused("GET /other HTTP/1.1\r\n" HOST UPGRADE CONNECTION
                 "Sec-WebSocket-Key: short\r\n" VERSION END, 404, "unknown path");

  assert_int_equal(check("GET /other HTTP/1.1\r\n" END, &hs), 404);
  assert_rendered(&hs, "HTTP/1.1 404 Not Found\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: 13\r\n"
                       "Connection: close\r\n"
                       "\r\n"
                       "unknown path\n");
}

static void test_not_get_400(void **state) {
  (void)state;
  assert_refused("POST /mqtt HTTP/1.1\r\nContent-Length: 0\r\n" HOST UPGRADE CONNECTION KEY VERSION END,
                 400, "not a GET request");
  assert_refused("HEAD /mqtt HTTP/1.1\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 400,
                 "not a GET request");
  /* Before the upgrade check: a plain POST is not a 426. */
  assert_refused("POST /mqtt HTTP/1.1\r\nContent-Length: 0\r\n" END, 400, "not a GET request");
}

static void test_plain_get_426(void **state) {
  struct fmq_handshake hs;

  (void)state;
  assert_int_equal(check(GET HOST END, &hs), 426);
  assert_string_equal(hs.reason, "upgrade required");
  assert_rendered(&hs, "HTTP/1.1 426 Upgrade Required\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: 17\r\n"
                       "Connection: close\r\n"
                       "Upgrade: websocket\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "\r\n"
                       "upgrade required\n");

  assert_refused(GET "Upgrade: h2c\r\n" CONNECTION KEY VERSION END, 426, "upgrade required");
  assert_refused(GET "Upgrade: websockets\r\n" CONNECTION KEY VERSION END, 426, "upgrade required");
  /* Before the Connection, version and key checks. */
  assert_refused(GET "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 8\r\n" END, 426,
                 "upgrade required");
  assert_refused("GET /mqtt HTTP/1.0\r\n" END, 426, "upgrade required");
}

static void test_connection_upgrade_required(void **state) {
  (void)state;
  assert_refused(GET HOST UPGRADE KEY VERSION END, 400, "missing Connection: upgrade");
  assert_refused(GET HOST UPGRADE "Connection: keep-alive\r\n" KEY VERSION END, 400,
                 "missing Connection: upgrade");
  assert_refused(GET HOST UPGRADE "Connection: upgrades\r\n" KEY VERSION END, 400,
                 "missing Connection: upgrade");
  /* Before the version and key checks. */
  assert_refused(GET HOST UPGRADE "Sec-WebSocket-Version: 8\r\n" END, 400,
                 "missing Connection: upgrade");

  assert_accepted(GET HOST UPGRADE "Connection: keep-alive, Upgrade\r\n" KEY VERSION END, 0);
  assert_accepted(GET HOST UPGRADE "Connection: keep-alive\r\nConnection: upgrade\r\n" KEY VERSION END,
                  0);
}

static void test_http10_400(void **state) {
  (void)state;
  assert_refused("GET /mqtt HTTP/1.0\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 400,
                 "HTTP/1.1 required");
  assert_refused("GET /mqtt HTTP/1.0\r\n" HOST UPGRADE CONNECTION "Sec-WebSocket-Version: 8\r\n" END,
                 400, "HTTP/1.1 required");
  assert_refused("GET /mqtt\r\n" HOST UPGRADE CONNECTION KEY VERSION END, 400, "HTTP/1.1 required");
}

static void test_version(void **state) {
  struct fmq_handshake hs;

  (void)state;
  assert_refused(GET HOST UPGRADE CONNECTION KEY END, 400, "missing Sec-WebSocket-Version");

  assert_int_equal(check(GET HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version: 8\r\n" END, &hs), 426);
  assert_string_equal(hs.reason, "unsupported WebSocket version");
  assert_rendered(&hs, "HTTP/1.1 426 Upgrade Required\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: 30\r\n"
                       "Connection: close\r\n"
                       "Upgrade: websocket\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "\r\n"
                       "unsupported WebSocket version\n");

  assert_refused(GET HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version: 13, 8\r\n" END, 426,
                 "unsupported WebSocket version");
  assert_refused(GET HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version: 130\r\n" END, 426,
                 "unsupported WebSocket version");
  assert_refused(GET HOST UPGRADE CONNECTION KEY VERSION VERSION END, 426,
                 "unsupported WebSocket version");
  assert_refused(GET HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version:\r\n" END, 426,
                 "unsupported WebSocket version");
  /* Before the key check. */
  assert_refused(GET HOST UPGRADE CONNECTION "Sec-WebSocket-Version: 8\r\n" END, 426,
                 "unsupported WebSocket version");
  assert_refused(GET HOST UPGRADE CONNECTION "Sec-WebSocket-Key: short\r\n" END, 400,
                 "missing Sec-WebSocket-Version");

  assert_accepted(GET HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version:  13 \r\n" END, 0);
}

static void test_key(void **state) {
  static const char *const keys[] = {
    "",
    "Sec-WebSocket-Key:\r\n",
    KEY KEY,
    KEY "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j\r\n",         /* 15 bytes */
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n",      /* 23 characters */
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==AAAA\r\n", /* 28 characters */
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAA\r\n",     /* 18 bytes, no padding */
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=A\r\n",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j=Q==\r\n",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25*ZQ==\r\n",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25 ZQ==\r\n",
    "Sec-WebSocket-Key: ========================\r\n",
  };
  char req[512];

  (void)state;
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    strcpy(req, GET HOST UPGRADE CONNECTION VERSION);
    strcat(req, keys[i]);
    strcat(req, END);
    assert_refused(req, 400, "invalid Sec-WebSocket-Key");
  }
  /* Before the subprotocol check. */
  assert_refused(GET HOST UPGRADE CONNECTION VERSION "Sec-WebSocket-Key: short\r\n"
                 "Sec-WebSocket-Protocol: chat\r\n" END, 400, "invalid Sec-WebSocket-Key");
}

static void test_names_and_tokens_case_insensitive(void **state) {
  (void)state;
  assert_accepted("GET /mqtt HTTP/1.1\r\n"
                  "hOsT: gw.example\r\n"
                  "upgrade: WebSocket\r\n"
                  "CONNECTION: uPgRaDe\r\n"
                  "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "SEC-WEBSOCKET-VERSION: 13\r\n"
                  "sec-WebSocket-protocol: ferrymq.v1\r\n"
                  "\r\n", 1);
}

/* RFC 6455 4.2.1: the request must carry exactly one Host. It is judged
 * after the HTTP version and before Sec-WebSocket-Version. */
static void test_host_required(void **state) {
  (void)state;
  assert_refused(GET UPGRADE CONNECTION KEY VERSION END, 400, "missing or repeated Host");
  assert_refused(GET HOST HOST UPGRADE CONNECTION KEY VERSION END, 400,
                 "missing or repeated Host");
  assert_refused(GET UPGRADE CONNECTION KEY END, 400, "missing or repeated Host");
  assert_refused("GET /mqtt HTTP/1.0\r\n" UPGRADE CONNECTION KEY VERSION END, 400,
                 "HTTP/1.1 required");
}

static void test_render_error(void **state) {
  static const struct {
    int status;
    const char *line;
  } phrases[] = {
    {400, "HTTP/1.1 400 Bad Request\r\n"},
    {401, "HTTP/1.1 401 Unauthorized\r\n"},
    {403, "HTTP/1.1 403 Forbidden\r\n"},
    {404, "HTTP/1.1 404 Not Found\r\n"},
    {408, "HTTP/1.1 408 Request Timeout\r\n"},
    {426, "HTTP/1.1 426 Upgrade Required\r\n"},
    {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
    {500, "HTTP/1.1 500 Internal Server Error\r\n"},
    {503, "HTTP/1.1 503 Service Unavailable\r\n"},
  };
  static const char want[] = "HTTP/1.1 503 Service Unavailable\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 21\r\n"
                             "Connection: close\r\n"
                             "\r\n"
                             "too many connections\n";
  char out[512];

  (void)state;
  for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++) {
    int len = fmq_http_render_error(phrases[i].status, "x", out, sizeof(out));

    assert_true(len > 0);
    assert_memory_equal(out, phrases[i].line, strlen(phrases[i].line));
  }

  assert_int_equal(fmq_http_render_error(503, "too many connections", out, sizeof(out)),
                   (int)sizeof(want) - 1);
  assert_memory_equal(out, want, sizeof(want) - 1);
  assert_int_equal(fmq_http_render_error(503, "too many connections", out, sizeof(want)),
                   (int)sizeof(want) - 1);
  assert_int_equal(fmq_http_render_error(503, "too many connections", out, sizeof(want) - 1),
                   FMQ_ESPACE);
}

/* RFC 6750 section 3: a 401 names the scheme it wants; nothing else does. */
static void test_render_401_challenge(void **state) {
  static const char want[] = "HTTP/1.1 401 Unauthorized\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 13\r\n"
                             "Connection: close\r\n"
                             "WWW-Authenticate: Bearer realm=\"ferrymq\"\r\n"
                             "\r\n"
                             "unauthorized\n";
  char out[512];

  (void)state;
  assert_int_equal(fmq_http_render_error(401, "unauthorized", out, sizeof(out)),
                   (int)sizeof(want) - 1);
  assert_memory_equal(out, want, sizeof(want) - 1);
  assert_true(fmq_http_render_error(403, "forbidden", out, sizeof(out)) > 0);
  assert_null(strstr(out, "WWW-Authenticate"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_accept_rfc_vectors),
    cmocka_unit_test(test_upgrade_accepted),
    cmocka_unit_test(test_subprotocol_selected),
    cmocka_unit_test(test_subprotocol_refused),
    cmocka_unit_test(test_unknown_path_404),
    cmocka_unit_test(test_not_get_400),
    cmocka_unit_test(test_plain_get_426),
    cmocka_unit_test(test_connection_upgrade_required),
    cmocka_unit_test(test_http10_400),
    cmocka_unit_test(test_version),
    cmocka_unit_test(test_key),
    cmocka_unit_test(test_names_and_tokens_case_insensitive),
    cmocka_unit_test(test_host_required),
    cmocka_unit_test(test_render_error),
    cmocka_unit_test(test_render_401_challenge),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
