/* Topic mappings (protocol-v1 section 6) against a real Mosquitto: the
 * front end of the issue served unchanged through
 * config/examples/sessions.yaml (subscribeSession, unsubscribeSession with
 * undoes, command, session-delete-key) and its reconnects; the field checks
 * that refuse a message before any MQTT action; delivery types (once per
 * client and type); a publish mapping without payload; --check-config on
 * mappings. What the gateway asked the broker is read from the broker's
 * log; what it published, from an independent mosquitto_sub. */

#include "bridge_client.h"
#include "broker_proc.h"
#include "config_fixture.h"
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

#define T 5000          /* a reply or message that must come */
#define QUIET_MS 300    /* "nothing else arrives" after an ordering proof */
#define RELEASE_MS 5000 /* the broker's UNSUBSCRIBE after the last holder left */
#define NO_COPY_MS 1000 /* an existing holder must not get a second retained copy */

#define SESSIONS_YAML FMQ_SOURCE_DIR "/config/examples/sessions.yaml"

/* Delivery types beside sessions.yaml's: two more mappings delivering
 * sessionEvent (one on the same filter, one on an overlapping one), one
 * without deliver_type, an unsubscribe with a topic, and a publish without
 * payload. */
static const char types_yaml_text[] =
    "mappings:\n"
    "  - type: subscribeSession\n"
    "    action: subscribe\n"
    "    topic: \"sessions/{sessionId}/#\"\n"
    "    deliver_type: sessionEvent\n"
    "  - type: followSession\n"
    "    action: subscribe\n"
    "    topic: \"sessions/{sessionId}/#\"\n"
    "    deliver_type: sessionEvent\n"
    "  - type: watchSession\n"
    "    action: subscribe\n"
    "    topic: \"sessions/{sessionId}/+\"\n"
    "    deliver_type: sessionEvent\n"
    "  - type: tailSession\n"
    "    action: subscribe\n"
    "    topic: \"sessions/{sessionId}/#\"\n"
    "  - type: unsubscribeSession\n"
    "    action: unsubscribe\n"
    "    undoes: subscribeSession\n"
    "  - type: dropSession\n"
    "    action: unsubscribe\n"
    "    topic: \"sessions/{sessionId}/#\"\n"
    "  - type: report\n"
    "    action: publish\n"
    "    topic: \"reports/{sessionId}\"\n"
    "    qos: 1\n";

static char dir[256];          /* the configurations --check-config reads */

static struct fmqt_fixture sessions5 = {.args = (const char *const[]){"-c", SESSIONS_YAML, NULL}};
static struct fmqt_fixture sessions311 = {
    .args = (const char *const[]){"-c", SESSIONS_YAML, NULL},
    .env = (const char *const[]){"FERRYMQ_BROKER_PROTOCOL=3.1.1", NULL}};
static struct fmqt_config_fixture types5 = {.yaml = types_yaml_text};
static struct fmqt_config_fixture types311 = {
    .fx = {.env = (const char *const[]){"FERRYMQ_BROKER_PROTOCOL=3.1.1", NULL}},
    .yaml = types_yaml_text};

/* --- helpers --- */

static const char *gw_id(void **state) {
  return fmqt_fixture_of(state)->client_id;
}

/* The number of `packet` packets (SUBSCRIBE, UNSUBSCRIBE, PUBLISH) the
 * broker received from the gateway since mark. */
/* Publishes come through the gateway's publishing connection, whose client
 * id is the gateway's plus "-pub". */
static size_t gateway_packets(void **state, size_t mark, const char *packet) {
  char needle[160];
  snprintf(needle, sizeof needle, "Received %s from %s%s", packet, gw_id(state),
           strcmp(packet, "PUBLISH") == 0 ? "-pub (" : "\n");
  return fmqt_broker_log_count_since(fmqt_fixture_broker(state), mark, needle);
}

static void assert_no_packets(void **state, size_t mark, const char *packet, const char *when) {
  size_t n = gateway_packets(state, mark, packet);
  if (n != 0) {
    fmqt_broker_print_log(fmqt_fixture_broker(state), mark, when);
    fail_msg("%s: the gateway sent the broker %zu %s packets, want none", when, n, packet);
  }
}

/* Waits until the broker was unsubscribed from filter since mark, once. */
static void assert_released(void **state, size_t mark, const char *filter, const char *when) {
  char needle[256];
  snprintf(needle, sizeof needle, ": %s %s\n", gw_id(state), filter);
  size_t n = fmqt_broker_wait_log(fmqt_fixture_broker(state), mark, needle, 1, RELEASE_MS);
  if (n != 1) {
    fmqt_broker_print_log(fmqt_fixture_broker(state), mark, when);
    fail_msg("%s: %zu UNSUBSCRIBEs of %s within %d ms, want 1", when, n, filter, RELEASE_MS);
  }
}

static void assert_still_subscribed(void **state, size_t mark, const char *filter,
                                    const char *when) {
  if (fmqt_broker_unsubscribes_since(fmqt_fixture_broker(state), mark, gw_id(state), filter) !=
      0) {
    fmqt_broker_print_log(fmqt_fixture_broker(state), mark, when);
    fail_msg("%s: the broker was unsubscribed from %s while a client still holds it", when,
             filter);
  }
}

