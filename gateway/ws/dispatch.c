#include "dispatch.h"

#include "client_proto.h"
#include "error.h"
#include "log.h"
#include "session.h"
#include "template.h"
#include "topic.h"
#include "websocket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Takes a token of the rate limit. Returns 0 when the message may go;
 * otherwise it was answered rate_limited, or the client was closed with
 * 1008 for going on. */
static int dispatch_take_token(struct fmq_websocket *w, const json_t *id) {
  const struct fmq_config *config = w->config;
  uint64_t now = uv_now(w->stream->tcp.loop);
  if (fmq_rate_take(&w->rate, config->limits.rate.messages_per_second, config->limits.rate.burst,
                    now))
    return 0;
  int rc = fmq_rate_refused(&w->rate, config->limits.rate.max_refusals, now);
  if (rc == 1) {
    fmq_log_info("conn %llu: over the rate limit, closing with 1008",
                 (unsigned long long)fmq_websocket_id(w));
    fmq_websocket_fail(w, 1008, "rate limit exceeded");
  } else if (rc < 0) {
    fmq_websocket_fail(w, 1011, "internal error");
  } else {
    fmq_peer_send_error(&w->peer, FMQ_CE_RATE_LIMITED, "rate limit exceeded", id);
  }
  return -1;
}

/* topic: a valid name or filter; see fmq_session_check_topic. */
static int dispatch_topic_usable(struct fmq_websocket *w, const char *topic, int filter,
                                 const json_t *id) {
  enum fmq_client_error_code code;
  char why[96];
  if (fmq_session_check_topic(w->session, &w->peer, topic, filter, &code, why,
                              sizeof(why)) == 0)
    return 1;
  fmq_peer_send_error(&w->peer, code, why, id);
  return 0;
}

static void dispatch_subscribe(struct fmq_websocket *w, const char *filter, int qos,
                               const json_t *id, uint32_t source) {
  if (dispatch_topic_usable(w, filter, 1, id))
    fmq_session_subscribe(w->session, &w->peer, filter, qos, id, source);
}

static void dispatch_publish(struct fmq_websocket *w, const struct fmq_client_msg *msg) {
  if (dispatch_topic_usable(w, msg->topic, 0, msg->id))
    fmq_session_publish(w->session, &w->peer, msg);
}

static const struct fmq_mapping_config *dispatch_find_mapping(const struct fmq_config *config,
                                                              const struct fmq_client_msg *msg) {
  for (size_t i = 0; i < config->nmappings; i++) {
    const struct fmq_mapping_config *m = &config->mappings[i];
    if (strlen(m->type) == msg->type_len && memcmp(m->type, msg->type, msg->type_len) == 0)
      return m;
  }
  return NULL;
}

/* A mapped publish: the payload is one field of the message (a string's
 * bytes, any other value's JSON text, as for "payload") or, without one,
 * the whole message as it came. */
static void dispatch_mapped_publish(struct fmq_websocket *w, const struct fmq_mapping_config *m,
                                    const struct fmq_client_msg *msg, char *topic,
                                    const struct fmq_ws_event *ev) {
  struct fmq_client_msg pub = {.kind = FMQ_CLIENT_PUBLISH,
                               .id = msg->id,
                               .topic = topic,
                               .topic_len = strlen(topic),
                               .qos = m->qos,
                               .retain = m->retain,
                               .payload = ev->data,
                               .payload_len = ev->len};
  if (m->payload_field != NULL) {
    const json_t *v = json_object_get(msg->root, m->payload_field);
    char why[128];
    if (v == NULL) {
      snprintf(why, sizeof(why), "field \"%s\" is missing", m->payload_field);
      fmq_peer_send_error(&w->peer, FMQ_CE_BAD_REQUEST, why, msg->id);
      return;
    }
    if (fmq_client_set_payload(&pub, v) != 0) {
      fmq_peer_send_error(&w->peer, FMQ_CE_INTERNAL, "out of memory", msg->id);
      return;
    }
  }
  dispatch_publish(w, &pub);
  free(pub.payload_owned);
}

