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
#ifndef FMQ_EXAMPLE_CONFIG
#error "FMQ_EXAMPLE_CONFIG must name config/examples/sessions.yaml"
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

/* Loads text over c as it is; err gets the message, if any. */
static int load_over(struct fmq_config *c, const char *text, char *err, char path[static 32]) {
  write_tmp(text, path);
  int rc = fmq_config_load_file(c, path, err, FMQ_CONFIG_ERR_MAX);
  unlink(path);
  return rc;
}

/* Loads text over the defaults; err gets the message, if any. */
static int load_text(struct fmq_config *c, const char *text, char *err, char path[static 32]) {
  assert_int_equal(fmq_config_init(c), 0);
  return load_over(c, text, err, path);
}

/* Asserts that text fails to load with "FILE:" + expected, the whole
 * message, or only its start when prefix (the rest comes from another
 * module). */
static void assert_load_error_as(const char *text, const char *expected, int prefix) {
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "", want[FMQ_CONFIG_ERR_MAX];

  assert_int_equal(load_text(&c, text, err, path), -1);
  snprintf(want, sizeof want, "%s:%s", path, expected);
  if (prefix ? strncmp(err, want, strlen(want)) != 0 : strcmp(err, want) != 0)
    fail_msg("for:\n%s\ngot:  %s\nwant: %s%s", text, err, want, prefix ? "..." : "");
  fmq_config_close(&c);
}

static void assert_load_error(const char *text, const char *expected) {
  assert_load_error_as(text, expected, 0);
}

static void assert_strv(const struct fmq_strv *v, const char *const *want, size_t n) {
  assert_int_equal(v->n, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(v->v[i], want[i]);
}

static void assert_strv_equal(const struct fmq_strv *a, const struct fmq_strv *b) {
  assert_strv(a, (const char *const *)b->v, b->n);
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
  assert_int_equal(a->broker.publish_window, b->broker.publish_window);
  assert_int_equal(a->broker.max_topic_levels, b->broker.max_topic_levels);
  assert_string_equal(a->broker.tls.ca, b->broker.tls.ca);
  assert_string_equal(a->broker.tls.cert, b->broker.tls.cert);
  assert_string_equal(a->broker.tls.key, b->broker.tls.key);
  assert_int_equal(a->broker.tls.verify, b->broker.tls.verify);
  assert_int_equal(a->websocket.idle_timeout, b->websocket.idle_timeout);
  assert_int_equal(a->websocket.ping_interval, b->websocket.ping_interval);
  assert_int_equal(a->websocket.handshake_timeout, b->websocket.handshake_timeout);
  assert_int_equal(a->websocket.close_timeout, b->websocket.close_timeout);
  assert_int_equal(a->websocket.max_message_size, b->websocket.max_message_size);
  assert_int_equal(a->websocket.max_header_size, b->websocket.max_header_size);
  assert_int_equal(a->websocket.outbound_queue_limit, b->websocket.outbound_queue_limit);
  assert_int_equal(a->websocket.max_subscriptions, b->websocket.max_subscriptions);
  assert_int_equal(a->websocket.max_fragments, b->websocket.max_fragments);
  assert_strv_equal(&a->websocket.allowed_origins, &b->websocket.allowed_origins);
  assert_int_equal(a->limits.max_connections, b->limits.max_connections);
  assert_int_equal(a->limits.max_connections_per_ip, b->limits.max_connections_per_ip);
  assert_int_equal(a->limits.rate.messages_per_second, b->limits.rate.messages_per_second);
  assert_int_equal(a->limits.rate.burst, b->limits.rate.burst);
  assert_int_equal(a->limits.rate.max_refusals, b->limits.rate.max_refusals);
  assert_int_equal(a->auth.mode, b->auth.mode);
  assert_int_equal(a->auth.max_token_size, b->auth.max_token_size);
  assert_strv_equal(&a->auth.jwt.algorithms, &b->auth.jwt.algorithms);
  assert_string_equal(a->auth.jwt.secret, b->auth.jwt.secret);
  assert_string_equal(a->auth.jwt.public_key_file, b->auth.jwt.public_key_file);
  assert_string_equal(a->auth.jwt.issuer, b->auth.jwt.issuer);
  assert_string_equal(a->auth.jwt.audience, b->auth.jwt.audience);
  assert_int_equal(a->auth.jwt.leeway, b->auth.jwt.leeway);
  assert_string_equal(a->auth.jwt.user_claim, b->auth.jwt.user_claim);
  assert_int_equal(a->auth.jwt.require_exp, b->auth.jwt.require_exp);
  assert_strv_equal(&a->auth.jwt.default_subscribe, &b->auth.jwt.default_subscribe);
  assert_strv_equal(&a->auth.jwt.default_publish, &b->auth.jwt.default_publish);
  assert_int_equal(a->http.demo, b->http.demo);
  assert_int_equal(a->http.health, b->http.health);
  assert_int_equal(a->http.metrics, b->http.metrics);
  assert_string_equal(a->http.sse_path, b->http.sse_path);
  assert_string_equal(a->http.publish_path, b->http.publish_path);
  assert_int_equal(a->http.publish_timeout, b->http.publish_timeout);
  assert_strv_equal(&a->http.trusted_proxies, &b->http.trusted_proxies);
  assert_int_equal(a->log.level, b->log.level);
  assert_int_equal(a->log.format, b->log.format);
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
  assert_int_equal(c->broker.publish_window, 1024 * 1024);
  assert_int_equal(c->broker.max_topic_levels, 200);
  assert_string_equal(c->broker.tls.ca, "");
  assert_string_equal(c->broker.tls.cert, "");
  assert_string_equal(c->broker.tls.key, "");
  assert_int_equal(c->broker.tls.verify, 1);
  assert_int_equal(c->websocket.idle_timeout, 60000);
  assert_int_equal(c->websocket.ping_interval, 20000);
  assert_int_equal(c->websocket.handshake_timeout, 30000);
  assert_int_equal(c->websocket.close_timeout, 5000);
  assert_int_equal(c->websocket.max_message_size, 64 * 1024);
  assert_int_equal(c->websocket.max_header_size, 16 * 1024);
  assert_int_equal(c->websocket.outbound_queue_limit, 1024 * 1024);
  assert_int_equal(c->websocket.max_subscriptions, 100);
  assert_int_equal(c->websocket.max_fragments, 1024);
  assert_strv(&c->websocket.allowed_origins, NULL, 0);
  assert_int_equal(c->limits.max_connections, 100000);
  assert_int_equal(c->limits.max_connections_per_ip, 0);
  assert_int_equal(c->limits.rate.messages_per_second, 0);
  assert_int_equal(c->limits.rate.burst, 0);
  assert_int_equal(c->limits.rate.max_refusals, 50);
  assert_int_equal(c->auth.mode, FMQ_AUTH_NONE);
  assert_int_equal(c->auth.max_token_size, 8192);
  assert_int_equal(c->auth.ntokens, 0);
  assert_strv(&c->auth.jwt.algorithms, (const char *const[]){"HS256"}, 1);
  assert_string_equal(c->auth.jwt.secret, "");
  assert_string_equal(c->auth.jwt.public_key_file, "");
  assert_string_equal(c->auth.jwt.issuer, "");
  assert_string_equal(c->auth.jwt.audience, "");
  assert_int_equal(c->auth.jwt.leeway, 30000);
  assert_string_equal(c->auth.jwt.user_claim, "sub");
  assert_int_equal(c->auth.jwt.require_exp, 1);
  assert_strv(&c->auth.jwt.default_subscribe, NULL, 0);
  assert_strv(&c->auth.jwt.default_publish, NULL, 0);
  assert_int_equal(c->nmappings, 0);
  assert_int_equal(c->http.demo, 0);
  assert_int_equal(c->http.health, 1);
  assert_int_equal(c->http.metrics, 1);
  assert_string_equal(c->http.sse_path, "/events");
  assert_string_equal(c->http.publish_path, "/publish");
  assert_int_equal(c->http.publish_timeout, 10000);
  assert_strv(&c->http.trusted_proxies, NULL, 0);
  assert_int_equal(c->log.level, FMQ_LOG_INFO);
  assert_int_equal(c->log.format, FMQ_LOG_LOGFMT);
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
       "3: listen[1]: entry has no 'address'"},
      {"listen:\n  - address: 8080\n",
       "2: listen[0].address: invalid address '8080' (use HOST:PORT, e.g. 0.0.0.0:8080 or "
       "[::1]:8080)"},
      {"listen:\n  - address: \"[::1]\"\n",
       "2: listen[0].address: invalid address '[::1]' (use HOST:PORT, e.g. 0.0.0.0:8080 or "
       "[::1]:8080)"},
      {"listen:\n  - address: [a]\n",
       "2: listen[0].address: expected a single value, got a sequence"},
      {"listen:\n  - address: \"h:1\"\n    address: \"h:2\"\n",
       "3: duplicate key 'listen[0].address' (first set on line 2)"},
      {"listen:\n  - address: \"h:1\"\n    paths: [/a]\n    paths: [/b]\n",
       "4: duplicate key 'listen[0].paths' (first set on line 3)"},
      {"listen:\n  - address: \"h:1\"\n    paths:\n      - /ok\n      - mqtt\n",
       "5: listen[0].paths: invalid path 'mqtt' (must start with '/')"},
      {"listen:\n  - address: \"h:1\"\n    paths: [\"/a b\"]\n",
       "3: listen[0].paths: invalid path '/a b' (no spaces, control characters, '?' or '#')"},
      {"listen:\n  - address: \"h:1\"\n    paths: [\"/a?b\"]\n",
       "3: listen[0].paths: invalid path '/a?b' (no spaces, control characters, '?' or '#')"},
      {"listen:\n  - address: \"h:1\"\n    paths: /mqtt\n",
       "3: listen[0].paths: expected a sequence, got a value"},
      {"listen:\n  - address: \"h:1\"\n    paths: [[/a]]\n",
       "3: listen[0].paths: expected a string, got a sequence"},
      {"listen:\n  - address: \"h:1\"\n    paths: []\n",
       "3: listen[0].paths: at least one path is required"},
      {"listen:\n  - address: \"h:1\"\n    tls:\n      cert: c.pem\n",
       "3: listen[0].tls: TLS is not supported yet"},
      {"listen:\n  - adress: \"h:1\"\n",
       "2: unknown key 'listen[0].adress' (did you mean 'listen[0].address'?)"},
      {"listen:\n  - address: \"h:1\"\n    port: 80\n", "3: unknown key 'listen[0].port'"},
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
      {"broker.publish_window", "8KiB"},
      {"broker.max_topic_levels", "7"},
      {"broker.tls.ca", "ca.pem"},
      {"broker.tls.cert", "cert.pem"},
      {"broker.tls.key", "key.pem"},
      {"broker.tls.verify", "false"},
      {"websocket.idle_timeout", "1s"},
      {"websocket.ping_interval", "1s"},
      {"websocket.handshake_timeout", "1s"},
      {"websocket.close_timeout", "1s"},
      {"websocket.max_message_size", "1MiB"},
      {"websocket.max_header_size", "2KiB"},
      {"websocket.outbound_queue_limit", "2KiB"},
      {"websocket.max_subscriptions", "7"},
      {"websocket.max_fragments", "7"},
      {"websocket.allowed_origins", "https://x.example"},
      {"limits.max_connections", "7"},
      {"limits.max_connections_per_ip", "7"},
      {"limits.rate.messages_per_second", "7"},
      {"limits.rate.burst", "7"},
      {"limits.rate.max_refusals", "7"},
      {"auth.mode", "jwt"},
      {"auth.max_token_size", "64"},
      {"auth.jwt.algorithms", "RS256,ES256"},
      {"auth.jwt.secret", "s"},
      {"auth.jwt.public_key_file", "k.pem"},
      {"auth.jwt.issuer", "i"},
      {"auth.jwt.audience", "a"},
      {"auth.jwt.leeway", "0"},
      {"auth.jwt.user_claim", "name"},
      {"auth.jwt.require_exp", "false"},
      {"auth.jwt.default_subscribe", "a/#"},
      {"auth.jwt.default_publish", "b"},
      {"http.demo", "true"},
      {"http.health", "false"},
      {"http.metrics", "false"},
      {"http.sse_path", ""},
      {"http.publish_path", "/p"},
      {"http.publish_timeout", "1s"},
      {"http.trusted_proxies", "10.0.0.0/8"},
      {"log.level", "error"},
      {"log.format", "json"},
      {"workers", "3"},
  };
  char err[FMQ_CONFIG_ERR_MAX], path[32];

  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
    if (fmq_config_set(c, kv[i][0], kv[i][1], "test", err, sizeof err) != 0)
      fail_msg("%s", err);
  assert_int_equal(fmq_config_set_listen(c, "127.0.0.1:1", err, sizeof err), 0);
  assert_int_equal(fmq_config_set_path(c, "/other", err, sizeof err), 0);
  if (load_over(c,
                "auth:\n  tokens: [{token: t, user: u, subscribe: [a]}]\n"
                "mappings:\n  - {type: t, action: publish, topic: \"a/{x}\"}\n",
                err, path) != 0)
    fail_msg("%s", err);
  assert_int_equal(c->auth.ntokens, 1);
  assert_int_equal(c->nmappings, 1);
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
  assert_int_equal(c.auth.ntokens, 0);
  assert_int_equal(c.nmappings, 0);
  /* Its explicit ping_interval passes with its idle_timeout, and nothing
   * is derived. */
  if (fmq_config_check(&c, err, sizeof err) != 0)
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
  assert_int_equal(fmq_config_apply_env(&c, env, NULL, NULL, err, sizeof err), 0);
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
    assert_int_equal(fmq_config_apply_env(&c, env, NULL, NULL, err, sizeof err), -1);
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
  if (fmq_config_apply_env(&c, env, NULL, NULL, err, sizeof err) != 0)
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
      {"broker.url", "ssl://h:8883",
       "test: 'ssl://h:8883': TLS to the broker is not supported yet"},
      {"broker.url", "mqtts://h", "test: 'mqtts://h': TLS to the broker is not supported yet"},
      {"broker.client_id", "", "test: the client id must not be empty"},
      {"broker.protocol", "4", "test: invalid value '4' (use 5 | 3.1.1)"},
      {"broker.keepalive", "500ms",
       "test: '500ms' is out of range: must be 0 (off) or between 1s and 65535s"},
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

  /* Midway through tokens' lists, mappings, undoes, a list of strings. */
  static const char *const failing[] = {
      "auth:\n  tokens:\n    - {token: a, user: u, subscribe: [x, y]}\n"
      "    - {token: b, publish: [p, \"#/x\"]}\n",
      "mappings:\n  - {type: s, action: subscribe, topic: \"a/{x}\", deliver_type: d}\n"
      "  - {type: p, action: publish, topic: b, payload: \"{x}\", qos: 4}\n",
      "mappings:\n  - {type: s, action: subscribe, topic: a}\n"
      "  - {type: u, action: unsubscribe, undoes: v}\n",
      "websocket:\n  allowed_origins: [https://a.example, bad]\n",
  };
  for (size_t i = 0; i < sizeof failing / sizeof failing[0]; i++) {
    assert_int_equal(load_text(&c, failing[i], err, path), -1);
    assert_defaults(&c);
    fmq_config_close(&c);
  }
}

