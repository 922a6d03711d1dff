#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#ifndef FMQ_SAMPLE_CONFIG
#error "FMQ_SAMPLE_CONFIG must name config/ferrymq.yaml"
#endif

/* Writes text to a fresh temporary file; path receives its name. */
static void write_tmp(const char *text, char path[static 32]) {
  strcpy(path, "/tmp/fmq_config_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  size_t n = strlen(text);
  assert_int_equal(write(fd, text, n), (ssize_t)n);
  assert_int_equal(close(fd), 0);
}

/* Loads text over the defaults; err gets the message, if any. */
static int load_text(struct fmq_config *c, const char *text, char *err, char path[static 32]) {
  write_tmp(text, path);
  assert_int_equal(fmq_config_init(c), 0);
  int rc = fmq_config_load_file(c, path, err, FMQ_CONFIG_ERR_MAX);
  unlink(path);
  return rc;
}

/* Asserts that text fails to load with "FILE:" + expected. */
static void assert_load_error(const char *text, const char *expected) {
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "", want[FMQ_CONFIG_ERR_MAX];

  assert_int_equal(load_text(&c, text, err, path), -1);
  snprintf(want, sizeof want, "%s:%s", path, expected);
  if (strcmp(err, want) != 0)
    fail_msg("for:\n%s\ngot:  %s\nwant: %s", text, err, want);
  fmq_config_close(&c);
}

static void assert_config_equal(const struct fmq_config *a, const struct fmq_config *b) {
  assert_int_equal(a->nlisten, b->nlisten);
  for (size_t i = 0; i < a->nlisten; i++) {
    assert_string_equal(a->listen[i].address, b->listen[i].address);
    assert_int_equal(a->listen[i].npaths, b->listen[i].npaths);
    for (size_t j = 0; j < a->listen[i].npaths; j++)
      assert_string_equal(a->listen[i].paths[j], b->listen[i].paths[j]);
  }
  assert_string_equal(a->broker.url, b->broker.url);
  assert_string_equal(a->broker.client_id, b->broker.client_id);
  assert_string_equal(a->broker.username, b->broker.username);
  assert_string_equal(a->broker.password, b->broker.password);
  assert_int_equal(a->broker.protocol, b->broker.protocol);
  assert_int_equal(a->broker.keepalive, b->broker.keepalive);
  assert_int_equal(a->broker.reconnect.min, b->broker.reconnect.min);
  assert_int_equal(a->broker.reconnect.max, b->broker.reconnect.max);
  assert_int_equal(a->broker.offline_buffer, b->broker.offline_buffer);
  assert_int_equal(a->websocket.idle_timeout, b->websocket.idle_timeout);
  assert_int_equal(a->websocket.ping_interval, b->websocket.ping_interval);
  assert_int_equal(a->websocket.handshake_timeout, b->websocket.handshake_timeout);
  assert_int_equal(a->websocket.close_timeout, b->websocket.close_timeout);
  assert_int_equal(a->websocket.max_message_size, b->websocket.max_message_size);
  assert_int_equal(a->websocket.max_header_size, b->websocket.max_header_size);
  assert_int_equal(a->websocket.outbound_queue_limit, b->websocket.outbound_queue_limit);
  assert_int_equal(a->limits.max_connections, b->limits.max_connections);
  assert_int_equal(a->log.level, b->log.level);
  assert_int_equal(a->workers, b->workers);
}

static void assert_defaults(const struct fmq_config *c) {
  assert_int_equal(c->nlisten, 1);
  assert_string_equal(c->listen[0].address, "0.0.0.0:8080");
  assert_int_equal(c->listen[0].npaths, 1);
  assert_string_equal(c->listen[0].paths[0], "/mqtt");
  assert_string_equal(c->broker.url, "tcp://127.0.0.1:1883");
  assert_string_equal(c->broker.client_id, "ferrymq-%h-%p");
  assert_string_equal(c->broker.username, "");
  assert_string_equal(c->broker.password, "");
  assert_int_equal(c->broker.protocol, FMQ_MQTT_5);
  assert_int_equal(c->broker.keepalive, 30000);
  assert_int_equal(c->broker.reconnect.min, 1000);
  assert_int_equal(c->broker.reconnect.max, 30000);
  assert_int_equal(c->broker.offline_buffer, 1000);
  assert_int_equal(c->websocket.idle_timeout, 60000);
  assert_int_equal(c->websocket.ping_interval, 20000);
  assert_int_equal(c->websocket.handshake_timeout, 30000);
  assert_int_equal(c->websocket.close_timeout, 5000);
  assert_int_equal(c->websocket.max_message_size, 64 * 1024);
  assert_int_equal(c->websocket.max_header_size, 16 * 1024);
  assert_int_equal(c->websocket.outbound_queue_limit, 1024 * 1024);
  assert_int_equal(c->limits.max_connections, 100000);
  assert_int_equal(c->log.level, FMQ_LOG_INFO);
  assert_int_equal(c->workers, 0);
}

static void test_defaults(void **state) {
  struct fmq_config c;

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  assert_defaults(&c);
  fmq_config_close(&c);
}

static void test_parse_duration(void **state) {
  static const struct {
    const char *text;
    uint64_t ms;
  } good[] = {
      {"0", 0},
      {"0ms", 0},
      {"0h", 0},
      {"1ms", 1},
      {"500ms", 500},
      {"30s", 30000},
      {"5m", 300000},
      {"1h", 3600000},
      {"18446744073709551615ms", UINT64_MAX},
      {"5124095576030h", UINT64_C(5124095576030) * 3600000},
  };
  static const char *const bad[] = {
      "",
      "60",
      "1",
      "abc",
      "s",
      "-1s",
      "+1s",
      " 1s",
      "1s ",
      "1.5s",
      "1S",
      "1d",
      "1sec",
      "1ms5",
      "1hh",
      "18446744073709551616ms",
      "5124095576031h", /* overflows in the multiplication */
  };
  uint64_t ms;

  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    ms = 12345;
    if (fmq_config_parse_duration(good[i].text, &ms) != 0)
      fail_msg("'%s' rejected", good[i].text);
    assert_int_equal(ms, good[i].ms);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (fmq_config_parse_duration(bad[i], &ms) != -1)
      fail_msg("'%s' accepted", bad[i]);
}

static void test_parse_size(void **state) {
  static const struct {
    const char *text;
    uint64_t bytes;
  } good[] = {
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"0KiB", 0},
      {"64KiB", 65536},
      {"1MiB", 1048576},
      {"3GiB", UINT64_C(3) << 30},
      {"18446744073709551615", UINT64_MAX},
      {"17179869183GiB", UINT64_C(17179869183) << 30},
  };
  static const char *const bad[] = {
      "",
      "abc",
      "-1",
      "1.5MiB",
      "1KB",
      "1MB",
      "1K",
      "1k",
      "1kib",
      "1 KiB",
      "KiB",
      "1TiB",
      "1iB",
      "1KiBs",
      "1b",
      "18446744073709551616",
      "17179869184GiB", /* 2^64 */
  };
  uint64_t bytes;

  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    bytes = 12345;
    if (fmq_config_parse_size(good[i].text, &bytes) != 0)
      fail_msg("'%s' rejected", good[i].text);
    assert_int_equal(bytes, good[i].bytes);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (fmq_config_parse_size(bad[i], &bytes) != -1)
      fail_msg("'%s' accepted", bad[i]);
}

