/* The fake publishing connection: see fake_publisher.h. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_publisher.h"

#include <stdlib.h>
#include <string.h>

struct fmqt_fake_publisher fmqt_pub = {.held = STAILQ_HEAD_INITIALIZER(fmqt_pub.held)};

static void free_held(void) {
  struct fmq_pubmsg *m;
  while ((m = STAILQ_FIRST(&fmqt_pub.held)) != NULL) {
    STAILQ_REMOVE_HEAD(&fmqt_pub.held, link);
    free(m);
  }
  fmqt_pub.nheld = 0;
}

void fmqt_pub_reset(void) {
  free_held();
  for (size_t i = 0; i < fmqt_pub.nsends; i++) {
    free(fmqt_pub.sends[i].topic);
    free(fmqt_pub.sends[i].payload);
  }
  free(fmqt_pub.sends);
  memset(&fmqt_pub, 0, sizeof(fmqt_pub));
  STAILQ_INIT(&fmqt_pub.held);
}

size_t fmqt_pub_count_since(size_t from, const char *topic) {
  size_t n = 0;
  for (size_t i = from; i < fmqt_pub.nsends; i++)
    n += (size_t)(topic == NULL || strcmp(fmqt_pub.sends[i].topic, topic) == 0);
  return n;
}

size_t fmqt_pub_count(const char *topic) {
  return fmqt_pub_count_since(0, topic);
}

const struct fmqt_pub_send *fmqt_pub_last(const char *topic) {
  for (size_t i = fmqt_pub.nsends; i > 0; i--)
    if (topic == NULL || strcmp(fmqt_pub.sends[i - 1].topic, topic) == 0)
      return &fmqt_pub.sends[i - 1];
  fail_msg("nothing was handed to the publisher on %s", topic ? topic : "(any topic)");
  return NULL;
}

struct fmq_pubmsg *fmqt_pub_held_at(size_t i) {
  struct fmq_pubmsg *m = STAILQ_FIRST(&fmqt_pub.held);
  for (size_t k = 0; k < i && m != NULL; k++)
    m = STAILQ_NEXT(m, link);
  if (m == NULL)
    fail_msg("the publisher holds %zu messages, not %zu", fmqt_pub.nheld, i + 1);
  return m;
}

/* --- gateway/broker/publisher.h --- */

int fmq_publisher_init(struct fmq_publisher *p, uv_loop_t *loop, const struct fmq_config *config,
                       fmq_publisher_event_fn on_event) {
  memset(p, 0, sizeof(*p));
  STAILQ_INIT(&p->outbox);
  STAILQ_INIT(&p->inbox);
  STAILQ_INIT(&p->done);
  STAILQ_INIT(&p->inflight);
  p->loop = loop;
  p->config = config;
  p->on_event = on_event;
  p->version = config->broker.protocol == FMQ_MQTT_311 ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
  fmqt_pub.inits++;
  if (fmqt_pub.init_rc != 0)
    return fmqt_pub.init_rc;
  fmqt_pub.p = p;
  return 0;
}

int fmq_publisher_start(struct fmq_publisher *p) {
  assert_ptr_equal(p, fmqt_pub.p);
  assert_false(p->started);
  assert_false(p->closed);
  fmqt_pub.starts++;
  if (fmqt_pub.start_rc != 0)
    return fmqt_pub.start_rc;
  p->started = 1;
  return 0;
}

void fmq_publisher_send(struct fmq_publisher *p, struct fmq_pubmsg *m) {
  assert_ptr_equal(p, fmqt_pub.p);
  /* As the real one: only once started (and, stopping, until closed). */
  assert_true(p->started);
  assert_false(p->closed);
  assert_non_null(m);
  if (fmqt_pub.nsends == fmqt_pub.cap) {
    size_t cap = fmqt_pub.cap ? fmqt_pub.cap * 2 : 16;
    struct fmqt_pub_send *sends = realloc(fmqt_pub.sends, cap * sizeof(*sends));
    assert_non_null(sends);
    fmqt_pub.sends = sends;
    fmqt_pub.cap = cap;
  }
  struct fmqt_pub_send *s = &fmqt_pub.sends[fmqt_pub.nsends++];
  *s = (struct fmqt_pub_send){.topic = strdup(fmq_pubmsg_topic(m)),
                              .payload = malloc(m->len + 1),
                              .len = m->len,
                              .qos = m->qos,
                              .retain = m->retain,
                              .token = m->token,
                              .cost = m->cost,
                              .after_stop = p->stopping};
  assert_non_null(s->topic);
  assert_non_null(s->payload);
  if (m->len > 0)
    memcpy(s->payload, m->payload, m->len);
  s->payload[m->len] = '\0';
  STAILQ_INSERT_TAIL(&fmqt_pub.held, m, link);
  fmqt_pub.nheld++;
}