/* protocol-v1 section 6. A message that does not fill its template causes
 * no MQTT action. */
static void dispatch_mapped(struct fmq_websocket *w, const struct fmq_client_msg *msg,
                            const struct fmq_ws_event *ev) {
  const struct fmq_config *config = w->config;
  struct fmq_session *session = w->session;
  const struct fmq_mapping_config *m = dispatch_find_mapping(config, msg);
  if (m == NULL) {
    fmq_peer_send_error(&w->peer, FMQ_CE_UNKNOWN_TYPE, "unknown message type", msg->id);
    return;
  }
  uint32_t source = (uint32_t)(m - config->mappings) + 1;
  if (m->action == FMQ_MAPPING_UNSUBSCRIBE && m->undoes != NULL) {
    fmq_session_undo(session, &w->peer, (uint32_t)m->undoes_index + 1, msg->id);
    return;
  }
  char why[160];
  char *topic = NULL;
  int rc = fmq_template_fill(&m->topic, msg->root, &topic, why, sizeof(why));
  if (rc != 0) {
    if (rc == FMQ_EFIELD)
      fmq_peer_send_error(&w->peer, FMQ_CE_BAD_REQUEST, why, msg->id);
    else
      fmq_peer_send_error(&w->peer, FMQ_CE_INTERNAL, "out of memory", msg->id);
    return;
  }
  size_t len = strlen(topic);
  int (*check)(const char *, size_t) =
      m->action == FMQ_MAPPING_PUBLISH ? fmq_topic_check_name : fmq_topic_check_filter;
  if (check(topic, len) != 0) {
    fmq_peer_send_error(&w->peer, FMQ_CE_INVALID_TOPIC,
                        "the filled-in topic is not a valid MQTT topic", msg->id);
  } else if (m->action == FMQ_MAPPING_SUBSCRIBE) {
    dispatch_subscribe(w, topic, m->qos, msg->id, source);
  } else if (m->action == FMQ_MAPPING_UNSUBSCRIBE) {
    fmq_session_unsubscribe(session, &w->peer, topic, msg->id);
  } else {
    dispatch_mapped_publish(w, m, msg, topic, ev);
  }
  free(topic);
}

static void dispatch_message(struct fmq_websocket *w, const struct fmq_client_msg *msg,
                             const struct fmq_ws_event *ev) {
  struct fmq_session *session = w->session;
  switch (msg->kind) {
  case FMQ_CLIENT_PING:
    fmq_websocket_send(w, fmq_client_encode_pong(msg->id));
    break;
  case FMQ_CLIENT_SUBSCRIBE:
    dispatch_subscribe(w, msg->topic, msg->qos, msg->id, 0);
    break;
  case FMQ_CLIENT_UNSUBSCRIBE:
    fmq_session_unsubscribe(session, &w->peer, msg->topic, msg->id);
    break;
  case FMQ_CLIENT_PUBLISH:
    dispatch_publish(w, msg);
    break;
  case FMQ_CLIENT_OTHER:
    dispatch_mapped(w, msg, ev);
    break;
  }
}

void fmq_dispatch_data(struct fmq_websocket *w, const struct fmq_ws_event *ev) {
  struct fmq_client_msg msg;
  struct fmq_client_error err;
  int rc = ev->type == FMQ_WS_EV_TEXT ? fmq_client_parse(ev->data, ev->len, &msg, &err)
                                      : fmq_client_parse_binary(ev->data, ev->len, &msg, &err);
  /* Parsed first so that a refusal can carry the message's id. */
  if (dispatch_take_token(w, msg.id) == 0) {
    if (rc != 0)
      fmq_peer_send_error(&w->peer, err.code, err.message, msg.id);
    else
      dispatch_message(w, &msg, ev);
  }
  fmq_client_msg_close(&msg);
}
