/* A connection's write side over real TCP on 127.0.0.1: frames written in a
 * loop turn are gathered into one write and arrive in order, the staged end
 * (FIN once drained, the connection left open), writes after it dropped,
 * failures (a reset peer, a NULL frame, a failed shutdown) reported through
 * ops->failed, and close: idempotent, ops->closed once, the queue released,
 * a stream waiting on the flush list taken off it. Under ASan/LSan nothing
 * may leak. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FMQT_CONNS 3
#define FMQT_WATCHDOG_MS 10000
#define FMQT_MAX_TURNS 1000

struct fmqt_fixture;

/* One accepted connection: the stream under test on the accepting side, a
 * plain uv_tcp peer on the connecting side. */
struct fmqt_conn {
  struct fmqt_fixture *f;
  struct fmq_stream stream;
  uv_tcp_t peer;
  uv_connect_t connect_req;
  int connected;
  /* What the peer read. */
  char *rx;
  size_t rx_len, rx_cap;
  int peer_eof;
  size_t rx_at_eof;
  int peer_error;
  /* The stream's owner. */
  int failed;
  int closed;
  int close_on_failed;
  int outq_released_at_closed;
  int owner_reading;
  char owner_rx[64];
  size_t owner_rx_len;
  int owner_error;        /* read error or UV_EOF seen on the stream side */
};

struct fmqt_fixture {
  uv_loop_t loop;
  struct fmq_flush flush;
  uv_tcp_t listener;
  int accepted;
  int nconns;
  struct fmqt_conn conns[FMQT_CONNS];
  uv_timer_t watchdog;
  int timed_out;
};

/* --- the stream's owner --- */

static void fmqt_failed(struct fmq_stream *s) {
  struct fmqt_conn *c = s->tcp.data;
  c->failed++;
  if (c->close_on_failed)
    fmq_stream_close(s);
}

static void fmqt_closed(struct fmq_stream *s) {
  struct fmqt_conn *c = s->tcp.data;
  c->closed++;
  c->outq_released_at_closed = s->outq.ring == NULL && s->outq.count == 0 &&
                               s->outq.inflight == 0 && s->outq.bytes == 0;
}

static const struct fmq_stream_ops fmqt_ops = {.failed = fmqt_failed, .closed = fmqt_closed};

static void fmqt_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base != NULL ? suggested : 0;
}

static void fmqt_owner_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  struct fmqt_conn *c = h->data;
  if (nread > 0) {
    size_t n = (size_t)nread;
    if (n > sizeof(c->owner_rx) - c->owner_rx_len)
      n = sizeof(c->owner_rx) - c->owner_rx_len;
    memcpy(c->owner_rx + c->owner_rx_len, buf->base, n);
    c->owner_rx_len += n;
  } else if (nread < 0) {
    c->owner_error = (int)nread;
    uv_read_stop(h);
  }
  free(buf->base);
}

static void fmqt_owner_start_reading(struct fmqt_conn *c) {
  assert_int_equal(uv_read_start((uv_stream_t *)&c->stream.tcp, fmqt_alloc, fmqt_owner_read), 0);
  c->owner_reading = 1;
}

/* --- the peer --- */

static void fmqt_peer_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  struct fmqt_conn *c = h->data;
  if (nread > 0) {
    assert_false(c->peer_eof);
    if (c->rx_len + (size_t)nread > c->rx_cap) {
      size_t cap = c->rx_cap ? c->rx_cap : 4096;
      while (cap < c->rx_len + (size_t)nread)
        cap *= 2;
      char *rx = realloc(c->rx, cap);
      assert_non_null(rx);
      c->rx = rx;
      c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, buf->base, (size_t)nread);
    c->rx_len += (size_t)nread;
  } else if (nread == UV_EOF) {
    c->peer_eof = 1;
    c->rx_at_eof = c->rx_len;
    uv_read_stop(h);
  } else if (nread < 0) {
    c->peer_error = (int)nread;
    uv_read_stop(h);
  }
  free(buf->base);
}

