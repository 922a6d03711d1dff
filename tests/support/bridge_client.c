#include "bridge_client.h"

#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define REPLY_TIMEOUT_MS 5000

json_t *fmqt_recv(int fd, int timeout_ms) {
  return fmqt_ws_recv_json(fd, timeout_ms);
}

json_t *fmqt_expect(int fd, int timeout_ms, const char *what) {
  json_t *v = fmqt_recv(fd, timeout_ms);
  if (v == NULL) {
    fail_msg("%s: nothing (valid) arrived within %d ms", what, timeout_ms);
  }
  return v;
}

char *fmqt_dump(const json_t *v) {
  char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  return text != NULL ? text : strdup("(unprintable)");
}

void fmqt_sendf(int fd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = NULL;
  int n = vasprintf(&text, fmt, ap);
  va_end(ap);
  assert_true(n >= 0);
  fmqt_ws_send(fd, 1, 0x1, text, (size_t)n);
  free(text);
}

void fmqt_assert_id(const json_t *v, const char *id, const char *what) {
  json_t *got = json_object_get(v, "id");
  if (id == NULL) {
    if (got != NULL) {
      fail_msg("%s: expected no id in %s", what, fmqt_dump(v));
    }
  } else if (!json_is_string(got) || strcmp(json_string_value(got), id) != 0) {
    fail_msg("%s: expected id \"%s\" in %s", what, id, fmqt_dump(v));
  }
}

static int type_is(const json_t *v, const char *type) {
  const char *t = fmqt_json_str(v, "type");
  return t != NULL && strcmp(t, type) == 0;
}

/* Appends ,"id":"<id>" (or nothing) to buf. */
static const char *id_member(char *buf, size_t cap, const char *id) {
  if (id == NULL) {
    buf[0] = '\0';
  } else {
    json_t *s = json_string(id);
    char *text = fmqt_dump(s);
    snprintf(buf, cap, ",\"id\":%s", text);
    free(text);
    json_decref(s);
  }
  return buf;
}

/* The JSON string literal for text (malloc'd). */
static char *quoted(const char *text) {
  json_t *s = json_stringn(text, strlen(text));
  assert_non_null(s);
  char *q = fmqt_dump(s);
  json_decref(s);
  return q;
}

void fmqt_send_subscribe(int fd, const char *topic, int qos, const char *id) {
  char idm[256], qm[32] = "";
  if (qos >= 0) {
    snprintf(qm, sizeof qm, ",\"qos\":%d", qos);
  }
  char *t = quoted(topic);
  fmqt_sendf(fd, "{\"type\":\"subscribe\",\"topic\":%s%s%s}", t, qm, id_member(idm, sizeof idm, id));
  free(t);
}

void fmqt_expect_subscribed(int fd, const char *topic, int want_qos, const char *id,
                            int timeout_ms) {
  char what[512];
  snprintf(what, sizeof what, "subscribe %.300s", topic);
  json_t *v = fmqt_expect(fd, timeout_ms, what);
  json_t *qos = json_object_get(v, "qos");
  if (!type_is(v, "subscribed") || fmqt_json_str(v, "topic") == NULL ||
      strcmp(fmqt_json_str(v, "topic"), topic) != 0 || !json_is_integer(qos) ||
      json_integer_value(qos) != want_qos) {
    fail_msg("%s: expected subscribed with qos %d, got %s", what, want_qos, fmqt_dump(v));
  }
  fmqt_assert_id(v, id, what);
  json_decref(v);
}

void fmqt_subscribe(int fd, const char *topic, int qos, const char *id, int want_qos) {
  fmqt_send_subscribe(fd, topic, qos, id);
  fmqt_expect_subscribed(fd, topic, want_qos, id, REPLY_TIMEOUT_MS);
}

