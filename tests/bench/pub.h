#ifndef FMQB_PUB_H
#define FMQB_PUB_H

/* An MQTT publisher on the bench's loop (the minimal client, QoS 0): sends
 * `total` messages of `size` payload bytes, each stamped (payload.h), at
 * `rate` messages/s (a 1 ms timer; 0: as fast as the socket takes them).
 * At most 64 KiB are built per loop turn, so the WebSocket clients on the
 * same loop are read between batches. Loop thread only. */

#include "mqtt_lite.h"

#include <stdint.h>

struct fmqb_pub;

struct fmqb_pub_cfg {
  uint64_t total;
  double rate;
  uint32_t size;
  /* Message k (0-based): its topic into topic (room for 256 bytes; returns
   * the length), its stream (c) and sequence number (s). */
  size_t (*pick)(void *data, uint64_t k, char *topic, uint32_t *c, uint32_t *s);
  void (*up)(struct fmqb_pub *p);       /* connected to the broker */
  void (*done)(struct fmqb_pub *p);     /* every message handed to the kernel */
  void (*closed)(struct fmqb_pub *p);   /* after fmqb_pub_close, or the connection failed */
  void *data;
};

struct fmqb_pub {
  struct fmqb_mqtt m;
  uv_timer_t timer;
  uv_idle_t idle;
  struct fmqb_pub_cfg cfg;
  uint64_t sent;                        /* messages built and queued */
  uint64_t t_start, t_end;              /* first and last message built */
  int running, finished, pumping, closing, handles;
};

int fmqb_pub_init(struct fmqb_pub *p, uv_loop_t *loop, const struct sockaddr_in *broker,
                  const char *client_id, const struct fmqb_pub_cfg *cfg);
void fmqb_pub_start(struct fmqb_pub *p);
void fmqb_pub_close(struct fmqb_pub *p);

#endif
