#include "session.h"

#include "log.h"

#include <stdio.h>
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
  LIST_HEAD(, fmq_sub) holders;
  size_t nholders;
  int broker_qos;                  /* as last requested (the grant may be lower); -1: none */
  enum filter_request request;
  uint32_t request_serial;
  int request_qos;
  uint32_t request_marker;         /* given to the holders its SUBACK answers */
};

static uintptr_t request_token(const struct fmq_filter *f) {
  return (uintptr_t)f->subid << 32 | f->request_serial;
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

/* --- reentrancy ---
 * Sending to a client can close it (its queue overflowed, out of memory),
 * and a closing client releases its subscriptions. Every entry point and
 * event handler runs between session_enter and session_leave; a release
 * requested meanwhile waits for the outermost leave, so no loop here ever
 * walks a holder list that a send just changed. */

static void session_enter(struct fmq_session *s) {
  s->depth++;
}

static void release_now(struct fmq_session *s, struct fmq_peer *c);

static void session_leave(struct fmq_session *s) {
  if (s->depth == 1) {
    struct fmq_peer *c;
    while ((c = SLIST_FIRST(&s->releasing)) != NULL) {
      SLIST_REMOVE_HEAD(&s->releasing, release_link);
      c->release_queued = 0;
      release_now(s, c);
    }
  }
  s->depth--;
}

/* --- subscriptions --- */

static void sub_free_replies(struct fmq_sub *sub) {
  for (uint32_t i = 0; i < sub->nreplies; i++)
    json_decref(sub->replies[i].id);
  free(sub->replies);
  sub->replies = NULL;
  sub->nreplies = sub->replies_cap = 0;
}

static void sub_unlink(struct fmq_sub *sub) {
  LIST_REMOVE(sub, filter_link);
  sub->filter->nholders--;
  LIST_REMOVE(sub, peer_link);
  sub->peer->nsubs--;
  sub_free_replies(sub);
  free(sub);
}

/* c's subscription to filter (NULL: any filter) through origin
 * (UINT32_MAX: any origin). */
static struct fmq_sub *peer_find_sub(const struct fmq_peer *c, const char *filter,
                                     uint32_t origin) {
  struct fmq_sub *sub;
  LIST_FOREACH(sub, &c->subs, peer_link)
    if ((filter == NULL || strcmp(sub->filter->text, filter) == 0) &&
        (origin == UINT32_MAX || sub->origin == origin))
      return sub;
  return NULL;
}

/* The count of delivered serials per delivery type other than 0, made when
 * c first subscribes with one. */
static int peer_track_dtypes(const struct fmq_session *s, struct fmq_peer *c) {
  if (c->delivered_types == NULL)
    c->delivered_types = calloc(s->ndtypes - 1, sizeof(*c->delivered_types));
  return c->delivered_types != NULL ? 0 : -1;
}

static int sub_add_reply(struct fmq_sub *sub, const json_t *id, int qos) {
  if (sub->nreplies == sub->replies_cap) {
    uint32_t cap = sub->replies_cap ? sub->replies_cap * 2 : 2;
    struct fmq_reply *r = realloc(sub->replies, cap * sizeof(*r));
    if (r == NULL)
      return -1;
    sub->replies = r;
    sub->replies_cap = cap;
  }
  sub->replies[sub->nreplies++] = (struct fmq_reply){
      .id = id ? json_incref((json_t *)id) : NULL, .qos = (uint8_t)qos};
  return 0;
}

/* Answers the replies that `request` carried (every reply when request is
 * 0): "subscribed" with the lower of the asked and granted QoS, or an
 * error. Returns how many replies are left for a later request. */
static uint32_t sub_answer(struct fmq_sub *sub, uint32_t request, int granted,
                           enum fmq_client_error_code code, const char *message) {
  uint32_t kept = 0;
  for (uint32_t i = 0; i < sub->nreplies; i++) {
    struct fmq_reply *r = &sub->replies[i];
    if (request != 0 && r->request != request) {
      sub->replies[kept++] = *r;
      continue;
    }
    if (granted >= 0)
      fmq_peer_send(sub->peer, fmq_client_encode_subscribed(
                                  sub->filter->text, granted < r->qos ? granted : r->qos, r->id));
    else
      fmq_peer_send_error(sub->peer, code, message, r->id);
    json_decref(r->id);
  }
  sub->nreplies = kept;
  return kept;
}

static int filter_wanted_qos(const struct fmq_filter *f) {
  const struct fmq_sub *h;
  int qos = 0;
  LIST_FOREACH(h, &f->holders, filter_link)
    if (h->qos > qos)
      qos = h->qos;
  return qos;
}

static int filter_is_unused(const struct fmq_filter *f) {
  return f->nholders == 0 && f->broker_qos < 0 && f->request == FILTER_IDLE;
}

/* Answers with an error the holders waiting for `request` (0: every
 * holder waiting for one not sent yet). Those never granted are dropped
 * (every subscribe they made is answered); a granted holder keeps what it
 * has, since only its new subscribe failed and the broker still holds the
 * old one, and subscribes made after that request wait for the next. Returns
 * 1 when f was freed. */
static int filter_fail_waiting(struct fmq_session *s, struct fmq_filter *f,
                               enum fmq_client_error_code code, const char *message,
                               uint32_t request) {
  for (struct fmq_sub *h = LIST_FIRST(&f->holders), *next; h != NULL; h = next) {
    next = LIST_NEXT(h, filter_link);
    if (request != 0 && h->request != request)
      continue;
    if (!h->live) {
      sub_answer(h, 0, -1, code, message);
      sub_unlink(h);
    } else {
      h->request = 0;
      h->want_retained = sub_answer(h, request, -1, code, message) > 0;
    }
  }
  if (!filter_is_unused(f))
    return 0;
  filter_free(s, f);
  return 1;
}

/* Brings the broker in line with f's holders: one request at a time, so
 * that each SUBACK's retained messages have a known audience. May free f. */
static void filter_update(struct fmq_session *s, struct fmq_filter *f) {
  if (f->request != FILTER_IDLE || s->stopped)
    return;
  if (f->nholders == 0) {
    if (f->broker_qos < 0) {
      filter_free(s, f);
      return;
    }
    if (!s->up)
      return;
    f->request_serial = ++s->next_request;
    int rc = fmq_mqtt_unsubscribe(&s->mqtt, f->text, request_token(f));
    if (rc == 0) {
      f->request = FILTER_UNSUBSCRIBING;
    } else if (rc != UV_ENOTCONN) {
      /* The broker keeps sending copies with this identifier; forgetting
       * the filter would hand them to a later filter that reuses it. */
      fmq_log_warn("unsubscribe %s: %s", f->text, uv_strerror(rc));
    }
    return;
  }
  if (!s->up)
    return;
  struct fmq_sub *h;
  int qos = filter_wanted_qos(f);
  int waiting = 0;
  LIST_FOREACH(h, &f->holders, filter_link)
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
  f->request_marker = s->batch_marker ? s->batch_marker : ++s->next_marker;
  LIST_FOREACH(h, &f->holders, filter_link) {
    if (!h->want_retained || h->request != 0)
      continue;
    h->request = f->request_serial;
    for (uint32_t i = 0; i < h->nreplies; i++)
      if (h->replies[i].request == 0)
        h->replies[i].request = f->request_serial;
  }
}

static void on_suback(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct fmq_filter *f = filter_by_subid(s, (uint32_t)(ev->token >> 32));
  uint32_t serial = (uint32_t)ev->token;
  struct fmq_sub *h;
  if (f == NULL || f->request != FILTER_SUBSCRIBING || f->request_serial != serial)
    return;
  f->request = FILTER_IDLE;
  switch (ev->outcome) {
  case FMQ_MQTT_DONE:
    /* What was asked, not what was granted: asking again would not help. */
    f->broker_qos = f->request_qos;
    s->last_suback = f;
    LIST_FOREACH(h, &f->holders, filter_link) {
      if (h->request != serial) {
        h->replay = 0;
        continue;
      }
      h->request = 0;
      h->replay = f->request_marker;
      h->live = 1;
      h->want_retained = sub_answer(h, serial, ev->reason, FMQ_CE_INTERNAL, NULL) > 0;
    }
    break;
  case FMQ_MQTT_REFUSED:
    fmq_log_info("subscribe %s: refused by the broker (reason 0x%02x)", f->text, ev->reason);
    /* A refused upgrade leaves the old subscription; don't ask again. */
    if (f->broker_qos >= 0)
      f->broker_qos = f->request_qos;
    if (filter_fail_waiting(s, f, FMQ_CE_FORBIDDEN, "the broker refused the subscription",
                            serial))
      return;
    break;
  case FMQ_MQTT_NOT_SENT:
    /* Lost with the connection: sent again after the reconnect. Dropped
     * while connected: answered, not retried in a loop. */
    if (s->up) {
      if (filter_fail_waiting(s, f, FMQ_CE_UNAVAILABLE, "the subscription was not carried out",
                              serial))
        return;
      break;
    }
    LIST_FOREACH(h, &f->holders, filter_link) {
      if (h->request != serial)
        continue;
      h->request = 0;
      for (uint32_t i = 0; i < h->nreplies; i++)
        if (h->replies[i].request == serial)
          h->replies[i].request = 0;
    }
    return;
  }
  filter_update(s, f);
}

static void on_unsuback(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct fmq_filter *f = filter_by_subid(s, (uint32_t)(ev->token >> 32));
  if (f == NULL || f->request != FILTER_UNSUBSCRIBING ||
      f->request_serial != (uint32_t)ev->token)
    return;
  f->request = FILTER_IDLE;
  if (ev->outcome == FMQ_MQTT_REFUSED) {
    /* Still subscribed at the broker: keep the filter (and its identifier)
     * rather than let a new filter inherit its copies. */
    fmq_log_warn("unsubscribe %s: refused by the broker (reason 0x%02x)", f->text, ev->reason);
    if (f->nholders == 0)
      return;
  } else if (ev->outcome == FMQ_MQTT_DONE) {
    f->broker_qos = -1;
  }
  filter_update(s, f);
}

int fmq_session_check_topic(const struct fmq_session *s, const struct fmq_peer *c,
                            const char *topic, int filter, enum fmq_client_error_code *code,
                            char *why, size_t whylen) {
  uint64_t max = s->snapshot->config.broker.max_topic_levels;
  size_t len = strlen(topic);
  *code = FMQ_CE_INVALID_TOPIC;
  if (filter && fmq_topic_is_shared(topic, len)) {
    snprintf(why, whylen, "shared subscriptions ($share/...) are not supported");
    return -1;
  }
  if (fmq_topic_levels(topic, len) > max) {
    snprintf(why, whylen, "a topic may have at most %llu levels", (unsigned long long)max);
    return -1;
  }
  *code = FMQ_CE_FORBIDDEN;
  if (filter && !fmq_acl_allows(&c->identity.acl.subscribe, topic)) {
    snprintf(why, whylen, "not allowed to subscribe to this topic filter");
    return -1;
  }
  if (!filter && !fmq_acl_allows(&c->identity.acl.publish, topic)) {
    snprintf(why, whylen, "not allowed to publish to this topic");
    return -1;
  }
  return 0;
}

void fmq_session_subscribe(struct fmq_session *s, struct fmq_peer *c, const char *filter,
                           int qos, const json_t *id, uint32_t origin) {
  char msg[96];
  session_enter(s);
  struct fmq_sub *sub = peer_find_sub(c, filter, origin);
  int created = sub == NULL;
  if (created) {
    uint64_t max = s->snapshot->config.websocket.max_subscriptions;
    if (c->nsubs >= max) {
      snprintf(msg, sizeof(msg), "at most %llu subscriptions per connection",
               (unsigned long long)max);
      fmq_peer_send_error(c, FMQ_CE_TOO_MANY_SUBSCRIPTIONS, msg, id);
      session_leave(s);
      return;
    }
    uint32_t dtype = origin == 0 ? 0 : s->mapping_dtype[origin - 1];
    struct fmq_filter *f = dtype == 0 || peer_track_dtypes(s, c) == 0 ? filter_get(s, filter)
                                                                      : NULL;
    sub = f ? calloc(1, sizeof(*sub)) : NULL;
    if (sub == NULL) {
      if (f != NULL && filter_is_unused(f))
        filter_free(s, f);
      fmq_peer_send_error(c, FMQ_CE_INTERNAL, "out of memory", id);
      session_leave(s);
      return;
    }
    sub->filter = f;
    sub->peer = c;
    sub->origin = origin;
    sub->dtype = dtype;
    LIST_INSERT_HEAD(&f->holders, sub, filter_link);
    f->nholders++;
    LIST_INSERT_HEAD(&c->subs, sub, peer_link);
    c->nsubs++;
  }
  struct fmq_filter *f = sub->filter;
  if (sub_add_reply(sub, id, qos) != 0) {
    if (created)
      sub_unlink(sub);
    fmq_peer_send_error(c, FMQ_CE_INTERNAL, "out of memory", id);
  } else {
    /* Subscribing again, as in MQTT, replaces the QoS and resends the
     * retained messages. */
    sub->qos = (uint8_t)qos;
    sub->want_retained = 1;
  }
  filter_update(s, f);
  session_leave(s);
}

/* Every subscribe gets its answer: one the broker has not granted yet is
 * answered as asked, just before the unsubscribe that ends it. */
static void sub_drop(struct fmq_session *s, struct fmq_sub *sub) {
  struct fmq_filter *f = sub->filter;
  sub_answer(sub, 0, 2, FMQ_CE_INTERNAL, NULL);
  sub_unlink(sub);
  filter_update(s, f);
}

/* Each drop searches again: updating a filter can unlink other holders. */
void fmq_session_unsubscribe(struct fmq_session *s, struct fmq_peer *c, const char *filter,
                             const json_t *id) {
  session_enter(s);
  struct fmq_sub *sub;
  while ((sub = peer_find_sub(c, filter, UINT32_MAX)) != NULL)
    sub_drop(s, sub);
  fmq_peer_send(c, fmq_client_encode_unsubscribed(filter, id));
  session_leave(s);
}

void fmq_session_undo(struct fmq_session *s, struct fmq_peer *c, uint32_t origin,
                      const json_t *id) {
  session_enter(s);
  struct fmq_sub *sub;
  size_t n = 0;
  LIST_FOREACH(sub, &c->subs, peer_link)
    n += sub->origin == origin;
  char **topics = calloc(n + 1, sizeof(*topics));
  size_t ndropped = 0;
  int failed = topics == NULL;
  while ((sub = peer_find_sub(c, NULL, origin)) != NULL) {
    if (!failed && ndropped < n && (topics[ndropped] = strdup(sub->filter->text)) != NULL)
      ndropped++;
    else
      failed = 1;
    sub_drop(s, sub);
  }
  if (failed)
    fmq_peer_send_error(c, FMQ_CE_INTERNAL, "out of memory", id);
  else
    fmq_peer_send(c, fmq_client_encode_unsubscribed_topics((const char *const *)topics, ndropped,
                                                          id));
  for (size_t i = 0; i < ndropped; i++)
    free(topics[i]);
  free(topics);
  session_leave(s);
}

static void release_now(struct fmq_session *s, struct fmq_peer *c) {
  struct fmq_sub *sub;
  while ((sub = LIST_FIRST(&c->subs)) != NULL) {
    struct fmq_filter *f = sub->filter;
    sub_unlink(sub);
    filter_update(s, f);
  }
  struct fmq_pub *p;
  while ((p = LIST_FIRST(&c->pubs)) != NULL) {
    LIST_REMOVE(p, peer_link);
    p->peer = NULL;
  }
  free(c->delivered_types);
  c->delivered_types = NULL;
  LIST_REMOVE(c, link);
  c->attached = 0;
}

void fmq_session_release(struct fmq_session *s, struct fmq_peer *c) {
  if (!c->attached)
    return;
  session_enter(s);
  if (!c->release_queued) {
    c->release_queued = 1;
    SLIST_INSERT_HEAD(&s->releasing, c, release_link);
  }
  session_leave(s);
}

/* --- publishing --- */

static void pub_free(struct fmq_session *s, struct fmq_pub *p) {
  TAILQ_REMOVE(&s->pubs, p, link);
  if (p->peer != NULL)
    LIST_REMOVE(p, peer_link);
  if (p->held)
    s->held--;
  json_decref(p->id);
  free(p);
}

static void send_publish_error(struct fmq_session *s, struct fmq_peer *c, int rc,
                               const json_t *id) {
  if (rc == UV_ENOBUFS && s->up)
    fmq_peer_send_error(c, FMQ_CE_UNAVAILABLE, "too many messages are waiting for the broker", id);
  else if (rc == UV_ENOBUFS)
    fmq_peer_send_error(c, FMQ_CE_UNAVAILABLE, "the broker is unreachable and the offline buffer is full",
               id);
  else if (rc == UV_ENOTCONN)
    fmq_peer_send_error(c, FMQ_CE_UNAVAILABLE, "the broker is unreachable", id);
  else
    fmq_peer_send_error(c, FMQ_CE_INTERNAL, "the message could not be published", id);
}

static void session_publish(struct fmq_session *s, struct fmq_peer *c,
                            const struct fmq_client_msg *msg) {
  /* An MQTT 5 broker disconnects a client that publishes above its Maximum
   * QoS; one web client must not cut everyone off, so the message goes at
   * the broker's maximum (as a broker downgrades a subscription). */
  struct fmq_client_msg capped = *msg;
  const struct fmq_client_msg *m = &capped;
  if (capped.qos > s->max_qos)
    capped.qos = s->max_qos;
  if (m->qos == 0) {
    /* At most once: a QoS 0 message is not held for a broker that is away. */
    int rc = s->up ? fmq_mqtt_publish(&s->mqtt, m->topic, m->payload, m->payload_len, 0,
                                      m->retain, 0)
                   : UV_ENOTCONN;
    if (rc != 0)
      send_publish_error(s, c, rc, m->id);
    else if (m->id != NULL)
      fmq_peer_send(c, fmq_client_encode_puback(m->id));
    return;
  }
  /* Paho's own bound also covers messages queued while connected, so the
   * offline bound is counted here. */
  if (!s->up && s->held >= s->snapshot->config.broker.offline_buffer) {
    send_publish_error(s, c, s->snapshot->config.broker.offline_buffer ? UV_ENOBUFS : UV_ENOTCONN, m->id);
    return;
  }
  struct fmq_pub *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    fmq_peer_send_error(c, FMQ_CE_INTERNAL, "out of memory", m->id);
    return;
  }
  p->token = ++s->next_pub_token;
  int rc = fmq_mqtt_publish(&s->mqtt, m->topic, m->payload, m->payload_len, m->qos, m->retain,
                            p->token);
  if (rc != 0) {
    free(p);
    send_publish_error(s, c, rc, m->id);
    return;
  }
  p->id = m->id ? json_incref((json_t *)m->id) : NULL;
  p->held = !s->up;
  s->held += (uint64_t)p->held;
  p->peer = c;
  LIST_INSERT_HEAD(&c->pubs, p, peer_link);
  TAILQ_INSERT_TAIL(&s->pubs, p, link);
}

