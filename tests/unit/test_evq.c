/* The thread -> loop event queue: producers post while the loop drains;
 * every event arrives once, in each producer's order. Run under TSan too. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "evq.h"

#include <pthread.h>
#include <stdlib.h>

#define PRODUCERS 4
#define EVENTS_EACH 20000

struct event {
  struct fmq_evq_node node;
  int producer;
  int seq;
};

struct fixture {
  uv_loop_t loop;
  struct fmq_evq q;
  int next_seq[PRODUCERS];   /* loop thread only */
  int received;
  int out_of_order;
};

struct producer {
  struct fixture *f;
  int index;
};

static void handle(struct fmq_evq *q, struct fmq_evq_node *node) {
  struct fixture *f = q->data;
  struct event *ev = (struct event *)node;
  if (ev->seq != f->next_seq[ev->producer])
    f->out_of_order++;
  f->next_seq[ev->producer] = ev->seq + 1;
  f->received++;
  free(ev);
}

static void *produce(void *arg) {
  struct producer *p = arg;
  for (int i = 0; i < EVENTS_EACH; i++) {
    struct event *ev = malloc(sizeof(*ev));
    ev->producer = p->index;
    ev->seq = i;
    fmq_evq_post(&p->f->q, &ev->node);
  }
  return NULL;
}

static void test_threads_post_while_loop_drains(void **state) {
  (void)state;
  struct fixture f = {0};
  assert_int_equal(uv_loop_init(&f.loop), 0);
  assert_int_equal(fmq_evq_init(&f.q, &f.loop, handle), 0);
  f.q.data = &f;

  pthread_t threads[PRODUCERS];
  struct producer producers[PRODUCERS];
  for (int i = 0; i < PRODUCERS; i++) {
    producers[i] = (struct producer){.f = &f, .index = i};
    assert_int_equal(pthread_create(&threads[i], NULL, produce, &producers[i]), 0);
  }
  while (f.received < PRODUCERS * EVENTS_EACH)
    uv_run(&f.loop, UV_RUN_ONCE);
  /* Posting must have stopped before the queue closes (as Paho's threads
   * are gone before the gateway closes its queue). */
  for (int i = 0; i < PRODUCERS; i++)
    pthread_join(threads[i], NULL);
  fmq_evq_close(&f.q);
  assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);

  assert_int_equal(f.received, PRODUCERS * EVENTS_EACH);
  assert_int_equal(f.out_of_order, 0);
  for (int i = 0; i < PRODUCERS; i++)
    assert_int_equal(f.next_seq[i], EVENTS_EACH);
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

static void count(struct fmq_evq *q, struct fmq_evq_node *node) {
  (*(int *)q->data)++;
  free(node);
}

/* Close handles what is still queued: nothing posted is lost or leaked. */
static void test_close_drains(void **state) {
  (void)state;
  uv_loop_t loop;
  struct fmq_evq q;
  int handled = 0;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(fmq_evq_init(&q, &loop, count), 0);
  q.data = &handled;
  for (int i = 0; i < 3; i++)
    fmq_evq_post(&q, malloc(sizeof(struct fmq_evq_node)));
  fmq_evq_close(&q);
  assert_int_equal(handled, 3);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Closing from a handler (the gateway's STOPPED handler does): the events
 * still in the running batch and those posted after it was taken are all
 * handled, once each and in posting order, before the handle closes. */

#define FIRST_POSTS (FMQ_EVQ_BATCH * 3 / 2) /* before the loop runs: two turns */
#define MAX_EVENTS (FIRST_POSTS * 3)

struct closing {
  uv_loop_t loop;
  struct fmq_evq q;
  int close_at;               /* the handler of this event closes the queue */
  int post_limit;             /* handlers before it post one each up to this */
  int posted;                 /* events are numbered 1.. in posting order */
  int handled[MAX_EVENTS + 1];
  int order[MAX_EVENTS];      /* numbers as handled */
  int nhandled;
  int after_close;            /* handled while the handle was closing */
};

static void closing_post(struct closing *f) {
  struct event *ev = malloc(sizeof(*ev));
  assert_non_null(ev);
  ev->producer = 0;
  ev->seq = ++f->posted;
  fmq_evq_post(&f->q, &ev->node);
}

static void closing_handle(struct fmq_evq *q, struct fmq_evq_node *node) {
  struct closing *f = q->data;
  struct event *ev = (struct event *)node;
  int seq = ev->seq;
  free(ev);
  if (uv_is_closing((uv_handle_t *)&q->async))
    f->after_close++;
  if (seq < 1 || seq > MAX_EVENTS || f->nhandled >= MAX_EVENTS)
    fail_msg("event %d handled beyond the %d possible", seq, MAX_EVENTS);
  f->handled[seq]++;
  f->order[f->nhandled++] = seq;
  if (seq == f->close_at)
    fmq_evq_close(q);
  else if (seq < f->close_at && f->posted < f->post_limit)
    closing_post(f); /* lands behind the batch being handled */
}

static void close_from_handler(int close_at, int post_limit) {
  struct closing *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->close_at = close_at;
  f->post_limit = post_limit;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(fmq_evq_init(&f->q, &f->loop, closing_handle), 0);
  f->q.data = f;
  for (int i = 0; i < FIRST_POSTS; i++)
    closing_post(f);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

  assert_true(f->posted > FIRST_POSTS && f->posted >= close_at);
  assert_int_equal(f->nhandled, f->posted);
  for (int i = 0; i < f->nhandled; i++)
    if (f->order[i] != i + 1)
      fail_msg("close at %d: handled #%d was event %d", close_at, i + 1, f->order[i]);
  for (int seq = 1; seq <= f->posted; seq++)
    assert_int_equal(f->handled[seq], 1);
  assert_int_equal(f->after_close, 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
}

/* In the first turn's batch, with more of it to come. */
static void test_close_from_handler_early(void **state) {
  (void)state;
  close_from_handler(10, MAX_EVENTS);
}

/* The last event the first turn's limit allows: the rest of the batch,
 * held back for the next turn, must be handled now instead. */
static void test_close_from_handler_at_batch_limit(void **state) {
  (void)state;
  close_from_handler(FMQ_EVQ_BATCH, MAX_EVENTS);
}

/* In the second turn's batch, which also holds events posted during the
 * first; more were posted during the second before the close. */
static void test_close_from_handler_second_turn(void **state) {
  (void)state;
  close_from_handler(FMQ_EVQ_BATCH + 20, MAX_EVENTS);
}

/* The last event there is: nothing left to handle. */
static void test_close_from_last_handler(void **state) {
  (void)state;
  close_from_handler(FIRST_POSTS + 10, FIRST_POSTS + 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads_post_while_loop_drains),
      cmocka_unit_test(test_close_drains),
      cmocka_unit_test(test_close_from_handler_early),
      cmocka_unit_test(test_close_from_handler_at_batch_limit),
      cmocka_unit_test(test_close_from_handler_second_turn),
      cmocka_unit_test(test_close_from_last_handler),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