#define SHA_A "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Every new kind of key and every rule of auth.tokens and mappings, each
 * with the line of the node at fault. */
static void test_load_errors_v1(void **state) {
  static const struct {
    const char *text, *err;
  } cases[] = {
      /* booleans */
      {"broker:\n  tls:\n    verify: yes\n",
       "3: broker.tls.verify: invalid value 'yes' (use true or false)"},
      {"http:\n  demo: 1\n", "2: http.demo: invalid value '1' (use true or false)"},
      {"http:\n  health: True\n", "2: http.health: invalid value 'True' (use true or false)"},
      {"http:\n  metrics: [true]\n", "2: http.metrics: expected a single value, got a sequence"},
      /* unknown keys in the new sections */
      {"broker:\n  tls:\n    verfy: true\n",
       "3: unknown key 'broker.tls.verfy' (did you mean 'broker.tls.verify'?)"},
      {"auth:\n  jwt:\n    algorithm: [HS256]\n",
       "3: unknown key 'auth.jwt.algorithm' (did you mean 'auth.jwt.algorithms'?)"},
      {"limits:\n  rate:\n    bursts: 5\n",
       "3: unknown key 'limits.rate.bursts' (did you mean 'limits.rate.burst'?)"},
      {"log:\n  fromat: json\n", "2: unknown key 'log.fromat' (did you mean 'log.format'?)"},
      {"http:\n  metric: true\n", "2: unknown key 'http.metric' (did you mean 'http.metrics'?)"},
      {"http:\n  cors: true\n", "2: unknown key 'http.cors'"},
      {"auth:\n  jwt:\n    kid: x\n", "3: unknown key 'auth.jwt.kid'"},
      {"mapping: []\n", "1: unknown key 'mapping' (did you mean 'mappings'?)"},
      {"tokens: []\n", "1: unknown key 'tokens' (did you mean 'auth.tokens'?)"},
      /* numbers, enums, strings */
      {"broker:\n  max_topic_levels: 0\n",
       "2: broker.max_topic_levels: '0' is out of range: must be between 1 and 65535"},
      {"websocket:\n  max_subscriptions: 1000001\n",
       "2: websocket.max_subscriptions: '1000001' is out of range: must be between 1 and 1000000"},
      {"websocket:\n  max_fragments: 0\n",
       "2: websocket.max_fragments: '0' is out of range: must be between 1 and 1000000"},
      {"limits:\n  max_connections_per_ip: 10000001\n",
       "2: limits.max_connections_per_ip: '10000001' is out of range: must be 0 (off) or between 1 "
       "and 10000000"},
      {"limits:\n  rate: {messages_per_second: 1000001}\n",
       "2: limits.rate.messages_per_second: '1000001' is out of range: must be between 0 and "
       "1000000"},
      {"limits:\n  rate:\n    burst: -1\n",
       "3: limits.rate.burst: invalid number '-1' (use a non-negative integer)"},
      {"limits:\n  rate:\n    max_refusals: 1001\n",
       "3: limits.rate.max_refusals: '1001' is out of range: must be between 0 and 1000"},
      {"auth:\n  max_token_size: 63\n",
       "2: auth.max_token_size: '63' is out of range: must be between 64 and 1MiB"},
      {"auth:\n  max_token_size: 8KB\n",
       "2: auth.max_token_size: invalid size '8KB' (use e.g. 512, 64KiB, 1MiB, 1GiB)"},
      {"auth:\n  jwt:\n    leeway: 61m\n",
       "3: auth.jwt.leeway: '61m' is out of range: must be between 0 and 1h"},
      {"auth:\n  jwt:\n    leeway: 30\n",
       "3: auth.jwt.leeway: invalid duration '30' (use e.g. 500ms, 30s, 5m, 1h)"},
      {"http:\n  publish_timeout: 50ms\n",
       "2: http.publish_timeout: '50ms' is out of range: must be between 100ms and 1h"},
      {"auth:\n  mode: oauth\n", "2: auth.mode: invalid value 'oauth' (use none | token | jwt)"},
      {"log:\n  format: text\n", "2: log.format: invalid value 'text' (use logfmt | json)"},
      {"auth:\n  jwt:\n    user_claim: \"\"\n", "3: auth.jwt.user_claim: must not be empty"},
      {"http:\n  sse_path: events\n",
       "2: http.sse_path: invalid path 'events' (must start with '/')"},
      {"http:\n  publish_path: \"/a b\"\n",
       "2: http.publish_path: invalid path '/a b' (no spaces, control characters, '?' or '#')"},
      /* lists of strings */
      {"websocket:\n  allowed_origins: https://a.example\n",
       "2: websocket.allowed_origins: expected a sequence, got a value"},
      {"websocket:\n  allowed_origins:\n    - https://a.example\n    - app.example.com\n",
       "4: websocket.allowed_origins: invalid origin 'app.example.com' (use scheme://host[:port], "
       "e.g. https://app.example.com)"},
      {"websocket:\n  allowed_origins: [null]\n",
       "2: websocket.allowed_origins: invalid origin 'null' (use scheme://host[:port], e.g. "
       "https://app.example.com)"},
      {"websocket:\n  allowed_origins: [[https://a.example]]\n",
       "2: websocket.allowed_origins: expected a string, got a sequence"},
      {"websocket:\n  allowed_origins: []\n  allowed_origins: []\n",
       "3: duplicate key 'websocket.allowed_origins' (first set on line 2)"},
      {"auth:\n  jwt:\n    algorithms: [HS256, none]\n",
       "3: auth.jwt.algorithms: unknown algorithm 'none' (use HS256, HS384, HS512, RS256 or "
       "ES256)"},
      {"auth:\n  jwt:\n    algorithms:\n      - hs256\n",
       "4: auth.jwt.algorithms: unknown algorithm 'hs256' (use HS256, HS384, HS512, RS256 or "
       "ES256)"},
      {"http:\n  trusted_proxies: [10.0.0.0/33]\n",
       "2: http.trusted_proxies: invalid CIDR '10.0.0.0/33' (use an IPv4 or IPv6 address with an "
       "optional /prefix length, e.g. 10.0.0.0/8 or fd00::/8)"},
      {"http:\n  trusted_proxies:\n    - ::1\n    - proxy.example\n",
       "4: http.trusted_proxies: invalid CIDR 'proxy.example' (use an IPv4 or IPv6 address with "
       "an optional /prefix length, e.g. 10.0.0.0/8 or fd00::/8)"},
      /* auth.tokens */
      {"auth:\n  tokens: abc\n", "2: auth.tokens: expected a sequence of entries, got a value"},
      {"auth:\n  tokens:\n    - abc\n",
       "3: auth.tokens: expected a mapping with 'token', got a value"},
      {"auth:\n  tokens:\n    - user: alice\n", "3: auth.tokens[0]: entry has no 'token'"},
      {"auth:\n  tokens:\n    - token: \"\"\n", "3: auth.tokens[0].token: must not be empty"},
      {"auth:\n  tokens:\n    - token: [a]\n",
       "3: auth.tokens[0].token: expected a single value, got a sequence"},
      {"auth:\n  tokens:\n    - token: sha256:abc\n",
       "3: auth.tokens[0].token: 'sha256:' must be followed by exactly 64 hex digits (the token's "
       "SHA-256)"},
      {"auth:\n  tokens:\n    - token: " SHA_A "0\n",
       "3: auth.tokens[0].token: 'sha256:' must be followed by exactly 64 hex digits (the token's "
       "SHA-256)"},
      {"auth:\n  tokens:\n    - token: "
       "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",
       "3: auth.tokens[0].token: 'sha256:' must be followed by exactly 64 hex digits (the token's "
       "SHA-256)"},
      {"auth:\n  tokens:\n    - token: a\n      tokn: b\n",
       "4: unknown key 'auth.tokens[0].tokn' (did you mean 'auth.tokens[0].token'?)"},
      {"auth:\n  tokens:\n    - token: a\n    - token: b\n      group: x\n",
       "5: unknown key 'auth.tokens[1].group'"},
      {"auth:\n  tokens:\n    - token: a\n      user: x\n      user: y\n",
       "5: duplicate key 'auth.tokens[0].user' (first set on line 4)"},
      {"auth:\n  tokens:\n    - token: a\n    - token: b\n    - token: a\n",
       "5: auth.tokens[2].token: the same token as auth.tokens[0]"},
      {"auth:\n  tokens:\n    - token: " SHA_A "\n    - token: sha256:"
       "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n",
       "4: auth.tokens[1].token: the same token as auth.tokens[0]"},
      {"auth:\n  tokens:\n    - token: a\n      publish: x\n",
       "4: auth.tokens[0].publish: expected a sequence, got a value"},
      {"auth:\n  tokens:\n    - {token: a, ? [x] : 1}\n",
       "3: auth.tokens[0]: keys must be strings, got a sequence"},
      /* mappings: shape */
      {"mappings: {}\n", "1: mappings: expected a sequence of entries, got a mapping"},
      {"mappings:\n  - subscribeSession\n",
       "2: mappings: expected a mapping with 'type', got a value"},
      {"mappings:\n  - action: subscribe\n    topic: a\n", "2: mappings[0]: entry has no 'type'"},
      {"mappings:\n  - type: x\n    topic: a\n", "2: mappings[0]: entry has no 'action'"},
      {"mappings:\n  - type: x\n    action: subscribe\n",
       "2: mappings[0]: entry has no 'topic' (required for action subscribe)"},
      {"mappings:\n  - type: x\n    action: publish\n    payload: \"{a}\"\n",
       "2: mappings[0]: entry has no 'topic' (required for action publish)"},
      {"mappings:\n  - type: x\n    action: unsubscribe\n",
       "2: mappings[0]: an unsubscribe needs 'topic' or 'undoes'"},
      {"mappings:\n  - {type: s, action: subscribe, topic: a/#}\n"
       "  - type: u\n    action: unsubscribe\n    topic: a/#\n    undoes: s\n",
       "6: mappings[1].undoes: give 'topic' or 'undoes', not both"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topc: a\n",
       "4: unknown key 'mappings[0].topc' (did you mean 'mappings[0].topic'?)"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n    filter: b\n",
       "5: unknown key 'mappings[0].filter'"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n    topic: b\n",
       "5: duplicate key 'mappings[0].topic' (first set on line 4)"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: [a]\n",
       "4: mappings[0].topic: expected a single value, got a sequence"},
      {"mappings:\n  - {type: x, action: subscribe, topic: a}\nmappings: []\n",
       "3: duplicate key 'mappings' (first set on line 1)"},
      /* mappings: type and action */
      {"mappings:\n  - type: \"\"\n    action: subscribe\n    topic: a\n",
       "2: mappings[0].type: must not be empty"},
      {"mappings:\n  - type: publish\n    action: publish\n    topic: a\n",
       "2: mappings[0].type: 'publish' is a message type of the protocol itself"},
      {"mappings:\n  - {type: ping, action: publish, topic: a}\n",
       "2: mappings[0].type: 'ping' is a message type of the protocol itself"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n"
       "  - type: y\n    action: subscribe\n    topic: b\n"
       "  - type: x\n    action: publish\n    topic: c\n",
       "8: mappings[2].type: type 'x' is already mapped on line 2"},
      {"mappings:\n  - type: x\n    action: sub\n    topic: a\n",
       "3: mappings[0].action: invalid value 'sub' (use subscribe | unsubscribe | publish)"},
      /* mappings: topic */
      {"mappings:\n  - type: x\n    action: publish\n    topic: a/+/b\n",
       "4: mappings[0].topic: 'a/+/b' is not a valid topic name (no '+' or '#' in a publish "
       "topic)"},
      {"mappings:\n  - type: x\n    action: publish\n    topic: \"s/{id}/#\"\n",
       "4: mappings[0].topic: 's/{id}/#' is not a valid topic name (no '+' or '#' in a publish "
       "topic)"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: \"s/{id}#\"\n",
       "4: mappings[0].topic: 's/{id}#' is not a valid topic filter ('+' fills a whole level, '#' "
       "only the last one)"},
      {"mappings:\n  - type: x\n    action: unsubscribe\n    topic: \"a/#/b\"\n",
       "4: mappings[0].topic: 'a/#/b' is not a valid topic filter ('+' fills a whole level, '#' "
       "only the last one)"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: \"$share/g/{id}\"\n",
       "4: mappings[0].topic: '$share/g/{id}' is a shared subscription, which a mapping cannot "
       "make"},
      /* mappings: keys for one action only */
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n    payload: \"{p}\"\n",
       "5: mappings[0].payload: only for action publish"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n    retain: true\n",
       "5: mappings[0].retain: only for action publish"},
      {"mappings:\n  - type: x\n    action: unsubscribe\n    topic: a\n    qos: 1\n",
       "5: mappings[0].qos: only for actions subscribe and publish"},
      {"mappings:\n  - type: x\n    action: publish\n    topic: a\n    deliver_type: y\n",
       "5: mappings[0].deliver_type: only for action subscribe"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n    undoes: y\n",
       "5: mappings[0].undoes: only for action unsubscribe"},
      /* mappings: values */
      {"mappings:\n  - type: x\n    action: publish\n    topic: a\n    qos: 3\n",
       "5: mappings[0].qos: invalid value '3' (use 0, 1 or 2)"},
      {"mappings:\n  - type: x\n    action: publish\n    topic: a\n    qos: 01\n",
       "5: mappings[0].qos: invalid value '01' (use 0, 1 or 2)"},
      {"mappings:\n  - type: x\n    action: publish\n    topic: a\n    retain: yes\n",
       "5: mappings[0].retain: invalid value 'yes' (use true or false)"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n    deliver_type: error\n",
       "5: mappings[0].deliver_type: 'error' is a message type of the gateway"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n    deliver_type: pong\n",
       "5: mappings[0].deliver_type: 'pong' is a message type of the gateway"},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: a\n    deliver_type: \"\"\n",
       "5: mappings[0].deliver_type: must not be empty"},
      {"mappings:\n  - type: x\n    action: publish\n    topic: a\n    payload: \"x{command}\"\n",
       "5: mappings[0].payload: 'x{command}' is not a single field (use e.g. \"{command}\", or no "
       "payload for the whole message)"},
      {"mappings:\n  - type: x\n    action: publish\n    topic: a\n    payload: command\n",
       "5: mappings[0].payload: 'command' is not a single field (use e.g. \"{command}\", or no "
       "payload for the whole message)"},
      {"mappings:\n  - type: x\n    action: publish\n    topic: a\n    payload: \"{a}{b}\"\n",
       "5: mappings[0].payload: '{a}{b}' is not a single field (use e.g. \"{command}\", or no "
       "payload for the whole message)"},
      /* mappings: undoes, resolved over the whole list */
      {"mappings:\n  - type: u\n    action: unsubscribe\n    undoes: nope\n",
       "4: mappings[0].undoes: no mapping has type 'nope'"},
      {"mappings:\n  - type: c\n    action: publish\n    topic: a\n"
       "  - type: u\n    action: unsubscribe\n    undoes:\n      c\n",
       "8: mappings[1].undoes: 'c' (line 2) is not a subscribe mapping"},
      {"mappings:\n  - type: u\n    action: unsubscribe\n    undoes: u\n",
       "4: mappings[0].undoes: 'u' (line 2) is not a subscribe mapping"},
  };
  /* The reason's tail comes from proto/ (template.c, acl.c). */
  static const struct {
    const char *text, *err;
  } prefix_cases[] = {
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: \"a/{id\"\n",
       "4: mappings[0].topic: invalid template 'a/{id': "},
      {"mappings:\n  - type: x\n    action: subscribe\n    topic: \"\"\n",
       "4: mappings[0].topic: invalid template '': "},
      {"mappings:\n  - type: x\n    action: publish\n    topic: a\n    payload: \"{}\"\n",
       "5: mappings[0].payload: invalid template '{}': "},
      {"auth:\n  jwt:\n    default_subscribe: [\"a/#/b\"]\n",
       "3: auth.jwt.default_subscribe: 'a/#/b' "},
      {"auth:\n  jwt:\n    default_publish: [ok, \"$share/g/a\"]\n",
       "3: auth.jwt.default_publish: '$share/g/a' "},
      {"auth:\n  tokens:\n    - token: a\n      subscribe:\n        - \"devices/%u/#\"\n"
       "        - \"x/+y\"\n",
       "6: auth.tokens[0].subscribe: 'x/+y' "},
  };

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_load_error(cases[i].text, cases[i].err);
  for (size_t i = 0; i < sizeof prefix_cases / sizeof prefix_cases[0]; i++)
    assert_load_error_as(prefix_cases[i].text, prefix_cases[i].err, 1);
}

