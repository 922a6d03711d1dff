#include "session.h"

#include "conn.h"
#include "log.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>

/* MQTT 5 subscription identifiers are at most 268,435,455. */
#define FMQ_SUBID_MAX 268435455u

_Static_assert(sizeof(uintptr_t) >= 8, "request tokens pack a subscription id and a serial");

enum filter_request { FILTER_IDLE = 0, FILTER_SUBSCRIBING, FILTER_UNSUBSCRIBING };

/* One distinct filter some client holds: one broker subscription. */
struct fmq_filter {
  char *text;
  uint32_t subid;
  struct fmq_sub *holders;
  size_t nholders;
  int broker_qos;                  /* as last requested (the grant may be lower); -1: none */
  enum filter_request request;
  uint32_t request_serial;
  int request_qos;
};

static uintptr_t request_token(const struct fmq_filter *f) {
  return (uintptr_t)f->subid << 32 | f->request_serial;
}

static void session_send(struct fmq_conn *c, struct fmq_buf *frame) {
  fmq_conn_send(c, frame);
}

static void send_error(struct fmq_conn *c, enum fmq_client_error_code code, const char *message,
                       const json_t *id) {
  session_send(c, fmq_client_encode_error(code, message, id));
}

/* --- filters and their identifiers --- */

static struct fmq_filter *filter_by_subid(const struct fmq_session *s, uint32_t subid) {
  return subid < s->subid_cap ? s->by_subid[subid] : NULL;
}

static int subid_take(struct fmq_session *s, uint32_t *subid) {
  if (s->nfree_subids > 0) {
    *subid = s->free_subids[--s->nfree_subids];
    return 0;
  }
  if (s->next_subid > FMQ_SUBID_MAX)
    return -1;
  if (s->next_subid >= s->subid_cap) {
    uint32_t cap = s->subid_cap ? s->subid_cap * 2 : 64;
    struct fmq_filter **by = realloc(s->by_subid, cap * sizeof(*by));
    if (by == NULL)
      return -1;
    uint32_t *free_ids = realloc(s->free_subids, cap * sizeof(*free_ids));
    if (free_ids == NULL) {
      s->by_subid = by;
      return -1;
    }
    memset(by + s->subid_cap, 0, (cap - s->subid_cap) * sizeof(*by));
    s->by_subid = by;
    s->free_subids = free_ids;
    s->subid_cap = cap;
  }
  *subid = s->next_subid++;
  return 0;
}

static struct fmq_filter *filter_get(struct fmq_session *s, const char *text) {
  struct fmq_filter *f = fmq_trie_find(&s->filters, text);
  if (f != NULL)
    return f;
  f = calloc(1, sizeof(*f));
  if (f == NULL)
    return NULL;
  f->text = strdup(text);
  f->broker_qos = -1;
  if (f->text == NULL || subid_take(s, &f->subid) != 0) {
    free(f->text);
    free(f);
    return NULL;
  }
  if (fmq_trie_insert(&s->filters, f->text, f) != 0) {
    s->free_subids[s->nfree_subids++] = f->subid;
    free(f->text);
    free(f);
    return NULL;
  }
  s->by_subid[f->subid] = f;
  return f;
}

static void filter_free(struct fmq_session *s, struct fmq_filter *f) {
  fmq_trie_remove(&s->filters, f->text);
  s->by_subid[f->subid] = NULL;
  s->free_subids[s->nfree_subids++] = f->subid;
  if (s->last_suback == f)
    s->last_suback = NULL;
  free(f->text);
  free(f);
}

/* --- subscriptions --- */

static void sub_unlink(struct fmq_sub *sub) {
  struct fmq_filter *f = sub->filter;
  struct fmq_conn *c = sub->conn;
  if (sub->filter_prev != NULL)
    sub->filter_prev->filter_next = sub->filter_next;
  else
    f->holders = sub->filter_next;
  if (sub->filter_next != NULL)
    sub->filter_next->filter_prev = sub->filter_prev;
  f->nholders--;
  if (sub->conn_prev != NULL)
    sub->conn_prev->conn_next = sub->conn_next;
  else
    c->subs = sub->conn_next;
  if (sub->conn_next != NULL)
    sub->conn_next->conn_prev = sub->conn_prev;
  c->nsubs--;
  json_decref(sub->replies);
  free(sub);
}

