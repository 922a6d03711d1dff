/* Filters: one broker subscription per distinct filter any client holds
 * (struct fmq_filter, its subscription identifier and the index by it),
 * each client's hold on one (struct fmq_sub: its replies and their
 * answers), the one SUBSCRIBE or UNSUBSCRIBE in flight per filter and its
 * SUBACK or UNSUBACK, subscribe/unsubscribe/undo, and what a release, a
 * reconnect, a lost connection and the close do to them. */

#include "session_internal.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MQTT 5 subscription identifiers are at most 268,435,455. */
#define FMQ_SUBID_MAX 268435455u

_Static_assert(sizeof(uintptr_t) >= 8, "request tokens pack a subscription id and a serial");

static uintptr_t request_token(const struct fmq_filter *f) {
  return (uintptr_t)f->subid << 32 | f->request_serial;
}

/* --- filters and their identifiers --- */

struct fmq_filter *fmq_filter_by_subid(const struct fmq_session *s, uint32_t subid) {
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

/* c's subscription to filter (NULL: any filter) through source
 * (UINT32_MAX: any source). */
static struct fmq_sub *peer_find_sub(const struct fmq_peer *c, const char *filter,
                                     uint32_t source) {
  struct fmq_sub *sub;
  LIST_FOREACH(sub, &c->subs, peer_link)
    if ((filter == NULL || strcmp(sub->filter->text, filter) == 0) &&
        (source == UINT32_MAX || sub->source == source))
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
      /* Nor the QoS it asked for: that of a subscribe still waiting, else
       * no more than the broker holds (asking again would not help). */
      if (h->nreplies > 0)
        h->qos = h->replies[h->nreplies - 1].qos;
      else if (f->broker_qos >= 0 && h->qos > f->broker_qos)
        h->qos = (uint8_t)f->broker_qos;
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
    if (s->link != FMQ_LINK_UP)
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
  if (s->link != FMQ_LINK_UP)
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

void fmq_filters_on_suback(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct fmq_filter *f = fmq_filter_by_subid(s, (uint32_t)(ev->token >> 32));
  uint32_t serial = (uint32_t)ev->token;
  struct fmq_sub *h;
  if (f == NULL || f->request != FILTER_SUBSCRIBING || f->request_serial != serial)
    return;
  f->request = FILTER_IDLE;
  if (f->restoring) {
    f->restoring = 0;
    s->restoring--;
  }
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
    if (s->link == FMQ_LINK_UP) {
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

void fmq_filters_on_unsuback(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
  struct fmq_filter *f = fmq_filter_by_subid(s, (uint32_t)(ev->token >> 32));
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

void fmq_session_subscribe(struct fmq_session *s, struct fmq_peer *c, const char *filter,
                           int qos, const json_t *id, uint32_t source) {
  char msg[96];
  fmq_session_enter(s);
  struct fmq_sub *sub = peer_find_sub(c, filter, source);
  int created = sub == NULL;
  if (created) {
    uint64_t max = s->snapshot->config.websocket.max_subscriptions;
    if (c->nsubs >= max) {
      snprintf(msg, sizeof(msg), "at most %llu subscriptions per connection",
               (unsigned long long)max);
      fmq_peer_send_error(c, FMQ_CE_TOO_MANY_SUBSCRIPTIONS, msg, id);
      fmq_session_leave(s);
      return;
    }
    uint32_t dtype = source == 0 ? 0 : s->mapping_dtype[source - 1];
    struct fmq_filter *f = dtype == 0 || peer_track_dtypes(s, c) == 0 ? filter_get(s, filter)
                                                                      : NULL;
    sub = f ? calloc(1, sizeof(*sub)) : NULL;
    if (sub == NULL) {
      if (f != NULL && filter_is_unused(f))
        filter_free(s, f);
      fmq_peer_send_error(c, FMQ_CE_INTERNAL, "out of memory", id);
      fmq_session_leave(s);
      return;
    }
    sub->filter = f;
    sub->peer = c;
    sub->source = source;
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
  fmq_session_leave(s);
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
  fmq_session_enter(s);
  struct fmq_sub *sub;
  while ((sub = peer_find_sub(c, filter, UINT32_MAX)) != NULL)
    sub_drop(s, sub);
  fmq_peer_send(c, fmq_client_encode_unsubscribed(filter, id));
  fmq_session_leave(s);
}

void fmq_session_undo(struct fmq_session *s, struct fmq_peer *c, uint32_t source,
                      const json_t *id) {
  fmq_session_enter(s);
  struct fmq_sub *sub;
  size_t n = 0;
  LIST_FOREACH(sub, &c->subs, peer_link)
    n += sub->source == source;
  char **topics = calloc(n + 1, sizeof(*topics));
  size_t ndropped = 0;
  int failed = topics == NULL;
  while ((sub = peer_find_sub(c, NULL, source)) != NULL) {
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
  fmq_session_leave(s);
}

/* The client is going: each of its subscriptions is dropped unanswered. */
void fmq_filters_release_peer(struct fmq_session *s, struct fmq_peer *c) {
  struct fmq_sub *sub;
  while ((sub = LIST_FIRST(&c->subs)) != NULL) {
    struct fmq_filter *f = sub->filter;
    sub_unlink(sub);
    filter_update(s, f);
  }
}

void fmq_filters_resubscribe(struct fmq_session *s) {
  s->batch_marker = ++s->next_marker;
  for (uint32_t i = 0; i < s->subid_cap; i++) {
    if (s->by_subid[i] != NULL)
      filter_update(s, s->by_subid[i]);
    struct fmq_filter *f = s->by_subid[i];
    if (f != NULL && f->request == FILTER_SUBSCRIBING && !f->restoring) {
      f->restoring = 1;
      s->restoring++;
    }
  }
  s->batch_marker = 0;
}

/* The broker forgot every subscription (clean start): each is made again
 * on reconnect, and its holders get the retained messages again, as a
 * client that resubscribes after a reconnect would. */
void fmq_filters_forget_broker(struct fmq_session *s) {
  s->last_suback = NULL;
  s->restoring = 0;
  for (uint32_t i = 0; i < s->subid_cap; i++) {
    struct fmq_filter *f = s->by_subid[i];
    if (f == NULL)
      continue;
    f->broker_qos = -1;
    f->request = FILTER_IDLE;
    f->restoring = 0;
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
}

void fmq_filters_close(struct fmq_session *s) {
  for (uint32_t i = 0; i < s->subid_cap; i++)
    if (s->by_subid[i] != NULL)
      filter_free(s, s->by_subid[i]);
  fmq_trie_close(&s->filters);
  free(s->by_subid);
  free(s->free_subids);
}
