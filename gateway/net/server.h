#ifndef FMQ_SERVER_H
#define FMQ_SERVER_H

#include "buf.h"
#include "snapshot.h"
#include "deadline.h"
#include "ipcount.h"
#include "stream.h"
#include "timer.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

/* One event loop's share of the gateway: its listeners, accept, its
 * connections, their deadline lists on the loop's coarse timer and the
 * once-per-turn write flush. Signals are the process's (main.c). Loop
 * thread only. */

struct fmq_conn;
struct fmq_server;
struct fmq_session;

struct fmq_listener {
  uv_tcp_t tcp;
  struct fmq_server *server;
  const struct fmq_listen_config *config; /* in the snapshot the server started with */
  int waiting;                            /* a connection waits for the spare (server.c) */
};

#define FMQ_READ_BUF_SIZE (64 * 1024)

struct fmq_server {
  uv_loop_t *loop;
  struct fmq_snapshot *snapshot;         /* one reference: the current configuration */
  struct fmq_session *session;           /* borrowed; set before the first accept (each
                                            connection keeps it); stopped once every
                                            client is gone */
  struct fmq_listener *listeners;
  size_t nlisteners;
  struct fmq_timer timer;                /* serves the four lists below */
  struct fmq_flush flush;                /* the connections' writes, once per turn */
  LIST_HEAD(, fmq_conn) conns;           /* every live connection */
  struct fmq_deadline_list handshake_deadlines, idle_deadlines, close_deadlines, ping_deadlines;
  struct fmq_buf *ping_frame;            /* shared by every ping sent */
  uint64_t next_conn_id;
  size_t nactive;            /* connections in HTTP or OPEN: what max_connections bounds */
  struct fmq_ipcount per_ip; /* the same per address, when max_connections_per_ip is set */
  /* A connection that cannot be allocated is still taken off its listener,
   * into this handle, and closed: left there, it would stop the listener. */
  uv_tcp_t spare;
  int spare_busy;                        /* spare holds or is closing such a connection */
  uint64_t shed;                         /* connections closed so since the last warning */
  uint64_t shed_warn_at;                 /* loop time from which the next warning may come */
  int stopping;
  /* Every read lands here; a connection copies only an unfinished message. */
  uint8_t read_buf[FMQ_READ_BUF_SIZE];
};

/* Initialises s on loop with a reference to snapshot. Returns 0 or a libuv
 * error. */
int fmq_server_init(struct fmq_server *s, uv_loop_t *loop, struct fmq_snapshot *snapshot);
/* Binds and listens on every configured address and logs
 * "listening on HOST:PORT" for each. Returns 0, or an error after logging it
 * (then call fmq_server_stop and run the loop to let handles close). */
int fmq_server_start(struct fmq_server *s);
/* Graceful shutdown: stop accepting, close every client with 1001, wait for
 * the close handshakes (bounded by websocket.close_timeout), then close the
 * server's handles and stop the broker session so uv_run returns. A second
 * call closes every connection at once. */
void fmq_server_stop(struct fmq_server *s);
/* Frees what is left once uv_run has returned. */
void fmq_server_close(struct fmq_server *s);

/* For conn.c: c is closed; forget it. */
void fmq_server_forget(struct fmq_server *s, struct fmq_conn *c);

#endif