static void fmqt_on_connect(uv_connect_t *req, int status) {
  struct fmqt_conn *c = req->data;
  assert_int_equal(status, 0);
  c->connected = 1;
  assert_int_equal(uv_read_start((uv_stream_t *)&c->peer, fmqt_alloc, fmqt_peer_read), 0);
}

static void fmqt_on_connection(uv_stream_t *server, int status) {
  struct fmqt_fixture *f = server->data;
  assert_int_equal(status, 0);
  assert_true(f->accepted < f->nconns);
  struct fmqt_conn *c = &f->conns[f->accepted++];
  assert_int_equal(uv_accept(server, (uv_stream_t *)&c->stream.tcp), 0);
}

static void fmqt_on_watchdog(uv_timer_t *h) {
  struct fmqt_fixture *f = h->data;
  f->timed_out = 1;
  uv_stop(&f->loop);
}

/* One loop turn, blocking until something happens; fails the test when the
 * watchdog fired. Returns uv_run's result (0: nothing keeps the loop alive). */
static int fmqt_turn(struct fmqt_fixture *f) {
  int alive = uv_run(&f->loop, UV_RUN_ONCE);
  assert_false(f->timed_out);
  return alive;
}

#define FMQT_RUN_UNTIL(f, cond)                 \
  do {                                          \
    while (!(cond))                             \
      assert_true(fmqt_turn(f) != 0 || (cond)); \
  } while (0)

/* A loop with n streams, each accepted from a connected peer on 127.0.0.1. */
static void fmqt_open(struct fmqt_fixture *f, int n) {
  *f = (struct fmqt_fixture){.nconns = n};
  assert_int_equal(uv_loop_init(&f->loop), 0);
  fmq_flush_init(&f->flush, &f->loop);
  /* Unreferenced: never keeps the loop alive, only ends a hung test. */
  assert_int_equal(uv_timer_init(&f->loop, &f->watchdog), 0);
  f->watchdog.data = f;
  assert_int_equal(uv_timer_start(&f->watchdog, fmqt_on_watchdog, FMQT_WATCHDOG_MS, 0), 0);
  uv_unref((uv_handle_t *)&f->watchdog);

  struct sockaddr_in addr;
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
  assert_int_equal(uv_tcp_init(&f->loop, &f->listener), 0);
  f->listener.data = f;
  assert_int_equal(uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 8, fmqt_on_connection), 0);
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  assert_int_equal(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&bound, &len), 0);

  for (int i = 0; i < n; i++) {
    struct fmqt_conn *c = &f->conns[i];
    c->f = f;
    fmq_stream_init(&c->stream, &f->loop, &f->flush, &fmqt_ops, (uint64_t)i + 1);
    c->stream.tcp.data = c;
    assert_int_equal(c->stream.flags, 0);
    assert_int_equal(uv_tcp_init(&f->loop, &c->peer), 0);
    c->peer.data = c;
    c->connect_req.data = c;
    /* One at a time, so conns[i]'s stream accepts conns[i]'s peer. */
    assert_int_equal(uv_tcp_connect(&c->connect_req, &c->peer, (const struct sockaddr *)&bound,
                                    fmqt_on_connect),
                     0);
    FMQT_RUN_UNTIL(f, c->connected && f->accepted == i + 1);
  }
  uv_close((uv_handle_t *)&f->listener, NULL);
}

/* Closes whatever is still open, runs the loop dry and checks every stream
 * saw ops->closed exactly once with its queue already released. */
