/* Retained messages through the shared session: a client that subscribes
 * gets the current retained messages (retain true) even when the gateway
 * already holds the filter for others, and the existing holders get no
 * second copy; live traffic arrives with retain false. On MQTT 5 and 3.1.1. */

#include "bridge_client.h"
#include "broker_proc.h"
#include "gateway_proc.h"
#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define T 5000
#define NO_COPY_MS 1000   /* an existing holder must not get a second copy */
#define QUIET_MS 300

static struct fmqt_fixture mqtt5;
static struct fmqt_fixture mqtt311 = {
    .env = (const char *const[]){"FERRYMQ_BROKER_PROTOCOL=3.1.1", NULL}};

/* Expects the retained messages on the n topics (any order, each exactly
 * once) with payloads texts, retain true and qos. */
static void expect_retained(int fd, const char *const *topics, const char *const *texts,
                            size_t n, int qos) {
  int seen[8] = {0};
  assert_true(n <= 8);
  for (size_t got = 0; got < n; got++) {
    json_t *v = fmqt_expect(fd, T, "a retained message");
    size_t k = 0;
    while (k < n && !fmqt_is_message(v, topics[k])) {
      k++;
    }
    if (k == n || seen[k]) {
      fail_msg("expected the retained messages once each, got %s", fmqt_dump(v));
    }
    fmqt_assert_message(v, topics[k], texts[k], strlen(texts[k]), qos, 1);
    seen[k] = 1;
    json_decref(v);
  }
}

static void retained_goes_to_a_new_holder_only(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  fmqt_mqtt_pub_text(b, "r/x", "keep", 1, 1);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);

  fmqt_subscribe(a, "r/x", 1, "a", 1);
  fmqt_expect_message(a, "r/x", "keep", 1, 1, T);

  fmqt_subscribe(bb, "r/x", 1, "b", 1);
  fmqt_expect_message(bb, "r/x", "keep", 1, 1, T);
  fmqt_expect_nothing(a, NO_COPY_MS, "the first holder when a second subscribed");

  fmqt_mqtt_pub_text(b, "r/x", "live", 1, 0);
  fmqt_expect_message(a, "r/x", "live", 1, 0, T);
  fmqt_expect_message(bb, "r/x", "live", 1, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after the live message");
  fmqt_expect_nothing(bb, 0, "after the live message");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(bb, 1000);
}

/* C's new filter r/# overlaps A's r/x: C gets both retained messages, A
 * nothing. */
static void late_joiner_on_an_overlapping_filter(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  fmqt_mqtt_pub_text(b, "r/x", "x1", 1, 1);
  fmqt_mqtt_pub_text(b, "r/y", "y1", 1, 1);
  int a = fmqt_fixture_connect(state);
  int c = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "r/x", 1, "a", 1);
  fmqt_expect_message(a, "r/x", "x1", 1, 1, T);

  fmqt_subscribe(c, "r/#", 1, "c", 1);
  expect_retained(c, (const char *const[]){"r/x", "r/y"}, (const char *const[]){"x1", "y1"}, 2,
                  1);
  fmqt_expect_nothing(a, NO_COPY_MS, "the holder of r/x when r/# was subscribed");

  fmqt_mqtt_pub_text(b, "r/x", "live", 1, 0);
  fmqt_expect_message(a, "r/x", "live", 1, 0, T);
  fmqt_expect_message(c, "r/x", "live", 1, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after the live message");
  fmqt_expect_nothing(c, 0, "after the live message");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(c, 1000);
}

/* Subscribes sent back to back, by two clients and by one, each get the
 * retained messages of their own filter and no other. */