void fmq_session_publish(struct fmq_session *s, struct fmq_peer *c,
                         const struct fmq_client_msg *m) {
  session_enter(s);
  session_publish(s, c, m);
  session_leave(s);
}

/* Acks come back nearly in sending order, so the search starts at the
 * oldest. */
static void on_puback(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct fmq_pub *p;
  TAILQ_FOREACH(p, &s->pubs, link)
    if (p->token == ev->token)
      break;
  if (p == NULL)
    return;
  if (p->peer != NULL) {
    if (ev->outcome == FMQ_MQTT_DONE) {
      if (p->id != NULL)
        fmq_peer_send(p->peer, fmq_client_encode_puback(p->id));
    } else if (ev->outcome == FMQ_MQTT_NOT_SENT) {
      fmq_peer_send_error(p->peer, FMQ_CE_UNAVAILABLE, "the broker connection was lost", p->id);
    } else if (ev->reason == MQTTREASONCODE_NOT_AUTHORIZED) {
      fmq_peer_send_error(p->peer, FMQ_CE_FORBIDDEN, "the broker refused the publish", p->id);
    } else if (ev->reason == MQTTREASONCODE_TOPIC_NAME_INVALID) {
      fmq_peer_send_error(p->peer, FMQ_CE_INVALID_TOPIC, "the broker refused the topic name", p->id);
    } else {
      fmq_peer_send_error(p->peer, FMQ_CE_INTERNAL, "the broker refused the publish", p->id);
    }
  }
  pub_free(s, p);
}

