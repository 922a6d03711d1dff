#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "base64.h"
#include "error.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define STD FMQ_BASE64_STD
#define URL FMQ_BASE64_URL
#define CANON FMQ_BASE64_CANONICAL

/* Index = the 6-bit value of the character. */
static const char std_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Decodes text[0..len) with both entry points and asserts both give exactly
 * want[0..want_len), writing no byte past it; want == NULL: both refuse the
 * text with FMQ_EBASE64 and the new buffer is NULL. The text is copied into
 * a buffer of its own followed by "!!!!", which a decoder reading past len
 * (where url padding would go) must refuse, and ASan flags reads further
 * on. */
static void fmqt_expect(const char *text, size_t len, unsigned flags, const void *want,
                        size_t want_len) {
  static uint8_t sentinel;
  uint8_t out[1024];
  uint8_t *owned = &sentinel;
  char *in = malloc(len + 4);
  int n;

  assert_non_null(in);
  memcpy(in, text, len);
  memcpy(in + len, "!!!!", 4);
  assert_true(len <= sizeof(out));
  memset(out, 0xa5, sizeof(out));
  n = fmq_base64_decode(in, len, flags, out, sizeof(out));
  if (want == NULL) {
    assert_int_equal(n, FMQ_EBASE64);
  } else {
    assert_int_equal(n, want_len);
    assert_memory_equal(out, want, want_len);
    for (size_t i = want_len; i < sizeof(out); i++)
      assert_int_equal(out[i], 0xa5);
  }

  n = fmq_base64_decode_new(in, len, flags, &owned);
  if (want == NULL) {
    assert_int_equal(n, FMQ_EBASE64);
    assert_null(owned);
  } else {
    assert_int_equal(n, want_len);
    assert_non_null(owned);
    assert_memory_equal(owned, want, want_len);
    free(owned);
  }
  free(in);
}

static void fmqt_expect_str(const char *in, unsigned flags, const char *want) {
  fmqt_expect(in, strlen(in), flags, want, want != NULL ? strlen(want) : 0);
}

/* base64 of data through EVP_EncodeBlock (not the code under test); url:
 * in the url alphabet without padding. Returns the length written. */
static size_t fmqt_encode(const uint8_t *data, size_t len, int url, char *out) {
  int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);

  assert_true(n >= 0);
  if (url) {
    while (n > 0 && out[n - 1] == '=')
      n--;
    for (int i = 0; i < n; i++)
      out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
  }
  return (size_t)n;
}

/* RFC 4648 section 10, padded and (url) without padding. */
static void test_rfc4648_vectors(void **state) {
  static const struct {
    const char *std, *url, *raw;
  } v[] = {
      {"", "", ""},
      {"Zg==", "Zg", "f"},
      {"Zm8=", "Zm8", "fo"},
      {"Zm9v", "Zm9v", "foo"},
      {"Zm9vYg==", "Zm9vYg", "foob"},
      {"Zm9vYmE=", "Zm9vYmE", "fooba"},
      {"Zm9vYmFy", "Zm9vYmFy", "foobar"},
  };
  char text[16];

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(v); i++) {
    const uint8_t *raw = (const uint8_t *)v[i].raw;
    size_t raw_len = strlen(v[i].raw);

    for (unsigned canon = 0; canon <= CANON; canon += CANON) {
      fmqt_expect_str(v[i].std, STD | canon, v[i].raw);
      fmqt_expect_str(v[i].url, URL | canon, v[i].raw);
    }
    /* And the other way, which is OpenSSL's encoder: the vectors agree. */
    assert_int_equal(fmqt_encode(raw, raw_len, 0, text), strlen(v[i].std));
    assert_memory_equal(text, v[i].std, strlen(v[i].std));
    assert_int_equal(fmqt_encode(raw, raw_len, 1, text), strlen(v[i].url));
    assert_memory_equal(text, v[i].url, strlen(v[i].url));
  }
  /* Each one as the other kind: a padded text is not url, an unpadded one
   * that needs padding is not standard. */
  for (size_t i = 0; i < ARRAY_LEN(v); i++) {
    if (strchr(v[i].std, '=') != NULL)
      fmqt_expect_str(v[i].std, URL, NULL);
    if (strlen(v[i].url) % 4 != 0)
      fmqt_expect_str(v[i].url, STD, NULL);
  }
}