static void test_parse_hostport(void **state) {
  static const struct {
    const char *text, *host;
    uint16_t port;
  } good[] = {
      {"127.0.0.1:0", "127.0.0.1", 0},
      {"0.0.0.0:8080", "0.0.0.0", 8080},
      {"[::1]:8080", "::1", 8080},
      {"localhost:80", "localhost", 80},
      {"[::]:65535", "::", 65535},
      {"[fe80::1%eth0]:443", "fe80::1%eth0", 443},
      {"gw-1.example_x.org:1", "gw-1.example_x.org", 1},
  };
  static const char *const bad[] = {
      "",          "localhost", "localhost:", ":80",         "host:65536", "host:-1",
      "host:80x",  "host:8 0",  "host:+80",   "host:000080", "[::1]",      "[::1]8080",
      "[::1]:",    "::1:8080",  "[]:80",      "[host]:80",   "a b:80",     "a/b:80",
      "[::1:8080", "::1]:80",   "[::1]:80:1", "h:1:2",
  };
  char host[64];
  uint16_t port;

  (void)state;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    port = 1;
    if (fmq_config_parse_hostport(good[i].text, host, sizeof host, &port) != 0)
      fail_msg("'%s' rejected", good[i].text);
    assert_string_equal(host, good[i].host);
    assert_int_equal(port, good[i].port);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (fmq_config_parse_hostport(bad[i], host, sizeof host, &port) != -1)
      fail_msg("'%s' accepted", bad[i]);
  /* The host must fit with its NUL. */
  assert_int_equal(fmq_config_parse_hostport("localhost:80", host, 9, &port), -1);
  assert_int_equal(fmq_config_parse_hostport("localhost:80", host, 10, &port), 0);
  assert_string_equal(host, "localhost");
}

