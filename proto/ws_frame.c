#include "ws_frame.h"

#include "error.h"

#include <string.h>

#define WS_FIN 0x80
#define WS_RSV 0x70
#define WS_OPCODE 0x0F
#define WS_MASKED 0x80
#define WS_LEN7 0x7F
#define WS_LEN16 126
#define WS_LEN64 127

static int frame_opcode_known(unsigned op) {
  return op <= FMQ_WS_BINARY || (op >= FMQ_WS_CLOSE && op <= FMQ_WS_PONG);
}

/* Copies header bytes until hdr_have reaches `want`; returns 1 once it has. */
static int frame_take(struct fmq_frame_decoder *d, const uint8_t *buf, size_t len,
                      size_t *used, size_t want) {
  while (d->hdr_have < want && *used < len)
    d->hdr[d->hdr_have++] = buf[(*used)++];
  return d->hdr_have >= want;
}

/* Collects and checks the header a piece at a time, so each violation is
 * reported as soon as the bytes showing it have arrived: the first two bytes,
 * then the extended length, then the mask. Returns FMQ_ENEEDMORE until the
 * header is complete. Re-checking the parts already seen when more bytes
 * arrive is cheap and keeps the decoder to one header state. */
static int frame_header(struct fmq_frame_decoder *d, const uint8_t *buf, size_t len,
                        size_t *used) {
  struct fmq_frame_header *h = &d->header;

  if (!frame_take(d, buf, len, used, 2))
    return FMQ_ENEEDMORE;
  uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
  unsigned op = b0 & WS_OPCODE;
  int control = fmq_ws_opcode_is_control(op);
  if ((b0 & WS_RSV) || !frame_opcode_known(op))
    return FMQ_EPROTO;
  if (d->require_mask && !(b1 & WS_MASKED))
    return FMQ_EPROTO;
  if (control && !(b0 & WS_FIN))
    return FMQ_EPROTO;

  size_t len_bytes = (b1 & WS_LEN7) == WS_LEN16 ? 2 : (b1 & WS_LEN7) == WS_LEN64 ? 8 : 0;
  if (!frame_take(d, buf, len, used, 2 + len_bytes))
    return FMQ_ENEEDMORE;
  uint64_t length = b1 & WS_LEN7;
  if (len_bytes != 0) {
    length = 0;
    for (size_t i = 0; i < len_bytes; i++)
      length = length << 8 | d->hdr[2 + i];
  }
  if (length >> 63)
    return FMQ_EPROTO;
  if (control && length > FMQ_WS_CONTROL_MAX)
    return FMQ_EPROTO;
  if (!control && length > d->max_length)
    return FMQ_ETOOBIG;

  size_t mask_bytes = (b1 & WS_MASKED) ? 4 : 0;
  if (!frame_take(d, buf, len, used, 2 + len_bytes + mask_bytes))
    return FMQ_ENEEDMORE;
  h->fin = (b0 & WS_FIN) != 0;
  h->opcode = (uint8_t)op;
  h->masked = mask_bytes != 0;
  if (h->masked)
    memcpy(h->mask, d->hdr + 2 + len_bytes, 4);
  else
    memset(h->mask, 0, 4);
  h->length = length;
  return 0;
}

void fmq_frame_decoder_init(struct fmq_frame_decoder *d, uint64_t max_length, int require_mask) {
  memset(d, 0, sizeof(*d));
  d->state = FMQ_FRAME_S_HEADER;
  d->max_length = max_length;
  d->require_mask = require_mask != 0;
}

int fmq_frame_decode(struct fmq_frame_decoder *d, uint8_t *buf, size_t len,
                     size_t *consumed, struct fmq_frame_event *ev) {
  size_t used = 0;
  int rc;

  ev->type = FMQ_FRAME_NONE;
  ev->data = NULL;
  ev->len = 0;

  switch (d->state) {
  case FMQ_FRAME_S_HEADER:
    rc = frame_header(d, buf, len, &used);
    if (rc == FMQ_ENEEDMORE)
      break;
    if (rc != 0) {
      *consumed = used;
      return rc;
    }
    d->hdr_have = 0;
    d->remaining = d->header.length;
    d->mask_pos = 0;
    d->state = d->remaining != 0 ? FMQ_FRAME_S_PAYLOAD : FMQ_FRAME_S_END;
    ev->type = FMQ_FRAME_HEADER;
    break;

  case FMQ_FRAME_S_PAYLOAD:
    used = d->remaining < len ? (size_t)d->remaining : len;
    if (used == 0)
      break;
    if (d->header.masked)
      d->mask_pos = (uint8_t)fmq_frame_mask(buf, used, d->header.mask, d->mask_pos);
    d->remaining -= used;
    if (d->remaining == 0)
      d->state = FMQ_FRAME_S_END;
    ev->type = FMQ_FRAME_PAYLOAD;
    ev->data = buf;
    ev->len = used;
    break;

  case FMQ_FRAME_S_END:
    d->state = FMQ_FRAME_S_HEADER;
    ev->type = FMQ_FRAME_END;
    break;
  }

  *consumed = used;
  return 0;
}

size_t fmq_frame_header_encode(uint8_t out[FMQ_WS_HEADER_MAX], int fin, int opcode,
                               uint64_t length, const uint8_t mask[4]) {
  size_t n = 2;

  out[0] = (uint8_t)((fin ? WS_FIN : 0) | (opcode & WS_OPCODE));
  out[1] = mask != NULL ? WS_MASKED : 0;
  if (length < WS_LEN16) {
    out[1] |= (uint8_t)length;
  } else if (length <= 0xFFFF) {
    out[1] |= WS_LEN16;
    out[n++] = (uint8_t)(length >> 8);
    out[n++] = (uint8_t)length;
  } else {
    out[1] |= WS_LEN64;
    for (int shift = 56; shift >= 0; shift -= 8)
      out[n++] = (uint8_t)(length >> shift);
  }
  if (mask != NULL) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

unsigned fmq_frame_mask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned pos) {
  size_t i = 0;

  pos &= 3;
  for (; i < n && pos != 0; i++, pos = (pos + 1) & 3)
    p[i] ^= mask[pos];
  /* Now at mask index 0: eight bytes at a time, the mask repeated twice. */
  if (n - i >= 8) {
    uint8_t m8[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    uint64_t m, w;
    memcpy(&m, m8, 8);
    for (; n - i >= 8; i += 8) {
      memcpy(&w, p + i, 8);
      w ^= m;
      memcpy(p + i, &w, 8);
    }
  }
  for (; i < n; i++, pos = (pos + 1) & 3)
    p[i] ^= mask[pos];
  return pos;
}

struct fmq_buf *fmq_ws_frame_new(int opcode, const void *payload, size_t len) {
  uint8_t head[FMQ_WS_HEADER_MAX];
  size_t n = fmq_frame_header_encode(head, 1, opcode, len, NULL);
  struct fmq_buf *b = fmq_buf_new(n + len);
  if (b != NULL) {
    memcpy(b->data, head, n);
    if (len > 0)
      memcpy(b->data + n, payload, len);
  }
  return b;
}
