#include "mqtt.h"

#include "log.h"
#include "subst.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FMQ_MQTT_DISCONNECT_TIMEOUT_MS 2000

static struct fmq_mqtt_event *event_new(int type, size_t extra) {
  struct fmq_mqtt_event *ev = calloc(1, sizeof(*ev) + extra);
  if (ev == NULL) {
    /* A Paho thread cannot wait for memory; losing an answer would leave a
     * request pending forever, so this is as fatal as it gets. */
    fmq_log_error("mqtt: out of memory for an event");
    abort();
  }
  ev->type = type;
  return ev;
}

static void post(struct fmq_mqtt *m, struct fmq_mqtt_event *ev) {
  fmq_evq_post(&m->events, &ev->node);
}

static void post_text(struct fmq_mqtt *m, int type, const char *text) {
  if (text == NULL)
    text = "";
  size_t n = strlen(text);
  struct fmq_mqtt_event *ev = event_new(type, n + 1);
  memcpy(ev->text, text, n + 1);
  post(m, ev);
}

/* --- Paho's threads --- */

static void on_connected(void *ctx, char *cause) {
  (void)cause;
  post(ctx, event_new(FMQ_MQTT_CONNECTED, 0));
}

static void on_connection_lost(void *ctx, char *cause) {
  post_text(ctx, FMQ_MQTT_LOST, cause ? cause : "connection lost");
}

static void on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason) {
  (void)props;
  post_text(ctx, FMQ_MQTT_LOST, MQTTReasonCode_toString(reason));
}

/* Paho reports the CONNACK's properties only for the first connection. */
static void on_connect_success5(void *ctx, MQTTAsync_successData5 *r) {
  struct fmq_mqtt_event *ev = event_new(FMQ_MQTT_CONNACK, 0);
  ev->reason = 2;
  if (r != NULL && MQTTProperties_hasProperty(&r->properties, MQTTPROPERTY_CODE_MAXIMUM_QOS))
    ev->reason = MQTTProperties_getNumericValue(&r->properties, MQTTPROPERTY_CODE_MAXIMUM_QOS);
  post(ctx, ev);
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData *r) {
  post_text(ctx, FMQ_MQTT_CONNECT_FAILED, r && r->message ? r->message : "connect failed");
}

static void on_connect_failure5(void *ctx, MQTTAsync_failureData5 *r) {
  const char *why = r == NULL ? "connect failed"
                    : r->message ? r->message
                    : r->reasonCode ? MQTTReasonCode_toString(r->reasonCode)
                                    : "connect failed";
  post_text(ctx, FMQ_MQTT_CONNECT_FAILED, why);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
  struct fmq_mqtt *m = ctx;
  size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
  int nsub = m->version >= MQTTVERSION_5
                 ? MQTTProperties_propertyCount(&msg->properties,
                                                MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER)
                 : 0;
  size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
  size_t ids = (size_t)nsub * sizeof(uint32_t);
  struct fmq_mqtt_event *ev = event_new(FMQ_MQTT_MESSAGE, ids + tlen + 1 + plen);
  uint32_t *subids = (uint32_t *)ev->text; /* the flexible array is suitably aligned */
  for (int i = 0; i < nsub; i++)
    subids[i] = (uint32_t)MQTTProperties_getNumericValueAt(
        &msg->properties, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, i);
  char *t = ev->text + ids;
  memcpy(t, topic, tlen);
  t[tlen] = '\0';
  uint8_t *p = (uint8_t *)t + tlen + 1;
  if (plen > 0)
    memcpy(p, msg->payload, plen);
  ev->topic = t;
  ev->payload = p;
  ev->len = plen;
  ev->qos = msg->qos;
  ev->retained = msg->retained;
  ev->nsubids = (unsigned)nsub;
  ev->subids = subids;
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic);
  post(m, ev);
  return 1;
}

/* Request answers. Paho gives each request one context pointer: a small
 * record holding m and the owner's token. Records of requests Paho never
 * answers (those pending when the client is destroyed) are freed by
 * fmq_mqtt_close, hence the list. */
struct fmq_mqtt_request {
  struct fmq_mqtt *m;
  uintptr_t token;
  int type;
  LIST_ENTRY(fmq_mqtt_request) link; /* m->pending, under m->pending_lock */
};

static void pending_free(struct fmq_mqtt *m, struct fmq_mqtt_request *a) {
  pthread_mutex_lock(&m->pending_lock);
  LIST_REMOVE(a, link);
  pthread_mutex_unlock(&m->pending_lock);
  free(a);
}

