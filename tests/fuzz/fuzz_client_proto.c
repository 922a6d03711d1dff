#include "client_proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks that b is one unmasked FIN text frame whose payload parses back as
 * a message of the expected type carrying the same id. */
static void check_reply(const struct fmq_buf *b, const char *type, const json_t *id) {
  struct fmq_client_msg m;
  struct fmq_client_error err;
  uint64_t plen;
  size_t hlen;

  if (b == NULL)
    return; /* out of memory */
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

  if (fmq_client_parse(b->data + hlen, plen, &m, &err) != 0 || strcmp(m.type, type) != 0 ||
      (id == NULL) != (m.id == NULL) || (id != NULL && !json_equal(id, m.id)))
    abort();
  fmq_client_msg_close(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fmq_client_msg m;
  struct fmq_client_error err;
  struct fmq_buf *b;

  if (fmq_client_parse(data, size, &m, &err) == 0) {
    if (m.kind == FMQ_CLIENT_PING) {
      b = fmq_client_encode_pong(m.id);
      check_reply(b, "pong", m.id);
    } else {
      b = fmq_client_encode_error(FMQ_CE_UNKNOWN_TYPE, "unknown message type", m.id);
      check_reply(b, "error", m.id);
    }
  } else {
    if (err.message == NULL || (err.code != FMQ_CE_BAD_JSON && err.code != FMQ_CE_BAD_REQUEST))
      abort();
    b = fmq_client_encode_error(err.code, err.message, m.id);
    check_reply(b, "error", m.id);
  }
  fmq_buf_unref(b);
  fmq_client_msg_close(&m);
  return 0;
}