/* Sends {"type":type,"sessionId":"<session>"} (plus "id" unless NULL), as
 * the front end does. */
static void send_session(int fd, const char *type, const char *session, const char *id) {
  if (id != NULL) {
    fmqt_sendf(fd, "{\"type\":\"%s\",\"sessionId\":\"%s\",\"id\":\"%s\"}", type, session, id);
  } else {
    fmqt_sendf(fd, "{\"type\":\"%s\",\"sessionId\":\"%s\"}", type, session);
  }
}

/* subscribeSession (or another subscribe mapping) and its reply with the
 * filled-in filter at QoS 0. */
static void subscribe_session(int fd, const char *type, const char *session, const char *id,
                              const char *want_filter) {
  send_session(fd, type, session, id);
  fmqt_expect_subscribed(fd, want_filter, 0, id, T);
}

/* Expects nothing on fd but the control message that ctl_topic carries:
 * a message published to the broker before it would have come first. */
static void expect_only_control(void **state, int fd, const char *ctl_topic, const char *what) {
  fmqt_mqtt_pub_text(fmqt_fixture_broker(state), ctl_topic, "ctl", 0, 0);
  json_t *v = fmqt_expect(fd, T, what);
  if (!fmqt_is_message(v, ctl_topic)) {
    fail_msg("%s: expected only the control message on %s, got %s", what, ctl_topic,
             fmqt_dump(v));
  }
  json_decref(v);
}

/* Starts an independent mosquitto_sub (MQTT 5, QoS 2) on filter. */
static void observe(struct fmqt_sub *s, void **state, const char *filter) {
  fmqt_sub_start(s, fmqt_fixture_broker(state), (const char *const[]){filter, NULL}, 2,
                 "mqttv5");
}

/* v's string member key, "" when absent. */
static const char *str_of(const json_t *v, const char *key) {
  const char *s = fmqt_json_str(v, key);
  return s != NULL ? s : "";
}

static const char *const message_and_event[] = {"message", "sessionEvent"};

/* --- the front end of the issue, through sessions.yaml --- */

/* subscribeSession as the front end sends it (no id) and with an id; a
 * message of its session arrives as sessionEvent, another session's does
 * not. */
static void subscribe_session_streams_that_session_only(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int c = fmqt_fixture_connect(state);
  subscribe_session(a, "subscribeSession", "42", NULL, "sessions/42/#");
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, gw_id(state), "sessions/42/#", 0), 1);
  subscribe_session(c, "subscribeSession", "42", "s-c", "sessions/42/#");

  /* 7's message first: had it been delivered it would come before 42's. */
  fmqt_mqtt_pub_text(b, "sessions/7/state", "seven", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "{\"state\":\"running\"}", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/log/line", "deep", 1, 0);
  int fds[] = {a, c};
  for (int i = 0; i < 2; i++) {
    fmqt_expect_typed_message(fds[i], "sessionEvent", "sessions/42/state",
                              "{\"state\":\"running\"}", 0, 0, T);
    /* The mapping subscribed at QoS 0. */
    fmqt_expect_typed_message(fds[i], "sessionEvent", "sessions/42/log/line", "deep", 0, 0, T);
  }
  fmqt_expect_nothing(a, QUIET_MS, "after the session's messages");
  fmqt_expect_nothing(c, 0, "after the session's messages");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(c, 1000);
}

/* command and session-delete-key reach the broker at QoS 1 with the
 * configured field as payload; a puback only for a message with an id. */
static void commands_reach_the_broker(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "sessions/#");
  int a = fmqt_fixture_connect(state);

  fmqt_sendf(a, "{\"type\":\"command\",\"sessionId\":\"42\",\"command\":\"restart\"}");
  /* No id: no reply, so the pong is next. */
  fmqt_ws_assert_json_ping(a, "p1", T);
  fmqt_sendf(a, "{\"type\":\"command\",\"sessionId\":\"42\",\"command\":\"stop\",\"id\":\"c2\"}");
  fmqt_expect_puback(a, "c2", T);
  fmqt_sendf(a, "{\"type\":\"session-delete-key\",\"sessionId\":\"42\",\"key\":\"k\"}");
  fmqt_ws_assert_json_ping(a, "p2", T);
  fmqt_sendf(a, "{\"type\":\"session-delete-key\",\"sessionId\":\"42\",\"key\":\"k2\","
                "\"id\":\"d2\"}");
  fmqt_expect_puback(a, "d2", T);
  /* A non-string field: its compact JSON text. */
  fmqt_sendf(a, "{\"type\":\"command\",\"sessionId\":\"42\",\"command\": { \"a\" : 1 },"
                "\"id\":\"c3\"}");
  fmqt_expect_puback(a, "c3", T);
  /* A number fills the topic too; a numeric id is echoed as a number. */
  fmqt_sendf(a, "{\"type\":\"command\",\"sessionId\":42,\"command\":\"ping\",\"id\":17}");
  json_t *v = fmqt_expect(a, T, "puback for a numeric id");
  if (strcmp(str_of(v, "type"), "puback") != 0 ||
      !json_is_integer(json_object_get(v, "id")) ||
      json_integer_value(json_object_get(v, "id")) != 17) {
    fail_msg("expected {\"type\":\"puback\",\"id\":17}, got %s", fmqt_dump(v));
  }
  json_decref(v);

  const struct fmqt_sub_want want[] = {
      {"sessions/42/commands", "restart", 1, 0},   {"sessions/42/commands", "stop", 1, 0},
      {"sessions/42/delete-key", "k", 1, 0},       {"sessions/42/delete-key", "k2", 1, 0},
      {"sessions/42/commands", "{\"a\":1}", 1, 0}, {"sessions/42/commands", "ping", 1, 0},
  };
  fmqt_sub_expect(&obs, want, sizeof want / sizeof want[0], T);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(a, 1000);
}

