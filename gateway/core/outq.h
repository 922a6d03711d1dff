#ifndef FMQ_OUTQ_H
#define FMQ_OUTQ_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* One connection's outbound queue: a ring of shared frame buffers, each a
 * reference (never a copy). The oldest `inflight` entries belong to the
 * write under way. An empty queue owns no memory. Loop thread only. */

struct fmq_outq {
  struct fmq_buf **ring;
  uint32_t head, count, cap;
  uint32_t inflight;
  size_t bytes;           /* memory charged, in flight included (see below) */
};

/* Each entry is charged its frame's bytes plus this much for the buffer
 * header, the allocator and the ring slot, so a flood of tiny frames (empty
 * pongs) cannot hold much more memory than outbound_queue_limit says. */
#define FMQ_OUTQ_ENTRY_OVERHEAD 64

static inline size_t fmq_outq_cost(const struct fmq_buf *b) {
  return b->len + FMQ_OUTQ_ENTRY_OVERHEAD;
}

void fmq_outq_init(struct fmq_outq *q);
/* Drops every reference and frees the ring. */
void fmq_outq_close(struct fmq_outq *q);
/* Appends b, taking over one reference the caller held. Returns 0 or
 * FMQ_ENOMEM (then the reference is dropped). */
int fmq_outq_push(struct fmq_outq *q, struct fmq_buf *b);
/* Marks up to max entries not yet in flight as in flight and describes them
 * in bufs. Returns the count (0 when nothing is waiting or a write is
 * already under way). */
unsigned fmq_outq_gather(struct fmq_outq *q, uv_buf_t *bufs, unsigned max);
/* The write of the in-flight entries finished: drops their references. */
void fmq_outq_written(struct fmq_outq *q);
/* Drops every entry not in flight (a slow client's backlog before 1013). */
void fmq_outq_drop_waiting(struct fmq_outq *q);
static inline int fmq_outq_waiting(const struct fmq_outq *q) { return q->count > q->inflight; }

#endif