static void fmqt_finish(struct fmqt_fixture *f) {
  for (int i = 0; i < f->nconns; i++) {
    struct fmqt_conn *c = &f->conns[i];
    fmq_stream_close(&c->stream);
    if (!uv_is_closing((uv_handle_t *)&c->peer))
      uv_close((uv_handle_t *)&c->peer, NULL);
  }
  fmq_flush_close(&f->flush);
  uv_close((uv_handle_t *)&f->watchdog, NULL);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  for (int i = 0; i < f->nconns; i++) {
    struct fmqt_conn *c = &f->conns[i];
    assert_int_equal(c->closed, 1);
    assert_true(c->outq_released_at_closed);
    free(c->rx);
  }
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

static struct fmq_buf *fmqt_frame(const char *text) {
  struct fmq_buf *b = fmq_buf_copy(text, strlen(text));
  assert_non_null(b);
  return b;
}

/* --- tests --- */

/* Frames written in one turn wait for the flush (nothing is written from
 * fmq_stream_write itself), then all go in one gathered write: the peer
 * reads them whole and in order, and the queue lets go of them. */
static void test_frames_arrive_in_order(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  struct fmq_buf *held = fmqt_frame("two");
  fmq_stream_write(s, fmqt_frame("one"));
  fmq_stream_write(s, fmq_buf_ref(held));
  fmq_stream_write(s, fmqt_frame("three"));
  assert_true(s->flags & FMQ_STREAM_PENDING);
  assert_ptr_equal(LIST_FIRST(&f.flush.pending), s);
  assert_int_equal(s->outq.count, 3);
  assert_int_equal(s->outq.inflight, 0);
  assert_int_equal(atomic_load(&held->refs), 2);

  /* One turn: the flush gathers all three into one write (its callback may
   * or may not have run yet). */
  assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 1);
  assert_false(s->flags & FMQ_STREAM_PENDING);
  assert_true(LIST_EMPTY(&f.flush.pending));
  assert_false(uv_is_active((uv_handle_t *)&f.flush.prepare));
  assert_true(s->outq.inflight == 3 || s->outq.count == 0);

  FMQT_RUN_UNTIL(&f, c->rx_len >= 11 && s->outq.count == 0);
  assert_int_equal(c->rx_len, 11);
  assert_memory_equal(c->rx, "onetwothree", 11);
  assert_null(s->outq.ring);
  assert_int_equal(s->outq.bytes, 0);
  assert_int_equal(atomic_load(&held->refs), 1); /* written: reference dropped */
  fmq_buf_unref(held);
  assert_int_equal(c->failed, 0);
  assert_int_equal(c->closed, 0);
  assert_false(c->peer_eof);
  fmqt_finish(&f);
}

/* Many frames of different sizes in one turn (more than one write carries):
 * the first write gathers several, and the peer receives every byte in
 * order once the queue has drained over the following turns. */
#define FMQT_MANY 300

static size_t fmqt_many_frame(char *out, int i) {
  size_t len = (size_t)(i * 37 % 200) + 1;
  for (size_t k = 0; k < len; k++)
    out[k] = (char)('a' + (i + (int)k) % 26);
  return len;
}

static void test_many_writes_gathered(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  char frame[256];
  char *expect = malloc(FMQT_MANY * sizeof(frame));
  assert_non_null(expect);
  size_t total = 0;
  for (int i = 0; i < FMQT_MANY; i++) {
    size_t len = fmqt_many_frame(frame, i);
    memcpy(expect + total, frame, len);
    total += len;
    fmq_stream_write(s, fmq_buf_copy(frame, len));
  }
  assert_int_equal(s->outq.count, FMQT_MANY);

  assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 1);
  /* One write under way carrying several frames (or already done, with the
   * rest waiting for the next turn's flush). */
  if (s->outq.inflight > 0) {
    assert_true(s->outq.inflight > 1);
    assert_int_equal(s->outq.count, FMQT_MANY);
  } else {
    assert_true(s->outq.count < FMQT_MANY - 1);
    assert_true(s->flags & FMQ_STREAM_PENDING);
  }

  int turns = 0;
  while (c->rx_len < total || s->outq.count > 0) {
    assert_true(fmqt_turn(&f) != 0);
    assert_true(++turns < FMQT_MAX_TURNS);
  }
  assert_int_equal(c->rx_len, total);
  assert_memory_equal(c->rx, expect, total);
  assert_null(s->outq.ring);
  assert_int_equal(s->outq.bytes, 0);
  assert_false(s->flags & FMQ_STREAM_PENDING);
  assert_int_equal(c->failed, 0);
  free(expect);
  fmqt_finish(&f);
}

/* End after writes: the queue drains first, then FIN; the peer reads every
 * byte, then EOF. The connection stays open (the owner still reads what the
 * peer sends); ops->closed only follows fmq_stream_close. Frames written
 * after the shutdown are dropped, their reference released. */
