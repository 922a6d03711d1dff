#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "http_feed.h"
#include "http_upgrade.h"

#include <stdio.h>
#include <string.h>

#define MAX_HEAD 8192

#define UPGRADE_REQUEST \
  "GET /mqtt HTTP/1.1\r\n" \
  "Host: gw.example:8080\r\n" \
  "Upgrade: websocket\r\n" \
  "Connection: Upgrade\r\n" \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
  "Sec-WebSocket-Version: 13\r\n" \
  "\r\n"

/* RFC 6455 section 5.7: a masked text frame "Hello". */
#define MASKED_HELLO "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"

static void assert_value(const struct fmq_http_request *r, const char *name, const char *want) {
  size_t len;
  const char *v = fmq_http_field(r, name, &len);

  assert_non_null(v);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(v, want, len);
}

static void assert_path(const struct fmq_http_request *r, const char *want) {
  size_t len;
  const char *path = fmq_http_path(r, &len);

  assert_int_equal(len, strlen(want));
  assert_memory_equal(path, want, len);
}

/* "GET /mqtt HTTP/1.1" and one X-Pad field, padded to exactly len bytes;
 * without the final blank line when !complete. */
static size_t padded_head(char *out, size_t len, int complete) {
  static const char start[] = "GET /mqtt HTTP/1.1\r\nX-Pad: ";
  const char *end = complete ? "\r\n\r\n" : "";
  size_t pad = len - (sizeof(start) - 1) - strlen(end);

  memcpy(out, start, sizeof(start) - 1);
  memset(out + sizeof(start) - 1, 'a', pad);
  memcpy(out + len - strlen(end), end, strlen(end));
  return len;
}

/* A GET head with nfields fields "F<i>: v", then the lines in last. */
static size_t head_with_fields(char *out, size_t cap, unsigned nfields, const char *last) {
  size_t len = (size_t)snprintf(out, cap, "GET /mqtt HTTP/1.1\r\n");

  for (unsigned i = 0; i < nfields; i++)
    len += (size_t)snprintf(out + len, cap - len, "F%u: v\r\n", i);
  len += (size_t)snprintf(out + len, cap - len, "%s\r\n", last);
  assert_true(len < cap);
  return len;
}

static void test_upgrade_request_parsed(void **state) {
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, UPGRADE_REQUEST, MAX_HEAD, &consumed), 0);
  assert_int_equal(consumed, sizeof(UPGRADE_REQUEST) - 1);
  assert_int_equal(r.head_bytes, sizeof(UPGRADE_REQUEST) - 1);
  assert_int_equal(r.method, HTTP_GET);
  assert_int_equal(r.http_major, 1);
  assert_int_equal(r.http_minor, 1);
  assert_int_equal(r.nfields, 5);
  assert_path(&r, "/mqtt");
  assert_value(&r, "Host", "gw.example:8080");
  assert_value(&r, "Upgrade", "websocket");
  assert_value(&r, "Connection", "Upgrade");
  assert_value(&r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  assert_value(&r, "Sec-WebSocket-Version", "13");
  fmq_http_request_close(&r);
}

static void test_frame_after_upgrade_left_unconsumed(void **state) {
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, UPGRADE_REQUEST MASKED_HELLO, MAX_HEAD, &consumed), 0);
  assert_int_equal(consumed, sizeof(UPGRADE_REQUEST) - 1);
  fmq_http_request_close(&r);
}

static void test_pipelined_request_left_unconsumed(void **state) {
  static const char first[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                                       "GET /b HTTP/1.1\r\nHost: y\r\n\r\n",
                                   MAX_HEAD, &consumed), 0);
  assert_int_equal(consumed, sizeof(first) - 1);
  assert_path(&r, "/a");
  assert_value(&r, "Host", "x");
  fmq_http_request_close(&r);
}

static void test_body_is_part_of_request(void **state) {
  static const char head[] = "POST /mqtt HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, "POST /mqtt HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
                                       "hello" MASKED_HELLO,
                                   MAX_HEAD, &consumed), 0);
  assert_int_equal(consumed, sizeof(head) - 1 + 5);
  assert_int_equal(r.head_bytes, sizeof(head) - 1);
  assert_int_equal(r.method, HTTP_POST);
  fmq_http_request_close(&r);

  assert_int_equal(FMQT_HTTP_PARSE(&r, "POST /mqtt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
                                   MAX_HEAD, &consumed), FMQ_ENEEDMORE);
  assert_int_equal(r.complete, 0);
  fmq_http_request_close(&r);
}

