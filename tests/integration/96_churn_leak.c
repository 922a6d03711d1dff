/* Churn without leaks (issue 9): 200 clients, driven from one thread with
 * poll(), each connecting, subscribing to 20 of 100 shared topics,
 * publishing, and resetting its TCP connection (RST) at a random point of
 * that cycle (right after the request, after the 101, between its
 * subscribes, after the last SUBACK, after the publish, after its message
 * came back), over and over for FMQT_CHURN_SECONDS (default 60). The
 * gateway must keep up (every step within STEP_MS), drop every connection
 * (its descriptors return), and then exit 0 on SIGTERM with no sanitizer
 * report in its log: under ASan+UBSan, LeakSanitizer makes the exit status
 * non-zero on a leak, so exit 0 means nothing leaked. */

#include "gateway_proc.h"
#include "bridge_client.h"
#include "proc.h"
#include "wsclient.h"

#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CLIENTS 200
#define TOPICS_PER_CLIENT 20
#define TOPIC_POOL 100
#define DEFAULT_SECONDS 60
#define STEP_MS 10000          /* the gateway answers each step within this */
#define SETTLE_MS 10000
#define STOP_MS 30000
#define RSS_TOLERANCE_KIB (16 * 1024)   /* as in 95_hostile.c */

static struct fmqt_fixture churn_fixture = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=2s", NULL},
    .broker_conf = "max_queued_messages 0\n"};

enum stage { REQUESTED, SUBSCRIBING, PUBLISHED };

enum reset_point {
  AFTER_REQUEST,
  AFTER_101,
  MID_SUBSCRIBES,
  AFTER_SUBSCRIBED,
  AFTER_PUBLISH,
  AFTER_ECHO,
  RESET_POINTS
};

static const char *const reset_names[RESET_POINTS] = {
    "after the request", "after the 101",     "between subscribes",
    "after the SUBACKs", "after the publish", "after the echo"};

struct client {
  int index;
  int fd;                      /* -1 between cycles */
  enum stage stage;
  enum reset_point reset;
  int subscribed;
  int64_t since;               /* the stage began */
  char payload[32];            /* of this cycle's publish */
};

struct churn {
  uint16_t port;
  unsigned seed, rng;
  struct client c[CLIENTS];
  long cycles, resets[RESET_POINTS], messages;
};

static void topic_of(const struct client *c, int k, char *out, size_t cap) {
  snprintf(out, cap, "churn/%d", (c->index * 7 + k) % TOPIC_POOL);
}

static void reset(struct churn *ch, struct client *c) {
  fmqt_abort(c->fd);
  c->fd = -1;
  ch->resets[c->reset]++;
  ch->cycles++;
}

static void enter(struct client *c, enum stage s) {
  c->stage = s;
  c->since = fmqt_now_ms();
}

static void begin(struct churn *ch, struct client *c) {
  char req[1024], key[25];
  size_t n = fmqt_ws_request(req, sizeof req, "/mqtt", "", key);
  c->fd = fmqt_tcp_connect(ch->port);
  c->reset = (enum reset_point)(rand_r(&ch->rng) % RESET_POINTS);
  c->subscribed = 0;
  snprintf(c->payload, sizeof c->payload, "c%d-%ld", c->index, ch->cycles);
  enter(c, REQUESTED);
  fmqt_send_all(c->fd, req, n);
  if (c->reset == AFTER_REQUEST) {
    reset(ch, c);
  }
}

static void send_subscribes(struct churn *ch, struct client *c) {
  int n = c->reset == MID_SUBSCRIBES ? 1 + rand_r(&ch->rng) % (TOPICS_PER_CLIENT - 1)
                                     : TOPICS_PER_CLIENT;
  for (int k = 0; k < n; k++) {
    char topic[64];
    topic_of(c, k, topic, sizeof topic);
    fmqt_send_subscribe(c->fd, topic, k % 2, NULL);
  }
  enter(c, SUBSCRIBING);
  if (c->reset == MID_SUBSCRIBES) {
    reset(ch, c);
  }
}

static void on_101(struct churn *ch, struct client *c) {
  char head[4096];
  int status = fmqt_http_read_head(c->fd, head, sizeof head, 0);
  if (status == FMQT_TIMEOUT) {
    return;
  }
  if (status != 101) {
    fail_msg("client %d: status %d, want 101", c->index, status);
  }
  if (c->reset == AFTER_101) {
    reset(ch, c);
  } else {
    send_subscribes(ch, c);
  }
}

static void publish(struct churn *ch, struct client *c) {
  char topic[64];
  topic_of(c, 0, topic, sizeof topic);
  fmqt_publish_text(c->fd, topic, c->payload, 0, 0, NULL);
  enter(c, PUBLISHED);
  if (c->reset == AFTER_PUBLISH) {
    reset(ch, c);
  }
}

/* One JSON message for an open client; may reset it. */
static void on_json(struct churn *ch, struct client *c, const json_t *v) {
  const char *type = fmqt_json_str(v, "type");
  if (type != NULL && strcmp(type, "message") == 0) {
    ch->messages++;
    const char *payload = fmqt_json_str(v, "payload");
    if (c->stage == PUBLISHED && payload != NULL && strcmp(payload, c->payload) == 0) {
      reset(ch, c);   /* AFTER_ECHO: the only reset point left */
    }
    return;
  }
  if (type != NULL && strcmp(type, "subscribed") == 0 && c->stage == SUBSCRIBING) {
    if (++c->subscribed == TOPICS_PER_CLIENT) {
      if (c->reset == AFTER_SUBSCRIBED) {
        reset(ch, c);
      } else {
        publish(ch, c);
      }
    }
    return;
  }
  char *text = fmqt_dump(v);
  fail_msg("client %d (stage %d): unexpected %s", c->index, c->stage, text);
}

