#ifndef FMQ_WS_HANDSHAKE_H
#define FMQ_WS_HANDSHAKE_H

#include "http_upgrade.h"

#include <stddef.h>

/* The opening handshake (RFC 6455 section 4.2, protocol-v1 section 1):
 * validate a parsed request and render the response. */

#define FMQ_WS_SUBPROTOCOL "ferrymq.v1"
#define FMQ_WS_ACCEPT_LEN 28

struct fmq_handshake {
  int status;               /* 101, or the HTTP status that refuses it */
  const char *reason;       /* a short explanation for the body and the log */
  int subprotocol;          /* 1: answer Sec-WebSocket-Protocol: ferrymq.v1 */
  char accept[FMQ_WS_ACCEPT_LEN + 1];
};

/* Judges req against the WebSocket paths, in this order:
 * path not listed 404; not GET 400; no "Upgrade: websocket" 426; no
 * "Connection: upgrade" or HTTP/1.0 400; Host missing or repeated 400;
 * Sec-WebSocket-Version missing 400, other than 13 426; Sec-WebSocket-Key
 * missing, repeated or not 16 bytes of base64 400; Sec-WebSocket-Protocol
 * offered without ferrymq.v1 400.
 * Fills *hs (status 101 when accepted). Returns hs->status. */
int fmq_handshake_check(const struct fmq_http_request *req, const char *const *paths,
                        size_t npaths, struct fmq_handshake *hs);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), NUL-terminated. */
void fmq_handshake_accept(const char *key, size_t key_len, char out[FMQ_WS_ACCEPT_LEN + 1]);

/* Renders the response for hs into out[0..cap): the 101 for an accepted
 * handshake, otherwise a refusal with a text/plain body, Connection: close,
 * for 426 "Upgrade: websocket" and "Sec-WebSocket-Version: 13", for 401
 * "WWW-Authenticate: Bearer realm="ferrymq"".
 * Returns the length, or FMQ_ESPACE when cap is too small (512 always fits). */
int fmq_handshake_render(const struct fmq_handshake *hs, char *out, size_t cap);

/* Renders a refusal with any status (400, 404, 408, 426, 431, 503 ...) the
 * same way. Returns the length or FMQ_ESPACE. */
int fmq_http_render_error(int status, const char *reason, char *out, size_t cap);

#endif
