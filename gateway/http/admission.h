#ifndef FMQ_ADMISSION_H
#define FMQ_ADMISSION_H

#include "http_upgrade.h"
#include "peer.h"
#include "snapshot.h"

#include <stddef.h>

/* Who may come in (protocol-v1 sections 1 and 8), in the order the
 * contract lists refusals: the Origin (403), the credentials (401), then
 * each topic= of the URL (400 when it cannot be used, 403 when the ACL
 * refuses it). Used by the WebSocket upgrade today and by the HTTP
 * endpoints to come. Loop thread only. */

struct fmq_session;

/* Judges a complete request under snapshot (origins, credentials) and
 * session (the topic checks). Returns 0 (admitted) or the refusing status
 * with *reason, static or composed in why (whylen bytes). peer->identity is
 * set once the credentials pass, whatever follows; the caller closes it. */
int fmq_admission_check(const struct fmq_snapshot *snapshot, const struct fmq_session *session,
                        const struct fmq_http_request *req, struct fmq_peer *peer, char *why,
                        size_t whylen, const char **reason);

#endif
