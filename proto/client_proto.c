#include "client_proto.h"

#include "base64.h"
#include "error.h"
#include "topic.h"
#include "utf8.h"
#include "ws_frame.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
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

/* Standard base64 with padding (RFC 4648 section 4); non-zero bits before
 * the padding ("QR==") are accepted, as RFC 4648 section 3.5 allows. */
static int client_base64_decode(const char *s, size_t len, struct fmq_client_msg *m,
                                struct fmq_client_error *err) {
  int n = fmq_base64_decode_new(s, len, FMQ_BASE64_STD, &m->payload_owned);

  if (n == FMQ_ENOMEM)
    return client_fail(err, FMQ_CE_INTERNAL, "out of memory");
  if (n < 0)
    return client_fail(err, FMQ_CE_BAD_REQUEST, "\"payload_b64\" is not valid base64");
  m->payload = m->payload_owned;
  m->payload_len = (size_t)n;
  return 0;
}

/* Renders v into a new buffer, or returns NULL when out of memory. */
static uint8_t *client_dump(const json_t *v, size_t flags, size_t *len) {
  size_t n = json_dumpb(v, NULL, 0, flags);
  uint8_t *p = n > 0 ? malloc(n) : NULL;

  if (p != NULL && json_dumpb(v, (char *)p, n, flags) != n) {
    free(p);
    p = NULL;
  }
  *len = n;
  return p;
}

#define FMQ_JSON_TEXT_FLAGS(digits) \
  (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(digits))

/* The compact JSON text of v. jansson prints reals with 17 significant
 * digits, so 21.3 would become 21.300000000000001; the fewest digits (15 to
 * 17) that read back as the same value keep the number a client sent. */
