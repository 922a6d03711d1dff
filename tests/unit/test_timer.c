/* The loop's coarse timer over several deadline lists, on a real uv loop:
 * nodes fire once their period has passed (loop time), lists due together
 * are served in watch order, re-arming moves a node later, a disarmed node
 * never fires, a handler can re-arm its node (a ping), a list of period 0
 * never arms and the timer stops (uv_run returns) once nothing is armed.
 * Timing assertions are lower bounds on loop time only. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "container.h"
#include "timer.h"

#define FMQT_LISTS 3
#define FMQT_MAX_EVENTS 64
#define FMQT_WATCHDOG_MS 10000

struct fmqt_fixture;

/* One firing, in the order the handlers were called. */
struct fmqt_event {
  int list;          /* index of the handler called (watch order) */
  int node;
  uint64_t now;      /* uv_now when it was called */
  uint64_t at;       /* the node's deadline */
};

struct fmqt_node {
  struct fmq_deadline d;
  struct fmqt_fixture *f;
  int id;
  int list;          /* the list it was last armed in */
  uint64_t armed_at; /* uv_now when last armed */
  uint64_t at;       /* its deadline when last armed */
  int fires;
  int rearms;        /* the handler re-arms it this many more times */
  struct fmqt_node *then_arm;    /* the handler re-arms this node ... */
  struct fmqt_node *then_disarm; /* ... and disarms this one */
};

struct fmqt_fixture {
  uv_loop_t loop;
  struct fmq_timer timer;
  struct fmq_deadline_list lists[FMQT_LISTS];
  int watch_index[FMQT_LISTS]; /* list -> position in watch order */
  struct fmqt_event events[FMQT_MAX_EVENTS];
  int nevents;
  int early;         /* a node served before its deadline */
  uv_timer_t watchdog;
  int timed_out;
};

static void fmqt_arm(struct fmqt_node *n, int list) {
  struct fmqt_fixture *f = n->f;
  n->list = list;
  n->armed_at = uv_now(&f->loop);
  fmq_timer_arm(&f->timer, &f->lists[list], &n->d);
  n->at = n->d.at;
}

/* Arms n in a list as if at loop time `now`, without telling the timer (a
 * node armed earlier whose deadline the loop is late for). */
static void fmqt_arm_untold(struct fmqt_node *n, int list, uint64_t now) {
  struct fmqt_fixture *f = n->f;
  n->list = list;
  n->armed_at = now;
  fmq_deadline_arm(&f->lists[list], &n->d, now);
  n->at = n->d.at;
}

static void fmqt_due(int list, struct fmq_deadline *d) {
  struct fmqt_node *n = fmq_container_of(d, struct fmqt_node, d);
  struct fmqt_fixture *f = n->f;
  uint64_t now = uv_now(&f->loop);
  assert_true(f->nevents < FMQT_MAX_EVENTS);
  f->events[f->nevents++] =
      (struct fmqt_event){.list = list, .node = n->id, .now = now, .at = n->at};
  if (now < n->armed_at + f->lists[list].period || now < n->at)
    f->early++;
  assert_int_equal(n->list, list); /* the handler of the node's own list */
  n->fires++;
  if (n->then_arm != NULL)
    fmqt_arm(n->then_arm, n->then_arm->list);
  if (n->then_disarm != NULL)
    fmq_deadline_disarm(&n->then_disarm->d);
  if (n->rearms > 0) {
    n->rearms--;
    fmqt_arm(n, list);
  } else {
    fmq_deadline_disarm(d);
  }
}

static void fmqt_due0(struct fmq_deadline *d) { fmqt_due(0, d); }
static void fmqt_due1(struct fmq_deadline *d) { fmqt_due(1, d); }
static void fmqt_due2(struct fmq_deadline *d) { fmqt_due(2, d); }

static void fmqt_on_watchdog(uv_timer_t *h) {
  struct fmqt_fixture *f = h->data;
  f->timed_out = 1;
  uv_stop(&f->loop);
}

/* periods[i] for list i; order lists the list indexes in watch order. */
static void fmqt_open(struct fmqt_fixture *f, const uint64_t periods[FMQT_LISTS],
                      const int order[FMQT_LISTS]) {
  static const fmq_deadline_due_fn handlers[FMQT_LISTS] = {fmqt_due0, fmqt_due1, fmqt_due2};
  *f = (struct fmqt_fixture){0};
  assert_int_equal(uv_loop_init(&f->loop), 0);
  fmq_timer_init(&f->timer, &f->loop);
  assert_int_equal(f->timer.due, UINT64_MAX);
  for (int i = 0; i < FMQT_LISTS; i++)
    fmq_deadline_list_init(&f->lists[i], periods[i]);
  for (int i = 0; i < FMQT_LISTS; i++) {
    fmq_timer_watch(&f->timer, &f->lists[order[i]], handlers[order[i]]);
    f->watch_index[order[i]] = i;
  }
  assert_int_equal(f->timer.nlists, FMQT_LISTS);
  /* Unreferenced: it never keeps the loop alive, only ends a hung test. */
  assert_int_equal(uv_timer_init(&f->loop, &f->watchdog), 0);
  f->watchdog.data = f;
  assert_int_equal(uv_timer_start(&f->watchdog, fmqt_on_watchdog, FMQT_WATCHDOG_MS, 0), 0);
  uv_unref((uv_handle_t *)&f->watchdog);
}