static void test_load_errors(void **state) {
  static const struct {
    const char *text, *err;
  } cases[] = {
      /* unknown keys */
      {"websocket:\n  idle_timout: 5s\n",
       "2: unknown key 'websocket.idle_timout' (did you mean 'websocket.idle_timeout'?)"},
      {"websockt:\n  idle_timeout: 5s\n", "1: unknown key 'websockt' (did you mean 'websocket'?)"},
      {"broker:\n  ur: tcp://h:1\n", "2: unknown key 'broker.ur' (did you mean 'broker.url'?)"},
      {"idle_timeout: 5s\n",
       "1: unknown key 'idle_timeout' (did you mean 'websocket.idle_timeout'?)"},
      {"# comment\n\nfoo: 1\n", "3: unknown key 'foo'"},
      {"websocket:\n  x: 1\n", "2: unknown key 'websocket.x'"},
      {"log:\n  level: info\n  colour: no\n", "3: unknown key 'log.colour'"},
      /* syntax */
      {"websocket:\n  idle_timeout: 5s\n ping_interval: 1s\n",
       "3: syntax error: did not find expected key"},
      {"log: {level: info\n", "2: syntax error: did not find expected ',' or '}'"},
      {"workers: \"1\n", "2: syntax error: found unexpected end of stream"},
      {"workers: 1\n\tlog: x\n",
       "2: syntax error: found a tab character that violates indentation"},
      {"workers: 1\nlog: \x01\n", "2: syntax error: control characters are not allowed"},
      {"workers: 1\n\nlog:\n  level: info\xff\n", "4: syntax error: invalid leading UTF-8 octet"},
      {"workers: 1\n...\nfoo\n", "3: syntax error: did not find expected <document start>"},
      /* shapes */
      {"websocket:\n  idle_timeout:\n    a: 1\n",
       "3: websocket.idle_timeout: expected a single value, got a mapping"},
      {"broker:\n  url: [tcp://h:1]\n", "2: broker.url: expected a single value, got a sequence"},
      {"websocket: 5s\n", "1: websocket: expected a mapping, got a value"},
      {"log:\n  - level\n", "2: log: expected a mapping, got a sequence"},
      {"- workers\n", "1: expected a mapping of keys, got a sequence"},
      {"just text\n", "1: expected a mapping of keys, got a value"},
      {"? [a]\n: 1\n", "1: keys must be strings, got a sequence"},
      {"workers: &w 1\nlimits:\n  max_connections: *w\n",
       "3: limits.max_connections: expected a single value, got an alias"},
      {"workers: 1\n---\nworkers: 2\n", "2: only one YAML document is allowed"},
      {"workers: 1\nlog: {level: warn}\nworkers: 2\n",
       "3: duplicate key 'workers' (first set on line 1)"},
      /* values */
      {"websocket:\n  idle_timeout: abc\n",
       "2: websocket.idle_timeout: invalid duration 'abc' (use e.g. 500ms, 30s, 5m, 1h)"},
      {"websocket:\n  ping_interval: 20\n",
       "2: websocket.ping_interval: invalid duration '20' (use e.g. 500ms, 30s, 5m, 1h)"},
      {"websocket:\n  idle_timeout: 50ms\n",
       "2: websocket.idle_timeout: '50ms' is out of range: must be 0 (off) or between 100ms and "
       "24h"},
      {"websocket:\n  ping_interval: 25h\n",
       "2: websocket.ping_interval: '25h' is out of range: must be 0 (off) or between 100ms and "
       "24h"},
      {"websocket:\n  handshake_timeout: 0\n",
       "2: websocket.handshake_timeout: '0' is out of range: must be between 100ms and 1h"},
      {"websocket:\n  close_timeout: 61m\n",
       "2: websocket.close_timeout: '61m' is out of range: must be between 100ms and 1h"},
      {"websocket:\n  max_message_size: 10KB\n",
       "2: websocket.max_message_size: invalid size '10KB' (use e.g. 512, 64KiB, 1MiB, 1GiB)"},
      {"websocket:\n  max_message_size: 125\n",
       "2: websocket.max_message_size: '125' is out of range: must be between 126 and 1GiB"},
      {"websocket:\n  max_header_size: 512\n",
       "2: websocket.max_header_size: '512' is out of range: must be between 1KiB and 1MiB"},
      {"websocket:\n  outbound_queue_limit: 2GiB\n",
       "2: websocket.outbound_queue_limit: '2GiB' is out of range: must be between 1KiB and 1GiB"},
      {"limits:\n  max_connections: 0\n",
       "2: limits.max_connections: '0' is out of range: must be between 1 and 10000000"},
      {"workers: 1025\n", "1: workers: '1025' is out of range: must be between 0 and 1024"},
      {"workers: -1\n", "1: workers: invalid number '-1' (use a non-negative integer)"},
      {"workers: ''\n", "1: workers: invalid number '' (use a non-negative integer)"},
      {"log:\n  level: verbose\n",
       "2: log.level: invalid value 'verbose' (use error | warn | info | debug)"},
      {"log:\n  level: INFO\n",
       "2: log.level: invalid value 'INFO' (use error | warn | info | debug)"},
      {"broker:\n  url: http://h:1883\n",
       "2: broker.url: invalid URL 'http://h:1883' (use tcp://, mqtt://, ssl:// or mqtts:// and a "
       "host, e.g. tcp://127.0.0.1:1883)"},
      {"broker:\n  url: tcp://\n",
       "2: broker.url: invalid URL 'tcp://' (use tcp://, mqtt://, ssl:// or mqtts:// and a host, "
       "e.g. tcp://127.0.0.1:1883)"},
      /* listen */
      {"listen: 0.0.0.0:80\n", "1: listen: expected a sequence of listeners, got a value"},
      {"listen: []\n", "1: listen: at least one listener is required"},
      {"listen:\n  - 0.0.0.0:80\n", "2: listen: expected a mapping with 'address', got a value"},
      {"listen:\n  - address: \"0.0.0.0:80\"\n  - paths: [/a]\n",
       "3: listen: entry has no 'address'"},
      {"listen:\n  - address: 8080\n",
       "2: listen.address: invalid address '8080' (use HOST:PORT, e.g. 0.0.0.0:8080 or "
       "[::1]:8080)"},
      {"listen:\n  - address: \"[::1]\"\n",
       "2: listen.address: invalid address '[::1]' (use HOST:PORT, e.g. 0.0.0.0:8080 or "
       "[::1]:8080)"},
      {"listen:\n  - address: [a]\n", "2: listen.address: expected a string, got a sequence"},
      {"listen:\n  - address: \"h:1\"\n    address: \"h:2\"\n",
       "3: duplicate key 'listen.address'"},
      {"listen:\n  - address: \"h:1\"\n    paths: [/a]\n    paths: [/b]\n",
       "4: duplicate key 'listen.paths'"},
      {"listen:\n  - address: \"h:1\"\n    paths:\n      - /ok\n      - mqtt\n",
       "5: listen.paths: invalid path 'mqtt' (must start with '/')"},
      {"listen:\n  - address: \"h:1\"\n    paths: [\"/a b\"]\n",
       "3: listen.paths: invalid path '/a b' (no spaces, control characters, '?' or '#')"},
      {"listen:\n  - address: \"h:1\"\n    paths: [\"/a?b\"]\n",
       "3: listen.paths: invalid path '/a?b' (no spaces, control characters, '?' or '#')"},
      {"listen:\n  - address: \"h:1\"\n    paths: /mqtt\n",
       "3: listen.paths: expected a sequence, got a value"},
      {"listen:\n  - address: \"h:1\"\n    paths: [[/a]]\n",
       "3: listen.paths: expected a string, got a sequence"},
      {"listen:\n  - address: \"h:1\"\n    paths: []\n",
       "3: listen.paths: at least one path is required"},
      {"listen:\n  - address: \"h:1\"\n    tls:\n      cert: c.pem\n",
       "3: listen.tls: TLS is not supported yet"},
      {"listen:\n  - adress: \"h:1\"\n",
       "2: unknown key 'listen.adress' (did you mean 'listen.address'?)"},
      {"listen:\n  - address: \"h:1\"\n    port: 80\n", "3: unknown key 'listen.port'"},
      {"listen:\n  - address: \"h:1\"\nlisten:\n  - address: \"h:2\"\n",
       "3: duplicate key 'listen' (first set on line 1)"},
  };

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_load_error(cases[i].text, cases[i].err);
}

