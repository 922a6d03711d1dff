/* Command line: --version, --help, usage errors and --check-config; the
 * log's formats. */

#include "gateway_proc.h"
#include "proc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

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

/* Only idle_timeout below 40s: ping_interval, not set, becomes half of it
 * rather than failing against its 20s default. Set to 20s, it fails. */
static void check_config_derives_ping_interval(void **state) {
  (void)state;
  const char *const idle_only[] = {"FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=10s", NULL};
  int status = run((const char *const[]){"--check-config", NULL}, idle_only);
  if (status != 0) {
    fail_msg("idle_timeout 10s alone: status %d, output \"%s\"", status, output);
  }
  const char *const both[] = {"FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=10s",
                              "FERRYMQ_WEBSOCKET_PING_INTERVAL=20s", NULL};
  assert_int_equal(run((const char *const[]){"--check-config", NULL}, both), 1);
  assert_non_null(strstr(
      output, "configuration: websocket.ping_interval must be below websocket.idle_timeout"));
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

/* Starts the gateway with env (its broker on a port nobody listens on) and
 * returns its log once it listens (the caller frees it). */
static char *start_and_read_log(struct fmqt_gateway *gw, const char *const *env) {
  char broker[64];
  snprintf(broker, sizeof broker, "tcp://127.0.0.1:%u", fmqt_free_port());
  fmqt_gateway_start(gw, (const char *const[]){"--broker", broker, NULL}, env);
  return fmqt_read_file(gw->log_path, NULL);
}

/* The log line holding needle, NUL-terminated in line. */
static void find_line(const char *log, const char *needle, char *line, size_t cap) {
  const char *p = strstr(log, needle);
  if (p == NULL) {
    fail_msg("no \"%s\" in the log:\n%s", needle, log);
  }
  while (p > log && p[-1] != '\n') {
    p--;
  }
  size_t n = strcspn(p, "\n");
  assert_true(n < cap);
  memcpy(line, p, n);
  line[n] = '\0';
}

/* 2026-11-22T10:00:00.123Z */
static void assert_timestamp(const char *t, size_t len) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (len != sizeof shape - 1) {
    fail_msg("timestamp \"%.*s\": wrong length", (int)len, t);
  }
  for (size_t i = 0; i < len; i++) {
    if (shape[i] == 'd' ? t[i] < '0' || t[i] > '9' : t[i] != shape[i]) {
      fail_msg("timestamp \"%.*s\": unexpected character at %zu", (int)len, t, i);
    }
  }
}

static void log_format_logfmt(void **state) {
  (void)state;
  struct fmqt_gateway gw;
  char *log = start_and_read_log(&gw, (const char *const[]){"FERRYMQ_LOG_FORMAT=logfmt", NULL});
  char line[512], expected[128];
  find_line(log, "listening on 127.0.0.1:", line, sizeof line);
  free(log);
  /* time=TIMESTAMP level=info msg="listening on 127.0.0.1:PORT" */
  assert_memory_equal(line, "time=", 5);
  const char *level = strchr(line, ' ');
  assert_non_null(level);
  assert_timestamp(line + 5, (size_t)(level - line - 5));
  snprintf(expected, sizeof expected, " level=info msg=\"listening on 127.0.0.1:%u\"", gw.port);
  assert_string_equal(level, expected);
  assert_int_equal(fmqt_gateway_stop(&gw, 10000), 0);
}

static void log_format_json(void **state) {
  (void)state;
  struct fmqt_gateway gw;
  char *log = start_and_read_log(&gw, (const char *const[]){"FERRYMQ_LOG_FORMAT=json", NULL});
  char line[512], expected[128];
  find_line(log, "listening on 127.0.0.1:", line, sizeof line);
  /* every line is one JSON object with time, level and msg */
  size_t lines = 0;
  for (const char *p = log; *p != '\0'; lines++) {
    size_t n = strcspn(p, "\n");
    json_error_t jerr;
    json_t *j = json_loadb(p, n, 0, &jerr);
    if (!json_is_object(j) || json_object_size(j) != 3 ||
        !json_is_string(json_object_get(j, "time")) ||
        !json_is_string(json_object_get(j, "level")) ||
        !json_is_string(json_object_get(j, "msg"))) {
      fail_msg("not a JSON log line (%s): %.*s", jerr.text, (int)n, p);
    }
    json_decref(j);
    p += n + (p[n] == '\n');
  }
  assert_true(lines >= 1);
  free(log);

  json_t *j = json_loads(line, 0, NULL);
  const char *t = json_string_value(json_object_get(j, "time"));
  assert_timestamp(t, strlen(t));
  assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
  snprintf(expected, sizeof expected, "listening on 127.0.0.1:%u", gw.port);
  assert_string_equal(json_string_value(json_object_get(j, "msg")), expected);
  json_decref(j);
  assert_int_equal(fmqt_gateway_stop(&gw, 10000), 0);
}

/* A quote and a tab in a logged message (the name of an unknown variable)
 * come out escaped, the line whole. */
static void log_escapes_the_message(void **state) {
  (void)state;
  struct fmqt_gateway gw;
  char *log = start_and_read_log(&gw, (const char *const[]){"FERRYMQ_NO\"SUCH\tKEY=1", NULL});
  char line[512];
  find_line(log, "FERRYMQ_NO", line, sizeof line);
  free(log);
  assert_non_null(strstr(line, " level=warn msg=\"FERRYMQ_NO\\\"SUCH\\tKEY"));
  assert_null(strchr(line, '\t'));
  assert_int_equal(line[strlen(line) - 1], '"');
  assert_int_equal(fmqt_gateway_stop(&gw, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(version_prints_the_version),
      cmocka_unit_test(help_prints_usage),
      cmocka_unit_test(unknown_option_is_a_usage_error),
      cmocka_unit_test(check_config_accepts_defaults),
      cmocka_unit_test(check_config_accepts_valid_settings),
      cmocka_unit_test(check_config_derives_ping_interval),
      cmocka_unit_test(check_config_rejects_bad_values),
      cmocka_unit_test(log_format_logfmt),
      cmocka_unit_test(log_format_json),
      cmocka_unit_test(log_escapes_the_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
