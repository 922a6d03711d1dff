/* Access limits (protocol-v1 section 8 and config-v1): allowed_origins (403
 * before the upgrade), max_connections_per_ip (503), max_subscriptions
 * (too_many_subscriptions), the per-connection rate limit (rate_limited,
 * then close 1008) and broker.max_topic_levels (invalid_topic). */

#include "bridge_client.h"
#include "broker_proc.h"
#include "config_fixture.h"
#include "gateway_proc.h"
#include "proc.h"
#include "wsclient.h"

#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T 5000
#define QUIET_MS 300
#define RETRY_MS 3000
#define FLOOD_MS 3000
#define FLOOD_EVERY_MS 20        /* 50 messages/s: ten times the limit */
#define MAX_REFUSALS 50          /* limits.rate.max_refusals' default */

static struct fmqt_config_fixture origins = {
    .yaml = "websocket:\n"
            "  allowed_origins: [\"https://app.example.com\"]\n"};
static struct fmqt_config_fixture origins_and_tokens = {
    .yaml = "websocket:\n"
            "  allowed_origins: [\"https://app.example.com\"]\n"
            "auth:\n"
            "  mode: token\n"
            "  tokens:\n"
            "    - token: origin-test-token\n"
            "      user: alice\n"};
static struct fmqt_fixture two_per_ip = {
    .env = (const char *const[]){"FERRYMQ_LIMITS_MAX_CONNECTIONS_PER_IP=2", NULL}};
static struct fmqt_fixture three_subscriptions = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_MAX_SUBSCRIPTIONS=3", NULL}};
static struct fmqt_fixture five_per_second = {
    .env = (const char *const[]){"FERRYMQ_LIMITS_RATE_MESSAGES_PER_SECOND=5",
                                 "FERRYMQ_LIMITS_RATE_BURST=5", NULL}};
static struct fmqt_fixture five_levels = {
    .env = (const char *const[]){"FERRYMQ_BROKER_MAX_TOPIC_LEVELS=5", NULL}};

/* --- helpers --- */

static const char *gw_id(void **state) {
  return fmqt_fixture_of(state)->client_id;
}

/* Sends an upgrade request for path with extra headers on a new connection
 * and returns the status; *fd gets the connection when it was upgraded
 * (closed otherwise). */
static int try_upgrade(uint16_t port, const char *path, const char *extra, int *fd) {
  char req[2048], key[25], head[4096];
  size_t n = fmqt_ws_request(req, sizeof req, path, extra, key);
  *fd = fmqt_tcp_connect(port);
  fmqt_send_all(*fd, req, n);
  int status = fmqt_http_read_head(*fd, head, sizeof head, T);
  if (status != 101) {
    fmqt_close(*fd);
    *fd = -1;
  }
  return status;
}

/* Asserts the request is refused with status (no upgrade). */
static void assert_refused(void **state, const char *path, const char *extra, int want) {
  char req[2048], key[25], head[4096];
  size_t n = fmqt_ws_request(req, sizeof req, path, extra, key);
  int status = fmqt_http_refused(fmqt_fixture_port(state), req, n, head, sizeof head);
  if (status != want) {
    fail_msg("%s with \"%s\": status %d, want %d\n%s", path, extra, status, want, head);
  }
}

static void assert_admitted(void **state, const char *path, const char *extra) {
  int fd = fmqt_ws_connect(fmqt_fixture_port(state), path, extra);
  fmqt_ws_assert_json_ping(fd, "admitted", T);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- allowed_origins --- */

static void only_listed_origins_are_admitted(void **state) {
  static const char *const allowed[] = {
      "Origin: https://app.example.com\r\n",
      "Origin: HTTPS://App.Example.COM:443\r\n",
      "Origin: https://app.example.com:443\r\n",
      "",   /* not a browser */
  };
  static const char *const refused[] = {
      "Origin: https://evil.example\r\n",
      "Origin: http://app.example.com\r\n",
      "Origin: https://app.example.com:8443\r\n",
      "Origin: https://app.example.com.evil.example\r\n",
      "Origin: https://evilapp.example.com\r\n",
      "Origin: null\r\n",
  };
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
    assert_admitted(state, "/mqtt", allowed[i]);
  }
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    assert_refused(state, "/mqtt", refused[i], 403);
  }
  assert_admitted(state, "/mqtt", allowed[0]);
}