static void test_end_drains_then_fin(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  fmqt_owner_start_reading(c);
  fmq_stream_write(s, fmqt_frame("last "));
  fmq_stream_write(s, fmqt_frame("words"));
  fmq_stream_end(s);
  assert_true(s->flags & FMQ_STREAM_END);
  assert_false(s->flags & FMQ_STREAM_SHUT_DOWN); /* not before the queue drains */
  fmq_stream_end(s); /* idempotent */

  FMQT_RUN_UNTIL(&f, c->peer_eof || c->peer_error != 0);
  assert_int_equal(c->peer_error, 0);
  assert_int_equal(c->rx_at_eof, 10);
  assert_memory_equal(c->rx, "last words", 10);
  assert_true(s->flags & FMQ_STREAM_SHUT_DOWN);
  assert_false(fmq_stream_closed(s));
  assert_int_equal(c->failed, 0);
  assert_int_equal(c->closed, 0);
  assert_null(s->outq.ring);

  /* Half closed: the peer's bytes still reach the owner. */
  char bye_text[] = "bye";
  uv_buf_t bye = uv_buf_init(bye_text, 3);
  assert_int_equal(uv_try_write((uv_stream_t *)&c->peer, &bye, 1), 3);
  FMQT_RUN_UNTIL(&f, c->owner_rx_len >= 3 || c->owner_error != 0);
  assert_int_equal(c->owner_error, 0);
  assert_memory_equal(c->owner_rx, "bye", 3);

  /* Writes after the shutdown are dropped. */
  struct fmq_buf *late = fmqt_frame("too late");
  fmq_stream_write(s, fmq_buf_ref(late));
  assert_int_equal(atomic_load(&late->refs), 1);
  assert_int_equal(s->outq.count, 0);
  assert_false(s->flags & FMQ_STREAM_PENDING);
  fmq_buf_unref(late);
  fmq_stream_end(s); /* once shut down: nothing more */
  for (int i = 0; i < 5; i++)
    uv_run(&f.loop, UV_RUN_NOWAIT);
  assert_int_equal(c->failed, 0);
  assert_int_equal(c->rx_len, 10);
  assert_int_equal(c->closed, 0);
  assert_false(fmq_stream_closed(s));

  fmq_stream_close(s);
  FMQT_RUN_UNTIL(&f, c->closed == 1);
  fmqt_finish(&f);
}

/* End with nothing queued shuts the write side down at once. */
static void test_end_with_empty_queue(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  fmq_stream_end(&c->stream);
  assert_true(c->stream.flags & FMQ_STREAM_SHUT_DOWN);
  FMQT_RUN_UNTIL(&f, c->peer_eof || c->peer_error != 0);
  assert_true(c->peer_eof);
  assert_int_equal(c->rx_at_eof, 0);
  assert_int_equal(c->failed, 0);
  assert_int_equal(c->closed, 0);
  fmqt_finish(&f);
}

/* Writing to a peer that reset the connection fails (asynchronously):
 * ops->failed once, and the owner's close in it is safe. */
