/* The MQTT bridge (protocol-v1 sections 1-4) against a real Mosquitto:
 * subscribe, messages (text and payload_b64), publish in every payload form,
 * QoS and retain observed by an independent mosquitto_sub, binary-frame
 * publish, the invalid_topic / bad_request / forbidden errors, unsubscribe,
 * topic= on the upgrade URL, and the '$' rule for wildcards. Every test has
 * its own broker and gateway. */

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
#include <unistd.h>

#include <cmocka.h>

#define T 5000          /* a reply or message that must come */
#define QUIET_MS 300    /* "nothing else arrives" after an ordering proof */

/* Room for a topic of 65536 bytes in one JSON message. */
static struct fmqt_fixture gateway = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_MAX_MESSAGE_SIZE=256KiB", NULL}};
static struct fmqt_fixture max_qos_1 = {.broker_conf = "max_qos 1\n"};
static struct fmqt_fixture gateway_311 = {
    .env = (const char *const[]){"FERRYMQ_BROKER_PROTOCOL=3.1.1", NULL}};
static struct fmqt_fixture client_id_pattern = {
    .env = (const char *const[]){"FERRYMQ_BROKER_CLIENT_ID=fmqt-%h-%p-%%p", NULL}};

/* Dynamic security denies subscribing and publishing to secret/# (acl_file
 * cannot refuse a SUBSCRIBE: in Mosquitto 2.0 it only checks reads at
 * delivery and grants every SUBACK). */
static char dynsec_dir[256];
static char dynsec_conf[1024];
static struct fmqt_fixture forbidding_v5;
static struct fmqt_fixture forbidding_v311 = {
    .env = (const char *const[]){"FERRYMQ_BROKER_PROTOCOL=3.1.1", NULL}};

/* --- helpers --- */

static const char *gw_id(void **state) {
  return fmqt_fixture_of(state)->client_id;
}

/* Starts an independent mosquitto_sub (MQTT 5, QoS 2) on filter. */
static void observe(struct fmqt_sub *s, void **state, const char *filter) {
  fmqt_sub_start(s, fmqt_fixture_broker(state), (const char *const[]){filter, NULL}, 2,
                 "mqttv5");
}

/* Asserts the observer got exactly one message on topic, with these bytes,
 * qos and retain flag. */
static void assert_observed_once(const struct fmqt_sub_msg *msgs, size_t n, const char *topic,
                                 const void *payload, size_t len, int qos, int retain) {
  size_t found = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(msgs[i].topic, topic) != 0) {
      continue;
    }
    found++;
    if (msgs[i].len != len || (len > 0 && memcmp(msgs[i].payload, payload, len) != 0)) {
      fail_msg("mosquitto_sub got %zu different bytes on %s (want %zu): \"%.100s\"", msgs[i].len,
               topic, len, (const char *)msgs[i].payload);
    }
    if (msgs[i].qos != qos || msgs[i].retain != retain) {
      fail_msg("mosquitto_sub got %s with qos %d retain %d, want qos %d retain %d", topic,
               msgs[i].qos, msgs[i].retain, qos, retain);
    }
  }
  if (found != 1) {
    fail_msg("mosquitto_sub got %zu messages on %s, want exactly 1", found, topic);
  }
}

/* Asserts the observer got nothing at all within QUIET_MS. */
static void assert_observed_nothing(const struct fmqt_sub *s, const char *what) {
  size_t n = fmqt_sub_wait(s, 1, QUIET_MS);
  if (n != 0) {
    struct fmqt_sub_msg *msgs;
    n = fmqt_sub_messages(s, &msgs);
    fail_msg("%s: mosquitto_sub got %zu messages, the first on %s", what, n, msgs[0].topic);
  }
}

/* Sends text and expects error code with id; the connection stays open. */
static void assert_refused(int fd, const char *text, const char *code, const char *id) {
  fmqt_ws_send_text(fd, text);
  char what[160];
  snprintf(what, sizeof what, "%.120s", text);
  fmqt_expect_error(fd, code, id, T, what);
  fmqt_ws_assert_json_ping(fd, "still-open", T);
}

/* The number of SUBSCRIBE packets the gateway sent the broker. */
static size_t gateway_subscribes(void **state) {
  char needle[128];
  snprintf(needle, sizeof needle, "Received SUBSCRIBE from %s\n", gw_id(state));
  return fmqt_broker_log_count_since(fmqt_fixture_broker(state), 0, needle);
}

/* --- subscribe and messages --- */

static void subscribe_is_answered_with_the_granted_qos_and_the_id(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = fmqt_fixture_connect(state);
  fmqt_subscribe(fd, "s/0", 0, "a", 0);
  fmqt_subscribe(fd, "s/1", 1, "b", 1);
  fmqt_subscribe(fd, "s/2", 2, "c", 2);
  fmqt_subscribe(fd, "s/+/x/#", 1, "wild", 1);
  fmqt_subscribe(fd, "s/default", -1, "d", 0);
  fmqt_subscribe(fd, "s/no-id", 1, NULL, 1);

  fmqt_ws_send_text(fd, "{\"type\":\"subscribe\",\"topic\":\"s/num\",\"qos\":1,\"id\":42}");
  json_t *v = fmqt_expect(fd, T, "subscribe with id 42");
  assert_string_equal(fmqt_json_str(v, "type"), "subscribed");
  assert_true(json_is_integer(json_object_get(v, "id")));
  assert_int_equal(json_integer_value(json_object_get(v, "id")), 42);
  json_decref(v);

  /* The broker was asked for each filter at its QoS. */
  const char *id = gw_id(state);
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, id, "s/0", 0), 1);
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, id, "s/1", 1), 1);
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, id, "s/2", 2), 1);
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, id, "s/+/x/#", 1), 1);
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, id, "s/default", 0), 1);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void mqtt_messages_arrive_with_their_qos(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = fmqt_fixture_connect(state);
  fmqt_subscribe(fd, "m/+", 2, "m", 2);
  fmqt_subscribe(fd, "n/#", 1, "n", 1);

  for (int qos = 0; qos <= 2; qos++) {
    char text[64];
    snprintf(text, sizeof text, "hello w\xc3\xb6rld at qos %d", qos);
    fmqt_mqtt_pub_text(b, "m/a", text, qos, 0);
    fmqt_expect_message(fd, "m/a", text, qos, 0, T);
  }
  /* Delivered at most at the subscription's QoS. */
  fmqt_mqtt_pub_text(b, "n/x/y", "capped", 2, 0);
  fmqt_expect_message(fd, "n/x/y", "capped", 1, 0, T);
  /* An empty payload is an empty string; a NUL is valid UTF-8. */
  fmqt_mqtt_pub(b, "m/empty", "", 0, 0, 0, NULL);
  fmqt_expect_message_bytes(fd, "m/empty", "", 0, 0, 0, T);
  fmqt_mqtt_pub(b, "m/nul", "a\0b", 3, 1, 0, "mqttv5");
  fmqt_expect_message_bytes(fd, "m/nul", "a\0b", 3, 1, 0, T);
  fmqt_expect_nothing(fd, QUIET_MS, "after the last message");
  fmqt_ws_close_cleanly(fd, 1000);
}

