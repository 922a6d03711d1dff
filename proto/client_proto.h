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
  FMQ_CLIENT_SUBSCRIBE,
  FMQ_CLIENT_UNSUBSCRIBE,
  FMQ_CLIENT_PUBLISH,
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
  json_t *root;        /* owned: the parsed object; NULL for a binary publish */
  /* Borrowed from root (a static string for a binary publish). It may hold
   * NUL bytes: compare it with type_len, never as a C string. */
  const char *type;
  size_t type_len;
  /* Borrowed from root; NULL when absent. A string id may hold NUL bytes:
   * echo it as a json_t. */
  json_t *id;
  /* SUBSCRIBE, UNSUBSCRIBE (a valid filter), PUBLISH (a valid name), so
   * free of NUL: borrowed from root, or topic_owned for a binary publish.
   * Set only once valid. */
  const char *topic;
  size_t topic_len;
  int qos;             /* SUBSCRIBE, PUBLISH: 0..2, default 0 */
  int retain;          /* PUBLISH: 0 or 1, default 0 */
  /* PUBLISH: the MQTT payload (never NULL, possibly empty), borrowed from
   * root or the frame, or pointing into payload_owned (compact JSON text,
   * decoded base64). */
  const uint8_t *payload;
  size_t payload_len;
  uint8_t *payload_owned;
  char *topic_owned;   /* binary publish: the topic, NUL-terminated */
};

struct fmq_client_error {
  enum fmq_client_error_code code;
  const char *message; /* static text */
};

/* Parses one text message. Returns 0 with *m filled, or -1 with *err filled
 * (bad_json: not JSON or duplicate keys; bad_request: not an object, "type"
 * missing or not a string, "id" neither string nor number, a field of a
 * known type missing or ill-typed (null included); invalid_topic: a topic
 * that is not a valid MQTT filter (subscribe, unsubscribe) or name
 * (publish), "\u0000" included; internal: out of memory). Checks run in
 * this order: id, type, topic present, topic valid, the other fields, so
 * the first problem is the one reported. On -1, m->id is still set when the
 * message had a usable id, so the error can carry it, and m->kind is set
 * once the type was read; fmq_client_msg_close must be called in both
 * cases. Fields a type does not use are ignored. */
int fmq_client_parse(const uint8_t *text, size_t len, struct fmq_client_msg *m,
                     struct fmq_client_error *err);
/* Parses a binary frame (protocol-v1 section 2): u16 big-endian topic
 * length, topic, payload; a QoS 0 publish without retain (kind PUBLISH,
 * type "publish", root and id NULL). The topic is copied into topic_owned;
 * the payload is borrowed from data. Returns 0 or -1 with *err
 * (bad_request: shorter than its topic length says; invalid_topic, an
 * empty topic included; internal: out of memory). Close m in both cases. */
int fmq_client_parse_binary(const uint8_t *data, size_t len, struct fmq_client_msg *m,
                            struct fmq_client_error *err);
void fmq_client_msg_close(struct fmq_client_msg *m);

const char *fmq_client_error_name(enum fmq_client_error_code code);

/* Sets m's payload from a publish's "payload" value (borrowed; it must
 * outlive m): a string's UTF-8 bytes, any other value's compact JSON text
 * (in payload_owned). Returns 0 or FMQ_ENOMEM. */
int fmq_client_set_payload(struct fmq_client_msg *m, const json_t *value);
/* The compact JSON text of any value, numbers in the fewest digits that
 * read back the same (a publish's non-string "payload"). Returns a new
 * buffer (not NUL-terminated, the caller frees it) of *len bytes, or NULL
 * when out of memory. */
uint8_t *fmq_client_json_text(const json_t *v, size_t *len);

/* Encoders. Each returns a new buffer (one reference, caller's) holding a
 * complete unmasked text frame, or NULL when out of memory. id may be NULL. */
struct fmq_buf *fmq_client_frame_json(const json_t *obj);
struct fmq_buf *fmq_client_encode_pong(const json_t *id);
struct fmq_buf *fmq_client_encode_error(enum fmq_client_error_code code, const char *message,
                                        const json_t *id);
/* {"type":"subscribed","topic":T,"qos":Q,"id":…} */
struct fmq_buf *fmq_client_encode_subscribed(const char *topic, int qos, const json_t *id);
/* {"type":"unsubscribed","topic":T,"id":…} */
struct fmq_buf *fmq_client_encode_unsubscribed(const char *topic, const json_t *id);
/* {"type":"unsubscribed","topics":[…],"id":…}: what an "undoes" mapping
 * dropped (protocol-v1 section 6). topics: n valid UTF-8 strings. */
struct fmq_buf *fmq_client_encode_unsubscribed_topics(const char *const *topics, size_t n,
                                                      const json_t *id);
/* {"type":"puback","id":…} */
struct fmq_buf *fmq_client_encode_puback(const json_t *id);
/* {"type":"status","broker":"up"|"down"} */
struct fmq_buf *fmq_client_encode_status(int up);
/* {"type":T,"topic":…,"payload":…,"qos":Q,"retain":R}: "payload" is the
 * payload as a string when it is valid UTF-8 (NUL included), otherwise the
 * key is "payload_b64" with standard base64. type is "message" unless a
 * mapping renames it. type and topic are NUL-terminated valid UTF-8;
 * payload may be NULL when len is 0. */
struct fmq_buf *fmq_client_encode_message(const char *type, const char *topic,
                                          const uint8_t *payload, size_t len, int qos,
                                          int retain);

#endif
