#ifndef FMQ_CONN_H
#define FMQ_CONN_H

#include "deadline.h"
#include "http_upgrade.h"
#include "ipcount.h"
#include "server.h"
#include "snapshot.h"
#include "stream.h"
#include "websocket.h"

#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

/* One client connection from accept to free: its socket (stream), its
 * state and deadlines, and what its bytes are by state (the HTTP phase,
 * then the WebSocket). The state changes only in conn_set_state() (but for
 * one that fails at accept: closed before it was counted), which also
 * moves the deadline nodes and keeps the server's count of active (HTTP or
 * OPEN) connections. Closing is staged: CLOSING sends what is owed
 * (a refusal or a close frame), shuts down the write side and waits,
 * bounded by close_timeout, for the peer; then CLOSED: the connection
 * leaves every list and the stream is closed; the memory is freed only in
 * the close callback. Loop thread only. */

enum fmq_conn_state {
  FMQ_CONN_ACCEPTED = 0, /* allocated, not yet reading */
  FMQ_CONN_HTTP,      /* reading the upgrade request (handshake deadline) */
  FMQ_CONN_OPEN,      /* WebSocket open (idle and ping deadlines) */
  FMQ_CONN_CLOSING,   /* close frame or refusal sent (close deadline) */
  FMQ_CONN_CLOSED     /* the stream is closing; waiting for its close callback */
};

struct fmq_conn {
  struct fmq_stream stream;                     /* the socket; stream.id is the connection's */
  struct fmq_server *server;
  const struct fmq_listener *listener;
  struct fmq_snapshot *snapshot;                /* one reference: what it was admitted under */
  enum fmq_conn_state state;
  LIST_ENTRY(fmq_conn) link;                    /* server->conns */
  struct fmq_deadline deadline;                 /* handshake, idle or close, by state */
  struct fmq_deadline ping;
  struct fmq_http_request *http;                /* owned; HTTP state only */
  struct fmq_websocket ws;                      /* its peer's identity: from admission */
  struct fmq_ip ip;                             /* the peer's address */
  int ip_counted;                               /* counted in server->per_ip */
  int in_read;                                  /* on_read is running */
  uint8_t *kept;                                /* owned: input not fed while paused */
  size_t nkept;
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

/* The server's timer found d due: a connection's handshake, idle or close
 * deadline, or its ping. */
void fmq_conn_deadline_due(struct fmq_deadline *d);
void fmq_conn_ping_due(struct fmq_deadline *d);

#endif
