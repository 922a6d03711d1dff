/* Broker outages (protocol-v1 section 4, "status"): the broker is killed
 * (SIGKILL) and restarted on the same port. Clients stay connected and get
 * status down / up; while down, QoS 0 publishes are refused `unavailable`,
 * QoS 1/2 publishes are held (within broker.offline_buffer) and acknowledged
 * once delivered, subscribes are answered once granted; afterwards the
 * subscriptions are restored and retained messages replayed.
 *
 * Reconnect backoff 1 s to 2 s: after a restart the gateway's next attempt
 * is still hundreds of milliseconds away, time enough for an independent
 * mosquitto_sub to subscribe first and observe held publishes. Each test
 * checks that premise from the broker log rather than assuming it. */

#include "bridge_client.h"
#include "broker_proc.h"
#include "gateway_proc.h"
#include "proc.h"
#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T 5000
#define BACK_MS 10000     /* reconnect (at most 2 s backoff) and re-subscribe */
#define QUIET_MS 300

#define RECONNECT "FERRYMQ_BROKER_RECONNECT_MIN=1s", "FERRYMQ_BROKER_RECONNECT_MAX=2s"
static struct fmqt_fixture gateway = {.env = (const char *const[]){RECONNECT, NULL}};
static struct fmqt_fixture gateway_311 = {
    .env = (const char *const[]){RECONNECT, "FERRYMQ_BROKER_PROTOCOL=3.1.1", NULL}};
static struct fmqt_fixture small_buffer = {
    .env = (const char *const[]){RECONNECT, "FERRYMQ_BROKER_OFFLINE_BUFFER=2", NULL}};
static struct fmqt_fixture down_at_start = {
    .env = (const char *const[]){RECONNECT, NULL}, .no_broker = 1};

/* --- helpers --- */

static const char *gw_id(void **state) {
  return fmqt_fixture_of(state)->client_id;
}

static size_t gateway_connections(void **state, size_t mark) {
  char needle[128];
  snprintf(needle, sizeof needle, " as %s (", gw_id(state));
  return fmqt_broker_log_count_since(fmqt_fixture_broker(state), mark, needle);
}

/* Kills the broker; every client in fds gets status down. */
static void kill_broker(void **state, const int *fds, size_t n) {
  fmqt_broker_kill(fmqt_fixture_broker(state));
  for (size_t i = 0; i < n; i++) {
    fmqt_expect_status(fds[i], "down", T);
  }
  assert_true(fmqt_gateway_wait_log(fmqt_fixture_gateway(state), "broker connection lost: ", T));
}

/* Restarts the broker on its port and returns the log mark of the restart. */
static size_t restart_broker(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  size_t mark = fmqt_broker_log_mark(b);
  fmqt_broker_restart(b);
  return mark;
}

/* Fails unless the gateway is still disconnected from the restarted broker
 * (the test's timing premise). */
static void assert_not_reconnected_yet(void **state, size_t mark) {
  if (gateway_connections(state, mark) != 0) {
    fmqt_broker_print_log(fmqt_fixture_broker(state), mark, "premise");
    fail_msg("premise failed: the gateway reconnected before the test was ready "
             "(reconnect.min is 1 s)");
  }
}

/* Waits until the gateway is connected again and has subscribed filter. */
static void wait_resubscribed(void **state, size_t mark, const char *filter, int qos) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  char needle[256];
  snprintf(needle, sizeof needle, ": %s %d %s\n", gw_id(state), qos, filter);
  if (fmqt_broker_wait_log(b, mark, needle, 1, BACK_MS) < 1) {
    fmqt_broker_print_log(b, mark, "no re-subscribe");
    fail_msg("the gateway did not subscribe %s at qos %d again after the restart", filter, qos);
  }
  snprintf(needle, sizeof needle, "Sending SUBACK to %s\n", gw_id(state));
  assert_true(fmqt_broker_wait_log(b, mark, needle, 1, T) >= 1);
}

/* Reads n JSON messages from fd (within timeout_ms in all) into out. */
static void collect(int fd, json_t **out, size_t n, int timeout_ms, const char *what) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (size_t i = 0; i < n; i++) {
    out[i] = fmqt_recv(fd, fmqt_ms_until(deadline));
    if (out[i] == NULL) {
      fail_msg("%s: %zu of %zu messages within %d ms", what, i, n, timeout_ms);
    }
  }
}

static int is_type(const json_t *v, const char *type) {
  const char *t = fmqt_json_str(v, "type");
  return t != NULL && strcmp(t, type) == 0;
}

