#include "outq.h"

#include "error.h"

#include <stdlib.h>

void fmq_outq_init(struct fmq_outq *q) {
  *q = (struct fmq_outq){0};
}

static struct fmq_buf **slot(const struct fmq_outq *q, uint32_t i) {
  return &q->ring[(q->head + i) & (q->cap - 1)];
}

/* Drops entries from the tail until `keep` remain; frees the ring when empty. */
static void truncate_to(struct fmq_outq *q, uint32_t keep) {
  while (q->count > keep) {
    struct fmq_buf *b = *slot(q, q->count - 1);
    q->bytes -= fmq_outq_cost(b);
    fmq_buf_unref(b);
    q->count--;
  }
  if (q->count == 0) {
    free(q->ring);
    fmq_outq_init(q);
  }
}

void fmq_outq_close(struct fmq_outq *q) {
  q->inflight = 0;
  truncate_to(q, 0);
}

int fmq_outq_push(struct fmq_outq *q, struct fmq_buf *b) {
  if (q->count == q->cap) {
    uint32_t cap = q->cap ? q->cap * 2 : 4;
    struct fmq_buf **ring = malloc(cap * sizeof(*ring));
    if (ring == NULL) {
      fmq_buf_unref(b);
      return FMQ_ENOMEM;
    }
    for (uint32_t i = 0; i < q->count; i++)
      ring[i] = *slot(q, i);
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
  }
  *slot(q, q->count) = b;
  q->count++;
  q->bytes += fmq_outq_cost(b);
  return 0;
}

unsigned fmq_outq_gather(struct fmq_outq *q, uv_buf_t *bufs, unsigned max) {
  if (q->inflight > 0)
    return 0;
  unsigned n = 0;
  while (n < max && n < q->count) {
    struct fmq_buf *b = *slot(q, n);
    bufs[n] = uv_buf_init((char *)b->data, b->len);
    n++;
  }
  q->inflight = n;
  return n;
}

void fmq_outq_written(struct fmq_outq *q) {
  for (uint32_t i = 0; i < q->inflight; i++) {
    struct fmq_buf *b = *slot(q, i);
    q->bytes -= fmq_outq_cost(b);
    fmq_buf_unref(b);
  }
  q->head = (q->head + q->inflight) & (q->cap - 1);
  q->count -= q->inflight;
  q->inflight = 0;
  if (q->count == 0)
    truncate_to(q, 0);
}

void fmq_outq_drop_waiting(struct fmq_outq *q) {
  truncate_to(q, q->inflight);
}
