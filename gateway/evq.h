#ifndef FMQ_EVQ_H
#define FMQ_EVQ_H

#include <pthread.h>
#include <uv.h>

/* Hands events from other threads (Paho's) to the loop thread. Posting
 * appends to a mutex-protected list and wakes the loop only when the list
 * was empty; the loop takes the whole list at once, in posting order.
 * uv_async coalesces wake-ups, so a burst costs one loop iteration. */

struct fmq_evq_node {
  struct fmq_evq_node *next;
};

struct fmq_evq;
/* Called on the loop thread for each event, in posting order; owns node. */
typedef void (*fmq_evq_fn)(struct fmq_evq *q, struct fmq_evq_node *node);

struct fmq_evq {
  uv_async_t async;
  pthread_mutex_t lock;
  struct fmq_evq_node *head, *tail; /* guarded by lock */
  fmq_evq_fn handle;
  void *data;                       /* the owner's */
};

/* Loop thread. Returns 0 or a libuv error. */
int fmq_evq_init(struct fmq_evq *q, uv_loop_t *loop, fmq_evq_fn handle);
/* Any thread; takes ownership of node. Never fails. */
void fmq_evq_post(struct fmq_evq *q, struct fmq_evq_node *node);
/* Loop thread: handles what was posted, then closes the async handle. Stop
 * the posting threads first: nothing may be posted afterwards. q must stay
 * valid until the loop has run the close callback. */
void fmq_evq_close(struct fmq_evq *q);

#endif
