#include "traffic.h"

#include "bridge_client.h"
#include "wsclient.h"

#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#define SUBSCRIBE_ID "traffic"
#define STOP_MS 10000

void fmqt_traffic_start(struct fmqt_traffic *t, uint16_t port, const char *topic, int n,
                        int bound_ms, int every_ms) {
  assert_true(n >= 1 && n <= FMQT_TRAFFIC_MAX);
  memset(t, 0, sizeof *t);
  t->port = port;
  t->n = n;
  t->bound_ms = bound_ms;
  t->every_ms = every_ms;
  snprintf(t->topic, sizeof t->topic, "%s", topic);
  for (int i = 0; i < n; i++) {
    t->fds[i] = fmqt_ws_connect(port, "/mqtt", "");
    /* Each round is a few small frames: Nagle's algorithm would hold them
     * for the peer's delayed ACK and measure that instead of the gateway. */
    int one = 1;
    assert_int_equal(setsockopt(t->fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    fmqt_subscribe(t->fds[i], t->topic, 0, SUBSCRIBE_ID, 0);
  }
  t->next_at_ = fmqt_now_ms();
}

/* Round numbers: the round in flight is rounds + 1. */
static long round_in_flight(const struct fmqt_traffic *t) {
  return t->rounds + 1;
}

static void send_round(struct fmqt_traffic *t) {
  long r = round_in_flight(t);
  memset(t->got_message_, 0, sizeof t->got_message_);
  memset(t->got_pong_, 0, sizeof t->got_pong_);
  t->sent_at_ = fmqt_now_ms();
  t->in_flight_ = 1;
  fmqt_sendf(t->fds[0], "{\"type\":\"publish\",\"topic\":\"%s\",\"payload\":\"%ld\"}", t->topic,
             r);
  for (int i = 0; i < t->n; i++) {
    fmqt_sendf(t->fds[i], "{\"type\":\"ping\",\"id\":%ld}", r);
  }
}

static int round_complete(const struct fmqt_traffic *t) {
  for (int i = 0; i < t->n; i++) {
    if (!t->got_message_[i] || !t->got_pong_[i]) {
      return 0;
    }
  }
  return 1;
}

/* Records a reply of the round in flight arriving now; fails past bound_ms. */
static void note_reply(struct fmqt_traffic *t, int64_t *worst, const char *what, int client) {
  int64_t took = fmqt_now_ms() - t->sent_at_;
  if (took > *worst) {
    *worst = took;
  }
  if (took > t->bound_ms) {
    fail_msg("normal client %d: %s of round %ld took %lld ms (bound %d ms)", client, what,
             round_in_flight(t), (long long)took, t->bound_ms);
  }
}

static void on_json(struct fmqt_traffic *t, int i, const json_t *v) {
  long r = round_in_flight(t);
  const char *type = fmqt_json_str(v, "type");
  char expected[32];
  snprintf(expected, sizeof expected, "%ld", r);
  if (t->in_flight_ && type != NULL && strcmp(type, "pong") == 0 &&
      json_integer_value(json_object_get(v, "id")) == r && !t->got_pong_[i]) {
    t->got_pong_[i] = 1;
    note_reply(t, &t->worst_pong_ms, "the pong", i);
    return;
  }
  const char *payload = fmqt_json_str(v, "payload");
  if (t->in_flight_ && fmqt_is_message(v, t->topic) && payload != NULL &&
      strcmp(payload, expected) == 0 && !t->got_message_[i]) {
    t->got_message_[i] = 1;
    note_reply(t, &t->worst_message_ms, "the message", i);
    return;
  }
  char *text = fmqt_dump(v);
  fail_msg("normal client %d, round %ld: unexpected %s", i, r, text);
}

static void on_frame(struct fmqt_traffic *t, int i, const struct fmqt_frame_view *f) {
  switch (f->opcode) {
  case 0x9:
    fmqt_ws_send(t->fds[i], 1, 0xA, f->payload, f->len);
    return;
  case 0xA:
    return;
  case 0x1: {
    json_error_t err;
    json_t *v = json_loadb((const char *)f->payload, f->len, 0, &err);
    if (v == NULL) {
      fail_msg("normal client %d: bad JSON (%s): %.200s", i, err.text, (const char *)f->payload);
    }
    on_json(t, i, v);
    json_decref(v);
    return;
  }
  case 0x8:
    fail_msg("normal client %d got close %d in round %ld", i,
             f->len >= 2 ? f->payload[0] << 8 | f->payload[1] : 1005, round_in_flight(t));
    return;
  default:
    fail_msg("normal client %d: a frame with opcode %u", i, f->opcode);
  }
}

static void read_client(struct fmqt_traffic *t, int i) {
  if (fmqt_ws_read_ready(t->fds[i]) == FMQT_EOF) {
    fail_msg("normal client %d was disconnected in round %ld", i, round_in_flight(t));
  }
  struct fmqt_frame_view f;
  while (fmqt_ws_take_frame(t->fds[i], &f)) {
    on_frame(t, i, &f);
  }
}

/* Fails when the round in flight is older than the bound. */
static void check_overdue(const struct fmqt_traffic *t) {
  if (!t->in_flight_ || fmqt_now_ms() - t->sent_at_ <= t->bound_ms) {
    return;
  }
  for (int i = 0; i < t->n; i++) {
    if (!t->got_message_[i] || !t->got_pong_[i]) {
      fail_msg("normal client %d: no %s of round %ld within %d ms", i,
               t->got_message_[i] ? "pong" : "message", round_in_flight(t), t->bound_ms);
    }
  }
}

/* How long a poll may wait: until end, the next round or the bound. */
static int poll_timeout(const struct fmqt_traffic *t, int64_t end) {
  int64_t until = end;
  int64_t due = t->in_flight_ ? t->sent_at_ + t->bound_ms + 1 : t->next_at_;
  if (due < until) {
    until = due;
  }
  return fmqt_ms_until(until);
}

void fmqt_traffic_step(struct fmqt_traffic *t, int wait_ms) {
  int64_t end = fmqt_now_ms() + wait_ms;
  do {
    if (!t->in_flight_ && fmqt_now_ms() >= t->next_at_) {
      send_round(t);
    }
    struct pollfd p[FMQT_TRAFFIC_MAX];
    for (int i = 0; i < t->n; i++) {
      p[i] = (struct pollfd){.fd = t->fds[i], .events = POLLIN};
    }
    /* Bytes may already be buffered from an earlier read: take them too. */
    (void)poll(p, (nfds_t)t->n, poll_timeout(t, end));
    for (int i = 0; i < t->n; i++) {
      read_client(t, i);
    }
    check_overdue(t);
    if (t->in_flight_ && round_complete(t)) {
      t->in_flight_ = 0;
      t->rounds++;
      t->next_at_ = t->sent_at_ + t->every_ms;
    }
  } while (fmqt_now_ms() < end);
}

void fmqt_traffic_stop(struct fmqt_traffic *t) {
  int64_t deadline = fmqt_now_ms() + STOP_MS;
  while ((t->in_flight_ || t->rounds == 0) && fmqt_now_ms() < deadline) {
    fmqt_traffic_step(t, 10);
  }
  assert_false(t->in_flight_);
  assert_true(t->rounds > 0);
  for (int i = 0; i < t->n; i++) {
    fmqt_ws_close_cleanly(t->fds[i], 1000);
  }
}
