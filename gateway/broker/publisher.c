#include "publisher.h"

#include "container.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* QoS 1/2 messages in flight at most, whatever the broker allows: enough to
 * cover the round trip on any network, and the bound of the ack arrays. */
#define FMQ_PUB_QOS_WINDOW_MAX 1024
/* Messages written between two looks at the shared state: how often the
 * written ones go back to the loop (freeing the window) and new ones come. */
#define FMQ_PUB_ROUND 256
#define FMQ_PUB_CONNECT_TIMEOUT_S 5
#define FMQ_PUB_DISCONNECT_TIMEOUT_MS 1000
/* --- events to the loop --- */

struct publisher_event {
  struct fmq_evq_node node;
  enum fmq_publisher_event_type type;
  uint32_t epoch;
  char cause[];
};

static void post(struct fmq_publisher *p, enum fmq_publisher_event_type type, uint32_t epoch,
                 const char *cause) {
  size_t n = cause != NULL ? strlen(cause) : 0;
  struct publisher_event *e = malloc(sizeof(*e) + n + 1);
  if (e == NULL) {
    /* As in mqtt.c: a lost state change would leave the loop waiting. */
    fmq_log_error("mqtt: out of memory for an event");
    abort();
  }
  e->type = type;
  e->epoch = epoch;
  memcpy(e->cause, cause != NULL ? cause : "", n + 1);
  fmq_evq_post(&p->events, &e->node);
}

/* Under lock: done goes back to the loop. */
static void give_back(struct fmq_publisher *p, struct fmq_pubmsg_list *done) {
  if (STAILQ_EMPTY(done))
    return;
  STAILQ_CONCAT(&p->done, done);
  if (!p->done_posted) {
    p->done_posted = 1;
    fmq_evq_post(&p->events, &p->done_node);
  }
}

/* --- Paho's receive thread --- */

static int on_message(void *ctx, char *topic, int topic_len, MQTTClient_message *msg) {
  (void)ctx;
  (void)topic_len;
  MQTTClient_freeMessage(&msg);
  MQTTClient_free(topic);
  return 1;
}

static void on_answer(struct fmq_publisher *p, int msgid, int reason) {
  pthread_mutex_lock(&p->lock);
  /* At most one answer per message in flight, and at most qos_window of
   * those: the arrays cannot overflow. */
  if (p->nacked < p->acked_cap) {
    p->acked[p->nacked] = msgid;
    p->acked_reasons[p->nacked] = reason;
    p->nacked++;
  }
  if (p->waiting)
    pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->lock);
}

static void on_delivered(void *ctx, MQTTClient_deliveryToken token) {
  on_answer(ctx, token, 0);
}

/* MQTT 5: a PUBACK or PUBCOMP, or a PUBREC that refuses. */
static void on_published(void *ctx, int token, int packet_type, MQTTProperties *props,
                         enum MQTTReasonCodes reason) {
  (void)packet_type;
  (void)props;
  on_answer(ctx, token, (int)reason);
}

static void on_lost(void *ctx, char *cause) {
  struct fmq_publisher *p = ctx;
  (void)cause;
  pthread_mutex_lock(&p->lock);
  p->lost = 1;
  if (p->waiting)
    pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->lock);
}

/* --- the publishing thread --- */

/* Under lock. Waits for a signal, a stop, or ms milliseconds (0: none).
 * Everything else that signals is looked at before waiting; a stop may have
 * come while the thread was not listening. */
static void thread_wait(struct fmq_publisher *p, uint64_t ms) {
  if (p->stop)
    return;
  p->waiting = 1;
  if (ms == 0) {
    pthread_cond_wait(&p->wake, &p->lock);
  } else {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
      ;
  }
  p->waiting = 0;
}

/* Paho never sets TCP_NODELAY and hides its socket. This connection only
 * writes (QoS 0 gets no answer), so the broker's delayed ACKs meet Nagle's
 * algorithm and a message can wait 40 to 200 ms behind the previous one.
 * The gateway's own sockets all have TCP_NODELAY (libuv's, set at accept),
 * so a connected TCP socket of this process without it is one of Paho's:
 * this one, and the session's (which gains too). Costs two getsockopt per
 * open descriptor, once per connect, on this thread. */