/* unsubscribeSession (no id) drops every session this client subscribed
 * through subscribeSession, each listed once, and nothing else: not the
 * client's plain subscriptions, not another client's sessions. */
static void unsubscribe_session_drops_every_session_of_the_client(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  subscribe_session(a, "subscribeSession", "42", "a1", "sessions/42/#");
  subscribe_session(a, "subscribeSession", "7", "a2", "sessions/7/#");
  subscribe_session(a, "subscribeSession", "42", "a3", "sessions/42/#");
  fmqt_subscribe(a, "ctl/a", 0, "a-ctl", 0);
  subscribe_session(bb, "subscribeSession", "42", "b1", "sessions/42/#");
  fmqt_subscribe(bb, "ctl/b", 0, "b-ctl", 0);

  size_t mark = fmqt_broker_log_mark(b);
  fmqt_sendf(a, "{\"type\":\"unsubscribeSession\"}");
  fmqt_expect_unsubscribed_topics(a, (const char *const[]){"sessions/42/#", "sessions/7/#"}, 2,
                                  NULL, T);
  assert_released(state, mark, "sessions/7/#", "after unsubscribeSession");

  fmqt_mqtt_pub_text(b, "sessions/42/state", "after", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/7/state", "after7", 0, 0);
  expect_only_control(state, a, "ctl/a", "the client after its unsubscribeSession");
  fmqt_expect_typed_message(bb, "sessionEvent", "sessions/42/state", "after", 0, 0, T);
  expect_only_control(state, bb, "ctl/b", "the other client after the first's unsubscribeSession");
  assert_still_subscribed(state, mark, "sessions/42/#", "the other client still holds 42");

  fmqt_sendf(a, "{\"type\":\"unsubscribeSession\",\"id\":\"u2\"}");
  fmqt_expect_unsubscribed_topics(a, NULL, 0, "u2", T);

  fmqt_sendf(bb, "{\"type\":\"unsubscribeSession\",\"id\":7}");
  json_t *v = fmqt_expect(bb, T, "unsubscribeSession with a numeric id");
  json_t *topics = json_object_get(v, "topics");
  if (strcmp(str_of(v, "type"), "unsubscribed") != 0 ||
      json_integer_value(json_object_get(v, "id")) != 7 || json_array_size(topics) != 1 ||
      !json_is_string(json_array_get(topics, 0)) ||
      strcmp(json_string_value(json_array_get(topics, 0)), "sessions/42/#") != 0) {
    fail_msg("expected {\"type\":\"unsubscribed\",\"topics\":[\"sessions/42/#\"],\"id\":7}, "
             "got %s", fmqt_dump(v));
  }
  json_decref(v);
  assert_released(state, mark, "sessions/42/#", "after the last holder's unsubscribeSession");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "nobody", 0, 0);
  expect_only_control(state, bb, "ctl/b", "the last holder after its unsubscribeSession");
  fmqt_expect_nothing(a, QUIET_MS, "after both unsubscribed");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(bb, 1000);
}

/* The front end reconnects whenever its connection drops (here: a TCP
 * reset, no close frame) and sends subscribeSession again. */
static void front_end_reconnecting_gets_its_stream_again(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  subscribe_session(a, "subscribeSession", "42", NULL, "sessions/42/#");
  subscribe_session(a, "subscribeSession", "7", NULL, "sessions/7/#");
  subscribe_session(bb, "subscribeSession", "42", NULL, "sessions/42/#");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "m1", 0, 0);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/state", "m1", 0, 0, T);
  fmqt_expect_typed_message(bb, "sessionEvent", "sessions/42/state", "m1", 0, 0, T);

  /* One of two drops: the other keeps its stream. */
  int fds = fmqt_gateway_fd_count(gw);
  size_t mark = fmqt_broker_log_mark(b);
  fmqt_abort(a);
  assert_int_equal(fmqt_gateway_wait_fd_count(gw, fds - 1, T), fds - 1);
  /* Its mapped subscriptions went with it: 7 had no other holder. */
  assert_released(state, mark, "sessions/7/#", "after the only holder of session 7 dropped");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "m2", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "m2b", 0, 0);
  fmqt_expect_typed_message(bb, "sessionEvent", "sessions/42/state", "m2", 0, 0, T);
  fmqt_expect_typed_message(bb, "sessionEvent", "sessions/42/state", "m2b", 0, 0, T);
  assert_still_subscribed(state, mark, "sessions/42/#", "after one of two holders dropped");

  /* It comes back. */
  a = fmqt_fixture_connect(state);
  subscribe_session(a, "subscribeSession", "42", NULL, "sessions/42/#");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "m3", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "m4", 0, 0);
  int both[] = {a, bb};
  for (int i = 0; i < 2; i++) {
    fmqt_expect_typed_message(both[i], "sessionEvent", "sessions/42/state", "m3", 0, 0, T);
    fmqt_expect_typed_message(both[i], "sessionEvent", "sessions/42/state", "m4", 0, 0, T);
  }
  fmqt_expect_nothing(a, QUIET_MS, "the reconnected client after m4");
  fmqt_expect_nothing(bb, 0, "the other client after m4");

  /* Both drop; the front end is back at once, racing the release of the
   * filter (its UNSUBSCRIBE may be in flight). */
  fmqt_abort(a);
  fmqt_abort(bb);
  a = fmqt_fixture_connect(state);
  subscribe_session(a, "subscribeSession", "42", NULL, "sessions/42/#");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "m5", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "m6", 0, 0);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/state", "m5", 0, 0, T);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/state", "m6", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "the client back after both dropped");
  fmqt_ws_close_cleanly(a, 1000);
}

