/* Parses the input as a text message and as a binary one. Whatever parses
 * must hold the documented invariants and its reply must encode and parse
 * back; a refusal must carry one of the codes a parser may give. The input
 * is also delivered as a message payload, which must come back unchanged
 * when published again. */
#include "client_proto.h"
#include "topic.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks that b is one unmasked FIN text frame and returns its payload. */
static const uint8_t *frame_payload(const struct fmq_buf *b, size_t *len) {
  uint64_t plen;
  size_t hlen;

  if (b->len < 2 || b->data[0] != 0x81 || (b->data[1] & 0x80) != 0)
    abort();
  plen = b->data[1];
  hlen = 2;
  if (plen == 126) {
    plen = (uint64_t)b->data[2] << 8 | b->data[3];
    hlen = 4;
  } else if (plen == 127) {
    plen = 0;
    for (int i = 2; i < 10; i++)
      plen = plen << 8 | b->data[i];
    hlen = 10;
  }
  if (b->len != hlen + plen)
    abort();
  *len = (size_t)plen;
  return b->data + hlen;
}

/* Checks that b parses back as a message of the expected type carrying the
 * same id, and drops b. */
static void check_reply(struct fmq_buf *b, const char *type, const json_t *id) {
  struct fmq_client_msg m;
  struct fmq_client_error err;
  const uint8_t *p;
  size_t len;

  if (b == NULL)
    return; /* out of memory */
  p = frame_payload(b, &len);
  if (fmq_client_parse(p, len, &m, &err) != 0 || m.type_len != strlen(type) ||
      memcmp(m.type, type, m.type_len) != 0 || (id == NULL) != (m.id == NULL) ||
      (id != NULL && !json_equal(id, m.id)))
    abort();
  fmq_client_msg_close(&m);
  fmq_buf_unref(b);
}

/* Delivers payload as a message, turns the message into a publish and
 * checks that the publish carries the same topic, flags and bytes. */
static void check_message(const char *topic, const uint8_t *payload, size_t len, int qos,
                          int retain) {
  struct fmq_buf *b = fmq_client_encode_message("message", topic, payload, len, qos, retain);
  struct fmq_client_msg m;
  struct fmq_client_error err;
  const uint8_t *p;
  size_t plen;
  json_t *v;
  char *text;

  if (b == NULL)
    return;
  p = frame_payload(b, &plen);
  v = json_loadb((const char *)p, plen, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
  if (v == NULL || json_object_size(v) != 5 ||
      (json_object_get(v, "payload") != NULL) != fmq_utf8_valid(payload, len))
    abort();
  json_object_set_new(v, "type", json_string("publish"));
  text = json_dumps(v, JSON_COMPACT);
  if (text == NULL || fmq_client_parse((const uint8_t *)text, strlen(text), &m, &err) != 0 ||
      m.kind != FMQ_CLIENT_PUBLISH || strcmp(m.topic, topic) != 0 || m.qos != qos ||
      m.retain != retain || m.payload_len != len ||
      (len > 0 && memcmp(m.payload, payload, len) != 0))
    abort();
  fmq_client_msg_close(&m);
  free(text);
  json_decref(v);
  fmq_buf_unref(b);
}

/* A NUL-free topic of topic_len bytes that check accepts. */
static void check_topic(const struct fmq_client_msg *m, int (*check)(const char *, size_t)) {
  if (m->topic == NULL || strlen(m->topic) != m->topic_len ||
      check(m->topic, m->topic_len) != 0 || m->qos < 0 || m->qos > 2)
    abort();
}

static void check_publish(const struct fmq_client_msg *m) {
  check_topic(m, fmq_topic_check_name);
  if (m->payload == NULL || (m->retain != 0 && m->retain != 1))
    abort();
  check_reply(fmq_client_encode_puback(m->id), "puback", m->id);
  check_message(m->topic, m->payload, m->payload_len, m->qos, m->retain);
}

static void fuzz_text(const uint8_t *data, size_t size) {
  struct fmq_client_msg m;
  struct fmq_client_error err;

  if (fmq_client_parse(data, size, &m, &err) != 0) {
    if (err.message == NULL ||
        (err.code != FMQ_CE_BAD_JSON && err.code != FMQ_CE_BAD_REQUEST &&
         err.code != FMQ_CE_INVALID_TOPIC) ||
        (err.code == FMQ_CE_BAD_JSON && m.root != NULL))
      abort();
    check_reply(fmq_client_encode_error(err.code, err.message, m.id), "error", m.id);
    fmq_client_msg_close(&m);
    return;
  }
  switch (m.kind) {
  case FMQ_CLIENT_PING:
    check_reply(fmq_client_encode_pong(m.id), "pong", m.id);
    break;
  case FMQ_CLIENT_SUBSCRIBE:
    check_topic(&m, fmq_topic_check_filter);
    check_reply(fmq_client_encode_subscribed(m.topic, m.qos, m.id), "subscribed", m.id);
    break;
  case FMQ_CLIENT_UNSUBSCRIBE:
    check_topic(&m, fmq_topic_check_filter);
    check_reply(fmq_client_encode_unsubscribed(m.topic, m.id), "unsubscribed", m.id);
    break;
  case FMQ_CLIENT_PUBLISH:
    check_publish(&m);
    break;
  case FMQ_CLIENT_OTHER:
    check_reply(fmq_client_encode_error(FMQ_CE_UNKNOWN_TYPE, "unknown message type", m.id),
                "error", m.id);
    break;
  }
  fmq_client_msg_close(&m);
}

static void fuzz_binary(const uint8_t *data, size_t size) {
  struct fmq_client_msg m;
  struct fmq_client_error err;

  if (fmq_client_parse_binary(data, size, &m, &err) != 0) {
    if (err.message == NULL ||
        (err.code != FMQ_CE_BAD_REQUEST && err.code != FMQ_CE_INVALID_TOPIC) || m.topic != NULL)
      abort();
  } else {
    if (m.kind != FMQ_CLIENT_PUBLISH || m.root != NULL || m.id != NULL || m.qos != 0 ||
        m.retain != 0 || m.payload != data + 2 + m.topic_len ||
        m.payload_len != size - 2 - m.topic_len ||
        memcmp(m.topic, data + 2, m.topic_len) != 0)
      abort();
    check_publish(&m);
  }
  fmq_client_msg_close(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_text(data, size);
  fuzz_binary(data, size);
  check_message("fuzz/t", data, size, (int)(size % 3), (int)(size & 1));
  return 0;
}
