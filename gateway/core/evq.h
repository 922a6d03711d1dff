#ifndef FMQ_EVQ_H
#define FMQ_EVQ_H

#include <pthread.h>
#include <sys/queue.h>
#include <uv.h>

/* Hands events from other threads (Paho's) to the loop thread. Posting
 * appends to a mutex-protected list and wakes the loop only when the list
 * was empty; the loop takes the whole list at once, in posting order, and
 * handles at most FMQ_EVQ_BATCH of it per wake-up. uv_async coalesces
 * wake-ups, so a burst costs one loop iteration. */

/* Events handled per wake-up; the rest waits for the next loop turn, in
 * front of what was posted meanwhile. A backlog (the loop was stalled)
 * would otherwise be queued to every client before the first write goes
 * out. */
#define FMQ_EVQ_BATCH 64

/* Embedded in the owner's event (mqtt.c puts it first). */
struct fmq_evq_node {
  STAILQ_ENTRY(fmq_evq_node) link;
};

STAILQ_HEAD(fmq_evq_list, fmq_evq_node);

struct fmq_evq;
/* Called on the loop thread for each event, in posting order; owns node. */
typedef void (*fmq_evq_fn)(struct fmq_evq *q, struct fmq_evq_node *node);

struct fmq_evq {
  uv_async_t async;
  pthread_mutex_t lock;
  struct fmq_evq_list posted; /* guarded by lock */
  fmq_evq_fn handle;
  void *data;                 /* the owner's */
  int draining;               /* loop thread: handlers are running */
  int closing;                /* loop thread: fmq_evq_close was called */
};

/* Loop thread. Returns 0 or a libuv error. */
int fmq_evq_init(struct fmq_evq *q, uv_loop_t *loop, fmq_evq_fn handle);
/* Any thread; takes ownership of node. Never fails. */
void fmq_evq_post(struct fmq_evq *q, struct fmq_evq_node *node);
/* Loop thread: handles everything posted, in posting order, each event
 * once, then closes the async handle. Stop the posting threads first:
 * only the handlers this close runs may still post (their events are
 * handled too). Called outside a handler, every event is handled before it
 * returns. Called from a handler, it returns at once: the running drain
 * finishes its batch without the per-turn limit, then handles whatever was
 * posted meanwhile, then closes. A second call does nothing. q must stay
 * valid until the loop has run the close callback. */
void fmq_evq_close(struct fmq_evq *q);

#endif
