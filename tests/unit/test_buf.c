#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"

/* Reference counting itself is tested in test_client_proto.c
 * (test_buf_refcount), on an encoded frame. */

/* NULL is accepted by both halves of the pair. */
static void test_null(void **state) {
  (void)state;
  assert_null(fmq_buf_ref(NULL));
  fmq_buf_unref(NULL);
}

static void test_empty_and_too_big(void **state) {
  (void)state;
  struct fmq_buf *b = fmq_buf_copy(NULL, 0);
  assert_non_null(b);
  assert_int_equal(b->len, 0);
  fmq_buf_unref(b);
#if SIZE_MAX > UINT32_MAX
  assert_null(fmq_buf_new((size_t)UINT32_MAX + 1));
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_null),
    cmocka_unit_test(test_empty_and_too_big),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