/* --- routing --- */

static void deliver(struct fmq_session *s, const struct fmq_mqtt_event *ev, struct fmq_peer *c,
                    uint32_t dtype) {
  uint64_t *seen = dtype == 0 ? &c->delivered : &c->delivered_types[dtype - 1];
  if (*seen == s->delivery)
    return;
  *seen = s->delivery;
  struct fmq_buf **frame = &s->group_frames[dtype];
  if (*frame == NULL) {
    *frame = fmq_client_encode_message(s->dtypes[dtype], ev->topic, ev->payload, ev->len, ev->qos,
                                       ev->retained);
    if (*frame == NULL) {
      fmq_log_error("message on %s: out of memory", ev->topic);
      return;
    }
  }
  fmq_peer_send(c, fmq_buf_ref(*frame));
}

/* The filter through which c takes a live message on topic with delivery
 * type dtype when several of its filters match: the lowest identifier among
 * those subscribed at the broker. The broker sends one copy per matching
 * subscription; routing each copy only to the clients it is designated for
 * delivers once per type. */
static uint32_t designated_subid(const struct fmq_peer *c, uint32_t dtype, const char *topic) {
  const struct fmq_sub *sub;
  uint32_t best = UINT32_MAX;
  LIST_FOREACH(sub, &c->subs, peer_link) {
    const struct fmq_filter *f = sub->filter;
    if (sub->live && sub->dtype == dtype && f->broker_qos >= 0 && f->subid < best &&
        fmq_topic_matches(f->text, topic))
      best = f->subid;
  }
  return best;
}

