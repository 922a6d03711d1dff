#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rate.h"

#define T0 1000000

/* Messages taken in a row at now_ms before the first refusal. */
static int take_all(struct fmq_rate *r, uint64_t per_second, uint64_t burst, uint64_t now_ms) {
  int n = 0;
  while (fmq_rate_take(r, per_second, burst, now_ms))
    if (++n > 1000000)
      fail_msg("never refused");
  return n;
}

static void test_starts_full_then_refuses(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 5, T0);
  assert_int_equal(take_all(&r, 2, 5, T0), 5);
  assert_int_equal(fmq_rate_take(&r, 2, 5, T0), 0);
  fmq_rate_close(&r);
}

static void test_burst_zero_is_per_second(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 0, T0);
  assert_int_equal(take_all(&r, 7, 0, T0), 7);
  assert_int_equal(take_all(&r, 7, 0, T0 + 10000), 7);
  fmq_rate_close(&r);
}

static void test_refills_with_time(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 4, T0);
  assert_int_equal(take_all(&r, 10, 4, T0), 4);
  assert_int_equal(fmq_rate_take(&r, 10, 4, T0 + 99), 0);
  assert_int_equal(fmq_rate_take(&r, 10, 4, T0 + 100), 1);
  assert_int_equal(fmq_rate_take(&r, 10, 4, T0 + 100), 0);
  assert_int_equal(take_all(&r, 10, 4, T0 + 300), 2);
  fmq_rate_close(&r);
}

/* 3 a second: a token every 333.3 ms, the remainders adding up. */
static void test_fractional_refill_accumulates(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 2, T0);
  assert_int_equal(take_all(&r, 3, 2, T0), 2);
  assert_int_equal(fmq_rate_take(&r, 3, 2, T0 + 333), 0);
  assert_int_equal(fmq_rate_take(&r, 3, 2, T0 + 334), 1);
  /* the 2 millitokens left over bring the next token forward to 666.7 ms */
  assert_int_equal(fmq_rate_take(&r, 3, 2, T0 + 666), 0);
  assert_int_equal(fmq_rate_take(&r, 3, 2, T0 + 667), 1);
  assert_int_equal(fmq_rate_take(&r, 3, 2, T0 + 999), 0);
  assert_int_equal(fmq_rate_take(&r, 3, 2, T0 + 1000), 1);
  /* over a minute, exactly 3 a second whatever the polling */
  int n = 0;
  for (uint64_t t = T0 + 1007; t < T0 + 61000; t += 7)
    n += fmq_rate_take(&r, 3, 2, t);
  n += fmq_rate_take(&r, 3, 2, T0 + 61000);
  assert_int_equal(n, 180);
  fmq_rate_close(&r);
}

static void test_capped_at_burst(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 3, T0);
  assert_int_equal(take_all(&r, 100, 3, T0), 3);
  assert_int_equal(take_all(&r, 100, 3, T0 + 3600000), 3);
  /* an elapsed time whose refill overflows 64 bits */
  assert_int_equal(take_all(&r, UINT64_MAX / 2, 3, UINT64_MAX), 3);
  fmq_rate_close(&r);
}

static void test_huge_burst_saturates(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, UINT64_MAX, T0);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(fmq_rate_take(&r, 1, UINT64_MAX, T0), 1);
  fmq_rate_close(&r);
}

static void test_per_second_zero_never_refuses(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 0, T0);
  for (int i = 0; i < 10000; i++)
    assert_int_equal(fmq_rate_take(&r, 0, 0, T0), 1);
  fmq_rate_close(&r);
}

/* The clock is the loop's monotonic one; an earlier time counts as none. */
static void test_earlier_time_adds_nothing(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 1, T0);
  assert_int_equal(fmq_rate_take(&r, 1, 1, T0), 1);
  assert_int_equal(fmq_rate_take(&r, 1, 1, T0 - 5000), 0);
  assert_int_equal(fmq_rate_take(&r, 1, 1, T0 + 999), 0);
  assert_int_equal(fmq_rate_take(&r, 1, 1, T0 + 1000), 1);
  fmq_rate_close(&r);
}

static void test_refusals_close_past_the_limit(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 1, T0);
  assert_null(r.refusals); /* nothing allocated before the first refusal */
  for (int i = 0; i < 5; i++)
    assert_int_equal(fmq_rate_refused(&r, 5, T0 + (uint64_t)i * 2000), 0);
  assert_non_null(r.refusals);
  /* the 6th within 10 s of the first */
  assert_int_equal(fmq_rate_refused(&r, 5, T0 + 9999), 1);
  fmq_rate_close(&r);
  assert_null(r.refusals);
}

static void test_refusals_spread_over_the_window(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 1, T0);
  for (int i = 0; i < 5; i++)
    assert_int_equal(fmq_rate_refused(&r, 5, T0 + (uint64_t)i * 2000), 0);
  /* exactly 10 s after the first: it has left the window */
  assert_int_equal(fmq_rate_refused(&r, 5, T0 + 10000), 0);
  /* one every 2 s forever stays at 5 in any 10 s */
  for (uint64_t t = T0 + 12000; t < T0 + 200000; t += 2000)
    assert_int_equal(fmq_rate_refused(&r, 5, t), 0);
  /* a burst then closes */
  int closed = 0;
  for (int i = 0; i < 5 && !closed; i++)
    closed = fmq_rate_refused(&r, 5, T0 + 200000);
  assert_int_equal(closed, 1);
  /* and keeps answering 1 while the refusals continue */
  assert_int_equal(fmq_rate_refused(&r, 5, T0 + 200001), 1);
  fmq_rate_close(&r);
}

static void test_refusals_limit_one(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 1, T0);
  assert_int_equal(fmq_rate_refused(&r, 1, T0), 0);
  assert_int_equal(fmq_rate_refused(&r, 1, T0 + 10000), 0);
  assert_int_equal(fmq_rate_refused(&r, 1, T0 + 10001), 1);
  fmq_rate_close(&r);
}

static void test_max_refusals_zero_never_closes(void **state) {
  (void)state;
  struct fmq_rate r;
  fmq_rate_init(&r, 1, T0);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(fmq_rate_refused(&r, 0, T0), 0);
  assert_null(r.refusals);
  fmq_rate_close(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_starts_full_then_refuses),
    cmocka_unit_test(test_burst_zero_is_per_second),
    cmocka_unit_test(test_refills_with_time),
    cmocka_unit_test(test_fractional_refill_accumulates),
    cmocka_unit_test(test_capped_at_burst),
    cmocka_unit_test(test_huge_burst_saturates),
    cmocka_unit_test(test_per_second_zero_never_refuses),
    cmocka_unit_test(test_earlier_time_adds_nothing),
    cmocka_unit_test(test_refusals_close_past_the_limit),
    cmocka_unit_test(test_refusals_spread_over_the_window),
    cmocka_unit_test(test_refusals_limit_one),
    cmocka_unit_test(test_max_refusals_zero_never_closes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
