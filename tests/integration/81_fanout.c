/* Fan-out through the one shared broker session (protocol-v1 sections 4
 * and 5): overlapping filters deliver once per client on MQTT 5 and 3.1.1;
 * a filter several clients hold is one broker subscription, released only
 * when its last holder goes (close, unsubscribe, TCP reset, idle timeout);
 * the broker subscription's QoS is the highest any holder asked for. The
 * broker's side is read from its log ("<client id> <qos> <filter>" for each
 * subscription, "<client id> <filter>" for each unsubscription). */

#include "bridge_client.h"
#include "broker_proc.h"
#include "gateway_proc.h"
#include "proc.h"
#include "wsclient.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define T 5000
#define QUIET_MS 300
#define RELEASE_MS 5000   /* the broker's UNSUBSCRIBE after the last holder left */

static struct fmqt_fixture mqtt5;
static struct fmqt_fixture mqtt311 = {
    .env = (const char *const[]){"FERRYMQ_BROKER_PROTOCOL=3.1.1", NULL}};
/* The default 1 MiB outbound queue; a close timeout long enough for a
 * reader that reads nothing until the end to still find its close frame.
 * Mosquitto must not drop QoS 0 messages for the gateway when its socket
 * backs up (it does past max_queued_messages, default 1000 packets). */
static struct fmqt_fixture long_close = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=30s", NULL},
    .broker_conf = "max_queued_messages 0\n"};
static struct fmqt_fixture idle = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=1s",
                                 "FERRYMQ_WEBSOCKET_PING_INTERVAL=0",
                                 "FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=1s", NULL}};

static const char *gw_id(void **state) {
  return fmqt_fixture_of(state)->client_id;
}

static size_t unsubscribes(void **state, size_t mark, const char *filter) {
  return fmqt_broker_unsubscribes_since(fmqt_fixture_broker(state), mark, gw_id(state), filter);
}

/* Asserts the broker was not unsubscribed from filter since mark. */
static void assert_still_subscribed(void **state, size_t mark, const char *filter,
                                    const char *when) {
  if (unsubscribes(state, mark, filter) != 0) {
    fmqt_broker_print_log(fmqt_fixture_broker(state), mark, when);
    fail_msg("%s: the broker was unsubscribed from %s while a client still holds it", when,
             filter);
  }
}

/* Waits until the broker was unsubscribed from filter since mark, once. */
static void assert_released(void **state, size_t mark, const char *filter, const char *when) {
  char needle[256];
  snprintf(needle, sizeof needle, ": %s %s\n", gw_id(state), filter);
  size_t n = fmqt_broker_wait_log(fmqt_fixture_broker(state), mark, needle, 1, RELEASE_MS);
  if (n != 1) {
    fmqt_broker_print_log(fmqt_fixture_broker(state), mark, when);
    fail_msg("%s: %zu UNSUBSCRIBEs of %s within %d ms, want 1", when, n, filter, RELEASE_MS);
  }
}

/* Waits until the gateway holds `want` file descriptors (it noticed a
 * client went). */
static void wait_fd_count(void **state, int want, const char *what) {
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  int64_t deadline = fmqt_now_ms() + T;
  int have;
  while ((have = fmqt_gateway_fd_count(gw)) != want && fmqt_now_ms() < deadline) {
    fmqt_sleep_ms(10);
  }
  if (have != want) {
    fail_msg("%s: the gateway holds %d descriptors, want %d", what, have, want);
  }
}

/* Waits until $SYS/broker/subscriptions/count reads want (Mosquitto
 * updates it every second or two; the watcher's own subscription counts). */
static void wait_broker_subscriptions(void **state, long want) {
  struct fmqt_sub watch;
  fmqt_sub_start(&watch, fmqt_fixture_broker(state),
                 (const char *const[]){"$SYS/broker/subscriptions/count", NULL}, 0, NULL);
  int64_t deadline = fmqt_now_ms() + 6000;
  long last = -1;
  for (;;) {
    struct fmqt_sub_msg *msgs;
    size_t n = fmqt_sub_messages(&watch, &msgs);
    if (n > 0) {
      last = strtol((const char *)msgs[n - 1].payload, NULL, 10);
    }
    fmqt_sub_msgs_free(msgs, n);
    if (last == want + 1 || fmqt_now_ms() >= deadline) {
      break;
    }
    fmqt_sleep_ms(20);
  }
  fmqt_sub_stop(&watch);
  if (last != want + 1) {
    fail_msg("the broker holds %ld subscriptions besides the watcher's, want %ld", last - 1,
             want);
  }
}