static void non_utf8_payloads_arrive_as_payload_b64(void **state) {
  static const struct {
    const char *bytes;
    size_t len;
  } payloads[] = {
      {"\xff", 1},
      {"\xc3\x28", 2},                 /* a lead byte without its continuation */
      {"abc\xe2\x82", 5},              /* ends inside a sequence */
      {"\xc0\xaf", 2},                 /* overlong '/' */
      {"\xed\xa0\x80", 3},             /* a surrogate */
      {"\xf4\x90\x80\x80", 4},         /* above U+10FFFF */
      {"\x80x", 2},                    /* a lone continuation byte */
  };
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = fmqt_fixture_connect(state);
  fmqt_subscribe(fd, "bin/#", 0, "b", 0);
  for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
    char topic[32];
    snprintf(topic, sizeof topic, "bin/%zu", i);
    fmqt_mqtt_pub(b, topic, payloads[i].bytes, payloads[i].len, 0, 0, NULL);
    fmqt_expect_message_bytes(fd, topic, payloads[i].bytes, payloads[i].len, 0, 0, T);
  }
  uint8_t all[256];
  for (int i = 0; i < 256; i++) {
    all[i] = (uint8_t)i;
  }
  fmqt_mqtt_pub(b, "bin/all", all, sizeof all, 0, 0, NULL);
  fmqt_expect_message_bytes(fd, "bin/all", all, sizeof all, 0, 0, T);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- publish --- */

struct publish_case {
  const char *topic;
  const char *member;     /* the payload member as sent */
  const char *bytes;      /* what MQTT must carry */
  size_t len;
  int qos, retain;
};

static size_t case_len(const struct publish_case *c) {
  return c->len > 0 ? c->len : strlen(c->bytes);
}

/* len 0 with non-empty bytes: strlen(bytes). */
static const struct publish_case publish_cases[] = {
    {"p/text", "\"payload\":\"plain text \\u00fc\"", "plain text \xc3\xbc", 0, 0, 0},
    {"p/object", "\"payload\":{ \"a\" : \"x\",\n \"b\" : [1, 2.5, true, null], \"c\": {\"d\": -3} }",
     "{\"a\":\"x\",\"b\":[1,2.5,true,null],\"c\":{\"d\":-3}}", 0, 1, 0},
    {"p/order", "\"payload\":{\"z\": 1, \"a\": 2}", "{\"z\":1,\"a\":2}", 0, 2, 1},
    {"p/number", "\"payload\":42", "42", 0, 0, 1},
    {"p/true", "\"payload\":true", "true", 0, 1, 1},
    {"p/null", "\"payload\":null", "null", 0, 2, 0},
    {"p/array", "\"payload\":[1, \"a\"]", "[1,\"a\"]", 0, 1, 0},
    {"p/escapes", "\"payload\":\"\\u00e9\\u0000x\\n\"", "\xc3\xa9\0x\n", 5, 2, 1},
    {"p/empty", "\"payload\":\"\"", "", 0, 1, 0},
    {"p/b64", "\"payload_b64\":\"AAEC/w==\"", "\x00\x01\x02\xff", 4, 0, 0},
    {"p/b64-text", "\"payload_b64\":\"aGk=\"", "hi", 0, 2, 0},
    {"p/b64-empty", "\"payload_b64\":\"\"", "", 0, 0, 0},
    {"p/b64-retained", "\"payload_b64\":\"/w==\"", "\xff", 0, 1, 1},
};
#define PUBLISH_CASES (sizeof publish_cases / sizeof publish_cases[0])

/* Each payload form, QoS and retain flag reaches an independent subscriber
 * byte for byte; each publish with an id gets its puback. Retained ones
 * (and only those) are then delivered to a new subscriber with retain 1. */