static void test_write_to_reset_peer_fails(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  c->close_on_failed = 1;
  assert_int_equal(uv_tcp_close_reset(&c->peer, NULL), 0);

  static char chunk[4096];
  memset(chunk, 'x', sizeof(chunk));
  int turns = 0;
  while (c->failed == 0) {
    assert_true(++turns < FMQT_MAX_TURNS);
    fmq_stream_write(s, fmq_buf_copy(chunk, sizeof(chunk)));
    uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(c->failed, 1);
  assert_true(fmq_stream_closed(s));
  FMQT_RUN_UNTIL(&f, c->closed == 1);
  assert_int_equal(c->failed, 1);
  assert_true(c->outq_released_at_closed);
  /* Closed: further writes are dropped, not reported. */
  struct fmq_buf *late = fmqt_frame("late");
  fmq_stream_write(s, fmq_buf_ref(late));
  assert_int_equal(atomic_load(&late->refs), 1);
  fmq_buf_unref(late);
  assert_int_equal(c->failed, 1);
  fmqt_finish(&f);
}

/* The owner saw the peer's reset; the shutdown that end asks for then fails
 * (synchronously or from its callback): ops->failed. */
static void test_end_after_reset_fails(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  fmqt_owner_start_reading(c);
  assert_int_equal(uv_tcp_close_reset(&c->peer, NULL), 0);
  FMQT_RUN_UNTIL(&f, c->owner_error != 0);
  assert_int_equal(c->owner_error, UV_ECONNRESET);

  fmq_stream_end(s);
  int turns = 0;
  while (c->failed == 0) {
    assert_true(++turns < FMQT_MAX_TURNS);
    uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  assert_int_equal(c->failed, 1);
  assert_false(fmq_stream_closed(s)); /* closing is the owner's call */
  assert_int_equal(c->closed, 0);
  fmqt_finish(&f);
}

/* The peer reset the connection and the owner has not read since: libuv
 * accepts the shutdown, which then fails in the kernel (the socket is
 * closed): ops->failed from the shutdown's callback. */
static void test_end_after_unseen_reset_fails(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  assert_int_equal(uv_tcp_close_reset(&c->peer, NULL), 0);
  /* Wait (bounded, no sleep) for the reset to reach the stream's socket. */
  uv_os_fd_t fd;
  assert_int_equal(uv_fileno((uv_handle_t *)&s->tcp, &fd), 0);
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, FMQT_WATCHDOG_MS), 1);
  assert_true(pfd.revents & (POLLHUP | POLLERR));

  fmq_stream_end(s);
  assert_true(s->flags & FMQ_STREAM_SHUT_DOWN);
  int turns = 0;
  while (c->failed == 0) {
    assert_true(++turns < FMQT_MAX_TURNS);
    assert_true(fmqt_turn(&f) != 0 || c->failed != 0);
  }
  assert_int_equal(c->failed, 1);
  assert_false(fmq_stream_closed(s));
  assert_int_equal(c->closed, 0);
  fmqt_finish(&f);
}

/* A NULL frame (fmq_buf_copy out of memory) is reported, not queued. */
static void test_write_null_fails(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  fmq_stream_write(s, NULL);
  assert_int_equal(c->failed, 1);
  assert_int_equal(s->outq.count, 0);
  assert_false(s->flags & FMQ_STREAM_PENDING);
  assert_false(fmq_stream_closed(s));

  c->close_on_failed = 1;
  fmq_stream_write(s, fmqt_frame("queued"));
  fmq_stream_write(s, NULL);
  assert_int_equal(c->failed, 2);
  assert_true(fmq_stream_closed(s));
  assert_false(s->flags & FMQ_STREAM_PENDING);
  FMQT_RUN_UNTIL(&f, c->closed == 1 && (c->peer_eof || c->peer_error != 0));
  assert_int_equal(c->rx_len, 0);
  fmqt_finish(&f);
}

/* Close with a write under way: idempotent, ops->closed exactly once and not
 * from fmq_stream_close itself; by then the queue has released every frame
 * (in flight included), and a cancelled write is not a failure. */
static void test_close_idempotent_releases_queue(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  struct fmq_buf *first = fmqt_frame("in flight");
  struct fmq_buf *second = fmqt_frame("waiting");
  fmq_stream_write(s, fmq_buf_ref(first));
  assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 1); /* the flush: write started */
  fmq_stream_write(s, fmq_buf_ref(second));
  assert_true(s->outq.count >= 1);
  assert_int_equal(atomic_load(&second->refs), 2);

  fmq_stream_close(s);
  assert_true(fmq_stream_closed(s));
  assert_false(s->flags & FMQ_STREAM_PENDING);
  assert_true(LIST_EMPTY(&f.flush.pending));
  fmq_stream_close(s);
  assert_int_equal(c->closed, 0); /* from the loop, not from close */
  FMQT_RUN_UNTIL(&f, c->closed > 0);
  assert_int_equal(c->closed, 1);
  assert_true(c->outq_released_at_closed);
  assert_int_equal(atomic_load(&first->refs), 1);
  assert_int_equal(atomic_load(&second->refs), 1);
  fmq_stream_close(s); /* after ops->closed too */
  for (int i = 0; i < 5; i++)
    uv_run(&f.loop, UV_RUN_NOWAIT);
  assert_int_equal(c->closed, 1);
  assert_int_equal(c->failed, 0);
  fmq_buf_unref(first);
  fmq_buf_unref(second);
  fmqt_finish(&f);
}