/* --- exactly once --- */

/* The overlap example: A on a/#, B on a/b, C on both, D on a/+, +/b and
 * a/b. Every client also holds ctl/x, which overlaps nothing: its message,
 * published last, shows everything before it was delivered. */
static void overlapping_filters_deliver_once_per_client(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  int c = fmqt_fixture_connect(state);
  int d = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "a/#", 1, "a1", 1);
  fmqt_subscribe(bb, "a/b", 1, "b1", 1);
  fmqt_subscribe(c, "a/#", 1, "c1", 1);
  fmqt_subscribe(c, "a/b", 1, "c2", 1);
  fmqt_subscribe(d, "a/+", 1, "d1", 1);
  fmqt_subscribe(d, "+/b", 1, "d2", 1);
  fmqt_subscribe(d, "a/b", 1, "d3", 1);
  int fds[] = {a, bb, c, d};
  for (int i = 0; i < 4; i++) {
    fmqt_subscribe(fds[i], "ctl/x", 1, "ctl", 1);
  }

  fmqt_mqtt_pub_text(b, "a/b", "one", 1, 0);
  fmqt_mqtt_pub_text(b, "a/c", "two", 1, 0);
  fmqt_mqtt_pub_text(b, "a/b/c", "three", 1, 0);
  fmqt_mqtt_pub_text(b, "ctl/x", "end", 1, 0);

  fmqt_expect_message(a, "a/b", "one", 1, 0, T);
  fmqt_expect_message(a, "a/c", "two", 1, 0, T);
  fmqt_expect_message(a, "a/b/c", "three", 1, 0, T);
  fmqt_expect_message(a, "ctl/x", "end", 1, 0, T);

  fmqt_expect_message(bb, "a/b", "one", 1, 0, T);
  fmqt_expect_message(bb, "ctl/x", "end", 1, 0, T);

  fmqt_expect_message(c, "a/b", "one", 1, 0, T);
  fmqt_expect_message(c, "a/c", "two", 1, 0, T);
  fmqt_expect_message(c, "a/b/c", "three", 1, 0, T);
  fmqt_expect_message(c, "ctl/x", "end", 1, 0, T);

  fmqt_expect_message(d, "a/b", "one", 1, 0, T);
  fmqt_expect_message(d, "a/c", "two", 1, 0, T);
  fmqt_expect_message(d, "ctl/x", "end", 1, 0, T);

  for (int i = 0; i < 4; i++) {
    fmqt_expect_nothing(fds[i], i == 0 ? QUIET_MS : 0, "after the control message");
  }

  /* The same once C dropped one of its two overlapping filters. */
  fmqt_unsubscribe(c, "a/#", "c-un");
  fmqt_mqtt_pub_text(b, "a/b", "four", 0, 0);
  fmqt_mqtt_pub_text(b, "a/c", "five", 0, 0);
  fmqt_mqtt_pub_text(b, "ctl/x", "end2", 0, 0);
  fmqt_expect_message(c, "a/b", "four", 0, 0, T);
  fmqt_expect_message(c, "ctl/x", "end2", 0, 0, T);
  fmqt_expect_message(a, "a/b", "four", 0, 0, T);
  fmqt_expect_message(a, "a/c", "five", 0, 0, T);
  fmqt_expect_message(a, "ctl/x", "end2", 0, 0, T);
  fmqt_expect_message(bb, "a/b", "four", 0, 0, T);
  fmqt_expect_message(bb, "ctl/x", "end2", 0, 0, T);
  fmqt_expect_message(d, "a/b", "four", 0, 0, T);
  fmqt_expect_message(d, "a/c", "five", 0, 0, T);
  fmqt_expect_message(d, "ctl/x", "end2", 0, 0, T);
  for (int i = 0; i < 4; i++) {
    fmqt_expect_nothing(fds[i], i == 0 ? QUIET_MS : 0, "after the second control message");
    fmqt_ws_close_cleanly(fds[i], 1000);
  }
}

/* --- reference counts --- */