static int is_status(const json_t *v, const char *state) {
  const char *s = fmqt_json_str(v, "broker");
  return is_type(v, "status") && s != NULL && strcmp(s, state) == 0 && json_object_size(v) == 2;
}

static int is_puback(const json_t *v, const char *id) {
  const char *got = fmqt_json_str(v, "id");
  return is_type(v, "puback") && got != NULL && strcmp(got, id) == 0 && json_object_size(v) == 2;
}

static int is_subscribed(const json_t *v, const char *topic, int qos, const char *id) {
  const char *t = fmqt_json_str(v, "topic"), *got = fmqt_json_str(v, "id");
  json_t *q = json_object_get(v, "qos");
  return is_type(v, "subscribed") && t != NULL && strcmp(t, topic) == 0 && got != NULL &&
         strcmp(got, id) == 0 && json_is_integer(q) && json_integer_value(q) == qos;
}

/* Asserts msgs (n) holds exactly one status up. */
static void assert_one_status_up(json_t **msgs, size_t n, const char *who) {
  size_t ups = 0;
  for (size_t i = 0; i < n; i++) {
    ups += is_status(msgs[i], "up");
  }
  if (ups != 1) {
    fail_msg("%s: %zu status up messages, want 1", who, ups);
  }
}

static void free_all(json_t **msgs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    json_decref(msgs[i]);
  }
}

/* Asserts the observer got exactly the n texts, once each, text i at
 * qos[i]. */
static void assert_observed(const struct fmqt_sub *obs, const char *const *texts, const int *qos,
                            size_t n) {
  assert_int_equal(fmqt_sub_wait(obs, n, T), n);
  assert_int_equal(fmqt_sub_wait(obs, n + 1, QUIET_MS), n);
  struct fmqt_sub_msg *msgs;
  size_t got = fmqt_sub_messages(obs, &msgs);
  for (size_t i = 0; i < n; i++) {
    size_t found = 0;
    for (size_t m = 0; m < got; m++) {
      if (msgs[m].len == strlen(texts[i]) && memcmp(msgs[m].payload, texts[i], msgs[m].len) == 0) {
        found++;
        if (msgs[m].qos != qos[i]) {
          fail_msg("mosquitto_sub got \"%s\" at qos %d, want %d", texts[i], msgs[m].qos, qos[i]);
        }
      }
    }
    if (found != 1) {
      fail_msg("mosquitto_sub got \"%s\" %zu times, want once", texts[i], found);
    }
  }
  fmqt_sub_msgs_free(msgs, got);
}

/* --- tests --- */

