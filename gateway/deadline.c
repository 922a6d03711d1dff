#include "deadline.h"

#include <stddef.h>

void fmq_deadline_list_init(struct fmq_deadline_list *l, uint64_t period) {
  l->head.prev = l->head.next = &l->head;
  l->head.at = 0;
  l->period = period;
}

void fmq_deadline_disarm(struct fmq_deadline *d) {
  if (d->next == NULL)
    return;
  d->prev->next = d->next;
  d->next->prev = d->prev;
  d->prev = d->next = NULL;
}

void fmq_deadline_arm(struct fmq_deadline_list *l, struct fmq_deadline *d, uint64_t now) {
  fmq_deadline_disarm(d);
  if (l->period == 0)
    return;
  d->at = now + l->period;
  d->prev = l->head.prev;
  d->next = &l->head;
  l->head.prev->next = d;
  l->head.prev = d;
}

struct fmq_deadline *fmq_deadline_expired(struct fmq_deadline_list *l, uint64_t now) {
  struct fmq_deadline *first = l->head.next;
  return first != &l->head && first->at <= now ? first : NULL;
}

uint64_t fmq_deadline_next(const struct fmq_deadline_list *l) {
  return l->head.next != &l->head ? l->head.next->at : UINT64_MAX;
}