static void test_chunked_trailers_not_fields(void **state) {
  static const char head[] = "POST /mqtt HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  static const char body[] = "5\r\nhello\r\n0\r\n"
                             "X-Trailer-Whose-Name-Alone-Is-Longer-Than-The-Head-Limit: v\r\n"
                             "\r\n";
  char req[sizeof(head) + sizeof(body) + sizeof(MASKED_HELLO)];
  struct fmq_http_request r;
  size_t consumed, len;

  (void)state;
  len = (size_t)snprintf(req, sizeof(req), "%s%s%s", head, body, MASKED_HELLO);
  assert_int_equal(fmqt_http_parse(&r, req, len, sizeof(head) - 1, &consumed), 0);
  assert_int_equal(consumed, sizeof(head) - 1 + sizeof(body) - 1);
  assert_int_equal(r.head_bytes, sizeof(head) - 1);
  assert_int_equal(r.nfields, 1);
  assert_value(&r, "Transfer-Encoding", "chunked");
  assert_true(r.cap <= sizeof(head) - 1);
  fmq_http_request_close(&r);
}

static void test_incomplete_head_needs_more(void **state) {
  static const char head[] = "GET /mqtt HTTP/1.1\r\nHost: x\r\n";
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, head, MAX_HEAD, &consumed), FMQ_ENEEDMORE);
  assert_int_equal(consumed, sizeof(head) - 1);
  assert_int_equal(r.head_bytes, sizeof(head) - 1);
  fmq_http_request_close(&r);
}

static void test_query_excluded_from_path(void **state) {
  static const char target[] = "/mqtt?token=a?b&topic=x";
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /mqtt?token=a?b&topic=x HTTP/1.1\r\n\r\n", MAX_HEAD,
                                   &consumed), 0);
  assert_path(&r, "/mqtt");
  assert_int_equal(r.target_len, sizeof(target) - 1);
  assert_memory_equal(r.buf + r.target_off, target, sizeof(target) - 1);
  fmq_http_request_close(&r);

  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /mqtt/ws HTTP/1.1\r\n\r\n", MAX_HEAD, &consumed), 0);
  assert_path(&r, "/mqtt/ws");
  assert_int_equal(r.target_len, r.path_len);
  fmq_http_request_close(&r);
}

static void test_field_names_case_insensitive(void **state) {
  struct fmq_http_request r;
  size_t consumed, len;
  unsigned index = 0;
  const char *v;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /mqtt HTTP/1.1\r\n"
                                       "sec-websocket-PROTOCOL: a\r\n"
                                       "Host: x\r\n"
                                       "SEC-WEBSOCKET-protocol: b, c\r\n"
                                       "\r\n",
                                   MAX_HEAD, &consumed), 0);
  v = fmq_http_field_next(&r, "Sec-WebSocket-Protocol", &index, &len);
  assert_non_null(v);
  assert_int_equal(index, 1);
  assert_int_equal(len, 1);
  assert_memory_equal(v, "a", 1);
  v = fmq_http_field_next(&r, "Sec-WebSocket-Protocol", &index, &len);
  assert_non_null(v);
  assert_int_equal(index, 3);
  assert_int_equal(len, 4);
  assert_memory_equal(v, "b, c", 4);
  assert_null(fmq_http_field_next(&r, "Sec-WebSocket-Protocol", &index, &len));
  assert_value(&r, "HOST", "x");
  assert_null(fmq_http_field(&r, "Sec-WebSocket", &len));
  assert_null(fmq_http_field(&r, "Hos", &len));
  fmq_http_request_close(&r);
}

static void test_field_values_trimmed(void **state) {
  struct fmq_http_request r;
  size_t consumed, len;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /mqtt HTTP/1.1\r\n"
                                       "X-A: \t a \t b \t \r\n"
                                       "X-Empty:\r\n"
                                       "X-Blank:  \t \r\n"
                                       "X-B:c\r\n"
                                       "\r\n",
                                   MAX_HEAD, &consumed), 0);
  assert_int_equal(r.nfields, 4);
  assert_value(&r, "X-A", "a \t b");
  assert_value(&r, "X-Empty", "");
  assert_value(&r, "X-Blank", "");
  assert_value(&r, "X-B", "c");
  assert_null(fmq_http_field(&r, "X-C", &len));
  fmq_http_request_close(&r);
}

