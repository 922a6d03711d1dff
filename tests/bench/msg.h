#ifndef FMQB_MSG_H
#define FMQB_MSG_H

/* The JSON protocol as the bench needs it (proto/PROTOCOL.md sections 3
 * and 4): requests built with plain string copies, replies scanned, not
 * parsed: the gateway writes "type" first and the bench's payloads need no
 * escapes, so a scan finds every field the bench reads at a fraction of a
 * parser's cost. */

#include <stddef.h>
#include <stdint.h>

enum fmqb_reply_type {
  FMQB_R_OTHER,
  FMQB_R_MESSAGE,
  FMQB_R_SUBSCRIBED,
  FMQB_R_UNSUBSCRIBED,
  FMQB_R_PUBACK,
  FMQB_R_ERROR,
  FMQB_R_PONG,
  FMQB_R_STATUS
};

struct fmqb_reply {
  int type;                     /* enum fmqb_reply_type */
  const char *payload;          /* message: the payload string (unescaped bytes) */
  size_t payload_len;
  const char *code;             /* error: its code */
  size_t code_len;
  int has_id;
  uint64_t id;                  /* a numeric "id" */
};

/* Scans one text message. Returns 0, or -1 when it has no "type". */
int fmqb_reply_scan(const char *p, size_t n, struct fmqb_reply *r);

/* {"type":"publish","topic":T,"qos":Q[,"id":ID],"payload":"P"}: its length
 * (fmqb_msg_publish_len) and its bytes (fmqb_msg_publish, which writes
 * exactly that many). has_id 0: no id. */
size_t fmqb_msg_publish_len(size_t topic_len, int qos, int has_id, uint64_t id, size_t plen);
void fmqb_msg_publish(char *out, const char *topic, size_t topic_len, int qos, int has_id,
                      uint64_t id, const char *payload, size_t plen);
/* {"type":"subscribe","topic":T,"qos":Q,"id":ID} into out; returns its length. */
size_t fmqb_msg_subscribe(char *out, size_t cap, const char *topic, int qos, uint64_t id);

/* The topic percent-encoded for a topic= query parameter ('/', '#', '+',
 * '%', '&' and '=' escaped) into out; returns its length. */
size_t fmqb_url_topic(char *out, size_t cap, const char *topic);

#endif