static void publish_payload_forms_are_carried_byte_exact(void **state) {
  struct fmqt_sub live, late;
  observe(&live, state, "p/#");
  int fd = fmqt_fixture_connect(state);
  size_t retained = 0;
  for (size_t i = 0; i < PUBLISH_CASES; i++) {
    const struct publish_case *c = &publish_cases[i];
    char id[32];
    snprintf(id, sizeof id, "pub-%zu", i);
    fmqt_sendf(fd, "{\"type\":\"publish\",\"id\":\"%s\",\"topic\":\"%s\",%s,\"qos\":%d,\"retain\":%s}",
               id, c->topic, c->member, c->qos, c->retain ? "true" : "false");
    fmqt_expect_puback(fd, id, T);
    retained += (size_t)c->retain;
  }
  assert_int_equal(fmqt_sub_wait(&live, PUBLISH_CASES, T), PUBLISH_CASES);
  struct fmqt_sub_msg *msgs;
  size_t n = fmqt_sub_messages(&live, &msgs);
  for (size_t i = 0; i < PUBLISH_CASES; i++) {
    const struct publish_case *c = &publish_cases[i];
    assert_observed_once(msgs, n, c->topic, c->bytes, case_len(c), c->qos, 0);
  }
  fmqt_sub_msgs_free(msgs, n);

  observe(&late, state, "p/#");
  assert_int_equal(fmqt_sub_wait(&late, retained, T), retained);
  assert_int_equal(fmqt_sub_wait(&late, retained + 1, QUIET_MS), retained);
  n = fmqt_sub_messages(&late, &msgs);
  for (size_t i = 0; i < PUBLISH_CASES; i++) {
    const struct publish_case *c = &publish_cases[i];
    if (c->retain) {
      /* A retained message keeps at most the QoS it was published with. */
      assert_observed_once(msgs, n, c->topic, c->bytes, case_len(c), c->qos, 1);
    }
  }
  fmqt_sub_msgs_free(msgs, n);
  fmqt_sub_stop(&live);
  fmqt_sub_stop(&late);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* The puback carries the id as it was sent: a number stays a number. */
static void puback_ids_keep_their_json_type(void **state) {
  int fd = fmqt_fixture_connect(state);
  fmqt_ws_send_text(fd, "{\"type\":\"publish\",\"topic\":\"ids/a\",\"payload\":\"x\",\"qos\":1,\"id\":7}");
  json_t *v = fmqt_expect(fd, T, "puback for id 7");
  assert_string_equal(fmqt_json_str(v, "type"), "puback");
  assert_true(json_is_integer(json_object_get(v, "id")));
  assert_int_equal(json_integer_value(json_object_get(v, "id")), 7);
  json_decref(v);
  fmqt_ws_send_text(fd, "{\"id\":2.5,\"type\":\"publish\",\"topic\":\"ids/b\",\"payload\":\"x\"}");
  v = fmqt_expect(fd, T, "puback for id 2.5");
  assert_string_equal(fmqt_json_str(v, "type"), "puback");
  assert_true(json_is_real(json_object_get(v, "id")));
  assert_true(json_real_value(json_object_get(v, "id")) == 2.5);
  json_decref(v);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void publish_without_id_gets_no_reply(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "noid/#");
  int fd = fmqt_fixture_connect(state);
  for (int qos = 0; qos <= 2; qos++) {
    char topic[32];
    snprintf(topic, sizeof topic, "noid/%d", qos);
    fmqt_publish_text(fd, topic, "quiet", qos, 0, NULL);
  }
  assert_int_equal(fmqt_sub_wait(&obs, 3, T), 3);
  fmqt_expect_nothing(fd, 2 * QUIET_MS, "publishes without an id");
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* A client receives what another client (and it itself) publishes through
 * the gateway: the shared MQTT session must not suppress its own messages. */
static void clients_receive_what_clients_of_the_same_gateway_publish(void **state) {
  int a = fmqt_fixture_connect(state);
  int b = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "loop/t", 1, "a", 1);
  fmqt_subscribe(b, "loop/t", 1, "b", 1);
  fmqt_publish_text(a, "loop/t", "from a", 1, 0, "pa");
  int puback = 0, message = 0;
  for (int i = 0; i < 2; i++) {
    json_t *v = fmqt_expect(a, T, "the publisher's puback and own message");
    if (fmqt_is_message(v, "loop/t")) {
      fmqt_assert_message(v, "loop/t", "from a", 6, 1, 0);
      message++;
    } else {
      assert_string_equal(fmqt_json_str(v, "type"), "puback");
      fmqt_assert_id(v, "pa", "puback");
      puback++;
    }
    json_decref(v);
  }
  assert_int_equal(puback, 1);
  assert_int_equal(message, 1);
  fmqt_expect_message(b, "loop/t", "from a", 1, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "publisher after its message");
  fmqt_expect_nothing(b, 0, "other client after the message");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(b, 1000);
}

/* --- binary frames --- */

static size_t binary_publish(uint8_t *out, const char *topic, size_t topic_len,
                             const void *payload, size_t len) {
  out[0] = (uint8_t)(topic_len >> 8);
  out[1] = (uint8_t)topic_len;
  memcpy(out + 2, topic, topic_len);
  if (len > 0) {
    memcpy(out + 2 + topic_len, payload, len);
  }
  return 2 + topic_len + len;
}

static void binary_frames_publish_at_qos_0_without_retain(void **state) {
  struct fmqt_sub obs, late;
  observe(&obs, state, "bf/#");
  int fd = fmqt_fixture_connect(state);
  uint8_t payload[300], frame[400];
  for (size_t i = 0; i < sizeof payload; i++) {
    payload[i] = (uint8_t)(i * 13);
  }
  payload[5] = 0;
  size_t n = binary_publish(frame, "bf/raw", 6, payload, sizeof payload);
  fmqt_ws_send(fd, 1, 0x2, frame, n);
  n = binary_publish(frame, "bf/\xc3\xbc", 5, "text", 4);
  fmqt_ws_send(fd, 1, 0x2, frame, n);
  n = binary_publish(frame, "bf/empty", 8, NULL, 0);
  fmqt_ws_send(fd, 1, 0x2, frame, n);
  /* Fragmented binary messages are reassembled like text ones. */
  n = binary_publish(frame, "bf/frag", 7, "in two parts", 12);
  fmqt_ws_send(fd, 0, 0x2, frame, 5);
  fmqt_ws_send(fd, 1, 0x0, frame + 5, n - 5);

  assert_int_equal(fmqt_sub_wait(&obs, 4, T), 4);
  struct fmqt_sub_msg *msgs;
  size_t count = fmqt_sub_messages(&obs, &msgs);
  assert_observed_once(msgs, count, "bf/raw", payload, sizeof payload, 0, 0);
  assert_observed_once(msgs, count, "bf/\xc3\xbc", "text", 4, 0, 0);
  assert_observed_once(msgs, count, "bf/empty", "", 0, 0, 0);
  assert_observed_once(msgs, count, "bf/frag", "in two parts", 12, 0, 0);
  fmqt_sub_msgs_free(msgs, count);
  fmqt_expect_nothing(fd, QUIET_MS, "binary publishes (no reply)");
  /* Not retained: a new subscriber gets nothing. */
  observe(&late, state, "bf/#");
  assert_observed_nothing(&late, "a subscriber after binary publishes");
  fmqt_sub_stop(&obs);
  fmqt_sub_stop(&late);
  fmqt_ws_close_cleanly(fd, 1000);
}

static void binary_frame_errors_are_json_errors_without_id(void **state) {
  static const struct {
    const char *bytes;
    size_t len;
    const char *code;
  } frames[] = {
      {"", 0, "bad_request"},                      /* no topic length */
      {"\x00", 1, "bad_request"},                  /* half a topic length */
      {"\x00\x09" "a/b", 5, "bad_request"},        /* shorter than its topic length */
      {"\x00\x03" "a/#x", 6, "invalid_topic"},     /* a wildcard */
      {"\x00\x03" "a+b", 5, "invalid_topic"},
      {"\x00\x00" "payload", 9, "invalid_topic"},  /* an empty topic */
      {"\x00\x03" "a\0b", 5, "invalid_topic"},     /* a NUL */
      {"\x00\x02" "\xff\xfe", 4, "invalid_topic"}, /* not UTF-8 */
  };
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = fmqt_fixture_connect(state);
  for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
    fmqt_ws_send(fd, 1, 0x2, frames[i].bytes, frames[i].len);
    char what[64];
    snprintf(what, sizeof what, "binary frame %zu", i);
    fmqt_expect_error(fd, frames[i].code, NULL, T, what);
    fmqt_ws_assert_json_ping(fd, "still-open", T);
  }
  assert_observed_nothing(&obs, "refused binary publishes");
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- refusals --- */

/* One level only: Mosquitto refuses topics of more than 200 levels. */
static char *long_topic(size_t n) {
  char *t = malloc(n + 1);
  assert_non_null(t);
  for (size_t i = 0; i < n; i++) {
    t[i] = (char)('a' + i % 26);
  }
  t[n] = '\0';
  return t;
}

static void invalid_topics_get_invalid_topic_with_the_id(void **state) {
  static const char *const names[] = {"a/+", "a/#", "#", "+", "a+", "a#", "+/x", "",
                                      "a\\u0000b"};
  static const char *const filters[] = {"a/#/b", "#/a", "a+", "a#", "+a", "a/b#", "",
                                        "a\\u0000b"};
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = fmqt_fixture_connect(state);
  char text[512];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char id[16];
    snprintf(id, sizeof id, "pub-%zu", i);
    snprintf(text, sizeof text,
             "{\"type\":\"publish\",\"topic\":\"%s\",\"payload\":\"x\",\"qos\":1,\"id\":\"%s\"}",
             names[i], id);
    assert_refused(fd, text, "invalid_topic", id);
  }
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
    char id[16];
    snprintf(id, sizeof id, "sub-%zu", i);
    snprintf(text, sizeof text, "{\"type\":\"subscribe\",\"topic\":\"%s\",\"id\":\"%s\"}",
             filters[i], id);
    assert_refused(fd, text, "invalid_topic", id);
    snprintf(id, sizeof id, "unsub-%zu", i);
    snprintf(text, sizeof text, "{\"type\":\"unsubscribe\",\"topic\":\"%s\",\"id\":\"%s\"}",
             filters[i], id);
    assert_refused(fd, text, "invalid_topic", id);
  }
  /* 65536 bytes is one too many, for a name and a filter; 65535 is fine. */
  char *topic = long_topic(65536);
  fmqt_sendf(fd, "{\"type\":\"publish\",\"topic\":\"%s\",\"payload\":\"x\",\"id\":\"long-pub\"}",
             topic);
  fmqt_expect_error(fd, "invalid_topic", "long-pub", T, "a 65536-byte topic");
  fmqt_sendf(fd, "{\"type\":\"subscribe\",\"topic\":\"%s/#\",\"id\":\"long-sub\"}", topic);
  fmqt_expect_error(fd, "invalid_topic", "long-sub", T, "a 65538-byte filter");
  assert_observed_nothing(&obs, "invalid topics");
  assert_int_equal(gateway_subscribes(state), 0);

  topic[65535] = '\0';
  fmqt_sendf(fd, "{\"type\":\"publish\",\"topic\":\"%s\",\"payload\":\"x\",\"qos\":1,\"id\":\"max\"}",
             topic);
  fmqt_expect_puback(fd, "max", T);
  assert_int_equal(fmqt_sub_wait(&obs, 1, T), 1);
  free(topic);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* The gateway's own choice (proto/PROTOCOL.md): a shared subscription
 * makes no sense through one broker session and is invalid_topic. */
