/* When a publish is acknowledged (protocol-v1 section 3): QoS 1 and 2 get
 * their puback only once the broker acknowledged the message, QoS 0 once it
 * was handed to the MQTT connection. The broker is frozen (SIGSTOP) to hold
 * its acknowledgement back; an independent mosquitto_sub checks delivery. */

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
#define FROZEN_MS 1000    /* no puback while the broker cannot answer */
#define QUIET_MS 500

static struct fmqt_fixture gateway;

/* Publishes count messages at qos with ids while the broker is frozen;
 * none is acknowledged until it thaws, then each exactly once, and the
 * observer gets each message exactly once. */
static void acknowledged_after_the_broker_answers(void **state, int qos, int count) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  char topic[32];
  snprintf(topic, sizeof topic, "qos/%d", qos);
  struct fmqt_sub obs;
  fmqt_sub_start(&obs, b, (const char *const[]){topic, NULL}, 2, "mqttv5");
  int fd = fmqt_fixture_connect(state);

  fmqt_broker_freeze(b);
  for (int i = 0; i < count; i++) {
    char id[16], text[32];
    snprintf(id, sizeof id, "p%d", i);
    snprintf(text, sizeof text, "frozen %d", i);
    fmqt_publish_text(fd, topic, text, qos, 0, id);
  }
  fmqt_expect_nothing(fd, FROZEN_MS, "publishes while the broker is frozen");
  assert_int_equal(fmqt_sub_wait(&obs, 1, 0), 0);
  fmqt_broker_thaw(b);

  int acked[16] = {0};
  assert_true(count <= 16);
  for (int i = 0; i < count; i++) {
    json_t *v = fmqt_expect(fd, T, "a puback after the broker thawed");
    const char *id = fmqt_json_str(v, "id");
    const char *type = fmqt_json_str(v, "type");
    int k = -1;
    if (type != NULL && strcmp(type, "puback") == 0 && id != NULL && id[0] == 'p') {
      k = id[1] - '0';
    }
    if (k < 0 || k >= count || acked[k] || json_object_size(v) != 2) {
      fail_msg("expected one puback per publish, got %s", fmqt_dump(v));
    }
    acked[k] = 1;
    json_decref(v);
  }
  fmqt_expect_nothing(fd, QUIET_MS, "after every puback");

  assert_int_equal(fmqt_sub_wait(&obs, (size_t)count, T), (size_t)count);
  assert_int_equal(fmqt_sub_wait(&obs, (size_t)count + 1, QUIET_MS), (size_t)count);
  struct fmqt_sub_msg *msgs;
  size_t n = fmqt_sub_messages(&obs, &msgs);
  for (int i = 0; i < count; i++) {
    char text[32];
    snprintf(text, sizeof text, "frozen %d", i);
    size_t found = 0;
    for (size_t m = 0; m < n; m++) {
      found += msgs[m].len == strlen(text) && memcmp(msgs[m].payload, text, msgs[m].len) == 0 &&
               msgs[m].qos == qos;
    }
    if (found != 1) {
      fail_msg("mosquitto_sub got \"%s\" at qos %d %zu times, want once", text, qos, found);
    }
  }
  fmqt_sub_msgs_free(msgs, n);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void qos1_puback_waits_for_the_broker(void **state) {
  acknowledged_after_the_broker_answers(state, 1, 1);
}

static void qos2_puback_waits_for_the_broker(void **state) {
  acknowledged_after_the_broker_answers(state, 2, 1);
}

static void several_qos1_publishes_in_flight(void **state) {
  acknowledged_after_the_broker_answers(state, 1, 5);
}

static void several_qos2_publishes_in_flight(void **state) {
  acknowledged_after_the_broker_answers(state, 2, 5);
}

/* QoS 0 is acknowledged once handed to the MQTT connection: the broker
 * being frozen does not hold it back. */
static void qos0_puback_does_not_wait_for_the_broker(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  struct fmqt_sub obs;
  fmqt_sub_start(&obs, b, (const char *const[]){"qos/0", NULL}, 2, "mqttv5");
  int fd = fmqt_fixture_connect(state);
  fmqt_broker_freeze(b);
  fmqt_publish_text(fd, "qos/0", "frozen", 0, 0, "q0");
  fmqt_expect_puback(fd, "q0", T);
  fmqt_expect_nothing(fd, QUIET_MS, "after the QoS 0 puback");
  fmqt_broker_thaw(b);
  assert_int_equal(fmqt_sub_wait(&obs, 1, T), 1);
  assert_int_equal(fmqt_sub_wait(&obs, 2, QUIET_MS), 1);
  struct fmqt_sub_msg *msgs;
  size_t n = fmqt_sub_messages(&obs, &msgs);
  assert_int_equal(msgs[0].qos, 0);
  assert_int_equal(msgs[0].len, 6);
  assert_memory_equal(msgs[0].payload, "frozen", 6);
  fmqt_sub_msgs_free(msgs, n);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

#define TEST(fn) cmocka_unit_test_prestate_setup_teardown(fn, fmqt_fixture_setup, \
                                                          fmqt_fixture_teardown, &gateway)

int main(void) {
  const struct CMUnitTest tests[] = {
      TEST(qos1_puback_waits_for_the_broker),
      TEST(qos2_puback_waits_for_the_broker),
      TEST(several_qos1_publishes_in_flight),
      TEST(several_qos2_publishes_in_flight),
      TEST(qos0_puback_does_not_wait_for_the_broker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