/* The front end gets its session's retained state with every
 * subscribeSession, the reconnect's included, as a sessionEvent with retain
 * true; clients already holding the session get no second copy. */
static void retained_state_comes_with_every_subscribe_session(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  fmqt_mqtt_pub_text(b, "sessions/42/config", "cfg", 1, 1);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  subscribe_session(a, "subscribeSession", "42", NULL, "sessions/42/#");
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/config", "cfg", 0, 1, T);
  subscribe_session(bb, "subscribeSession", "42", NULL, "sessions/42/#");
  fmqt_expect_typed_message(bb, "sessionEvent", "sessions/42/config", "cfg", 0, 1, T);
  fmqt_expect_nothing(a, NO_COPY_MS, "the first holder when a second subscribed");

  fmqt_abort(a);
  a = fmqt_fixture_connect(state);
  subscribe_session(a, "subscribeSession", "42", NULL, "sessions/42/#");
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/config", "cfg", 0, 1, T);
  /* A plain subscription of the same filter: the retained state once more,
   * as "message" only. */
  fmqt_subscribe(a, "sessions/42/#", 0, "plain", 0);
  fmqt_expect_message(a, "sessions/42/config", "cfg", 0, 1, T);
  fmqt_expect_nothing(a, NO_COPY_MS, "after the plain subscription's retained message");
  fmqt_expect_nothing(bb, 0, "the other holder while the first came back");

  fmqt_mqtt_pub_text(b, "sessions/42/config", "live", 0, 0);
  fmqt_expect_typed_messages_any_order(a, message_and_event, 2, "sessions/42/config", "live", 0,
                                       0, T);
  fmqt_expect_typed_message(bb, "sessionEvent", "sessions/42/config", "live", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after the live message");
  fmqt_expect_nothing(bb, 0, "after the live message");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(bb, 1000);
}

/* The user switches sessions faster than the broker answers: an
 * unsubscribeSession while the SUBACK is outstanding answers the subscribe
 * first, lists the session, and leaves no subscription behind. */
static void unsubscribe_session_before_the_suback(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "ctl/a", 0, NULL, 0);
  size_t mark = fmqt_broker_log_mark(b);
  fmqt_broker_freeze(b);
  send_session(a, "subscribeSession", "42", "s");
  fmqt_sendf(a, "{\"type\":\"unsubscribeSession\",\"id\":\"u\"}");
  fmqt_expect_subscribed(a, "sessions/42/#", 0, "s", T);
  fmqt_expect_unsubscribed_topics(a, (const char *const[]){"sessions/42/#"}, 1, "u", T);
  fmqt_broker_thaw(b);
  /* Answered after anything the gateway sent before it. */
  fmqt_subscribe(a, "ctl/b", 0, NULL, 0);
  if (fmqt_broker_subscribes_since(b, mark, gw_id(state), "sessions/42/#", -1) > 0) {
    assert_released(state, mark, "sessions/42/#", "after unsubscribeSession before the SUBACK");
  }
  fmqt_mqtt_pub_text(b, "sessions/42/state", "late", 0, 0);
  expect_only_control(state, a, "ctl/a", "after unsubscribeSession before the SUBACK");
  /* And the session can be subscribed again. */
  subscribe_session(a, "subscribeSession", "42", "s2", "sessions/42/#");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "again", 0, 0);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/state", "again", 0, 0, T);
  fmqt_ws_close_cleanly(a, 1000);
}

/* sessionId values a template must refuse (protocol-v1 section 6), as JSON
 * members; an empty string: the member is missing. */
static const char *const bad_session_ids[] = {
    "",
    ",\"sessionId\":\"\"",
    ",\"sessionId\":\"a/b\"",
    ",\"sessionId\":\"+\"",
    ",\"sessionId\":\"#\"",
    ",\"sessionId\":\"x\\u0000y\"",
    ",\"sessionId\":\"4+2\"",
    ",\"sessionId\":true",
    ",\"sessionId\":false",
    ",\"sessionId\":null",
    ",\"sessionId\":{\"id\":\"42\"}",
    ",\"sessionId\":[\"42\"]",
};
#define NBAD (sizeof bad_session_ids / sizeof bad_session_ids[0])