/* Two clients on one filter share one broker subscription; the first
 * leaving (close) keeps it, the last releases it, and a new holder gets a
 * new one. */
static void shared_filter_is_released_by_its_last_holder_closing(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "f/x", 1, "a", 1);
  fmqt_subscribe(bb, "f/x", 1, "b", 1);
  assert_true(fmqt_broker_subscribes_since(b, 0, gw_id(state), "f/x", 1) >= 1);
  /* One subscription at the broker (the watcher's own aside). */
  wait_broker_subscriptions(state, 1);
  fmqt_mqtt_pub_text(b, "f/x", "both", 1, 0);
  fmqt_expect_message(a, "f/x", "both", 1, 0, T);
  fmqt_expect_message(bb, "f/x", "both", 1, 0, T);

  size_t mark = fmqt_broker_log_mark(b);
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_mqtt_pub_text(b, "f/x", "b only", 1, 0);
  fmqt_expect_message(bb, "f/x", "b only", 1, 0, T);
  assert_still_subscribed(state, mark, "f/x", "after the first holder closed");

  fmqt_ws_close_cleanly(bb, 1000);
  assert_released(state, mark, "f/x", "after the last holder closed");
  wait_broker_subscriptions(state, 0);

  /* A new holder: subscribed again, messages flow. */
  mark = fmqt_broker_log_mark(b);
  int c = fmqt_fixture_connect(state);
  fmqt_subscribe(c, "f/x", 0, "c", 0);
  assert_int_equal(fmqt_broker_subscribes_since(b, mark, gw_id(state), "f/x", 0), 1);
  fmqt_mqtt_pub_text(b, "f/x", "again", 0, 0);
  fmqt_expect_message(c, "f/x", "again", 0, 0, T);
  fmqt_ws_close_cleanly(c, 1000);
}

static void shared_filter_is_released_by_its_last_holder_unsubscribing(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "f/u", 0, "a", 0);
  fmqt_subscribe(a, "f/ctl", 0, "a-ctl", 0);
  fmqt_subscribe(bb, "f/u", 0, "b", 0);

  size_t mark = fmqt_broker_log_mark(b);
  fmqt_unsubscribe(a, "f/u", "a-un");
  fmqt_mqtt_pub_text(b, "f/u", "b only", 0, 0);
  fmqt_mqtt_pub_text(b, "f/ctl", "ctl", 0, 0);
  fmqt_expect_message(bb, "f/u", "b only", 0, 0, T);
  fmqt_expect_message(a, "f/ctl", "ctl", 0, 0, T);
  assert_still_subscribed(state, mark, "f/u", "after the first holder unsubscribed");

  fmqt_unsubscribe(bb, "f/u", "b-un");
  assert_released(state, mark, "f/u", "after the last holder unsubscribed");
  assert_int_equal(unsubscribes(state, mark, "f/ctl"), 0);
  fmqt_mqtt_pub_text(b, "f/u", "nobody", 0, 0);
  fmqt_mqtt_pub_text(b, "f/ctl", "ctl2", 0, 0);
  fmqt_expect_message(a, "f/ctl", "ctl2", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after unsubscribing");
  fmqt_expect_nothing(bb, 0, "after unsubscribing");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(bb, 1000);
}

static void shared_filter_is_released_by_its_last_holder_resetting(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "f/r", 1, "a", 1);
  fmqt_subscribe(bb, "f/r", 1, "b", 1);
  int fds = fmqt_gateway_fd_count(fmqt_fixture_gateway(state));

  size_t mark = fmqt_broker_log_mark(b);
  fmqt_abort(a);
  wait_fd_count(state, fds - 1, "after a client's TCP reset");
  fmqt_mqtt_pub_text(b, "f/r", "b only", 1, 0);
  fmqt_expect_message(bb, "f/r", "b only", 1, 0, T);
  assert_still_subscribed(state, mark, "f/r", "after the first holder's reset");

  fmqt_abort(bb);
  assert_released(state, mark, "f/r", "after the last holder's reset");
  wait_fd_count(state, fds - 2, "after the second reset");
}

/* Idle timeout 1 s: A stays silent and is closed; B stays active (a ping
 * every 300 ms) and keeps the filter; then B falls silent too. */