static struct fmq_sub *conn_find_sub(const struct fmq_conn *c, const char *filter) {
  for (struct fmq_sub *sub = c->subs; sub != NULL; sub = sub->conn_next)
    if (strcmp(sub->filter->text, filter) == 0)
      return sub;
  return NULL;
}

/* Sends sub's owed replies: "subscribed" with the QoS granted to it, or an
 * error. Each subscribe message gets its own answer. */
static void sub_answer(struct fmq_sub *sub, int granted, enum fmq_client_error_code code,
                       const char *message) {
  size_t i;
  json_t *id;
  json_array_foreach(sub->replies, i, id) {
    const json_t *reply_id = json_is_null(id) ? NULL : id;
    if (granted >= 0)
      session_send(sub->conn, fmq_client_encode_subscribed(sub->filter->text,
                                                           granted < sub->qos ? granted : sub->qos,
                                                           reply_id));
    else
      send_error(sub->conn, code, message, reply_id);
  }
  json_array_clear(sub->replies);
}

static int filter_wanted_qos(const struct fmq_filter *f) {
  int qos = 0;
  for (const struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next)
    if (h->qos > qos)
      qos = h->qos;
  return qos;
}

static void filter_fail_waiting(struct fmq_session *s, struct fmq_filter *f,
                                enum fmq_client_error_code code, const char *message,
                                uint32_t request);

/* Brings the broker in line with f's holders: one request at a time, so
 * that each SUBACK's retained replays have a known audience. May free f. */
static void filter_update(struct fmq_session *s, struct fmq_filter *f) {
  if (f->request != FILTER_IDLE || s->stopped)
    return;
  if (f->nholders == 0) {
    if (f->broker_qos < 0) {
      filter_free(s, f);
      return;
    }
    f->request_serial = ++s->next_request;
    if (fmq_mqtt_unsubscribe(&s->mqtt, f->text, request_token(f)) == 0)
      f->request = FILTER_UNSUBSCRIBING;
    return;
  }
  if (!s->up)
    return;
  int qos = filter_wanted_qos(f);
  int waiting = 0;
  for (const struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next)
    waiting |= h->want_retained && h->request == 0;
  if (!waiting && qos == f->broker_qos)
    return;
  f->request_serial = ++s->next_request;
  /* Retain Handling 2 (MQTT 5) when nobody needs the retained messages: a
   * QoS change alone must not replay them. */
  int rc = fmq_mqtt_subscribe(&s->mqtt, f->text, qos, f->subid, waiting ? 0 : 2,
                              request_token(f));
  if (rc == UV_ENOTCONN)
    return;
  if (rc != 0) {
    fmq_log_warn("subscribe %s: %s", f->text, uv_strerror(rc));
    filter_fail_waiting(s, f, FMQ_CE_INTERNAL, "the subscription could not be sent", 0);
    return;
  }
  f->request = FILTER_SUBSCRIBING;
  f->request_qos = qos;
  for (struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next)
    if (h->want_retained && h->request == 0)
      h->request = f->request_serial;
}

/* Answers and drops the holders waiting for `request` (0: every holder not
 * yet granted), then lets f catch up. */
static void filter_fail_waiting(struct fmq_session *s, struct fmq_filter *f,
                                enum fmq_client_error_code code, const char *message,
                                uint32_t request) {
  for (struct fmq_sub *h = f->holders, *next; h != NULL; h = next) {
    next = h->filter_next;
    if (request != 0 ? h->request == request : !h->live) {
      sub_answer(h, -1, code, message);
      sub_unlink(h);
    }
  }
  if (f->nholders == 0 && f->broker_qos < 0 && f->request == FILTER_IDLE)
    filter_free(s, f);
}

