/* Routing of arriving messages: each copy to the holders it is designated
 * for (exactly once per client and delivery type), retained replays to the
 * audience of their SUBACK, the copies of one message grouped into one
 * delivery with one encoded frame per type, and the 3.1.1 path through the
 * subscription trie. */

#include "session_internal.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

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

void fmq_route_reset(struct fmq_session *s) {
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
void fmq_route_message(struct fmq_session *s, struct fmq_mqtt_event *ev) {
  if (!group_continues(s, ev)) {
    fmq_route_reset(s);
    s->delivery++;
  }
  group_add(s, ev);
  if (ev->nsubids > 0) {
    for (unsigned i = 0; i < ev->nsubids; i++) {
      const struct fmq_filter *f = fmq_filter_by_subid(s, ev->subids[i]);
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