/* The origin is checked whatever the credentials; without Origin, auth
 * alone decides. */
static void origins_and_credentials_are_both_checked(void **state) {
  assert_admitted(state, "/mqtt?token=origin-test-token", "Origin: https://app.example.com\r\n");
  assert_admitted(state, "/mqtt?token=origin-test-token", "");
  assert_refused(state, "/mqtt?token=origin-test-token", "Origin: https://evil.example\r\n", 403);
  assert_refused(state, "/mqtt", "", 401);
  assert_refused(state, "/mqtt?token=wrong", "Origin: https://app.example.com\r\n", 401);
}

/* --- max_connections_per_ip --- */

static void a_third_connection_from_one_address_gets_503(void **state) {
  uint16_t port = fmqt_fixture_port(state);
  int first = fmqt_ws_connect(port, "/mqtt", "");
  int second = fmqt_ws_connect(port, "/mqtt", "");
  for (int i = 0; i < 5; i++) {
    assert_refused(state, "/mqtt", "", 503);
  }
  fmqt_ws_assert_json_ping(first, "1", T);
  fmqt_ws_assert_json_ping(second, "2", T);

  /* A closed connection frees its slot once the gateway noticed. */
  fmqt_ws_close_cleanly(first, 1000);
  int third = -1, status;
  int64_t deadline = fmqt_now_ms() + RETRY_MS;
  while ((status = try_upgrade(port, "/mqtt", "", &third)) == 503 && fmqt_now_ms() < deadline) {
    poll(NULL, 0, 50);
  }
  if (status != 101) {
    fail_msg("no slot %d ms after a connection closed: status %d", RETRY_MS, status);
  }
  fmqt_ws_assert_json_ping(third, "3", T);
  assert_refused(state, "/mqtt", "", 503);

  /* The refusals held no slot: with both closed, two fit again. */
  fmqt_ws_close_cleanly(second, 1000);
  fmqt_ws_close_cleanly(third, 1000);
  int a = -1, b = -1;
  deadline = fmqt_now_ms() + RETRY_MS;
  while ((status = try_upgrade(port, "/mqtt", "", &a)) == 503 && fmqt_now_ms() < deadline) {
    poll(NULL, 0, 50);
  }
  assert_int_equal(status, 101);
  deadline = fmqt_now_ms() + RETRY_MS;
  while ((status = try_upgrade(port, "/mqtt", "", &b)) == 503 && fmqt_now_ms() < deadline) {
    poll(NULL, 0, 50);
  }
  assert_int_equal(status, 101);
  assert_refused(state, "/mqtt", "", 503);
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(b, 1000);
}

/* --- max_subscriptions --- */