void fmqt_unsubscribe(int fd, const char *topic, const char *id) {
  char idm[256];
  char *t = quoted(topic);
  fmqt_sendf(fd, "{\"type\":\"unsubscribe\",\"topic\":%s%s}", t, id_member(idm, sizeof idm, id));
  free(t);
  char what[512];
  snprintf(what, sizeof what, "unsubscribe %.300s", topic);
  json_t *v = fmqt_expect(fd, REPLY_TIMEOUT_MS, what);
  if (!type_is(v, "unsubscribed") || fmqt_json_str(v, "topic") == NULL ||
      strcmp(fmqt_json_str(v, "topic"), topic) != 0) {
    fail_msg("%s: expected unsubscribed, got %s", what, fmqt_dump(v));
  }
  fmqt_assert_id(v, id, what);
  json_decref(v);
}

void fmqt_publish_text(int fd, const char *topic, const char *text, int qos, int retain,
                       const char *id) {
  char idm[256];
  char *t = quoted(topic), *p = quoted(text);
  fmqt_sendf(fd, "{\"type\":\"publish\",\"topic\":%s,\"payload\":%s,\"qos\":%d,\"retain\":%s%s}",
             t, p, qos, retain ? "true" : "false", id_member(idm, sizeof idm, id));
  free(t);
  free(p);
}

void fmqt_expect_puback(int fd, const char *id, int timeout_ms) {
  char what[300];
  snprintf(what, sizeof what, "puback for id \"%s\"", id);
  json_t *v = fmqt_expect(fd, timeout_ms, what);
  if (!type_is(v, "puback") || json_object_size(v) != 2) {
    fail_msg("%s: expected {\"type\":\"puback\",\"id\":...}, got %s", what, fmqt_dump(v));
  }
  fmqt_assert_id(v, id, what);
  json_decref(v);
}

void fmqt_assert_error(const json_t *v, const char *code, const char *id, const char *what) {
  const char *got = fmqt_json_str(v, "code");
  if (!type_is(v, "error") || got == NULL || strcmp(got, code) != 0 ||
      fmqt_json_str(v, "message") == NULL) {
    fail_msg("%s: expected error %s with a message, got %s", what, code, fmqt_dump(v));
  }
  fmqt_assert_id(v, id, what);
}

void fmqt_expect_error(int fd, const char *code, const char *id, int timeout_ms,
                       const char *what) {
  json_t *v = fmqt_expect(fd, timeout_ms, what);
  fmqt_assert_error(v, code, id, what);
  json_decref(v);
}

void fmqt_assert_status(const json_t *v, const char *state) {
  const char *got = fmqt_json_str(v, "broker");
  if (!type_is(v, "status") || got == NULL || strcmp(got, state) != 0 ||
      json_object_size(v) != 2) {
    fail_msg("expected {\"type\":\"status\",\"broker\":\"%s\"}, got %s", state, fmqt_dump(v));
  }
}

void fmqt_expect_status(int fd, const char *state, int timeout_ms) {
  char what[64];
  snprintf(what, sizeof what, "status %s", state);
  json_t *v = fmqt_expect(fd, timeout_ms, what);
  fmqt_assert_status(v, state);
  json_decref(v);
}

int fmqt_is_message(const json_t *v, const char *topic) {
  const char *t = fmqt_json_str(v, "topic");
  return type_is(v, "message") && t != NULL && strcmp(t, topic) == 0;
}