static void test_empty(void **state) {
  uint8_t *owned = NULL;

  (void)state;
  for (unsigned flags = 0; flags <= (URL | CANON); flags++) {
    assert_int_equal(fmq_base64_decode(NULL, 0, flags, NULL, 0), 0);
    assert_int_equal(fmq_base64_decode("", 0, flags, NULL, 0), 0);
    assert_int_equal(fmq_base64_decode_new("", 0, flags, &owned), 0);
    assert_non_null(owned);
    free(owned);
    /* The length is what counts, not a terminator. */
    assert_int_equal(fmq_base64_decode("Zm9v", 0, flags, NULL, 0), 0);
  }
}

static void test_padding(void **state) {
  static const char *const bad_std[] = {
      "Z",     "Zg",    "Zg=",   "Zm9",   "Zm9vY", "Zm9vYg=",      "Zg===",    "Z===",
      "====",  "==",    "=",     "Zg=A",  "Z=g=",  "=Zg=",         "Zm=v",     "Zm9v=",
      "Zm9v====", "Zm9vZ===", "Zg==Zm9v", "Zm9v=Zg=", "Zm9vYg==Zg==",
  };
  static const char *const bad_url[] = {
      "Z", "Zm9vY", "Zm9vYmFyZ", "Zg=", "Zg==", "Zm8=", "Zg=A", "Z=", "=", "====",
      "Zm9v=", "Zm9vYg=",
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(bad_std); i++) {
    fmqt_expect_str(bad_std[i], STD, NULL);
    fmqt_expect_str(bad_std[i], STD | CANON, NULL);
  }
  for (size_t i = 0; i < ARRAY_LEN(bad_url); i++) {
    fmqt_expect_str(bad_url[i], URL, NULL);
    fmqt_expect_str(bad_url[i], URL | CANON, NULL);
  }
  /* Padding decodes to no byte: "AA==" is one zero byte, not three. */
  fmqt_expect("AA==", 4, STD, "\0", 1);
  fmqt_expect("AAA=", 4, STD, "\0\0", 2);
  fmqt_expect("AAAA", 4, STD, "\0\0\0", 3);
  fmqt_expect("AA", 2, URL, "\0", 1);
  fmqt_expect("AAA", 3, URL, "\0\0", 2);
}

static void test_alphabets(void **state) {
  /* Whitespace at either end, a whole quantum of it too, is what
   * EVP_DecodeBlock alone would trim. */
  static const char *const not_base64[] = {
      " Zm9v",    "Zm9v ",      "Zm 9",       "    ",    "\tZm9vYmE", "Zm9vYm\r\n",
      "Zm9vYmE\n", "    Zm9v",   "Zm9v    ",   "Zm\n9",  "Zm9v\r\n\r\n", "Zm9vYmFy\r\n",
      "Zm9*",     "Zm9.",       "Zm9:",       "Zm9!",    "Zm9\\",     "Zm9\x80",
      "Zm9\xff",  "Zm\xc3\xa9", "Zm9~",       "\"Zm9",
  };

  /* The other alphabet's two characters. */
  static const char *const std_only[] = {"+/+/", "Zm9+", "Zm9/", "/m9v"};
  static const char *const url_only[] = {"-_-_", "Zm9-", "Zm9_", "-m9v"};

  (void)state;
  fmqt_expect_str("+/+/", STD, "\xfb\xff\xbf");
  fmqt_expect_str("-_-_", URL, "\xfb\xff\xbf");
  for (size_t i = 0; i < ARRAY_LEN(std_only); i++) {
    fmqt_expect_str(std_only[i], URL, NULL);
    fmqt_expect_str(url_only[i], STD, NULL);
  }
  for (size_t i = 0; i < ARRAY_LEN(not_base64); i++) {
    for (unsigned flags = 0; flags <= (URL | CANON); flags++)
      fmqt_expect_str(not_base64[i], flags, NULL);
  }
  /* Every character of each alphabet, at every place of a quantum. */
  for (unsigned v = 0; v < 64; v++) {
    for (size_t at = 0; at < 4; at++) {
      char text[5] = "AAAA";
      uint32_t bits = (uint32_t)v << (18 - 6 * at);
      uint8_t raw[3] = {(uint8_t)(bits >> 16), (uint8_t)(bits >> 8), (uint8_t)bits};

      text[at] = std_abc[v];
      fmqt_expect(text, 4, STD, raw, 3);
      text[at] = url_abc[v];
      fmqt_expect(text, 4, URL, raw, 3);
    }
  }
}

