#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "utf8.h"

#include <string.h>

/* Feeds s whole, one byte at a time, and split in two at every offset.
 * fail_at >= 0: byte fail_at is the first one that cannot continue valid
 * UTF-8, so the validator must fail exactly on it. fail_at < 0: every byte
 * continues a valid prefix and `complete` says whether s ends on a code point
 * boundary. */
static void check_bytes(const uint8_t *s, size_t n, long fail_at, int complete) {
  struct fmq_utf8 v;

  fmq_utf8_init(&v);
  if (fail_at >= 0) {
    assert_int_equal(fmq_utf8_feed(&v, s, n), FMQ_EUTF8);
  } else {
    assert_int_equal(fmq_utf8_feed(&v, s, n), 0);
    assert_int_equal(fmq_utf8_complete(&v), complete);
  }

  fmq_utf8_init(&v);
  long failed = -1;
  for (size_t i = 0; i < n; i++) {
    int rc = fmq_utf8_feed(&v, s + i, 1);
    if (rc != 0) {
      assert_int_equal(rc, FMQ_EUTF8);
      failed = (long)i;
      break;
    }
  }
  assert_int_equal(failed, fail_at);
  if (fail_at < 0)
    assert_int_equal(fmq_utf8_complete(&v), complete);

  for (size_t k = 0; k <= n; k++) {
    fmq_utf8_init(&v);
    int rc = fmq_utf8_feed(&v, s, k);
    if (fail_at >= 0 && (size_t)fail_at < k) {
      assert_int_equal(rc, FMQ_EUTF8);
      continue;
    }
    assert_int_equal(rc, 0);
    rc = fmq_utf8_feed(&v, s + k, n - k);
    if (fail_at >= 0) {
      assert_int_equal(rc, FMQ_EUTF8);
    } else {
      assert_int_equal(rc, 0);
      assert_int_equal(fmq_utf8_complete(&v), complete);
    }
  }

  assert_int_equal(fmq_utf8_valid(s, n), fail_at < 0 && complete);
}

#define VALID(lit) check_bytes((const uint8_t *)(lit), sizeof(lit) - 1, -1, 1)
#define TRUNCATED(lit) check_bytes((const uint8_t *)(lit), sizeof(lit) - 1, -1, 0)
#define INVALID_AT(lit, pos) check_bytes((const uint8_t *)(lit), sizeof(lit) - 1, (pos), 0)

/* An independent oracle: decodes by bit patterns and then range-checks the
 * code point, where the module uses per-lead-byte continuation ranges. */