static void on_suback(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct fmq_filter *f = filter_by_subid(s, (uint32_t)(ev->token >> 32));
  uint32_t serial = (uint32_t)ev->token;
  if (f == NULL || f->request != FILTER_SUBSCRIBING || f->request_serial != serial)
    return;
  f->request = FILTER_IDLE;
  switch (ev->outcome) {
  case FMQ_MQTT_DONE:
    /* What was asked, not what was granted: asking again would not help. */
    f->broker_qos = f->request_qos;
    s->last_suback = f;
    for (struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next) {
      h->replay = h->request == serial;
      if (!h->replay)
        continue;
      h->request = 0;
      h->want_retained = 0;
      h->live = 1;
      sub_answer(h, ev->reason, FMQ_CE_INTERNAL, NULL);
    }
    break;
  case FMQ_MQTT_REFUSED:
    fmq_log_info("subscribe %s: refused by the broker (reason 0x%02x)", f->text, ev->reason);
    /* A refused upgrade leaves the old subscription; don't ask again. */
    if (f->broker_qos >= 0)
      f->broker_qos = f->request_qos;
    filter_fail_waiting(s, f, FMQ_CE_FORBIDDEN, "the broker refused the subscription", serial);
    return; /* f may be gone */
  case FMQ_MQTT_NOT_SENT:
    for (struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next)
      if (h->request == serial)
        h->request = 0;
    break;
  }
  filter_update(s, f);
}

static void on_unsuback(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct fmq_filter *f = filter_by_subid(s, (uint32_t)(ev->token >> 32));
  if (f == NULL || f->request != FILTER_UNSUBSCRIBING ||
      f->request_serial != (uint32_t)ev->token)
    return;
  f->request = FILTER_IDLE;
  if (ev->outcome != FMQ_MQTT_NOT_SENT || !s->up)
    f->broker_qos = -1;
  filter_update(s, f);
}

void fmq_session_subscribe(struct fmq_session *s, struct fmq_conn *c, const char *filter,
                           int qos, const json_t *id) {
  struct fmq_sub *sub = conn_find_sub(c, filter);
  if (sub == NULL) {
    struct fmq_filter *f = filter_get(s, filter);
    sub = f ? calloc(1, sizeof(*sub)) : NULL;
    if (sub == NULL) {
      if (f != NULL && f->nholders == 0 && f->broker_qos < 0 && f->request == FILTER_IDLE)
        filter_free(s, f);
      send_error(c, FMQ_CE_INTERNAL, "out of memory", id);
      return;
    }
    sub->filter = f;
    sub->conn = c;
    sub->filter_next = f->holders;
    if (f->holders != NULL)
      f->holders->filter_prev = sub;
    f->holders = sub;
    f->nholders++;
    sub->conn_next = c->subs;
    if (c->subs != NULL)
      c->subs->conn_prev = sub;
    c->subs = sub;
    c->nsubs++;
  }
  if (sub->replies == NULL)
    sub->replies = json_array();
  if (sub->replies == NULL ||
      json_array_append_new(sub->replies, id ? json_incref((json_t *)id) : json_null()) != 0) {
    send_error(c, FMQ_CE_INTERNAL, "out of memory", id);
    return;
  }
  /* Subscribing again, as in MQTT, replaces the QoS and resends the
   * retained messages. */
  sub->qos = (uint8_t)qos;
  sub->want_retained = 1;
  filter_update(s, sub->filter);
}

void fmq_session_unsubscribe(struct fmq_session *s, struct fmq_conn *c, const char *filter,
                             const json_t *id) {
  struct fmq_sub *sub = conn_find_sub(c, filter);
  if (sub != NULL) {
    struct fmq_filter *f = sub->filter;
    sub_unlink(sub);
    filter_update(s, f);
  }
  session_send(c, fmq_client_encode_unsubscribed(filter, id));
}

