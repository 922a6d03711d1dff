#include "deadline.h"

void fmq_deadline_list_init(struct fmq_deadline_list *l, uint64_t period) {
  TAILQ_INIT(&l->nodes);
  l->period = period;
}

void fmq_deadline_disarm(struct fmq_deadline *d) {
  if (d->list == NULL)
    return;
  TAILQ_REMOVE(&d->list->nodes, d, link);
  d->list = NULL;
}

void fmq_deadline_arm(struct fmq_deadline_list *l, struct fmq_deadline *d, uint64_t now) {
  fmq_deadline_disarm(d);
  if (l->period == 0)
    return;
  d->at = now + l->period;
  TAILQ_INSERT_TAIL(&l->nodes, d, link);
  d->list = l;
}

struct fmq_deadline *fmq_deadline_expired(struct fmq_deadline_list *l, uint64_t now) {
  struct fmq_deadline *first = TAILQ_FIRST(&l->nodes);
  return first != NULL && first->at <= now ? first : NULL;
}

uint64_t fmq_deadline_next(const struct fmq_deadline_list *l) {
  const struct fmq_deadline *first = TAILQ_FIRST(&l->nodes);
  return first != NULL ? first->at : UINT64_MAX;
}
