#include "buf.h"

#include <stdlib.h>
#include <string.h>

struct fmq_buf *fmq_buf_new(size_t len) {
  if (len > UINT32_MAX)
    return NULL;
  struct fmq_buf *b = malloc(sizeof(*b) + len);
  if (b == NULL)
    return NULL;
  atomic_init(&b->refs, 1);
  b->len = (uint32_t)len;
  return b;
}

struct fmq_buf *fmq_buf_copy(const void *p, size_t n) {
  struct fmq_buf *b = fmq_buf_new(n);
  if (b != NULL && n > 0)
    memcpy(b->data, p, n);
  return b;
}

struct fmq_buf *fmq_buf_ref(struct fmq_buf *b) {
  if (b != NULL)
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  return b;
}

void fmq_buf_unref(struct fmq_buf *b) {
  if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
    free(b);
}
