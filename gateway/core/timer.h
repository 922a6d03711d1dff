#ifndef FMQ_TIMER_H
#define FMQ_TIMER_H

#include "deadline.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* One loop's coarse timer over its deadline lists (deadline.h): it fires at
 * the earliest head among them and calls each list's handler for every node
 * due. The rooms that own deadlines (a connection's handshake, idle, close
 * and ping) register their lists once; nothing else in the loop needs a
 * timer per connection. Loop thread only. */

typedef void (*fmq_deadline_due_fn)(struct fmq_deadline *d);

#define FMQ_TIMER_MAX_LISTS 8

struct fmq_timer {
  uv_timer_t handle;
  uint64_t due;                           /* loop time it fires; UINT64_MAX: idle */
  struct fmq_deadline_list *lists[FMQ_TIMER_MAX_LISTS];
  fmq_deadline_due_fn handlers[FMQ_TIMER_MAX_LISTS];
  size_t nlists;
};

void fmq_timer_init(struct fmq_timer *t, uv_loop_t *loop);
/* Serves l from now on: due is called for each node of l found due, and
 * must disarm or re-arm it. Lists are served in the order they were added.
 * At most FMQ_TIMER_MAX_LISTS. */
void fmq_timer_watch(struct fmq_timer *t, struct fmq_deadline_list *l, fmq_deadline_due_fn due);
/* (Re)arms d in l (a watched list) at now + l's period and makes sure the
 * timer fires by then. In a list whose period is 0, d ends disarmed. */
void fmq_timer_arm(struct fmq_timer *t, struct fmq_deadline_list *l, struct fmq_deadline *d);
/* Closes the handle; the lists are the caller's. */
void fmq_timer_close(struct fmq_timer *t);

#endif
