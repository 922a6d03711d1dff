#ifndef FMQ_MQTT_H
#define FMQ_MQTT_H

#include "config.h"
#include "evq.h"

#include <MQTTAsync.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

/* The gateway's subscribing MQTT connection, through Paho MQTTAsync, with
 * Paho's automatic reconnect (broker.reconnect). It carries SUBSCRIBE and
 * UNSUBSCRIBE and receives messages; publishes have a connection of their
 * own (publisher.h), so no QoS 1/2 publish in flight can make Paho hold a
 * subscribe behind it. Paho calls back on its own
 * threads; each callback only copies what it needs into an fmq_mqtt_event
 * and posts it on the event queue, so every event reaches the owner on the
 * loop thread, in the order Paho produced them. Requests carry the caller's
 * token, never a pointer: an answer to something that is gone is just
 * dropped by the owner. All functions: loop thread only. */

enum fmq_mqtt_event_type {
  FMQ_MQTT_CONNECTED,    /* each time the connection is up (first and reconnects) */
  FMQ_MQTT_LOST,         /* the connection dropped; Paho is reconnecting */
  FMQ_MQTT_CONNECT_FAILED, /* the first attempt failed; Paho keeps trying */
  FMQ_MQTT_CONNACK,      /* the first connection's CONNACK: reason is its Maximum QoS */
  FMQ_MQTT_MESSAGE,
  FMQ_MQTT_SUBACK,
  FMQ_MQTT_UNSUBACK,
  FMQ_MQTT_STOPPED,      /* after fmq_mqtt_stop: disconnected and destroyed */
  /* Internal to mqtt.c, never passed to the owner's handler: the DISCONNECT
   * finished, failed or timed out; the loop thread destroys the client and
   * the owner gets STOPPED instead (or nothing, if STOPPED went already). */
  FMQ_MQTT_DISCONNECT_DONE
};

/* What an answer means for the request it answers. */
enum fmq_mqtt_outcome {
  FMQ_MQTT_DONE = 0,     /* granted / acknowledged */
  FMQ_MQTT_REFUSED,      /* the broker said no (reason >= 0x80) */
  FMQ_MQTT_NOT_SENT      /* the connection went away first; nothing happened */
};

struct fmq_mqtt_event {
  struct fmq_evq_node node;
  enum fmq_mqtt_event_type type;
  uintptr_t token;               /* SUBACK, UNSUBACK */
  enum fmq_mqtt_outcome outcome;
  int reason;                    /* SUBACK: granted QoS or reason code (Paho's enum
                                    MQTTReasonCodes, MQTT 5 section 2.4) */
  /* MESSAGE: all in this allocation. topic is NUL-terminated. */
  const char *topic;
  const uint8_t *payload;
  size_t len;
  int qos, retained;
  unsigned nsubids;              /* MQTT 5 subscription identifiers it matched */
  const uint32_t *subids;
  char text[];                   /* LOST, CONNECT_FAILED: the cause */
};

struct fmq_mqtt;
/* Receives every event on the loop thread; owns ev (free it with free()). */
typedef void (*fmq_mqtt_event_fn)(struct fmq_mqtt *m, struct fmq_mqtt_event *ev);

struct fmq_mqtt {
  MQTTAsync client;
  struct fmq_evq events;
  fmq_mqtt_event_fn on_event;
  void *data;                    /* the owner's */
  const struct fmq_config *config; /* borrowed */
  char *url;                     /* as Paho spells it: mqtt:// becomes tcp:// */
  char *client_id;
  int version;                   /* MQTTVERSION_5 or MQTTVERSION_3_1_1 */
  int stopping;
  uv_timer_t stop_timer;         /* bounds the wait for the DISCONNECT */
  pthread_mutex_t pending_lock;
  LIST_HEAD(, fmq_mqtt_request) pending; /* requests Paho has not answered yet */
};

/* broker.client_id's pattern expanded ("%h" host name, "%p" process id,
 * "%%" a percent sign), then suffix; NULL when out of memory. Free it. */
char *fmq_mqtt_client_id(const char *pattern, const char *suffix);
/* ms as the whole seconds Paho's options take, rounded up. */
static inline int fmq_mqtt_seconds(uint64_t ms) {
  return (int)((ms + 999) / 1000);
}
/* url as Paho spells it (mqtt:// is tcp://); NULL when out of memory. */
char *fmq_mqtt_paho_url(const char *url);

/* Creates the Paho client from config (borrowed; outlives m). Returns 0, a
 * libuv error, or -1 after logging Paho's refusal. */
int fmq_mqtt_init(struct fmq_mqtt *m, uv_loop_t *loop, const struct fmq_config *config,
                  fmq_mqtt_event_fn on_event);
/* Starts connecting; CONNECTED follows, or CONNECT_FAILED and, later,
 * CONNECTED. Returns 0 or -1 after logging why. */
int fmq_mqtt_connect(struct fmq_mqtt *m);
/* Subscribes filter at qos with an MQTT 5 subscription identifier subid
 * (ignored on 3.1.1). retain_handling is MQTT 5's option (0: send retained
 * messages, 2: don't; 3.1.1 always sends them). The SUBACK event carries
 * token. Returns 0, or UV_ENOTCONN when not connected (nothing is sent). */
int fmq_mqtt_subscribe(struct fmq_mqtt *m, const char *filter, int qos, uint32_t subid,
                       int retain_handling, uintptr_t token);
int fmq_mqtt_unsubscribe(struct fmq_mqtt *m, const char *filter, uintptr_t token);
/* Disconnects cleanly (bounded), destroys the Paho client and posts
 * STOPPED, after which the owner calls fmq_mqtt_close. No subscribe or
 * unsubscribe may follow it. */
void fmq_mqtt_stop(struct fmq_mqtt *m);
/* Closes the event queue's handle and frees m's memory; the loop then ends
 * once the owner's handles are closed. */
void fmq_mqtt_close(struct fmq_mqtt *m);

#endif
