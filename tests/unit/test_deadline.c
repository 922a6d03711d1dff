#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deadline.h"

static void test_fifo_order_and_expiry(void **state) {
  (void)state;
  struct fmq_deadline_list l;
  struct fmq_deadline a = {0}, b = {0}, c = {0};
  fmq_deadline_list_init(&l, 100);
  assert_int_equal(fmq_deadline_next(&l), UINT64_MAX);
  fmq_deadline_arm(&l, &a, 0);
  fmq_deadline_arm(&l, &b, 10);
  fmq_deadline_arm(&l, &c, 20);
  assert_int_equal(fmq_deadline_next(&l), 100);
  assert_null(fmq_deadline_expired(&l, 99));
  assert_ptr_equal(fmq_deadline_expired(&l, 100), &a);
  fmq_deadline_disarm(&a);
  assert_false(fmq_deadline_armed(&a));
  assert_null(fmq_deadline_expired(&l, 109));
  assert_ptr_equal(fmq_deadline_expired(&l, 115), &b);
}

static void test_rearm_moves_to_tail(void **state) {
  (void)state;
  struct fmq_deadline_list l;
  struct fmq_deadline a = {0}, b = {0};
  fmq_deadline_list_init(&l, 50);
  fmq_deadline_arm(&l, &a, 0);
  fmq_deadline_arm(&l, &b, 5);
  fmq_deadline_arm(&l, &a, 30); /* activity on a */
  assert_int_equal(fmq_deadline_next(&l), 55);
  assert_ptr_equal(fmq_deadline_expired(&l, 60), &b);
  fmq_deadline_disarm(&b);
  assert_null(fmq_deadline_expired(&l, 79));
  assert_ptr_equal(fmq_deadline_expired(&l, 80), &a);
}

static void test_moving_between_lists(void **state) {
  (void)state;
  struct fmq_deadline_list idle, closing;
  struct fmq_deadline a = {0};
  fmq_deadline_list_init(&idle, 1000);
  fmq_deadline_list_init(&closing, 10);
  fmq_deadline_arm(&idle, &a, 0);
  fmq_deadline_arm(&closing, &a, 0);
  assert_int_equal(fmq_deadline_next(&idle), UINT64_MAX);
  assert_int_equal(fmq_deadline_next(&closing), 10);
}

static void test_zero_period_disables(void **state) {
  (void)state;
  struct fmq_deadline_list off, on;
  struct fmq_deadline a = {0};
  fmq_deadline_list_init(&on, 10);
  fmq_deadline_list_init(&off, 0);
  fmq_deadline_arm(&on, &a, 0);
  fmq_deadline_arm(&off, &a, 0);
  assert_false(fmq_deadline_armed(&a));
  assert_int_equal(fmq_deadline_next(&on), UINT64_MAX);
  assert_int_equal(fmq_deadline_next(&off), UINT64_MAX);
  fmq_deadline_disarm(&a); /* disarming twice is harmless */
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fifo_order_and_expiry),
    cmocka_unit_test(test_rearm_moves_to_tail),
    cmocka_unit_test(test_moving_between_lists),
    cmocka_unit_test(test_zero_period_disables),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