static void shared_filter_is_released_by_its_last_holder_idling_out(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "f/i", 0, "a", 0);
  fmqt_subscribe(bb, "f/i", 0, "b", 0);
  size_t mark = fmqt_broker_log_mark(b);

  int code = FMQT_TIMEOUT;
  int64_t deadline = fmqt_now_ms() + 4000;
  while (code == FMQT_TIMEOUT && fmqt_now_ms() < deadline) {
    fmqt_ws_send(bb, 1, 0x9, "keep", 4);
    code = fmqt_ws_expect_close(a, 300, NULL, 0);
  }
  assert_int_equal(code, 1001);
  /* Not answering the close: the gateway closes TCP after close_timeout. */
  while (!fmqt_wait_eof(a, 300)) {
    fmqt_ws_send(bb, 1, 0x9, "keep", 4);
    assert_true(fmqt_now_ms() < deadline + 3000);
  }
  fmqt_close(a);
  fmqt_ws_send(bb, 1, 0x9, "keep", 4);
  fmqt_mqtt_pub_text(b, "f/i", "b only", 0, 0);
  fmqt_expect_message(bb, "f/i", "b only", 0, 0, T);
  assert_still_subscribed(state, mark, "f/i", "after the first holder idled out");

  assert_int_equal(fmqt_ws_expect_close(bb, 4000, NULL, 0), 1001);
  assert_released(state, mark, "f/i", "after the last holder idled out");
  fmqt_close(bb);
}

/* A client subscribing twice to one filter holds it once: one unsubscribe
 * releases it (MQTT: a SUBSCRIBE to the same filter replaces the old one). */
static void subscribing_twice_holds_a_filter_once(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "f/d", 0, "first", 0);
  fmqt_subscribe(a, "f/d", 1, "second", 1);
  fmqt_subscribe(a, "f/ctl", 0, "ctl", 0);
  fmqt_mqtt_pub_text(b, "f/d", "once", 1, 0);
  fmqt_expect_message(a, "f/d", "once", 1, 0, T);
  size_t mark = fmqt_broker_log_mark(b);
  fmqt_unsubscribe(a, "f/d", "un");
  assert_released(state, mark, "f/d", "after one unsubscribe of a filter subscribed twice");
  fmqt_mqtt_pub_text(b, "f/d", "gone", 0, 0);
  fmqt_mqtt_pub_text(b, "f/ctl", "ctl", 0, 0);
  fmqt_expect_message(a, "f/ctl", "ctl", 0, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after unsubscribing a filter subscribed twice");
  fmqt_ws_close_cleanly(a, 1000);
}

/* A client that subscribes and goes before the SUBACK (the broker is
 * frozen to hold it back) leaves no subscription behind. */
static void subscription_abandoned_before_its_suback_is_released(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int fds = fmqt_gateway_fd_count(fmqt_fixture_gateway(state));
  size_t mark = fmqt_broker_log_mark(b);
  fmqt_broker_freeze(b);
  fmqt_send_subscribe(a, "f/z", 1, "a");
  fmqt_abort(a);
  wait_fd_count(state, fds - 1, "after the client's reset");
  fmqt_broker_thaw(b);
  char needle[128];
  snprintf(needle, sizeof needle, ": %s 1 f/z\n", gw_id(state));
  assert_int_equal(fmqt_broker_wait_log(b, mark, needle, 1, T), 1);
  assert_released(state, mark, "f/z", "after the only holder went before the SUBACK");
}

/* A client subscribing while the last holder's UNSUBSCRIBE is in flight
 * (frozen broker) gets a new subscription once that UNSUBSCRIBE is done. */
static void holder_arriving_during_the_unsubscribe_is_subscribed_again(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "f/w", 0, "a", 0);
  size_t mark = fmqt_broker_log_mark(b);
  fmqt_broker_freeze(b);
  fmqt_unsubscribe(a, "f/w", "a-un");
  fmqt_send_subscribe(bb, "f/w", 1, "b");
  fmqt_expect_nothing(bb, QUIET_MS, "subscribe while the broker is frozen");
  fmqt_broker_thaw(b);
  fmqt_expect_subscribed(bb, "f/w", 1, "b", T);
  assert_released(state, mark, "f/w", "after the last holder unsubscribed");
  char needle[128];
  snprintf(needle, sizeof needle, ": %s 1 f/w\n", gw_id(state));
  assert_int_equal(fmqt_broker_wait_log(b, mark, needle, 1, T), 1);
  /* The SUBSCRIBE came after the UNSUBSCRIBE, so the broker holds it now. */
  char *log = fmqt_broker_log(b);
  char unsub[128];
  snprintf(unsub, sizeof unsub, ": %s f/w\n", gw_id(state));
  const char *u = strstr(log + mark, unsub), *sb = strstr(log + mark, needle);
  assert_true(u != NULL && sb != NULL && u < sb);
  free(log);
  fmqt_mqtt_pub_text(b, "f/w", "for b", 1, 0);
  fmqt_expect_message(bb, "f/w", "for b", 1, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "the client that unsubscribed");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(bb, 1000);
}

