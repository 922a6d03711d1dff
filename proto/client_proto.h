#ifndef FMQ_CLIENT_PROTO_H
#define FMQ_CLIENT_PROTO_H

#include "buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The JSON client protocol v1 (protocol-v1 sections 3-4): text message ->
 * tagged struct, and encoders that render each outbound message directly as
 * a complete server text frame in a shareable fmq_buf. */

enum fmq_client_kind {
  FMQ_CLIENT_PING = 1,
  FMQ_CLIENT_OTHER           /* a type the codec does not know (mappings, later) */
};

/* Error codes of the "error" message, in protocol-v1 order. */
enum fmq_client_error_code {
  FMQ_CE_BAD_JSON = 0,
  FMQ_CE_BAD_REQUEST,
  FMQ_CE_UNKNOWN_TYPE,
  FMQ_CE_INVALID_TOPIC,
  FMQ_CE_FORBIDDEN,
  FMQ_CE_TOO_MANY_SUBSCRIPTIONS,
  FMQ_CE_RATE_LIMITED,
  FMQ_CE_UNAVAILABLE,
  FMQ_CE_INTERNAL
};

struct fmq_client_msg {
  enum fmq_client_kind kind;
  json_t *root;        /* owned: the parsed object */
  const char *type;    /* borrowed from root */
  json_t *id;          /* borrowed from root; NULL when absent */
};

struct fmq_client_error {
  enum fmq_client_error_code code;
  const char *message; /* static text */
};

/* Parses one text message. Returns 0 with *m filled, or -1 with *err filled
 * (bad_json: not JSON or duplicate keys; bad_request: not an object, "type"
 * missing or not a string, "id" neither string nor number). On -1, m->id is
 * still set when the message had a usable id, so the error can carry it;
 * fmq_client_msg_close must be called in both cases. */
int fmq_client_parse(const uint8_t *text, size_t len, struct fmq_client_msg *m,
                     struct fmq_client_error *err);
void fmq_client_msg_close(struct fmq_client_msg *m);

const char *fmq_client_error_name(enum fmq_client_error_code code);

/* Encoders. Each returns a new buffer (one reference, caller's) holding a
 * complete unmasked text frame, or NULL when out of memory. id may be NULL. */
struct fmq_buf *fmq_client_frame_json(const json_t *obj);
struct fmq_buf *fmq_client_encode_pong(const json_t *id);
struct fmq_buf *fmq_client_encode_error(enum fmq_client_error_code code, const char *message,
                                        const json_t *id);

#endif
