#include "evq.h"

#include <stdint.h>

/* Events handled per wake-up. A backlog (the loop was stalled) would
 * otherwise be queued to every client before the first write goes out,
 * and a client that reads at full speed would still overflow its queue. */
#define FMQ_EVQ_BATCH 64

static void evq_drain(struct fmq_evq *q, size_t limit) {
  pthread_mutex_lock(&q->lock);
  struct fmq_evq_node *n = q->head, *last = q->tail;
  q->head = q->tail = NULL;
  pthread_mutex_unlock(&q->lock);
  for (size_t handled = 0; n != NULL; handled++) {
    /* A handler may have closed the queue: then everything is handled now. */
    if (handled >= limit && !uv_is_closing((uv_handle_t *)&q->async))
      break;
    struct fmq_evq_node *next = n->next;
    q->handle(q, n);
    n = next;
  }
  if (n == NULL)
    return;
  /* The rest goes back in front of what was posted meanwhile; the next
   * loop turn, after this one's writes, takes it. */
  pthread_mutex_lock(&q->lock);
  last->next = q->head;
  if (q->head == NULL)
    q->tail = last;
  q->head = n;
  pthread_mutex_unlock(&q->lock);
  uv_async_send(&q->async);
}

static void on_async(uv_async_t *h) {
  evq_drain(h->data, FMQ_EVQ_BATCH);
}

int fmq_evq_init(struct fmq_evq *q, uv_loop_t *loop, fmq_evq_fn handle) {
  q->head = q->tail = NULL;
  q->handle = handle;
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
  node->next = NULL;
  pthread_mutex_lock(&q->lock);
  int was_empty = q->head == NULL;
  if (was_empty)
    q->head = node;
  else
    q->tail->next = node;
  q->tail = node;
  pthread_mutex_unlock(&q->lock);
  if (was_empty)
    uv_async_send(&q->async);
}

static void on_evq_closed(uv_handle_t *h) {
  struct fmq_evq *q = h->data;
  pthread_mutex_destroy(&q->lock);
}

void fmq_evq_close(struct fmq_evq *q) {
  evq_drain(q, SIZE_MAX);
  uv_close((uv_handle_t *)&q->async, on_evq_closed);
}
