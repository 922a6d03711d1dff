#include "evq.h"

#include <stdint.h>

/* Moves everything posted to the end of batch. */
static void evq_take(struct fmq_evq *q, struct fmq_evq_list *batch) {
  pthread_mutex_lock(&q->lock);
  STAILQ_CONCAT(batch, &q->posted);
  pthread_mutex_unlock(&q->lock);
}

static void on_evq_closed(uv_handle_t *h) {
  struct fmq_evq *q = h->data;
  pthread_mutex_destroy(&q->lock);
}

/* The only place handlers run; never nested (fmq_evq_close from a handler
 * only sets closing). Up to limit events of what was posted; once the queue
 * is closing, everything, including what the handlers post, then the
 * handle is closed. */
static void evq_drain(struct fmq_evq *q, size_t limit) {
  struct fmq_evq_list batch = STAILQ_HEAD_INITIALIZER(batch);
  evq_take(q, &batch);
  q->draining = 1;
  for (size_t handled = 0;; handled++) {
    if (STAILQ_EMPTY(&batch) && q->closing)
      evq_take(q, &batch);
    struct fmq_evq_node *n = STAILQ_FIRST(&batch);
    if (n == NULL || (handled >= limit && !q->closing))
      break;
    STAILQ_REMOVE_HEAD(&batch, link);
    q->handle(q, n);
  }
  q->draining = 0;
  if (q->closing) {
    uv_close((uv_handle_t *)&q->async, on_evq_closed);
    return;
  }
  if (STAILQ_EMPTY(&batch))
    return;
  /* The rest goes back in front of what was posted meanwhile; the next
   * loop turn, after this one's writes, takes it. */
  pthread_mutex_lock(&q->lock);
  STAILQ_CONCAT(&batch, &q->posted);
  STAILQ_CONCAT(&q->posted, &batch);
  pthread_mutex_unlock(&q->lock);
  uv_async_send(&q->async);
}

static void on_async(uv_async_t *h) {
  evq_drain(h->data, FMQ_EVQ_BATCH);
}

int fmq_evq_init(struct fmq_evq *q, uv_loop_t *loop, fmq_evq_fn handle) {
  STAILQ_INIT(&q->posted);
  q->handle = handle;
  q->draining = q->closing = 0;
  int rc = pthread_mutex_init(&q->lock, NULL);
  if (rc != 0)
    return uv_translate_sys_error(rc);
  rc = uv_async_init(loop, &q->async, on_async);
  if (rc != 0) {
    pthread_mutex_destroy(&q->lock);
    return rc;
  }
  q->async.data = q;
  return 0;
}

void fmq_evq_post(struct fmq_evq *q, struct fmq_evq_node *node) {
  pthread_mutex_lock(&q->lock);
  int was_empty = STAILQ_EMPTY(&q->posted);
  STAILQ_INSERT_TAIL(&q->posted, node, link);
  pthread_mutex_unlock(&q->lock);
  if (was_empty)
    uv_async_send(&q->async);
}

void fmq_evq_close(struct fmq_evq *q) {
  if (q->closing)
    return;
  q->closing = 1;
  if (!q->draining)
    evq_drain(q, SIZE_MAX);
}
