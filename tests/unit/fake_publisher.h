#ifndef FMQT_FAKE_PUBLISHER_H
#define FMQT_FAKE_PUBLISHER_H

/* A fake of gateway/broker/publisher.h for unit tests of its owner (the
 * session): it defines fmq_publisher_init, _start, _send, _stop and _close
 * without a thread or Paho's MQTTClient (fmq_pubmsg_new stays the real one,
 * gateway/broker/pubmsg.c). It records every message handed to it, in
 * order, keeps each (it owns them, as the real thread does) until the test
 * gives it back in a DONE event, and lets the test hand the owner the
 * events the loop would: connected, connect failed, lost, DONE, stopped;
 * each is delivered at once, through p->on_event. A test binary that links
 * fake_publisher.c before the fmq_gateway library never pulls
 * gateway/broker/publisher.c's object. One fake publisher at a time; the
 * test's thread only. */

#include "publisher.h"

#include <stddef.h>
#include <stdint.h>

/* One fmq_publisher_send, in order: a copy of what was handed (the
 * message itself may be gone since). */
struct fmqt_pub_send {
  char *topic;              /* owned */
  uint8_t *payload;         /* owned; NUL-terminated for convenience */
  size_t len;
  int qos, retain;
  uintptr_t token;
  size_t cost;
  int after_stop;           /* handed once fmq_publisher_stop was called */
};

struct fmqt_fake_publisher {
  struct fmq_publisher *p;  /* the one fmq_publisher_init made; NULL before */
  struct fmqt_pub_send *sends;
  size_t nsends, cap;
  struct fmq_pubmsg_list held; /* handed, not given back yet: the fake's, oldest first */
  size_t nheld;
  int init_rc, start_rc;    /* what fmq_publisher_init and _start return; 0 by default */
  int inits, starts, stops, closes; /* calls (stops: those that returned 0) */
};

extern struct fmqt_fake_publisher fmqt_pub;

/* Frees what the fake holds and forgets every call and setting (between
 * tests). */
void fmqt_pub_reset(void);

/* The number of messages handed on topic (NULL: any), from index from on. */
size_t fmqt_pub_count_since(size_t from, const char *topic);
size_t fmqt_pub_count(const char *topic);
/* The latest message handed on topic (NULL: any); fails the test when none. */
const struct fmqt_pub_send *fmqt_pub_last(const char *topic);
/* The i-th message the fake holds (0: the oldest); fails the test when
 * there are not that many. */
struct fmq_pubmsg *fmqt_pub_held_at(size_t i);

/* Events, handed to the owner's handler at once. */
void fmqt_pub_connected(void);
void fmqt_pub_connect_failed(const char *cause);
/* Only the LOST event: what the fake holds stays until given back (the real
 * thread gives it back, not sent, in a DONE just before). */
void fmqt_pub_lost(const char *cause);

/* Which held message comes back in a DONE, and how. */
struct fmqt_pub_answer {
  size_t index;             /* into the held messages, as they were before the event */
  enum fmq_mqtt_outcome outcome;
  int reason;               /* MQTT 5 reason code of a refusal */
};
/* One DONE event carrying the n chosen held messages, in the order given. */
void fmqt_pub_done(const struct fmqt_pub_answer *answers, size_t n);
/* One DONE carrying the n oldest held messages, each with outcome and
 * reason. */
void fmqt_pub_done_oldest(size_t n, enum fmq_mqtt_outcome outcome, int reason);
/* One DONE carrying every held message. */
void fmqt_pub_done_all(enum fmq_mqtt_outcome outcome, int reason);
/* One DONE carrying the held message with token (QoS 1/2); fails the test
 * when none. */
void fmqt_pub_done_token(uintptr_t token, enum fmq_mqtt_outcome outcome, int reason);
/* What the thread does once stopped: what the fake holds comes back not
 * sent (one DONE, if any), then STOPPED. */
void fmqt_pub_stopped(void);

#endif
