/* Publishing: a client's publish accepted (capped at the broker's Maximum
 * QoS), queued in order, handed to the publishing connection (publisher.c)
 * within broker.publish_window, and answered; backpressure on the clients
 * that publish while the window is full; QoS 1/2 publishes held while the
 * broker is away (bounded by broker.offline_buffer) and sent once the
 * subscriptions are restored; the pending publishes (struct fmq_pub)
 * forgotten when their client goes or freed at close. */

#include "session_internal.h"

#include "log.h"

#include <stdlib.h>

/* --- the state of the way to the broker --- */

/* The broker is known to be away: the session's connection is down, or
 * the publishing connection failed. Not while they are being made. */
static int broker_away(const struct fmq_session *s) {
  return s->link == FMQ_LINK_DOWN || s->pub_link == FMQ_LINK_DOWN;
}

/* Messages go to the broker now: both connections up, and the
 * subscriptions restored, so the gateway's own clients receive them. */
static int sending(const struct fmq_session *s) {
  return s->link == FMQ_LINK_UP && s->pub_link == FMQ_LINK_UP && s->restoring == 0 &&
         !s->stopped;
}

static int window_full(const struct fmq_session *s) {
  return s->queued_bytes + s->handed_bytes >= s->snapshot->config.broker.publish_window;
}

/* --- backpressure --- */

static void pause_peer(struct fmq_session *s, struct fmq_peer *c) {
  /* A client going (its release is queued) must read its close frame. */
  if (c->paused || c->release_queued || c->ops->pause == NULL)
    return;
  c->paused = 1;
  TAILQ_INSERT_TAIL(&s->paused, c, paused_link);
  c->ops->pause(c, 1);
}

static void unpause(struct fmq_session *s, struct fmq_peer *c) {
  TAILQ_REMOVE(&s->paused, c, paused_link);
  c->paused = 0;
}

/* Once the window is half empty, or the broker is away (then clients get
 * their answers at once), the paused clients read again, oldest first. A
 * client reading again may publish and fill the window: the rest wait. */
static void resume_peers(struct fmq_session *s) {
  uint64_t window = s->snapshot->config.broker.publish_window;
  struct fmq_peer *c;
  while ((c = TAILQ_FIRST(&s->paused)) != NULL &&
         (broker_away(s) || s->queued_bytes + s->handed_bytes < window / 2)) {
    unpause(s, c);
    c->ops->pause(c, 0);
  }
}