static void on_frames(struct churn *ch, struct client *c) {
  if (fmqt_ws_read_ready(c->fd) == FMQT_EOF) {
    fail_msg("client %d: the gateway closed the connection (stage %d)", c->index, c->stage);
  }
  struct fmqt_frame_view f;
  while (c->fd >= 0 && fmqt_ws_take_frame(c->fd, &f)) {
    if (f.opcode == 0x9 || f.opcode == 0xA) {
      continue;
    }
    json_error_t err;
    json_t *v = f.opcode == 0x1 ? json_loadb((const char *)f.payload, f.len, 0, &err) : NULL;
    if (v == NULL) {
      fail_msg("client %d: frame with opcode %u, %zu bytes, where JSON was expected", c->index,
               f.opcode, f.len);
    }
    on_json(ch, c, v);
    json_decref(v);
  }
}

static void check_stuck(const struct client *c) {
  if (c->fd >= 0 && fmqt_now_ms() - c->since > STEP_MS) {
    fail_msg("client %d: no progress in stage %d (%d of %d SUBACKs) for %d ms", c->index,
             c->stage, c->subscribed, TOPICS_PER_CLIENT, STEP_MS);
  }
}

static void churn_for(struct churn *ch, int64_t end) {
  static struct pollfd p[CLIENTS];
  while (fmqt_now_ms() < end) {
    for (int i = 0; i < CLIENTS; i++) {
      if (ch->c[i].fd < 0) {
        begin(ch, &ch->c[i]);
      }
      p[i] = (struct pollfd){.fd = ch->c[i].fd, .events = POLLIN};
    }
    (void)poll(p, CLIENTS, 10);
    for (int i = 0; i < CLIENTS; i++) {
      struct client *c = &ch->c[i];
      if (c->fd >= 0 && p[i].revents != 0) {
        if (c->stage == REQUESTED) {
          on_101(ch, c);
        } else {
          on_frames(ch, c);
        }
      }
      check_stuck(c);
    }
  }
  for (int i = 0; i < CLIENTS; i++) {
    if (ch->c[i].fd >= 0) {
      fmqt_abort(ch->c[i].fd);
      ch->c[i].fd = -1;
    }
  }
}

static int churn_seconds(void) {
  const char *s = getenv("FMQT_CHURN_SECONDS");
  int n = s != NULL ? atoi(s) : 0;
  return n > 0 ? n : DEFAULT_SECONDS;
}

static void report(const struct churn *ch, int seconds) {
  fprintf(stderr, "[ churn ] %d s (seed %u): %ld cycles, %ld messages received; resets:",
          seconds, ch->seed, ch->cycles, ch->messages);
  for (int r = 0; r < RESET_POINTS; r++) {
    fprintf(stderr, " %s %ld%s", reset_names[r], ch->resets[r], r + 1 < RESET_POINTS ? "," : "\n");
  }
}

/* Every connection is gone: descriptors as before, memory (outside the
 * sanitizer build, where LeakSanitizer judges) near the baseline. */
static void assert_settled(struct fmqt_gateway *gw, int fds, long rss_kib) {
  int have = fmqt_gateway_wait_fd_count(gw, fds, SETTLE_MS);
  if (have != fds) {
    fail_msg("the gateway holds %d descriptors, %d before the churn", have, fds);
  }
  long after = fmqt_gateway_rss_kib(gw);
  fprintf(stderr, "[ churn ] gateway VmRSS: before %ld KiB, after %ld KiB\n", rss_kib, after);
#ifndef FMQT_SANITIZED
  if (after > rss_kib + RSS_TOLERANCE_KIB) {
    fail_msg("the gateway's VmRSS is %ld KiB, %ld before the churn + %d allowed", after, rss_kib,
             RSS_TOLERANCE_KIB);
  }
#endif
}

/* SIGTERM, exit 0, and nothing a sanitizer reports in the log. */
static void assert_clean_exit(struct fmqt_gateway *gw) {
  static const char *const reports[] = {"ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
                                        "runtime error"};
  fmqt_gateway_signal(gw, SIGTERM);
  int status = fmqt_gateway_wait(gw, STOP_MS);
  for (size_t i = 0; i < sizeof reports / sizeof reports[0]; i++) {
    if (fmqt_gateway_log_contains(gw, reports[i])) {
      fmqt_gateway_print_log(gw, reports[i]);
      fail_msg("the gateway's log contains \"%s\"", reports[i]);
    }
  }
  assert_int_equal(status, 0);
}

static void churn_with_resets_leaks_nothing(void **state) {
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  static struct churn ch;
  memset(&ch, 0, sizeof ch);
  ch.port = fmqt_fixture_port(state);
  ch.seed = ch.rng = (unsigned)fmqt_now_ms();
  for (int i = 0; i < CLIENTS; i++) {
    ch.c[i] = (struct client){.index = i, .fd = -1};
  }
  int fds = fmqt_gateway_fd_count(gw);
  long rss_kib = fmqt_gateway_rss_kib(gw);
  int seconds = churn_seconds();
  churn_for(&ch, fmqt_now_ms() + seconds * 1000LL);
  report(&ch, seconds);
  for (int r = 0; r < RESET_POINTS; r++) {
    if (ch.resets[r] == 0) {
      fail_msg("no client was reset %s in %ld cycles", reset_names[r], ch.cycles);
    }
  }
  assert_true(fmqt_gateway_alive(gw));
  fmqt_assert_serving(ch.port, "/mqtt");
  assert_settled(gw, fds, rss_kib);
  assert_clean_exit(gw);
}

int main(void) {
  fmqt_raise_nofile(4096);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(churn_with_resets_leaks_nothing,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &churn_fixture),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
