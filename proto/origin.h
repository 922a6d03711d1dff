#ifndef FMQ_ORIGIN_H
#define FMQ_ORIGIN_H

#include <stddef.h>

/* Web origins (RFC 6454) for websocket.allowed_origins. Pure code. */

/* Writes the comparable form of origin (len bytes) to out:
 * "scheme://host:port", scheme and host lower-cased, the default port made
 * explicit (http and ws 80, https and wss 443), IPv6 hosts kept in
 * brackets. The input is "scheme://host" with an optional ":port" (1..65535)
 * and nothing after it (a trailing '/' is allowed); any other scheme keeps
 * its port only if given ("chrome-extension://abcdef" stays so). "null" and
 * anything else malformed are refused. Returns the length written
 * (NUL-terminated), -1 when malformed, or FMQ_ESPACE when cap is too small
 * (cap of len + 8 never is). */
int fmq_origin_normalize(const char *origin, size_t len, char *out, size_t cap);

#endif