/* --- readers and bursts --- */

#define BURST_SIZE 1000   /* payload bytes per message */

/* Lines "<i> xxx...\n" (BURST_SIZE bytes before the newline) for i in
 * [first, first + count); returns their length. */
static size_t burst_lines(char *out, int first, int count) {
  size_t n = 0;
  for (int i = first; i < first + count; i++) {
    int k = snprintf(out + n, BURST_SIZE + 1, "%d ", i);  /* i < 10^6 */
    memset(out + n + k, 'x', (size_t)(BURST_SIZE - k));
    n += BURST_SIZE;
    out[n++] = '\n';
  }
  return n;
}

/* Reads fd as fast as it can until message `until` (exclusive) arrived,
 * checking each is the next one in order, while feeding `in` (a
 * non-blocking pipe to mosquitto_pub -l; closed once all n bytes of lines
 * are written). Returns the next expected message. */
static int read_burst(int fd, int next, int until, int *in, const char *lines, size_t n,
                      size_t *written) {
  int64_t deadline = fmqt_now_ms() + 20000;
  while (next < until) {
    if (*in >= 0) {
      ssize_t w = write(*in, lines + *written, n - *written);
      if (w > 0) {
        *written += (size_t)w;
      }
      if (*written == n || (w < 0 && errno != EAGAIN)) {
        close(*in);
        *in = -1;
      }
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, *in >= 0 ? 1 : 100);
    if (fmqt_ws_read_ready(fd) == FMQT_EOF) {
      fail_msg("the reader was disconnected after %d messages", next);
    }
    struct fmqt_frame_view v;
    while (fmqt_ws_take_frame(fd, &v)) {
      if (v.opcode == 0x9 || v.opcode == 0xA) {
        continue;
      }
      json_error_t err;
      json_t *j = v.opcode == 0x1 ? json_loadb((const char *)v.payload, v.len, 0, &err) : NULL;
      const char *pl = j ? fmqt_json_str(j, "payload") : NULL;
      if (j == NULL || !fmqt_is_message(j, "burst/t") || pl == NULL ||
          strlen(pl) != BURST_SIZE || atoi(pl) != next) {
        fail_msg("a reader draining at full speed expected message %d, got opcode %u: %.60s",
                 next, v.opcode, v.opcode == 0x8 && v.len > 2 ? (const char *)v.payload + 2
                                                               : (const char *)v.payload);
      }
      json_decref(j);
      next++;
    }
    if (fmqt_now_ms() > deadline) {
      fail_msg("the reader got %d of %d messages in 20 s", next, until);
    }
  }
  return next;
}

/* Publishes messages [first, first + count) on burst/t through one
 * mosquitto_pub -l run while fd reads them. */
static int publish_burst_reading(void **state, int fd, int first, int count) {
  static char lines[4000 * (BURST_SIZE + 7)];
  assert_true(count <= 4000);
  size_t n = burst_lines(lines, first, count), written = 0;
  char port[16];
  snprintf(port, sizeof port, "%u", fmqt_fixture_broker(state)->port);
  const char *argv[] = {"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "burst/t", "-l",
                        NULL};
  char out_path[512];
  snprintf(out_path, sizeof out_path, "%s/burst-pub.out", fmqt_fixture_broker(state)->dir);
  int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(out >= 0);
  int in = -1;
  pid_t pub = fmqt_spawn(argv, NULL, out, &in);
  close(out);
  assert_int_equal(fcntl(in, F_SETFL, fcntl(in, F_GETFL) | O_NONBLOCK), 0);
  int next = read_burst(fd, first, first + count, &in, lines, n, &written);
  if (in >= 0) {
    close(in);
  }
  int status = fmqt_proc_wait(pub, 20000);
  if (status != 0) {
    char *text = fmqt_read_file(out_path, NULL);
    char stat_path[64];
    snprintf(stat_path, sizeof stat_path, "/proc/%d/wchan", (int)pub);
    char *wchan = fmqt_read_file(stat_path, NULL);
    fmqt_broker_print_log(fmqt_fixture_broker(state), 0, "mosquitto_pub did not finish");
    fail_msg("mosquitto_pub -l (messages %d..%d, all received) exited %d (wchan %s): %s", first,
             first + count - 1, status, wchan, text);
  }
  return next;
}

