/* The fake MQTT client: see fake_mqtt.h. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_mqtt.h"

#include <stdlib.h>
#include <string.h>

struct fmqt_fake_mqtt fmqt_fake;

void fmqt_fake_reset(void) {
  for (size_t i = 0; i < fmqt_fake.ncalls; i++)
    free(fmqt_fake.calls[i].text);
  free(fmqt_fake.calls);
  memset(&fmqt_fake, 0, sizeof(fmqt_fake));
}

static struct fmqt_mqtt_call *call_new(enum fmqt_mqtt_call_kind kind, const char *text,
                                       uintptr_t token) {
  if (fmqt_fake.ncalls == fmqt_fake.cap) {
    size_t cap = fmqt_fake.cap ? fmqt_fake.cap * 2 : 16;
    struct fmqt_mqtt_call *calls = realloc(fmqt_fake.calls, cap * sizeof(*calls));
    assert_non_null(calls);
    fmqt_fake.calls = calls;
    fmqt_fake.cap = cap;
  }
  struct fmqt_mqtt_call *c = &fmqt_fake.calls[fmqt_fake.ncalls++];
  *c = (struct fmqt_mqtt_call){.kind = kind, .text = strdup(text), .token = token};
  assert_non_null(c->text);
  return c;
}

static int call_is(const struct fmqt_mqtt_call *c, enum fmqt_mqtt_call_kind kind,
                   const char *text) {
  return c->kind == kind && (text == NULL || strcmp(c->text, text) == 0);
}

size_t fmqt_fake_count_since(size_t from, enum fmqt_mqtt_call_kind kind, const char *text) {
  size_t n = 0;
  for (size_t i = from; i < fmqt_fake.ncalls; i++)
    n += (size_t)call_is(&fmqt_fake.calls[i], kind, text);
  return n;
}

size_t fmqt_fake_count(enum fmqt_mqtt_call_kind kind, const char *text) {
  return fmqt_fake_count_since(0, kind, text);
}

const struct fmqt_mqtt_call *fmqt_fake_last(enum fmqt_mqtt_call_kind kind, const char *text) {
  for (size_t i = fmqt_fake.ncalls; i > 0; i--)
    if (call_is(&fmqt_fake.calls[i - 1], kind, text))
      return &fmqt_fake.calls[i - 1];
  fail_msg("no MQTT request of kind %d on %s was made", (int)kind, text ? text : "(any)");
  return NULL;
}

/* --- gateway/broker/mqtt.h --- */

int fmq_mqtt_init(struct fmq_mqtt *m, uv_loop_t *loop, const struct fmq_config *config,
                  fmq_mqtt_event_fn on_event) {
  (void)loop;
  memset(m, 0, sizeof(*m));
  m->config = config;
  m->on_event = on_event;
  m->version = config->broker.protocol == FMQ_MQTT_311 ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
  fmqt_fake.m = m;
  fmqt_fake.inits++;
  return 0;
}

int fmq_mqtt_connect(struct fmq_mqtt *m) {
  assert_ptr_equal(m, fmqt_fake.m);
  fmqt_fake.connects++;
  return 0;
}

int fmq_mqtt_subscribe(struct fmq_mqtt *m, const char *filter, int qos, uint32_t subid,
                       int retain_handling, uintptr_t token) {
  assert_ptr_equal(m, fmqt_fake.m);
  struct fmqt_mqtt_call *c = call_new(FMQT_CALL_SUBSCRIBE, filter, token);
  c->qos = qos;
  c->subid = subid;
  c->retain_handling = retain_handling;
  c->rc = fmqt_fake.subscribe_rc;
  return c->rc;
}

int fmq_mqtt_unsubscribe(struct fmq_mqtt *m, const char *filter, uintptr_t token) {
  assert_ptr_equal(m, fmqt_fake.m);
  struct fmqt_mqtt_call *c = call_new(FMQT_CALL_UNSUBSCRIBE, filter, token);
  c->rc = fmqt_fake.unsubscribe_rc;
  return c->rc;
}