static void nodelay_paho_sockets(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name), type = 0, on = 1;
    socklen_t len = sizeof(type);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    if (e->d_name[0] == '.' || fd == dirfd(d) ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
        getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0 || on != 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
      continue;
    on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  }
  closedir(d);
}

/* Returns 0, or -1 with the reason in cause. */
static int thread_connect(struct fmq_publisher *p, int *max_qos, char *cause, size_t cap) {
  const struct fmq_config *c = p->config;
  MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
  MQTTClient_connectOptions o5 = MQTTClient_connectOptions_initializer5;
  if (p->version >= MQTTVERSION_5) {
    o = o5;
    o.cleanstart = 1;
  } else {
    o.cleansession = 1;
  }
  o.MQTTVersion = p->version;
  o.keepAliveInterval = fmq_mqtt_seconds(c->broker.keepalive);
  o.connectTimeout = FMQ_PUB_CONNECT_TIMEOUT_S;
  /* reliable = 1 would allow one message in flight; the thread keeps its
   * own window (qos_window), below this. */
  o.reliable = 0;
  o.maxInflightMessages = 65535;
  if (c->broker.username[0] != '\0')
    o.username = c->broker.username;
  if (c->broker.password[0] != '\0')
    o.password = c->broker.password;
  int receive_max = 65535;
  *max_qos = 2;
  int rc;
  if (p->version >= MQTTVERSION_5) {
    MQTTResponse r = MQTTClient_connect5(p->client, &o, NULL, NULL);
    rc = r.reasonCode;
    if (rc == MQTTCLIENT_SUCCESS && r.properties != NULL) {
      if (MQTTProperties_hasProperty(r.properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM))
        receive_max =
            MQTTProperties_getNumericValue(r.properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
      if (MQTTProperties_hasProperty(r.properties, MQTTPROPERTY_CODE_MAXIMUM_QOS))
        *max_qos = MQTTProperties_getNumericValue(r.properties, MQTTPROPERTY_CODE_MAXIMUM_QOS);
    }
    MQTTResponse_free(r);
    if (rc != MQTTCLIENT_SUCCESS)
      snprintf(cause, cap, "%s",
               rc > 0 ? MQTTReasonCode_toString((enum MQTTReasonCodes)rc)
                      : MQTTClient_strerror(rc));
  } else {
    rc = MQTTClient_connect(p->client, &o);
    if (rc != MQTTCLIENT_SUCCESS)
      snprintf(cause, cap, "%s", rc > 0 ? "refused by the broker" : MQTTClient_strerror(rc));
  }
  if (rc != MQTTCLIENT_SUCCESS)
    return -1;
  nodelay_paho_sockets();
  /* Paho blocks every publish, QoS 0 included, while Receive Maximum
   * messages are in flight: one slot stays free. */
  size_t window = receive_max > 1 ? (size_t)receive_max - 1 : 1;
  p->qos_window = window < FMQ_PUB_QOS_WINDOW_MAX ? window : FMQ_PUB_QOS_WINDOW_MAX;
  return 0;
}

/* Under lock: the answers Paho's receive thread recorded finish their
 * messages. The broker answers QoS 1 and 2 each in sending order, so the
 * answered message is nearly always the oldest in flight. */
static void take_answers(struct fmq_publisher *p, struct fmq_pubmsg_list *done) {
  for (size_t i = 0; i < p->nacked; i++) {
    struct fmq_pubmsg *m;
    STAILQ_FOREACH(m, &p->inflight, link)
      if (m->msgid == p->acked[i])
        break;
    if (m == NULL)
      continue;
    STAILQ_REMOVE(&p->inflight, m, fmq_pubmsg, link);
    p->ninflight--;
    int reason = p->acked_reasons[i];
    m->outcome = reason >= MQTTREASONCODE_UNSPECIFIED_ERROR ? FMQ_MQTT_REFUSED : FMQ_MQTT_DONE;
    m->reason = reason;
    STAILQ_INSERT_TAIL(done, m, link);
  }
  p->nacked = 0;
}

/* Under lock: what this connection held goes back as not sent, oldest
 * first (in flight, then the batch, then what the loop handed since): the
 * loop decides what to send again, and when. */
static void thread_give_up(struct fmq_publisher *p, struct fmq_pubmsg_list *batch,
                           struct fmq_pubmsg_list *done) {
  struct fmq_pubmsg *m;
  STAILQ_FOREACH(m, &p->inflight, link)
    m->outcome = FMQ_MQTT_NOT_SENT;
  STAILQ_FOREACH(m, batch, link)
    m->outcome = FMQ_MQTT_NOT_SENT;
  STAILQ_FOREACH(m, &p->inbox, link)
    m->outcome = FMQ_MQTT_NOT_SENT;
  STAILQ_CONCAT(done, &p->inflight);
  STAILQ_CONCAT(done, batch);
  STAILQ_CONCAT(done, &p->inbox);
  p->ninflight = 0;
  p->nacked = 0;
}

/* Without lock: writes up to FMQ_PUB_ROUND messages of batch. Stops early
 * at a QoS 1/2 message when the window is full. Returns 0, or -1 when the
 * connection failed (the message stays first in batch). */
static int thread_write(struct fmq_publisher *p, struct fmq_pubmsg_list *batch,
                        struct fmq_pubmsg_list *done) {
  struct fmq_pubmsg *m;
  for (int n = 0; n < FMQ_PUB_ROUND && (m = STAILQ_FIRST(batch)) != NULL; n++) {
    /* Handed before the owner knew of this connection: while it thought
     * the previous one was up. Sent now, it could overtake the messages
     * that connection gave back; it goes back too, to be handed again in
     * order. */
    if (m->epoch != p->epoch) {
      STAILQ_REMOVE_HEAD(batch, link);
      m->outcome = FMQ_MQTT_NOT_SENT;
      STAILQ_INSERT_TAIL(done, m, link);
      continue;
    }
    if (m->qos > 0 && p->ninflight >= p->qos_window)
      return 0;
    MQTTClient_message msg = MQTTClient_message_initializer;
    msg.payload = m->payload;
    msg.payloadlen = (int)m->len;
    /* A broker disconnects a client that publishes above its Maximum QoS;
     * this connection's CONNACK is the one that counts. */
    msg.qos = m->qos < p->max_qos ? m->qos : p->max_qos;
    msg.retained = m->retain;
    MQTTClient_deliveryToken token = 0;
    int rc;
    if (p->version >= MQTTVERSION_5) {
      MQTTResponse r = MQTTClient_publishMessage5(p->client, fmq_pubmsg_topic(m), &msg, &token);
      rc = r.reasonCode;
      MQTTResponse_free(r);
    } else {
      rc = MQTTClient_publishMessage(p->client, fmq_pubmsg_topic(m), &msg, &token);
    }
    if (rc != MQTTCLIENT_SUCCESS)
      return -1;
    STAILQ_REMOVE_HEAD(batch, link);
    if (m->qos == 0) {
      m->outcome = FMQ_MQTT_DONE;
      STAILQ_INSERT_TAIL(done, m, link);
    } else {
      m->msgid = token;
      m->written = 1;
      STAILQ_INSERT_TAIL(&p->inflight, m, link);
      p->ninflight++;
    }
  }
  return 0;
}

static void *thread_main(void *arg) {
  struct fmq_publisher *p = arg;
  const struct fmq_config *c = p->config;
  struct fmq_pubmsg_list batch = STAILQ_HEAD_INITIALIZER(batch);
  struct fmq_pubmsg_list done = STAILQ_HEAD_INITIALIZER(done);
  uint64_t backoff = c->broker.reconnect.min;
  char cause[256];
  pthread_mutex_lock(&p->lock);
  while (!p->stop) {
    if (!p->connected) {
      int max_qos;
      p->lost = 0;
      pthread_mutex_unlock(&p->lock);
      int rc = thread_connect(p, &max_qos, cause, sizeof(cause));
      pthread_mutex_lock(&p->lock);
      if (rc != 0) {
        post(p, FMQ_PUB_CONNECT_FAILED, 0, cause);
        thread_wait(p, backoff);
        backoff = backoff * 2 < c->broker.reconnect.max ? backoff * 2 : c->broker.reconnect.max;
        continue;
      }
      p->connected = 1;
      p->max_qos = max_qos;
      p->epoch++;
      backoff = c->broker.reconnect.min;
      post(p, FMQ_PUB_CONNECTED, p->epoch, NULL);
    }
    take_answers(p, &done);
    if (p->lost) {
      thread_give_up(p, &batch, &done);
      give_back(p, &done);
      p->connected = 0;
      post(p, FMQ_PUB_LOST, 0, "connection lost");
      /* Whoever saw the loss first (Paho or a failed publish), the client
       * is left ready to connect again. */
      pthread_mutex_unlock(&p->lock);
      MQTTClient_disconnect(p->client, 0);
      pthread_mutex_lock(&p->lock);
      continue;
    }
    if (STAILQ_EMPTY(&batch))
      STAILQ_CONCAT(&batch, &p->inbox);
    struct fmq_pubmsg *first = STAILQ_FIRST(&batch);
    if (first == NULL || (first->qos > 0 && p->ninflight >= p->qos_window)) {
      give_back(p, &done);
      thread_wait(p, 0);
      continue;
    }
    pthread_mutex_unlock(&p->lock);
    int rc = thread_write(p, &batch, &done);
    pthread_mutex_lock(&p->lock);
    if (rc != 0)
      p->lost = 1;
    give_back(p, &done);
  }
  take_answers(p, &done);
  pthread_mutex_unlock(&p->lock);
  if (p->connected)
    MQTTClient_disconnect(p->client, FMQ_PUB_DISCONNECT_TIMEOUT_MS);
  /* Here, not on the loop: destroying stops Paho's receive thread, which
   * can take a second. */
  MQTTClient_destroy(&p->client);
  pthread_mutex_lock(&p->lock);
  thread_give_up(p, &batch, &done);
  give_back(p, &done);
  pthread_mutex_unlock(&p->lock);
  post(p, FMQ_PUB_STOPPED, 0, NULL);
  return NULL;
}

/* --- the loop thread --- */

static void on_event(struct fmq_evq *q, struct fmq_evq_node *node) {
  struct fmq_publisher *p = q->data;
  if (node == &p->done_node) {
    struct fmq_pubmsg_list done = STAILQ_HEAD_INITIALIZER(done);
    pthread_mutex_lock(&p->lock);
    STAILQ_CONCAT(&done, &p->done);
    p->done_posted = 0;
    pthread_mutex_unlock(&p->lock);
    struct fmq_publisher_event ev = {.type = FMQ_PUB_DONE, .done = &done};
    p->on_event(p, &ev);
    return;
  }
  struct publisher_event *e = (struct publisher_event *)node;
  if (e->type == FMQ_PUB_STOPPED && p->started) {
    pthread_join(p->thread, NULL);
    p->started = 0;
  }
  if (e->type == FMQ_PUB_CONNECTED)
    p->loop_epoch = e->epoch;
  struct fmq_publisher_event ev = {.type = e->type, .cause = e->cause};
  p->on_event(p, &ev);
  free(e);
}

static void on_handoff(uv_check_t *h) {
  struct fmq_publisher *p = fmq_container_of(h, struct fmq_publisher, handoff);
  uv_check_stop(h);
  pthread_mutex_lock(&p->lock);
  STAILQ_CONCAT(&p->inbox, &p->outbox);
  if (p->waiting)
    pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->lock);
}