static void fmqt_node_init(struct fmqt_node *n, struct fmqt_fixture *f, int id) {
  *n = (struct fmqt_node){.f = f, .id = id};
}

/* Runs the loop until nothing keeps it alive: returns only once the timer
 * has stopped (it is the only referenced handle). */
static void fmqt_run(struct fmqt_fixture *f) {
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_false(f->timed_out);
  assert_false(uv_is_active((uv_handle_t *)&f->timer.handle));
  assert_int_equal(f->timer.due, UINT64_MAX);
  assert_int_equal(f->early, 0);
}

/* Whatever the loop's lateness: handlers are called in loop-time order; a
 * later pass never serves an earlier deadline (every node due is served in
 * the pass that finds it due); within one pass (same uv_now) list by list in
 * watch order, and within a list earliest deadline first. */
static void fmqt_check_pass_order(const struct fmqt_fixture *f) {
  for (int i = 1; i < f->nevents; i++) {
    const struct fmqt_event *a = &f->events[i - 1], *b = &f->events[i];
    assert_true(a->now <= b->now);
    if (a->now < b->now) {
      assert_true(a->at <= b->at);
    } else {
      assert_true(f->watch_index[a->list] <= f->watch_index[b->list]);
      if (a->list == b->list)
        assert_true(a->at <= b->at);
    }
  }
}

static const struct fmqt_event *fmqt_event_of(const struct fmqt_fixture *f, int node, int nth) {
  for (int i = 0; i < f->nevents; i++)
    if (f->events[i].node == node && nth-- == 0)
      return &f->events[i];
  fail_msg("node %d did not fire %d times", node, nth + 1);
  return NULL;
}

static void fmqt_finish(struct fmqt_fixture *f) {
  fmq_timer_close(&f->timer);
  fmq_timer_close(&f->timer); /* idempotent */
  uv_close((uv_handle_t *)&f->watchdog, NULL);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Nodes of three lists armed together fire once each, none before its
 * period, in deadline order (FIFO within a list); the timer is set for the
 * earliest deadline whatever the arming order. */
static void test_fires_after_period(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, (const uint64_t[]){60, 10, 30}, (const int[]){0, 1, 2});
  struct fmqt_node a, b1, b2, c;
  fmqt_node_init(&a, &f, 1);
  fmqt_node_init(&b1, &f, 2);
  fmqt_node_init(&b2, &f, 3);
  fmqt_node_init(&c, &f, 4);
  uint64_t start = uv_now(&f.loop);
  assert_false(uv_is_active((uv_handle_t *)&f.timer.handle));
  fmqt_arm(&a, 0);
  assert_int_equal(f.timer.due, start + 60);
  assert_true(uv_is_active((uv_handle_t *)&f.timer.handle));
  fmqt_arm(&b1, 1);
  assert_int_equal(f.timer.due, start + 10);
  fmqt_arm(&c, 2);
  assert_int_equal(f.timer.due, start + 10);
  fmqt_arm(&b2, 1);
  assert_int_equal(f.timer.due, start + 10); /* a later deadline leaves it */

  fmqt_run(&f);
  assert_int_equal(f.nevents, 4);
  fmqt_check_pass_order(&f);
  assert_int_equal(a.fires, 1);
  assert_int_equal(b1.fires, 1);
  assert_int_equal(b2.fires, 1);
  assert_int_equal(c.fires, 1);
  assert_true(fmqt_event_of(&f, 1, 0)->now >= start + 60);
  assert_true(fmqt_event_of(&f, 2, 0)->now >= start + 10);
  assert_true(fmqt_event_of(&f, 3, 0)->now >= start + 10);
  assert_true(fmqt_event_of(&f, 4, 0)->now >= start + 30);
  /* b1 was armed before b2 in the same list: it goes first. */
  assert_int_equal(f.events[0].node, 2);
  assert_int_equal(f.events[1].node, 3);
  /* a has the latest deadline: last, whatever the loop's lateness. */
  assert_int_equal(f.events[3].node, 1);
  fmqt_finish(&f);
}

/* Nodes of several lists all due when the timer fires (the loop was late:
 * three were armed without the timer being told, as if earlier) are served
 * in one pass, list by list in watch order, not in deadline order, and every
 * node due in a list before the next list. */