/* A retained message goes to the holders its SUBACK answered. Holders that
 * several SUBACKs of one batch answered (every filter, after a reconnect)
 * take it only through the lowest matching identifier among them. */
static int replay_designated(const struct fmq_sub *h, const char *topic) {
  const struct fmq_sub *sub;
  LIST_FOREACH(sub, &h->peer->subs, peer_link)
    if (sub != h && sub->replay == h->replay && sub->dtype == h->dtype &&
        sub->filter->subid < h->filter->subid && fmq_topic_matches(sub->filter->text, topic))
      return 0;
  return 1;
}

static void route_replay(struct fmq_session *s, const struct fmq_mqtt_event *ev,
                         const struct fmq_filter *f) {
  const struct fmq_sub *h;
  LIST_FOREACH(h, &f->holders, filter_link)
    if (h->replay != 0 && replay_designated(h, ev->topic))
      deliver(s, ev, h->peer, h->dtype);
}

static void route_live_by_subid(struct fmq_session *s, const struct fmq_mqtt_event *ev,
                                const struct fmq_filter *f) {
  /* A client with one filter needs no choosing: the copy came through it.
   * That is the common case, and it keeps topic matching off the
   * per-recipient path. */
  const struct fmq_sub *h;
  LIST_FOREACH(h, &f->holders, filter_link)
    if (h->live &&
        (h->peer->nsubs == 1 || designated_subid(h->peer, h->dtype, ev->topic) == f->subid))
      deliver(s, ev, h->peer, h->dtype);
}

