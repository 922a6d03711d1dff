#include "evq.h"

static void evq_drain(struct fmq_evq *q) {
  pthread_mutex_lock(&q->lock);
  struct fmq_evq_node *n = q->head;
  q->head = q->tail = NULL;
  pthread_mutex_unlock(&q->lock);
  while (n != NULL) {
    struct fmq_evq_node *next = n->next;
    q->handle(q, n);
    n = next;
  }
}

static void on_async(uv_async_t *h) {
  evq_drain(h->data);
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
  evq_drain(q);
  uv_close((uv_handle_t *)&q->async, on_evq_closed);
}