static void test_due_together_served_in_watch_order(void **state) {
  (void)state;
  struct fmqt_fixture f;
  /* Watched 2, 0, 1: the list with the latest deadline first. */
  fmqt_open(&f, (const uint64_t[]){10, 25, 40}, (const int[]){2, 0, 1});
  struct fmqt_node x1, x2, y, z;
  fmqt_node_init(&x1, &f, 1);
  fmqt_node_init(&x2, &f, 2);
  fmqt_node_init(&y, &f, 3);
  fmqt_node_init(&z, &f, 4);
  uint64_t start = uv_now(&f.loop);
  fmqt_arm_untold(&x1, 0, start);
  fmqt_arm_untold(&x2, 0, start);
  fmqt_arm_untold(&y, 1, start);
  fmqt_arm(&z, 2);
  assert_int_equal(f.timer.due, start + 40);

  fmqt_run(&f);
  assert_int_equal(f.nevents, 4);
  fmqt_check_pass_order(&f);
  static const int nodes[] = {4, 1, 2, 3}, lists[] = {2, 0, 0, 1};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(f.events[i].node, nodes[i]);
    assert_int_equal(f.events[i].list, lists[i]);
    assert_int_equal(f.events[i].now, f.events[0].now); /* one pass */
  }
  assert_true(f.events[0].now >= start + 40);
  fmqt_finish(&f);
}

/* Nodes due 1 ms apart, each after the timer's first deadline: whenever the
 * timer fires, it serves only those already due, never one early. */
static void test_never_served_before_deadline(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, (const uint64_t[]){20, 0, 0}, (const int[]){0, 1, 2});
  struct fmqt_node n[11];
  uint64_t start = uv_now(&f.loop);
  fmqt_node_init(&n[0], &f, 0);
  fmqt_arm(&n[0], 0);
  for (int i = 1; i < 11; i++) {
    fmqt_node_init(&n[i], &f, i);
    fmqt_arm_untold(&n[i], 0, start + (uint64_t)i);
  }
  fmqt_run(&f); /* fails on f.early */
  assert_int_equal(f.nevents, 11);
  fmqt_check_pass_order(&f);
  for (int i = 0; i < 11; i++) {
    assert_int_equal(f.events[i].node, i);
    assert_true(f.events[i].now >= start + 20 + (uint64_t)i);
  }
  fmqt_finish(&f);
}

/* Re-arming a node (activity on a connection) moves its deadline a full
 * period after the re-arm: it fires once, after nodes armed after it. */
static void test_rearm_moves_node_later(void **state) {
  (void)state;
  struct fmqt_fixture f;
  /* The list of p (the re-arming handler) is watched first, so a late loop
   * serving all at once still re-arms x1 before its list is looked at. */
  fmqt_open(&f, (const uint64_t[]){30, 10, 60}, (const int[]){1, 0, 2});
  struct fmqt_node x1, x2, p;
  fmqt_node_init(&x1, &f, 1);
  fmqt_node_init(&x2, &f, 2);
  fmqt_node_init(&p, &f, 3);
  uint64_t start = uv_now(&f.loop);
  fmqt_arm(&x1, 0);
  fmqt_arm(&x2, 0);
  fmqt_arm(&p, 1);
  assert_int_equal(f.timer.due, start + 10);
  p.then_arm = &x1;

  fmqt_run(&f);
  assert_int_equal(f.nevents, 3);
  fmqt_check_pass_order(&f);
  assert_int_equal(x1.fires, 1);
  assert_int_equal(x2.fires, 1);
  assert_int_equal(p.fires, 1);
  assert_int_equal(f.events[0].node, 3);
  assert_int_equal(f.events[1].node, 2); /* x2 now ahead of x1 */
  assert_int_equal(f.events[2].node, 1);
  uint64_t p_fired = f.events[0].now;
  assert_true(p_fired >= start + 10);
  assert_true(x1.armed_at >= p_fired); /* re-armed by p's handler */
  assert_true(x1.at >= start + 40);    /* a full period after the re-arm */
  assert_true(f.events[2].now >= p_fired + 30);
  assert_true(f.events[2].now >= start + 40); /* not at its first deadline */
  fmqt_finish(&f);
}

/* A node disarmed before its deadline (right away, or by another handler
 * after the timer was set for it) never fires, and the timer still stops. */