struct route_ctx {
  struct fmq_session *s;
  const struct fmq_mqtt_event *ev;
};

static void route_live_visit(void *value, void *arg) {
  const struct fmq_filter *f = value;
  struct route_ctx *ctx = arg;
  const struct fmq_sub *h;
  LIST_FOREACH(h, &f->holders, filter_link)
    if (h->live)
      deliver(ctx->s, ctx->ev, h->peer, h->dtype);
}

static void group_reset(struct fmq_session *s) {
  free(s->group);
  s->group = NULL;
  for (uint32_t i = 0; s->group_frames != NULL && i < s->ndtypes; i++) {
    fmq_buf_unref(s->group_frames[i]);
    s->group_frames[i] = NULL;
  }
  s->ngroup_subids = 0;
}

/* The broker sends the copies of one message (one per matching
 * subscription, each with other identifiers) back to back. A message equal
 * to the previous one whose identifiers are all new is such a copy: it
 * shares the delivery serial (nobody gets it twice, even if the client's
 * filters changed in between) and the encoded frame. A second, equal
 * publish repeats an identifier and starts a new group. */
static int group_continues(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  const struct fmq_mqtt_event *g = s->group;
  if (g == NULL || ev->nsubids == 0 || g->len != ev->len || g->qos != ev->qos ||
      g->retained != ev->retained || strcmp(g->topic, ev->topic) != 0 ||
      (ev->len > 0 && memcmp(g->payload, ev->payload, ev->len) != 0))
    return 0;
  for (unsigned i = 0; i < ev->nsubids; i++)
    for (uint32_t j = 0; j < s->ngroup_subids; j++)
      if (s->group_subids[j] == ev->subids[i])
        return 0;
  return 1;
}