static void test_field_has_token(void **state) {
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /mqtt HTTP/1.1\r\n"
                                       "Connection: keep-alive, Upgrade\r\n"
                                       "Upgrade: h2c\r\n"
                                       "upgrade: WebSocket\r\n"
                                       "X-List: ,, a ,b,,\r\n"
                                       "X-Near: upgrades, xupgrade, up grade\r\n"
                                       "\r\n",
                                   MAX_HEAD, &consumed), 0);
  assert_true(fmq_http_field_has_token(&r, "Connection", "upgrade"));
  assert_true(fmq_http_field_has_token(&r, "connection", "KEEP-ALIVE"));
  assert_true(fmq_http_field_has_token(&r, "Upgrade", "websocket"));
  assert_true(fmq_http_field_has_token(&r, "Upgrade", "h2c"));
  assert_true(fmq_http_field_has_token(&r, "X-List", "a"));
  assert_true(fmq_http_field_has_token(&r, "X-List", "b"));
  assert_false(fmq_http_field_has_token(&r, "X-List", ""));
  assert_false(fmq_http_field_has_token(&r, "X-Near", "upgrade"));
  assert_false(fmq_http_field_has_token(&r, "Connection", "close"));
  assert_false(fmq_http_field_has_token(&r, "X-Missing", "a"));
  fmq_http_request_close(&r);
}

static void test_list_next(void **state) {
  static const char value[] = " a ,, \tbc\t,d,  , ";
  const char *cur = value, *end = value + sizeof(value) - 1, *elem;
  size_t len;

  (void)state;
  elem = fmq_http_list_next(&cur, end, &len);
  assert_int_equal(len, 1);
  assert_memory_equal(elem, "a", 1);
  elem = fmq_http_list_next(&cur, end, &len);
  assert_int_equal(len, 2);
  assert_memory_equal(elem, "bc", 2);
  elem = fmq_http_list_next(&cur, end, &len);
  assert_int_equal(len, 1);
  assert_memory_equal(elem, "d", 1);
  assert_null(fmq_http_list_next(&cur, end, &len));
  assert_ptr_equal(cur, end);

  cur = value;
  assert_null(fmq_http_list_next(&cur, value, &len));
}

static void test_http10_request(void **state) {
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /mqtt HTTP/1.0\r\nHost: x\r\n\r\n", MAX_HEAD,
                                   &consumed), 0);
  assert_int_equal(r.http_major, 1);
  assert_int_equal(r.http_minor, 0);
  fmq_http_request_close(&r);
}

static void test_head_at_limit_accepted(void **state) {
  static const char post[] = "POST /mqtt HTTP/1.1\r\nContent-Length: 20\r\n\r\n";
  char req[300 + sizeof(MASKED_HELLO)];
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  padded_head(req, 300, 1);
  assert_int_equal(fmqt_http_parse(&r, req, 300, 300, &consumed), 0);
  assert_int_equal(consumed, 300);
  assert_int_equal(r.head_bytes, 300);
  assert_true(r.cap <= 300);
  fmq_http_request_close(&r);

  /* Bytes after the head do not count against the limit. */
  memcpy(req + 300, MASKED_HELLO, sizeof(MASKED_HELLO) - 1);
  assert_int_equal(fmqt_http_parse(&r, req, sizeof(req) - 1, 300, &consumed), 0);
  assert_int_equal(consumed, 300);
  fmq_http_request_close(&r);

  /* Nor does a body. */
  assert_int_equal(FMQT_HTTP_PARSE(&r, "POST /mqtt HTTP/1.1\r\nContent-Length: 20\r\n\r\n"
                                       "01234567890123456789",
                                   sizeof(post) - 1, &consumed), 0);
  assert_int_equal(consumed, sizeof(post) - 1 + 20);
  fmq_http_request_close(&r);
}