static void answer(struct fmq_mqtt_request *a, enum fmq_mqtt_outcome outcome, int reason) {
  struct fmq_mqtt *m = a->m;
  struct fmq_mqtt_event *ev = event_new(a->type, 0);
  ev->token = a->token;
  ev->outcome = outcome;
  ev->reason = reason;
  pending_free(m, a);
  post(m, ev);
}

/* A failure that carries an MQTT reason code came from the broker; any
 * other (disconnected, operation incomplete, timeout) means the request did
 * not take effect. */
static void on_success5(void *ctx, MQTTAsync_successData5 *r) {
  int reason = r ? (int)r->reasonCode : 0;
  answer(ctx, reason >= MQTTREASONCODE_UNSPECIFIED_ERROR ? FMQ_MQTT_REFUSED : FMQ_MQTT_DONE,
         reason);
}

/* packet_type says an answer came from the broker (Paho leaves
 * reasonCode at 0 for a refused SUBACK); without one the request was
 * dropped locally (connection lost, timeout). */
static void on_failure5(void *ctx, MQTTAsync_failureData5 *r) {
  if (r != NULL)
    fmq_log_debug("mqtt: request failed (code %d, reason 0x%02x, packet %d)", r->code,
                  (unsigned)r->reasonCode, r->packet_type);
  int from_broker =
      r != NULL && (r->packet_type != 0 || r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR);
  int reason = r != NULL && r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR
                   ? (int)r->reasonCode
                   : MQTTREASONCODE_UNSPECIFIED_ERROR;
  answer(ctx, from_broker ? FMQ_MQTT_REFUSED : FMQ_MQTT_NOT_SENT, reason);
}

static void on_success(void *ctx, MQTTAsync_successData *r) {
  struct fmq_mqtt_request *a = ctx;
  int reason = a->type == FMQ_MQTT_SUBACK && r ? r->alt.qos : 0;
  answer(a, reason >= MQTTREASONCODE_UNSPECIFIED_ERROR ? FMQ_MQTT_REFUSED : FMQ_MQTT_DONE, reason);
}

/* MQTT 3.1.1 has no reason codes: Paho reports a 0x80 SUBACK as a failure
 * with code 0x80; any other failure means the request did not take
 * effect. */
static void on_failure(void *ctx, MQTTAsync_failureData *r) {
  struct fmq_mqtt_request *a = ctx;
  if (r != NULL)
    fmq_log_debug("mqtt: request failed (code %d)", r->code);
  int refused = a->type == FMQ_MQTT_SUBACK && r != NULL &&
                (r->code == MQTTREASONCODE_UNSPECIFIED_ERROR || r->code == MQTTASYNC_FAILURE);
  answer(a, refused ? FMQ_MQTT_REFUSED : FMQ_MQTT_NOT_SENT, MQTTREASONCODE_UNSPECIFIED_ERROR);
}

static void on_disconnect_done(void *ctx, MQTTAsync_successData *r) {
  (void)r;
  post(ctx, event_new(FMQ_MQTT_DISCONNECT_DONE, 0));
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData *r) {
  (void)r;
  post(ctx, event_new(FMQ_MQTT_DISCONNECT_DONE, 0));
}

static void on_disconnect_done5(void *ctx, MQTTAsync_successData5 *r) {
  (void)r;
  post(ctx, event_new(FMQ_MQTT_DISCONNECT_DONE, 0));
}

static void on_disconnect_failed5(void *ctx, MQTTAsync_failureData5 *r) {
  (void)r;
  post(ctx, event_new(FMQ_MQTT_DISCONNECT_DONE, 0));
}

/* --- the loop thread --- */

static void mqtt_destroy(struct fmq_mqtt *m) {
  if (m->client != NULL) {
    MQTTAsync_destroy(&m->client);
    m->client = NULL;
  }
}

/* Stopping ends with the DISCONNECT's answer, with the connection dropping
 * instead (Paho then drops the DISCONNECT without a word), or with the
 * timer: whichever comes first destroys the client; the rest are ignored. */
static int stop_finished(struct fmq_mqtt *m, int type) {
  return m->stopping && (type == FMQ_MQTT_DISCONNECT_DONE || type == FMQ_MQTT_LOST);
}