static void group_add(struct fmq_session *s, struct fmq_mqtt_event *ev) {
  free(s->group);
  s->group = ev;
  if (ev->nsubids == 0)
    return;
  if (s->ngroup_subids + ev->nsubids > s->group_subids_cap) {
    uint32_t cap = (s->ngroup_subids + ev->nsubids) * 2;
    uint32_t *ids = realloc(s->group_subids, cap * sizeof(*ids));
    if (ids == NULL)
      return; /* the designated filter still keeps copies apart */
    s->group_subids = ids;
    s->group_subids_cap = cap;
  }
  memcpy(s->group_subids + s->ngroup_subids, ev->subids, ev->nsubids * sizeof(*ev->subids));
  s->ngroup_subids += ev->nsubids;
}

/* Takes ownership of ev. */
static void on_message(struct fmq_session *s, struct fmq_mqtt_event *ev) {
  if (!group_continues(s, ev)) {
    group_reset(s);
    s->delivery++;
  }
  group_add(s, ev);
  if (ev->nsubids > 0) {
    for (unsigned i = 0; i < ev->nsubids; i++) {
      const struct fmq_filter *f = filter_by_subid(s, ev->subids[i]);
      if (f == NULL)
        continue;
      if (ev->retained)
        route_replay(s, ev, f);
      else
        route_live_by_subid(s, ev, f);
    }
  } else if (ev->retained) {
    /* A retained message follows its SUBSCRIBE's SUBACK (MQTT clears the
     * flag on live traffic, and a broker answers SUBSCRIBEs in order). */
    if (s->last_suback != NULL && fmq_topic_matches(s->last_suback->text, ev->topic))
      route_replay(s, ev, s->last_suback);
  } else {
    /* Without identifiers (MQTT 3.1.1) the broker sends one copy per
     * session: every matching client gets it once. */
    struct route_ctx ctx = {.s = s, .ev = ev};
    fmq_trie_match(&s->filters, ev->topic, route_live_visit, &ctx);
  }
}

