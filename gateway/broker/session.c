/* The shared session itself: init and close (with the table of delivery
 * types), the dispatch of MQTT events, re-entrancy, attaching and releasing
 * peers, the broker's status, connect and stop, and the topic check.
 * Filters are in filters.c, routing in route.c, publishes in publish.c. */

#include "session_internal.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- reentrancy ---
 * Sending to a client can close it (its queue overflowed, out of memory),
 * and a closing client releases its subscriptions. Every entry point and
 * event handler runs between fmq_session_enter and fmq_session_leave; a
 * release requested meanwhile waits for the outermost leave, so no loop
 * here ever walks a holder list that a send just changed. */

void fmq_session_enter(struct fmq_session *s) {
  s->depth++;
}

static void release_now(struct fmq_session *s, struct fmq_peer *c);

void fmq_session_leave(struct fmq_session *s) {
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

static void release_now(struct fmq_session *s, struct fmq_peer *c) {
  fmq_filters_release_peer(s, c);
  fmq_publish_forget_peer(s, c);
  free(c->delivered_types);
  c->delivered_types = NULL;
  LIST_REMOVE(c, link);
  c->attached = 0;
}

void fmq_session_release(struct fmq_session *s, struct fmq_peer *c) {
  if (!c->attached)
    return;
  fmq_session_enter(s);
  if (!c->release_queued) {
    c->release_queued = 1;
    SLIST_INSERT_HEAD(&s->releasing, c, release_link);
  }
  fmq_session_leave(s);
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
  c->paused = 0;
  LIST_INSERT_HEAD(&s->peers, c, link);
  if (s->link != FMQ_LINK_UP)
    fmq_peer_send(c, fmq_buf_ref(s->status_down));
}

static void on_connected(struct fmq_session *s) {
  fmq_log_info("broker connected: %s", s->snapshot->config.broker.url);
  s->link = FMQ_LINK_UP;
  broadcast(s, s->status_up);
  fmq_filters_resubscribe(s);
  fmq_publish_on_link(s);
}

static void on_lost(struct fmq_session *s, const char *cause) {
  if (s->link != FMQ_LINK_UP)
    return;
  fmq_log_warn("broker connection lost: %s", cause);
  s->link = FMQ_LINK_DOWN;
  fmq_filters_forget_broker(s);
  broadcast(s, s->status_down);
  fmq_publish_on_link(s);
}

static void on_mqtt_event(struct fmq_mqtt *m, struct fmq_mqtt_event *ev) {
  struct fmq_session *s = m->data;
  fmq_session_enter(s);
  uint32_t restoring = s->restoring;
  if (ev->type != FMQ_MQTT_MESSAGE)
    fmq_route_reset(s);
  switch (ev->type) {
  case FMQ_MQTT_CONNECTED:
    on_connected(s);
    break;
  case FMQ_MQTT_LOST:
    on_lost(s, ev->text);
    break;
  case FMQ_MQTT_CONNECT_FAILED:
    fmq_log_warn("broker %s: %s; retrying", s->snapshot->config.broker.url, ev->text);
    if (s->link == FMQ_LINK_CONNECTING) {
      s->link = FMQ_LINK_DOWN;
      fmq_publish_on_link(s);
    }
    break;
  case FMQ_MQTT_CONNACK:
    s->max_qos = ev->reason;
    if (s->max_qos < 2)
      fmq_log_info("broker: maximum QoS %d; higher publishes are sent at %d", s->max_qos,
                   s->max_qos);
    break;
  case FMQ_MQTT_MESSAGE:
    fmq_route_message(s, ev);
    ev = NULL;
    break;
  case FMQ_MQTT_SUBACK:
    fmq_filters_on_suback(s, ev);
    break;
  case FMQ_MQTT_UNSUBACK:
    fmq_filters_on_unsuback(s, ev);
    break;
  case FMQ_MQTT_STOPPED:
    fmq_log_info("broker disconnected");
    fmq_mqtt_close(&s->mqtt);
    break;
  case FMQ_MQTT_DISCONNECT_DONE: /* mqtt.c's own */
    break;
  }
  free(ev);
  /* The last re-subscription answered: what waits may go (outside the
   * SUBACK's handling, since resumed clients may come back in). */
  if (restoring != 0 && s->restoring == 0 && s->link == FMQ_LINK_UP)
    fmq_publish_on_link(s);
  fmq_session_leave(s);
}

static void on_publisher_event(struct fmq_publisher *p, const struct fmq_publisher_event *ev) {
  struct fmq_session *s = p->data;
  fmq_session_enter(s);
  switch (ev->type) {
  case FMQ_PUB_CONNECTED:
    fmq_log_info("broker connected for publishing: %s", s->snapshot->config.broker.url);
    s->pub_link = FMQ_LINK_UP;
    fmq_publish_on_link(s);
    break;
  case FMQ_PUB_CONNECT_FAILED:
  case FMQ_PUB_LOST:
    if (s->pub_link != FMQ_LINK_DOWN)
      fmq_log_warn("broker %s (publishing): %s; retrying",
                   s->snapshot->config.broker.url, ev->cause);
    s->pub_link = FMQ_LINK_DOWN;
    fmq_publish_on_link(s);
    break;
  case FMQ_PUB_DONE:
    fmq_publish_on_done(s, ev->done);
    break;
  case FMQ_PUB_STOPPED:
    fmq_publisher_close(p);
    break;
  }
  fmq_session_leave(s);
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
  STAILQ_INIT(&s->queued);
  TAILQ_INIT(&s->paused);
  LIST_INIT(&s->peers);
  SLIST_INIT(&s->releasing);
  fmq_trie_init(&s->filters);
  s->status_up = fmq_client_encode_status(1);
  s->status_down = fmq_client_encode_status(0);
  if (s->status_up == NULL || s->status_down == NULL || session_init_dtypes(s) != 0) {
    fmq_session_close(s);
    return UV_ENOMEM;
  }
  /* The publisher first: it makes no handle yet, so a failure after it
   * only needs fmq_session_close. */
  int rc = fmq_publisher_init(&s->publisher, loop, &snapshot->config, on_publisher_event);
  if (rc != 0) {
    fmq_session_close(s);
    return rc;
  }
  s->publisher.data = s;
  rc = fmq_mqtt_init(&s->mqtt, loop, &snapshot->config, on_mqtt_event);
  if (rc != 0) {
    fmq_session_close(s);
    return rc;
  }
  s->mqtt.data = s;
  return 0;
}

int fmq_session_connect(struct fmq_session *s) {
  int rc = fmq_publisher_start(&s->publisher);
  if (rc != 0) {
    fmq_log_error("broker: cannot start the publishing thread: %s", uv_strerror(rc));
    return -1;
  }
  return fmq_mqtt_connect(&s->mqtt);
}

void fmq_session_stop(struct fmq_session *s) {
  if (s->stopped)
    return;
  s->stopped = 1;
  if (fmq_publisher_stop(&s->publisher) != 0)
    fmq_publisher_close(&s->publisher);
  fmq_mqtt_stop(&s->mqtt);
}

void fmq_session_close(struct fmq_session *s) {
  fmq_route_reset(s);
  free(s->group_frames);
  free(s->dtypes);
  free(s->mapping_dtype);
  free(s->group_subids);
  fmq_filters_close(s);
  fmq_publish_close(s);
  fmq_publisher_close(&s->publisher);
  fmq_buf_unref(s->status_up);
  fmq_buf_unref(s->status_down);
  fmq_snapshot_unref(s->snapshot);
  memset(s, 0, sizeof(*s));
}
