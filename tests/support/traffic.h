#ifndef FMQT_TRAFFIC_H
#define FMQT_TRAFFIC_H

/* Normal traffic beside whatever a test does to the gateway: a few
 * well-behaved WebSocket clients subscribed to one topic. Each round, the
 * first client publishes {"type":"publish","topic":T,"payload":"N"} and
 * every client sends {"type":"ping","id":N}; the round is complete when
 * every client got message N and pong N. Every message must arrive at
 * every client exactly once and in order, nothing else may arrive (the
 * gateway's WebSocket pings are answered), and each reply must come within
 * bound_ms of its request: any failure fails the running test at once.
 *
 * The clients are driven without threads: a test interleaves its own work
 * with fmqt_traffic_step calls, each doing what is due without waiting
 * longer than it is told. A new round starts at most every every_ms. Built
 * on wsclient.h; main thread only. */

#include <stdint.h>

#define FMQT_TRAFFIC_MAX 8

struct fmqt_traffic {
  uint16_t port;
  int n;                        /* clients */
  int fds[FMQT_TRAFFIC_MAX];
  char topic[128];
  int bound_ms;
  int every_ms;
  /* Results, for reports. */
  long rounds;                  /* rounds completed */
  int64_t worst_message_ms;     /* slowest publish -> message seen */
  int64_t worst_pong_ms;        /* slowest ping -> pong seen */
  /* Private: the round in flight (in_flight_ set). */
  int in_flight_;
  int64_t sent_at_, next_at_;
  uint8_t got_message_[FMQT_TRAFFIC_MAX], got_pong_[FMQT_TRAFFIC_MAX];
};

/* Connects n (1..FMQT_TRAFFIC_MAX) clients to port on /mqtt and subscribes
 * each to topic; the first round starts with the first step. */
void fmqt_traffic_start(struct fmqt_traffic *t, uint16_t port, const char *topic, int n,
                        int bound_ms, int every_ms);
/* Reads and checks what arrived and starts the next round when it is due,
 * for wait_ms (0: one pass without waiting). */
void fmqt_traffic_step(struct fmqt_traffic *t, int wait_ms);
/* Waits (stepping) until the round in flight is complete, then closes every
 * client cleanly. Asserts at least one round was completed. */
void fmqt_traffic_stop(struct fmqt_traffic *t);

#endif
