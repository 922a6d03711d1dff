#ifndef FMQ_WEBSOCKET_H
#define FMQ_WEBSOCKET_H

#include "config.h"
#include "http_upgrade.h"
#include "peer.h"
#include "rate.h"
#include "stream.h"
#include "ws_message.h"

#include <stddef.h>
#include <stdint.h>

/* The WebSocket phase of one connection (RFC 6455 after the 101): frames
 * in, control frames answered, the close handshake, data messages handed
 * to dispatch, frames out under websocket.outbound_queue_limit, and the
 * connection's face to the broker session (its peer). Writes go to the
 * connection's stream; the owner keeps the socket's life and deadlines and
 * learns from ops when the close handshake begins. Loop thread only. */

struct fmq_session;
struct fmq_websocket;

struct fmq_websocket_ops {
  /* Our close frame is about to be queued: the peer has
   * websocket.close_timeout to answer; no liveness any more. */
  void (*closing)(struct fmq_websocket *w);
  /* Backpressure: fmq_websocket_feed stopped early because w is paused
   * (the owner keeps the rest of its input and stops reading), and this
   * says it may read again (the owner feeds what it kept first). Called
   * outside feed, or from within it when the close handshake begins. */
  void (*resume)(struct fmq_websocket *w);
};

enum fmq_websocket_flag {
  FMQ_WEBSOCKET_OPEN = 1 << 0,       /* upgraded */
  FMQ_WEBSOCKET_CLOSE_SENT = 1 << 1, /* our close frame is queued or written */
  FMQ_WEBSOCKET_INPUT_DONE = 1 << 2, /* further input is discarded */
  FMQ_WEBSOCKET_STOPPED = 1 << 3,    /* left the session: sends nothing more */
  FMQ_WEBSOCKET_PAUSED = 1 << 4      /* the session asked for no more input for now */
};

struct fmq_websocket {
  struct fmq_stream *stream;            /* the connection's (borrowed) */
  const struct fmq_websocket_ops *ops;  /* the owner's */
  const struct fmq_config *config;      /* borrowed from the owner's snapshot */
  struct fmq_session *session;          /* borrowed */
  unsigned flags;
  uint64_t outbound_limit;              /* websocket.outbound_queue_limit */
  struct fmq_ws_reader reader;
  struct fmq_rate rate;                 /* limits.rate, from open */
  struct fmq_peer peer;                 /* identity: the owner's admission fills it */
};

/* Before the upgrade, on zeroed memory: nothing is allocated. */
void fmq_websocket_init(struct fmq_websocket *w, struct fmq_stream *stream,
                        const struct fmq_websocket_ops *ops, const struct fmq_config *config,
                        struct fmq_session *session);
/* Frees what w holds, the peer's identity included. After
 * fmq_websocket_stop if it was opened. */
void fmq_websocket_close(struct fmq_websocket *w);
/* The 101 is queued: the client may talk and receive from now on, and is
 * subscribed to each topic= of req (the admitted upgrade request). topic:
 * req->target_len + 1 bytes for decoding them (allocated before the 101,
 * so that nothing can fail after it), owned from here. */
void fmq_websocket_open(struct fmq_websocket *w, const struct fmq_http_request *req,
                        char *topic);
/* The socket is going: w leaves the session. Idempotent. */
void fmq_websocket_stop(struct fmq_websocket *w);
/* Frames read from the client (ignored before the upgrade and after
 * input ended); p is unmasked in place. Returns how many bytes were taken:
 * all of them, unless w got paused (fmq_websocket_paused), and sets
 * *activity when a complete frame counted as activity (the idle deadline
 * moves). */
size_t fmq_websocket_feed(struct fmq_websocket *w, uint8_t *p, size_t len, int *activity);
static inline int fmq_websocket_paused(const struct fmq_websocket *w) {
  return (w->flags & FMQ_WEBSOCKET_PAUSED) != 0;
}
/* Queues one frame, taking over the caller's reference. Dropped once our
 * close frame is sent; past outbound_queue_limit the backlog is dropped
 * and the close handshake starts with 1013. NULL (no memory to encode):
 * failed with 1011. */
void fmq_websocket_send(struct fmq_websocket *w, struct fmq_buf *frame);
/* Starts the close handshake with code and reason; w goes on reading for
 * the client's close frame. Idempotent. */
void fmq_websocket_send_close(struct fmq_websocket *w, uint16_t code, const char *reason);
/* RFC 6455 "fail the WebSocket connection": the close frame after the
 * frames already queued, then the write side shut down; input ignored. */
void fmq_websocket_fail(struct fmq_websocket *w, uint16_t code, const char *reason);

static inline uint64_t fmq_websocket_id(const struct fmq_websocket *w) { return w->stream->id; }

#endif
