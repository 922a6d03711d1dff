#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "subst.h"

#include <stdlib.h>
#include <string.h>

static const struct fmq_subst_var acl_vars[] = {{'u', "alice"}, {'c', "web-1"}};
static const struct fmq_subst_var id_vars[] = {{'h', "host"}, {'p', "42"}, {'%', "%"}};

static void expect(const char *pattern, const struct fmq_subst_var *vars, size_t n,
                   fmq_subst_check_fn check, const char *want) {
  size_t len = 99;
  int nomem = 1;
  char *got = fmq_subst(pattern, vars, n, check, &len, &nomem);

  if (want == NULL) {
    assert_null(got);
    assert_int_equal(nomem, 0);
    return;
  }
  assert_non_null(got);
  assert_string_equal(got, want);
  assert_int_equal(len, strlen(want));
  free(got);
}

static int no_dash(const char *value) {
  return strchr(value, '-') != NULL ? -1 : 0;
}

static void test_replaces_known_letters(void **state) {
  (void)state;
  expect("", acl_vars, 2, NULL, "");
  expect("plain/topic", acl_vars, 2, NULL, "plain/topic");
  expect("devices/%u/#", acl_vars, 2, NULL, "devices/alice/#");
  expect("%u%c", acl_vars, 2, NULL, "aliceweb-1");
  expect("ferrymq-%h-%p", id_vars, 3, NULL, "ferrymq-host-42");
}

/* Without a '%' variable, "%%" is two characters and the second may start
 * a placeholder; with one, "%%" is a percent sign. */
static void test_other_percent_signs_stay(void **state) {
  (void)state;
  expect("%x/%", acl_vars, 2, NULL, "%x/%");
  expect("%%u", acl_vars, 2, NULL, "%alice");
  expect("a%%p", id_vars, 3, NULL, "a%p");
  expect("%u", id_vars, 3, NULL, "%u");
  expect("100%", id_vars, 3, NULL, "100%");
}

static void test_unusable_values_refuse_the_pattern(void **state) {
  const struct fmq_subst_var none[] = {{'u', NULL}, {'c', "web-1"}};
  (void)state;
  expect("a/%u", none, 2, NULL, NULL);
  expect("a/%c", none, 2, NULL, "a/web-1");
  expect("a/%c", acl_vars, 2, no_dash, NULL);
  expect("a/%u", acl_vars, 2, no_dash, "a/alice");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replaces_known_letters),
      cmocka_unit_test(test_other_percent_signs_stay),
      cmocka_unit_test(test_unusable_values_refuse_the_pattern),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
