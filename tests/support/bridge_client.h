#ifndef FMQT_BRIDGE_CLIENT_H
#define FMQT_BRIDGE_CLIENT_H

/* The JSON side of protocol v1 (sections 3 and 4) for tests of the MQTT
 * bridge: send requests, expect replies, messages and status changes, and
 * assert that nothing arrives. Built on wsclient.h; every expect function
 * fails the test with what arrived instead. Ids are strings here (NULL: no
 * id); tests of numeric ids inspect the JSON themselves. Main thread only. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Reads the next JSON text message (pings and pongs skipped; strings may
 * hold "\u0000"). Returns a new reference, or NULL on timeout, EOF, a
 * non-text frame or bad JSON. */
json_t *fmqt_recv(int fd, int timeout_ms);
/* The same, failing the test (naming what) when nothing arrives. */
json_t *fmqt_expect(int fd, int timeout_ms, const char *what);
/* The compact text of v (malloc'd; for messages in failures). */
char *fmqt_dump(const json_t *v);
/* Sends printf-style text as one text frame. */
void fmqt_sendf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Asserts v has "id" equal to the string id, or no "id" when id is NULL. */
void fmqt_assert_id(const json_t *v, const char *id, const char *what);
/* Sends subscribe (qos < 0: no "qos" field; id NULL: no "id") and expects
 * {"type":"subscribed","topic":topic,"qos":want_qos,"id":id}. */
void fmqt_subscribe(int fd, const char *topic, int qos, const char *id, int want_qos);
/* Sends subscribe without waiting for the reply. */
void fmqt_send_subscribe(int fd, const char *topic, int qos, const char *id);
/* Expects the subscribed reply for topic with want_qos and id. */
void fmqt_expect_subscribed(int fd, const char *topic, int want_qos, const char *id,
                            int timeout_ms);
/* Sends unsubscribe and expects {"type":"unsubscribed","topic":topic,"id":id}. */
void fmqt_unsubscribe(int fd, const char *topic, const char *id);
/* Sends a publish of a text payload (a JSON string) with qos, retain and id
 * (NULL: none); no reply is awaited. */
void fmqt_publish_text(int fd, const char *topic, const char *text, int qos, int retain,
                       const char *id);
/* Expects {"type":"puback","id":id}. */
/* Sends a binary-frame publish (protocol-v1 section 2): u16 big-endian
 * topic length, topic, payload. */
void fmqt_send_binary_publish(int fd, const char *topic, const void *payload, size_t len);
void fmqt_expect_puback(int fd, const char *id, int timeout_ms);
/* Asserts v is {"type":"error","code":code,"message":string,"id":id}. */
void fmqt_assert_error(const json_t *v, const char *code, const char *id, const char *what);
void fmqt_expect_error(int fd, const char *code, const char *id, int timeout_ms,
                       const char *what);
/* Asserts v is exactly {"type":"status","broker":state}. */
void fmqt_assert_status(const json_t *v, const char *state);
void fmqt_expect_status(int fd, const char *state, int timeout_ms);

/* 1 when v is {"type":"message",...} for topic. */
int fmqt_is_message(const json_t *v, const char *topic);
/* Asserts v is exactly {"type":"message","topic":topic,"payload"|"payload_b64":...,
 * "qos":qos,"retain":retain} carrying the len bytes at payload: as
 * "payload" when they are valid UTF-8, as "payload_b64" otherwise. qos < 0:
 * any of 0..2. */
void fmqt_assert_message(const json_t *v, const char *topic, const void *payload, size_t len,
                         int qos, int retain);
void fmqt_expect_message(int fd, const char *topic, const char *text, int qos, int retain,
                         int timeout_ms);
void fmqt_expect_message_bytes(int fd, const char *topic, const void *payload, size_t len,
                               int qos, int retain, int timeout_ms);
/* Asserts that no data frame (text or binary) and no close arrives within
 * ms; pings and pongs are ignored. */
void fmqt_expect_nothing(int fd, int ms, const char *what);

/* Decodes standard base64 (with padding) into out (cap bytes); returns the
 * length, or -1 when text is not valid base64. */
long fmqt_base64_decode(const char *text, uint8_t *out, size_t cap);
/* Encodes n bytes into out (4 * ((n + 2) / 3) + 1 bytes). */
void fmqt_base64_encode(const void *in, size_t n, char *out);
/* 1 when the n bytes are valid UTF-8 (RFC 3629). */
int fmqt_utf8_valid(const void *p, size_t n);

/* Typed deliveries (protocol-v1 section 6: a mapping's deliver_type renames
 * "type"). Asserts v is exactly {"type":type,"topic":topic,"payload"|
 * "payload_b64":...,"qos":qos,"retain":retain}, as fmqt_assert_message
 * does for "message". */
void fmqt_assert_typed_message(const json_t *v, const char *type, const char *topic,
                               const void *payload, size_t len, int qos, int retain);
void fmqt_expect_typed_message(int fd, const char *type, const char *topic, const char *text,
                               int qos, int retain, int timeout_ms);
/* Reads n messages and asserts they are one delivery of topic/text per
 * type in types (n entries, distinct), in any order. */
void fmqt_expect_typed_messages_any_order(int fd, const char *const *types, size_t n,
                                          const char *topic, const char *text, int qos,
                                          int retain, int timeout_ms);
/* Expects {"type":"unsubscribed","topics":[...],"id":id} whose topics are
 * exactly the n filters given, in any order, each once. */
void fmqt_expect_unsubscribed_topics(int fd, const char *const *topics, size_t n,
                                     const char *id, int timeout_ms);

#endif
