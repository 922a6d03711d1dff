#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "outq.h"

static struct fmq_buf *frame(const char *text) {
  struct fmq_buf *b = fmq_buf_new(strlen(text));
  memcpy(b->data, text, b->len);
  return b;
}

static void test_gather_in_order_and_release(void **state) {
  (void)state;
  struct fmq_outq q;
  fmq_outq_init(&q);
  struct fmq_buf *shared = frame("shared");
  for (int i = 0; i < 10; i++)
    assert_int_equal(fmq_outq_push(&q, fmq_buf_ref(shared)), 0);
  assert_int_equal(fmq_outq_push(&q, frame("last")), 0);
  assert_int_equal(q.bytes, 10 * 6 + 4 + 11 * FMQ_OUTQ_ENTRY_OVERHEAD);
  assert_int_equal(atomic_load(&shared->refs), 11);

  uv_buf_t bufs[4];
  assert_int_equal(fmq_outq_gather(&q, bufs, 4), 4);
  assert_memory_equal(bufs[0].base, "shared", 6);
  assert_int_equal(fmq_outq_gather(&q, bufs, 4), 0); /* one write at a time */
  fmq_outq_written(&q);
  assert_int_equal(atomic_load(&shared->refs), 7);
  assert_int_equal(q.bytes, 6 * 6 + 4 + 7 * FMQ_OUTQ_ENTRY_OVERHEAD);

  assert_int_equal(fmq_outq_gather(&q, bufs, 4), 4);
  fmq_outq_written(&q);
  assert_int_equal(fmq_outq_gather(&q, bufs, 4), 3);
  assert_int_equal(bufs[2].len, 4);
  assert_memory_equal(bufs[2].base, "last", 4);
  fmq_outq_written(&q);
  assert_int_equal(q.bytes, 0);
  assert_null(q.ring); /* an empty queue owns no memory */
  assert_int_equal(atomic_load(&shared->refs), 1);
  fmq_buf_unref(shared);
}

static void test_wraparound_keeps_order(void **state) {
  (void)state;
  struct fmq_outq q;
  fmq_outq_init(&q);
  char text[16];
  uv_buf_t bufs[64];
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 3; i++) {
      snprintf(text, sizeof(text), "%d", next_in++);
      fmq_outq_push(&q, frame(text));
    }
    unsigned n = fmq_outq_gather(&q, bufs, 2);
    for (unsigned i = 0; i < n; i++) {
      snprintf(text, sizeof(text), "%d", next_out++);
      assert_int_equal(bufs[i].len, strlen(text));
      assert_memory_equal(bufs[i].base, text, bufs[i].len);
    }
    fmq_outq_written(&q);
  }
  assert_int_equal(q.count, 50);
  fmq_outq_close(&q);
  assert_null(q.ring);
}

static void test_drop_waiting_keeps_inflight(void **state) {
  (void)state;
  struct fmq_outq q;
  fmq_outq_init(&q);
  uv_buf_t bufs[2];
  fmq_outq_push(&q, frame("a"));
  fmq_outq_push(&q, frame("bb"));
  assert_int_equal(fmq_outq_gather(&q, bufs, 1), 1);
  fmq_outq_push(&q, frame("ccc"));
  assert_true(fmq_outq_waiting(&q));
  fmq_outq_drop_waiting(&q);
  assert_false(fmq_outq_waiting(&q));
  assert_int_equal(q.count, 1);
  assert_int_equal(q.bytes, 1 + FMQ_OUTQ_ENTRY_OVERHEAD);
  fmq_outq_push(&q, frame("close"));
  fmq_outq_written(&q);
  assert_int_equal(fmq_outq_gather(&q, bufs, 2), 1);
  assert_memory_equal(bufs[0].base, "close", 5);
  fmq_outq_close(&q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_gather_in_order_and_release),
    cmocka_unit_test(test_wraparound_keeps_order),
    cmocka_unit_test(test_drop_waiting_keeps_inflight),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