static void test_load_missing_file(void **state) {
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  assert_int_equal(fmq_config_load_file(&c, "/nonexistent/ferrymq.yaml", err, sizeof err), -1);
  assert_string_equal(err, "/nonexistent/ferrymq.yaml: No such file or directory");
  assert_defaults(&c);
  fmq_config_close(&c);
}

/* Nothing, comments, an empty document or empty sections: all defaults. */
static void test_load_empty(void **state) {
  static const char *const texts[] = {
      "", "# nothing\n\n", "---\n", "---\n...\n", "websocket:\nlog: ~\nlimits: null\n", "{}\n",
  };
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    if (load_text(&c, texts[i], err, path) != 0)
      fail_msg("'%s': %s", texts[i], err);
    assert_defaults(&c);
    fmq_config_close(&c);
  }
}

static void test_load_values(void **state) {
  static const char text[] = "listen:\n"
                             "  - address: \"127.0.0.1:0\"\n"
                             "  - address: \"[::1]:9001\"\n"
                             "    paths: [/a, \"/b/c\"]\n"
                             "broker:\n"
                             "  url: \"mqtt://broker.example:8883\"\n"
                             "  client_id: gw-%p\n"
                             "  username: alice\n"
                             "  password: \"s3cret\"\n"
                             "  protocol: 3.1.1\n"
                             "  keepalive: 0\n"
                             "  reconnect: {min: 2s, max: 1m}\n"
                             "  offline_buffer: 0\n"
                             "websocket:\n"
                             "  idle_timeout: 0\n"
                             "  ping_interval: 2m\n"
                             "  handshake_timeout: 100ms\n"
                             "  close_timeout: 1h\n"
                             "  max_message_size: 126\n"
                             "  max_header_size: '1MiB'\n"
                             "  outbound_queue_limit: 1GiB\n"
                             "limits:\n"
                             "  max_connections: 10000000\n"
                             "log:\n"
                             "  level: debug\n"
                             "workers: 1024\n";
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  if (load_text(&c, text, err, path) != 0)
    fail_msg("%s", err);
  assert_int_equal(c.nlisten, 2);
  assert_string_equal(c.listen[0].address, "127.0.0.1:0");
  assert_int_equal(c.listen[0].npaths, 1);
  assert_string_equal(c.listen[0].paths[0], "/mqtt");
  assert_string_equal(c.listen[1].address, "[::1]:9001");
  assert_int_equal(c.listen[1].npaths, 2);
  assert_string_equal(c.listen[1].paths[0], "/a");
  assert_string_equal(c.listen[1].paths[1], "/b/c");
  assert_string_equal(c.broker.url, "mqtt://broker.example:8883");
  assert_string_equal(c.broker.client_id, "gw-%p");
  assert_string_equal(c.broker.username, "alice");
  assert_string_equal(c.broker.password, "s3cret");
  assert_int_equal(c.broker.protocol, FMQ_MQTT_311);
  assert_int_equal(c.broker.keepalive, 0);
  assert_int_equal(c.broker.reconnect.min, 2000);
  assert_int_equal(c.broker.reconnect.max, 60000);
  assert_int_equal(c.broker.offline_buffer, 0);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
  assert_int_equal(c.websocket.idle_timeout, 0);
  assert_int_equal(c.websocket.ping_interval, 120000);
  assert_int_equal(c.websocket.handshake_timeout, 100);
  assert_int_equal(c.websocket.close_timeout, 3600000);
  assert_int_equal(c.websocket.max_message_size, 126);
  assert_int_equal(c.websocket.max_header_size, 1048576);
  assert_int_equal(c.websocket.outbound_queue_limit, UINT64_C(1) << 30);
  assert_int_equal(c.limits.max_connections, 10000000);
  assert_int_equal(c.log.level, FMQ_LOG_DEBUG);
  assert_int_equal(c.workers, 1024);
  fmq_config_close(&c);
}

