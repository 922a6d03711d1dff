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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_threads_post_while_loop_drains),
      cmocka_unit_test(test_close_drains),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
