#include "ws_message.h"

#include "error.h"

#include <stdlib.h>
#include <string.h>

#define WS_MSG_MIN_CAP 1024
#define WS_CLOSE_REASON_MAX (FMQ_WS_CONTROL_MAX - 2)

void fmq_ws_reader_init(struct fmq_ws_reader *r, size_t max_message_size, uint32_t max_fragments) {
  memset(r, 0, sizeof(*r));
  fmq_frame_decoder_init(&r->frame, max_message_size, 1);
  r->max_message_size = max_message_size;
  r->max_fragments = max_fragments;
  fmq_utf8_init(&r->utf8);
}

static void reader_release(struct fmq_ws_reader *r) {
  free(r->msg);
  r->msg = NULL;
  r->msg_len = 0;
  r->msg_cap = 0;
}

void fmq_ws_reader_close(struct fmq_ws_reader *r) {
  reader_release(r);
}

void fmq_ws_reader_done(struct fmq_ws_reader *r) {
  if (r->msg_opcode == 0 && r->msg != NULL)
    reader_release(r);
}

/* Appends to the owned message buffer, doubling it as needed but never past
 * what the message can still reach: the exact total once the final frame's
 * length is known, else max_message_size. The buffer grows with the bytes
 * that actually arrived, not with what a header claims. */
static int reader_append(struct fmq_ws_reader *r, const uint8_t *p, size_t n) {
  size_t need = r->msg_len + n;

  if (need > r->msg_cap) {
    size_t bound = r->frame.header.fin ? need + (size_t)r->frame.remaining : r->max_message_size;
    size_t cap = r->msg_cap == 0 ? WS_MSG_MIN_CAP
                 : r->msg_cap > bound / 2 ? bound
                                          : r->msg_cap * 2;
    if (cap < need)
      cap = need;
    if (cap > bound)
      cap = bound;
    uint8_t *msg = realloc(r->msg, cap);
    if (msg == NULL)
      return FMQ_ENOMEM;
    r->msg = msg;
    r->msg_cap = cap;
  }
  memcpy(r->msg + r->msg_len, p, n);
  r->msg_len = need;
  return 0;
}

/* rest/rest_len: the caller's bytes right after the header. A frame is
 * delivered in place when it is a whole message (a control frame or an
 * unfragmented data frame) and its payload is all in rest. */
static int reader_header(struct fmq_ws_reader *r, uint8_t *rest, size_t rest_len) {
  const struct fmq_frame_header *h = &r->frame.header;
  int whole_message;

  if (fmq_ws_opcode_is_control(h->opcode)) {
    r->ctl_len = 0;
    whole_message = 1;
  } else {
    if (h->opcode == FMQ_WS_CONTINUATION) {
      if (r->msg_opcode == 0)
        return FMQ_EPROTO;
      if (r->msg_frames == r->max_fragments)
        return FMQ_EFRAGMENTS;
      r->msg_frames++;
    } else {
      if (r->msg_opcode != 0)
        return FMQ_EPROTO;
      /* r->utf8 needs no reset: a delivered text message ended on a
       * code point boundary, and an error ends the reader. */
      r->msg_opcode = h->opcode;
      r->msg_frames = 1;
    }
    /* One frame over the limit was refused by the decoder; this catches
     * fragments adding up to more. */
    if (h->length > r->max_message_size - r->msg_len)
      return FMQ_ETOOBIG;
    whole_message = h->fin && h->opcode != FMQ_WS_CONTINUATION;
  }
  r->in_place_start = whole_message && h->length <= rest_len ? rest : NULL;
  return 0;
}

static int reader_payload(struct fmq_ws_reader *r, const uint8_t *p, size_t n) {
  if (fmq_ws_opcode_is_control(r->frame.header.opcode)) {
    if (r->in_place_start == NULL) {
      memcpy(r->ctl + r->ctl_len, p, n);
      r->ctl_len = (uint8_t)(r->ctl_len + n);
    }
    return 0;
  }
  if (r->msg_opcode == FMQ_WS_TEXT && fmq_utf8_feed(&r->utf8, p, n) != 0)
    return FMQ_EUTF8;
  return r->in_place_start != NULL ? 0 : reader_append(r, p, n);
}