/* A token never shows in an error message. */
static void test_token_not_in_errors(void **state) {
  static const char *const texts[] = {
      "auth:\n  tokens:\n    - token: sha256:s3cr3t\n",
      "auth:\n  tokens:\n    - token: s3cr3t\n    - token: s3cr3t\n",
  };
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    assert_int_equal(load_text(&c, texts[i], err, path), -1);
    assert_null(strstr(err, "s3cr3t"));
    fmq_config_close(&c);
  }
}

static void test_cidr(void **state) {
  static const char *const good[] = {
      "10.0.0.0/8", "10.1.2.3", "0.0.0.0/0",      "1.2.3.4/32",         "::1",
      "fd00::/8",   "::/0",     "2001:db8::/128", "::ffff:10.0.0.1/96",
  };
  static const char *const bad[] = {
      "10.0.0.0/33", "10.0.0/8", "10.0.0.0/",   "10.0.0.0/8/1",  "proxy.example",
      "::1/129",     "::1/-1",   "10.0.0.0/+8", "10.0.0.0/0008", "10.0.0.0 /8",
      "1.2.3.4/8x",  "[::1]",    "/8",          "fd00::/",       ":::1",
  };
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    if (fmq_config_set(&c, "http.trusted_proxies", good[i], "test", err, sizeof err) != 0)
      fail_msg("'%s' rejected: %s", good[i], err);
    assert_strv(&c.http.trusted_proxies, &good[i], 1);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (fmq_config_set(&c, "http.trusted_proxies", bad[i], "test", err, sizeof err) != -1)
      fail_msg("'%s' accepted", bad[i]);
    assert_non_null(strstr(err, "invalid CIDR"));
  }
  fmq_config_close(&c);
}

