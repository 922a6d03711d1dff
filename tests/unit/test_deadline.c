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

/* Empties l through fmq_deadline_expired, checking it hands out exactly
 * want[0..n), earliest first. */
static void fmqt_expect_order(struct fmq_deadline_list *l, struct fmq_deadline *const *want,
                              size_t n) {
  uint64_t last = 0;
  for (size_t i = 0; i < n; i++) {
    struct fmq_deadline *d = fmq_deadline_expired(l, UINT64_MAX);
    assert_ptr_equal(d, want[i]);
    assert_true(fmq_deadline_armed(d));
    assert_int_equal(fmq_deadline_next(l), d->at);
    assert_true(d->at >= last);
    last = d->at;
    fmq_deadline_disarm(d);
    assert_false(fmq_deadline_armed(d));
  }
  assert_null(fmq_deadline_expired(l, UINT64_MAX));
  assert_int_equal(fmq_deadline_next(l), UINT64_MAX);
}

/* Disarm finds the node's list by itself, wherever the node is in it. */
static void test_disarm_head_middle_tail(void **state) {
  (void)state;
  struct fmq_deadline_list l;
  struct fmq_deadline d[5] = {0};
  fmq_deadline_list_init(&l, 100);
  for (int i = 0; i < 5; i++)
    fmq_deadline_arm(&l, &d[i], (uint64_t)i);
  fmq_deadline_disarm(&d[2]); /* middle */
  assert_false(fmq_deadline_armed(&d[2]));
  assert_int_equal(fmq_deadline_next(&l), 100);
  fmq_deadline_disarm(&d[0]); /* head */
  assert_int_equal(fmq_deadline_next(&l), 101);
  assert_null(fmq_deadline_expired(&l, 100));
  fmq_deadline_disarm(&d[4]); /* tail */
  fmq_deadline_disarm(&d[4]);
  /* Arming after a tail was removed appends behind the new tail. */
  fmq_deadline_arm(&l, &d[2], 10);
  struct fmq_deadline *const want[] = {&d[1], &d[3], &d[2]};
  fmqt_expect_order(&l, want, 3);
}

/* Re-arming moves a node from head, middle or tail to the tail. */
static void test_rearm_from_anywhere(void **state) {
  (void)state;
  struct fmq_deadline_list l;
  struct fmq_deadline a = {0}, b = {0}, c = {0}, d = {0};
  fmq_deadline_list_init(&l, 100);
  fmq_deadline_arm(&l, &a, 0);
  fmq_deadline_arm(&l, &b, 1);
  fmq_deadline_arm(&l, &c, 2);
  fmq_deadline_arm(&l, &d, 3);
  fmq_deadline_arm(&l, &b, 4); /* middle: a c d b */
  fmq_deadline_arm(&l, &a, 5); /* head: c d b a */
  assert_int_equal(fmq_deadline_next(&l), 102);
  fmq_deadline_arm(&l, &a, 6); /* tail stays the tail, later */
  assert_int_equal(a.at, 106);
  fmq_deadline_disarm(&b);     /* the middle once more: c d a */
  struct fmq_deadline *const want[] = {&c, &d, &a};
  fmqt_expect_order(&l, want, 3);
}

/* A node moved to another list is unlinked from the first one only. */
static void test_disarm_after_move(void **state) {
  (void)state;
  struct fmq_deadline_list one, two;
  struct fmq_deadline a = {0}, b = {0}, c = {0};
  fmq_deadline_list_init(&one, 10);
  fmq_deadline_list_init(&two, 20);
  fmq_deadline_arm(&one, &a, 0);
  fmq_deadline_arm(&one, &b, 1);
  fmq_deadline_arm(&two, &c, 0);
  fmq_deadline_arm(&two, &a, 2); /* two: c a */
  fmq_deadline_disarm(&a);
  struct fmq_deadline *const want_one[] = {&b};
  struct fmq_deadline *const want_two[] = {&c};
  fmqt_expect_order(&one, want_one, 1);
  fmqt_expect_order(&two, want_two, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fifo_order_and_expiry),
    cmocka_unit_test(test_rearm_moves_to_tail),
    cmocka_unit_test(test_moving_between_lists),
    cmocka_unit_test(test_zero_period_disables),
    cmocka_unit_test(test_disarm_head_middle_tail),
    cmocka_unit_test(test_rearm_from_anywhere),
    cmocka_unit_test(test_disarm_after_move),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