/* Each refused subscribeSession is a bad_request with its id and no
 * SUBSCRIBE; a number is allowed. */
static void refused_subscribe_session_subscribes_nothing(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  size_t mark = fmqt_broker_log_mark(b);
  for (size_t i = 0; i < NBAD; i++) {
    char id[16], what[160];
    snprintf(id, sizeof id, "r%zu", i);
    snprintf(what, sizeof what, "subscribeSession with sessionId member '%s'", bad_session_ids[i]);
    fmqt_sendf(a, "{\"type\":\"subscribeSession\"%s,\"id\":\"%s\"}", bad_session_ids[i], id);
    fmqt_expect_error(a, "bad_request", id, T, what);
  }
  assert_no_packets(state, mark, "SUBSCRIBE", "after refused subscribeSession messages");

  fmqt_sendf(a, "{\"type\":\"subscribeSession\",\"sessionId\":42,\"id\":\"ok\"}");
  fmqt_expect_subscribed(a, "sessions/42/#", 0, "ok", T);
  assert_int_equal(gateway_packets(state, mark, "SUBSCRIBE"), 1);
  assert_int_equal(fmqt_broker_subscribes_since(b, mark, gw_id(state), "sessions/42/#", 0), 1);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "numeric", 0, 0);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/state", "numeric", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after the numeric session's message");
  fmqt_ws_close_cleanly(a, 1000);
}

/* Each refused command or session-delete-key is a bad_request with its id
 * and publishes nothing. */
static void refused_commands_publish_nothing(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "sessions/#");
  int a = fmqt_fixture_connect(state);
  size_t mark = fmqt_broker_log_mark(fmqt_fixture_broker(state));
  char what[160];
  for (size_t i = 0; i < NBAD; i++) {
    char id[16];
    snprintf(id, sizeof id, "c%zu", i);
    snprintf(what, sizeof what, "command with sessionId member '%s'", bad_session_ids[i]);
    fmqt_sendf(a, "{\"type\":\"command\"%s,\"command\":\"restart\",\"id\":\"%s\"}",
               bad_session_ids[i], id);
    fmqt_expect_error(a, "bad_request", id, T, what);
    snprintf(id, sizeof id, "d%zu", i);
    snprintf(what, sizeof what, "session-delete-key with sessionId member '%s'",
             bad_session_ids[i]);
    fmqt_sendf(a, "{\"type\":\"session-delete-key\"%s,\"key\":\"k\",\"id\":\"%s\"}",
               bad_session_ids[i], id);
    fmqt_expect_error(a, "bad_request", id, T, what);
  }
  fmqt_sendf(a, "{\"type\":\"command\",\"sessionId\":\"42\",\"id\":\"no-command\"}");
  fmqt_expect_error(a, "bad_request", "no-command", T, "command without \"command\"");
  fmqt_sendf(a, "{\"type\":\"session-delete-key\",\"sessionId\":\"42\",\"id\":\"no-key\"}");
  fmqt_expect_error(a, "bad_request", "no-key", T, "session-delete-key without \"key\"");
  assert_no_packets(state, mark, "PUBLISH", "after refused commands");

  fmqt_sendf(a, "{\"type\":\"command\",\"sessionId\":\"42\",\"command\":\"go\",\"id\":\"ok\"}");
  fmqt_expect_puback(a, "ok", T);
  const struct fmqt_sub_want want[] = {{"sessions/42/commands", "go", 1, 0}};
  fmqt_sub_expect(&obs, want, 1, T);
  assert_int_equal(gateway_packets(state, mark, "PUBLISH"), 1);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(a, 1000);
}

/* Types no mapping names are still unknown_type (and subscribe nothing);
 * the built-in types work beside the mappings. */
static void unmapped_types_refused_and_builtins_work(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  size_t mark = fmqt_broker_log_mark(b);
  fmqt_sendf(a, "{\"type\":\"subscribeSessions\",\"sessionId\":\"42\",\"id\":\"x1\"}");
  fmqt_expect_error(a, "unknown_type", "x1", T, "a type no mapping names");
  fmqt_sendf(a, "{\"type\":\"SubscribeSession\",\"sessionId\":\"42\",\"id\":\"x2\"}");
  fmqt_expect_error(a, "unknown_type", "x2", T, "a mapping's type in another case");
  fmqt_sendf(a, "{\"type\":\"sessionEvent\",\"sessionId\":\"42\",\"id\":\"x3\"}");
  fmqt_expect_error(a, "unknown_type", "x3", T, "a deliver_type sent as a message type");
  assert_no_packets(state, mark, "SUBSCRIBE", "after unknown types");

  fmqt_ws_assert_json_ping(a, "p", T);
  fmqt_subscribe(a, "sessions/42/state", 1, "plain", 1);
  fmqt_publish_text(a, "sessions/42/state", "plain text", 0, 0, NULL);
  fmqt_expect_message(a, "sessions/42/state", "plain text", 0, 0, T);
  fmqt_unsubscribe(a, "sessions/42/state", "plain-un");
  assert_released(state, mark, "sessions/42/state", "after a plain unsubscribe");
  fmqt_ws_close_cleanly(a, 1000);
}

