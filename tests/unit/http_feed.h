#ifndef FMQT_HTTP_FEED_H
#define FMQT_HTTP_FEED_H

#include "http_upgrade.h"

#include <stddef.h>

/* Parses req[0..len) whole into *r, then again one byte at a time and split in
 * two at every offset, failing the running cmocka test unless every way gives
 * the same result, the same *consumed and the same parsed request, and a later
 * feed returns the same result again (errors are sticky, a complete request
 * takes no more bytes). Returns the result; *consumed is the bytes that
 * belonged to the request (all of them while it needs more, 0 on error).
 * The caller closes *r. */
int fmqt_http_parse(struct fmq_http_request *r, const void *req, size_t len,
                    size_t max_header_size, size_t *consumed);

/* fmqt_http_parse on a string literal, which may hold NUL bytes. */
#define FMQT_HTTP_PARSE(r, lit, max, consumed) \
  fmqt_http_parse((r), (lit), sizeof(lit) - 1, (max), (consumed))

#endif