void fmqt_assert_message(const json_t *v, const char *topic, const void *payload, size_t len,
                         int qos, int retain) {
  const char *t = fmqt_json_str(v, "topic");
  json_t *q = json_object_get(v, "qos"), *r = json_object_get(v, "retain");
  if (!type_is(v, "message") || t == NULL || strcmp(t, topic) != 0) {
    fail_msg("expected a message on %.200s, got %s", topic, fmqt_dump(v));
  }
  if (!json_is_integer(q) || json_integer_value(q) < 0 || json_integer_value(q) > 2 ||
      (qos >= 0 && json_integer_value(q) != qos)) {
    fail_msg("message on %.200s: expected qos %d, got %s", topic, qos, fmqt_dump(v));
  }
  if (!json_is_boolean(r) || json_is_true(r) != (retain != 0)) {
    fail_msg("message on %.200s: expected retain %s, got %s", topic,
             retain ? "true" : "false", fmqt_dump(v));
  }
  if (json_object_size(v) != 5) {
    fail_msg("message on %.200s: expected exactly type, topic, payload or payload_b64, qos "
             "and retain, got %s", topic, fmqt_dump(v));
  }
  if (fmqt_utf8_valid(payload, len)) {
    json_t *p = json_object_get(v, "payload");
    if (!json_is_string(p) || json_string_length(p) != len ||
        memcmp(json_string_value(p), payload, len) != 0) {
      fail_msg("message on %.200s: expected \"payload\" with the %zu bytes sent (valid "
               "UTF-8), got %s", topic, len, fmqt_dump(v));
    }
  } else {
    json_t *p = json_object_get(v, "payload_b64");
    if (!json_is_string(p)) {
      fail_msg("message on %.200s: %zu bytes of invalid UTF-8 need \"payload_b64\", got %s",
               topic, len, fmqt_dump(v));
    }
    uint8_t *bytes = malloc(len + 16);
    assert_non_null(bytes);
    long n = fmqt_base64_decode(json_string_value(p), bytes, len + 16);
    if (n < 0 || (size_t)n != len || memcmp(bytes, payload, len) != 0) {
      fail_msg("message on %.200s: payload_b64 does not decode to the %zu bytes sent: %s",
               topic, len, fmqt_dump(v));
    }
    free(bytes);
  }
}

void fmqt_expect_message_bytes(int fd, const char *topic, const void *payload, size_t len,
                               int qos, int retain, int timeout_ms) {
  char what[300];
  snprintf(what, sizeof what, "message on %.200s", topic);
  json_t *v = fmqt_expect(fd, timeout_ms, what);
  fmqt_assert_message(v, topic, payload, len, qos, retain);
  json_decref(v);
}

void fmqt_expect_message(int fd, const char *topic, const char *text, int qos, int retain,
                         int timeout_ms) {
  fmqt_expect_message_bytes(fd, topic, text, strlen(text), qos, retain, timeout_ms);
}

void fmqt_expect_nothing(int fd, int ms, const char *what) {
  int64_t deadline = fmqt_now_ms() + ms;
  for (;;) {
    struct fmqt_frame f;
    int r = fmqt_ws_recv(fd, &f, fmqt_ms_until(deadline));
    if (r == FMQT_TIMEOUT) {
      return;
    }
    if (r == FMQT_EOF) {
      fail_msg("%s: the connection closed while nothing was expected", what);
    }
    if (f.opcode == 0x9 || f.opcode == 0xA) {
      fmqt_frame_free(&f);
      continue;
    }
    fail_msg("%s: expected nothing for %d ms, got opcode %u: %.400s", what, ms, f.opcode,
             f.opcode == 0x1 ? (const char *)f.payload : "(binary)");
  }
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

long fmqt_base64_decode(const char *text, uint8_t *out, size_t cap) {
  size_t n = strlen(text), o = 0;
  if (n % 4 != 0) {
    return -1;
  }
  for (size_t i = 0; i < n; i += 4) {
    int v[4], pad = 0;
    for (int k = 0; k < 4; k++) {
      char c = text[i + (size_t)k];
      if (c == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
      } else if (pad > 0 || (v[k] = b64_value(c)) < 0) {
        return -1;
      }
    }
    uint32_t bits = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                    (uint32_t)v[3];
    for (int k = 0; k < 3 - pad; k++) {
      if (o >= cap) {
        return -1;
      }
      out[o++] = (uint8_t)(bits >> (16 - 8 * k));
    }
  }
  return (long)o;
}

void fmqt_base64_encode(const void *in, size_t n, char *out) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const uint8_t *p = in;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
  }
  out[o] = '\0';
}

int fmqt_utf8_valid(const void *data, size_t n) {
  const uint8_t *s = data;
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t need;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (i + need >= n) {
      return 0;
    }
    for (size_t k = 1; k <= need; k++) {
      if ((s[i + k] & 0xC0) != 0x80) {
        return 0;
      }
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return 0;
    }
    i += need + 1;
  }
  return 1;
}

