#ifndef FMQ_BUF_H
#define FMQ_BUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* An immutable, reference-counted byte buffer: usually one complete server
 * frame shared by every write queue that sends it. The count is atomic so a
 * frame may later be shared across event loops. */
struct fmq_buf {
  atomic_uint refs;
  uint32_t len;
  uint8_t data[];
};

/* Returns a buffer of `len` bytes with one reference held by the caller, or
 * NULL when out of memory. Contents are for the caller to fill before sharing. */
struct fmq_buf *fmq_buf_new(size_t len);
/* Takes one more reference and returns b. NULL returns NULL, as
 * fmq_buf_unref ignores NULL. */
struct fmq_buf *fmq_buf_ref(struct fmq_buf *b);
/* A new buffer holding a copy of p[0..n), or NULL when out of memory. */
struct fmq_buf *fmq_buf_copy(const void *p, size_t n);
/* Drops one reference; frees the buffer with the last. NULL is ignored. */
void fmq_buf_unref(struct fmq_buf *b);

#endif
