#ifndef FMQT_FAKE_MQTT_H
#define FMQT_FAKE_MQTT_H

/* A fake of gateway/broker/mqtt.h for unit tests of its owner (the
 * session): it defines every fmq_mqtt_* function the session calls
 * without Paho, records each request the owner makes and answers it with
 * what the test configured, and lets the test hand the owner events as the
 * loop would (each malloc'd, laid out as mqtt.c lays them out; the owner's
 * handler frees them). A test binary that links fake_mqtt.c before the
 * fmq_gateway library never pulls gateway/broker/mqtt.c's object
 * (publishes have a fake of their own: fake_publisher.h). One fake MQTT
 * client at a time; loop thread (the test's) only. */

#include "mqtt.h"

#include <stddef.h>
#include <stdint.h>

enum fmqt_mqtt_call_kind { FMQT_CALL_SUBSCRIBE = 1, FMQT_CALL_UNSUBSCRIBE };

/* One request the owner made, in order. */
struct fmqt_mqtt_call {
  enum fmqt_mqtt_call_kind kind;
  char *text;               /* the filter (owned) */
  int qos;                  /* subscribe */
  uint32_t subid;           /* subscribe */
  int retain_handling;      /* subscribe */
  uintptr_t token;
  int rc;                   /* what the fake returned */
};

struct fmqt_fake_mqtt {
  struct fmq_mqtt *m;       /* the client fmq_mqtt_init made; NULL before and after */
  struct fmqt_mqtt_call *calls;
  size_t ncalls, cap;
  /* What each request returns (0, UV_ENOTCONN, UV_ENOBUFS...); 0 by default. */
  int subscribe_rc, unsubscribe_rc;
  int inits, connects, stops, closes;
};

extern struct fmqt_fake_mqtt fmqt_fake;

/* Forgets every call and setting (between tests). */
void fmqt_fake_reset(void);

/* The number of calls of kind on text (NULL: any). */
size_t fmqt_fake_count(enum fmqt_mqtt_call_kind kind, const char *text);
/* The latest call of kind on text (NULL: any); fails the test when none. */
const struct fmqt_mqtt_call *fmqt_fake_last(enum fmqt_mqtt_call_kind kind, const char *text);
/* The calls from index `from` on, of kind on text: how many. */
size_t fmqt_fake_count_since(size_t from, enum fmqt_mqtt_call_kind kind, const char *text);

/* Events, handed to the owner's handler at once. */
void fmqt_fake_connected(void);
void fmqt_fake_lost(const char *cause);
/* An attempt to connect failed (Paho keeps trying). */
void fmqt_fake_connect_failed(const char *cause);
/* The first connection's CONNACK with its Maximum QoS. */
void fmqt_fake_connack(int max_qos);
/* type: FMQ_MQTT_SUBACK or FMQ_MQTT_UNSUBACK. reason: the granted QoS
 * (SUBACK done) or a reason code. */
void fmqt_fake_answer(enum fmq_mqtt_event_type type, uintptr_t token,
                      enum fmq_mqtt_outcome outcome, int reason);
/* Answers the latest call of kind on text (see fmqt_fake_last). */
void fmqt_fake_answer_last(enum fmqt_mqtt_call_kind kind, const char *text,
                           enum fmq_mqtt_outcome outcome, int reason);
/* A message (one copy as the broker sends it) matched by the nsubids MQTT 5
 * subscription identifiers in subids (none on 3.1.1). */
void fmqt_fake_message(const char *topic, const void *payload, size_t len, int qos,
                       int retained, const uint32_t *subids, unsigned nsubids);
/* The same with a text payload. */
void fmqt_fake_message_text(const char *topic, const char *text, int qos, int retained,
                            const uint32_t *subids, unsigned nsubids);
/* What fmq_mqtt_stop leads to once the DISCONNECT is done. */
void fmqt_fake_stopped(void);

#endif
