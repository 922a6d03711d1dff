#include "client_proto.h"

#include "ws_frame.h"

#include <string.h>

/* Insertion order is always kept since jansson 2.8, so "type" stays first and
 * JSON_PRESERVE_ORDER is not needed. '/' is not escaped by default. */
#define FMQ_JSON_DUMP_FLAGS JSON_COMPACT

static int client_fail(struct fmq_client_error *err, enum fmq_client_error_code code,
                       const char *message) {
  err->code = code;
  err->message = message;
  return -1;
}

int fmq_client_parse(const uint8_t *text, size_t len, struct fmq_client_msg *m,
                     struct fmq_client_error *err) {
  json_error_t jerr;
  json_t *id;
  json_t *type;

  memset(m, 0, sizeof(*m));
  /* JSON_DECODE_ANY: a scalar top level is valid JSON, just not a request. */
  m->root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (m->root == NULL)
    return client_fail(err, FMQ_CE_BAD_JSON, "message is not valid JSON");
  if (!json_is_object(m->root))
    return client_fail(err, FMQ_CE_BAD_REQUEST, "message is not a JSON object");

  /* The id is taken first so that any later error can echo it. */
  id = json_object_get(m->root, "id");
  if (id != NULL) {
    if (!json_is_string(id) && !json_is_number(id))
      return client_fail(err, FMQ_CE_BAD_REQUEST, "\"id\" must be a string or a number");
    m->id = id;
  }

  type = json_object_get(m->root, "type");
  if (!json_is_string(type))
    return client_fail(err, FMQ_CE_BAD_REQUEST, "\"type\" is missing or not a string");
  m->type = json_string_value(type);
  /* Strings cannot hold NUL (no JSON_ALLOW_NUL), so strcmp sees the whole type. */
  m->kind = strcmp(m->type, "ping") == 0 ? FMQ_CLIENT_PING : FMQ_CLIENT_OTHER;
  return 0;
}

void fmq_client_msg_close(struct fmq_client_msg *m) {
  json_decref(m->root);
  memset(m, 0, sizeof(*m));
}

const char *fmq_client_error_name(enum fmq_client_error_code code) {
  switch (code) {
  case FMQ_CE_BAD_JSON:
    return "bad_json";
  case FMQ_CE_BAD_REQUEST:
    return "bad_request";
  case FMQ_CE_UNKNOWN_TYPE:
    return "unknown_type";
  case FMQ_CE_INVALID_TOPIC:
    return "invalid_topic";
  case FMQ_CE_FORBIDDEN:
    return "forbidden";
  case FMQ_CE_TOO_MANY_SUBSCRIPTIONS:
    return "too_many_subscriptions";
  case FMQ_CE_RATE_LIMITED:
    return "rate_limited";
  case FMQ_CE_UNAVAILABLE:
    return "unavailable";
  case FMQ_CE_INTERNAL:
    return "internal";
  }
  return "internal";
}

struct fmq_buf *fmq_client_frame_json(const json_t *obj) {
  uint8_t hdr[FMQ_WS_HEADER_MAX];
  struct fmq_buf *b;
  size_t hlen;
  size_t n;

  n = json_dumpb(obj, NULL, 0, FMQ_JSON_DUMP_FLAGS);
  if (n == 0)
    return NULL;
  hlen = fmq_frame_header_encode(hdr, 1, FMQ_WS_TEXT, n, NULL);
  b = fmq_buf_new(hlen + n);
  if (b == NULL)
    return NULL;
  memcpy(b->data, hdr, hlen);
  /* The JSON is rendered straight into the frame: no intermediate copy. */
  if (json_dumpb(obj, (char *)b->data + hlen, n, FMQ_JSON_DUMP_FLAGS) != n) {
    fmq_buf_unref(b);
    return NULL;
  }
  return b;
}

static struct fmq_buf *client_frame_new(json_t *obj) {
  struct fmq_buf *b;

  if (obj == NULL)
    return NULL;
  b = fmq_client_frame_json(obj);
  json_decref(obj);
  return b;
}

/* json_pack's O* takes a reference on id (hence the cast; id itself is left
 * unchanged) and omits the key when id is NULL. */
struct fmq_buf *fmq_client_encode_pong(const json_t *id) {
  return client_frame_new(json_pack("{s:s, s:O*}", "type", "pong", "id", (json_t *)id));
}

struct fmq_buf *fmq_client_encode_error(enum fmq_client_error_code code, const char *message,
                                        const json_t *id) {
  return client_frame_new(json_pack("{s:s, s:s, s:s, s:O*}", "type", "error", "code",
                                    fmq_client_error_name(code), "message", message, "id",
                                    (json_t *)id));
}