static void test_nul_bytes(void **state) {
  static const struct {
    const char *in;
    size_t len;
  } bad[] = {
      {"\0\0\0\0", 4}, {"Zm\0v", 4},          {"Zm9v\0\0\0\0", 8}, {"\0Zm9vYmE", 8},
      {"Zg=\0", 4},     {"Zm9vYg==\0\0\0\0", 12}, {"Zm9vYmE\0", 8},   {"Zg\0", 3},
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
    fmqt_expect(bad[i].in, bad[i].len, STD, NULL, 0);
    fmqt_expect(bad[i].in, bad[i].len, URL, NULL, 0);
  }
  /* NUL bytes in the result are bytes like any. */
  fmqt_expect("AAAAAA==", 8, STD, "\0\0\0\0", 4);
  fmqt_expect("AP8A", 4, URL, "\0\xff\0", 3);
}

/* The bits of the last character that no byte uses: ignored unless
 * FMQ_BASE64_CANONICAL, which refuses any that is set. */
static void test_unused_bits(void **state) {
  (void)state;
  fmqt_expect_str("Zh==", STD, "f");
  fmqt_expect_str("Zh==", STD | CANON, NULL);
  fmqt_expect_str("Zm9=", STD, "fo");
  fmqt_expect_str("Zm9=", STD | CANON, NULL);
  fmqt_expect_str("QR==", STD, "A");
  fmqt_expect_str("Zh", URL, "f");
  fmqt_expect_str("Zh", URL | CANON, NULL);
  fmqt_expect_str("Zm9", URL, "fo");
  fmqt_expect_str("Zm9", URL | CANON, NULL);
  /* Every last character: 4 unused bits before "==", 2 before "=". */
  for (unsigned v = 0; v < 64; v++) {
    char two[5] = {'Z', std_abc[v], '=', '=', '\0'};
    char three[5] = {'Z', 'm', std_abc[v], '=', '\0'};
    uint8_t one_byte = (uint8_t)(25u << 2 | v >> 4);
    uint8_t two_bytes[2] = {'f', (uint8_t)(0x6u << 4 | v >> 2)};

    fmqt_expect(two, 4, STD, &one_byte, 1);
    fmqt_expect(two, 4, STD | CANON, v % 16 == 0 ? &one_byte : NULL, 1);
    fmqt_expect(three, 4, STD, two_bytes, 2);
    fmqt_expect(three, 4, STD | CANON, v % 4 == 0 ? two_bytes : NULL, 2);
    two[1] = url_abc[v];
    three[2] = url_abc[v];
    fmqt_expect(two, 2, URL, &one_byte, 1);
    fmqt_expect(two, 2, URL | CANON, v % 16 == 0 ? &one_byte : NULL, 1);
    fmqt_expect(three, 3, URL, two_bytes, 2);
    fmqt_expect(three, 3, URL | CANON, v % 4 == 0 ? two_bytes : NULL, 2);
  }
  /* The same after many quanta. */
  fmqt_expect_str("Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZh==", STD,
                  "foobarfoobarfoobarfoobarfoobarf");
  fmqt_expect_str("Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZh==", STD | CANON, NULL);
}

/* Every length up to 700 bytes (texts of many EVP_DecodeBlock calls), each
 * byte value, both alphabets; then a character no alphabet has, or one
 * from the other alphabet, or '=', at every place of the longest text. */