static void test_load_values_v1(void **state) {
  static const char text[] = "broker:\n"
                             "  max_topic_levels: 65535\n"
                             "  tls: {ca: /ca.pem, cert: /c.pem, key: /k.pem, verify: false}\n"
                             "websocket:\n"
                             "  max_subscriptions: 1000000\n"
                             "  max_fragments: 1000000\n"
                             "  allowed_origins:\n"
                             "    - HTTPS://App.Example.com\n"
                             "    - \"http://localhost:8080/\"\n"
                             "limits:\n"
                             "  max_connections_per_ip: 10000000\n"
                             "  rate:\n"
                             "    messages_per_second: 1000000\n"
                             "    burst: 1000000\n"
                             "    max_refusals: 0\n"
                             "auth:\n"
                             "  mode: token\n"
                             "  max_token_size: 1MiB\n"
                             "  jwt:\n"
                             "    algorithms: [HS384, HS512, RS256, ES256]\n"
                             "    secret: \"k\"\n"
                             "    public_key_file: /pub.pem\n"
                             "    issuer: iss\n"
                             "    audience: aud\n"
                             "    leeway: 1h\n"
                             "    user_claim: email\n"
                             "    require_exp: false\n"
                             "    default_subscribe: [\"devices/%u/#\", \"public/+\"]\n"
                             "    default_publish: [\"devices/%c/out\"]\n"
                             "http:\n"
                             "  demo: true\n"
                             "  health: false\n"
                             "  metrics: false\n"
                             "  sse_path: \"\"\n"
                             "  publish_path: /api/publish\n"
                             "  publish_timeout: 100ms\n"
                             "  trusted_proxies: [10.0.0.0/8, \"fd00::/8\", 192.168.1.1]\n"
                             "log:\n"
                             "  format: json\n";
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  if (load_text(&c, text, err, path) != 0)
    fail_msg("%s", err);
  assert_int_equal(c.broker.max_topic_levels, 65535);
  assert_string_equal(c.broker.tls.ca, "/ca.pem");
  assert_string_equal(c.broker.tls.cert, "/c.pem");
  assert_string_equal(c.broker.tls.key, "/k.pem");
  assert_int_equal(c.broker.tls.verify, 0);
  assert_int_equal(c.websocket.max_subscriptions, 1000000);
  assert_int_equal(c.websocket.max_fragments, 1000000);
  assert_strv(&c.websocket.allowed_origins,
              (const char *const[]){"https://app.example.com:443", "http://localhost:8080"}, 2);
  assert_int_equal(c.limits.max_connections_per_ip, 10000000);
  assert_int_equal(c.limits.rate.messages_per_second, 1000000);
  assert_int_equal(c.limits.rate.burst, 1000000);
  assert_int_equal(c.limits.rate.max_refusals, 0);
  assert_int_equal(c.auth.mode, FMQ_AUTH_TOKEN);
  assert_int_equal(c.auth.max_token_size, 1048576);
  assert_strv(&c.auth.jwt.algorithms, (const char *const[]){"HS384", "HS512", "RS256", "ES256"}, 4);
  assert_string_equal(c.auth.jwt.secret, "k");
  assert_string_equal(c.auth.jwt.public_key_file, "/pub.pem");
  assert_string_equal(c.auth.jwt.issuer, "iss");
  assert_string_equal(c.auth.jwt.audience, "aud");
  assert_int_equal(c.auth.jwt.leeway, 3600000);
  assert_string_equal(c.auth.jwt.user_claim, "email");
  assert_int_equal(c.auth.jwt.require_exp, 0);
  assert_strv(&c.auth.jwt.default_subscribe, (const char *const[]){"devices/%u/#", "public/+"}, 2);
  assert_strv(&c.auth.jwt.default_publish, (const char *const[]){"devices/%c/out"}, 1);
  assert_int_equal(c.http.demo, 1);
  assert_int_equal(c.http.health, 0);
  assert_int_equal(c.http.metrics, 0);
  assert_string_equal(c.http.sse_path, "");
  assert_string_equal(c.http.publish_path, "/api/publish");
  assert_int_equal(c.http.publish_timeout, 100);
  assert_strv(&c.http.trusted_proxies,
              (const char *const[]){"10.0.0.0/8", "fd00::/8", "192.168.1.1"}, 3);
  assert_int_equal(c.log.format, FMQ_LOG_JSON);
  fmq_config_close(&c);

  /* A list with every item commented out is empty, like []. */
  if (load_text(&c, "auth:\n  jwt:\n    algorithms:\n    #  - HS256\n", err, path) != 0)
    fail_msg("%s", err);
  assert_strv(&c.auth.jwt.algorithms, NULL, 0);
  fmq_config_close(&c);
}