static void a_fourth_distinct_filter_is_too_many(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = fmqt_fixture_connect(state);
  fmqt_subscribe(fd, "s/a", 0, "s1", 0);
  fmqt_subscribe(fd, "s/b", 0, "s2", 0);
  fmqt_subscribe(fd, "s/c/#", 0, "s3", 0);
  fmqt_send_subscribe(fd, "s/d", 0, "s4");
  fmqt_expect_error(fd, "too_many_subscriptions", "s4", T, "a fourth filter");
  /* A filter already held is no new subscription, whatever its QoS. */
  fmqt_subscribe(fd, "s/a", 0, "s5", 0);
  fmqt_subscribe(fd, "s/a", 1, "s6", 1);
  fmqt_send_subscribe(fd, "s/e", 0, "s7");
  fmqt_expect_error(fd, "too_many_subscriptions", "s7", T, "still a fourth filter");
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, gw_id(state), "s/d", -1), 0);
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, gw_id(state), "s/e", -1), 0);

  /* After an unsubscribe, there is room for one more. */
  fmqt_unsubscribe(fd, "s/b", "u1");
  fmqt_subscribe(fd, "s/d", 0, "s8", 0);
  fmqt_send_subscribe(fd, "s/e", 0, "s9");
  fmqt_expect_error(fd, "too_many_subscriptions", "s9", T, "a fourth filter again");

  fmqt_mqtt_pub_text(b, "s/e", "not subscribed", 0, 0);
  fmqt_mqtt_pub_text(b, "s/b", "unsubscribed", 0, 0);
  fmqt_mqtt_pub_text(b, "s/d", "subscribed", 0, 0);
  fmqt_expect_message(fd, "s/d", "subscribed", 0, 0, T);
  fmqt_expect_nothing(fd, QUIET_MS, "after the message on s/d");

  /* The limit is per connection. */
  int other = fmqt_fixture_connect(state);
  fmqt_subscribe(other, "o/1", 0, "o1", 0);
  fmqt_subscribe(other, "o/2", 0, "o2", 0);
  fmqt_subscribe(other, "s/e", 0, "o3", 0);
  fmqt_ws_close_cleanly(other, 1000);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void topic_query_subscriptions_count(void **state) {
  int fd = fmqt_ws_connect(fmqt_fixture_port(state), "/mqtt?topic=q%2F1&topic=q%2F2", "");
  for (int i = 0; i < 2; i++) {
    json_t *v = fmqt_expect(fd, T, "subscribed for topic=");
    if (strcmp(fmqt_json_str(v, "type") ? fmqt_json_str(v, "type") : "", "subscribed") != 0) {
      fail_msg("want subscribed for topic=, got %s", fmqt_dump(v));
    }
    json_decref(v);
  }
  fmqt_subscribe(fd, "q/3", 0, "s3", 0);
  fmqt_send_subscribe(fd, "q/4", 0, "s4");
  fmqt_expect_error(fd, "too_many_subscriptions", "s4", T, "a fourth filter after two topic=");
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- the rate limit --- */

/* Sends pings with ids prefix0..prefix(n-1) at once. */
static void send_pings(int fd, const char *prefix, int n) {
  for (int i = 0; i < n; i++) {
    fmqt_sendf(fd, "{\"type\":\"ping\",\"id\":\"%s%d\"}", prefix, i);
  }
}

/* Expects, in order, pongs for prefix0..prefix(pongs-1), then rate_limited
 * errors for the next refused ids. */
static void expect_pongs_then_refusals(int fd, const char *prefix, int pongs, int refused) {
  for (int i = 0; i < pongs + refused; i++) {
    char id[32], what[64];
    snprintf(id, sizeof id, "%s%d", prefix, i);
    json_t *v = fmqt_expect(fd, T, id);
    if (i < pongs) {
      const char *type = fmqt_json_str(v, "type");
      if (type == NULL || strcmp(type, "pong") != 0) {
        fail_msg("message %d of a burst: want a pong, got %s", i, fmqt_dump(v));
      }
      fmqt_assert_id(v, id, "pong");
    } else {
      snprintf(what, sizeof what, "message %d of a burst", i);
      fmqt_assert_error(v, "rate_limited", id, what);
    }
    json_decref(v);
  }
}

static void a_burst_is_allowed_then_tokens_refill(void **state) {
  int fd = fmqt_fixture_connect(state);
  send_pings(fd, "a", 6);
  expect_pongs_then_refusals(fd, "a", 5, 1);
  /* Tokens refill at 5 per second: about 5 after a second. */
  fmqt_sleep_ms(1100);
  send_pings(fd, "b", 6);
  expect_pongs_then_refusals(fd, "b", 5, 1);
  /* Never more than the burst, however long the client waited. */
  fmqt_sleep_ms(2000);
  send_pings(fd, "c", 7);
  expect_pongs_then_refusals(fd, "c", 5, 2);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* Binary publishes take tokens like text messages; WebSocket pings do not
 * (and a refused publish does not reach the broker). */
static void binary_frames_count_and_control_frames_do_not(void **state) {
  struct fmqt_sub obs;
  fmqt_sub_start(&obs, fmqt_fixture_broker(state), (const char *const[]){"rate/#", NULL}, 0,
                 NULL);
  int fd = fmqt_fixture_connect(state);
  for (int i = 0; i < 20; i++) {
    fmqt_ws_assert_ping(fd, "control", 7, T);
  }
  static const struct fmqt_sub_want want[] = {
      {"rate/1", "counted", 0, 0}, {"rate/2", "counted", 0, 0}, {"rate/3", "counted", 0, 0},
      {"rate/4", "counted", 0, 0}, {"rate/5", "counted", 0, 0}};
  for (int i = 0; i < 5; i++) {
    fmqt_send_binary_publish(fd, want[i].topic, want[i].text, strlen(want[i].text));
  }
  fmqt_send_binary_publish(fd, "rate/6", "refused", 7);
  fmqt_expect_error(fd, "rate_limited", NULL, T, "a sixth binary publish");
  fmqt_sendf(fd, "{\"type\":\"ping\",\"id\":\"text\"}");
  fmqt_expect_error(fd, "rate_limited", "text", T, "a ping after five binary publishes");
  fmqt_sub_expect_only(&obs, want, 5, T, QUIET_MS);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* Reads what fd has without waiting and counts pongs and rate_limited
 * errors. Returns the close code once a close frame came, 0 before. */
static int drain_flooded(int fd, int *pongs, int *refusals) {
  if (fmqt_ws_read_ready(fd) == FMQT_EOF) {
    fail_msg("EOF without a close frame after %d refusals", *refusals);
  }
  struct fmqt_frame_view v;
  while (fmqt_ws_take_frame(fd, &v)) {
    if (v.opcode == 0x8) {
      return v.len >= 2 ? v.payload[0] << 8 | v.payload[1] : 1005;
    }
    if (v.opcode != 0x1) {
      continue;
    }
    json_t *msg = json_loadb((const char *)v.payload, v.len, 0, NULL);
    if (msg == NULL) {
      fail_msg("not JSON while flooding: %.*s", (int)v.len, (const char *)v.payload);
    }
    const char *type = fmqt_json_str(msg, "type");
    if (type != NULL && strcmp(type, "pong") == 0) {
      (*pongs)++;
    } else if (type != NULL && strcmp(type, "error") == 0) {
      fmqt_assert_error(msg, "rate_limited", fmqt_json_str(msg, "id"), "while flooding");
      (*refusals)++;
    } else {
      fail_msg("unexpected message while flooding: %.*s", (int)v.len, (const char *)v.payload);
    }
    json_decref(msg);
  }
  return 0;
}

static void a_client_that_keeps_flooding_is_closed_with_1008(void **state) {
  int good = fmqt_fixture_connect(state);
  int flood = fmqt_fixture_connect(state);
  uint8_t frame[128];
  int pongs = 0, refusals = 0, code = 0, sent = 0;
  int64_t start = fmqt_now_ms(), next_good = start + 500;
  while (code == 0 && fmqt_now_ms() < start + FLOOD_MS) {
    char text[64];
    int n = snprintf(text, sizeof text, "{\"type\":\"ping\",\"id\":\"f%d\"}", sent++);
    size_t len = fmqt_ws_build(frame, 0x81, 1, text, (size_t)n);
    if (fmqt_try_send(flood, frame, len) != 0) {
      break;
    }
    fmqt_sleep_ms(FLOOD_EVERY_MS);
    code = drain_flooded(flood, &pongs, &refusals);
    if (fmqt_now_ms() >= next_good) {
      fmqt_ws_assert_json_ping(good, "good", T);
      next_good += 500;
    }
  }
  int64_t deadline = fmqt_now_ms() + T;
  while (code == 0 && fmqt_now_ms() < deadline) {
    struct pollfd p = {.fd = flood, .events = POLLIN};
    poll(&p, 1, 50);
    code = drain_flooded(flood, &pongs, &refusals);
  }
  if (code != 1008) {
    fail_msg("after %d messages (%d pongs, %d refusals) in %lld ms: close code %d, want 1008",
             sent, pongs, refusals, (long long)(fmqt_now_ms() - start), code);
  }
  /* Closed once more than max_refusals were refused, not before. */
  if (refusals < MAX_REFUSALS || refusals > MAX_REFUSALS + 1) {
    fail_msg("closed after %d rate_limited errors, want %d or %d", refusals, MAX_REFUSALS,
             MAX_REFUSALS + 1);
  }
  fmqt_ws_send_close(flood, 1008, NULL);
  assert_true(fmqt_wait_eof(flood, T));
  fmqt_close(flood);
  fmqt_ws_assert_json_ping(good, "still good", T);
  fmqt_ws_close_cleanly(good, 1000);
}

/* --- max_topic_levels --- */

static void topics_deeper_than_max_topic_levels_are_invalid(void **state) {
  struct fmqt_sub obs;
  fmqt_sub_start(&obs, fmqt_fixture_broker(state), (const char *const[]){"#", NULL}, 0, NULL);
  int fd = fmqt_fixture_connect(state);
  static const char *const deep_filters[] = {"a/b/c/d/e/f", "a/b/c/d/e/#", "+/+/+/+/+/+"};
  for (size_t i = 0; i < sizeof deep_filters / sizeof deep_filters[0]; i++) {
    char id[16];
    snprintf(id, sizeof id, "deep-%zu", i);
    fmqt_send_subscribe(fd, deep_filters[i], 0, id);
    fmqt_expect_error(fd, "invalid_topic", id, T, deep_filters[i]);
  }
  fmqt_publish_text(fd, "a/b/c/d/e/f", "too deep", 1, 0, "deep-pub");
  fmqt_expect_error(fd, "invalid_topic", "deep-pub", T, "a 6-level publish");
  fmqt_send_binary_publish(fd, "a/b/c/d/e/f", "too deep", 8);
  fmqt_expect_error(fd, "invalid_topic", NULL, T, "a 6-level binary publish");
  for (size_t i = 0; i < sizeof deep_filters / sizeof deep_filters[0]; i++) {
    assert_int_equal(fmqt_broker_subscribes_since(fmqt_fixture_broker(state), 0, gw_id(state),
                                                  deep_filters[i], -1),
                     0);
  }

  fmqt_subscribe(fd, "a/b/c/d/e", 0, "ok-1", 0);
  fmqt_subscribe(fd, "x/b/c/d/#", 0, "ok-2", 0);
  fmqt_publish_text(fd, "a/b/c/d/e", "five", 0, 0, NULL);
  fmqt_expect_message(fd, "a/b/c/d/e", "five", 0, 0, T);
  static const struct fmqt_sub_want want[] = {{"a/b/c/d/e", "five", 0, 0}};
  fmqt_sub_expect_only(&obs, want, 1, T, QUIET_MS);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* Too deep is invalid_topic (proto/PROTOCOL.md), and a topic= that is not
 * a valid filter is refused with 400 before the upgrade; five levels are
 * subscribed. */
static void topic_query_deeper_than_max_topic_levels_is_refused(void **state) {
  assert_refused(state, "/mqtt?topic=a%2Fb%2Fc%2Fd%2Fe%2Ff", "", 400);
  assert_refused(state, "/mqtt?topic=a%2Fb&topic=%2B%2F%2B%2F%2B%2F%2B%2F%2B%2F%23", "", 400);
  assert_int_equal(fmqt_broker_log_count_since(fmqt_fixture_broker(state), 0,
                                               "Received SUBSCRIBE from"),
                   0);
  int fd = fmqt_ws_connect(fmqt_fixture_port(state), "/mqtt?topic=a%2Fb%2Fc%2Fd%2Fe", "");
  fmqt_expect_subscribed(fd, "a/b/c/d/e", 0, NULL, T);
  fmqt_ws_close_cleanly(fd, 1000);
}

#define CONFIG_TEST(fn, fixture) \
  cmocka_unit_test_prestate_setup_teardown(fn, fmqt_config_fixture_setup, \
                                           fmqt_config_fixture_teardown, &fixture)
#define TEST(fn, fixture) \
  cmocka_unit_test_prestate_setup_teardown(fn, fmqt_fixture_setup, fmqt_fixture_teardown, \
                                           &fixture)

int main(void) {
  const struct CMUnitTest tests[] = {
      CONFIG_TEST(only_listed_origins_are_admitted, origins),
      CONFIG_TEST(origins_and_credentials_are_both_checked, origins_and_tokens),
      TEST(a_third_connection_from_one_address_gets_503, two_per_ip),
      TEST(a_fourth_distinct_filter_is_too_many, three_subscriptions),
      TEST(topic_query_subscriptions_count, three_subscriptions),
      TEST(a_burst_is_allowed_then_tokens_refill, five_per_second),
      TEST(binary_frames_count_and_control_frames_do_not, five_per_second),
      TEST(a_client_that_keeps_flooding_is_closed_with_1008, five_per_second),
      TEST(topics_deeper_than_max_topic_levels_are_invalid, five_levels),
      TEST(topic_query_deeper_than_max_topic_levels_is_refused, five_levels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