/* A client that does not read is closed with 1013 once its queue (1 MiB)
 * is full; a client that keeps reading gets every message in order, and
 * the filter stays subscribed for it. The messages (12 MB: the kernel
 * buffers the slow client's socket too, up to a few MB) come in bursts of
 * 600 KB, each read by the fast client before the next is sent, so the
 * fast client's queue never holds much while the slow one's grows. */
static void slow_reader_is_dropped_and_the_others_get_everything(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  int slow = fmqt_ws_upgrade(fmqt_tcp_connect_rcvbuf(fmqt_fixture_port(state), 4096), "/mqtt", "");
  int fast = fmqt_fixture_connect(state);
  fmqt_subscribe(slow, "burst/t", 0, "slow", 0);
  fmqt_subscribe(fast, "burst/t", 0, "fast", 0);
  size_t mark = fmqt_broker_log_mark(b);
  int next = 0;
  for (int burst = 0; burst < 20; burst++) {
    next = publish_burst_reading(state, fast, next, 600);
  }
  int code = fmqt_ws_expect_close(slow, T, NULL, 0);
  if (code != 1013) {
    fail_msg("the slow reader got close %d, want 1013", code);
  }
  fmqt_close(slow);
  fmqt_mqtt_pub_text(b, "burst/t", "after", 0, 0);
  fmqt_expect_message(fast, "burst/t", "after", 0, 0, T);
  fmqt_expect_nothing(fast, QUIET_MS, "after the last message");
  assert_still_subscribed(state, mark, "burst/t", "after the slow reader was dropped");
  fmqt_ws_close_cleanly(fast, 1000);
  assert_released(state, mark, "burst/t", "after the last reader closed");
}

/* One burst of 3 MB (3000 QoS 0 messages of 1000 bytes) to a client that
 * reads as fast as it can, with the default 1 MiB outbound queue: the
 * queue bounds a client that does not keep up, not one that does. */
static void a_burst_larger_than_the_queue_does_not_drop_a_fast_reader(void **state) {
  int fast = fmqt_fixture_connect(state);
  fmqt_subscribe(fast, "burst/t", 0, "fast", 0);
  assert_int_equal(publish_burst_reading(state, fast, 0, 3000), 3000);
  fmqt_expect_nothing(fast, QUIET_MS, "after the burst");
  fmqt_ws_close_cleanly(fast, 1000);
}

/* A bigger burst (6 MB) while the gateway is paused for a moment
 * (SIGSTOP, as a busy host would deschedule it): when it runs again it has
 * it all to pass on at once; a client reading at full speed must still get
 * every message, not close 1013 for a backlog the gateway built up itself. */
static void a_burst_after_a_gateway_stall_does_not_drop_a_fast_reader(void **state) {
  int fast = fmqt_fixture_connect(state);
  fmqt_subscribe(fast, "burst/t", 0, "fast", 0);
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  static char lines[6000 * (BURST_SIZE + 7)];
  size_t n = burst_lines(lines, 0, 6000), written = n;
  fmqt_gateway_signal(gw, SIGSTOP);
  fmqt_mqtt_pub_lines(fmqt_fixture_broker(state), "burst/t", lines, n, 0, 20000);
  fmqt_gateway_signal(gw, SIGCONT);
  int in = -1;
  assert_int_equal(read_burst(fast, 0, 6000, &in, lines, n, &written), 6000);
  fmqt_expect_nothing(fast, QUIET_MS, "after the burst");
  fmqt_ws_close_cleanly(fast, 1000);
}

/* --- QoS --- */