void fmq_session_release(struct fmq_session *s, struct fmq_conn *c) {
  while (c->subs != NULL) {
    struct fmq_filter *f = c->subs->filter;
    sub_unlink(c->subs);
    filter_update(s, f);
  }
  for (struct fmq_pub *p = c->pubs, *next; p != NULL; p = next) {
    next = p->conn_next;
    p->conn = NULL;
    p->conn_prev = p->conn_next = NULL;
  }
  c->pubs = NULL;
}

/* --- publishing --- */

static void pub_free(struct fmq_session *s, struct fmq_pub *p) {
  if (p->prev != NULL)
    p->prev->next = p->next;
  else
    s->pubs = p->next;
  if (p->next != NULL)
    p->next->prev = p->prev;
  else
    s->pubs_tail = p->prev;
  if (p->conn != NULL) {
    if (p->conn_prev != NULL)
      p->conn_prev->conn_next = p->conn_next;
    else
      p->conn->pubs = p->conn_next;
    if (p->conn_next != NULL)
      p->conn_next->conn_prev = p->conn_prev;
  }
  json_decref(p->id);
  free(p);
}

static void send_publish_error(struct fmq_conn *c, int rc, const json_t *id) {
  if (rc == UV_ENOBUFS)
    send_error(c, FMQ_CE_UNAVAILABLE, "the broker is unreachable and the offline buffer is full",
               id);
  else if (rc == UV_ENOTCONN)
    send_error(c, FMQ_CE_UNAVAILABLE, "the broker is unreachable", id);
  else
    send_error(c, FMQ_CE_INTERNAL, "the message could not be published", id);
}

void fmq_session_publish(struct fmq_session *s, struct fmq_conn *c,
                         const struct fmq_client_msg *m) {
  if (m->qos == 0) {
    /* At most once: a QoS 0 message is not held for a broker that is away. */
    int rc = s->up ? fmq_mqtt_publish(&s->mqtt, m->topic, m->payload, m->payload_len, 0,
                                      m->retain, 0)
                   : UV_ENOTCONN;
    if (rc != 0)
      send_publish_error(c, rc, m->id);
    else if (m->id != NULL)
      session_send(c, fmq_client_encode_puback(m->id));
    return;
  }
  struct fmq_pub *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    send_error(c, FMQ_CE_INTERNAL, "out of memory", m->id);
    return;
  }
  p->token = ++s->next_pub_token;
  int rc = fmq_mqtt_publish(&s->mqtt, m->topic, m->payload, m->payload_len, m->qos, m->retain,
                            p->token);
  if (rc != 0) {
    free(p);
    send_publish_error(c, rc, m->id);
    return;
  }
  p->id = m->id ? json_incref((json_t *)m->id) : NULL;
  p->conn = c;
  p->conn_next = c->pubs;
  if (c->pubs != NULL)
    c->pubs->conn_prev = p;
  c->pubs = p;
  p->prev = s->pubs_tail;
  if (s->pubs_tail != NULL)
    s->pubs_tail->next = p;
  else
    s->pubs = p;
  s->pubs_tail = p;
}

/* Acks come back nearly in sending order, so the search starts at the
 * oldest. */
static void on_puback(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct fmq_pub *p = s->pubs;
  while (p != NULL && p->token != ev->token)
    p = p->next;
  if (p == NULL)
    return;
  if (p->conn != NULL) {
    if (ev->outcome == FMQ_MQTT_DONE) {
      if (p->id != NULL)
        session_send(p->conn, fmq_client_encode_puback(p->id));
    } else if (ev->outcome == FMQ_MQTT_NOT_SENT) {
      send_error(p->conn, FMQ_CE_UNAVAILABLE, "the broker connection was lost", p->id);
    } else if (ev->reason == 0x87) {
      send_error(p->conn, FMQ_CE_FORBIDDEN, "the broker refused the publish", p->id);
    } else if (ev->reason == 0x90) {
      send_error(p->conn, FMQ_CE_INVALID_TOPIC, "the broker refused the topic name", p->id);
    } else {
      send_error(p->conn, FMQ_CE_INTERNAL, "the broker refused the publish", p->id);
    }
  }
  pub_free(s, p);
}