/* Sets every key away from its default, so that loading the sample proves
 * it names each key with its default value. */
static void set_all_non_default(struct fmq_config *c) {
  static const char *const kv[][2] = {
      {"broker.url", "mqtt://other:1"},
      {"broker.client_id", "x"},
      {"broker.username", "u"},
      {"broker.password", "p"},
      {"broker.protocol", "3.1.1"},
      {"broker.keepalive", "5s"},
      {"broker.reconnect.min", "3s"},
      {"broker.reconnect.max", "4s"},
      {"broker.offline_buffer", "7"},
      {"websocket.idle_timeout", "1s"},
      {"websocket.ping_interval", "1s"},
      {"websocket.handshake_timeout", "1s"},
      {"websocket.close_timeout", "1s"},
      {"websocket.max_message_size", "1MiB"},
      {"websocket.max_header_size", "2KiB"},
      {"websocket.outbound_queue_limit", "2KiB"},
      {"limits.max_connections", "7"},
      {"log.level", "error"},
      {"workers", "3"},
  };
  char err[FMQ_CONFIG_ERR_MAX];

  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
    if (fmq_config_set(c, kv[i][0], kv[i][1], "test", err, sizeof err) != 0)
      fail_msg("%s", err);
  assert_int_equal(fmq_config_set_listen(c, "127.0.0.1:1", err, sizeof err), 0);
  assert_int_equal(fmq_config_set_path(c, "/other", err, sizeof err), 0);
}