static void on_event(struct fmq_evq *q, struct fmq_evq_node *node) {
  struct fmq_mqtt *m = q->data;
  struct fmq_mqtt_event *ev = (struct fmq_mqtt_event *)node;
  if (stop_finished(m, ev->type)) {
    if (m->client == NULL) {
      free(ev);
      return;
    }
    uv_timer_stop(&m->stop_timer);
    mqtt_destroy(m);
    ev->type = FMQ_MQTT_STOPPED;
  }
  m->on_event(m, ev);
}

static void on_stop_timeout(uv_timer_t *t) {
  struct fmq_mqtt *m = t->data;
  fmq_log_warn("broker: no answer to DISCONNECT; closing anyway");
  post(m, event_new(FMQ_MQTT_DISCONNECT_DONE, 0));
}

static int response_options(struct fmq_mqtt *m, MQTTAsync_responseOptions *o, int type,
                            uintptr_t token) {
  struct fmq_mqtt_request *a = malloc(sizeof(*a));
  if (a == NULL)
    return UV_ENOMEM;
  *a = (struct fmq_mqtt_request){.m = m, .token = token, .type = type};
  pthread_mutex_lock(&m->pending_lock);
  LIST_INSERT_HEAD(&m->pending, a, link);
  pthread_mutex_unlock(&m->pending_lock);
  o->context = a;
  if (m->version >= MQTTVERSION_5) {
    o->onSuccess5 = on_success5;
    o->onFailure5 = on_failure5;
  } else {
    o->onSuccess = on_success;
    o->onFailure = on_failure;
  }
  return 0;
}

/* Paho's answer to a request it refused at once: the callbacks will not run. */
static int request_result(struct fmq_mqtt *m, MQTTAsync_responseOptions *o, int rc) {
  if (rc == MQTTASYNC_SUCCESS)
    return 0;
  if (o->context != NULL)
    pending_free(m, o->context);
  if (rc == MQTTASYNC_MAX_BUFFERED_MESSAGES)
    return UV_ENOBUFS;
  if (rc == MQTTASYNC_DISCONNECTED)
    return UV_ENOTCONN;
  fmq_log_warn("mqtt: request refused by the client library (%d)", rc);
  return UV_EINVAL;
}

int fmq_mqtt_subscribe(struct fmq_mqtt *m, const char *filter, int qos, uint32_t subid,
                       int retain_handling, uintptr_t token) {
  MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
  int rc = response_options(m, &o, FMQ_MQTT_SUBACK, token);
  if (rc != 0)
    return rc;
  if (m->version >= MQTTVERSION_5) {
    MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER,
                      .value.integer4 = subid};
    if (MQTTProperties_add(&o.properties, &p) != 0) {
      pending_free(m, o.context);
      return UV_ENOMEM;
    }
    o.subscribeOptions.retainHandling = (unsigned char)retain_handling;
  }
  rc = MQTTAsync_subscribe(m->client, filter, qos, &o);
  MQTTProperties_free(&o.properties);
  return request_result(m, &o, rc);
}

int fmq_mqtt_unsubscribe(struct fmq_mqtt *m, const char *filter, uintptr_t token) {
  MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
  int rc = response_options(m, &o, FMQ_MQTT_UNSUBACK, token);
  if (rc != 0)
    return rc;
  return request_result(m, &o, MQTTAsync_unsubscribe(m->client, filter, &o));
}

char *fmq_mqtt_client_id(const char *pattern, const char *suffix) {
  char host[256] = "", pid[24];
  gethostname(host, sizeof(host) - 1);
  snprintf(pid, sizeof(pid), "%ld", (long)getpid());
  const struct fmq_subst_var vars[] = {{'h', host}, {'p', pid}, {'%', "%"}};
  size_t len;
  int nomem;
  char *id = fmq_subst(pattern, vars, 3, NULL, &len, &nomem);
  if (id == NULL || suffix[0] == '\0')
    return id;
  char *with = malloc(len + strlen(suffix) + 1);
  if (with != NULL)
    snprintf(with, len + strlen(suffix) + 1, "%s%s", id, suffix);
  free(id);
  return with;
}

char *fmq_mqtt_paho_url(const char *url) {
  static const char mqtt[] = "mqtt://";
  if (strncmp(url, mqtt, sizeof(mqtt) - 1) != 0)
    return strdup(url);
  size_t n = strlen(url) - (sizeof(mqtt) - 1);
  char *out = malloc(n + sizeof("tcp://"));
  if (out != NULL)
    snprintf(out, n + sizeof("tcp://"), "tcp://%s", url + sizeof(mqtt) - 1);
  return out;
}