static void test_tokens(void **state) {
  static const char text[] = "auth:\n"
                             "  mode: token\n"
                             "  tokens:\n"
                             "    - token: sha256:0123456789ABCDEF0123456789abcdef0123456789ABCDEF"
                             "0123456789abcdef\n"
                             "      user: alice\n"
                             "      subscribe: [\"devices/%u/#\"]\n"
                             "      publish: [\"devices/%u/commands\", \"log/%c\"]\n"
                             "    - token: plain-token\n"
                             "    - {token: \"sha256:x\", subscribe: [], publish: []}\n";
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  /* "sha256:x" is not a digest: the whole entry is refused. */
  assert_int_equal(load_text(&c, text, err, path), -1);
  fmq_config_close(&c);

  char good[sizeof text];
  strcpy(good, text);
  memcpy(strstr(good, "sha256:x"), "sha256-x", 8);
  if (load_text(&c, good, err, path) != 0)
    fail_msg("%s", err);
  assert_int_equal(c.auth.ntokens, 3);
  assert_string_equal(c.auth.tokens[0].token, SHA_A);
  assert_string_equal(c.auth.tokens[0].user, "alice");
  assert_int_equal(c.auth.tokens[0].subscribe_any, 0);
  assert_int_equal(c.auth.tokens[0].publish_any, 0);
  assert_strv(&c.auth.tokens[0].subscribe, (const char *const[]){"devices/%u/#"}, 1);
  assert_strv(&c.auth.tokens[0].publish, (const char *const[]){"devices/%u/commands", "log/%c"}, 2);
  /* No user, no lists: "" and everything allowed. */
  assert_string_equal(c.auth.tokens[1].token, "plain-token");
  assert_string_equal(c.auth.tokens[1].user, "");
  assert_int_equal(c.auth.tokens[1].subscribe_any, 1);
  assert_int_equal(c.auth.tokens[1].publish_any, 1);
  assert_int_equal(c.auth.tokens[1].subscribe.n, 0);
  /* Empty lists: nothing allowed. */
  assert_string_equal(c.auth.tokens[2].token, "sha256-x");
  assert_int_equal(c.auth.tokens[2].subscribe_any, 0);
  assert_int_equal(c.auth.tokens[2].publish_any, 0);
  assert_int_equal(c.auth.tokens[2].subscribe.n, 0);
  assert_int_equal(c.auth.tokens[2].publish.n, 0);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
  fmq_config_close(&c);
}

/* The template's text, fields as "{name}". */
static void assert_template(const struct fmq_template *t, const char *want) {
  char buf[256] = "";

  for (size_t i = 0; i < t->nparts; i++)
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), t->parts[i].field ? "{%s}" : "%s",
             t->parts[i].text);
  assert_string_equal(buf, want);
}

static void test_mappings(void **state) {
  /* undoes may name a mapping further down. */
  static const char text[] = "mappings:\n"
                             "  - type: leave\n"
                             "    action: unsubscribe\n"
                             "    undoes: join\n"
                             "  - type: join\n"
                             "    action: subscribe\n"
                             "    topic: \"rooms/{room}/+/#\"\n"
                             "    qos: 2\n"
                             "  - type: say\n"
                             "    action: publish\n"
                             "    topic: \"rooms/{room}/{user.name}\"\n"
                             "    payload: \"{text}\"\n"
                             "    qos: 1\n"
                             "    retain: true\n"
                             "  - {type: raw, action: publish, topic: raw}\n"
                             "  - {type: part, action: unsubscribe, topic: \"rooms/{room}/+/#\"}\n"
                             "  - type: watch\n"
                             "    action: subscribe\n"
                             "    topic: all/#\n"
                             "    deliver_type: message\n";
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  if (load_text(&c, text, err, path) != 0)
    fail_msg("%s", err);
  assert_int_equal(c.nmappings, 6);

  assert_string_equal(c.mappings[0].type, "leave");
  assert_int_equal(c.mappings[0].action, FMQ_MAPPING_UNSUBSCRIBE);
  assert_string_equal(c.mappings[0].undoes, "join");
  assert_int_equal(c.mappings[0].undoes_index, 1);
  assert_int_equal(c.mappings[0].topic.nparts, 0);

  assert_string_equal(c.mappings[1].type, "join");
  assert_int_equal(c.mappings[1].action, FMQ_MAPPING_SUBSCRIBE);
  assert_template(&c.mappings[1].topic, "rooms/{room}/+/#");
  assert_int_equal(c.mappings[1].qos, 2);
  assert_null(c.mappings[1].deliver_type);
  assert_null(c.mappings[1].undoes);

  assert_int_equal(c.mappings[2].action, FMQ_MAPPING_PUBLISH);
  assert_template(&c.mappings[2].topic, "rooms/{room}/{user.name}");
  assert_string_equal(c.mappings[2].payload_field, "text");
  assert_int_equal(c.mappings[2].qos, 1);
  assert_int_equal(c.mappings[2].retain, 1);

  assert_null(c.mappings[3].payload_field);
  assert_int_equal(c.mappings[3].qos, 0);
  assert_int_equal(c.mappings[3].retain, 0);

  assert_int_equal(c.mappings[4].action, FMQ_MAPPING_UNSUBSCRIBE);
  assert_template(&c.mappings[4].topic, "rooms/{room}/+/#");
  assert_null(c.mappings[4].undoes);

  assert_string_equal(c.mappings[5].deliver_type, "message");

  /* A failed load keeps what was there. */
  assert_int_equal(load_over(&c, "mappings:\n  - {type: x, action: publish}\n", err, path), -1);
  assert_int_equal(c.nmappings, 6);
  assert_string_equal(c.mappings[5].type, "watch");
  fmq_config_close(&c);
}