/* --- routing --- */

struct delivery {
  struct fmq_session *s;
  const struct fmq_mqtt_event *ev;
  struct fmq_buf *frame; /* encoded on first use, shared by every recipient */
  int failed;
};

static void deliver(struct delivery *d, struct fmq_conn *c) {
  if (c->delivered == d->s->delivery || d->failed)
    return;
  c->delivered = d->s->delivery;
  if (d->frame == NULL) {
    const struct fmq_mqtt_event *ev = d->ev;
    d->frame = fmq_client_encode_message("message", ev->topic, ev->payload, ev->len, ev->qos,
                                         ev->retained);
    if (d->frame == NULL) {
      fmq_log_error("message on %s: out of memory", ev->topic);
      d->failed = 1;
      return;
    }
  }
  session_send(c, fmq_buf_ref(d->frame));
}

/* The filter through which c takes a message on topic when several of its
 * filters match: the lowest identifier among those subscribed at the
 * broker. The broker sends one copy per matching subscription; routing
 * each copy only to the clients it is designated for delivers once. */
static uint32_t designated_subid(const struct fmq_conn *c, const char *topic) {
  if (c->nsubs == 1)
    return c->subs->filter->subid;
  uint32_t best = UINT32_MAX;
  for (const struct fmq_sub *sub = c->subs; sub != NULL; sub = sub->conn_next) {
    const struct fmq_filter *f = sub->filter;
    if (sub->live && f->broker_qos >= 0 && f->subid < best && fmq_topic_matches(f->text, topic))
      best = f->subid;
  }
  return best;
}

static void route_replay(struct delivery *d, const struct fmq_filter *f) {
  for (const struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next)
    if (h->replay)
      deliver(d, h->conn);
}

static void route_live_by_subid(struct delivery *d, const struct fmq_filter *f) {
  for (const struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next)
    if (h->live && designated_subid(h->conn, d->ev->topic) == f->subid)
      deliver(d, h->conn);
}

static void route_live_visit(void *value, void *ctx) {
  const struct fmq_filter *f = value;
  for (const struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next)
    if (h->live)
      deliver(ctx, h->conn);
}

/* A retained message arrives only because of a SUBSCRIBE (MQTT clears the
 * flag on live traffic), right after that SUBSCRIBE's SUBACK: it goes to
 * the clients that request was made for, and to nobody else. */
static void on_message(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct delivery d = {.s = s, .ev = ev};
  s->delivery++;
  if (ev->nsubids > 0) {
    for (unsigned i = 0; i < ev->nsubids; i++) {
      const struct fmq_filter *f = filter_by_subid(s, ev->subids[i]);
      if (f == NULL)
        continue;
      if (ev->retained)
        route_replay(&d, f);
      else
        route_live_by_subid(&d, f);
    }
  } else if (ev->retained) {
    if (s->last_suback != NULL && fmq_topic_matches(s->last_suback->text, ev->topic))
      route_replay(&d, s->last_suback);
  } else {
    /* Without identifiers (MQTT 3.1.1) the broker sends one copy per
     * session: every matching client gets it once. */
    fmq_trie_match(&s->filters, ev->topic, route_live_visit, &d);
  }
  fmq_buf_unref(d.frame);
}

/* --- broker status --- */

static void broadcast(struct fmq_session *s, struct fmq_buf *frame) {
  for (struct fmq_conn *c = s->server->conns; c != NULL; c = c->next)
    if (c->state == FMQ_CONN_OPEN)
      session_send(c, fmq_buf_ref(frame));
}

void fmq_session_greet(struct fmq_session *s, struct fmq_conn *c) {
  if (!s->up)
    session_send(c, fmq_buf_ref(s->status_down));
}

