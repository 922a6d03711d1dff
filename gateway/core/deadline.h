#ifndef FMQ_DEADLINE_H
#define FMQ_DEADLINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/* A list of deadlines that all lie the same period after the moment a node
 * was (re)armed. Arming appends at the tail, so the list stays sorted with
 * O(1) arm, disarm and expiry checks: one coarse timer per loop serves every
 * connection's idle, ping, handshake and close deadlines, and an idle
 * connection owns no timer. Loop thread only. */

struct fmq_deadline_list;

/* Zeroed memory is a disarmed node. */
struct fmq_deadline {
  TAILQ_ENTRY(fmq_deadline) link;
  struct fmq_deadline_list *list;   /* the list it is in; NULL when disarmed */
  uint64_t at;                      /* ms, loop time */
};

/* Initialised in place; not to be copied or moved afterwards (the head and
 * the nodes point into it). */
struct fmq_deadline_list {
  TAILQ_HEAD(, fmq_deadline) nodes; /* earliest first */
  uint64_t period;                  /* ms; 0: arming is a no-op */
};

void fmq_deadline_list_init(struct fmq_deadline_list *l, uint64_t period);
/* (Re)arms d at now + period, moving it out of any list it was in (to the
 * tail when it was in l already). With period 0, d ends disarmed. */
void fmq_deadline_arm(struct fmq_deadline_list *l, struct fmq_deadline *d, uint64_t now);
/* Takes d out of its list, if any. */
void fmq_deadline_disarm(struct fmq_deadline *d);
static inline int fmq_deadline_armed(const struct fmq_deadline *d) { return d->list != NULL; }
/* The earliest node due at or before now, or NULL. The caller disarms or
 * re-arms it before asking again. */
struct fmq_deadline *fmq_deadline_expired(struct fmq_deadline_list *l, uint64_t now);
/* The earliest deadline in the list, or UINT64_MAX when it is empty. */
uint64_t fmq_deadline_next(const struct fmq_deadline_list *l);

#endif