/* config/examples/sessions.yaml serves the front end it describes. */
static void test_sessions_example(void **state) {
  static const struct {
    size_t mapping;
    const char *message, *topic;
  } fills[] = {
      {0, "{\"type\":\"subscribeSession\",\"sessionId\":\"42\"}", "sessions/42/#"},
      {2, "{\"type\":\"command\",\"sessionId\":\"42\",\"command\":\"restart\"}",
       "sessions/42/commands"},
      {3, "{\"type\":\"session-delete-key\",\"sessionId\":\"42\",\"key\":\"k\"}",
       "sessions/42/delete-key"},
  };
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  if (fmq_config_load_file(&c, FMQ_EXAMPLE_CONFIG, err, sizeof err) != 0)
    fail_msg("%s", err);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
  assert_int_equal(c.nlisten, 1);
  assert_string_equal(c.listen[0].address, "0.0.0.0:8080");
  assert_string_equal(c.listen[0].paths[0], "/mqtt");
  assert_string_equal(c.broker.url, "tcp://127.0.0.1:1883");
  assert_int_equal(c.auth.mode, FMQ_AUTH_NONE);
  assert_int_equal(c.nmappings, 4);

  const struct fmq_mapping_config *m = c.mappings;
  assert_string_equal(m[0].type, "subscribeSession");
  assert_int_equal(m[0].action, FMQ_MAPPING_SUBSCRIBE);
  assert_int_equal(m[0].qos, 0);
  assert_string_equal(m[0].deliver_type, "sessionEvent");
  assert_string_equal(m[1].type, "unsubscribeSession");
  assert_int_equal(m[1].action, FMQ_MAPPING_UNSUBSCRIBE);
  assert_int_equal(m[1].undoes_index, 0);
  assert_int_equal(m[1].topic.nparts, 0);
  assert_string_equal(m[2].type, "command");
  assert_int_equal(m[2].action, FMQ_MAPPING_PUBLISH);
  assert_string_equal(m[2].payload_field, "command");
  assert_int_equal(m[2].qos, 1);
  assert_string_equal(m[3].type, "session-delete-key");
  assert_int_equal(m[3].action, FMQ_MAPPING_PUBLISH);
  assert_string_equal(m[3].payload_field, "key");
  assert_int_equal(m[3].qos, 1);

  /* Each template filled from the message the front end sends. */
  for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) {
    json_t *msg = json_loads(fills[i].message, 0, NULL);
    char *topic = NULL;
    assert_non_null(msg);
    assert_int_equal(fmq_template_fill(&m[fills[i].mapping].topic, msg, &topic, err, sizeof err),
                     0);
    assert_string_equal(topic, fills[i].topic);
    free(topic);
    json_decref(msg);
  }
  fmq_config_close(&c);
}

/* The YAML block of config-v1.md, with the values refused today adapted:
 * no listen.tls, a real digest for the token. */
static void test_config_v1_file(void **state) {
  static const char text[] =
      "listen:                        # one entry per listener\n"
      "  - address: \"0.0.0.0:8080\"\n"
      "    paths: [\"/mqtt\"]           # WebSocket upgrade paths\n"
      "\n"
      "broker:\n"
      "  url: \"tcp://127.0.0.1:1883\"  # tcp:// mqtt:// ssl:// mqtts://\n"
      "  client_id: \"ferrymq-%h-%p\"   # %h host name, %p process id\n"
      "  username: \"\"\n"
      "  password: \"\"\n"
      "  protocol: 5                  # 5 | 3.1.1\n"
      "  keepalive: 30s\n"
      "  reconnect: { min: 1s, max: 30s }\n"
      "  offline_buffer: 1000         # QoS>0 publishes held while the broker is down\n"
      "  tls: { ca: \"\", cert: \"\", key: \"\", verify: true }\n"
      "\n"
      "websocket:\n"
      "  idle_timeout: 60s\n"
      "  ping_interval: 20s\n"
      "  max_message_size: 64KiB\n"
      "  max_header_size: 16KiB\n"
      "  outbound_queue_limit: 1MiB   # per connection; over it: close 1013\n"
      "  max_subscriptions: 100       # per connection\n"
      "  max_fragments: 1024          # frames in one message; beyond: close 1009\n"
      "  allowed_origins: []          # empty: any Origin (or none) is accepted\n"
      "\n"
      "limits:\n"
      "  max_connections: 100000\n"
      "  max_connections_per_ip: 0    # 0: unlimited\n"
      "  rate: { messages_per_second: 0, burst: 0, max_refusals: 50 }   # per connection; 0: "
      "off\n"
      "\n"
      "auth:\n"
      "  mode: none                   # none | token | jwt\n"
      "  tokens:                      # mode token\n"
      "    - token: \"" SHA_A "\"    # or the token itself\n"
      "      user: alice\n"
      "      subscribe: [\"devices/%u/#\"]   # %u user, %c client id; absent: all\n"
      "      publish: [\"devices/%u/commands\"]\n"
      "  jwt:                         # mode jwt\n"
      "    algorithms: [HS256]        # HS256 HS384 HS512 RS256 ES256\n"
      "    secret: \"\"                 # HS*\n"
      "    public_key_file: \"\"        # RS256 / ES256 (PEM)\n"
      "    issuer: \"\"                 # checked when non-empty\n"
      "    audience: \"\"               # checked when non-empty\n"
      "    leeway: 30s\n"
      "    user_claim: sub\n"
      "    require_exp: true\n"
      "    default_subscribe: []      # ACL when the token has no \"ferrymq\" claim\n"
      "    default_publish: []\n"
      "    # ACL from the token: claim \"ferrymq\": {\"subscribe\": [...], \"publish\": [...]}\n"
      "\n"
      "mappings:                      # protocol-v1 section 6\n"
      "  - type: subscribeSession\n"
      "    action: subscribe\n"
      "    topic: \"sessions/{sessionId}/#\"\n"
      "    qos: 0\n"
      "    deliver_type: sessionEvent\n"
      "  - type: unsubscribeSession\n"
      "    action: unsubscribe\n"
      "    undoes: subscribeSession\n"
      "  - type: command\n"
      "    action: publish\n"
      "    topic: \"sessions/{sessionId}/commands\"\n"
      "    payload: \"{command}\"       # absent: the whole message\n"
      "\n"
      "http:\n"
      "  demo: false                  # serve the demo page at /\n"
      "  health: true                 # /healthz and /readyz\n"
      "  metrics: true                # /metrics (Prometheus text format)\n"
      "  sse_path: /events            # \"\" disables\n"
      "  publish_path: /publish       # \"\" disables; body limit: websocket.max_message_size\n"
      "  publish_timeout: 10s         # QoS>0 while the broker is down: wait this long, then "
      "503\n"
      "  trusted_proxies: []          # CIDRs whose X-Forwarded-For is believed\n"
      "\n"
      "log:\n"
      "  level: info                  # error | warn | info | debug\n"
      "  format: logfmt               # logfmt | json\n"
      "\n"
      "workers: 0                     # event-loop threads; 0: one per core\n";
  struct fmq_config c, defaults;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  if (load_text(&c, text, err, path) != 0)
    fail_msg("%s", err);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
  assert_int_equal(c.auth.ntokens, 1);
  assert_string_equal(c.auth.tokens[0].user, "alice");
  assert_int_equal(c.nmappings, 3);
  assert_string_equal(c.mappings[2].payload_field, "command");
  /* Every other value is the default. */
  assert_int_equal(fmq_config_init(&defaults), 0);
  assert_config_equal(&c, &defaults);
  fmq_config_close(&defaults);
  fmq_config_close(&c);
}

