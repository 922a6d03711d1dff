#ifndef FMQ_WS_MESSAGE_H
#define FMQ_WS_MESSAGE_H

#include "utf8.h"
#include "ws_frame.h"

#include <stddef.h>
#include <stdint.h>

/* RFC 6455 messages on top of the frame decoder: reassembly of fragments with
 * control frames interleaved, incremental UTF-8 checking of text, close-frame
 * parsing and close-code rules, the message size limit.
 *
 * Memory: a message that arrives whole in one buffer is delivered in place
 * (no copy). Only a message split across reads or fragments is copied into
 * an owned buffer, which is freed by fmq_ws_reader_done (or the next feed),
 * so an idle reader holds no heap memory. */

enum fmq_ws_event_type {
  FMQ_WS_EV_NONE = 0, /* all bytes consumed, no complete event */
  FMQ_WS_EV_TEXT,     /* data/len: a complete, valid UTF-8 text message */
  FMQ_WS_EV_BINARY,
  FMQ_WS_EV_PING,     /* data/len: the ping payload (answer with the same) */
  FMQ_WS_EV_PONG,
  FMQ_WS_EV_CLOSE     /* close_code (0: the frame had no payload), reason */
};

struct fmq_ws_event {
  enum fmq_ws_event_type type;
  const uint8_t *data; /* valid until the next call on the reader */
  size_t len;
  uint16_t close_code;
  const char *reason;  /* CLOSE only, not NUL-terminated, valid UTF-8 */
  size_t reason_len;
};

struct fmq_ws_reader {
  struct fmq_frame_decoder frame;
  size_t max_message_size;
  uint32_t max_fragments;    /* data frames one message may take */
  uint32_t msg_frames;       /* data frames of the open message so far */
  uint8_t msg_opcode;        /* TEXT/BINARY while a message is open, else 0 */
  struct fmq_utf8 utf8;
  uint8_t *msg;              /* owned; NULL unless a message spans reads */
  size_t msg_len, msg_cap;
  uint8_t *in_place_start;   /* current frame's payload in the caller's buffer,
                                NULL when it is copied */
  uint8_t ctl[FMQ_WS_CONTROL_MAX];
  uint8_t ctl_len;
  /* Complete frames read so far that show the peer is alive: liveness
   * counts frames, not bytes, and not the empty fragments that neither carry
   * data nor end a message (a client could send those forever). */
  uint64_t activity;
};

/* max_fragments (at least 1) bounds the data frames of one message, so that
 * empty fragments cannot keep a message open forever. */
void fmq_ws_reader_init(struct fmq_ws_reader *r, size_t max_message_size, uint32_t max_fragments);
/* Frees what the reader owns; it may be initialised again afterwards. */
void fmq_ws_reader_close(struct fmq_ws_reader *r);

/* Feeds buf[0..len) (writable: payloads are unmasked in place). Sets
 * *consumed and fills *ev with at most one event; call again with the rest
 * until everything is consumed. Returns 0, or a negative error after which
 * the connection must be failed with fmq_ws_close_code_for(error):
 * FMQ_EPROTO 1002, FMQ_EUTF8 1007, FMQ_ETOOBIG and FMQ_EFRAGMENTS 1009,
 * FMQ_ENOMEM 1011. */
int fmq_ws_reader_feed(struct fmq_ws_reader *r, uint8_t *buf, size_t len,
                       size_t *consumed, struct fmq_ws_event *ev);

/* The caller has finished with the last event: frees the copy its data lay
 * in, if it was one. Call it when no more input is at hand. */
void fmq_ws_reader_done(struct fmq_ws_reader *r);

/* 1 when `code` may appear in a close frame received from a peer:
 * 1000-1003, 1007-1014 and 3000-4999. */
int fmq_ws_close_code_valid(unsigned code);
/* The close code that answers a reader error (1002, 1007, 1009 or 1011);
 * fmq_strerror(err) is its reason. */
uint16_t fmq_ws_close_code_for(int err);

/* Writes a complete unmasked close frame (code, reason) into out, which must
 * hold FMQ_WS_HEADER_MAX + 2 + reason_len bytes; code 0 writes an empty close
 * frame. reason_len is cut to fit the 125-byte control limit at a UTF-8
 * boundary. Returns the frame's size. */
size_t fmq_ws_close_frame_encode(uint8_t *out, uint16_t code, const char *reason, size_t reason_len);

#endif
