#ifndef FMQB_MQTT_LITE_H
#define FMQB_MQTT_LITE_H

/* A minimal MQTT 3.1.1 client on the bench's libuv loop: CONNECT (clean
 * session), SUBSCRIBE, PUBLISH at QoS 0 out, PUBLISH at QoS 0 or 1 in
 * (answered with PUBACK), PINGREQ at half the keepalive, DISCONNECT.
 *
 * Why not Paho: a load generator must cost less than what it measures.
 * Paho's receive path costs about 5 us per message and its asynchronous
 * publish about 10 us (a command and a thread wake each); at the hundreds
 * of thousands of messages per second the gateway should reach, the bench
 * would measure Paho. Here a PUBLISH is parsed in place from the loop's
 * read buffer (tens of nanoseconds), and outgoing packets are built straight
 * into one output buffer written once per batch, on the same loop and
 * thread as the WebSocket clients (no hand-off, no lock). Paho stays in the
 * bench only where its cost is the point: floor-mqtt, the limit of the
 * gateway's own publish path. Loop thread only. */

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fmqb_mqtt;

struct fmqb_mqtt_ops {
  void (*up)(struct fmqb_mqtt *m);                          /* CONNACK accepted */
  void (*suback)(struct fmqb_mqtt *m, uint16_t pid, int granted);   /* 0x80: refused */
  void (*publish)(struct fmqb_mqtt *m, const char *topic, size_t tlen, const uint8_t *p,
                  size_t n, int qos);
  /* optional: an asynchronous write finished and nothing is left to write
   * (a fmqb_mqtt_flush that the kernel took whole calls nothing: the caller
   * is still at work and checks the backlog itself) */
  void (*drained)(struct fmqb_mqtt *m);
  void (*closed)(struct fmqb_mqtt *m);                      /* both handles closed */
};

enum fmqb_mqtt_state { FMQB_MQTT_NEW, FMQB_MQTT_CONNECTING, FMQB_MQTT_WAIT_CONNACK,
                       FMQB_MQTT_UP, FMQB_MQTT_CLOSED };

struct fmqb_mqtt {
  uv_tcp_t tcp;
  uv_timer_t ping;
  union {
    uv_connect_t connect;
    uv_write_t write;
  } req;
  const struct fmqb_mqtt_ops *ops;
  void *data;                   /* the owner's */
  int state;                    /* enum fmqb_mqtt_state */
  int err;                      /* why it closed: libuv error, or -1 protocol, 0 asked */
  int open_handles;
  uint16_t keepalive;
  uint16_t next_pid;
  char client_id[64];
  uint8_t *in;                  /* owned: an incomplete packet */
  size_t in_len, in_cap;
  uint8_t *out;                 /* owned: packets to write at the next flush */
  size_t out_len, out_cap;
  uint8_t *wbuf;                /* owned: the buffer of the write under way */
  size_t inflight;
  int writing;
  uint8_t rbuf[64 * 1024];      /* read buffer */
  uint64_t received;            /* PUBLISH packets received */
  uint64_t published;           /* PUBLISH packets queued */
};

/* Connects to addr and sends CONNECT. ops->up follows the CONNACK; a
 * refused or failed connection ends in ops->closed. Returns 0 or a libuv
 * error (nothing to close then). */
int fmqb_mqtt_connect(struct fmqb_mqtt *m, uv_loop_t *loop, const struct sockaddr_in *addr,
                      const char *client_id, uint16_t keepalive);
/* Queues a SUBSCRIBE of one filter; returns its packet identifier. */
uint16_t fmqb_mqtt_subscribe(struct fmqb_mqtt *m, const char *filter, int qos);
/* Queues a QoS 0 PUBLISH and returns where its n payload bytes go (to be
 * filled before the next flush). */
uint8_t *fmqb_mqtt_publish_begin(struct fmqb_mqtt *m, const char *topic, size_t tlen,
                                 size_t n);
/* Writes what is queued (try_write, the rest by one uv_write). */
void fmqb_mqtt_flush(struct fmqb_mqtt *m);
static inline size_t fmqb_mqtt_backlog(const struct fmqb_mqtt *m) {
  return m->out_len + m->inflight;
}
/* Sends DISCONNECT when up and closes. ops->closed follows. */
void fmqb_mqtt_close(struct fmqb_mqtt *m);

#endif