static void test_sample_file(void **state) {
  struct fmq_config defaults, c;
  char err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  assert_int_equal(fmq_config_init(&defaults), 0);
  assert_int_equal(fmq_config_init(&c), 0);
  set_all_non_default(&c);
  assert_int_not_equal(c.workers, defaults.workers);
  if (fmq_config_load_file(&c, FMQ_SAMPLE_CONFIG, err, sizeof err) != 0)
    fail_msg("%s", err);
  assert_config_equal(&c, &defaults);
  fmq_config_close(&c);
  fmq_config_close(&defaults);
}

static void test_precedence(void **state) {
  static const char text[] = "listen:\n"
                             "  - address: \"0.0.0.0:1\"\n"
                             "    paths: [/f]\n"
                             "  - address: \"0.0.0.0:2\"\n"
                             "broker:\n"
                             "  url: tcp://file:1\n"
                             "websocket:\n"
                             "  idle_timeout: 30s\n"
                             "  ping_interval: 10s\n"
                             "workers: 2\n";
  char *env[] = {"PATH=/bin",
                 "FERRYMQ_WEBSOCKET_PING_INTERVAL=5s",
                 "FERRYMQ_BROKER_URL=tcp://env:1",
                 "FERRYMQ_LOG_LEVEL=warn",
                 "FERRYMQ_LISTEN=9.9.9.9:9",
                 NULL};
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  if (load_text(&c, text, err, path) != 0)
    fail_msg("%s", err);
  assert_int_equal(fmq_config_apply_env(&c, env, err, sizeof err), 0);
  assert_int_equal(fmq_config_set(&c, "broker.url", "tcp://cli:1", "--broker", err, sizeof err), 0);
  assert_int_equal(fmq_config_set(&c, "workers", "4", "--workers", err, sizeof err), 0);

  assert_int_equal(c.websocket.close_timeout, 5000); /* default */
  assert_int_equal(c.websocket.idle_timeout, 30000); /* file */
  assert_int_equal(c.websocket.ping_interval, 5000); /* env over file */
  assert_int_equal(c.log.level, FMQ_LOG_WARN);       /* env over default */
  assert_string_equal(c.broker.url, "tcp://cli:1");  /* command line over env and file */
  assert_int_equal(c.workers, 4);                    /* command line over file */
  assert_int_equal(c.nlisten, 2);                    /* FERRYMQ_LISTEN is no scalar key */
  assert_string_equal(c.listen[1].paths[0], "/mqtt");

  /* --path sets every listener's paths; --listen keeps the first's. */
  assert_int_equal(fmq_config_set_path(&c, "/p", err, sizeof err), 0);
  for (size_t i = 0; i < c.nlisten; i++) {
    assert_int_equal(c.listen[i].npaths, 1);
    assert_string_equal(c.listen[i].paths[0], "/p");
  }
  assert_int_equal(fmq_config_set_listen(&c, "127.0.0.1:0", err, sizeof err), 0);
  assert_int_equal(c.nlisten, 1);
  assert_string_equal(c.listen[0].address, "127.0.0.1:0");
  assert_int_equal(c.listen[0].npaths, 1);
  assert_string_equal(c.listen[0].paths[0], "/p");
  fmq_config_close(&c);
}

static void test_set_listen_keeps_paths(void **state) {
  static const char text[] = "listen:\n"
                             "  - address: \"0.0.0.0:1\"\n"
                             "    paths: [/a, /b]\n"
                             "  - address: \"0.0.0.0:2\"\n"
                             "    paths: [/c]\n";
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  if (load_text(&c, text, err, path) != 0)
    fail_msg("%s", err);
  assert_int_equal(fmq_config_set_listen(&c, "[::1]:8080", err, sizeof err), 0);
  assert_int_equal(c.nlisten, 1);
  assert_string_equal(c.listen[0].address, "[::1]:8080");
  assert_int_equal(c.listen[0].npaths, 2);
  assert_string_equal(c.listen[0].paths[0], "/a");
  assert_string_equal(c.listen[0].paths[1], "/b");
  fmq_config_close(&c);
}