/* A plain subscribe and subscribeSession on the same filter: each message
 * once per type; clients holding only one of them get that type only; the
 * plain one survives unsubscribeSession. */
static void plain_and_mapped_deliver_once_per_type(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int both = fmqt_fixture_connect(state);
  int mapped = fmqt_fixture_connect(state);
  int plain = fmqt_fixture_connect(state);
  /* Overlapping filters: a plain one made before sessions/42/# (on MQTT 5
   * a lower subscription identifier) and one made after (a higher one);
   * each type takes its copy through its own filters. */
  int lower = fmqt_fixture_connect(state);
  int higher = fmqt_fixture_connect(state);
  fmqt_subscribe(lower, "sessions/+/state", 0, NULL, 0);
  fmqt_subscribe(both, "sessions/42/#", 0, "p", 0);
  subscribe_session(both, "subscribeSession", "42", "m", "sessions/42/#");
  subscribe_session(mapped, "subscribeSession", "42", NULL, "sessions/42/#");
  fmqt_subscribe(plain, "sessions/42/#", 0, NULL, 0);
  subscribe_session(lower, "subscribeSession", "42", NULL, "sessions/42/#");
  subscribe_session(higher, "subscribeSession", "42", NULL, "sessions/42/#");
  fmqt_subscribe(higher, "sessions/42/+", 0, NULL, 0);

  const char *const texts[] = {"one", "two"};
  for (int i = 0; i < 2; i++) {
    fmqt_mqtt_pub_text(b, "sessions/42/state", texts[i], 0, 0);
  }
  for (int i = 0; i < 2; i++) {
    /* Both copies of "one" before any of "two". */
    fmqt_expect_typed_messages_any_order(both, message_and_event, 2, "sessions/42/state",
                                         texts[i], 0, 0, T);
    fmqt_expect_typed_message(mapped, "sessionEvent", "sessions/42/state", texts[i], 0, 0, T);
    fmqt_expect_message(plain, "sessions/42/state", texts[i], 0, 0, T);
    fmqt_expect_typed_messages_any_order(lower, message_and_event, 2, "sessions/42/state",
                                         texts[i], 0, 0, T);
    fmqt_expect_typed_messages_any_order(higher, message_and_event, 2, "sessions/42/state",
                                         texts[i], 0, 0, T);
  }
  int fds[] = {both, mapped, plain, lower, higher};
  for (int i = 0; i < 5; i++) {
    fmqt_expect_nothing(fds[i], i == 0 ? QUIET_MS : 0, "after two messages");
  }
  fmqt_ws_close_cleanly(lower, 1000);
  fmqt_ws_close_cleanly(higher, 1000);

  fmqt_sendf(both, "{\"type\":\"unsubscribeSession\"}");
  fmqt_expect_unsubscribed_topics(both, (const char *const[]){"sessions/42/#"}, 1, NULL, T);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "three", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "four", 0, 0);
  fmqt_expect_message(both, "sessions/42/state", "three", 0, 0, T);
  fmqt_expect_message(both, "sessions/42/state", "four", 0, 0, T);
  fmqt_expect_nothing(both, QUIET_MS, "the plain subscription after unsubscribeSession");
  fmqt_ws_close_cleanly(both, 1000);
  fmqt_ws_close_cleanly(mapped, 1000);
  fmqt_ws_close_cleanly(plain, 1000);
}

/* --- delivery types, with types_yaml --- */

/* Three subscribe mappings delivering sessionEvent (two on one filter, one
 * on an overlapping filter): once. undoes drops only its own mapping's. */
static void same_deliver_type_delivers_once(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  subscribe_session(a, "subscribeSession", "42", "s", "sessions/42/#");
  subscribe_session(a, "followSession", "42", "f", "sessions/42/#");
  subscribe_session(a, "watchSession", "42", "w", "sessions/42/+");

  fmqt_mqtt_pub_text(b, "sessions/42/state", "one", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/a/b", "deep", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "two", 0, 0);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/state", "one", 0, 0, T);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/a/b", "deep", 0, 0, T);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/state", "two", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "three mappings of one deliver_type");

  fmqt_sendf(a, "{\"type\":\"unsubscribeSession\",\"id\":\"u\"}");
  fmqt_expect_unsubscribed_topics(a, (const char *const[]){"sessions/42/#"}, 1, "u", T);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "three", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/a/b", "deep2", 0, 0);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/state", "three", 0, 0, T);
  fmqt_expect_typed_message(a, "sessionEvent", "sessions/42/a/b", "deep2", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "the other mappings after unsubscribeSession");
  fmqt_ws_close_cleanly(a, 1000);
}

/* A subscribe mapping without deliver_type delivers "message": with plain
 * subscriptions on the same and an overlapping filter, once. */
static void mapping_without_deliver_type_shares_message(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  subscribe_session(a, "tailSession", "42", "t", "sessions/42/#");
  fmqt_subscribe(a, "sessions/42/#", 0, "p1", 0);
  fmqt_subscribe(a, "sessions/42/+", 0, "p2", 0);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "one", 0, 0);
  fmqt_mqtt_pub_text(b, "sessions/42/state", "two", 0, 0);
  fmqt_expect_message(a, "sessions/42/state", "one", 0, 0, T);
  fmqt_expect_message(a, "sessions/42/state", "two", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "a mapping without deliver_type and plain subscriptions");
  fmqt_ws_close_cleanly(a, 1000);
}