uint8_t *fmq_client_json_text(const json_t *v, size_t *len) {
  for (int digits = 15; digits < 17; digits++) {
    uint8_t *p = client_dump(v, FMQ_JSON_TEXT_FLAGS(digits), len);
    json_t *back;
    int same;

    if (p == NULL)
      return NULL;
    back = json_loadb((const char *)p, *len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    same = json_equal(v, back);
    json_decref(back);
    if (same)
      return p;
    free(p);
  }
  return client_dump(v, FMQ_JSON_TEXT_FLAGS(17), len);
}

/* Takes "topic" when check (a filter or a name check) accepts it. A missing
 * topic is a bad request, one that is there but invalid an invalid topic. */
static int client_take_topic(struct fmq_client_msg *m, struct fmq_client_error *err,
                             int (*check)(const char *, size_t), const char *invalid) {
  json_t *topic = json_object_get(m->root, "topic");

  if (!json_is_string(topic))
    return client_fail(err, FMQ_CE_BAD_REQUEST, "\"topic\" is missing or not a string");
  if (check(json_string_value(topic), json_string_length(topic)) != 0)
    return client_fail(err, FMQ_CE_INVALID_TOPIC, invalid);
  m->topic = json_string_value(topic);
  m->topic_len = json_string_length(topic);
  return 0;
}

/* An absent "qos" is 0; anything but the JSON integers 0, 1, 2 (null, 1.0,
 * "1") is refused. */
static int client_take_qos(struct fmq_client_msg *m, struct fmq_client_error *err) {
  json_t *qos = json_object_get(m->root, "qos");

  if (qos == NULL)
    return 0;
  if (!json_is_integer(qos) || json_integer_value(qos) < 0 || json_integer_value(qos) > 2)
    return client_fail(err, FMQ_CE_BAD_REQUEST, "\"qos\" must be 0, 1 or 2");
  m->qos = (int)json_integer_value(qos);
  return 0;
}

static int client_parse_subscribe(struct fmq_client_msg *m, struct fmq_client_error *err) {
  if (client_take_topic(m, err, fmq_topic_check_filter,
                        "topic is not a valid MQTT topic filter") != 0)
    return -1;
  return client_take_qos(m, err);
}

static int client_parse_payload(struct fmq_client_msg *m, struct fmq_client_error *err) {
  json_t *payload = json_object_get(m->root, "payload");
  json_t *b64 = json_object_get(m->root, "payload_b64");

  if ((payload == NULL) == (b64 == NULL))
    return client_fail(err, FMQ_CE_BAD_REQUEST,
                       "exactly one of \"payload\" and \"payload_b64\" is required");
  if (payload != NULL) {
    if (fmq_client_set_payload(m, payload) != 0)
      return client_fail(err, FMQ_CE_INTERNAL, "out of memory");
  } else if (json_is_string(b64)) {
    return client_base64_decode(json_string_value(b64), json_string_length(b64), m, err);
  } else {
    return client_fail(err, FMQ_CE_BAD_REQUEST, "\"payload_b64\" is not a string");
  }
  return 0;
}

int fmq_client_set_payload(struct fmq_client_msg *m, const json_t *value) {
  if (json_is_string(value)) {
    m->payload = (const uint8_t *)json_string_value(value);
    m->payload_len = json_string_length(value);
    return 0;
  }
  m->payload_owned = fmq_client_json_text(value, &m->payload_len);
  if (m->payload_owned == NULL)
    return FMQ_ENOMEM;
  m->payload = m->payload_owned;
  return 0;
}

static int client_parse_publish(struct fmq_client_msg *m, struct fmq_client_error *err) {
  json_t *retain;

  if (client_take_topic(m, err, fmq_topic_check_name, "topic is not a valid MQTT topic name") != 0)
    return -1;
  if (client_parse_payload(m, err) != 0 || client_take_qos(m, err) != 0)
    return -1;
  retain = json_object_get(m->root, "retain");
  if (retain != NULL && !json_is_boolean(retain))
    return client_fail(err, FMQ_CE_BAD_REQUEST, "\"retain\" must be true or false");
  m->retain = json_is_true(retain);
  return 0;
}

/* Strings may hold NUL (JSON_ALLOW_NUL), so types are compared with their
 * length: "ping\u0000" is not "ping". */
static enum fmq_client_kind client_kind_of(const char *type, size_t len) {
  static const struct {
    const char *name;
    enum fmq_client_kind kind;
  } kinds[] = {
      {"ping", FMQ_CLIENT_PING},
      {"subscribe", FMQ_CLIENT_SUBSCRIBE},
      {"unsubscribe", FMQ_CLIENT_UNSUBSCRIBE},
      {"publish", FMQ_CLIENT_PUBLISH},
  };

  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
    if (strlen(kinds[i].name) == len && memcmp(kinds[i].name, type, len) == 0)
      return kinds[i].kind;
  }
  return FMQ_CLIENT_OTHER;
}