static void test_head_over_limit_refused(void **state) {
  char req[301];
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  padded_head(req, 301, 1);
  assert_int_equal(fmqt_http_parse(&r, req, 301, 300, &consumed), FMQ_EHEADERS);
  fmq_http_request_close(&r);

  /* Refused as soon as the byte over the limit arrives, not at the end. */
  padded_head(req, 301, 0);
  assert_int_equal(fmqt_http_parse(&r, req, 300, 300, &consumed), FMQ_ENEEDMORE);
  fmq_http_request_close(&r);
  assert_int_equal(fmqt_http_parse(&r, req, 301, 300, &consumed), FMQ_EHEADERS);
  fmq_http_request_close(&r);

  /* A limit below the request line. */
  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /mqtt HTTP/1.1\r\n\r\n", 21, &consumed),
                   FMQ_EHEADERS);
  fmq_http_request_close(&r);
}

static void test_too_many_fields(void **state) {
  char req[1024];
  struct fmq_http_request r;
  size_t consumed, len;

  (void)state;
  len = head_with_fields(req, sizeof(req), FMQ_HTTP_MAX_HEADERS, "");
  assert_int_equal(fmqt_http_parse(&r, req, len, MAX_HEAD, &consumed), 0);
  assert_int_equal(r.nfields, FMQ_HTTP_MAX_HEADERS);
  assert_value(&r, "F63", "v");
  fmq_http_request_close(&r);

  len = head_with_fields(req, sizeof(req), FMQ_HTTP_MAX_HEADERS + 1, "");
  assert_int_equal(fmqt_http_parse(&r, req, len, MAX_HEAD, &consumed), FMQ_EHEADERS);
  fmq_http_request_close(&r);

  /* Refused before its value is read... */
  len = head_with_fields(req, sizeof(req), FMQ_HTTP_MAX_HEADERS, "X: a\x01z\r\n");
  assert_int_equal(fmqt_http_parse(&r, req, len, MAX_HEAD, &consumed), FMQ_EHEADERS);
  fmq_http_request_close(&r);

  /* ...but only once its name proved well formed, however it is split. */
  len = head_with_fields(req, sizeof(req), FMQ_HTTP_MAX_HEADERS, "Bad\xff" "Name: v\r\n");
  assert_int_equal(fmqt_http_parse(&r, req, len, MAX_HEAD, &consumed), FMQ_EHTTP);
  fmq_http_request_close(&r);
}

static void test_malformed_requests(void **state) {
  static const char *const bad[] = {
    "get /mqtt HTTP/1.1\r\n\r\n",
    "GET /mqtt HTTX/1.1\r\n\r\n",
    "GET /mqtt HTTP/1.1 x\r\n\r\n",
    "GET  HTTP/1.1\r\n\r\n",
    "GET /mq tt HTTP/1.1\r\n\r\n",
    "HTTP/1.1 200 OK\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\nHost: a\x01z\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "GET /mqtt HTTP/1.1\r\nContent-Length: x\r\n\r\n",
  };
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(fmqt_http_parse(&r, bad[i], strlen(bad[i]), MAX_HEAD, &consumed),
                     FMQ_EHTTP);
    fmq_http_request_close(&r);
  }
}

/* llhttp reports the empty target of "CONNECT \r" as an empty span before
 * anything else was appended (this request once made a NULL memcpy), and
 * takes "CONNECT \r\n" as a complete HTTP/0.9-style request line. */
static void test_connect_with_empty_target(void **state) {
  struct fmq_http_request r;
  size_t consumed, len;

  (void)state;
  assert_int_equal(FMQT_HTTP_PARSE(&r, "CONNECT \r", MAX_HEAD, &consumed), FMQ_ENEEDMORE);
  assert_int_equal(r.target_len, 0);
  fmq_http_request_close(&r);

  assert_int_equal(FMQT_HTTP_PARSE(&r, "CONNECT \r\n\r\n", MAX_HEAD, &consumed), 0);
  assert_int_equal(r.method, HTTP_CONNECT);
  assert_non_null(fmq_http_path(&r, &len));
  assert_int_equal(len, 0);
  fmq_http_request_close(&r);

  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET \r\n", MAX_HEAD, &consumed), FMQ_EHTTP);
  fmq_http_request_close(&r);
}

static void test_unfed_request_owns_nothing(void **state) {
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  memset(&r, 0xa5, sizeof(r));
  fmq_http_request_init(&r, MAX_HEAD);
  assert_null(r.buf);
  assert_int_equal(r.cap, 0);
  assert_int_equal(r.nfields, 0);
  assert_int_equal(r.error, 0);
  fmq_http_request_close(&r);

  assert_int_equal(fmq_http_request_feed(&r, (const uint8_t *)"GET /", 5, &consumed),
                   FMQ_ENEEDMORE);
  assert_non_null(r.buf);
  fmq_http_request_close(&r);
  assert_null(r.buf);
  assert_int_equal(r.cap, 0);
}