static void on_connected(struct fmq_session *s) {
  fmq_log_info("broker connected: %s", s->config->broker.url);
  s->up = 1;
  broadcast(s, s->status_up);
  for (uint32_t i = 0; i < s->subid_cap; i++)
    if (s->by_subid[i] != NULL)
      filter_update(s, s->by_subid[i]);
}

/* The broker forgot every subscription (clean start): each is made again
 * on reconnect, and its holders get the retained messages again, as a
 * client that resubscribes after a reconnect would. */
static void on_lost(struct fmq_session *s, const char *cause) {
  if (!s->up)
    return;
  fmq_log_warn("broker connection lost: %s", cause);
  s->up = 0;
  s->last_suback = NULL;
  for (uint32_t i = 0; i < s->subid_cap; i++) {
    struct fmq_filter *f = s->by_subid[i];
    if (f == NULL)
      continue;
    f->broker_qos = -1;
    f->request = FILTER_IDLE;
    for (struct fmq_sub *h = f->holders; h != NULL; h = h->filter_next) {
      h->request = 0;
      h->want_retained = 1;
      h->replay = 0;
    }
    if (f->nholders == 0)
      filter_free(s, f);
  }
  broadcast(s, s->status_down);
}

static void on_mqtt_event(struct fmq_mqtt *m, struct fmq_mqtt_event *ev) {
  struct fmq_session *s = m->data;
  switch (ev->type) {
  case FMQ_MQTT_CONNECTED:
    on_connected(s);
    break;
  case FMQ_MQTT_LOST:
    on_lost(s, ev->text);
    break;
  case FMQ_MQTT_CONNECT_FAILED:
    fmq_log_warn("broker %s: %s; retrying", s->config->broker.url, ev->text);
    break;
  case FMQ_MQTT_MESSAGE:
    on_message(s, ev);
    break;
  case FMQ_MQTT_SUBACK:
    on_suback(s, ev);
    break;
  case FMQ_MQTT_UNSUBACK:
    on_unsuback(s, ev);
    break;
  case FMQ_MQTT_PUBACK:
    on_puback(s, ev);
    break;
  case FMQ_MQTT_STOPPED:
    fmq_log_info("broker disconnected");
    fmq_mqtt_close(&s->mqtt);
    break;
  }
  free(ev);
}

int fmq_session_init(struct fmq_session *s, struct fmq_server *server,
                     const struct fmq_config *config) {
  memset(s, 0, sizeof(*s));
  s->server = server;
  s->config = config;
  s->next_subid = 1; /* identifier 0 is not allowed */
  fmq_trie_init(&s->filters);
  s->status_up = fmq_client_encode_status(1);
  s->status_down = fmq_client_encode_status(0);
  if (s->status_up == NULL || s->status_down == NULL) {
    fmq_session_close(s);
    return UV_ENOMEM;
  }
  int rc = fmq_mqtt_init(&s->mqtt, server->loop, config, on_mqtt_event);
  if (rc != 0) {
    fmq_session_close(s);
    return rc;
  }
  s->mqtt.data = s;
  return 0;
}

int fmq_session_connect(struct fmq_session *s) {
  return fmq_mqtt_connect(&s->mqtt);
}

void fmq_session_stop(struct fmq_session *s) {
  if (s->stopped)
    return;
  s->stopped = 1;
  fmq_mqtt_stop(&s->mqtt);
}

void fmq_session_close(struct fmq_session *s) {
  for (uint32_t i = 0; i < s->subid_cap; i++)
    if (s->by_subid[i] != NULL)
      filter_free(s, s->by_subid[i]);
  while (s->pubs != NULL)
    pub_free(s, s->pubs);
  fmq_trie_close(&s->filters);
  free(s->by_subid);
  free(s->free_subids);
  fmq_buf_unref(s->status_up);
  fmq_buf_unref(s->status_down);
  memset(s, 0, sizeof(*s));
}