static void test_env_v1(void **state) {
  char *env[] = {
      "FERRYMQ_BROKER_TLS_VERIFY=false",
      "FERRYMQ_BROKER_MAX_TOPIC_LEVELS=8",
      "FERRYMQ_HTTP_DEMO=true",
      "FERRYMQ_HTTP_SSE_PATH=",
      "FERRYMQ_WEBSOCKET_ALLOWED_ORIGINS=https://A.example, http://b.example:8080 ",
      "FERRYMQ_AUTH_MODE=jwt",
      "FERRYMQ_AUTH_JWT_SECRET=s3cret",
      "FERRYMQ_AUTH_JWT_ALGORITHMS=HS512",
      "FERRYMQ_AUTH_JWT_DEFAULT_PUBLISH=devices/%u/out",
      "FERRYMQ_AUTH_JWT_LEEWAY=0",
      "FERRYMQ_HTTP_TRUSTED_PROXIES=10.0.0.0/8,::1",
      "FERRYMQ_LIMITS_RATE_BURST=5",
      "FERRYMQ_LIMITS_RATE_MESSAGES_PER_SECOND=2",
      "FERRYMQ_LOG_FORMAT=json",
      NULL,
  };
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  if (fmq_config_apply_env(&c, env, NULL, NULL, err, sizeof err) != 0)
    fail_msg("%s", err);
  assert_int_equal(c.broker.tls.verify, 0);
  assert_int_equal(c.broker.max_topic_levels, 8);
  assert_int_equal(c.http.demo, 1);
  assert_string_equal(c.http.sse_path, "");
  assert_strv(&c.websocket.allowed_origins,
              (const char *const[]){"https://a.example:443", "http://b.example:8080"}, 2);
  assert_int_equal(c.auth.mode, FMQ_AUTH_JWT);
  assert_string_equal(c.auth.jwt.secret, "s3cret");
  assert_strv(&c.auth.jwt.algorithms, (const char *const[]){"HS512"}, 1);
  assert_strv(&c.auth.jwt.default_publish, (const char *const[]){"devices/%u/out"}, 1);
  assert_int_equal(c.auth.jwt.leeway, 0);
  assert_strv(&c.http.trusted_proxies, (const char *const[]){"10.0.0.0/8", "::1"}, 2);
  assert_int_equal(c.limits.rate.burst, 5);
  assert_int_equal(c.log.format, FMQ_LOG_JSON);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);

  /* "" is the empty list; a bad item leaves the list as it was. */
  char *again[] = {"FERRYMQ_WEBSOCKET_ALLOWED_ORIGINS=", "FERRYMQ_AUTH_JWT_ALGORITHMS=HS256,",
                   NULL};
  assert_int_equal(fmq_config_apply_env(&c, again, NULL, NULL, err, sizeof err), -1);
  assert_string_equal(err, "FERRYMQ_AUTH_JWT_ALGORITHMS: unknown algorithm '' (use HS256, "
                           "HS384, HS512, RS256 or ES256)");
  assert_int_equal(c.websocket.allowed_origins.n, 0);
  assert_strv(&c.auth.jwt.algorithms, (const char *const[]){"HS512"}, 1);
  fmq_config_close(&c);
}

static void test_env_errors_v1(void **state) {
  static const struct {
    const char *var, *err;
  } cases[] = {
      {"FERRYMQ_HTTP_DEMO=yes", "FERRYMQ_HTTP_DEMO: invalid value 'yes' (use true or false)"},
      {"FERRYMQ_BROKER_TLS_VERIFY=", "FERRYMQ_BROKER_TLS_VERIFY: invalid value '' (use true or "
                                     "false)"},
      {"FERRYMQ_WEBSOCKET_ALLOWED_ORIGINS=https://a.example,,https://b.example",
       "FERRYMQ_WEBSOCKET_ALLOWED_ORIGINS: invalid origin '' (use scheme://host[:port], e.g. "
       "https://app.example.com)"},
      {"FERRYMQ_AUTH_JWT_ALGORITHMS=HS256, none",
       "FERRYMQ_AUTH_JWT_ALGORITHMS: unknown algorithm 'none' (use HS256, HS384, HS512, RS256 "
       "or ES256)"},
      {"FERRYMQ_HTTP_TRUSTED_PROXIES=10.0.0.0/40",
       "FERRYMQ_HTTP_TRUSTED_PROXIES: invalid CIDR '10.0.0.0/40' (use an IPv4 or IPv6 address "
       "with an optional /prefix length, e.g. 10.0.0.0/8 or fd00::/8)"},
      {"FERRYMQ_AUTH_MODE=basic", "FERRYMQ_AUTH_MODE: invalid value 'basic' (use none | token | "
                                  "jwt)"},
      {"FERRYMQ_LIMITS_MAX_CONNECTIONS_PER_IP=x",
       "FERRYMQ_LIMITS_MAX_CONNECTIONS_PER_IP: invalid number 'x' (use a non-negative integer)"},
  };
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *env[] = {(char *)cases[i].var, NULL};
    assert_int_equal(fmq_config_init(&c), 0);
    err[0] = '\0';
    assert_int_equal(fmq_config_apply_env(&c, env, NULL, NULL, err, sizeof err), -1);
    assert_string_equal(err, cases[i].err);
    assert_defaults(&c);
    fmq_config_close(&c);
  }
}

struct warnings {
  char text[8][FMQ_CONFIG_ERR_MAX];
  size_t n;
};

static void collect_warning(const char *message, void *arg) {
  struct warnings *w = arg;

  assert_true(w->n < sizeof w->text / sizeof w->text[0]);
  snprintf(w->text[w->n++], sizeof w->text[0], "%s", message);
}

static void test_env_warnings(void **state) {
  static const char *const want[] = {
      "FERRYMQ_WEBSOCKET_IDLE_TIMOUT: unknown variable (did you mean "
      "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT?)",
      "FERRYMQ_BROKER_TLS_VERIFI: unknown variable (did you mean FERRYMQ_BROKER_TLS_VERIFY?)",
      "FERRYMQ_FOO: unknown variable",
      "FERRYMQ_: unknown variable",
      "FERRYMQ_WEBSOCKET: unknown variable",
      "FERRYMQ_LISTEN: listen cannot be set from the environment, only in the configuration file",
      "FERRYMQ_AUTH_TOKENS: auth.tokens cannot be set from the environment, only in the "
      "configuration file",
      "FERRYMQ_MAPPINGS: mappings cannot be set from the environment, only in the configuration "
      "file",
  };
  char *env[] = {
      "FERRYMQ_WEBSOCKET_IDLE_TIMOUT=5s",
      "FERRYMQ_BROKER_TLS_VERIFI=true",
      "FERRYMQ_FOO=1",
      "FERRYMQ_=1",
      "FERRYMQ_WEBSOCKET=1",
      "FERRYMQ_LISTEN=0.0.0.0:1",
      "FERRYMQ_AUTH_TOKENS=abc",
      "FERRYMQ_MAPPINGS=[]",
      /* not ours or no value: no warning */
      "ferrymq_workers=2",
      "FERRYMQ_WORKERS",
      "HOME=/root",
      "FERRYMQ_WORKERS=2",
      NULL,
  };
  struct warnings w = {.n = 0};
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  assert_int_equal(fmq_config_init(&c), 0);
  if (fmq_config_apply_env(&c, env, collect_warning, &w, err, sizeof err) != 0)
    fail_msg("%s", err);
  assert_int_equal(w.n, sizeof want / sizeof want[0]);
  for (size_t i = 0; i < w.n; i++)
    assert_string_equal(w.text[i], want[i]);
  assert_int_equal(c.workers, 2);
  assert_int_equal(c.websocket.idle_timeout, 60000);
  assert_int_equal(c.nlisten, 1);
  assert_string_equal(c.listen[0].address, "0.0.0.0:8080");
  /* Without a callback the same variables are ignored. */
  assert_int_equal(fmq_config_apply_env(&c, env, NULL, NULL, err, sizeof err), 0);
  fmq_config_close(&c);
}

static void test_precedence_v1(void **state) {
  static const char text[] = "websocket:\n"
                             "  allowed_origins: [https://file.example]\n"
                             "  max_subscriptions: 9\n"
                             "http:\n"
                             "  demo: true\n"
                             "  health: false\n"
                             "auth:\n"
                             "  jwt:\n"
                             "    default_subscribe: [file/#]\n";
  char *env[] = {"FERRYMQ_WEBSOCKET_ALLOWED_ORIGINS=https://env.example", "FERRYMQ_HTTP_DEMO=false",
                 "FERRYMQ_AUTH_JWT_DEFAULT_SUBSCRIBE=", NULL};
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX] = "";

  (void)state;
  if (load_text(&c, text, err, path) != 0)
    fail_msg("%s", err);
  assert_strv(&c.websocket.allowed_origins, (const char *const[]){"https://file.example:443"}, 1);
  assert_int_equal(fmq_config_apply_env(&c, env, NULL, NULL, err, sizeof err), 0);
  assert_strv(&c.websocket.allowed_origins, (const char *const[]){"https://env.example:443"}, 1);
  assert_int_equal(c.http.demo, 0);                    /* env over file */
  assert_int_equal(c.http.health, 0);                  /* file */
  assert_int_equal(c.http.metrics, 1);                 /* default */
  assert_int_equal(c.websocket.max_subscriptions, 9);  /* file */
  assert_int_equal(c.auth.jwt.default_subscribe.n, 0); /* env's empty list over file */
  fmq_config_close(&c);
}