static int ref_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint32_t c = s[i], min;
    size_t len;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, c &= 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      c = c << 6 | (s[i + k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

static size_t encode(uint32_t c, uint8_t out[4]) {
  if (c < 0x80) {
    out[0] = (uint8_t)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (uint8_t)(0xC0 | c >> 6);
    out[1] = (uint8_t)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (uint8_t)(0xE0 | c >> 12);
    out[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
    out[2] = (uint8_t)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (uint8_t)(0xF0 | c >> 18);
  out[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
  out[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
  out[3] = (uint8_t)(0x80 | (c & 0x3F));
  return 4;
}

static void test_valid_text(void **state) {
  (void)state;
  VALID("");
  VALID("hello, world");
  VALID("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"); /* κόσμε */
  VALID("\xE3\x81\x84\xE3\x82\x8D\xE3\x81\xAF");          /* いろは */
  VALID("\xF0\x9F\x98\x80 ok \xF0\x9F\x8C\x8D");          /* emoji */
  VALID("a\xC3\xA9\xE2\x82\xAC\xF0\x90\x8D\x88z");        /* 1, 2, 3, 4 bytes */
}

static void test_boundary_code_points(void **state) {
  (void)state;
  VALID("\x00");             /* U+0000 */
  VALID("\x7F");             /* U+007F */
  VALID("\xC2\x80");         /* U+0080 */
  VALID("\xDF\xBF");         /* U+07FF */
  VALID("\xE0\xA0\x80");     /* U+0800 */
  VALID("\xED\x9F\xBF");     /* U+D7FF */
  VALID("\xEE\x80\x80");     /* U+E000 */
  VALID("\xEF\xBF\xBD");     /* U+FFFD */
  VALID("\xEF\xBF\xBF");     /* U+FFFF */
  VALID("\xF0\x90\x80\x80"); /* U+10000 */
  VALID("\xF4\x8F\xBF\xBF"); /* U+10FFFF */
}

static void test_overlong(void **state) {
  (void)state;
  INVALID_AT("\xC0\x80", 0);
  INVALID_AT("\xC0\xAF", 0);
  INVALID_AT("\xC1\xBF", 0);
  INVALID_AT("\xE0\x80\x80", 1);
  INVALID_AT("\xE0\x80\xAF", 1);
  INVALID_AT("\xE0\x9F\xBF", 1);
  INVALID_AT("\xF0\x80\x80\x80", 1);
  INVALID_AT("\xF0\x80\x80\xAF", 1);
  INVALID_AT("\xF0\x8F\xBF\xBF", 1);
}

static void test_surrogates_and_out_of_range(void **state) {
  (void)state;
  INVALID_AT("\xED\xA0\x80", 1);                 /* U+D800 */
  INVALID_AT("\xED\xAD\xBF", 1);                 /* U+DB7F */
  INVALID_AT("\xED\xBF\xBF", 1);                 /* U+DFFF */
  INVALID_AT("\xED\xA0\x80\xED\xB0\x80", 1);     /* surrogate pair */
  INVALID_AT("\xF4\x90\x80\x80", 1);             /* U+110000 */
  INVALID_AT("\xF4\xBF\xBF\xBF", 1);
  INVALID_AT("\xF5\x80\x80\x80", 0);
  INVALID_AT("\xF7\xBF\xBF\xBF", 0);
  INVALID_AT("\xF8\x88\x80\x80\x80", 0);         /* old 5-byte form */
  INVALID_AT("\xFC\x84\x80\x80\x80\x80", 0);     /* old 6-byte form */
}

static void test_every_single_byte(void **state) {
  (void)state;
  for (unsigned b = 0; b < 256; b++) {
    uint8_t c = (uint8_t)b;
    if (b < 0x80)
      check_bytes(&c, 1, -1, 1);
    else if (b < 0xC2 || b > 0xF4)
      check_bytes(&c, 1, 0, 0);
    else
      check_bytes(&c, 1, -1, 0);
  }
}

static void test_lone_continuation_bytes(void **state) {
  (void)state;
  INVALID_AT("\x80", 0);
  INVALID_AT("\xBF", 0);
  INVALID_AT("abc\x80", 3);
  INVALID_AT("\xC3\xA9\xA9", 2);
  INVALID_AT("\xE2\x82\xAC\x80", 3);
  INVALID_AT("\xF0\x9F\x98\x80\xBF", 4);
}

static void test_truncated(void **state) {
  (void)state;
  TRUNCATED("\xC3");
  TRUNCATED("ab\xE2");
  TRUNCATED("ab\xE2\x82");
  TRUNCATED("\xF0\x9F");
  TRUNCATED("\xF0\x9F\x98");
  /* A truncated sequence followed by anything but a continuation fails on that byte. */
  INVALID_AT("\xC3" "a", 1);
  INVALID_AT("\xE2\x82" "a", 2);
  INVALID_AT("\xF0\x9F\x98" "a", 3);
  INVALID_AT("\xF0\x9F\x98\xC3\xA9", 3);
  INVALID_AT("\xE2\xE2\x82\xAC", 1);
}

static void test_fail_fast_position(void **state) {
  (void)state;
  uint8_t buf[2000];
  memset(buf, 'x', sizeof(buf));
  buf[1500] = 0xFF;
  check_bytes(buf, sizeof(buf), 1500, 0);
  buf[1500] = 0xE0;
  buf[1501] = 0x80; /* E0 needs A0..BF next */
  check_bytes(buf, sizeof(buf), 1501, 0);
  buf[1500] = 0xED;
  buf[1501] = 0x9F;
  buf[1502] = 0xBF;
  check_bytes(buf, sizeof(buf), -1, 1);
}

/* After a failure, fmq_utf8_init makes the validator usable again. */
static void test_reinit(void **state) {
  (void)state;
  struct fmq_utf8 v;
  fmq_utf8_init(&v);
  assert_int_equal(fmq_utf8_feed(&v, (const uint8_t *)"\xE2\x82", 2), 0);
  assert_false(fmq_utf8_complete(&v));
  assert_int_equal(fmq_utf8_feed(&v, (const uint8_t *)"\xFF", 1), FMQ_EUTF8);
  fmq_utf8_init(&v);
  assert_true(fmq_utf8_complete(&v));
  assert_int_equal(fmq_utf8_feed(&v, (const uint8_t *)"\xC2\x80", 2), 0);
  assert_true(fmq_utf8_complete(&v));
}

static void test_every_code_point(void **state) {
  (void)state;
  uint8_t b[4];
  for (uint32_t c = 0; c <= 0x10FFFF; c++) {
    size_t n = encode(c, b);
    int surrogate = c >= 0xD800 && c <= 0xDFFF;
    assert_int_equal(fmq_utf8_valid(b, n), !surrogate);
  }
}

/* Every 1, 2 and 3 byte string, and the 4-byte strings whose last two bytes
 * sit on the continuation range's edges, agree with the oracle. */
static void test_exhaustive_against_oracle(void **state) {
  (void)state;
  uint8_t b[4];
  for (unsigned i = 0; i < 256; i++) {
    b[0] = (uint8_t)i;
    assert_int_equal(fmq_utf8_valid(b, 1), ref_valid(b, 1));
    for (unsigned j = 0; j < 256; j++) {
      b[1] = (uint8_t)j;
      assert_int_equal(fmq_utf8_valid(b, 2), ref_valid(b, 2));
      for (unsigned k = 0; k < 256; k++) {
        b[2] = (uint8_t)k;
        if (fmq_utf8_valid(b, 3) != ref_valid(b, 3))
          fail_msg("3-byte %02X %02X %02X", i, j, k);
      }
    }
  }
  static const uint8_t edges[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  for (unsigned i = 0xF0; i < 0x100; i++) {
    for (unsigned j = 0; j < 256; j++) {
      for (size_t k = 0; k < sizeof(edges); k++) {
        for (size_t l = 0; l < sizeof(edges); l++) {
          b[0] = (uint8_t)i;
          b[1] = (uint8_t)j;
          b[2] = edges[k];
          b[3] = edges[l];
          if (fmq_utf8_valid(b, 4) != ref_valid(b, 4))
            fail_msg("4-byte %02X %02X %02X %02X", b[0], b[1], b[2], b[3]);
        }
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_text),
      cmocka_unit_test(test_boundary_code_points),
      cmocka_unit_test(test_overlong),
      cmocka_unit_test(test_surrogates_and_out_of_range),
      cmocka_unit_test(test_every_single_byte),
      cmocka_unit_test(test_lone_continuation_bytes),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_fail_fast_position),
      cmocka_unit_test(test_reinit),
      cmocka_unit_test(test_every_code_point),
      cmocka_unit_test(test_exhaustive_against_oracle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