static void test_arena_grows_to_the_limit(void **state) {
  char req[2000];
  struct fmq_http_request r;
  size_t consumed;

  (void)state;
  padded_head(req, sizeof(req), 1);
  assert_int_equal(fmqt_http_parse(&r, req, sizeof(req), sizeof(req), &consumed), 0);
  assert_true(r.cap >= r.len);
  assert_true(r.cap <= sizeof(req));
  fmq_http_request_close(&r);

  /* Sized to the head, not to the limit. */
  assert_int_equal(FMQT_HTTP_PARSE(&r, UPGRADE_REQUEST, MAX_HEAD, &consumed), 0);
  assert_true(r.cap >= r.len);
  assert_true(r.cap < MAX_HEAD / 4);
  fmq_http_request_close(&r);
}

/* Parses "GET target HTTP/1.1" into *r; the caller closes it. */
static void parse_target(struct fmq_http_request *r, const char *target) {
  char req[512];
  int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", target);
  size_t consumed;

  assert_true(n > 0 && (size_t)n < sizeof(req));
  assert_int_equal(fmqt_http_parse(r, req, (size_t)n, MAX_HEAD, &consumed), 0);
}

/* Expects the values of every `name` parameter of target, in order, as a
 * NULL-terminated list of strings (without NUL bytes). */
static void expect_query(const char *target, const char *name, const char *const *want) {
  struct fmq_http_request r;
  size_t pos = 0, len;
  char out[256];

  parse_target(&r, target);
  for (; *want != NULL; want++) {
    memset(out, 0x55, sizeof(out));
    assert_int_equal(fmq_http_query_next(&r, name, &pos, out, r.target_len + 1, &len), 1);
    assert_int_equal(len, strlen(*want));
    assert_memory_equal(out, *want, len + 1);
  }
  assert_int_equal(fmq_http_query_next(&r, name, &pos, out, sizeof(out), &len), 0);
  assert_int_equal(fmq_http_query_next(&r, name, &pos, out, sizeof(out), &len), 0);
  fmq_http_request_close(&r);
}

#define VALUES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

static void test_query_next_values(void **state) {
  (void)state;
  /* Repeated, in order, with others in between. */
  expect_query("/mqtt?topic=a&token=t&topic=b&x=1&topic=c", "topic", VALUES("a", "b", "c"));
  expect_query("/mqtt?token=t&topic=a", "token", VALUES("t"));
  /* %XX decoding, either case; '+' stays '+'. */
  expect_query("/mqtt?topic=a%2Fb%2f%23&topic=%2B%2F%2B&topic=a+b", "topic",
               VALUES("a/b/#", "+/+", "a+b"));
  expect_query("/mqtt?topic=devices/+/temp&topic=%20%41%7e", "topic",
               VALUES("devices/+/temp", " A~"));
  expect_query("/mqtt?topic=caf%C3%A9", "topic", VALUES("caf\xc3\xa9"));
  /* Empty values: "name=" and a bare "name". */
  expect_query("/mqtt?topic=&topic&topic=x", "topic", VALUES("", "", "x"));
  /* '=' only splits once; empty parameters are skipped. */
  expect_query("/mqtt?&&token=a=b%3D&&", "token", VALUES("a=b="));
  expect_query("/mqtt?=x&topic=y&", "topic", VALUES("y"));
  /* Names are exact: no prefix, suffix, case or %-decoding match. */
  expect_query("/mqtt?top=x&topics=y&xtopic=z&Topic=u&TOPIC=v&%74opic=w&topic=ok", "topic",
               VALUES("ok"));
  expect_query("/mqtt?top=x&topics=y", "topic", NONE);
  expect_query("/mqtt?topic=x", "top", NONE);
  /* No query at all, or an empty one. */
  expect_query("/mqtt", "topic", NONE);
  expect_query("/mqtt?", "topic", NONE);
  expect_query("/", "topic", NONE);
  /* A bad escape in a parameter not asked for does not matter. */
  expect_query("/mqtt?x=%&topic=a&y=%G", "topic", VALUES("a"));
}