/* --- broker status --- */

/* A peer that a send closes stays listed until the outermost leave. */
static void broadcast(struct fmq_session *s, struct fmq_buf *frame) {
  struct fmq_peer *c;
  LIST_FOREACH(c, &s->peers, link)
    fmq_peer_send(c, fmq_buf_ref(frame));
}

void fmq_session_attach(struct fmq_session *s, struct fmq_peer *c) {
  LIST_INIT(&c->subs);
  LIST_INIT(&c->pubs);
  c->nsubs = 0;
  c->delivered = 0;
  c->delivered_types = NULL;
  c->release_queued = 0;
  c->attached = 1;
  LIST_INSERT_HEAD(&s->peers, c, link);
  if (!s->up)
    fmq_peer_send(c, fmq_buf_ref(s->status_down));
}

static void on_connected(struct fmq_session *s) {
  fmq_log_info("broker connected: %s", s->snapshot->config.broker.url);
  s->up = 1;
  broadcast(s, s->status_up);
  s->batch_marker = ++s->next_marker;
  for (uint32_t i = 0; i < s->subid_cap; i++)
    if (s->by_subid[i] != NULL)
      filter_update(s, s->by_subid[i]);
  s->batch_marker = 0;
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
    struct fmq_sub *h;
    LIST_FOREACH(h, &f->holders, filter_link) {
      h->request = 0;
      h->want_retained = 1;
      h->replay = 0;
      for (uint32_t j = 0; j < h->nreplies; j++)
        h->replies[j].request = 0;
    }
    if (f->nholders == 0)
      filter_free(s, f);
  }
  broadcast(s, s->status_down);
}