static void mqtt_init_undo(struct fmq_mqtt *m) {
  free(m->url);
  free(m->client_id);
  m->url = m->client_id = NULL;
  pthread_mutex_destroy(&m->pending_lock);
}

int fmq_mqtt_init(struct fmq_mqtt *m, uv_loop_t *loop, const struct fmq_config *config,
                  fmq_mqtt_event_fn on_event_fn) {
  memset(m, 0, sizeof(*m));
  pthread_mutex_init(&m->pending_lock, NULL);
  m->config = config;
  m->on_event = on_event_fn;
  m->version = config->broker.protocol == FMQ_MQTT_311 ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
  m->url = fmq_mqtt_paho_url(config->broker.url);
  m->client_id = fmq_mqtt_client_id(config->broker.client_id, "");
  if (m->url == NULL || m->client_id == NULL) {
    mqtt_init_undo(m);
    return UV_ENOMEM;
  }

  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  co.MQTTVersion = m->version;
  int rc = MQTTAsync_createWithOptions(&m->client, m->url, m->client_id,
                                       MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
  if (rc != MQTTASYNC_SUCCESS) {
    fmq_log_error("broker %s: cannot create the MQTT client (%d)", config->broker.url, rc);
    mqtt_init_undo(m);
    return -1;
  }
  rc = fmq_evq_init(&m->events, loop, on_event);
  if (rc != 0) {
    mqtt_destroy(m);
    mqtt_init_undo(m);
    return rc;
  }
  m->events.data = m;
  uv_timer_init(loop, &m->stop_timer);
  m->stop_timer.data = m;
  MQTTAsync_setCallbacks(m->client, m, on_connection_lost, on_message, NULL);
  MQTTAsync_setConnected(m->client, m, on_connected);
  if (m->version >= MQTTVERSION_5)
    MQTTAsync_setDisconnected(m->client, m, on_disconnected);
  return 0;
}

int fmq_mqtt_connect(struct fmq_mqtt *m) {
  const struct fmq_config *c = m->config;
  MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
  MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
  if (m->version >= MQTTVERSION_5) {
    o = o5;
    o.cleanstart = 1;
    o.onSuccess5 = on_connect_success5;
    o.onFailure5 = on_connect_failure5;
  } else {
    o.cleansession = 1;
    o.onFailure = on_connect_failure;
  }
  /* Every filter is subscribed again after each connect: a broker that
   * restarted has forgotten any session anyway. */
  o.MQTTVersion = m->version;
  o.keepAliveInterval = fmq_mqtt_seconds(c->broker.keepalive);
  o.automaticReconnect = 1;
  o.minRetryInterval = fmq_mqtt_seconds(c->broker.reconnect.min);
  o.maxRetryInterval = fmq_mqtt_seconds(c->broker.reconnect.max);
  o.context = m;
  if (c->broker.username[0] != '\0')
    o.username = c->broker.username;
  if (c->broker.password[0] != '\0')
    o.password = c->broker.password;
  int rc = MQTTAsync_connect(m->client, &o);
  if (rc != MQTTASYNC_SUCCESS) {
    fmq_log_error("broker %s: cannot start connecting (%d)", c->broker.url, rc);
    return -1;
  }
  return 0;
}

void fmq_mqtt_stop(struct fmq_mqtt *m) {
  if (m->stopping)
    return;
  m->stopping = 1;
  MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
  MQTTAsync_disconnectOptions o5 = MQTTAsync_disconnectOptions_initializer5;
  if (m->version >= MQTTVERSION_5) {
    o = o5;
    o.onSuccess5 = on_disconnect_done5;
    o.onFailure5 = on_disconnect_failed5;
  } else {
    o.onSuccess = on_disconnect_done;
    o.onFailure = on_disconnect_failed;
  }
  o.timeout = FMQ_MQTT_DISCONNECT_TIMEOUT_MS;
  o.context = m;
  if (MQTTAsync_disconnect(m->client, &o) != MQTTASYNC_SUCCESS)
    post(m, event_new(FMQ_MQTT_DISCONNECT_DONE, 0));
  else
    uv_timer_start(&m->stop_timer, on_stop_timeout, FMQ_MQTT_DISCONNECT_TIMEOUT_MS + 1000, 0);
}

void fmq_mqtt_close(struct fmq_mqtt *m) {
  mqtt_destroy(m);
  uv_close((uv_handle_t *)&m->stop_timer, NULL);
  fmq_evq_close(&m->events);
  while (!LIST_EMPTY(&m->pending))
    pending_free(m, LIST_FIRST(&m->pending));
  mqtt_init_undo(m);
}
