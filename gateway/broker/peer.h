#ifndef FMQ_PEER_H
#define FMQ_PEER_H

#include "auth.h"
#include "buf.h"
#include "client_proto.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/* A web client as the broker session knows it, whatever carries it (a
 * WebSocket connection; a Server-Sent Events stream later): who it is, how
 * to hand it a message, and the session's own state for it. The transport
 * embeds a struct fmq_peer, sets ops and identity, attaches it to the
 * session when it may receive messages and releases it when it goes; the
 * session never sees the transport. Loop thread only. */

struct fmq_peer;
struct fmq_sub;
struct fmq_pub;

struct fmq_peer_ops {
  /* Queues one encoded message for the client, taking over the reference:
   * a complete WebSocket text frame whose payload is the JSON text (a
   * transport that is not WebSocket sends that payload). NULL: encoding
   * failed for want of memory. A client that is going drops it. */
  void (*send)(struct fmq_peer *p, struct fmq_buf *frame);
  /* Backpressure (optional): with paused set, stop reading the client's
   * messages (those already read are still handed in) until called again
   * with 0. The session pauses a client that publishes while the way to
   * the broker is full. */
  void (*pause)(struct fmq_peer *p, int paused);
};

struct fmq_peer {
  const struct fmq_peer_ops *ops;   /* the transport's */
  struct fmq_identity identity;       /* the transport's: decided at admission, closed by it */
  /* The session's, from fmq_session_attach to the release: */
  LIST_ENTRY(fmq_peer) link;        /* session->peers */
  LIST_HEAD(, fmq_sub) subs;
  size_t nsubs;
  LIST_HEAD(, fmq_pub) pubs;          /* publishes awaiting the broker's ack */
  uint64_t delivered;                 /* serial of the last message sent */
  uint64_t *delivered_types;          /* the same per mapped delivery type */
  SLIST_ENTRY(fmq_peer) release_link;
  TAILQ_ENTRY(fmq_peer) paused_link;  /* session->paused */
  uint8_t attached, release_queued, paused;
};

static inline void fmq_peer_send(struct fmq_peer *p, struct fmq_buf *frame) {
  p->ops->send(p, frame);
}

/* Queues {"type":"error",...} (protocol-v1 section 4); id may be NULL. */
static inline void fmq_peer_send_error(struct fmq_peer *p, enum fmq_client_error_code code,
                                       const char *message, const json_t *id) {
  fmq_peer_send(p, fmq_client_encode_error(code, message, id));
}

#endif