/* A plain unsubscribe drops the filter from every origin; so does an
 * unsubscribe mapping with a topic. */
static void unsubscribe_drops_every_origin(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "ctl/a", 0, NULL, 0);
  fmqt_subscribe(a, "sessions/42/#", 0, "p", 0);
  subscribe_session(a, "subscribeSession", "42", "s", "sessions/42/#");
  subscribe_session(a, "tailSession", "42", "t", "sessions/42/#");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "one", 0, 0);
  fmqt_expect_typed_messages_any_order(a, message_and_event, 2, "sessions/42/state", "one", 0, 0,
                                       T);

  size_t mark = fmqt_broker_log_mark(b);
  fmqt_unsubscribe(a, "sessions/42/#", "un");
  assert_released(state, mark, "sessions/42/#", "after a plain unsubscribe");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "gone", 0, 0);
  expect_only_control(state, a, "ctl/a", "after a plain unsubscribe of every origin's filter");
  /* The mapped hold went with it. */
  fmqt_sendf(a, "{\"type\":\"unsubscribeSession\",\"id\":\"u\"}");
  fmqt_expect_unsubscribed_topics(a, NULL, 0, "u", T);

  /* An unsubscribe mapping with a topic: the filled-in topic, every origin;
   * a refused one unsubscribes nothing. */
  subscribe_session(a, "subscribeSession", "42", "s2", "sessions/42/#");
  subscribe_session(a, "tailSession", "42", "t2", "sessions/42/#");
  mark = fmqt_broker_log_mark(b);
  fmqt_sendf(a, "{\"type\":\"dropSession\",\"sessionId\":\"+\",\"id\":\"bad\"}");
  fmqt_expect_error(a, "bad_request", "bad", T, "dropSession with sessionId \"+\"");
  assert_no_packets(state, mark, "UNSUBSCRIBE", "after a refused dropSession");
  send_session(a, "dropSession", "42", "d");
  json_t *v = fmqt_expect(a, T, "dropSession");
  if (strcmp(str_of(v, "type"), "unsubscribed") != 0 ||
      strcmp(str_of(v, "topic"), "sessions/42/#") != 0) {
    fail_msg("expected {\"type\":\"unsubscribed\",\"topic\":\"sessions/42/#\",\"id\":\"d\"}, "
             "got %s", fmqt_dump(v));
  }
  fmqt_assert_id(v, "d", "dropSession");
  json_decref(v);
  assert_released(state, mark, "sessions/42/#", "after dropSession");
  fmqt_mqtt_pub_text(b, "sessions/42/state", "gone2", 0, 0);
  expect_only_control(state, a, "ctl/a", "after dropSession");
  fmqt_ws_close_cleanly(a, 1000);
}

/* A publish mapping without payload publishes the message's text exactly
 * as the client sent it (spacing, escapes and member order kept). */
static void publish_without_payload_sends_the_message_as_sent(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "reports/#");
  int a = fmqt_fixture_connect(state);
  const char *first =
      "{ \"type\" : \"report\",  \"sessionId\":\"42\",\n \"data\": {\"b\":2, \"a\":[1, 2.50]},"
      " \"note\":\"\\u00e9\\/x\" }";
  const char *second = "{\"id\":\"r1\",\"sessionId\":7,\"type\":\"report\",\"v\":\"\xc3\xa9\"}";
  fmqt_ws_send_text(a, first);
  fmqt_ws_assert_json_ping(a, "p", T);
  fmqt_sendf(a, "{\"type\":\"report\",\"sessionId\":\"a/b\",\"id\":\"bad\"}");
  fmqt_expect_error(a, "bad_request", "bad", T, "report with sessionId \"a/b\"");
  fmqt_ws_send_text(a, second);
  fmqt_expect_puback(a, "r1", T);
  const struct fmqt_sub_want want[] = {{"reports/42", first, 1, 0}, {"reports/7", second, 1, 0}};
  fmqt_sub_expect(&obs, want, 2, T);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(a, 1000);
}

/* --- --check-config --- */

/* Writes text to dir/name and runs --check-config on it; returns the exit
 * status, the output in out. */
static int check_config(const char *name, const char *text, char *path, size_t path_cap,
                        char *out, size_t cap) {
  snprintf(path, path_cap, "%s/%s", dir, name);
  if (text != NULL) {
    fmqt_write_file(path, text, strlen(text));
  }
  return fmqt_run_binary((const char *const[]){"--check-config", "-c", path, NULL}, NULL, out,
                         cap, 10000);
}

static void check_config_accepts_the_examples(void **state) {
  (void)state;
  char out[4096];
  int status = fmqt_run_binary(
      (const char *const[]){"--check-config", "-c", SESSIONS_YAML, NULL}, NULL, out, sizeof out,
      10000);
  if (status != 0) {
    fail_msg("--check-config %s exited %d: %s", SESSIONS_YAML, status, out);
  }
  char path[400];
  status = check_config("types.yaml", types_yaml_text, path, sizeof path, out, sizeof out);
  if (status != 0) {
    fail_msg("--check-config %s exited %d: %s", path, status, out);
  }
}

