#include "msg.h"

#include "payload.h"

#include <stdio.h>
#include <string.h>

/* The string value after `"key":` at or after p; NULL when absent. */
static const char *str_field(const char *p, const char *end, const char *key, size_t *len) {
  size_t kl = strlen(key);
  const char *k = memmem(p, (size_t)(end - p), key, kl);
  if (k == NULL) {
    return NULL;
  }
  const char *v = k + kl;
  while (v < end && (*v == ' ' || *v == ':')) {
    v++;
  }
  if (v >= end || *v != '"') {
    return NULL;
  }
  v++;
  const char *q = memchr(v, '"', (size_t)(end - v));
  if (q == NULL) {
    return NULL;
  }
  *len = (size_t)(q - v);
  return v;
}

int fmqb_reply_scan(const char *p, size_t n, struct fmqb_reply *r) {
  const char *end = p + n;
  size_t tl;
  memset(r, 0, sizeof *r);
  const char *t = str_field(p, end, "\"type\"", &tl);
  if (t == NULL) {
    return -1;
  }
  const char *rest = t + tl + 1;
  static const struct {
    const char *name;
    int type;
  } types[] = {{"message", FMQB_R_MESSAGE},         {"subscribed", FMQB_R_SUBSCRIBED},
               {"unsubscribed", FMQB_R_UNSUBSCRIBED}, {"puback", FMQB_R_PUBACK},
               {"error", FMQB_R_ERROR},             {"pong", FMQB_R_PONG},
               {"status", FMQB_R_STATUS}};
  r->type = FMQB_R_OTHER;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    if (strlen(types[i].name) == tl && memcmp(types[i].name, t, tl) == 0) {
      r->type = types[i].type;
      break;
    }
  }
  if (r->type == FMQB_R_MESSAGE) {
    r->payload = str_field(rest, end, "\"payload\"", &r->payload_len);
    return 0;
  }
  if (r->type == FMQB_R_ERROR) {
    r->code = str_field(rest, end, "\"code\"", &r->code_len);
  }
  const char *id = memmem(p, n, "\"id\":", 5);
  if (id != NULL) {
    id += 5;
    while (id < end && *id == ' ') {
      id++;
    }
    if (id < end && *id == '"') {
      id++;
    }
    uint64_t v = 0;
    const char *d = id;
    while (d < end && *d >= '0' && *d <= '9') {
      v = v * 10 + (uint64_t)(*d++ - '0');
    }
    if (d > id) {
      r->has_id = 1;
      r->id = v;
    }
  }
  return 0;
}

#define PUB_A "{\"type\":\"publish\",\"topic\":\""
#define PUB_B "\",\"qos\":"
#define PUB_C ",\"id\":"
#define PUB_D ",\"payload\":\""
#define PUB_E "\"}"
#define LIT(s) (sizeof(s) - 1)

size_t fmqb_msg_publish_len(size_t topic_len, int qos, int has_id, uint64_t id, size_t plen) {
  (void)qos;
  return LIT(PUB_A) + topic_len + LIT(PUB_B) + 1 + (has_id ? LIT(PUB_C) + fmqb_digits(id) : 0) +
         LIT(PUB_D) + plen + LIT(PUB_E);
}

void fmqb_msg_publish(char *out, const char *topic, size_t topic_len, int qos, int has_id,
                      uint64_t id, const char *payload, size_t plen) {
  char *p = out;
  memcpy(p, PUB_A, LIT(PUB_A));
  p += LIT(PUB_A);
  memcpy(p, topic, topic_len);
  p += topic_len;
  memcpy(p, PUB_B, LIT(PUB_B));
  p += LIT(PUB_B);
  *p++ = (char)('0' + qos);
  if (has_id) {
    memcpy(p, PUB_C, LIT(PUB_C));
    p += LIT(PUB_C);
    p += fmqb_utoa(p, id);
  }
  memcpy(p, PUB_D, LIT(PUB_D));
  p += LIT(PUB_D);
  memcpy(p, payload, plen);
  p += plen;
  memcpy(p, PUB_E, LIT(PUB_E));
}

size_t fmqb_msg_subscribe(char *out, size_t cap, const char *topic, int qos, uint64_t id) {
  int n = snprintf(out, cap, "{\"type\":\"subscribe\",\"topic\":\"%s\",\"qos\":%d,\"id\":%llu}",
                   topic, qos, (unsigned long long)id);
  return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t fmqb_url_topic(char *out, size_t cap, const char *topic) {
  size_t n = 0;
  for (; *topic && n + 4 < cap; topic++) {
    char c = *topic;
    if (strchr("/#+%&=? ", c) != NULL) {
      n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)c);
    } else {
      out[n++] = c;
    }
  }
  out[n] = '\0';
  return n;
}
