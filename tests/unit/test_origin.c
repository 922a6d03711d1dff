#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "origin.h"

#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct fmqt_origin {
  const char *in, *out;
};

static const struct fmqt_origin good[] = {
    {"https://example.com", "https://example.com:443"},
    {"HTTPS://Example.COM", "https://example.com:443"},
    {"https://example.com:443", "https://example.com:443"},
    {"https://example.com/", "https://example.com:443"},
    {"https://example.com:443/", "https://example.com:443"},
    {"http://example.com", "http://example.com:80"},
    {"http://example.com:8080", "http://example.com:8080"},
    {"http://example.com:0080", "http://example.com:80"},
    {"http://example.com:1", "http://example.com:1"},
    {"http://example.com:65535", "http://example.com:65535"},
    {"ws://Host", "ws://host:80"},
    {"WSS://host", "wss://host:443"},
    {"wss://host:8443", "wss://host:8443"},
    {"http://127.0.0.1", "http://127.0.0.1:80"},
    {"http://127.0.0.1:3000", "http://127.0.0.1:3000"},
    {"http://localhost", "http://localhost:80"},
    {"http://my_host.example-1.com", "http://my_host.example-1.com:80"},
    {"http://[::1]", "http://[::1]:80"},
    {"http://[::1]:8080/", "http://[::1]:8080"},
    {"https://[2001:DB8::A]", "https://[2001:db8::a]:443"},
    {"http://[::ffff:1.2.3.4]", "http://[::ffff:1.2.3.4]:80"},
    /* other schemes: no default port, a given one is kept */
    {"chrome-extension://abcdef", "chrome-extension://abcdef"},
    {"Chrome-Extension://ABCDEF/", "chrome-extension://abcdef"},
    {"moz-extension://abc:1234", "moz-extension://abc:1234"},
    {"a+b.c-d://host", "a+b.c-d://host"},
    {"httpx://host", "httpx://host"},
    {"http2://host:80", "http2://host:80"},
};

static void test_normalize(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(good); i++) {
    size_t len = strlen(good[i].in);
    char out[128];
    int n = fmq_origin_normalize(good[i].in, len, out, sizeof(out));

    if (n < 0)
      fail_msg("\"%s\": %d", good[i].in, n);
    assert_string_equal(out, good[i].out);
    assert_int_equal(n, strlen(good[i].out));
  }
}

static int fmqt_same(const char *a, const char *b) {
  char na[128], nb[128];

  assert_true(fmq_origin_normalize(a, strlen(a), na, sizeof(na)) > 0);
  assert_true(fmq_origin_normalize(b, strlen(b), nb, sizeof(nb)) > 0);
  return strcmp(na, nb) == 0;
}

static void test_compare(void **state) {
  (void)state;
  assert_true(fmqt_same("HTTPS://Example.COM", "https://example.com:443"));
  assert_true(fmqt_same("http://a.com/", "http://A.com:80"));
  assert_true(fmqt_same("ws://a.com", "ws://a.com:80"));
  assert_true(fmqt_same("http://[::1]:80", "http://[::1]"));
  assert_false(fmqt_same("https://example.com", "http://example.com"));
  assert_false(fmqt_same("https://example.com", "https://example.com:8443"));
  assert_false(fmqt_same("http://example.com:8080", "http://example.com:8081"));
  assert_false(fmqt_same("http://example.com", "ws://example.com"));
  assert_false(fmqt_same("http://example.com:443", "https://example.com"));
  assert_false(fmqt_same("http://example.com", "http://www.example.com"));
  assert_false(fmqt_same("chrome-extension://abc", "chrome-extension://abc:80"));
}

static void test_malformed(void **state) {
  static const char *const bad[] = {
      "", "null", "NULL", "example.com", "//example.com", "http:", "http:/", "http://",
      "http:example.com", "http:/example.com", "://example.com", "1http://a", "-a://b",
      "ht tp://a", "http://a b", " http://a", "http://a ", "http://a\t", "http://a\r\n",
      "http://a\x01", "http://user@a", "http://user:pw@a", "http://a@", "http://a/path",
      "http://a//", "http://a/?", "http://a?x=1", "http://a#frag", "http://a/#", "http://a:",
      "http://a:0", "http://a:65536", "http://a:99999999999999999999", "http://a:+80",
      "http://a:-80", "http://a:80a", "http://a:8 0", "http://a:80:80", "http://:80",
      "http://[::1", "http://[::1]x", "http://[1.2.3.4]", "http://[]", "http://[::g]",
      "http://[::1%25eth0]", "http://[::1]]", "http://[[::1]]", "http://::1",
      "http://a%2e", "http://\xc3\xa9.com", "http://a\\b", "http://a,b", "chrome-extension://",
  };
  char out[128];

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
    int n = fmq_origin_normalize(bad[i], strlen(bad[i]), out, sizeof(out));
    if (n != -1)
      fail_msg("\"%s\": %d", bad[i], n);
  }
}

/* Only len bytes count: a NUL inside is malformed, what follows is not read. */
static void test_length(void **state) {
  char out[64];

  (void)state;
  assert_int_equal(fmq_origin_normalize("http://a\0b", 10, out, sizeof(out)), -1);
  assert_int_equal(fmq_origin_normalize("http://[::1\0]", 13, out, sizeof(out)), -1);
  assert_int_equal(fmq_origin_normalize("http://ab/x", 9, out, sizeof(out)), 12);
  assert_string_equal(out, "http://ab:80");
  assert_int_equal(fmq_origin_normalize("http://a:80", 10, out, sizeof(out)), 10);
  assert_string_equal(out, "http://a:8");
  assert_int_equal(fmq_origin_normalize(NULL, 0, out, sizeof(out)), -1);
}

/* The buffer must hold the result and its NUL; len + 8 always does. The
 * input is copied to the heap without a terminator so ASan sees over-reads. */
static void test_space(void **state) {
  static const char *const inputs[] = {
      "http://a", "https://a", "ws://a", "wss://a", "https://a/", "http://[::]", "x://a",
      "https://example.com:443", "http://a:0000000080",
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(inputs); i++) {
    size_t len = strlen(inputs[i]);
    char *in = malloc(len), *out = malloc(len + 8);
    int n;

    assert_non_null(in);
    assert_non_null(out);
    memcpy(in, inputs[i], len);
    n = fmq_origin_normalize(in, len, out, len + 8);
    assert_true(n > 0);
    assert_int_equal(strlen(out), n);
    assert_int_equal(fmq_origin_normalize(in, len, out, (size_t)n + 1), n);
    assert_int_equal(fmq_origin_normalize(in, len, out, (size_t)n), FMQ_ESPACE);
    assert_int_equal(fmq_origin_normalize(in, len, out, 0), FMQ_ESPACE);
    free(in);
    free(out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize),
      cmocka_unit_test(test_compare),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_length),
      cmocka_unit_test(test_space),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
