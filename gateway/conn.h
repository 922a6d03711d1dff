#ifndef FMQ_CONN_H
#define FMQ_CONN_H

#include "auth.h"
#include "client_proto.h"
#include "deadline.h"
#include "http_upgrade.h"
#include "ipcount.h"
#include "outq.h"
#include "peer.h"
#include "rate.h"
#include "server.h"
#include "ws_message.h"

#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

/* One client connection from accept to free. The state changes only in
 * conn_set_state(), which also moves the deadline nodes and keeps the
 * server's count of active (HTTP or OPEN) connections; flags are orthogonal.
 * Closing is staged: CLOSING sends what is owed (a refusal or a close frame),
 * shuts down the write side and waits, bounded by close_timeout, for the
 * peer; then CLOSED: the connection leaves every list, uv_close runs, and
 * the memory is freed only in the close callback. Loop thread only. */

enum fmq_conn_state {
  FMQ_CONN_ACCEPTED = 0, /* allocated, not yet reading */
  FMQ_CONN_HTTP,      /* reading the upgrade request (handshake deadline) */
  FMQ_CONN_OPEN,      /* WebSocket open (idle and ping deadlines) */
  FMQ_CONN_CLOSING,   /* close frame or refusal sent (close deadline) */
  FMQ_CONN_CLOSED     /* uv_close called; waiting for the close callback */
};

enum fmq_conn_flag {
  FMQ_CONN_CLOSE_SENT = 1 << 0,        /* our close frame is queued or written */
  FMQ_CONN_INPUT_DONE = 1 << 1,        /* further input is discarded */
  FMQ_CONN_CLOSE_AFTER_WRITE = 1 << 2, /* shut down the write side once the queue drains */
  FMQ_CONN_SHUT_DOWN = 1 << 3
};

struct fmq_conn {
  uv_tcp_t tcp;
  struct fmq_server *server;
  const struct fmq_listener *listener;
  struct fmq_snapshot *snapshot;                /* one reference: what it was admitted under */
  uint64_t id;
  enum fmq_conn_state state;
  unsigned flags;
  LIST_ENTRY(fmq_conn) link;                    /* server->conns */
  LIST_ENTRY(fmq_conn) pending_link;            /* server->pending */
  int pending;
  struct fmq_deadline deadline;                 /* handshake, idle or close, by state */
  struct fmq_deadline ping;
  struct fmq_http_request *http;                /* owned; HTTP state only */
  struct fmq_ws_reader reader;
  struct fmq_outq outq;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  struct fmq_peer peer;                         /* the session's view; identity from the upgrade */
  struct fmq_rate rate;                         /* limits.rate, while OPEN */
  struct fmq_ip ip;                             /* the peer's address */
  int ip_counted;                               /* counted in server->per_ip */
};

/* Accepts one connection from listener. Returns 0 or a libuv error. When
 * the connection cannot be allocated (its struct fmq_conn or its HTTP
 * request state), returns UV_ENOMEM before touching the listener: the
 * connection is still pending there, and the caller must take it off (the
 * server's spare handle) or libuv stops polling the listener. Any other
 * error comes from uv_accept or uv_read_start, the connection's handle then
 * closed (its memory freed in the close callback). */
int fmq_conn_accept(struct fmq_listener *listener);
/* Starts closing: an open connection gets a close frame with code and
 * reason and has close_timeout to answer; one still in the HTTP phase is
 * dropped. Idempotent. */
void fmq_conn_close(struct fmq_conn *c, uint16_t code, const char *reason);
/* Closes the socket now, without a close frame. Idempotent. */
void fmq_conn_abort(struct fmq_conn *c);
/* Queues one frame, taking over the caller's reference. Frames for a
 * connection that sent its close are dropped; past outbound_queue_limit the
 * backlog is dropped and the connection closed with 1013. */
void fmq_conn_send(struct fmq_conn *c, struct fmq_buf *frame);
/* Closes an open connection with code after the frames already queued
 * (RFC 6455 "fail the WebSocket connection"): further input is ignored. */
void fmq_conn_fail(struct fmq_conn *c, uint16_t code, const char *reason);
/* Starts one gathered write of what is queued (the server's flush). */
void fmq_conn_flush(struct fmq_conn *c);

/* The server's timer found one of c's deadlines due. */
void fmq_conn_deadline_due(struct fmq_conn *c);
void fmq_conn_ping_due(struct fmq_conn *c);

#endif