/* Leaves p closable: fmq_publisher_close frees them again. */
static void publisher_free_acks(struct fmq_publisher *p) {
  free(p->acked);
  free(p->acked_reasons);
  p->acked = NULL;
  p->acked_reasons = NULL;
}

int fmq_publisher_init(struct fmq_publisher *p, uv_loop_t *loop, const struct fmq_config *config,
                       fmq_publisher_event_fn on_event_fn) {
  memset(p, 0, sizeof(*p));
  STAILQ_INIT(&p->outbox);
  STAILQ_INIT(&p->inbox);
  STAILQ_INIT(&p->done);
  STAILQ_INIT(&p->inflight);
  p->config = config;
  p->on_event = on_event_fn;
  p->version = config->broker.protocol == FMQ_MQTT_311 ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
  p->acked_cap = FMQ_PUB_QOS_WINDOW_MAX;
  p->acked = calloc(p->acked_cap, sizeof(*p->acked));
  p->acked_reasons = calloc(p->acked_cap, sizeof(*p->acked_reasons));
  /* The same URL and client id as the session's connection (mqtt.c),
   * the id with "-pub": a broker drops one of two clients with one id. */
  char *url = fmq_mqtt_paho_url(config->broker.url);
  char *id = fmq_mqtt_client_id(config->broker.client_id, "-pub");
  if (p->acked == NULL || p->acked_reasons == NULL || url == NULL || id == NULL) {
    free(url);
    free(id);
    publisher_free_acks(p);
    return UV_ENOMEM;
  }
  MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
  co.MQTTVersion = p->version;
  int rc = MQTTClient_createWithOptions(&p->client, url, id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                        &co);
  free(url);
  free(id);
  if (rc != MQTTCLIENT_SUCCESS) {
    fmq_log_error("broker %s: cannot create the publishing client (%d)", config->broker.url, rc);
    publisher_free_acks(p);
    return -1;
  }
  MQTTClient_setCallbacks(p->client, p, on_lost, on_message,
                          p->version >= MQTTVERSION_5 ? NULL : on_delivered);
  if (p->version >= MQTTVERSION_5)
    MQTTClient_setPublished(p->client, p, on_published);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->wake, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&p->lock, NULL);
  p->loop = loop;
  return 0;
}

