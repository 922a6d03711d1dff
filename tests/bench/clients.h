#ifndef FMQB_CLIENTS_H
#define FMQB_CLIENTS_H

/* A fixed set of N WebSocket connections opened with bounded concurrency
 * (at most `concurrency` between connect and ready at once) from source
 * addresses spread 127.0.0.2, .3, ... (`per_source` each). A connection is
 * ready when the scenario says so (fmqb_clients_ready: typically once its
 * `subscribed` arrived); it fails when it closes before. The scenario's
 * ops receive every event; the set keeps the counts, the handshake times
 * and why connections failed. Loop thread only. */

#include "report.h"
#include "ws_client.h"

#include <stdint.h>

struct fmqb_clients;

struct fmqb_clients_cfg {
  uint32_t n;
  uint32_t concurrency;
  uint32_t per_source;
  /* The request target of connection i ("/mqtt?topic=...") into out. */
  void (*target)(void *data, uint32_t i, char *out, size_t cap);
  /* Optional: SO_RCVBUF for connection i (0: the default). */
  int (*rcvbuf)(void *data, uint32_t i);
  /* Every connection is ready or failed (called once). */
  void (*settled)(void *data);
  const struct fmqb_ws_ops *ops;      /* the scenario's; closed is called too */
  void *data;
};

struct fmqb_clients {
  struct fmqb_clients_cfg cfg;
  struct fmqb_ws_ctx ctx;
  struct fmqb_ws *ws;                 /* owned: n connections, ws[i].id == i */
  uint8_t *flags;                     /* owned: per connection, see clients.c */
  uint32_t next, pending, ready, failed, open, closed;
  uint64_t t_start, t_settled;
  struct fmqb_errors failures;        /* connections that never got ready, by cause */
  int settled;
};

void fmqb_clients_init(struct fmqb_clients *c, uv_loop_t *loop, const struct sockaddr_in *dst,
                       const struct fmqb_clients_cfg *cfg);
void fmqb_clients_start(struct fmqb_clients *c);
void fmqb_clients_ready(struct fmqb_clients *c, struct fmqb_ws *ws);
/* Closes every connection still open (abort: no close handshake) and the
 * context; the loop must run on for the handles to close. */
void fmqb_clients_close(struct fmqb_clients *c);
void fmqb_clients_free(struct fmqb_clients *c);
/* The scenario's ws->data pointer is the set: this finds it. */
static inline struct fmqb_clients *fmqb_clients_of(struct fmqb_ws *ws) { return ws->data; }
/* Reports connected/failed/handshakes per second under "connect". */
void fmqb_clients_report(struct fmqb_clients *c, struct fmqb_json *j);

#endif