/* A asks for QoS 0, B for 2, C for 1: the broker subscription goes to 2
 * and never below while B holds it; each reply grants what was asked;
 * messages come at min(publish QoS, broker subscription QoS). When B goes,
 * the highest request is 1. */
static void broker_subscription_qos_is_the_highest_requested(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  const char *id = gw_id(state);
  int a = fmqt_fixture_connect(state);
  int bb = fmqt_fixture_connect(state);
  int c = fmqt_fixture_connect(state);
  fmqt_subscribe(a, "q/f", 0, "a", 0);
  assert_int_equal(fmqt_broker_subscribes_since(b, 0, id, "q/f", 0), 1);
  size_t mark = fmqt_broker_log_mark(b);
  fmqt_subscribe(bb, "q/f", 2, "b", 2);
  assert_true(fmqt_broker_subscribes_since(b, mark, id, "q/f", 2) >= 1);
  fmqt_subscribe(c, "q/f", 1, "c", 1);
  if (fmqt_broker_subscribes_since(b, mark, id, "q/f", 0) +
          fmqt_broker_subscribes_since(b, mark, id, "q/f", 1) != 0) {
    fmqt_broker_print_log(b, mark, "QoS lowered");
    fail_msg("the broker subscription of q/f went below QoS 2 while a holder asked for 2");
  }
  int fds[] = {a, bb, c};
  fmqt_mqtt_pub_text(b, "q/f", "at 2", 2, 0);
  for (int i = 0; i < 3; i++) {
    fmqt_expect_message(fds[i], "q/f", "at 2", 2, 0, T);
  }
  fmqt_mqtt_pub_text(b, "q/f", "at 1", 1, 0);
  for (int i = 0; i < 3; i++) {
    fmqt_expect_message(fds[i], "q/f", "at 1", 1, 0, T);
  }

  mark = fmqt_broker_log_mark(b);
  fmqt_ws_close_cleanly(bb, 1000);
  char needle[128];
  snprintf(needle, sizeof needle, ": %s 1 q/f\n", id);
  if (fmqt_broker_wait_log(b, mark, needle, 1, T) != 1) {
    fmqt_broker_print_log(b, mark, "no downgrade");
    fail_msg("after the QoS 2 holder left, the broker subscription was not set to QoS 1");
  }
  assert_int_equal(unsubscribes(state, mark, "q/f"), 0);
  fmqt_mqtt_pub_text(b, "q/f", "capped", 2, 0);
  fmqt_expect_message(a, "q/f", "capped", 1, 0, T);
  fmqt_expect_message(c, "q/f", "capped", 1, 0, T);
  fmqt_expect_nothing(a, QUIET_MS, "after the last message");
  fmqt_expect_nothing(c, 0, "after the last message");
  fmqt_ws_close_cleanly(a, 1000);
  fmqt_ws_close_cleanly(c, 1000);
}

#define WITH(fn, fx) cmocka_unit_test_prestate_setup_teardown(fn, fmqt_fixture_setup, \
                                                              fmqt_fixture_teardown, &fx)

int main(void) {
  const struct CMUnitTest tests[] = {
      WITH(overlapping_filters_deliver_once_per_client, mqtt5),
      WITH(overlapping_filters_deliver_once_per_client, mqtt311),
      WITH(shared_filter_is_released_by_its_last_holder_closing, mqtt5),
      WITH(shared_filter_is_released_by_its_last_holder_closing, mqtt311),
      WITH(shared_filter_is_released_by_its_last_holder_unsubscribing, mqtt5),
      WITH(shared_filter_is_released_by_its_last_holder_resetting, mqtt5),
      WITH(shared_filter_is_released_by_its_last_holder_idling_out, idle),
      WITH(subscribing_twice_holds_a_filter_once, mqtt5),
      WITH(subscription_abandoned_before_its_suback_is_released, mqtt5),
      WITH(holder_arriving_during_the_unsubscribe_is_subscribed_again, mqtt5),
      WITH(slow_reader_is_dropped_and_the_others_get_everything, long_close),
      WITH(a_burst_larger_than_the_queue_does_not_drop_a_fast_reader, long_close),
      WITH(a_burst_after_a_gateway_stall_does_not_drop_a_fast_reader, long_close),
      WITH(broker_subscription_qos_is_the_highest_requested, mqtt5),
      WITH(broker_subscription_qos_is_the_highest_requested, mqtt311),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