static void test_long(void **state) {
  static const char spoilers[] = {' ', '\n', '\r', '\t', '\0', '*', '.', '=', '\x80', '\xff'};
  uint8_t raw[700];
  char text[1024];

  (void)state;
  for (size_t i = 0; i < sizeof(raw); i++)
    raw[i] = (uint8_t)(i * 167 + 13);
  for (size_t len = 0; len <= sizeof(raw); len++) {
    for (int url = 0; url <= 1; url++) {
      size_t n = fmqt_encode(raw, len, url, text);
      unsigned flags = url ? URL : STD;

      fmqt_expect(text, n, flags, raw, len);
      fmqt_expect(text, n, flags | CANON, raw, len);
    }
  }
  for (int url = 0; url <= 1; url++) {
    size_t n = fmqt_encode(raw, sizeof(raw), url, text);
    unsigned flags = url ? URL : STD;

    for (size_t at = 0; at < n; at++) {
      char keep = text[at];

      for (size_t s = 0; s < sizeof(spoilers); s++) {
        if (spoilers[s] == keep)
          continue; /* '=' where it pads */
        text[at] = spoilers[s];
        fmqt_expect(text, n, flags, NULL, 0);
      }
      text[at] = url ? '+' : '-';
      fmqt_expect(text, n, flags, NULL, 0);
      text[at] = url ? '/' : '_';
      fmqt_expect(text, n, flags, NULL, 0);
      text[at] = keep;
    }
    fmqt_expect(text, n, flags, raw, sizeof(raw));
  }
}

/* cap is the decoded length, not the text's quanta; a smaller one is
 * FMQ_ESPACE, but a text that is not base64 is refused as such first. */
static void test_space(void **state) {
  uint8_t out[8];

  (void)state;
  memset(out, 0xa5, sizeof(out));
  assert_int_equal(fmq_base64_decode("Zg==", 4, STD, out, 1), 1);
  assert_int_equal(out[0], 'f');
  assert_int_equal(out[1], 0xa5);
  assert_int_equal(fmq_base64_decode("Zm8", 3, URL, out, 2), 2);
  assert_memory_equal(out, "fo", 2);
  assert_int_equal(out[2], 0xa5);
  assert_int_equal(fmq_base64_decode("Zm9v", 4, STD, out, 3), 3);
  assert_int_equal(out[3], 0xa5);
  assert_int_equal(fmq_base64_decode("Zg==", 4, STD, out, 0), FMQ_ESPACE);
  assert_int_equal(fmq_base64_decode("Zm8=", 4, STD, out, 1), FMQ_ESPACE);
  assert_int_equal(fmq_base64_decode("Zm9vYg", 6, URL, out, 3), FMQ_ESPACE);
  assert_int_equal(fmq_base64_decode("Zg", 2, URL, NULL, 0), FMQ_ESPACE);
  assert_int_equal(fmq_base64_decode("Zg=", 3, STD, out, 0), FMQ_EBASE64);
  assert_int_equal(fmq_base64_decode("Z", 1, URL, out, 0), FMQ_EBASE64);
  /* 16 bytes is 22 characters and "==" (a Sec-WebSocket-Key). */
  assert_int_equal(fmq_base64_decode("dGhlIHNhbXBsZSBub25jZQ==", 24, STD, out, 8), FMQ_ESPACE);
}

/* Texts whose padded length passes INT_MAX are refused by their length,
 * before any character is read (so a short buffer stands in for them). */
static void test_int_limit(void **state) {
  static const char text[] = "Zm9v";
  static uint8_t sentinel;
  uint8_t *owned = &sentinel;
  size_t big = (size_t)INT_MAX + 1; /* a multiple of 4 */

  (void)state;
  assert_int_equal(fmq_base64_decode(text, big, STD, NULL, 0), FMQ_EBASE64);
  assert_int_equal(fmq_base64_decode(text, big, URL, NULL, 0), FMQ_EBASE64);
  assert_int_equal(fmq_base64_decode(text, big + 4, STD, NULL, 0), FMQ_EBASE64);
  assert_int_equal(fmq_base64_decode(text, (size_t)INT_MAX, URL, NULL, 0), FMQ_EBASE64);
  assert_int_equal(fmq_base64_decode(text, (size_t)INT_MAX - 1, URL, NULL, 0), FMQ_EBASE64);
  assert_int_equal(fmq_base64_decode_new(text, big, STD, &owned), FMQ_EBASE64);
  assert_null(owned);
  /* INT_MAX - 3 is a whole number of quanta within the limit: only the
   * space is wanting. */
  assert_int_equal(fmq_base64_decode(text, (size_t)INT_MAX - 3, URL, NULL, 0), FMQ_ESPACE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc4648_vectors),
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_padding),
      cmocka_unit_test(test_alphabets),
      cmocka_unit_test(test_nul_bytes),
      cmocka_unit_test(test_unused_bits),
      cmocka_unit_test(test_long),
      cmocka_unit_test(test_space),
      cmocka_unit_test(test_int_limit),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
