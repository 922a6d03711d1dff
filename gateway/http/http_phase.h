#ifndef FMQ_HTTP_PHASE_H
#define FMQ_HTTP_PHASE_H

#include "config.h"
#include "http_upgrade.h"
#include "peer.h"
#include "snapshot.h"

#include <stddef.h>
#include <stdint.h>

/* A connection's HTTP phase: the request read under websocket.max_header_size,
 * routed by the listener's paths, checked as a WebSocket upgrade (RFC 6455
 * section 4.2), then admitted (admission.h). The answer is a response head
 * for the connection to write: the 101, or a refusal after which it
 * closes. No sockets here. Loop thread only. */

struct fmq_session;

struct fmq_http_answer {
  int status;            /* 0: the request is not complete yet; 101: upgrade */
  const char *reason;    /* for the log: static or in why */
  char why[128];
  char head[1024];       /* the response head */
  size_t head_len;       /* 0: it could not be rendered */
};

/* Feeds len bytes of the connection's input to req. Returns how many
 * bytes the request took (after a 101 the rest are WebSocket frames) with
 * answer->status 0 (more is needed) or the answer. On 101 peer->identity is
 * the admitted client's; it may be set on a refusal too, and is the
 * caller's to close either way. */
size_t fmq_http_phase_feed(struct fmq_http_request *req, const struct fmq_listen_config *listen,
                           const struct fmq_snapshot *snapshot, const struct fmq_session *session,
                           struct fmq_peer *peer, const uint8_t *p, size_t len,
                           struct fmq_http_answer *answer);
/* A refusal decided outside the request (408 at the handshake deadline,
 * 503 at the connection limits). */
void fmq_http_phase_refusal(int status, const char *reason, struct fmq_http_answer *answer);

#endif
