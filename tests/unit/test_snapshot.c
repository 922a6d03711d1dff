#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "snapshot.h"

#include <string.h>

/* The configuration moves into the snapshot (the caller's copy is left
 * empty), auth is prepared from the moved copy, and the last reference
 * frees both (LeakSanitizer, in the sanitizer build, sees the rest). */
static void test_moves_the_configuration_in(void **state) {
  struct fmq_config c;
  char err[256] = "";
  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  assert_int_equal(fmq_config_set(&c, "auth.mode", "token", "test", err, sizeof err), 0);
  assert_int_equal(fmq_config_set(&c, "broker.url", "tcp://127.0.0.1:1", "test", err, sizeof err),
                   0);
  c.auth.tokens = calloc(1, sizeof(*c.auth.tokens));
  assert_non_null(c.auth.tokens);
  c.auth.tokens[0].token = strdup("secret-token");
  c.auth.tokens[0].user = strdup("alice");
  c.auth.ntokens = 1;
  char *url = c.broker.url;

  struct fmq_snapshot *s = fmq_snapshot_new(&c, err, sizeof err);
  assert_non_null(s);
  assert_null(c.broker.url);
  assert_ptr_equal(s->config.broker.url, url);
  assert_int_equal(s->auth.ntokens, 1);
  assert_ptr_equal(s->auth.config, &s->config);
  assert_ptr_equal(s->auth.tokens[0].config, &s->config.auth.tokens[0]);

  assert_ptr_equal(fmq_snapshot_ref(s), s);
  assert_int_equal(atomic_load(&s->refs), 2);
  fmq_snapshot_unref(s);
  assert_int_equal(atomic_load(&s->refs), 1);
  assert_string_equal(s->config.broker.url, "tcp://127.0.0.1:1");
  fmq_snapshot_unref(s);
  fmq_snapshot_unref(NULL);
}

/* A configuration auth cannot be prepared from gives no snapshot, an
 * error, and is closed all the same. */
static void test_auth_failure_closes_the_configuration(void **state) {
  struct fmq_config c;
  char err[256] = "";
  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  assert_int_equal(fmq_config_set(&c, "auth.mode", "jwt", "test", err, sizeof err), 0);
  assert_int_equal(fmq_config_set(&c, "auth.jwt.algorithms", "RS256", "test", err, sizeof err), 0);
  assert_int_equal(fmq_config_set(&c, "auth.jwt.public_key_file", "/nonexistent/key.pem", "test",
                                  err, sizeof err),
                   0);
  assert_null(fmq_snapshot_new(&c, err, sizeof err));
  assert_non_null(strstr(err, "auth.jwt.public_key_file"));
  assert_null(c.broker.url);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_moves_the_configuration_in),
      cmocka_unit_test(test_auth_failure_closes_the_configuration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