static int reader_close_frame(const uint8_t *p, size_t n, struct fmq_ws_event *ev) {
  ev->type = FMQ_WS_EV_CLOSE;
  if (n == 0)
    return 0;
  if (n == 1)
    return FMQ_EPROTO;
  unsigned code = (unsigned)p[0] << 8 | p[1];
  if (!fmq_ws_close_code_valid(code))
    return FMQ_EPROTO;
  if (!fmq_utf8_valid(p + 2, n - 2))
    return FMQ_EUTF8;
  ev->close_code = (uint16_t)code;
  ev->reason = (const char *)p + 2;
  ev->reason_len = n - 2;
  return 0;
}

static int reader_end(struct fmq_ws_reader *r, struct fmq_ws_event *ev) {
  const struct fmq_frame_header *h = &r->frame.header;

  if (fmq_ws_opcode_is_control(h->opcode)) {
    ev->data = r->in_place_start != NULL ? r->in_place_start : r->ctl;
    ev->len = (size_t)h->length;
    switch (h->opcode) {
    case FMQ_WS_PING:
      ev->type = FMQ_WS_EV_PING;
      return 0;
    case FMQ_WS_PONG:
      ev->type = FMQ_WS_EV_PONG;
      return 0;
    default:
      return reader_close_frame(ev->data, ev->len, ev);
    }
  }
  if (!h->fin)
    return 0;
  if (r->msg_opcode == FMQ_WS_TEXT && !fmq_utf8_complete(&r->utf8))
    return FMQ_EUTF8;
  ev->type = r->msg_opcode == FMQ_WS_TEXT ? FMQ_WS_EV_TEXT : FMQ_WS_EV_BINARY;
  if (r->in_place_start != NULL) {
    ev->data = r->in_place_start;
    ev->len = (size_t)h->length;
  } else {
    ev->data = r->msg;
    ev->len = r->msg_len;
  }
  r->msg_opcode = 0;
  return 0;
}

int fmq_ws_reader_feed(struct fmq_ws_reader *r, uint8_t *buf, size_t len,
                       size_t *consumed, struct fmq_ws_event *ev) {
  size_t used = 0;
  int rc = 0;

  memset(ev, 0, sizeof(*ev));
  fmq_ws_reader_done(r);

  while (rc == 0 && ev->type == FMQ_WS_EV_NONE) {
    struct fmq_frame_event fev;
    size_t n;

    rc = fmq_frame_decode(&r->frame, buf + used, len - used, &n, &fev);
    used += n;
    if (rc != 0)
      break;
    switch (fev.type) {
    case FMQ_FRAME_NONE:
      *consumed = used;
      return 0;
    case FMQ_FRAME_HEADER:
      rc = reader_header(r, buf + used, len - used);
      break;
    case FMQ_FRAME_PAYLOAD:
      rc = reader_payload(r, fev.data, fev.len);
      break;
    case FMQ_FRAME_END:
      if (fmq_ws_opcode_is_control(r->frame.header.opcode) || r->frame.header.fin ||
          r->frame.header.length > 0)
        r->activity++;
      rc = reader_end(r, ev);
      break;
    }
  }
  if (rc != 0)
    memset(ev, 0, sizeof(*ev));
  *consumed = used;
  return rc;
}

int fmq_ws_close_code_valid(unsigned code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

uint16_t fmq_ws_close_code_for(int err) {
  switch (err) {
  case FMQ_EPROTO: return 1002;
  case FMQ_EUTF8: return 1007;
  case FMQ_ETOOBIG:
  case FMQ_EFRAGMENTS: return 1009;
  default: return 1011;
  }
}

size_t fmq_ws_close_frame_encode(uint8_t *out, uint16_t code, const char *reason, size_t reason_len) {
  if (code == 0)
    return fmq_frame_header_encode(out, 1, FMQ_WS_CLOSE, 0, NULL);
  if (reason_len > WS_CLOSE_REASON_MAX) {
    /* Back up over continuation bytes to the start of the cut code point. */
    reason_len = WS_CLOSE_REASON_MAX;
    while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xC0) == 0x80)
      reason_len--;
  }
  size_t n = fmq_frame_header_encode(out, 1, FMQ_WS_CLOSE, 2 + reason_len, NULL);
  out[n++] = (uint8_t)(code >> 8);
  out[n++] = (uint8_t)code;
  if (reason_len != 0)
    memcpy(out + n, reason, reason_len);
  return n + reason_len;
}
