#ifndef FMQ_STREAM_H
#define FMQ_STREAM_H

#include "buf.h"
#include "outq.h"

#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

/* The write side of one TCP connection, whatever it carries (a WebSocket,
 * an HTTP response; TLS later): a queue of shared frames written by one
 * gathered uv_write per loop turn, and the staged end of the connection
 * (shut the write side down once what is owed is written, then wait for
 * the peer; or close at once). The owner reads (it knows what the bytes
 * are), keeps its own state and deadlines, and frees its memory in
 * ops->closed. Loop thread only. */

struct fmq_stream;

/* Streams with frames to write this loop turn, flushed by one uv_prepare
 * handle just before the loop polls. One per loop. */
struct fmq_flush {
  uv_prepare_t prepare;
  LIST_HEAD(, fmq_stream) pending;
};

void fmq_flush_init(struct fmq_flush *f, uv_loop_t *loop);
void fmq_flush_close(struct fmq_flush *f);

struct fmq_stream_ops {
  /* A write or the shutdown failed, or a frame could not be queued for
   * want of memory: the owner closes the stream (fmq_stream_close). May
   * run inside fmq_stream_write and fmq_stream_end: the stream can be
   * closed when they return. */
  void (*failed)(struct fmq_stream *s);
  /* uv_close's callback: nothing refers to the handle any more. */
  void (*closed)(struct fmq_stream *s);
};

enum fmq_stream_flag {
  FMQ_STREAM_PENDING = 1 << 0,   /* on flush->pending */
  FMQ_STREAM_END = 1 << 1,       /* shut the write side down once the queue drains */
  FMQ_STREAM_SHUT_DOWN = 1 << 2,
  FMQ_STREAM_CLOSED = 1 << 3     /* uv_close called */
};

struct fmq_stream {
  uv_tcp_t tcp;                  /* tcp.data is the owner's */
  const struct fmq_stream_ops *ops;
  struct fmq_flush *flush;
  uint64_t id;                   /* for the log: "conn N" */
  unsigned flags;
  struct fmq_outq outq;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  LIST_ENTRY(fmq_stream) pending_link;
};

/* Initialises s and its handle on loop (ready for uv_accept). */
void fmq_stream_init(struct fmq_stream *s, uv_loop_t *loop, struct fmq_flush *flush,
                     const struct fmq_stream_ops *ops, uint64_t id);
/* Queues b, taking over the caller's reference, to be written at the end of
 * this loop turn. Dropped (b NULL too) once the write side is shut down or
 * the stream closed. Otherwise b NULL or no memory to queue it: logged,
 * then ops->failed. */
void fmq_stream_write(struct fmq_stream *s, struct fmq_buf *b);
/* Shuts the write side down once everything queued is written: the peer
 * reads what it is owed, then FIN. Reading goes on (the owner waits for
 * the peer's FIN, bounded by its own deadline). Idempotent. */
void fmq_stream_end(struct fmq_stream *s);
/* Closes the handle now; ops->closed follows from the loop. Idempotent. */
void fmq_stream_close(struct fmq_stream *s);
static inline int fmq_stream_closed(const struct fmq_stream *s) {
  return (s->flags & FMQ_STREAM_CLOSED) != 0;
}

#endif
