#include "timer.h"

#include "container.h"

#include <assert.h>

static void on_timer(uv_timer_t *h);

static void timer_rearm(struct fmq_timer *t) {
  uint64_t due = UINT64_MAX;
  for (size_t i = 0; i < t->nlists; i++) {
    uint64_t next = fmq_deadline_next(t->lists[i]);
    if (next < due)
      due = next;
  }
  t->due = due;
  if (due == UINT64_MAX) {
    uv_timer_stop(&t->handle);
    return;
  }
  uint64_t now = uv_now(t->handle.loop);
  uv_timer_start(&t->handle, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *h) {
  struct fmq_timer *t = fmq_container_of(h, struct fmq_timer, handle);
  uint64_t now = uv_now(h->loop);
  for (size_t i = 0; i < t->nlists; i++) {
    struct fmq_deadline *d;
    while ((d = fmq_deadline_expired(t->lists[i], now)) != NULL)
      t->handlers[i](d);
  }
  timer_rearm(t);
}

void fmq_timer_init(struct fmq_timer *t, uv_loop_t *loop) {
  uv_timer_init(loop, &t->handle);
  t->due = UINT64_MAX;
  t->nlists = 0;
}

void fmq_timer_watch(struct fmq_timer *t, struct fmq_deadline_list *l, fmq_deadline_due_fn due) {
  assert(t->nlists < FMQ_TIMER_MAX_LISTS);
  t->lists[t->nlists] = l;
  t->handlers[t->nlists] = due;
  t->nlists++;
}

void fmq_timer_arm(struct fmq_timer *t, struct fmq_deadline_list *l, struct fmq_deadline *d) {
  uint64_t now = uv_now(t->handle.loop);
  fmq_deadline_arm(l, d, now);
  if (fmq_deadline_armed(d) && d->at < t->due) {
    t->due = d->at;
    uv_timer_start(&t->handle, on_timer, d->at - now, 0);
  }
}

void fmq_timer_close(struct fmq_timer *t) {
  if (!uv_is_closing((uv_handle_t *)&t->handle))
    uv_close((uv_handle_t *)&t->handle, NULL);
}