/* Close while a write is blocked on a full socket (the peer stopped
 * reading): the write is cancelled, which is not a failure, and every frame
 * (the blocked ones included) is released by the time ops->closed runs. */
#define FMQT_BIG (1u << 20)

static void test_close_with_write_blocked(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 1);
  struct fmqt_conn *c = &f.conns[0];
  struct fmq_stream *s = &c->stream;
  c->close_on_failed = 1;
  assert_int_equal(uv_read_stop((uv_stream_t *)&c->peer), 0);
  struct fmq_buf *big = fmq_buf_new(FMQT_BIG);
  assert_non_null(big);
  memset(big->data, 'z', FMQT_BIG);
  int turns = 0;
  while (uv_stream_get_write_queue_size((uv_stream_t *)&s->tcp) == 0) {
    assert_true(++turns < FMQT_MAX_TURNS);
    fmq_stream_write(s, fmq_buf_ref(big));
    uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  assert_true(s->outq.inflight > 0);
  assert_true(atomic_load(&big->refs) > 1);

  fmq_stream_close(s);
  FMQT_RUN_UNTIL(&f, c->closed > 0);
  assert_int_equal(c->failed, 0);
  assert_int_equal(c->closed, 1);
  assert_true(c->outq_released_at_closed);
  assert_int_equal(atomic_load(&big->refs), 1);
  fmq_buf_unref(big);
  fmqt_finish(&f);
}

/* Closing a stream waiting on the flush list takes it off: its frames are
 * never written (its peer reads EOF and nothing else) and the streams around
 * it on the list are still flushed. */
static void test_close_while_pending(void **state) {
  (void)state;
  struct fmqt_fixture f;
  fmqt_open(&f, 3);
  for (int i = 0; i < 3; i++) {
    char text[16];
    snprintf(text, sizeof(text), "to %d", i);
    fmq_stream_write(&f.conns[i].stream, fmqt_frame(text));
    fmq_stream_write(&f.conns[i].stream, fmqt_frame("!"));
  }
  struct fmqt_conn *mid = &f.conns[1];
  assert_true(mid->stream.flags & FMQ_STREAM_PENDING);
  fmq_stream_close(&mid->stream);
  assert_false(mid->stream.flags & FMQ_STREAM_PENDING);
  int on_list = 0;
  struct fmq_stream *p;
  LIST_FOREACH(p, &f.flush.pending, pending_link) {
    assert_ptr_not_equal(p, &mid->stream);
    on_list++;
  }
  assert_int_equal(on_list, 2);

  FMQT_RUN_UNTIL(&f, f.conns[0].rx_len >= 5 && f.conns[2].rx_len >= 5 &&
                         (mid->peer_eof || mid->peer_error != 0) && mid->closed == 1);
  assert_memory_equal(f.conns[0].rx, "to 0!", 5);
  assert_memory_equal(f.conns[2].rx, "to 2!", 5);
  assert_int_equal(mid->rx_len, 0);
  assert_true(mid->outq_released_at_closed);
  for (int i = 0; i < 3; i++)
    assert_int_equal(f.conns[i].failed, 0);
  assert_int_equal(f.conns[0].closed, 0);
  assert_int_equal(f.conns[2].closed, 0);
  fmqt_finish(&f);
}

int main(void) {
  /* As the gateway does: a write to a reset peer is an error, not a signal. */
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frames_arrive_in_order),
      cmocka_unit_test(test_many_writes_gathered),
      cmocka_unit_test(test_end_drains_then_fin),
      cmocka_unit_test(test_end_with_empty_queue),
      cmocka_unit_test(test_write_to_reset_peer_fails),
      cmocka_unit_test(test_end_after_reset_fails),
      cmocka_unit_test(test_end_after_unseen_reset_fails),
      cmocka_unit_test(test_write_null_fails),
      cmocka_unit_test(test_close_idempotent_releases_queue),
      cmocka_unit_test(test_close_with_write_blocked),
      cmocka_unit_test(test_close_while_pending),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