void fmq_publish_forget_peer(struct fmq_session *s, struct fmq_peer *c) {
  struct fmq_pub *p;
  while ((p = LIST_FIRST(&c->pubs)) != NULL) {
    LIST_REMOVE(p, peer_link);
    p->peer = NULL;
  }
  /* Paused and going: it reads again, for its close frame. */
  if (c->paused) {
    unpause(s, c);
    c->ops->pause(c, 0);
  }
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

static void send_publish_error(struct fmq_peer *c, int rc, const json_t *id) {
  if (rc == UV_ENOBUFS)
    fmq_peer_send_error(c, FMQ_CE_UNAVAILABLE,
                        "the broker is unreachable and the offline buffer is full", id);
  else if (rc == UV_ENOTCONN)
    fmq_peer_send_error(c, FMQ_CE_UNAVAILABLE, "the broker is unreachable", id);
  else
    fmq_peer_send_error(c, FMQ_CE_INTERNAL, "out of memory", id);
}

/* Hands queued messages to the publishing connection while the window has
 * room; a message is never split, so one larger than the window goes
 * alone. */
static void pump(struct fmq_session *s) {
  uint64_t window = s->snapshot->config.broker.publish_window;
  struct fmq_pubmsg *m;
  while (sending(s) && (m = STAILQ_FIRST(&s->queued)) != NULL &&
         (s->handed_bytes == 0 || s->handed_bytes + m->cost <= window)) {
    STAILQ_REMOVE_HEAD(&s->queued, link);
    s->queued_bytes -= m->cost;
    s->handed_bytes += m->cost;
    if (m->qos > 0 && s->held > 0) {
      struct fmq_pub *p = fmq_publish_find(s, m->token);
      if (p != NULL && p->held) {
        p->held = 0;
        s->held--;
      }
    }
    fmq_publisher_send(&s->publisher, m);
  }
}

static void session_publish(struct fmq_session *s, struct fmq_peer *c,
                            const struct fmq_client_msg *msg) {
  const struct fmq_config *config = &s->snapshot->config;
  /* An MQTT 5 broker disconnects a client that publishes above its Maximum
   * QoS; one web client must not cut everyone off, so the message goes at
   * the broker's maximum (as a broker downgrades a subscription). */
  int qos = msg->qos > s->max_qos ? s->max_qos : msg->qos;
  if (qos == 0 && broker_away(s)) {
    /* At most once: a QoS 0 message is not held for a broker that is away. */
    send_publish_error(c, UV_ENOTCONN, msg->id);
    return;
  }
  /* Held (offline_buffer) only while the broker is known to be away; while
   * the connections are being made, publishes wait like any other, under
   * backpressure: the start-up never refuses one. */
  int held = qos > 0 && broker_away(s);
  if (held && s->held >= config->broker.offline_buffer) {
    send_publish_error(c, config->broker.offline_buffer ? UV_ENOBUFS : UV_ENOTCONN, msg->id);
    return;
  }
  struct fmq_pub *p = NULL;
  if (qos > 0 && (p = calloc(1, sizeof(*p))) == NULL) {
    send_publish_error(c, UV_ENOMEM, msg->id);
    return;
  }
  uintptr_t token = p != NULL ? ++s->next_pub_token : 0;
  struct fmq_pubmsg *m =
      fmq_pubmsg_new(msg->topic, msg->payload, msg->payload_len, qos, msg->retain, token);
  if (m == NULL) {
    free(p);
    send_publish_error(c, UV_ENOMEM, msg->id);
    return;
  }
  if (p != NULL) {
    p->token = token;
    p->id = msg->id ? json_incref((json_t *)msg->id) : NULL;
    p->held = held;
    s->held += (uint64_t)held;
    p->peer = c;
    LIST_INSERT_HEAD(&c->pubs, p, peer_link);
    TAILQ_INSERT_TAIL(&s->pubs, p, link);
  } else if (msg->id != NULL) {
    /* QoS 0: answered when the gateway takes it, as MQTT's own client
     * library would once the message is queued for the socket. */
    fmq_peer_send(c, fmq_client_encode_puback(msg->id));
  }
  STAILQ_INSERT_TAIL(&s->queued, m, link);
  s->queued_bytes += m->cost;
  pump(s);
  /* Backpressure: the client's next messages stay in its socket (and TCP
   * slows the browser down) until the window drains. Not while the broker
   * is away: then every publish gets its answer at once. */
  if (window_full(s) && !broker_away(s))
    pause_peer(s, c);
}

void fmq_session_publish(struct fmq_session *s, struct fmq_peer *c,
                         const struct fmq_client_msg *m) {
  fmq_session_enter(s);
  session_publish(s, c, m);
  fmq_session_leave(s);
}

/* Acks come back nearly in sending order, so the search starts at the
 * oldest. */
struct fmq_pub *fmq_publish_find(const struct fmq_session *s, uintptr_t token) {
  struct fmq_pub *p;
  TAILQ_FOREACH(p, &s->pubs, link)
    if (p->token == token)
      break;
  return p;
}

static void publish_answer(struct fmq_session *s, struct fmq_pub *p,
                           const struct fmq_pubmsg *m) {
  if (p->peer != NULL) {
    if (m->outcome == FMQ_MQTT_DONE) {
      if (p->id != NULL)
        fmq_peer_send(p->peer, fmq_client_encode_puback(p->id));
    } else if (m->reason == MQTTREASONCODE_NOT_AUTHORIZED) {
      fmq_peer_send_error(p->peer, FMQ_CE_FORBIDDEN, "the broker refused the publish", p->id);
    } else if (m->reason == MQTTREASONCODE_TOPIC_NAME_INVALID) {
      fmq_peer_send_error(p->peer, FMQ_CE_INVALID_TOPIC, "the broker refused the topic name",
                          p->id);
    } else {
      fmq_peer_send_error(p->peer, FMQ_CE_INTERNAL, "the broker refused the publish", p->id);
    }
  }
  pub_free(s, p);
}

/* A message that went out on this many connections, each dropped before
 * the broker's ack, is given up: the broker is likely dropping the
 * connection because of it (a limit the gateway does not know). */
#define FMQ_PUBLISH_MAX_ATTEMPTS 3

/* Messages back from the publishing connection, in handing order. A QoS
 * 1/2 message not sent (the connection dropped before the broker's ack)
 * goes back to the front of the queue, in order, to be sent again once the
 * broker is back: at least once. A QoS 0 one is dropped: at most once. */
void fmq_publish_on_done(struct fmq_session *s, struct fmq_pubmsg_list *done) {
  struct fmq_pubmsg_list again = STAILQ_HEAD_INITIALIZER(again);
  struct fmq_pubmsg *m;
  while ((m = STAILQ_FIRST(done)) != NULL) {
    STAILQ_REMOVE_HEAD(done, link);
    s->handed_bytes -= m->cost;
    struct fmq_pub *p = m->qos > 0 ? fmq_publish_find(s, m->token) : NULL;
    if (p != NULL && m->outcome == FMQ_MQTT_NOT_SENT &&
        (m->attempts += m->written) >= FMQ_PUBLISH_MAX_ATTEMPTS) {
      fmq_log_warn("publish to %s: the broker connection dropped %d times with it in flight; "
                   "given up", fmq_pubmsg_topic(m), FMQ_PUBLISH_MAX_ATTEMPTS);
      if (p->peer != NULL)
        fmq_peer_send_error(p->peer, FMQ_CE_UNAVAILABLE,
                            "the broker dropped the connection on this message", p->id);
      pub_free(s, p);
      free(m);
      continue;
    }
    if (p != NULL && m->outcome == FMQ_MQTT_NOT_SENT) {
      if (!p->held) {
        p->held = 1;
        s->held++;
      }
      STAILQ_INSERT_TAIL(&again, m, link);
      s->queued_bytes += m->cost;
      continue;
    }
    if (p != NULL)
      publish_answer(s, p, m);
    free(m);
  }
  STAILQ_CONCAT(&again, &s->queued);
  STAILQ_CONCAT(&s->queued, &again);
  pump(s);
  resume_peers(s);
}

/* The way to the broker changed: send what waits, or, once the broker is
 * known to be away, drop the QoS 0 messages still queued and let the
 * clients read again. */
void fmq_publish_on_link(struct fmq_session *s) {
  if (broker_away(s)) {
    struct fmq_pubmsg_list keep = STAILQ_HEAD_INITIALIZER(keep);
    struct fmq_pubmsg *m;
    while ((m = STAILQ_FIRST(&s->queued)) != NULL) {
      STAILQ_REMOVE_HEAD(&s->queued, link);
      struct fmq_pub *p = m->qos > 0 ? fmq_publish_find(s, m->token) : NULL;
      if (p == NULL) {
        s->queued_bytes -= m->cost;
        free(m);
        continue;
      }
      if (!p->held) {
        p->held = 1;
        s->held++;
      }
      STAILQ_INSERT_TAIL(&keep, m, link);
    }
    STAILQ_CONCAT(&s->queued, &keep);
  }
  pump(s);
  resume_peers(s);
}

void fmq_publish_close(struct fmq_session *s) {
  struct fmq_pubmsg *m;
  while ((m = STAILQ_FIRST(&s->queued)) != NULL) {
    STAILQ_REMOVE_HEAD(&s->queued, link);
    free(m);
  }
  s->queued_bytes = 0;
  while (!TAILQ_EMPTY(&s->pubs))
    pub_free(s, TAILQ_FIRST(&s->pubs));
}