static void test_cli_errors(void **state) {
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  assert_int_equal(fmq_config_set_listen(&c, "8080", err, sizeof err), -1);
  assert_string_equal(err, "--listen: invalid address '8080' (use HOST:PORT, e.g. 0.0.0.0:8080 "
                           "or [::1]:8080)");
  assert_int_equal(fmq_config_set_path(&c, "mqtt", err, sizeof err), -1);
  assert_string_equal(err, "--path: invalid path 'mqtt' (must start with '/')");
  assert_int_equal(fmq_config_set(&c, "broker.url", "x", "--broker", err, sizeof err), -1);
  assert_string_equal(err, "--broker: invalid URL 'x' (use tcp://, mqtt://, ssl:// or mqtts:// "
                           "and a host, e.g. tcp://127.0.0.1:1883)");
  assert_int_equal(fmq_config_set(&c, "log.level", "trace", "--log-level", err, sizeof err), -1);
  assert_string_equal(err, "--log-level: invalid value 'trace' (use error | warn | info | debug)");
  assert_int_equal(fmq_config_set(&c, "workers", "2000", "--workers", err, sizeof err), -1);
  assert_string_equal(err, "--workers: '2000' is out of range: must be between 0 and 1024");
  assert_int_equal(fmq_config_set(&c, "no.such", "1", "--x", err, sizeof err), -1);
  assert_string_equal(err, "--x: unknown key 'no.such'");
  assert_int_equal(fmq_config_set(&c, "listen", "h:1", "--x", err, sizeof err), -1);
  assert_string_equal(err, "--x: 'listen' cannot be set from a single value");
  /* A failed set leaves the value alone; errors are truncated to errlen. */
  assert_defaults(&c);
  assert_int_equal(fmq_config_set(&c, "workers", "x", "--workers", err, 10), -1);
  assert_string_equal(err, "--workers");
  fmq_config_close(&c);
}

static void test_env_errors(void **state) {
  static const struct {
    const char *var, *err;
  } cases[] = {
      {"FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=abc",
       "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT: invalid duration 'abc' (use e.g. 500ms, 30s, 5m, 1h)"},
      {"FERRYMQ_WEBSOCKET_MAX_HEADER_SIZE=2MiB",
       "FERRYMQ_WEBSOCKET_MAX_HEADER_SIZE: '2MiB' is out of range: must be between 1KiB and 1MiB"},
      {"FERRYMQ_BROKER_URL=", "FERRYMQ_BROKER_URL: invalid URL '' (use tcp://, mqtt://, ssl:// "
                              "or mqtts:// and a host, e.g. tcp://127.0.0.1:1883)"},
      {"FERRYMQ_LOG_LEVEL=loud",
       "FERRYMQ_LOG_LEVEL: invalid value 'loud' (use error | warn | info | debug)"},
      {"FERRYMQ_WORKERS=1e3", "FERRYMQ_WORKERS: invalid number '1e3' (use a non-negative integer)"},
      {"FERRYMQ_LIMITS_MAX_CONNECTIONS=0",
       "FERRYMQ_LIMITS_MAX_CONNECTIONS: '0' is out of range: must be between 1 and 10000000"},
  };
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *env[] = {"FERRYMQ_WORKERS=8", (char *)cases[i].var, NULL};
    assert_int_equal(fmq_config_init(&c), 0);
    err[0] = '\0';
    assert_int_equal(fmq_config_apply_env(&c, env, err, sizeof err), -1);
    assert_string_equal(err, cases[i].err);
    fmq_config_close(&c);
  }
}