static void test_check(void **state) {
  static const struct {
    const char *kv[4][2];
    const char *err; /* NULL: passes */
  } cases[] = {
      {{{"websocket.ping_interval", "60s"}},
       "configuration: websocket.ping_interval must be below websocket.idle_timeout"},
      {{{"websocket.ping_interval", "2m"}},
       "configuration: websocket.ping_interval must be below websocket.idle_timeout"},
      {{{"websocket.ping_interval", "59s"}}, NULL},
      {{{"websocket.ping_interval", "2m"}, {"websocket.idle_timeout", "0"}}, NULL},
      {{{"websocket.ping_interval", "0"}, {"websocket.idle_timeout", "100ms"}}, NULL},
      {{{"limits.rate.burst", "10"}},
       "configuration: limits.rate.burst is set but limits.rate.messages_per_second is 0: a "
       "burst without a rate does nothing"},
      {{{"limits.rate.burst", "10"}, {"limits.rate.messages_per_second", "1"}}, NULL},
      {{{"limits.rate.messages_per_second", "1"}}, NULL},
      {{{"auth.mode", "token"}},
       "configuration: auth.mode token needs at least one auth.tokens entry"},
      {{{"auth.mode", "jwt"}, {"auth.jwt.algorithms", ""}},
       "configuration: auth.mode jwt needs at least one auth.jwt.algorithms"},
      {{{"auth.mode", "jwt"}},
       "configuration: auth.jwt.algorithms lists HS256, which needs auth.jwt.secret"},
      {{{"auth.mode", "jwt"}, {"auth.jwt.algorithms", "RS256,HS384"}, {"auth.jwt.secret", "s"}},
       "configuration: auth.jwt.algorithms lists RS256, which needs auth.jwt.public_key_file"},
      {{{"auth.mode", "jwt"},
        {"auth.jwt.algorithms", "HS256,ES256"},
        {"auth.jwt.public_key_file", "k.pem"}},
       "configuration: auth.jwt.algorithms lists HS256, which needs auth.jwt.secret"},
      {{{"auth.mode", "jwt"},
        {"auth.jwt.algorithms", "ES256"},
        {"auth.jwt.public_key_file", "k.pem"}},
       NULL},
      {{{"auth.mode", "jwt"}, {"auth.jwt.secret", "s"}}, NULL},
      /* mode none: the jwt keys are not looked at */
      {{{"auth.jwt.algorithms", "RS256"}}, NULL},
  };
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(fmq_config_init(&c), 0);
    for (size_t j = 0; j < 4 && cases[i].kv[j][0] != NULL; j++)
      if (fmq_config_set(&c, cases[i].kv[j][0], cases[i].kv[j][1], "test", err, sizeof err) != 0)
        fail_msg("%s", err);
    err[0] = '\0';
    if (cases[i].err == NULL) {
      if (fmq_config_check(&c, err, sizeof err) != 0)
        fail_msg("case %zu: %s", i, err);
    } else {
      assert_int_equal(fmq_config_check(&c, err, sizeof err), -1);
      assert_string_equal(err, cases[i].err);
    }
    fmq_config_close(&c);
  }

  /* mode token with an entry passes. */
  assert_int_equal(load_text(&c, "auth:\n  mode: token\n  tokens: [{token: t}]\n", err, path), 0);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
  fmq_config_close(&c);
}

/* websocket.ping_interval not set by any source: half of an idle_timeout
 * that is on and below 40s, else the default 20s. */
static void test_ping_interval_derived(void **state) {
  static const struct {
    const char *idle;
    uint64_t ping;
  } cases[] = {
      {"10s", 5000},
      {"30s", 15000},
      {"39s", 19500},
      {"39999ms", 19999},
      {"40s", 20000},
      {"60s", 20000},
      {"24h", 20000},
      {"0", 20000},
      /* under the 100ms a source may set: kept, as it must stay below */
      {"199ms", 99},
      {"101ms", 50},
      {"100ms", 50},
  };
  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(fmq_config_init(&c), 0);
    assert_int_equal(
        fmq_config_set(&c, "websocket.idle_timeout", cases[i].idle, "test", err, sizeof err), 0);
    err[0] = '\0';
    if (fmq_config_check(&c, err, sizeof err) != 0)
      fail_msg("idle_timeout %s: %s", cases[i].idle, err);
    if (c.websocket.ping_interval != cases[i].ping)
      fail_msg("idle_timeout %s: ping_interval %llu, want %llu", cases[i].idle,
               (unsigned long long)c.websocket.ping_interval, (unsigned long long)cases[i].ping);
    /* Checking again changes nothing. */
    assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
    assert_int_equal(c.websocket.ping_interval, cases[i].ping);
    fmq_config_close(&c);
  }

  /* The defaults alone: nothing derived. */
  assert_int_equal(fmq_config_init(&c), 0);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
  assert_defaults(&c);
  fmq_config_close(&c);

  /* A value that failed to parse does not count as set. */
  assert_int_equal(fmq_config_init(&c), 0);
  assert_int_equal(fmq_config_set(&c, "websocket.ping_interval", "1d", "test", err, sizeof err),
                   -1);
  assert_int_equal(fmq_config_set(&c, "websocket.idle_timeout", "10s", "test", err, sizeof err), 0);
  assert_int_equal(fmq_config_check(&c, err, sizeof err), 0);
  assert_int_equal(c.websocket.ping_interval, 5000);
  fmq_config_close(&c);
}

/* A ping_interval set by the file, the environment or fmq_config_set (the
 * command line) is kept, and must be below idle_timeout, even when it is
 * the default's 20s. */
static void test_ping_interval_set(void **state) {
  static const char too_long[] =
      "configuration: websocket.ping_interval must be below websocket.idle_timeout";
  static const struct {
    const char *file;  /* NULL: none */
    const char *env;   /* NULL: none */
    const char *kv[2]; /* fmq_config_set, when kv[0] is not NULL */
    uint64_t ping;     /* 0 with err */
    const char *err;
  } cases[] = {
      /* set to the default's value, by each source */
      {"websocket:\n  ping_interval: 20s\n  idle_timeout: 10s\n", NULL, {NULL}, 0, too_long},
      {"websocket:\n  idle_timeout: 10s\n",
       "FERRYMQ_WEBSOCKET_PING_INTERVAL=20s",
       {NULL},
       0,
       too_long},
      {NULL, "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=10s", {"websocket.ping_interval", "20s"}, 0, too_long},
      {"websocket:\n  ping_interval: 20s\n",
       "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=10s",
       {NULL},
       0,
       too_long},
      /* set below idle_timeout: kept, not replaced by the half */
      {"websocket:\n  ping_interval: 3s\n",
       "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=10s",
       {NULL},
       3000,
       NULL},
      {NULL, "FERRYMQ_WEBSOCKET_PING_INTERVAL=9s", {"websocket.idle_timeout", "10s"}, 9000, NULL},
      {NULL, "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=30s", {"websocket.ping_interval", "100ms"}, 100, NULL},
      /* 0 (off) stays off */
      {"websocket:\n  ping_interval: 0\n  idle_timeout: 10s\n", NULL, {NULL}, 0, NULL},
      {NULL, "FERRYMQ_WEBSOCKET_PING_INTERVAL=0", {"websocket.idle_timeout", "100ms"}, 0, NULL},
      /* only the environment sets idle_timeout: derived */
      {NULL, "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=10s", {NULL}, 5000, NULL},
      /* the file sets another websocket key: ping_interval is still unset */
      {"websocket:\n  idle_timeout: 30s\n  close_timeout: 1s\n", NULL, {NULL}, 15000, NULL},
  };
  struct fmq_config c;
  char path[32], err[FMQ_CONFIG_ERR_MAX];

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char env_var[64] = "";
    char *env[] = {env_var, NULL};

    assert_int_equal(fmq_config_init(&c), 0);
    if (cases[i].file != NULL && load_over(&c, cases[i].file, err, path) != 0)
      fail_msg("case %zu: %s", i, err);
    if (cases[i].env != NULL) {
      snprintf(env_var, sizeof env_var, "%s", cases[i].env);
      if (fmq_config_apply_env(&c, env, NULL, NULL, err, sizeof err) != 0)
        fail_msg("case %zu: %s", i, err);
    }
    if (cases[i].kv[0] != NULL &&
        fmq_config_set(&c, cases[i].kv[0], cases[i].kv[1], "test", err, sizeof err) != 0)
      fail_msg("case %zu: %s", i, err);
    err[0] = '\0';
    if (cases[i].err != NULL) {
      assert_int_equal(fmq_config_check(&c, err, sizeof err), -1);
      assert_string_equal(err, cases[i].err);
    } else {
      if (fmq_config_check(&c, err, sizeof err) != 0)
        fail_msg("case %zu: %s", i, err);
      assert_int_equal(c.websocket.ping_interval, cases[i].ping);
    }
    fmq_config_close(&c);
  }
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
      cmocka_unit_test(test_load_errors_v1),
      cmocka_unit_test(test_token_not_in_errors),
      cmocka_unit_test(test_cidr),
      cmocka_unit_test(test_load_values_v1),
      cmocka_unit_test(test_tokens),
      cmocka_unit_test(test_mappings),
      cmocka_unit_test(test_sessions_example),
      cmocka_unit_test(test_config_v1_file),
      cmocka_unit_test(test_env_v1),
      cmocka_unit_test(test_env_errors_v1),
      cmocka_unit_test(test_env_warnings),
      cmocka_unit_test(test_precedence_v1),
      cmocka_unit_test(test_check),
      cmocka_unit_test(test_ping_interval_derived),
      cmocka_unit_test(test_ping_interval_set),
      cmocka_unit_test(test_log_level_name),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
