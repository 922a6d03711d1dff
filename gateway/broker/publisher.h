#ifndef FMQ_PUBLISHER_H
#define FMQ_PUBLISHER_H

#include "config.h"
#include "evq.h"
#include "mqtt.h"

#include <MQTTClient.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

/* The gateway's publishing connection: a second MQTT connection to the
 * broker, used only to publish, driven by Paho's synchronous MQTTClient on
 * a thread of its own. The loop hands it messages in batches (one hand-off,
 * and at most one wake, per loop turn); the thread writes each with one
 * MQTTClient call, in order, and gives them back through an event queue
 * once done: QoS 0 written, QoS 1/2 acknowledged or refused by the broker,
 * or not sent because the connection dropped. Paho's receive thread
 * (MQTTClient starts it because callbacks are set) reads the acks and keeps
 * the connection alive. The thread keeps QoS 1/2 messages in flight below
 * the broker's Receive Maximum, so that Paho does not block a publish for
 * that (it would wait in steps of 100 ms; it still does while a large
 * packet is only partly written), caps the QoS at this connection's
 * Maximum QoS, and reconnects by itself with the
 * broker.reconnect backoff. Same credentials as the session's connection;
 * the client id is the session's plus "-pub". */

struct fmq_pubmsg {
  STAILQ_ENTRY(fmq_pubmsg) link;
  uintptr_t token;                 /* the owner's */
  size_t cost;                     /* what it weighs: payload, topic and overhead */
  enum fmq_mqtt_outcome outcome;   /* set by the thread when it comes back */
  int reason;                      /* MQTT 5 reason code of a refusal */
  int msgid;                       /* thread: Paho's delivery token while in flight */
  uint32_t epoch;                  /* the connection it was handed for (see publisher.c) */
  uint8_t qos, retain;
  uint8_t written;                 /* thread: it went out on a connection that then dropped */
  uint8_t attempts;                /* the owner's: connections it went out on */
  size_t len;
  uint8_t *payload;                /* into data */
  char data[];                     /* topic, NUL, payload */
};

STAILQ_HEAD(fmq_pubmsg_list, fmq_pubmsg);

/* Allocates a message: topic (NUL-terminated) and len bytes of payload are
 * copied. NULL when out of memory. Free it with free(). */
struct fmq_pubmsg *fmq_pubmsg_new(const char *topic, const void *payload, size_t len, int qos,
                                  int retain, uintptr_t token);
static inline const char *fmq_pubmsg_topic(const struct fmq_pubmsg *m) { return m->data; }

enum fmq_publisher_event_type {
  FMQ_PUB_CONNECTED,      /* each time the connection is up */
  FMQ_PUB_CONNECT_FAILED, /* an attempt failed; the thread retries after the backoff */
  FMQ_PUB_LOST,           /* the connection dropped; the thread reconnects */
  FMQ_PUB_DONE,           /* messages come back (done is the list) */
  FMQ_PUB_STOPPED         /* after fmq_publisher_stop: the thread has ended */
};

struct fmq_publisher;

struct fmq_publisher_event {
  enum fmq_publisher_event_type type;
  struct fmq_pubmsg_list *done;    /* DONE: in handing order; the handler takes them */
  const char *cause;               /* CONNECT_FAILED, LOST */
};

/* Loop thread; ev and its strings are borrowed for the call. */
typedef void (*fmq_publisher_event_fn)(struct fmq_publisher *p,
                                       const struct fmq_publisher_event *ev);

struct fmq_publisher {
  /* loop thread */
  struct fmq_evq events;
  fmq_publisher_event_fn on_event;
  void *data;                      /* the owner's */
  uv_loop_t *loop;
  struct fmq_pubmsg_list outbox;   /* handed over at the end of the loop turn */
  uv_check_t handoff;
  uint32_t loop_epoch;             /* the latest CONNECTED handed to the owner */
  int handles, started, stopping, closed;
  /* set at init, read by the thread */
  const struct fmq_config *config; /* borrowed */
  MQTTClient client;
  int version;                     /* MQTTVERSION_5 or MQTTVERSION_3_1_1 */
  /* shared, under lock */
  pthread_mutex_t lock;
  pthread_cond_t wake;
  struct fmq_pubmsg_list inbox;    /* loop -> thread */
  struct fmq_pubmsg_list done;     /* thread -> loop */
  struct fmq_evq_node done_node;   /* posted while done is not empty */
  int done_posted;
  int *acked;                      /* Paho's receive thread -> thread: msgids answered */
  int *acked_reasons;
  size_t nacked, acked_cap;
  int lost;                        /* Paho's receive thread saw the connection drop */
  int stop;
  int waiting;                     /* the thread waits on wake */
  /* the thread's */
  pthread_t thread;
  struct fmq_pubmsg_list inflight; /* QoS 1/2 written, not answered */
  size_t ninflight;
  size_t qos_window;               /* QoS 1/2 allowed in flight on this connection */
  int max_qos;                     /* the broker's Maximum QoS (MQTT 5 CONNACK) */
  uint32_t epoch;                  /* connections made so far */
  int connected;
};

/* Creates the MQTTClient for config (borrowed; outlives p); no handle yet.
 * Returns 0, a libuv error, or -1 after logging why. */
int fmq_publisher_init(struct fmq_publisher *p, uv_loop_t *loop, const struct fmq_config *config,
                       fmq_publisher_event_fn on_event);
/* Creates the handles and starts the thread, which connects. Returns 0 or a
 * libuv error (then close it, with the loop running). */
int fmq_publisher_start(struct fmq_publisher *p);
/* Queues m (ownership passes until it comes back in a DONE event). Only
 * once started. */
void fmq_publisher_send(struct fmq_publisher *p, struct fmq_pubmsg *m);
/* The thread disconnects (bounded) and ends; what it held comes back as
 * not sent (DONE), then STOPPED, after which the owner closes p. Returns
 * 0, or -1 when there is no thread to stop (not started, or stopping). */
int fmq_publisher_stop(struct fmq_publisher *p);
/* Closes the handles (the loop then finishes closing them; p stays valid
 * until it has) and frees what p holds. Idempotent. */
void fmq_publisher_close(struct fmq_publisher *p);

#endif
