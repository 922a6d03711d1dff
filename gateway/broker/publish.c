/* Publishing: a client's publish sent to the broker (capped at its
 * Maximum QoS, QoS 1/2 ones held for the broker's ack, bounded while the
 * broker is down), the answers to the client, and the pending publishes
 * (struct fmq_pub) forgotten when their client goes or freed at close. */

#include "session_internal.h"

#include <stdlib.h>

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
    fmq_peer_send_error(c, FMQ_CE_UNAVAILABLE,
                        "the broker is unreachable and the offline buffer is full", id);
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
    send_publish_error(s, c, s->snapshot->config.broker.offline_buffer ? UV_ENOBUFS : UV_ENOTCONN,
                       m->id);
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
  fmq_session_enter(s);
  session_publish(s, c, m);
  fmq_session_leave(s);
}

/* Acks come back nearly in sending order, so the search starts at the
 * oldest. */
void fmq_publish_on_ack(struct fmq_session *s, const struct fmq_mqtt_event *ev) {
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
      fmq_peer_send_error(p->peer, FMQ_CE_INVALID_TOPIC, "the broker refused the topic name",
                          p->id);
    } else {
      fmq_peer_send_error(p->peer, FMQ_CE_INTERNAL, "the broker refused the publish", p->id);
    }
  }
  pub_free(s, p);
}

void fmq_publish_forget_peer(struct fmq_peer *c) {
  struct fmq_pub *p;
  while ((p = LIST_FIRST(&c->pubs)) != NULL) {
    LIST_REMOVE(p, peer_link);
    p->peer = NULL;
  }
}

void fmq_publish_close(struct fmq_session *s) {
  while (!TAILQ_EMPTY(&s->pubs))
    pub_free(s, TAILQ_FIRST(&s->pubs));
}
