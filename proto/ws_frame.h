#ifndef FMQ_WS_FRAME_H
#define FMQ_WS_FRAME_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

/* RFC 6455 section 5.2 framing: an incremental decoder with explicit states
 * and a header encoder. No extensions are negotiated, so RSV bits are errors. */

enum fmq_ws_opcode {
  FMQ_WS_CONTINUATION = 0x0,
  FMQ_WS_TEXT = 0x1,
  FMQ_WS_BINARY = 0x2,
  FMQ_WS_CLOSE = 0x8,
  FMQ_WS_PING = 0x9,
  FMQ_WS_PONG = 0xA
};

/* Close, ping and pong (RFC 6455 5.5): opcodes with the high bit set. */
static inline int fmq_ws_opcode_is_control(unsigned opcode) {
  return (opcode & 0x08) != 0;
}

#define FMQ_WS_HEADER_MAX 14       /* 2 + 8 (length) + 4 (mask) */
#define FMQ_WS_CONTROL_MAX 125

struct fmq_frame_header {
  uint8_t fin;
  uint8_t opcode;
  uint8_t masked;
  uint8_t mask[4];
  uint64_t length;
};

enum fmq_frame_event_type {
  FMQ_FRAME_NONE = 0,  /* every byte given was consumed; feed more */
  FMQ_FRAME_HEADER,    /* dec->header is complete and valid */
  FMQ_FRAME_PAYLOAD,   /* data/len: the next chunk of payload, already unmasked */
  FMQ_FRAME_END        /* the frame's payload is complete */
};

struct fmq_frame_event {
  enum fmq_frame_event_type type;
  uint8_t *data; /* points into the caller's buffer */
  size_t len;
};

enum fmq_frame_state {
  FMQ_FRAME_S_HEADER = 0, /* collecting the 2..14 header bytes */
  FMQ_FRAME_S_PAYLOAD,
  FMQ_FRAME_S_END         /* payload done, END not yet reported */
};

struct fmq_frame_decoder {
  enum fmq_frame_state state;
  uint8_t hdr[FMQ_WS_HEADER_MAX];
  uint8_t hdr_have;
  struct fmq_frame_header header;
  uint64_t remaining;      /* payload bytes still to come */
  uint64_t max_length;     /* a data frame declaring more is FMQ_ETOOBIG */
  uint8_t require_mask;    /* 1 on the server side: unmasked frames are FMQ_EPROTO */
  uint8_t mask_pos;        /* index into header.mask for the next payload byte */
};

void fmq_frame_decoder_init(struct fmq_frame_decoder *d, uint64_t max_length, int require_mask);

/* Decodes from buf[0..len). Payload is unmasked in place, so buf must be
 * writable. Sets *consumed to the bytes used and fills *ev with at most one
 * event; call again with the rest. Returns 0, or on a violation FMQ_EPROTO
 * (reserved bits, unknown opcode, unmasked frame when a mask is required,
 * fragmented or oversized control frame, 64-bit length with the top bit set)
 * or FMQ_ETOOBIG (declared length over max_length, known from the header).
 * After an error the decoder must not be fed again. Any thread; no allocation. */
int fmq_frame_decode(struct fmq_frame_decoder *d, uint8_t *buf, size_t len,
                     size_t *consumed, struct fmq_frame_event *ev);

/* Writes a frame header for a payload of `length` bytes into out and returns
 * its size (2..14). mask NULL: unmasked (server frames); otherwise the 4 mask
 * bytes are written and the caller masks the payload with fmq_frame_mask. */
size_t fmq_frame_header_encode(uint8_t out[FMQ_WS_HEADER_MAX], int fin, int opcode,
                               uint64_t length, const uint8_t mask[4]);

/* A complete unmasked single-frame message (a server frame) with that
 * payload, in a new buffer; NULL when out of memory. */
struct fmq_buf *fmq_ws_frame_new(int opcode, const void *payload, size_t len);

/* XORs p[0..n) with mask, starting at mask index `pos`; returns the next index. */
unsigned fmq_frame_mask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned pos);

#endif