static void clients_ride_out_a_broker_outage(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  int c1 = fmqt_fixture_connect(state);
  int c2 = fmqt_fixture_connect(state);
  fmqt_subscribe(c1, "o/t", 1, "s1", 1);

  int both[] = {c1, c2};
  kill_broker(state, both, 2);
  fmqt_ws_assert_json_ping(c1, "c1-alive", T);
  fmqt_ws_assert_json_ping(c2, "c2-alive", T);

  /* A client connecting now learns the broker is down right away. */
  int c3 = fmqt_fixture_connect(state);
  fmqt_expect_status(c3, "down", T);

  /* QoS 0 (text and binary) cannot be held; QoS 1 and 2 are. */
  fmqt_publish_text(c2, "h/t", "lost", 0, 0, "q0");
  fmqt_expect_error(c2, "unavailable", "q0", T, "a QoS 0 publish while down");
  static const uint8_t frame[] = {0x00, 0x03, 'h', '/', 't', 'b', 'i', 'n'};
  fmqt_ws_send(c2, 1, 0x2, frame, sizeof frame);
  fmqt_expect_error(c2, "unavailable", NULL, T, "a binary publish while down");
  fmqt_publish_text(c2, "h/t", "held-1", 1, 0, "held1");
  fmqt_publish_text(c2, "h/t", "held-2", 2, 0, "held2");
  fmqt_send_subscribe(c3, "o/new", 1, "s-during");
  fmqt_ws_assert_json_ping(c2, "no-puback-yet", T);
  fmqt_ws_assert_json_ping(c3, "no-subscribed-yet", T);

  size_t mark = restart_broker(state);
  struct fmqt_sub obs;
  fmqt_sub_start(&obs, b, (const char *const[]){"h/#", NULL}, 2, "mqttv5");
  assert_not_reconnected_yet(state, mark);

  json_t *m1[1], *m2[3], *m3[2];
  collect(c1, m1, 1, BACK_MS, "c1 after the restart");
  assert_one_status_up(m1, 1, "c1");
  collect(c2, m2, 3, BACK_MS, "c2 after the restart");
  assert_one_status_up(m2, 3, "c2");
  int p1 = 0, p2 = 0;
  for (int i = 0; i < 3; i++) {
    p1 += is_puback(m2[i], "held1");
    p2 += is_puback(m2[i], "held2");
  }
  if (p1 != 1 || p2 != 1) {
    fail_msg("c2: pubacks for the held publishes: %d and %d, want 1 each", p1, p2);
  }
  collect(c3, m3, 2, BACK_MS, "c3 after the restart");
  assert_one_status_up(m3, 2, "c3");
  if (!is_subscribed(m3[0], "o/new", 1, "s-during") &&
      !is_subscribed(m3[1], "o/new", 1, "s-during")) {
    fail_msg("c3: no subscribed reply for the subscribe sent while down: %s, %s",
             fmqt_dump(m3[0]), fmqt_dump(m3[1]));
  }
  free_all(m1, 1);
  free_all(m2, 3);
  free_all(m3, 2);
  assert_int_equal(fmqt_gateway_log_count(gw, "broker connected: "), 2);

  /* The held publishes reached MQTT once each; the refused one never. */
  assert_observed(&obs, (const char *const[]){"held-1", "held-2"}, (const int[]){1, 2}, 2);

  /* c1's subscription is restored. */
  wait_resubscribed(state, mark, "o/t", 1);
  fmqt_mqtt_pub_text(b, "o/t", "after", 1, 0);
  fmqt_expect_message(c1, "o/t", "after", 1, 0, T);
  fmqt_mqtt_pub_text(b, "o/new", "new", 1, 0);
  fmqt_expect_message(c3, "o/new", "new", 1, 0, T);
  int fds[] = {c1, c2, c3};
  for (int i = 0; i < 3; i++) {
    fmqt_expect_nothing(fds[i], i == 0 ? QUIET_MS : 0, "after the outage");
    fmqt_ws_close_cleanly(fds[i], 1000);
  }
  fmqt_sub_stop(&obs);
}

/* offline_buffer 2: the third held publish is refused at once; the first
 * two are delivered and acknowledged after the restart. */
static void offline_buffer_is_bounded(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int c = fmqt_fixture_connect(state);
  int fds[] = {c};
  kill_broker(state, fds, 1);
  fmqt_publish_text(c, "h/b", "b1", 1, 0, "b1");
  fmqt_publish_text(c, "h/b", "b2", 1, 0, "b2");
  fmqt_publish_text(c, "h/b", "b3", 1, 0, "b3");
  fmqt_expect_error(c, "unavailable", "b3", T, "the third held publish");
  fmqt_ws_assert_json_ping(c, "no-puback-yet", T);

  size_t mark = restart_broker(state);
  struct fmqt_sub obs;
  fmqt_sub_start(&obs, b, (const char *const[]){"h/#", NULL}, 1, "mqttv5");
  assert_not_reconnected_yet(state, mark);
  json_t *m[3];
  collect(c, m, 3, BACK_MS, "after the restart");
  assert_one_status_up(m, 3, "c");
  int p1 = 0, p2 = 0;
  for (int i = 0; i < 3; i++) {
    p1 += is_puback(m[i], "b1");
    p2 += is_puback(m[i], "b2");
  }
  if (p1 != 1 || p2 != 1) {
    fail_msg("pubacks for b1 and b2: %d and %d, want 1 each", p1, p2);
  }
  free_all(m, 3);
  fmqt_expect_nothing(c, QUIET_MS, "after the pubacks");
  assert_observed(&obs, (const char *const[]){"b1", "b2"}, (const int[]){1, 1}, 2);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(c, 1000);
}

/* A QoS 1 publish sent but not yet acknowledged when the broker dies (it
 * was frozen, then killed) gets exactly one answer: its puback once it was
 * delivered after the reconnect, or unavailable. */