static void shared_subscriptions_are_invalid_topics(void **state) {
  int fd = fmqt_fixture_connect(state);
  assert_refused(fd, "{\"type\":\"subscribe\",\"topic\":\"$share/g/x\",\"id\":\"sh\"}",
                 "invalid_topic", "sh");
  assert_refused(fd, "{\"type\":\"subscribe\",\"topic\":\"$share/g/#\",\"id\":\"sh2\"}",
                 "invalid_topic", "sh2");
  assert_int_equal(gateway_subscribes(state), 0);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* "a/a/.../a" with n levels (malloc'd). */
static char *deep_topic(size_t n) {
  char *t = malloc(2 * n);
  assert_non_null(t);
  for (size_t i = 0; i < n; i++) {
    t[2 * i] = 'a';
    t[2 * i + 1] = '/';
  }
  t[2 * n - 1] = '\0';
  return t;
}

/* Mosquitto drops a client whose topic has more than 200 levels; through
 * the shared connection that would cut every client off, so the gateway
 * refuses such topics itself (proto/PROTOCOL.md), and 200 still work. */
static void topics_deeper_than_the_broker_allows_are_invalid(void **state) {
  int fd = fmqt_fixture_connect(state);
  char *deep = deep_topic(201);
  fmqt_sendf(fd, "{\"type\":\"publish\",\"topic\":\"%s\",\"payload\":\"x\",\"qos\":1,"
                 "\"id\":\"deep-pub\"}", deep);
  fmqt_expect_error(fd, "invalid_topic", "deep-pub", T, "a 201-level topic");
  fmqt_sendf(fd, "{\"type\":\"subscribe\",\"topic\":\"%s\",\"id\":\"deep-sub\"}", deep);
  fmqt_expect_error(fd, "invalid_topic", "deep-sub", T, "a 201-level filter");
  free(deep);
  deep = deep_topic(200);
  fmqt_subscribe(fd, deep, 1, "ok-sub", 1);
  fmqt_sendf(fd, "{\"type\":\"publish\",\"topic\":\"%s\",\"payload\":\"deep\",\"qos\":1,"
                 "\"id\":\"ok-pub\"}", deep);
  /* The message comes back through the subscribing connection, the ack
   * through the publishing one: either may come first. */
  int messages = 0, pubacks = 0;
  for (int i = 0; i < 2; i++) {
    json_t *v = fmqt_expect(fd, T, "the deep message and its puback");
    if (fmqt_is_message(v, deep)) {
      fmqt_assert_message(v, deep, "deep", 4, 1, 0);
      messages++;
    } else {
      assert_string_equal(fmqt_json_str(v, "type"), "puback");
      assert_string_equal(fmqt_json_str(v, "id"), "ok-pub");
      pubacks++;
    }
    json_decref(v);
  }
  assert_int_equal(messages, 1);
  assert_int_equal(pubacks, 1);
  free(deep);
  fmqt_ws_assert_json_ping(fd, "still-up", T);
  fmqt_expect_nothing(fd, QUIET_MS, "after the deep topics (no status down)");
  fmqt_ws_close_cleanly(fd, 1000);
}

static void bad_requests_get_bad_request_with_the_id(void **state) {
  static const char *const texts[] = {
      "{\"type\":\"publish\",\"id\":\"q3\",\"topic\":\"t\",\"payload\":\"x\",\"qos\":3}",
      "{\"type\":\"publish\",\"id\":\"q-1\",\"topic\":\"t\",\"payload\":\"x\",\"qos\":-1}",
      "{\"type\":\"publish\",\"id\":\"qs\",\"topic\":\"t\",\"payload\":\"x\",\"qos\":\"1\"}",
      "{\"type\":\"publish\",\"id\":\"qn\",\"topic\":\"t\",\"payload\":\"x\",\"qos\":null}",
      "{\"type\":\"publish\",\"id\":\"both\",\"topic\":\"t\",\"payload\":\"x\",\"payload_b64\":\"eA==\"}",
      "{\"type\":\"publish\",\"id\":\"neither\",\"topic\":\"t\"}",
      "{\"type\":\"publish\",\"id\":\"b64\",\"topic\":\"t\",\"payload_b64\":\"!!!!\"}",
      "{\"type\":\"publish\",\"id\":\"b64pad\",\"topic\":\"t\",\"payload_b64\":\"QU=D\"}",
      "{\"type\":\"publish\",\"id\":\"b64num\",\"topic\":\"t\",\"payload_b64\":42}",
      "{\"type\":\"publish\",\"id\":\"ryes\",\"topic\":\"t\",\"payload\":\"x\",\"retain\":\"yes\"}",
      "{\"type\":\"publish\",\"id\":\"r1\",\"topic\":\"t\",\"payload\":\"x\",\"retain\":1}",
      "{\"type\":\"publish\",\"id\":\"notopic\",\"payload\":\"x\"}",
      "{\"type\":\"publish\",\"id\":\"numtopic\",\"topic\":5,\"payload\":\"x\"}",
      "{\"type\":\"subscribe\",\"id\":\"sq3\",\"topic\":\"t\",\"qos\":3}",
      "{\"type\":\"subscribe\",\"id\":\"sqs\",\"topic\":\"t\",\"qos\":\"0\"}",
      "{\"type\":\"subscribe\",\"id\":\"sq-1\",\"topic\":\"t\",\"qos\":-1}",
      "{\"type\":\"subscribe\",\"id\":\"snotopic\"}",
      "{\"type\":\"subscribe\",\"id\":\"sarr\",\"topic\":[\"t\"]}",
      "{\"type\":\"unsubscribe\",\"id\":\"unotopic\"}",
      "{\"type\":\"unsubscribe\",\"id\":\"unum\",\"topic\":7}",
  };
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = fmqt_fixture_connect(state);
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    json_error_t err;
    json_t *sent = json_loads(texts[i], 0, &err);
    assert_non_null(sent);
    assert_refused(fd, texts[i], "bad_request", fmqt_json_str(sent, "id"));
    json_decref(sent);
  }
  assert_observed_nothing(&obs, "bad requests");
  assert_int_equal(gateway_subscribes(state), 0);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- unsubscribe --- */

static void unsubscribe_stops_the_messages(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = fmqt_fixture_connect(state);
  fmqt_subscribe(fd, "u/t", 0, "s1", 0);
  fmqt_subscribe(fd, "u/ctl", 0, "s2", 0);
  fmqt_mqtt_pub_text(b, "u/t", "one", 0, 0);
  fmqt_expect_message(fd, "u/t", "one", 0, 0, T);

  size_t mark = fmqt_broker_log_mark(b);
  fmqt_unsubscribe(fd, "u/t", "un1");
  /* The only holder left: the broker is unsubscribed. Mosquitto logs the
   * packet and its filter as two lines: wait for the second. */
  char unsubscribed[160];
  snprintf(unsubscribed, sizeof unsubscribed, ": %s u/t\n", gw_id(state));
  assert_int_equal(fmqt_broker_wait_log(b, mark, unsubscribed, 1, T), 1);
  assert_int_equal(fmqt_broker_unsubscribes_since(b, mark, gw_id(state), "u/t"), 1);

  fmqt_mqtt_pub_text(b, "u/t", "two", 0, 0);
  fmqt_mqtt_pub_text(b, "u/ctl", "after", 0, 0);
  /* Messages keep their order: "two" would have come before "after". */
  fmqt_expect_message(fd, "u/ctl", "after", 0, 0, T);
  fmqt_expect_nothing(fd, QUIET_MS, "after unsubscribe");
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- topic= on the upgrade URL --- */

static void topic_query_subscribes_at_open(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = fmqt_ws_connect(fmqt_fixture_port(state),
                           "/mqtt?topic=a%2Fb&topic=c%2F%23&topic=d/e", "");
  static const char *const topics[] = {"a/b", "c/#", "d/e"};
  int seen[3] = {0};
  for (int i = 0; i < 3; i++) {
    json_t *v = fmqt_expect(fd, T, "subscribed for topic=");
    const char *t = fmqt_json_str(v, "topic");
    json_t *q = json_object_get(v, "qos");
    int k = 0;
    while (k < 3 && (t == NULL || strcmp(t, topics[k]) != 0)) {
      k++;
    }
    if (strcmp(fmqt_json_str(v, "type") ? fmqt_json_str(v, "type") : "", "subscribed") != 0 ||
        k == 3 || !json_is_integer(q) || json_integer_value(q) != 0) {
      fail_msg("expected subscribed for a/b, c/# and d/e at qos 0, got %s", fmqt_dump(v));
    }
    fmqt_assert_id(v, NULL, "subscribed for topic=");
    seen[k]++;
    json_decref(v);
  }
  assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
  fmqt_mqtt_pub_text(b, "a/b", "1", 1, 0);
  fmqt_expect_message(fd, "a/b", "1", 0, 0, T);
  fmqt_mqtt_pub_text(b, "c/d/e", "2", 0, 0);
  fmqt_expect_message(fd, "c/d/e", "2", 0, 0, T);
  fmqt_mqtt_pub_text(b, "d/e", "3", 0, 0);
  fmqt_expect_message(fd, "d/e", "3", 0, 0, T);
  fmqt_expect_nothing(fd, QUIET_MS, "after the topic= messages");
  fmqt_ws_close_cleanly(fd, 1000);
}

static void invalid_topic_query_is_refused_before_the_upgrade(void **state) {
  static const char *const paths[] = {
      "/mqtt?topic=a%2B",               /* a+ */
      "/mqtt?topic=a%2F%23%2Fb",        /* a/#/b */
      "/mqtt?topic=",                   /* empty */
      "/mqtt?topic=a%00b",              /* NUL */
      "/mqtt?topic=ok%2Fx&topic=%23x",  /* the second is invalid */
  };
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    char req[1024], key[25], head[4096];
    size_t n = fmqt_ws_request(req, sizeof req, paths[i], "", key);
    int status = fmqt_http_refused(fmqt_fixture_port(state), req, n, head, sizeof head);
    if (status != 400) {
      fail_msg("%s: status %d, want 400", paths[i], status);
    }
  }
  assert_int_equal(gateway_subscribes(state), 0);
  fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt");
}

/* --- a SUBACK the broker refuses --- */

static void refused_suback_answers_forbidden(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  fmqt_send_subscribe(a, "secret/x", 1, "f1");
  json_t *reply = fmqt_recv(a, T);
  size_t tries = fmqt_broker_log_count_since(b, 0, "\tsecret/x (QoS ");
  if (tries > 1) {
    fail_msg("one refused subscribe made the gateway send %zu SUBSCRIBEs of secret/x; the "
             "client got %s", tries, reply ? fmqt_dump(reply) : "nothing");
  }
  if (reply == NULL) {
    fail_msg("subscribe secret/x (refused by the broker): no reply within %d ms", T);
  }
  fmqt_assert_error(reply, "forbidden", "f1", "subscribe secret/x");
  json_decref(reply);
  fmqt_subscribe(a, "open/x", 1, "o1", 1);
  fmqt_mqtt_pub_text(b, "open/x", "visible", 1, 0);
  fmqt_expect_message(a, "open/x", "visible", 1, 0, T);

  /* Refused again: the refusal was not remembered as a grant. */
  fmqt_send_subscribe(a, "secret/x", 0, "f2");
  fmqt_expect_error(a, "forbidden", "f2", T, "subscribe secret/x again");
  int c = fmqt_fixture_connect(state);
  fmqt_send_subscribe(c, "secret/#", 2, "f3");
  fmqt_expect_error(c, "forbidden", "f3", T, "subscribe secret/#");

  fmqt_mqtt_pub_text(b, "secret/x", "hidden", 0, 0);
  fmqt_mqtt_pub_text(b, "open/x", "after", 0, 0);
  fmqt_expect_message(a, "open/x", "after", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after the refused subscription");
  fmqt_expect_nothing(c, 0, "after the refused subscription");
  fmqt_ws_assert_json_ping(c, "usable", T);
  /* One SUBSCRIBE per refused request at most: a refusal is not retried. */
  size_t x = fmqt_broker_log_count_since(b, 0, "\tsecret/x (QoS ");
  size_t all = fmqt_broker_log_count_since(b, 0, "\tsecret/# (QoS ");
  if (x > 2 || all > 1) {
    fail_msg("the broker got %zu SUBSCRIBEs of secret/x (2 requests) and %zu of secret/# (1)",
             x, all);
  }
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(c, 1000);
}

/* MQTT 5 only (a 3.1.1 broker cannot say no to a publish): a QoS 1 or 2
 * publish the broker refuses answers forbidden; QoS 0 is acknowledged once
 * handed over (the broker drops it silently). */
static void refused_publish_answers_forbidden(void **state) {
  struct fmqt_sub obs;
  observe(&obs, state, "#");
  int fd = fmqt_fixture_connect(state);
  fmqt_publish_text(fd, "secret/x", "one", 1, 0, "p1");
  fmqt_expect_error(fd, "forbidden", "p1", T, "a refused QoS 1 publish");
  fmqt_publish_text(fd, "secret/x", "two", 2, 0, "p2");
  fmqt_expect_error(fd, "forbidden", "p2", T, "a refused QoS 2 publish");
  fmqt_publish_text(fd, "secret/x", "zero", 0, 0, "p0");
  fmqt_expect_puback(fd, "p0", T);
  fmqt_publish_text(fd, "open/x", "fine", 1, 0, "ok");
  fmqt_expect_puback(fd, "ok", T);
  assert_int_equal(fmqt_sub_wait(&obs, 1, T), 1);
  assert_int_equal(fmqt_sub_wait(&obs, 2, QUIET_MS), 1);
  struct fmqt_sub_msg *msgs;
  size_t n = fmqt_sub_messages(&obs, &msgs);
  assert_string_equal(msgs[0].topic, "open/x");
  fmqt_sub_msgs_free(msgs, n);
  fmqt_sub_stop(&obs);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* Every subscribe with an id is answered, even when the client
 * unsubscribed before the broker granted it (the broker is frozen to hold
 * the SUBACK back): one reply per request. */
static void every_subscribe_is_answered_even_when_unsubscribed_first(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = fmqt_fixture_connect(state);
  fmqt_broker_freeze(b);
  fmqt_send_subscribe(fd, "z/t", 1, "s1");
  fmqt_ws_send_text(fd, "{\"type\":\"unsubscribe\",\"topic\":\"z/t\",\"id\":\"u1\"}");
  /* unsubscribe is answered at once, frozen broker or not. */
  json_t *first = fmqt_expect(fd, T, "the replies to subscribe s1 and unsubscribe u1");
  fmqt_broker_thaw(b);
  json_t *second = fmqt_recv(fd, T);
  int unsubscribed = 0, answered = 0;
  json_t *replies[] = {first, second};
  for (int i = 0; i < 2; i++) {
    const char *type = replies[i] ? fmqt_json_str(replies[i], "type") : NULL;
    const char *id = replies[i] ? fmqt_json_str(replies[i], "id") : NULL;
    if (type != NULL && id != NULL && strcmp(type, "unsubscribed") == 0 &&
        strcmp(id, "u1") == 0) {
      unsubscribed++;
    } else if (type != NULL && id != NULL && strcmp(id, "s1") == 0 &&
               (strcmp(type, "subscribed") == 0 || strcmp(type, "error") == 0)) {
      answered++;
    } else if (replies[i] != NULL) {
      fail_msg("unexpected: %s", fmqt_dump(replies[i]));
    }
    json_decref(replies[i]);
  }
  if (unsubscribed != 1 || answered != 1) {
    fail_msg("subscribe s1 then unsubscribe u1 before the SUBACK: %d replies to u1 and %d to "
             "s1 within %d ms of the broker answering, want 1 each",
             unsubscribed, answered, T);
  }
  fmqt_expect_nothing(fd, QUIET_MS, "after the replies");
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- a broker that grants less --- */

/* With max_qos 1 the broker grants QoS 1 for a QoS 2 subscribe: the reply
 * says what was granted, and messages come at the granted QoS. */
static void subscribed_reply_carries_a_lower_grant(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int fd = fmqt_fixture_connect(state);
  fmqt_subscribe(fd, "g/two", 2, "two", 1);
  fmqt_subscribe(fd, "g/zero", 0, "zero", 0);
  fmqt_mqtt_pub_text(b, "g/two", "m", 1, 0);
  fmqt_expect_message(fd, "g/two", "m", 1, 0, T);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* A QoS 2 publish to a broker whose maximum is QoS 1 gets an answer, and
 * does not cost the other clients their broker connection (Mosquitto drops
 * an MQTT connection that exceeds the Maximum QoS it announced). */
static void publish_above_the_broker_maximum_qos_is_contained(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int other = fmqt_fixture_connect(state);
  fmqt_subscribe(other, "g/ok", 1, "ok", 1);
  fmqt_publish_text(a, "g/q2", "too high", 2, 0, "q2");
  json_t *v = fmqt_recv(a, T);
  if (v == NULL) {
    fail_msg("a QoS 2 publish above the broker's maximum got no answer within %d ms", T);
  }
  const char *type = fmqt_json_str(v, "type");
  if (type == NULL || (strcmp(type, "puback") != 0 && strcmp(type, "error") != 0)) {
    fail_msg("a QoS 2 publish above the broker's maximum: expected puback or error, got %s",
             fmqt_dump(v));
  }
  fmqt_assert_id(v, "q2", "the answer to the QoS 2 publish");
  json_decref(v);
  fmqt_mqtt_pub_text(b, "g/ok", "still there", 1, 0);
  json_t *m = fmqt_expect(other, T, "the other client's message");
  if (!fmqt_is_message(m, "g/ok")) {
    fail_msg("another client's QoS 2 publish disturbed this client: got %s (gateway log: "
             "%zu lost connections)", fmqt_dump(m),
             fmqt_gateway_log_count(fmqt_fixture_gateway(state), "broker connection lost"));
  }
  json_decref(m);
  assert_int_equal(fmqt_gateway_log_count(fmqt_fixture_gateway(state), "broker connection lost"),
                   0);
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(other, 1000);
}

/* --- $SYS --- */

/* '#' and '+/...' do not match topics that start with '$' (MQTT 4.7.2):
 * Mosquitto publishes $SYS/broker/uptime every second (sys_interval 1); the
 * gateway holds it for C, yet A on '#' and B on '+/broker/#' never see it. */
static void sys_topics_are_not_matched_by_leading_wildcards(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int c = fmqt_fixture_connect(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  fmqt_subscribe(c, "$SYS/broker/uptime", 0, "c", 0);
  fmqt_subscribe(a, "#", 0, "a", 0);
  fmqt_subscribe(bb, "+/broker/#", 0, "b", 0);
  /* A live uptime message (Mosquitto sends one every second or two) well
   * after A and B subscribed: $SYS flowed to the gateway while they held
   * their filters. (The first message may be the retained one.) */
  int64_t subscribed = fmqt_now_ms();
  int64_t deadline = subscribed + 5000;
  for (int live = 0; !live;) {
    json_t *v = fmqt_recv(c, fmqt_ms_until(deadline));
    if (v == NULL) {
      fail_msg("no live $SYS/broker/uptime message within 5 s");
    }
    if (!fmqt_is_message(v, "$SYS/broker/uptime")) {
      fail_msg("C expected $SYS/broker/uptime, got %s", fmqt_dump(v));
    }
    live = json_is_false(json_object_get(v, "retain")) && fmqt_now_ms() - subscribed > 50;
    json_decref(v);
  }
  fmqt_mqtt_pub_text(b, "x/broker/ctl", "ctl", 0, 0);
  fmqt_expect_message(a, "x/broker/ctl", "ctl", 0, 0, T);
  fmqt_expect_message(bb, "x/broker/ctl", "ctl", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "'#' after the control message");
  fmqt_expect_nothing(bb, 0, "'+/broker/#' after the control message");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(bb, 1000);
  fmqt_ws_close_cleanly(c, 1000);
}

/* --- fixtures --- */

static int forbidding_setup(void **state) {
  const char *plugin = fmqt_dynsec_plugin();
  if (plugin == NULL) {
    fail_msg("mosquitto_dynamic_security.so is not installed (package mosquitto)");
  }
  fmqt_make_temp_dir(dynsec_dir, sizeof dynsec_dir, "dynsec");
  char path[512];
  snprintf(path, sizeof path, "%s/dynsec.json", dynsec_dir);
  static const char json[] =
      "{\"defaultACLAccess\":{\"publishClientSend\":true,\"publishClientReceive\":true,"
      "\"subscribe\":true,\"unsubscribe\":true},\"clients\":[],"
      "\"groups\":[{\"groupname\":\"anonymous\",\"roles\":[{\"rolename\":\"nosecret\"}]}],"
      "\"roles\":[{\"rolename\":\"nosecret\",\"acls\":[{\"acltype\":\"subscribePattern\","
      "\"topic\":\"secret/#\",\"priority\":0,\"allow\":false},{\"acltype\":"
      "\"publishClientSend\",\"topic\":\"secret/#\",\"priority\":0,\"allow\":false}]}],"
      "\"anonymousGroup\":\"anonymous\"}\n";
  fmqt_write_file(path, json, sizeof json - 1);
  snprintf(dynsec_conf, sizeof dynsec_conf, "plugin %s\nplugin_opt_config_file %s\n", plugin,
           path);
  ((struct fmqt_fixture *)*state)->broker_conf = dynsec_conf;
  return fmqt_fixture_setup(state);
}

static int forbidding_teardown(void **state) {
  int r = fmqt_fixture_teardown(state);
  fmqt_remove_temp_dir(dynsec_dir);
  dynsec_dir[0] = '\0';
  return r;
}

/* broker.client_id: %h the host name, %p the gateway's process id, %% a
 * percent sign; the broker logs the id it was given. */
static void client_id_placeholders_are_expanded(void **state) {
  char host[256] = "", want[512];
  gethostname(host, sizeof host - 1);
  snprintf(want, sizeof want, " as fmqt-%s-%d-%%p ", host, (int)fmqt_fixture_gateway(state)->pid);
  char *log = fmqt_broker_log(fmqt_fixture_broker(state));
  if (strstr(log, want) == NULL) {
    fmqt_broker_print_log(fmqt_fixture_broker(state), 0, "no such client id");
    fail_msg("the broker saw no client id \"%s\"", want);
  }
  free(log);
}

#define TEST(fn) cmocka_unit_test_prestate_setup_teardown(fn, fmqt_fixture_setup, \
                                                          fmqt_fixture_teardown, &gateway)

int main(void) {
  const struct CMUnitTest tests[] = {
      TEST(subscribe_is_answered_with_the_granted_qos_and_the_id),
      TEST(mqtt_messages_arrive_with_their_qos),
      TEST(non_utf8_payloads_arrive_as_payload_b64),
      TEST(publish_payload_forms_are_carried_byte_exact),
      TEST(puback_ids_keep_their_json_type),
      TEST(publish_without_id_gets_no_reply),
      TEST(clients_receive_what_clients_of_the_same_gateway_publish),
      TEST(binary_frames_publish_at_qos_0_without_retain),
      TEST(binary_frame_errors_are_json_errors_without_id),
      TEST(invalid_topics_get_invalid_topic_with_the_id),
      TEST(topics_deeper_than_the_broker_allows_are_invalid),
      TEST(shared_subscriptions_are_invalid_topics),
      TEST(bad_requests_get_bad_request_with_the_id),
      TEST(unsubscribe_stops_the_messages),
      TEST(topic_query_subscribes_at_open),
      TEST(invalid_topic_query_is_refused_before_the_upgrade),
      cmocka_unit_test_prestate_setup_teardown(refused_suback_answers_forbidden,
                                               forbidding_setup, forbidding_teardown,
                                               &forbidding_v5),
      cmocka_unit_test_prestate_setup_teardown(refused_suback_answers_forbidden,
                                               forbidding_setup, forbidding_teardown,
                                               &forbidding_v311),
      cmocka_unit_test_prestate_setup_teardown(refused_publish_answers_forbidden,
                                               forbidding_setup, forbidding_teardown,
                                               &forbidding_v5),
      TEST(every_subscribe_is_answered_even_when_unsubscribed_first),
      cmocka_unit_test_prestate_setup_teardown(subscribed_reply_carries_a_lower_grant,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &max_qos_1),
      cmocka_unit_test_prestate_setup_teardown(publish_above_the_broker_maximum_qos_is_contained,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &max_qos_1),
      TEST(sys_topics_are_not_matched_by_leading_wildcards),
      cmocka_unit_test_prestate_setup_teardown(sys_topics_are_not_matched_by_leading_wildcards,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &gateway_311),
      cmocka_unit_test_prestate_setup_teardown(client_id_placeholders_are_expanded,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &client_id_pattern),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