void fmqt_assert_typed_message(const json_t *v, const char *type, const char *topic,
                               const void *payload, size_t len, int qos, int retain) {
  if (!type_is(v, type)) {
    fail_msg("expected a \"%s\" delivery on %.200s, got %s", type, topic, fmqt_dump(v));
  }
  /* The rest is what a "message" must be. */
  json_t *copy = json_deep_copy(v);
  assert_non_null(copy);
  json_object_set_new(copy, "type", json_string("message"));
  fmqt_assert_message(copy, topic, payload, len, qos, retain);
  json_decref(copy);
}

void fmqt_expect_typed_message(int fd, const char *type, const char *topic, const char *text,
                               int qos, int retain, int timeout_ms) {
  char what[300];
  snprintf(what, sizeof what, "\"%s\" delivery on %.200s", type, topic);
  json_t *v = fmqt_expect(fd, timeout_ms, what);
  fmqt_assert_typed_message(v, type, topic, text, strlen(text), qos, retain);
  json_decref(v);
}

void fmqt_expect_typed_messages_any_order(int fd, const char *const *types, size_t n,
                                          const char *topic, const char *text, int qos,
                                          int retain, int timeout_ms) {
  int seen[16] = {0};
  assert_true(n <= 16);
  for (size_t got = 0; got < n; got++) {
    char what[300];
    snprintf(what, sizeof what, "delivery %zu of %zu on %.200s", got + 1, n, topic);
    json_t *v = fmqt_expect(fd, timeout_ms, what);
    const char *t = fmqt_json_str(v, "type");
    size_t k = 0;
    while (k < n && (t == NULL || strcmp(t, types[k]) != 0)) {
      k++;
    }
    if (k == n || seen[k]) {
      fail_msg("%s: expected one delivery per type, got %s%s", what, fmqt_dump(v),
               k < n ? " a second time" : "");
    }
    fmqt_assert_typed_message(v, types[k], topic, text, strlen(text), qos, retain);
    seen[k] = 1;
    json_decref(v);
  }
}

void fmqt_expect_unsubscribed_topics(int fd, const char *const *topics, size_t n,
                                     const char *id, int timeout_ms) {
  json_t *v = fmqt_expect(fd, timeout_ms, "unsubscribed with topics");
  json_t *list = json_object_get(v, "topics");
  if (!type_is(v, "unsubscribed") || !json_is_array(list) || json_array_size(list) != n ||
      json_object_size(v) != (id != NULL ? 3u : 2u)) {
    fail_msg("expected {\"type\":\"unsubscribed\",\"topics\":[%zu filters]%s}, got %s", n,
             id != NULL ? ",\"id\":..." : "", fmqt_dump(v));
  }
  fmqt_assert_id(v, id, "unsubscribed with topics");
  int seen[64] = {0};
  assert_true(n <= 64);
  for (size_t i = 0; i < n; i++) {
    const char *t = json_string_value(json_array_get(list, i));
    size_t k = 0;
    while (k < n && (t == NULL || strcmp(t, topics[k]) != 0)) {
      k++;
    }
    if (k == n || seen[k]) {
      fail_msg("unsubscribed: unexpected or repeated topic at %zu in %s", i, fmqt_dump(v));
    }
    seen[k] = 1;
  }
  json_decref(v);
}

void fmqt_send_binary_publish(int fd, const char *topic, const void *payload, size_t len) {
  size_t tlen = strlen(topic);
  uint8_t *frame = malloc(2 + tlen + len);
  assert_non_null(frame);
  assert_true(tlen <= 0xffff);
  frame[0] = (uint8_t)(tlen >> 8);
  frame[1] = (uint8_t)tlen;
  memcpy(frame + 2, topic, tlen);
  if (len > 0)
    memcpy(frame + 2 + tlen, payload, len);
  fmqt_ws_send(fd, 1, 0x2, frame, 2 + tlen + len);
  free(frame);
}