static void publish_in_flight_when_the_broker_dies_gets_exactly_one_answer(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int c = fmqt_fixture_connect(state);
  fmqt_broker_freeze(b);
  fmqt_publish_text(c, "h/f", "in flight", 1, 0, "x");
  fmqt_expect_nothing(c, QUIET_MS, "a publish to a frozen broker");
  /* The answer may come before, between or after the status changes. */
  fmqt_broker_kill(b);
  int64_t deadline = fmqt_now_ms() + BACK_MS;
  int down = 0, up = 0, answers = 0;
  while (!up || answers == 0) {
    json_t *v = fmqt_recv(c, fmqt_ms_until(deadline));
    if (v == NULL) {
      fail_msg("after the broker died: status down %d, up %d, answers to the in-flight "
               "publish %d", down, up, answers);
    }
    if (is_status(v, "down") && !down && !up) {
      down++;
      restart_broker(state);
    } else if (is_status(v, "up") && down && !up) {
      up++;
    } else if (is_puback(v, "x") || (is_type(v, "error") && fmqt_json_str(v, "id") != NULL &&
                                     strcmp(fmqt_json_str(v, "id"), "x") == 0 &&
                                     strcmp(fmqt_json_str(v, "code"), "unavailable") == 0)) {
      answers++;
    } else {
      fail_msg("unexpected: %s", fmqt_dump(v));
    }
    json_decref(v);
  }
  fmqt_expect_nothing(c, 2 * QUIET_MS, "after the answer to the in-flight publish");
  fmqt_ws_close_cleanly(c, 1000);
}

/* An unsubscribe during the outage is answered at once, and that filter
 * is not subscribed again. */
static void unsubscribe_during_an_outage(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int c = fmqt_fixture_connect(state);
  fmqt_subscribe(c, "o/a", 0, "a", 0);
  fmqt_subscribe(c, "o/b", 0, "b", 0);
  int fds[] = {c};
  kill_broker(state, fds, 1);
  fmqt_unsubscribe(c, "o/a", "un-a");
  size_t mark = restart_broker(state);
  fmqt_expect_status(c, "up", BACK_MS);
  wait_resubscribed(state, mark, "o/b", 0);
  if (fmqt_broker_subscribes_since(b, mark, gw_id(state), "o/a", -1) != 0) {
    fail_msg("o/a, unsubscribed during the outage, was subscribed again");
  }
  fmqt_mqtt_pub_text(b, "o/a", "dropped", 0, 0);
  fmqt_mqtt_pub_text(b, "o/b", "kept", 0, 0);
  fmqt_expect_message(c, "o/b", "kept", 0, 0, T);
  fmqt_expect_nothing(c, QUIET_MS, "after the outage");
  fmqt_ws_close_cleanly(c, 1000);
}

/* After a reconnect every holder gets the retained messages of its filters
 * again, once, with retain true. (The restarted broker has no persistence:
 * the retained message is published to it before the gateway is back.) */
static void retained_messages_are_replayed_after_a_reconnect(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "k/#", 1, "a", 1);
  fmqt_subscribe(bb, "k/#", 0, "b", 0);
  int fds[] = {a, bb};
  kill_broker(state, fds, 2);
  size_t mark = restart_broker(state);
  fmqt_mqtt_pub_text(b, "k/1", "again", 1, 1);
  assert_not_reconnected_yet(state, mark);
  for (int i = 0; i < 2; i++) {
    json_t *m[2];
    collect(fds[i], m, 2, BACK_MS, "after the restart");
    assert_one_status_up(m, 2, i == 0 ? "a" : "b");
    json_t *msg = is_status(m[0], "up") ? m[1] : m[0];
    fmqt_assert_message(msg, "k/1", "again", 5, 1, 1);
    free_all(m, 2);
  }
  fmqt_expect_nothing(a, QUIET_MS, "after the replay");
  fmqt_expect_nothing(bb, 0, "after the replay");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(bb, 1000);
}

/* The broker is down when the gateway starts: a client gets status down,
 * its subscribe is answered and its QoS 1 publish acknowledged once the
 * broker comes up, QoS 0 publishes are refused once both connections'
 * first attempts have failed (before that, a publish waits: the start-up
 * never refuses one for want of a CONNACK; tests/unit/test_session.c). A
 * client connecting afterwards gets no status. */
