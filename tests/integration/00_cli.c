/* Command line: --version, --help, usage errors and --check-config. */

#include "gateway_proc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#define RUN_TIMEOUT_MS 10000

static char output[8192];

static int run(const char *const *args, const char *const *env) {
  return fmqt_run_binary(args, env, output, sizeof output, RUN_TIMEOUT_MS);
}

static void version_prints_the_version(void **state) {
  (void)state;
  assert_int_equal(run((const char *const[]){"--version", NULL}, NULL), 0);
  assert_non_null(strstr(output, FMQ_VERSION));
}

static void help_prints_usage(void **state) {
  (void)state;
  assert_int_equal(run((const char *const[]){"--help", NULL}, NULL), 0);
  assert_non_null(strstr(output, "--listen"));
}

static void unknown_option_is_a_usage_error(void **state) {
  (void)state;
  assert_int_equal(run((const char *const[]){"--no-such-option", NULL}, NULL), 2);
  assert_true(strlen(output) > 0);
}

static void check_config_accepts_defaults(void **state) {
  (void)state;
  assert_int_equal(run((const char *const[]){"--check-config", NULL}, NULL), 0);
}

static void check_config_accepts_valid_settings(void **state) {
  (void)state;
  const char *const env[] = {
      "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=500ms", "FERRYMQ_WEBSOCKET_PING_INTERVAL=0",
      "FERRYMQ_WEBSOCKET_MAX_MESSAGE_SIZE=16KiB", "FERRYMQ_WEBSOCKET_OUTBOUND_QUEUE_LIMIT=4096",
      "FERRYMQ_LIMITS_MAX_CONNECTIONS=2", NULL};
  const char *const args[] = {"--check-config", "--listen", "127.0.0.1:0", "--path", "/ws",
                              "--log-level", "debug", NULL};
  assert_int_equal(run(args, env), 0);
}

/* Each bad value alone makes --check-config exit 1 with a message. */
static void check_config_rejects_bad_values(void **state) {
  (void)state;
  static const char *const bad[] = {
      "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=abc", "FERRYMQ_WEBSOCKET_PING_INTERVAL=5 parsecs",
      "FERRYMQ_WEBSOCKET_MAX_MESSAGE_SIZE=lots", "FERRYMQ_WEBSOCKET_HANDSHAKE_TIMEOUT=-1s",
      "FERRYMQ_LIMITS_MAX_CONNECTIONS=many"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *const env[] = {bad[i], NULL};
    int status = run((const char *const[]){"--check-config", NULL}, env);
    if (status != 1 || output[0] == '\0') {
      fail_msg("%s: status %d, output \"%s\"", bad[i], status, output);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(version_prints_the_version),
      cmocka_unit_test(help_prints_usage),
      cmocka_unit_test(unknown_option_is_a_usage_error),
      cmocka_unit_test(check_config_accepts_defaults),
      cmocka_unit_test(check_config_accepts_valid_settings),
      cmocka_unit_test(check_config_rejects_bad_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