static void back_to_back_subscribes_get_their_own_retained(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  fmqt_mqtt_pub_text(b, "r/a", "ra", 0, 1);
  fmqt_mqtt_pub_text(b, "r/b", "rb", 0, 1);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  int d = fmqt_fixture_connect(state);
  fmqt_send_subscribe(a, "r/a", 0, "a");
  fmqt_send_subscribe(bb, "r/b", 0, "b");
  fmqt_send_subscribe(d, "r/a", 0, "d1");
  fmqt_send_subscribe(d, "r/b", 0, "d2");

  fmqt_expect_subscribed(a, "r/a", 0, "a", T);
  fmqt_expect_message(a, "r/a", "ra", 0, 1, T);
  fmqt_expect_subscribed(bb, "r/b", 0, "b", T);
  fmqt_expect_message(bb, "r/b", "rb", 0, 1, T);
  /* d: each reply before its retained message; r/a's before r/b's. */
  int order[4] = {0}, k = 0;
  for (; k < 4; k++) {
    json_t *v = fmqt_expect(d, T, "subscribed and retained for d");
    const char *type = fmqt_json_str(v, "type");
    const char *id = fmqt_json_str(v, "id");
    if (type != NULL && strcmp(type, "subscribed") == 0 && id != NULL) {
      order[k] = strcmp(id, "d1") == 0 ? 1 : strcmp(id, "d2") == 0 ? 3 : 0;
    } else if (fmqt_is_message(v, "r/a")) {
      fmqt_assert_message(v, "r/a", "ra", 2, 0, 1);
      order[k] = 2;
    } else if (fmqt_is_message(v, "r/b")) {
      fmqt_assert_message(v, "r/b", "rb", 2, 0, 1);
      order[k] = 4;
    }
    if (order[k] == 0) {
      fail_msg("unexpected for d: %s", fmqt_dump(v));
    }
    json_decref(v);
  }
  /* Each subscribed comes before its own retained message. */
  int pos[5] = {0};
  for (int i = 0; i < 4; i++) {
    if (pos[order[i]] != 0) {
      fail_msg("d got something twice");
    }
    pos[order[i]] = i + 1;
  }
  assert_true(pos[1] < pos[2]);
  assert_true(pos[3] < pos[4]);

  int fds[] = {a, bb, d};
  for (int i = 0; i < 3; i++) {
    fmqt_expect_nothing(fds[i], i == 0 ? NO_COPY_MS : 0, "after the retained messages");
    fmqt_ws_close_cleanly(fds[i], 1000);
  }
}

/* When the highest QoS asked for a filter drops, the gateway changes the
 * broker subscription; that must not replay retained messages to anyone. */
static void qos_change_replays_nothing(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  fmqt_mqtt_pub_text(b, "q/x", "keep", 1, 1);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "q/x", 0, "a", 0);
  fmqt_expect_message(a, "q/x", "keep", 0, 1, T);
  fmqt_subscribe(bb, "q/x", 2, "b", 2);
  fmqt_expect_message(bb, "q/x", "keep", 1, 1, T);
  fmqt_expect_nothing(a, NO_COPY_MS, "the QoS 0 holder when a QoS 2 holder joined");

  size_t mark = fmqt_broker_log_mark(b);
  fmqt_unsubscribe(bb, "q/x", "b-un");
  char needle[128];
  snprintf(needle, sizeof needle, ": %s 0 q/x\n", fmqt_fixture_of(state)->client_id);
  /* The change reached the broker (81_fanout tests it too); then wait for
   * any replay. */
  assert_int_equal(fmqt_broker_wait_log(b, mark, needle, 1, T), 1);
  fmqt_expect_nothing(a, NO_COPY_MS, "the QoS 0 holder when the QoS 2 holder left");
  fmqt_expect_nothing(bb, 0, "the client that unsubscribed");

  fmqt_mqtt_pub_text(b, "q/x", "live", 1, 0);
  fmqt_expect_message(a, "q/x", "live", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after the live message");
  fmqt_expect_nothing(bb, 0, "the client that unsubscribed");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(bb, 1000);
}

#define WITH(fn, fx) cmocka_unit_test_prestate_setup_teardown(fn, fmqt_fixture_setup, \
                                                              fmqt_fixture_teardown, &fx)

int main(void) {
  const struct CMUnitTest tests[] = {
      WITH(retained_goes_to_a_new_holder_only, mqtt5),
      WITH(retained_goes_to_a_new_holder_only, mqtt311),
      WITH(late_joiner_on_an_overlapping_filter, mqtt5),
      WITH(late_joiner_on_an_overlapping_filter, mqtt311),
      WITH(back_to_back_subscribes_get_their_own_retained, mqtt5),
      WITH(back_to_back_subscribes_get_their_own_retained, mqtt311),
      WITH(qos_change_replays_nothing, mqtt5),
      WITH(qos_change_replays_nothing, mqtt311),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