static void broker_down_when_the_gateway_starts(void **state) {
  struct fmqt_fixture *fx = fmqt_fixture_of(state);
  unsigned port = 0;
  assert_int_equal(sscanf(fx->url, "tcp://127.0.0.1:%u", &port), 1);
  int c = fmqt_fixture_connect(state);
  fmqt_expect_status(c, "down", T);
  char failed[160];
  snprintf(failed, sizeof failed, "broker %s: ", fx->url);
  assert_true(fmqt_gateway_wait_log(fmqt_fixture_gateway(state), failed, T));
  snprintf(failed, sizeof failed, "broker %s (publishing): ", fx->url);
  assert_true(fmqt_gateway_wait_log(fmqt_fixture_gateway(state), failed, T));
  fmqt_publish_text(c, "d/t", "lost", 0, 0, "q0");
  fmqt_expect_error(c, "unavailable", "q0", T, "a QoS 0 publish before the first connection");
  fmqt_send_subscribe(c, "d/t", 1, "early");
  fmqt_publish_text(c, "d/held", "held", 1, 0, "held");
  fmqt_ws_assert_json_ping(c, "no-reply-yet", T);
  /* topic= is held the same way: status down first, subscribed once up. */
  int q = fmqt_ws_connect(fmqt_fixture_port(state), "/mqtt?topic=d%2Fq", "");
  fmqt_expect_status(q, "down", T);
  fmqt_ws_assert_json_ping(q, "no-subscribed-yet", T);

  fmqt_broker_start_on(&fx->broker, (uint16_t)port, NULL);
  json_t *m[3];
  collect(c, m, 3, BACK_MS, "after the broker started");
  assert_one_status_up(m, 3, "c");
  int subscribed = 0, acked = 0;
  for (int i = 0; i < 3; i++) {
    subscribed += is_subscribed(m[i], "d/t", 1, "early");
    acked += is_puback(m[i], "held");
  }
  if (subscribed != 1 || acked != 1) {
    fail_msg("after the broker started: %d subscribed replies and %d pubacks, want 1 each: "
             "%s %s %s", subscribed, acked, fmqt_dump(m[0]), fmqt_dump(m[1]), fmqt_dump(m[2]));
  }
  free_all(m, 3);
  json_t *mq[2];
  collect(q, mq, 2, BACK_MS, "the topic= client after the broker started");
  assert_one_status_up(mq, 2, "the topic= client");
  json_t *sq = is_status(mq[0], "up") ? mq[1] : mq[0];
  json_t *qq = json_object_get(sq, "qos");
  if (!is_type(sq, "subscribed") || strcmp(fmqt_json_str(sq, "topic"), "d/q") != 0 ||
      json_object_get(sq, "id") != NULL || !json_is_integer(qq) || json_integer_value(qq) != 0) {
    fail_msg("the topic= client: expected subscribed d/q at qos 0 without id, got %s",
             fmqt_dump(sq));
  }
  free_all(mq, 2);
  /* The held publish reached the broker once, through the publishing
   * connection (client id + "-pub"). */
  char received[128];
  snprintf(received, sizeof received, "Received PUBLISH from %s-pub (d0, q1, r0, m",
           gw_id(state));
  assert_int_equal(fmqt_broker_log_count_since(&fx->broker, 0, received), 1);
  char needle[128];
  snprintf(needle, sizeof needle, "broker connected: %s", fx->url);
  assert_true(fmqt_gateway_log_contains(fmqt_fixture_gateway(state), needle));

  fmqt_mqtt_pub_text(&fx->broker, "d/t", "flows", 1, 0);
  fmqt_expect_message(c, "d/t", "flows", 1, 0, T);
  int late = fmqt_fixture_connect(state);
  fmqt_ws_assert_json_ping(late, "no-status-when-up", T);
  fmqt_expect_nothing(c, QUIET_MS, "after the first message");
  fmqt_mqtt_pub_text(&fx->broker, "d/q", "query", 0, 0);
  fmqt_expect_message(q, "d/q", "query", 0, 0, T);
  fmqt_ws_close_cleanly(c, 1000);
  fmqt_ws_close_cleanly(q, 1000);
  fmqt_ws_close_cleanly(late, 1000);
}

#define WITH(fn, fx) cmocka_unit_test_prestate_setup_teardown(fn, fmqt_fixture_setup, \
                                                              fmqt_fixture_teardown, &fx)

int main(void) {
  const struct CMUnitTest tests[] = {
      WITH(clients_ride_out_a_broker_outage, gateway),
      WITH(clients_ride_out_a_broker_outage, gateway_311),
      WITH(offline_buffer_is_bounded, small_buffer),
      WITH(publish_in_flight_when_the_broker_dies_gets_exactly_one_answer, gateway),
      WITH(unsubscribe_during_an_outage, gateway),
      WITH(retained_messages_are_replayed_after_a_reconnect, gateway),
      WITH(retained_messages_are_replayed_after_a_reconnect, gateway_311),
      WITH(broker_down_when_the_gateway_starts, down_at_start),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