/* Each configuration has one mapping error on the line given. */
static const struct {
  const char *name;
  int line;
  const char *text;
} bad_configs[] = {
    {"undoes-unknown.yaml", 7,
     "mappings:\n"
     "  - type: subscribeSession\n"
     "    action: subscribe\n"
     "    topic: \"sessions/{sessionId}/#\"\n"
     "  - type: unsubscribeSession\n"
     "    action: unsubscribe\n"
     "    undoes: subscribeSessions\n"},
    {"undoes-publish.yaml", 11,
     "mappings:\n"
     "  - type: subscribeSession\n"
     "    action: subscribe\n"
     "    topic: \"sessions/{sessionId}/#\"\n"
     "  - type: command\n"
     "    action: publish\n"
     "    topic: \"sessions/{sessionId}/commands\"\n"
     "    payload: \"{command}\"\n"
     "  - type: unsubscribeSession\n"
     "    action: unsubscribe\n"
     "    undoes: command\n"},
    {"template-open.yaml", 4,
     "mappings:\n"
     "  - type: subscribeSession\n"
     "    action: subscribe\n"
     "    topic: \"sessions/{sessionId/#\"\n"},
    {"action-unknown.yaml", 3,
     "mappings:\n"
     "  - type: subscribeSession\n"
     "    action: subscribes\n"
     "    topic: \"sessions/{sessionId}/#\"\n"},
    {"type-twice.yaml", 5,
     "mappings:\n"
     "  - type: subscribeSession\n"
     "    action: subscribe\n"
     "    topic: \"sessions/{sessionId}/#\"\n"
     "  - type: subscribeSession\n"
     "    action: subscribe\n"
     "    topic: \"other/{sessionId}/#\"\n"},
    {"type-builtin.yaml", 2,
     "mappings:\n"
     "  - type: publish\n"
     "    action: publish\n"
     "    topic: \"sessions/{sessionId}\"\n"},
    {"publish-wildcard.yaml", 4,
     "mappings:\n"
     "  - type: command\n"
     "    action: publish\n"
     "    topic: \"sessions/{sessionId}/#\"\n"},
    {"deliver-type-publish.yaml", 5,
     "mappings:\n"
     "  - type: command\n"
     "    action: publish\n"
     "    topic: \"sessions/{sessionId}/commands\"\n"
     "    deliver_type: sessionEvent\n"},
};

static void check_config_locates_mapping_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
    char path[400], out[4096], want[420];
    int status = check_config(bad_configs[i].name, bad_configs[i].text, path, sizeof path, out,
                              sizeof out);
    snprintf(want, sizeof want, "%s:%d: ", path, bad_configs[i].line);
    if (status != 1 || strstr(out, want) == NULL) {
      fail_msg("--check-config %s: exit %d, want 1 and \"%s\"; output: %s", bad_configs[i].name,
               status, want, out);
    }
  }
}

/* --- main --- */

static int group_setup(void **state) {
  (void)state;
  fmqt_make_temp_dir(dir, sizeof dir, "mappings");
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  fmqt_remove_temp_dir(dir);
  return 0;
}

#define WITH(fn, fx) cmocka_unit_test_prestate_setup_teardown(fn, fmqt_fixture_setup, \
                                                              fmqt_fixture_teardown, &fx)
#define WITH_YAML(fn, cf)                                                                 \
  cmocka_unit_test_prestate_setup_teardown(fn, fmqt_config_fixture_setup,                \
                                           fmqt_config_fixture_teardown, &cf)

int main(void) {
  const struct CMUnitTest tests[] = {
      WITH(subscribe_session_streams_that_session_only, sessions5),
      WITH(commands_reach_the_broker, sessions5),
      WITH(unsubscribe_session_drops_every_session_of_the_client, sessions5),
      WITH(front_end_reconnecting_gets_its_stream_again, sessions5),
      WITH(retained_state_comes_with_every_subscribe_session, sessions5),
      WITH(retained_state_comes_with_every_subscribe_session, sessions311),
      WITH(unsubscribe_session_before_the_suback, sessions5),
      WITH(refused_subscribe_session_subscribes_nothing, sessions5),
      WITH(refused_commands_publish_nothing, sessions5),
      WITH(unmapped_types_refused_and_builtins_work, sessions5),
      WITH(plain_and_mapped_deliver_once_per_type, sessions5),
      WITH(plain_and_mapped_deliver_once_per_type, sessions311),
      WITH_YAML(same_deliver_type_delivers_once, types5),
      WITH_YAML(same_deliver_type_delivers_once, types311),
      WITH_YAML(mapping_without_deliver_type_shares_message, types5),
      WITH_YAML(mapping_without_deliver_type_shares_message, types311),
      WITH_YAML(unsubscribe_drops_every_origin, types5),
      WITH_YAML(publish_without_payload_sends_the_message_as_sent, types5),
      cmocka_unit_test(check_config_accepts_the_examples),
      cmocka_unit_test(check_config_locates_mapping_errors),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