static void on_mqtt_event(struct fmq_mqtt *m, struct fmq_mqtt_event *ev) {
  struct fmq_session *s = m->data;
  session_enter(s);
  if (ev->type != FMQ_MQTT_MESSAGE)
    group_reset(s);
  switch (ev->type) {
  case FMQ_MQTT_CONNECTED:
    on_connected(s);
    break;
  case FMQ_MQTT_LOST:
    on_lost(s, ev->text);
    break;
  case FMQ_MQTT_CONNECT_FAILED:
    fmq_log_warn("broker %s: %s; retrying", s->snapshot->config.broker.url, ev->text);
    break;
  case FMQ_MQTT_CONNACK:
    s->max_qos = ev->reason;
    if (s->max_qos < 2)
      fmq_log_info("broker: maximum QoS %d; higher publishes are sent at %d", s->max_qos,
                   s->max_qos);
    break;
  case FMQ_MQTT_MESSAGE:
    on_message(s, ev);
    ev = NULL;
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
  case FMQ_MQTT_DISCONNECT_DONE: /* mqtt.c's own */
    break;
  }
  free(ev);
  session_leave(s);
}

/* "message", then each distinct deliver_type of the mappings. */
static int session_init_dtypes(struct fmq_session *s) {
  const struct fmq_config *config = &s->snapshot->config;
  s->dtypes = calloc(config->nmappings + 1, sizeof(*s->dtypes));
  s->mapping_dtype = calloc(config->nmappings + 1, sizeof(*s->mapping_dtype));
  if (s->dtypes == NULL || s->mapping_dtype == NULL)
    return -1;
  s->dtypes[s->ndtypes++] = "message";
  for (size_t i = 0; i < config->nmappings; i++) {
    const char *type = config->mappings[i].deliver_type;
    uint32_t d = 0;
    while (type != NULL && d < s->ndtypes && strcmp(s->dtypes[d], type) != 0)
      d++;
    if (type != NULL && d == s->ndtypes)
      s->dtypes[s->ndtypes++] = type;
    s->mapping_dtype[i] = type != NULL ? d : 0;
  }
  s->group_frames = calloc(s->ndtypes, sizeof(*s->group_frames));
  return s->group_frames != NULL ? 0 : -1;
}

int fmq_session_init(struct fmq_session *s, uv_loop_t *loop, struct fmq_snapshot *snapshot) {
  memset(s, 0, sizeof(*s));
  s->snapshot = fmq_snapshot_ref(snapshot);
  s->next_subid = 1; /* identifier 0 is not allowed */
  s->max_qos = 2;
  TAILQ_INIT(&s->pubs);
  LIST_INIT(&s->peers);
  SLIST_INIT(&s->releasing);
  fmq_trie_init(&s->filters);
  s->status_up = fmq_client_encode_status(1);
  s->status_down = fmq_client_encode_status(0);
  if (s->status_up == NULL || s->status_down == NULL || session_init_dtypes(s) != 0) {
    fmq_session_close(s);
    return UV_ENOMEM;
  }
  int rc = fmq_mqtt_init(&s->mqtt, loop, &snapshot->config, on_mqtt_event);
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
  group_reset(s);
  free(s->group_frames);
  free(s->dtypes);
  free(s->mapping_dtype);
  free(s->group_subids);
  for (uint32_t i = 0; i < s->subid_cap; i++)
    if (s->by_subid[i] != NULL)
      filter_free(s, s->by_subid[i]);
  while (!TAILQ_EMPTY(&s->pubs))
    pub_free(s, TAILQ_FIRST(&s->pubs));
  fmq_trie_close(&s->filters);
  free(s->by_subid);
  free(s->free_subids);
  fmq_buf_unref(s->status_up);
  fmq_buf_unref(s->status_down);
  fmq_snapshot_unref(s->snapshot);
  memset(s, 0, sizeof(*s));
}