int fmq_publisher_start(struct fmq_publisher *p) {
  int rc = fmq_evq_init(&p->events, p->loop, on_event);
  if (rc != 0)
    return rc;
  p->events.data = p;
  uv_check_init(p->loop, &p->handoff);
  p->handles = 1;
  rc = pthread_create(&p->thread, NULL, thread_main, p);
  if (rc != 0)
    return uv_translate_sys_error(rc);
  p->started = 1;
  return 0;
}

void fmq_publisher_send(struct fmq_publisher *p, struct fmq_pubmsg *m) {
  m->epoch = p->loop_epoch;
  m->written = 0;
  STAILQ_INSERT_TAIL(&p->outbox, m, link);
  uv_check_start(&p->handoff, on_handoff);
}

int fmq_publisher_stop(struct fmq_publisher *p) {
  if (!p->started || p->stopping)
    return -1;
  p->stopping = 1;
  uv_check_stop(&p->handoff);
  pthread_mutex_lock(&p->lock);
  STAILQ_CONCAT(&p->inbox, &p->outbox);
  p->stop = 1;
  pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->lock);
  return 0;
}

static void free_list(struct fmq_pubmsg_list *l) {
  struct fmq_pubmsg *m;
  while ((m = STAILQ_FIRST(l)) != NULL) {
    STAILQ_REMOVE_HEAD(l, link);
    free(m);
  }
}

void fmq_publisher_close(struct fmq_publisher *p) {
  if (p->closed)
    return;
  p->closed = 1;
  if (p->handles) {
    uv_close((uv_handle_t *)&p->handoff, NULL);
    fmq_evq_close(&p->events);
  }
  if (p->client != NULL)
    MQTTClient_destroy(&p->client);
  free_list(&p->outbox);
  free_list(&p->inbox);
  free_list(&p->done);
  free_list(&p->inflight);
  publisher_free_acks(p);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
}