static void test_env_values(void **state) {
  char *env[] = {
      "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=0",
      "FERRYMQ_WEBSOCKET_HANDSHAKE_TIMEOUT=2s",
      "FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=250ms",
      "FERRYMQ_WEBSOCKET_MAX_MESSAGE_SIZE=1MiB",
      "FERRYMQ_WEBSOCKET_OUTBOUND_QUEUE_LIMIT=4096",
      "FERRYMQ_LIMITS_MAX_CONNECTIONS=12",
      "FERRYMQ_LOG_LEVEL=error",
      "FERRYMQ_WORKERS=3",
      /* ignored: no such key, wrong case, a prefix of a key, no '=' */
      "FERRYMQ_WEBSOCKET_IDLE_TIMOUT=junk",
      "ferrymq_workers=junk",
      "FERRYMQ_WEBSOCKET=junk",
      "FERRYMQ_WORKERS_X=junk",
      "FERRYMQ_WORKERS",
      "FERRYMQ_=junk",
      "HOME=/root",
      NULL,
  };
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  if (fmq_config_apply_env(&c, env, err, sizeof err) != 0)
    fail_msg("%s", err);
  assert_int_equal(c.websocket.idle_timeout, 0);
  assert_int_equal(c.websocket.ping_interval, 20000);
  assert_int_equal(c.websocket.handshake_timeout, 2000);
  assert_int_equal(c.websocket.close_timeout, 250);
  assert_int_equal(c.websocket.max_message_size, 1048576);
  assert_int_equal(c.websocket.outbound_queue_limit, 4096);
  assert_int_equal(c.limits.max_connections, 12);
  assert_int_equal(c.log.level, FMQ_LOG_ERROR);
  assert_int_equal(c.workers, 3);
  fmq_config_close(&c);
}

/* Leaks show under ASan: strings set twice, listeners replaced, failed loads. */
/* Values the table's bounds and validators refuse, and the one rule that
 * spans two keys. */
static void test_broker_errors(void **state) {
  static const char *const cases[][3] = {
      {"broker.url", "ssl://h:8883", "test: 'ssl://h:8883': TLS to the broker is not supported yet"},
      {"broker.url", "mqtts://h", "test: 'mqtts://h': TLS to the broker is not supported yet"},
      {"broker.client_id", "", "test: the client id must not be empty"},
      {"broker.protocol", "4", "test: invalid value '4' (use 5 | 3.1.1)"},
      {"broker.keepalive", "500ms", "test: '500ms' is out of range: must be 0 (off) or between 1s and 65535s"},
      {"broker.reconnect.min", "0", "test: '0' is out of range: must be between 1s and 1h"},
      {"broker.offline_buffer", "1000001",
       "test: '1000001' is out of range: must be between 0 and 1000000"},
  };
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    err[0] = '\0';
    assert_int_equal(fmq_config_set(&c, cases[i][0], cases[i][1], "test", err, sizeof err), -1);
    assert_string_equal(err, cases[i][2]);
  }
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
  assert_int_equal(fmq_config_set(&c, "broker.reconnect.min", "10s", "test", err, sizeof err), 0);
  assert_int_equal(fmq_config_set(&c, "broker.reconnect.max", "9s", "test", err, sizeof err), 0);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), -1);
  assert_string_equal(err, "configuration: broker.reconnect.max is below broker.reconnect.min");
  fmq_config_close(&c);
}

static void test_close_frees(void **state) {
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  set_all_non_default(&c);
  set_all_non_default(&c);
  assert_int_equal(fmq_config_set_path(&c, "/again", err, sizeof err), 0);
  fmq_config_close(&c);
  assert_null(c.listen);
  assert_int_equal(c.nlisten, 0);
  assert_null(c.broker.url);
  fmq_config_close(&c); /* idempotent */

  /* A failure midway through a listener and midway through paths. */
  assert_int_equal(load_text(&c,
                             "listen:\n  - address: \"h:1\"\n    paths: [/a]\n"
                             "  - address: \"h:2\"\n    paths: [/b, c]\n",
                             err, path),
                   -1);
  assert_defaults(&c);
  fmq_config_close(&c);
}

static void test_log_level_name(void **state) {
  (void)state;
  assert_string_equal(fmq_log_level_name(FMQ_LOG_ERROR), "error");
  assert_string_equal(fmq_log_level_name(FMQ_LOG_WARN), "warn");
  assert_string_equal(fmq_log_level_name(FMQ_LOG_INFO), "info");
  assert_string_equal(fmq_log_level_name(FMQ_LOG_DEBUG), "debug");
  assert_string_equal(fmq_log_level_name((enum fmq_log_level)42), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_parse_duration),
      cmocka_unit_test(test_parse_size),
      cmocka_unit_test(test_parse_hostport),
      cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_load_missing_file),
      cmocka_unit_test(test_load_empty),
      cmocka_unit_test(test_load_values),
      cmocka_unit_test(test_sample_file),
      cmocka_unit_test(test_precedence),
      cmocka_unit_test(test_set_listen_keeps_paths),
      cmocka_unit_test(test_cli_errors),
      cmocka_unit_test(test_env_errors),
      cmocka_unit_test(test_env_values),
      cmocka_unit_test(test_broker_errors),
      cmocka_unit_test(test_close_frees),
      cmocka_unit_test(test_log_level_name),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