void fmq_mqtt_stop(struct fmq_mqtt *m) {
  assert_ptr_equal(m, fmqt_fake.m);
  fmqt_fake.stops++;
}

void fmq_mqtt_close(struct fmq_mqtt *m) {
  assert_ptr_equal(m, fmqt_fake.m);
  fmqt_fake.closes++;
  fmqt_fake.m = NULL;
}

/* --- events --- */

static struct fmq_mqtt_event *event_new(enum fmq_mqtt_event_type type, size_t extra) {
  struct fmq_mqtt_event *ev = calloc(1, sizeof(*ev) + extra);
  assert_non_null(ev);
  ev->type = type;
  return ev;
}

static void deliver(struct fmq_mqtt_event *ev) {
  struct fmq_mqtt *m = fmqt_fake.m;
  assert_non_null(m);
  m->on_event(m, ev);
}

void fmqt_fake_connected(void) {
  deliver(event_new(FMQ_MQTT_CONNECTED, 0));
}

void fmqt_fake_lost(const char *cause) {
  size_t n = strlen(cause);
  struct fmq_mqtt_event *ev = event_new(FMQ_MQTT_LOST, n + 1);
  memcpy(ev->text, cause, n + 1);
  deliver(ev);
}

void fmqt_fake_connect_failed(const char *cause) {
  size_t n = strlen(cause);
  struct fmq_mqtt_event *ev = event_new(FMQ_MQTT_CONNECT_FAILED, n + 1);
  memcpy(ev->text, cause, n + 1);
  deliver(ev);
}

void fmqt_fake_connack(int max_qos) {
  struct fmq_mqtt_event *ev = event_new(FMQ_MQTT_CONNACK, 0);
  ev->reason = max_qos;
  deliver(ev);
}

void fmqt_fake_answer(enum fmq_mqtt_event_type type, uintptr_t token,
                      enum fmq_mqtt_outcome outcome, int reason) {
  struct fmq_mqtt_event *ev = event_new(type, 0);
  ev->token = token;
  ev->outcome = outcome;
  ev->reason = reason;
  deliver(ev);
}

void fmqt_fake_answer_last(enum fmqt_mqtt_call_kind kind, const char *text,
                           enum fmq_mqtt_outcome outcome, int reason) {
  static const enum fmq_mqtt_event_type answers[] = {
      [FMQT_CALL_SUBSCRIBE] = FMQ_MQTT_SUBACK,
      [FMQT_CALL_UNSUBSCRIBE] = FMQ_MQTT_UNSUBACK,
  };
  fmqt_fake_answer(answers[kind], fmqt_fake_last(kind, text)->token, outcome, reason);
}

/* As mqtt.c lays a message out: the identifiers, the topic and its NUL,
 * then the payload, all in the event's flexible array. */
void fmqt_fake_message(const char *topic, const void *payload, size_t len, int qos,
                       int retained, const uint32_t *subids, unsigned nsubids) {
  size_t ids = (size_t)nsubids * sizeof(uint32_t), tlen = strlen(topic);
  struct fmq_mqtt_event *ev = event_new(FMQ_MQTT_MESSAGE, ids + tlen + 1 + len);
  uint32_t *ev_subids = (uint32_t *)(void *)ev->text;
  if (nsubids > 0)
    memcpy(ev_subids, subids, ids);
  char *t = ev->text + ids;
  memcpy(t, topic, tlen + 1);
  uint8_t *p = (uint8_t *)t + tlen + 1;
  if (len > 0)
    memcpy(p, payload, len);
  ev->topic = t;
  ev->payload = p;
  ev->len = len;
  ev->qos = qos;
  ev->retained = retained;
  ev->nsubids = nsubids;
  ev->subids = ev_subids;
  deliver(ev);
}

void fmqt_fake_message_text(const char *topic, const char *text, int qos, int retained,
                            const uint32_t *subids, unsigned nsubids) {
  fmqt_fake_message(topic, text, strlen(text), qos, retained, subids, nsubids);
}

void fmqt_fake_stopped(void) {
  deliver(event_new(FMQ_MQTT_STOPPED, 0));
}
