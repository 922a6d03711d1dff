#ifndef FMQ_DISPATCH_H
#define FMQ_DISPATCH_H

#include "ws_message.h"

/* What one client's data messages do (protocol-v1 sections 3, 6 and 8):
 * the rate limit, parsing, the ACL, configured mappings, then the broker
 * session. Every message gets its answer or its error from here or from
 * the session. Loop thread only. */

struct fmq_websocket;

/* ev: a complete text or binary message of an open connection (borrowed). */
void fmq_dispatch_data(struct fmq_websocket *w, const struct fmq_ws_event *ev);

#endif