static void test_query_next_decodes_nul(void **state) {
  struct fmq_http_request r;
  size_t pos = 0, len;
  char out[16];

  (void)state;
  parse_target(&r, "/mqtt?topic=a%00b");
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, sizeof(out), &len), 1);
  assert_int_equal(len, 3);
  assert_memory_equal(out, "a\0b", 4);
  fmq_http_request_close(&r);
}

static void test_query_next_bad_escapes(void **state) {
  static const char *const targets[] = {
      "/mqtt?topic=%",     "/mqtt?topic=%G1",   "/mqtt?topic=%4",   "/mqtt?topic=a%4",
      "/mqtt?topic=%1G",   "/mqtt?topic=%%41",  "/mqtt?topic=%-1",  "/mqtt?topic=a%",
      "/mqtt?topic=a/#",   "/mqtt?topic=a#b",   "/mqtt?topic=%23#",
  };
  struct fmq_http_request r;
  size_t pos, len, consumed;
  char out[64];

  (void)state;
  for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
    parse_target(&r, targets[i]);
    pos = 0;
    assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, sizeof(out), &len), FMQ_EHTTP);
    assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, sizeof(out), &len), 0);
    fmq_http_request_close(&r);
  }

  /* A value ending the target is followed in the arena by the first field
   * name, here a hex digit that must not complete the escape. */
  assert_int_equal(FMQT_HTTP_PARSE(&r, "GET /mqtt?topic=%4 HTTP/1.1\r\nA: b\r\n\r\n", MAX_HEAD,
                                   &consumed), 0);
  pos = 0;
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, sizeof(out), &len), FMQ_EHTTP);
  fmq_http_request_close(&r);

  /* The position moves past a bad parameter, so the next one is found. */
  parse_target(&r, "/mqtt?topic=%zz&topic=ok");
  pos = 0;
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, sizeof(out), &len), FMQ_EHTTP);
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, sizeof(out), &len), 1);
  assert_string_equal(out, "ok");
  fmq_http_request_close(&r);
}

static void test_query_next_space(void **state) {
  struct fmq_http_request r;
  size_t pos, len = 99;
  char out[8];

  (void)state;
  parse_target(&r, "/mqtt?topic=abcd&topic=&topic=%41%42%43%44");
  pos = 0;
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, 4, &len), FMQ_ESPACE);
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, 0, &len), FMQ_ESPACE);
  assert_int_equal(len, 99);
  /* Exactly the value and its NUL: decoded length, not raw length, counts. */
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, 5, &len), 1);
  assert_int_equal(len, 4);
  assert_string_equal(out, "ABCD");
  pos = 0;
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, 5, &len), 1);
  assert_string_equal(out, "abcd");
  assert_int_equal(fmq_http_query_next(&r, "topic", &pos, out, 1, &len), 1);
  assert_int_equal(len, 0);
  assert_string_equal(out, "");
  fmq_http_request_close(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_upgrade_request_parsed),
    cmocka_unit_test(test_frame_after_upgrade_left_unconsumed),
    cmocka_unit_test(test_pipelined_request_left_unconsumed),
    cmocka_unit_test(test_body_is_part_of_request),
    cmocka_unit_test(test_chunked_trailers_not_fields),
    cmocka_unit_test(test_incomplete_head_needs_more),
    cmocka_unit_test(test_query_excluded_from_path),
    cmocka_unit_test(test_field_names_case_insensitive),
    cmocka_unit_test(test_field_values_trimmed),
    cmocka_unit_test(test_field_has_token),
    cmocka_unit_test(test_list_next),
    cmocka_unit_test(test_http10_request),
    cmocka_unit_test(test_head_at_limit_accepted),
    cmocka_unit_test(test_head_over_limit_refused),
    cmocka_unit_test(test_too_many_fields),
    cmocka_unit_test(test_malformed_requests),
    cmocka_unit_test(test_connect_with_empty_target),
    cmocka_unit_test(test_unfed_request_owns_nothing),
    cmocka_unit_test(test_arena_grows_to_the_limit),
    cmocka_unit_test(test_query_next_values),
    cmocka_unit_test(test_query_next_decodes_nul),
    cmocka_unit_test(test_query_next_bad_escapes),
    cmocka_unit_test(test_query_next_space),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