static void test_disarmed_node_never_fires(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, (const uint64_t[]){20, 10, 40}, (const int[]){0, 1, 2});
  struct fmqt_node y, z, w, p;
  fmqt_node_init(&y, &f, 1);
  fmqt_node_init(&z, &f, 2);
  fmqt_node_init(&w, &f, 3);
  fmqt_node_init(&p, &f, 4);
  uint64_t start = uv_now(&f.loop);
  fmqt_arm(&y, 0);
  fmq_deadline_disarm(&y.d);
  assert_false(fmq_deadline_armed(&y.d));
  fmqt_arm(&z, 0);
  fmqt_arm(&w, 2);
  fmqt_arm(&p, 1);
  p.then_disarm = &w;
  assert_int_equal(f.timer.due, start + 10);

  fmqt_run(&f);
  fmqt_check_pass_order(&f);
  assert_int_equal(y.fires, 0);
  assert_int_equal(w.fires, 0);
  assert_false(fmq_deadline_armed(&w.d));
  assert_int_equal(p.fires, 1);
  assert_int_equal(z.fires, 1);
  assert_int_equal(f.nevents, 2);
  assert_true(fmqt_event_of(&f, 2, 0)->now >= start + 20);
  fmqt_finish(&f);
}

/* A handler that re-arms its node (a ping) is called again a period later,
 * each time, until it disarms it; another list's node fires meanwhile. */
static void test_handler_rearm_repeats_like_ping(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, (const uint64_t[]){10, 45, 0}, (const int[]){0, 1, 2});
  struct fmqt_node ping, idle;
  fmqt_node_init(&ping, &f, 1);
  fmqt_node_init(&idle, &f, 2);
  uint64_t start = uv_now(&f.loop);
  ping.rearms = 4;
  fmqt_arm(&ping, 0);
  fmqt_arm(&idle, 1);

  fmqt_run(&f);
  fmqt_check_pass_order(&f);
  assert_int_equal(ping.fires, 5);
  assert_int_equal(idle.fires, 1);
  assert_int_equal(f.nevents, 6);
  assert_false(fmq_deadline_armed(&ping.d));
  uint64_t prev = start;
  for (int k = 0; k < 5; k++) {
    uint64_t now = fmqt_event_of(&f, 1, k)->now;
    assert_true(now >= prev + 10);
    prev = now;
  }
  assert_true(prev >= start + 50);
  assert_true(fmqt_event_of(&f, 2, 0)->now >= start + 45);
  fmqt_finish(&f);
}

/* Arming in a list of period 0 (a disabled deadline) leaves the node
 * disarmed, takes it out of any list it was in, and never starts the timer. */
static void test_period_zero_never_arms(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, (const uint64_t[]){0, 10, 30}, (const int[]){0, 1, 2});
  struct fmqt_node z, q;
  fmqt_node_init(&z, &f, 1);
  fmqt_node_init(&q, &f, 2);
  fmqt_arm(&z, 0);
  assert_false(fmq_deadline_armed(&z.d));
  assert_int_equal(f.timer.due, UINT64_MAX);
  assert_false(uv_is_active((uv_handle_t *)&f.timer.handle));
  fmqt_run(&f);
  assert_int_equal(f.nevents, 0);

  fmqt_arm(&q, 1);
  assert_true(fmq_deadline_armed(&q.d));
  fmqt_arm(&q, 0); /* disabled: out of list 1 too */
  assert_false(fmq_deadline_armed(&q.d));
  assert_int_equal(fmq_deadline_next(&f.lists[1]), UINT64_MAX);
  fmqt_run(&f);
  assert_int_equal(f.nevents, 0);
  assert_int_equal(q.fires, 0);
  assert_int_equal(z.fires, 0);
  fmqt_finish(&f);
}

/* Once no node is armed the timer stops (uv_run returns with the handle
 * still open), and arming again starts it again. */
static void test_stops_when_idle_and_restarts(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, (const uint64_t[]){15, 0, 0}, (const int[]){0, 1, 2});
  struct fmqt_node a;
  fmqt_node_init(&a, &f, 1);
  fmqt_arm(&a, 0);
  assert_true(uv_is_active((uv_handle_t *)&f.timer.handle));
  fmqt_run(&f);
  assert_int_equal(a.fires, 1);
  assert_false(uv_is_closing((uv_handle_t *)&f.timer.handle));

  uint64_t again = uv_now(&f.loop);
  fmqt_arm(&a, 0);
  assert_true(uv_is_active((uv_handle_t *)&f.timer.handle));
  assert_int_equal(f.timer.due, again + 15);
  fmqt_run(&f);
  assert_int_equal(a.fires, 2);
  assert_true(fmqt_event_of(&f, 1, 1)->now >= again + 15);
  fmqt_check_pass_order(&f);
  fmqt_finish(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fires_after_period),
      cmocka_unit_test(test_due_together_served_in_watch_order),
      cmocka_unit_test(test_never_served_before_deadline),
      cmocka_unit_test(test_rearm_moves_node_later),
      cmocka_unit_test(test_disarmed_node_never_fires),
      cmocka_unit_test(test_handler_rearm_repeats_like_ping),
      cmocka_unit_test(test_period_zero_never_arms),
      cmocka_unit_test(test_stops_when_idle_and_restarts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