int fmq_publisher_stop(struct fmq_publisher *p) {
  assert_ptr_equal(p, fmqt_pub.p);
  if (!p->started || p->stopping)
    return -1;
  p->stopping = 1;
  fmqt_pub.stops++;
  return 0;
}

void fmq_publisher_close(struct fmq_publisher *p) {
  fmqt_pub.closes++;
  if (p->closed)
    return;
  p->closed = 1;
  /* What was never given back is freed with the publisher, as the real
   * one frees its lists. */
  if (p == fmqt_pub.p)
    free_held();
}

/* --- events --- */

static void deliver(const struct fmq_publisher_event *ev) {
  struct fmq_publisher *p = fmqt_pub.p;
  assert_non_null(p);
  assert_false(p->closed);
  /* The thread runs from start to STOPPED. */
  assert_true(p->started);
  p->on_event(p, ev);
}

void fmqt_pub_connected(void) {
  assert_false(fmqt_pub.p != NULL && fmqt_pub.p->stopping);
  deliver(&(struct fmq_publisher_event){.type = FMQ_PUB_CONNECTED});
}

void fmqt_pub_connect_failed(const char *cause) {
  deliver(&(struct fmq_publisher_event){.type = FMQ_PUB_CONNECT_FAILED, .cause = cause});
}

void fmqt_pub_lost(const char *cause) {
  deliver(&(struct fmq_publisher_event){.type = FMQ_PUB_LOST, .cause = cause});
}

/* Hands done to the owner in one DONE event; the handler takes them all. */
static void deliver_done(struct fmq_pubmsg_list *done) {
  deliver(&(struct fmq_publisher_event){.type = FMQ_PUB_DONE, .done = done});
  assert_true(STAILQ_EMPTY(done));
}

void fmqt_pub_done(const struct fmqt_pub_answer *answers, size_t n) {
  struct fmq_pubmsg **chosen = calloc(n ? n : 1, sizeof(*chosen));
  assert_non_null(chosen);
  for (size_t i = 0; i < n; i++) {
    chosen[i] = fmqt_pub_held_at(answers[i].index);
    for (size_t k = 0; k < i; k++)
      if (chosen[k] == chosen[i])
        fail_msg("held message %zu given back twice", answers[i].index);
  }
  struct fmq_pubmsg_list done = STAILQ_HEAD_INITIALIZER(done);
  for (size_t i = 0; i < n; i++) {
    STAILQ_REMOVE(&fmqt_pub.held, chosen[i], fmq_pubmsg, link);
    fmqt_pub.nheld--;
    chosen[i]->outcome = answers[i].outcome;
    chosen[i]->reason = answers[i].reason;
    STAILQ_INSERT_TAIL(&done, chosen[i], link);
  }
  free(chosen);
  deliver_done(&done);
}

void fmqt_pub_done_oldest(size_t n, enum fmq_mqtt_outcome outcome, int reason) {
  assert_true(n <= fmqt_pub.nheld);
  struct fmq_pubmsg_list done = STAILQ_HEAD_INITIALIZER(done);
  for (size_t i = 0; i < n; i++) {
    struct fmq_pubmsg *m = STAILQ_FIRST(&fmqt_pub.held);
    STAILQ_REMOVE_HEAD(&fmqt_pub.held, link);
    fmqt_pub.nheld--;
    m->outcome = outcome;
    m->reason = reason;
    STAILQ_INSERT_TAIL(&done, m, link);
  }
  deliver_done(&done);
}

void fmqt_pub_done_all(enum fmq_mqtt_outcome outcome, int reason) {
  fmqt_pub_done_oldest(fmqt_pub.nheld, outcome, reason);
}

void fmqt_pub_done_token(uintptr_t token, enum fmq_mqtt_outcome outcome, int reason) {
  struct fmq_pubmsg *m;
  size_t i = 0;
  STAILQ_FOREACH(m, &fmqt_pub.held, link) {
    if (m->qos > 0 && m->token == token)
      break;
    i++;
  }
  if (m == NULL)
    fail_msg("the publisher holds no message with token %ju", (uintmax_t)token);
  fmqt_pub_done(&(struct fmqt_pub_answer){.index = i, .outcome = outcome, .reason = reason}, 1);
}

void fmqt_pub_stopped(void) {
  assert_non_null(fmqt_pub.p);
  assert_true(fmqt_pub.p->stopping);
  if (fmqt_pub.nheld > 0)
    fmqt_pub_done_all(FMQ_MQTT_NOT_SENT, 0);
  deliver(&(struct fmq_publisher_event){.type = FMQ_PUB_STOPPED});
}