int fmq_client_parse(const uint8_t *text, size_t len, struct fmq_client_msg *m,
                     struct fmq_client_error *err) {
  json_error_t jerr;
  json_t *id;
  json_t *type;

  memset(m, 0, sizeof(*m));
  /* JSON_DECODE_ANY: a scalar top level is valid JSON, just not a request.
   * JSON_ALLOW_NUL: a topic holding \u0000 is an invalid topic, not bad JSON. */
  m->root = json_loadb((const char *)text, len,
                       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
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
  m->type_len = json_string_length(type);
  m->kind = client_kind_of(m->type, m->type_len);
  switch (m->kind) {
  case FMQ_CLIENT_SUBSCRIBE:
    return client_parse_subscribe(m, err);
  case FMQ_CLIENT_UNSUBSCRIBE:
    return client_take_topic(m, err, fmq_topic_check_filter,
                             "topic is not a valid MQTT topic filter");
  case FMQ_CLIENT_PUBLISH:
    return client_parse_publish(m, err);
  case FMQ_CLIENT_PING:
  case FMQ_CLIENT_OTHER:
    break;
  }
  return 0;
}

int fmq_client_parse_binary(const uint8_t *data, size_t len, struct fmq_client_msg *m,
                            struct fmq_client_error *err) {
  size_t topic_len;

  memset(m, 0, sizeof(*m));
  m->kind = FMQ_CLIENT_PUBLISH;
  m->type = "publish";
  m->type_len = strlen(m->type);
  if (len < 2)
    return client_fail(err, FMQ_CE_BAD_REQUEST, "binary message has no topic length");
  topic_len = (size_t)data[0] << 8 | data[1];
  if (topic_len > len - 2)
    return client_fail(err, FMQ_CE_BAD_REQUEST, "binary message is shorter than its topic length");
  if (fmq_topic_check_name((const char *)data + 2, topic_len) != 0)
    return client_fail(err, FMQ_CE_INVALID_TOPIC, "topic is not a valid MQTT topic name");
  m->topic_owned = malloc(topic_len + 1);
  if (m->topic_owned == NULL)
    return client_fail(err, FMQ_CE_INTERNAL, "out of memory");
  memcpy(m->topic_owned, data + 2, topic_len);
  m->topic_owned[topic_len] = '\0';
  m->topic = m->topic_owned;
  m->topic_len = topic_len;
  m->payload = data + 2 + topic_len;
  m->payload_len = len - 2 - topic_len;
  return 0;
}

void fmq_client_msg_close(struct fmq_client_msg *m) {
  json_decref(m->root);
  free(m->payload_owned);
  free(m->topic_owned);
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

struct fmq_buf *fmq_client_encode_subscribed(const char *topic, int qos, const json_t *id) {
  return client_frame_new(json_pack("{s:s, s:s, s:i, s:O*}", "type", "subscribed", "topic", topic,
                                    "qos", qos, "id", (json_t *)id));
}

struct fmq_buf *fmq_client_encode_unsubscribed(const char *topic, const json_t *id) {
  return client_frame_new(
      json_pack("{s:s, s:s, s:O*}", "type", "unsubscribed", "topic", topic, "id", (json_t *)id));
}

struct fmq_buf *fmq_client_encode_unsubscribed_topics(const char *const *topics, size_t n,
                                                      const json_t *id) {
  json_t *list = json_array();

  for (size_t i = 0; list != NULL && i < n; i++) {
    if (json_array_append_new(list, json_string(topics[i])) != 0) {
      json_decref(list);
      list = NULL;
    }
  }
  if (list == NULL)
    return NULL;
  return client_frame_new(
      json_pack("{s:s, s:o, s:O*}", "type", "unsubscribed", "topics", list, "id", (json_t *)id));
}

struct fmq_buf *fmq_client_encode_puback(const json_t *id) {
  return client_frame_new(json_pack("{s:s, s:O*}", "type", "puback", "id", (json_t *)id));
}

struct fmq_buf *fmq_client_encode_status(int up) {
  return client_frame_new(
      json_pack("{s:s, s:s}", "type", "status", "broker", up ? "up" : "down"));
}

/* A JSON string of the payload when it is valid UTF-8, otherwise of its
 * base64 (*key says which). The bytes were checked, so jansson need not
 * check them again. */
static json_t *client_payload_value(const uint8_t *payload, size_t len, const char **key) {
  unsigned char *b64;
  json_t *value;
  int n;

  if (fmq_utf8_valid(payload, len)) {
    *key = "payload";
    /* jansson refuses a NULL pointer even for no bytes. */
    return json_stringn_nocheck(len > 0 ? (const char *)payload : "", len);
  }
  *key = "payload_b64";
  if (len > (size_t)INT_MAX / 4 * 3)
    return NULL;
  b64 = malloc((len + 2) / 3 * 4 + 1);
  if (b64 == NULL)
    return NULL;
  n = EVP_EncodeBlock(b64, payload, (int)len);
  value = json_stringn_nocheck((const char *)b64, (size_t)n);
  free(b64);
  return value;
}

struct fmq_buf *fmq_client_encode_message(const char *type, const char *topic,
                                          const uint8_t *payload, size_t len, int qos,
                                          int retain) {
  const char *key;
  json_t *value = client_payload_value(payload, len, &key);

  /* o steals value, also when it is NULL or packing fails. */
  return client_frame_new(json_pack("{s:s, s:s, s:o, s:i, s:b}", "type", type, "topic", topic,
                                    key, value, "qos", qos, "retain", retain));
}
