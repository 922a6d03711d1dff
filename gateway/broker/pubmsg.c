#include "publisher.h"

#include <stdlib.h>
#include <string.h>

/* Charged per message besides its bytes: the record, the allocator. */
#define FMQ_PUBMSG_OVERHEAD 64

struct fmq_pubmsg *fmq_pubmsg_new(const char *topic, const void *payload, size_t len, int qos,
                                  int retain, uintptr_t token) {
  size_t tlen = strlen(topic);
  struct fmq_pubmsg *m = malloc(sizeof(*m) + tlen + 1 + len);
  if (m == NULL)
    return NULL;
  memcpy(m->data, topic, tlen + 1);
  m->payload = (uint8_t *)m->data + tlen + 1;
  if (len > 0)
    memcpy(m->payload, payload, len);
  m->len = len;
  m->token = token;
  m->cost = sizeof(*m) + tlen + 1 + len + FMQ_PUBMSG_OVERHEAD;
  m->outcome = FMQ_MQTT_NOT_SENT;
  m->reason = 0;
  m->msgid = 0;
  m->epoch = 0;
  m->written = 0;
  m->attempts = 0;
  m->qos = (uint8_t)qos;
  m->retain = (uint8_t)retain;
  return m;
}
