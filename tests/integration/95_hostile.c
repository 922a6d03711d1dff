/* Hostile clients (issue 9): slowloris request heads, stalled frame
 * payloads, a ping flood, an empty-continuation flood (a trickle of them
 * is 40_liveness's), a `#` subscriber that never reads, resets at every
 * handshake and frame stage, garbage before the request line (400), a
 * 100 KB request line (431), the 9 bytes "CONNECT \r" (an incomplete
 * request: 408 at the deadline, no crash), and 10,000 connections opened
 * and closed.
 *
 * Each case runs beside normal traffic (traffic.h: three clients
 * subscribed to one topic, publishing and pinging in rounds): every one of
 * their messages must arrive and every round trip stay within BOUND_MS.
 * Afterwards the gateway must be alive, hold no more descriptors than
 * before the hostile clients came, and its resident memory must be back
 * within RSS_TOLERANCE_KIB of the baseline taken after a warm-up. */

#include "bridge_client.h"
#include "gateway_proc.h"
#include "proc.h"
#include "traffic.h"
#include "wsclient.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#define BOUND_MS 2000          /* each normal round trip; generous: ASan, 2 cores */
#define EVERY_MS 20            /* a normal round at most this often */
#define MIN_ALONGSIDE 3        /* normal rounds during the hostile part, at least */
/* Quick hostile acts are repeated for at least this long (and a minimum
 * count), the normal traffic stepping PACE_MS between two, so that they
 * overlap normal rounds. */
#define HOSTILE_MIN_MS 1000
#define PACE_MS 5
#define NORMAL_CLIENTS 3
#define NORMAL_TOPIC "normal/t"
#define WARMUP_MS 1000
/* Resident memory may stay this far above the baseline once the hostile
 * clients are gone: the allocator keeps some freed memory, and libuv's
 * watcher array grows with the highest descriptor and never shrinks. This
 * catches gross retention (a hostile client's buffers kept); small leaks
 * are LeakSanitizer's, in the sanitizer build. */
#define RSS_TOLERANCE_KIB (16 * 1024)
#define SETTLE_MS 10000        /* descriptors and memory back to the baseline */
#define HANDSHAKE_MS 2000
#define IDLE_MS 3000
#define LATE_MS 3000           /* a deadline's close may come this much late */
#define TIMEOUT_MS 5000

static struct fmqt_fixture hostile = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_HANDSHAKE_TIMEOUT=2s",
                                 "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=3s",
                                 "FERRYMQ_WEBSOCKET_PING_INTERVAL=1s",
                                 /* longer than the ping flood: its close
                                  * frame must still be there once the
                                  * flooder reads */
                                 "FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=10s",
                                 "FERRYMQ_WEBSOCKET_OUTBOUND_QUEUE_LIMIT=64KiB", NULL},
    /* Mosquitto must not drop QoS 0 messages for the gateway when a flood
     * backs up its socket (it does past max_queued_messages, default 1000). */
    .broker_conf = "max_queued_messages 0\n"};

/* --- the watch: normal traffic, descriptors, memory --- */

struct watch {
  void **state;
  const char *name;
  struct fmqt_traffic traffic;
  int fds;                     /* the gateway's descriptors before the hostile clients */
  long rss_kib, peak_kib;      /* baseline and highest seen */
  int64_t started;             /* the hostile part began */
  long rounds;                 /* normal rounds before it */
};

static struct fmqt_gateway *gw_of(const struct watch *w) {
  return fmqt_fixture_gateway(w->state);
}

static uint16_t port_of(const struct watch *w) {
  return fmqt_fixture_port(w->state);
}

/* Normal traffic for a time, and a memory sample. */
static void watch_step(struct watch *w, int ms) {
  fmqt_traffic_step(&w->traffic, ms);
  long rss = fmqt_gateway_rss_kib(gw_of(w));
  if (rss > w->peak_kib) {
    w->peak_kib = rss;
  }
}

static void watch_start(void **state, struct watch *w, const char *name) {
  memset(w, 0, sizeof *w);
  w->state = state;
  w->name = name;
  fmqt_traffic_start(&w->traffic, fmqt_fixture_port(state), NORMAL_TOPIC, NORMAL_CLIENTS,
                     BOUND_MS, EVERY_MS);
  fmqt_traffic_step(&w->traffic, WARMUP_MS);
  w->fds = fmqt_gateway_fd_count(gw_of(w));
  w->rss_kib = w->peak_kib = fmqt_gateway_rss_kib(gw_of(w));
  w->started = fmqt_now_ms();
  w->rounds = w->traffic.rounds;
}

/* Whether a quick hostile act done `done` times should be done again: at
 * least `min` times and for HOSTILE_MIN_MS, at most `max` times. Steps the
 * normal traffic for PACE_MS first. */
static int keep_going(struct watch *w, int done, int min, int max) {
  watch_step(w, done > 0 ? PACE_MS : 0);
  return done < max && (done < min || fmqt_now_ms() - w->started < HOSTILE_MIN_MS);
}

static void settle_fds(struct watch *w) {
  int64_t deadline = fmqt_now_ms() + SETTLE_MS;
  int have;
  while ((have = fmqt_gateway_fd_count(gw_of(w))) > w->fds && fmqt_now_ms() < deadline) {
    watch_step(w, 20);
  }
  if (have > w->fds) {
    fail_msg("%s: the gateway holds %d descriptors, %d before the hostile clients", w->name,
             have, w->fds);
  }
}

/* Under ASan+UBSan (FMQT_SANITIZED) resident memory says nothing (shadow
 * memory, the quarantine of freed blocks): there LeakSanitizer checks at
 * exit instead, and the fixture's teardown asserts exit status 0. */
static void settle_rss(struct watch *w) {
  long rss = fmqt_gateway_rss_kib(gw_of(w));
#ifndef FMQT_SANITIZED
  int64_t deadline = fmqt_now_ms() + SETTLE_MS;
  while (rss > w->rss_kib + RSS_TOLERANCE_KIB && fmqt_now_ms() < deadline) {
    watch_step(w, 50);
    rss = fmqt_gateway_rss_kib(gw_of(w));
  }
#endif
  fprintf(stderr, "[ %s ] gateway VmRSS: baseline %ld KiB, peak %ld KiB, after %ld KiB\n",
          w->name, w->rss_kib, w->peak_kib, rss);
#ifndef FMQT_SANITIZED
  if (rss > w->rss_kib + RSS_TOLERANCE_KIB) {
    fail_msg("%s: the gateway's VmRSS is %ld KiB, baseline %ld KiB + %d KiB allowed", w->name,
             rss, w->rss_kib, RSS_TOLERANCE_KIB);
  }
#endif
}

/* Reports the sanitizers print (they stop the gateway at the first, and
 * the fixture's teardown would see the exit status; the log names it). */
static void assert_no_sanitizer_report(const struct watch *w) {
  static const char *const reports[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error"};
  for (size_t i = 0; i < sizeof reports / sizeof reports[0]; i++) {
    if (fmqt_gateway_log_contains(gw_of(w), reports[i])) {
      fmqt_gateway_print_log(gw_of(w), reports[i]);
      fail_msg("%s: the gateway's log contains \"%s\"", w->name, reports[i]);
    }
  }
}

/* The hostile clients are gone: everything is as before, and the normal
 * clients got everything in time. */
static void watch_finish(struct watch *w) {
  assert_no_sanitizer_report(w);
  long alongside = w->traffic.rounds - w->rounds;
  if (alongside < MIN_ALONGSIDE) {
    fail_msg("%s: only %ld normal rounds during the hostile part", w->name, alongside);
  }
  settle_fds(w);
  assert_true(fmqt_gateway_alive(gw_of(w)));
  settle_rss(w);
  fmqt_traffic_stop(&w->traffic);
  fprintf(stderr,
          "[ %s ] %lld ms, %ld normal rounds (%ld alongside), slowest message %lld ms, "
          "slowest pong %lld ms\n",
          w->name, (long long)(fmqt_now_ms() - w->started), w->traffic.rounds, alongside,
          (long long)w->traffic.worst_message_ms, (long long)w->traffic.worst_pong_ms);
  fmqt_assert_serving(port_of(w), "/mqtt");
}

/* --- reading many hostile sockets --- */

/* A hostile connection awaiting the gateway's close frame. */
struct closing {
  int fd;
  int64_t since;               /* when its deadline started */
  int code;                    /* FMQT_TIMEOUT until it came; FMQT_EOF: none came */
  int64_t took;                /* since -> close frame */
  char reason[128];
};

/* Takes the frames fd has; returns 1 when it was a close (recorded in c). */
static int take_close(struct closing *c) {
  int eof = fmqt_ws_read_ready(c->fd) == FMQT_EOF;
  struct fmqt_frame_view v;
  while (fmqt_ws_take_frame(c->fd, &v)) {
    if (v.opcode == 0x8) {
      c->code = v.len >= 2 ? v.payload[0] << 8 | v.payload[1] : 1005;
      size_t n = v.len > 2 ? v.len - 2 : 0;
      n = n < sizeof c->reason ? n : sizeof c->reason - 1;
      memcpy(c->reason, v.payload + 2, n);
      c->reason[n] = '\0';
      c->took = fmqt_now_ms() - c->since;
      return 1;
    }
  }
  if (eof) {
    c->code = FMQT_EOF;
    return 1;
  }
  return 0;
}

/* Reads every connection in c (pings dropped) until each got its close
 * frame or EOF, or until deadline, stepping the normal traffic; closes each
 * socket as it is done. */
static void await_closes(struct watch *w, struct closing *c, int n, int64_t deadline) {
  static struct pollfd p[1024];
  int pending = n;
  assert_true(n <= 1024);
  while (pending > 0 && fmqt_now_ms() < deadline) {
    for (int i = 0; i < n; i++) {
      p[i] = (struct pollfd){.fd = c[i].code == FMQT_TIMEOUT ? c[i].fd : -1, .events = POLLIN};
    }
    (void)poll(p, (nfds_t)n, 20);
    for (int i = 0; i < n; i++) {
      if (p[i].fd >= 0 && p[i].revents != 0 && take_close(&c[i])) {
        fmqt_close(c[i].fd);
        pending--;
      }
    }
    watch_step(w, 0);
  }
}

/* Asserts every connection got close `code` with a reason containing
 * `reason`, no sooner than earliest_ms after its deadline started. */
static void assert_closed_with(const struct closing *c, int n, int code, const char *reason,
                               int earliest_ms) {
  for (int i = 0; i < n; i++) {
    if (c[i].code != code) {
      fail_msg("connection %d of %d: %s %d, want close %d", i, n,
               c[i].code == FMQT_EOF ? "EOF" : c[i].code == FMQT_TIMEOUT ? "timeout" : "close",
               c[i].code, code);
    }
    if (strstr(c[i].reason, reason) == NULL) {
      fail_msg("connection %d: close %d with reason \"%s\", want \"%s\"", i, code, c[i].reason,
               reason);
    }
    if (c[i].took < earliest_ms) {
      fail_msg("connection %d: closed after %lld ms, before its deadline", i,
               (long long)c[i].took);
    }
  }
}

/* --- a. slowloris --- */

#define SLOWLORIS 20
#define TRICKLE_MS 100   /* a byte per connection this often: the head takes ~15 s */

/* Connections in the HTTP phase, each sending the next byte of its bytes
 * every TRICKLE_MS, until each got a response head or the handshake
 * deadline (plus LATE_MS) passed; the normal traffic steps meanwhile.
 * Asserts each got `want` no sooner than the deadline, then EOF. */
static void assert_answered_at_the_deadline(struct watch *w, int *fds, int n,
                                            const char *bytes, size_t len, int want) {
  int status[SLOWLORIS];
  int64_t took[SLOWLORIS], start = fmqt_now_ms();
  assert_true(n <= SLOWLORIS);
  for (int i = 0; i < n; i++) {
    status[i] = FMQT_TIMEOUT;
  }
  int pending = n;
  for (size_t sent = 0; pending > 0 && fmqt_now_ms() < start + HANDSHAKE_MS + LATE_MS; sent++) {
    for (int i = 0; i < n; i++) {
      char head[1024];
      if (status[i] != FMQT_TIMEOUT) {
        continue;
      }
      if (sent < len) {
        (void)fmqt_try_send(fds[i], bytes + sent, 1);
      }
      status[i] = fmqt_http_read_head(fds[i], head, sizeof head, 0);
      took[i] = fmqt_now_ms() - start;
      pending -= status[i] != FMQT_TIMEOUT;
    }
    watch_step(w, TRICKLE_MS);
  }
  for (int i = 0; i < n; i++) {
    if (status[i] != want) {
      fail_msg("connection %d of %d: status %d within %d ms, want %d", i, n, status[i],
               HANDSHAKE_MS + LATE_MS, want);
    }
    if (took[i] < HANDSHAKE_MS - 200) {
      fail_msg("connection %d: %d after %lld ms, before the handshake deadline", i, want,
               (long long)took[i]);
    }
    assert_true(fmqt_wait_eof(fds[i], TIMEOUT_MS));
    fmqt_close(fds[i]);
  }
}

/* Connections trickling their request head a byte at a time are answered
 * 408 at the handshake deadline, and the connection ends. */
static void slowloris_heads_get_408_at_the_handshake_deadline(void **state) {
  struct watch w;
  watch_start(state, &w, "a. slowloris");
  char req[1024], key[25];
  size_t n = fmqt_ws_request(req, sizeof req, "/mqtt", "", key);
  int fds[SLOWLORIS];
  for (int i = 0; i < SLOWLORIS; i++) {
    fds[i] = fmqt_tcp_connect(port_of(&w));
  }
  assert_answered_at_the_deadline(&w, fds, SLOWLORIS, req, n, 408);
  watch_finish(&w);
}

/* --- b. stalled frame payloads --- */

#define STALLED 500
#define STALL_ANNOUNCED 1000   /* payload bytes the header announces */
#define STALL_SENT 400         /* payload bytes sent */

/* 500 connections each upgrade, send a frame header announcing 1000 bytes
 * and 400 of them, and stall. A frame never completed is no activity: each
 * is closed at the idle timeout with 1001. */
static void stalled_frame_payloads_are_closed_at_the_idle_timeout(void **state) {
  struct watch w;
  watch_start(state, &w, "b. 500 stalled payloads");
  static struct closing c[STALLED];
  uint8_t header[14], payload[STALL_SENT];
  const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
  size_t hn = fmqt_ws_header(header, 0x81, STALL_ANNOUNCED, mask);
  memset(payload, 'x' ^ 0x11, sizeof payload);
  for (int i = 0; i < STALLED; i++) {
    c[i] = (struct closing){.fd = fmqt_ws_connect(port_of(&w), "/mqtt", ""),
                            .code = FMQT_TIMEOUT};
    c[i].since = fmqt_now_ms();
    fmqt_send_all(c[i].fd, header, hn);
    fmqt_send_all(c[i].fd, payload, sizeof payload);
    if (i % 10 == 9) {
      watch_step(&w, 0);
    }
  }
  await_closes(&w, c, STALLED, fmqt_now_ms() + IDLE_MS + LATE_MS);
  assert_closed_with(c, STALLED, 1001, "idle timeout", IDLE_MS - 200);
  watch_finish(&w);
}

/* --- c. ping flood --- */

#define FLOOD_MS 2000
#define PING_PAYLOAD 125
#define PINGS_PER_BATCH 64

/* Sends pings on fd (non-blocking) as fast as it can for FLOOD_MS without
 * reading, the normal traffic stepping whenever the socket is full.
 * Returns the bytes sent. */
static size_t flood_pings(struct watch *w, int fd) {
  static uint8_t batch[PINGS_PER_BATCH * (PING_PAYLOAD + 6)];
  uint8_t payload[PING_PAYLOAD];
  memset(payload, 'p', sizeof payload);
  size_t len = 0;
  for (int i = 0; i < PINGS_PER_BATCH; i++) {
    len += fmqt_ws_build(batch + len, 0x89, 1, payload, sizeof payload);
  }
  assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
  size_t total = 0, offset = 0, batches = 0;
  int64_t end = fmqt_now_ms() + FLOOD_MS;
  while (fmqt_now_ms() < end) {
    ssize_t n = send(fd, batch + offset, len - offset, MSG_NOSIGNAL);
    if (n > 0) {
      total += (size_t)n;
      offset = (offset + (size_t)n) % len;
      if (offset == 0 && ++batches % 16 == 0) {
        watch_step(w, 0);
      }
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      watch_step(w, 1);
    } else if (errno == EPIPE || errno == ECONNRESET) {
      break;
    } else if (errno != EINTR) {
      fail_msg("send: %s", strerror(errno));
    }
  }
  /* End on a frame boundary, so that a close frame sent next is one. */
  size_t frame = PING_PAYLOAD + 6, rest = (frame - offset % frame) % frame;
  if (rest > 0 && fmqt_try_send(fd, batch + offset, rest) == 0) {
    total += rest;
  }
  return total;
}

/* Reads the flooder's frames after the flood and a last ping: pongs of the
 * flood (and the gateway's keepalive pings), then either close 1013 (its
 * queue filled) or the last pong (it kept up). Returns the close code, or 0
 * when it kept up. */
static int drain_flooder(struct watch *w, int fd, size_t *pongs) {
  fmqt_ws_send(fd, 1, 0x9, "last", 4);
  int64_t deadline = fmqt_now_ms() + 20000;
  while (fmqt_now_ms() < deadline) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    (void)poll(&p, 1, 10);
    int eof = fmqt_ws_read_ready(fd) == FMQT_EOF;
    struct fmqt_frame_view v;
    while (fmqt_ws_take_frame(fd, &v)) {
      if (v.opcode == 0x8) {
        return v.len >= 2 ? v.payload[0] << 8 | v.payload[1] : 1005;
      }
      if (v.opcode == 0xA && v.len == 4 && memcmp(v.payload, "last", 4) == 0) {
        return 0;
      }
      if (v.opcode == 0x9) {
        continue;   /* the gateway's own keepalive ping */
      }
      if (v.opcode != 0xA || v.len != PING_PAYLOAD) {
        fail_msg("flooder: frame %zu has opcode %u and %zu bytes, want a pong", *pongs,
                 v.opcode, v.len);
      }
      ++*pongs;
    }
    if (eof) {
      fail_msg("flooder: EOF after %zu pongs without a close frame", *pongs);
    }
    watch_step(w, 0);
  }
  fail_msg("flooder: neither close nor the last pong after %zu pongs", *pongs);
  return -1;
}

/* A client pinging as fast as it can without reading: the gateway answers
 * until the client's outbound queue is full, then closes it with 1013 (or
 * the client keeps up); the normal clients are not slowed down. */
static void ping_flood_does_not_slow_the_others(void **state) {
  struct watch w;
  watch_start(state, &w, "c. ping flood");
  int fd = fmqt_ws_upgrade(fmqt_tcp_connect_rcvbuf(port_of(&w), 4096), "/mqtt", "");
  size_t sent = flood_pings(&w, fd), pongs = 0;
  int code = drain_flooder(&w, fd, &pongs);
  fprintf(stderr, "[ c. ping flood ] %zu bytes of pings, %zu pongs, then %s %d\n", sent, pongs,
          code ? "close" : "kept up", code);
  if (code == 0) {
    fmqt_ws_close_cleanly(fd, 1000);
  } else {
    assert_int_equal(code, 1013);
    fmqt_ws_send_close(fd, 1013, NULL);
    assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
    fmqt_close(fd);
  }
  watch_finish(&w);
}

/* --- d. empty continuation frames --- */

#define CONTINUATIONS_PER_SEND 1000
#define CONTINUATIONS_MAX 200000   /* bounded: the default max_fragments is 1024 */
#define EMPTY_CONTINUATION_SIZE 6  /* header, masked, no payload */

/* One client flooding: a text frame without FIN, then chunks of empty
 * continuations without FIN until the gateway's close frame is there. */
static void flood_empty_continuations(struct watch *w) {
  static uint8_t chunk[CONTINUATIONS_PER_SEND * EMPTY_CONTINUATION_SIZE];
  size_t len = 0;
  for (int i = 0; i < CONTINUATIONS_PER_SEND; i++) {
    len += fmqt_ws_build(chunk + len, 0x00, 1, NULL, 0);
  }
  int fd = fmqt_ws_connect(port_of(w), "/mqtt", "");
  fmqt_ws_send(fd, 0, 0x1, "{", 1);
  int64_t end = fmqt_now_ms() + TIMEOUT_MS;
  int sent = 0;
  for (; sent < CONTINUATIONS_MAX && fmqt_now_ms() < end; sent += CONTINUATIONS_PER_SEND) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) > 0 || fmqt_try_send(fd, chunk, len) != 0) {
      break;
    }
    watch_step(w, 0);
  }
  char reason[128] = "";
  int code = fmqt_ws_expect_close(fd, TIMEOUT_MS, reason, sizeof reason);
  if (code != 1009 || strstr(reason, "fragments") == NULL) {
    fail_msg("after %d empty continuations: close %d \"%s\", want 1009 \"too many fragments\"",
             sent, code, reason);
  }
  assert_true(fmqt_wait_eof(fd, TIMEOUT_MS));
  fmqt_close(fd);
}

/* A text frame without FIN followed by empty continuations without FIN,
 * in a tight loop: past websocket.max_fragments (1024) frames the message
 * is failed with close 1009 "too many fragments". */
static void empty_continuation_flood_is_closed_with_1009(void **state) {
  struct watch w;
  watch_start(state, &w, "d. empty-continuation flood");
  for (int i = 0; keep_going(&w, i, 3, 1000); i++) {
    flood_empty_continuations(&w);
  }
  watch_finish(&w);
}

/* --- e. a `#` subscriber that never reads --- */

#define FLOOD_MESSAGES 30000
#define FLOOD_PAYLOAD 1000
#define FLOOD_SECONDS_MS 30000
#define LOG_1013 "closing with 1013"

/* Publishes FLOOD_PAYLOAD-byte messages on flood/x through the gateway
 * until it logs a 1013 beyond the `logged` ones (or FLOOD_MESSAGES,
 * FLOOD_SECONDS_MS). Returns how many. */
static int publish_flood(struct watch *w, int pub, size_t logged) {
  char *text = malloc(FLOOD_PAYLOAD + 128);
  assert_non_null(text);
  int n = snprintf(text, 128, "{\"type\":\"publish\",\"topic\":\"flood/x\",\"payload\":\"");
  memset(text + n, 'f', FLOOD_PAYLOAD);
  snprintf(text + n + FLOOD_PAYLOAD, 8, "\"}");
  int64_t end = fmqt_now_ms() + FLOOD_SECONDS_MS;
  int i = 0;
  while (i < FLOOD_MESSAGES && fmqt_now_ms() < end) {
    fmqt_ws_send_text(pub, text);
    if (++i % 50 == 0) {
      watch_step(w, 0);
      if (fmqt_gateway_log_count(gw_of(w), LOG_1013) > logged) {
        break;
      }
    }
  }
  free(text);
  return i;
}

/* Reads the sink's backlog until its close frame; returns the close code
 * or FMQT_EOF, with the data frames before it counted in *messages. */
static int drain_sink(struct watch *w, int fd, size_t *messages) {
  int64_t deadline = fmqt_now_ms() + 20000;
  while (fmqt_now_ms() < deadline) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    (void)poll(&p, 1, 10);
    int eof = fmqt_ws_read_ready(fd) == FMQT_EOF;
    struct fmqt_frame_view v;
    while (fmqt_ws_take_frame(fd, &v)) {
      if (v.opcode == 0x8) {
        return v.len >= 2 ? v.payload[0] << 8 | v.payload[1] : 1005;
      }
      *messages += v.opcode == 0x1;
    }
    if (eof) {
      return FMQT_EOF;
    }
    watch_step(w, 0);
  }
  fail_msg("the sink did not end within 20 s (%zu messages)", *messages);
  return -1;
}

/* One sink: subscribes to `#` with a small receive buffer and never
 * reads while a publisher floods; it must be closed with 1013 (one more
 * LOG_1013 in the log) and its backlog must end. */
static void flood_a_sink(struct watch *w) {
  size_t logged = fmqt_gateway_log_count(gw_of(w), LOG_1013);
  int sink = fmqt_ws_upgrade(fmqt_tcp_connect_rcvbuf(port_of(w), 4096), "/mqtt", "");
  fmqt_subscribe(sink, "#", 0, "sink", 0);
  int pub = fmqt_ws_connect(port_of(w), "/mqtt", "");
  int published = publish_flood(w, pub, logged);
  int64_t deadline = fmqt_now_ms() + TIMEOUT_MS;
  while (fmqt_gateway_log_count(gw_of(w), LOG_1013) == logged && fmqt_now_ms() < deadline) {
    watch_step(w, 20);
  }
  if (fmqt_gateway_log_count(gw_of(w), LOG_1013) != logged + 1) {
    fail_msg("%zu new \"" LOG_1013 "\" in the log after %d messages of %d bytes, want 1",
             fmqt_gateway_log_count(gw_of(w), LOG_1013) - logged, published, FLOOD_PAYLOAD);
  }
  fmqt_ws_close_cleanly(pub, 1000);
  size_t messages = 0;
  int code = drain_sink(w, sink, &messages);
  fprintf(stderr, "[ %s ] %d messages published, the sink read %zu, then %d; VmRSS %ld KiB\n",
          w->name, published, messages, code, fmqt_gateway_rss_kib(gw_of(w)));
  if (code != 1013 && code != FMQT_EOF) {
    fail_msg("the sink got close %d, want 1013", code);
  }
  if (code == 1013) {
    fmqt_ws_send_close(sink, 1013, NULL);
    assert_true(fmqt_wait_eof(sink, TIMEOUT_MS));
  }
  fmqt_close(sink);
}

/* A client subscribed to `#` with a small receive buffer that never reads
 * is closed with 1013 once its outbound queue (64 KiB) is full; the normal
 * clients get all their messages meanwhile. */
static void hash_subscriber_that_never_reads_is_closed_with_1013(void **state) {
  struct watch w;
  watch_start(state, &w, "e. # non-reader");
  for (int i = 0; keep_going(&w, i, 2, 10); i++) {
    flood_a_sink(&w);
  }
  watch_finish(&w);
}

/* --- f. resets at every stage --- */

enum stage {
  PARTIAL_REQUEST_LINE,
  PARTIAL_HEADERS,
  BEFORE_THE_101,
  AFTER_THE_UPGRADE,
  AFTER_A_SUBSCRIBE,
  MID_FRAME_HEADER,
  MID_LENGTH_16,
  MID_LENGTH_64,
  MID_MASK,
  MID_PAYLOAD,
  MID_FRAGMENTED_MESSAGE,
  AFTER_A_CLOSE_FRAME,
  STAGES
};

#define RESETS_PER_STAGE 20

/* A connection reset (RST) in the HTTP phase: after `cut` bytes of the
 * request. */
static void reset_in_request(uint16_t port, enum stage s) {
  char req[1024], key[25];
  size_t n = fmqt_ws_request(req, sizeof req, "/mqtt", "", key);
  size_t cut = s == PARTIAL_REQUEST_LINE ? 7 : s == PARTIAL_HEADERS ? 50 : n;
  int fd = fmqt_tcp_connect(port);
  fmqt_send_all(fd, req, cut);
  fmqt_abort(fd);
}

/* The bytes an upgraded client sends before its reset at stage s. */
static size_t bytes_before_reset(enum stage s, uint8_t *out) {
  static const char ping[] = "{\"type\":\"ping\"}";
  const uint8_t mask[4] = {9, 8, 7, 6};
  size_t n;
  switch (s) {
  case MID_FRAME_HEADER:
    out[0] = 0x81;
    return 1;
  case MID_LENGTH_16:
    return fmqt_ws_header_encoded(out, 0x81, 16, 300, mask) - 5;   /* one length byte */
  case MID_LENGTH_64:
    return fmqt_ws_header_encoded(out, 0x82, 64, 300, mask) - 9;   /* three of eight */
  case MID_MASK:
    return fmqt_ws_header(out, 0x81, 15, mask) - 2;
  case MID_PAYLOAD:
    return fmqt_ws_build(out, 0x81, 1, ping, sizeof ping - 1) - 5;
  case MID_FRAGMENTED_MESSAGE:
    n = fmqt_ws_build(out, 0x01, 1, "{\"type\":", 8);
    return n + fmqt_ws_build(out + n, 0x00, 1, "\"ping\"", 6);
  case AFTER_A_CLOSE_FRAME:
    return fmqt_ws_build(out, 0x88, 1, "\x03\xe8", 2);
  default:
    return 0;
  }
}

static void reset_at(struct watch *w, enum stage s, int round) {
  if (s <= BEFORE_THE_101) {
    reset_in_request(port_of(w), s);
    return;
  }
  int fd = fmqt_ws_connect(port_of(w), "/mqtt", "");
  if (s == AFTER_A_SUBSCRIBE) {
    /* Half of them go before the SUBACK. */
    fmqt_send_subscribe(fd, round % 2 ? NORMAL_TOPIC : "reset/#", 0, "r");
    if (round % 4 < 2) {
      fmqt_expect_subscribed(fd, round % 2 ? NORMAL_TOPIC : "reset/#", 0, "r", TIMEOUT_MS);
    }
  }
  uint8_t bytes[64];
  size_t n = bytes_before_reset(s, bytes);
  if (n > 0) {
    fmqt_send_all(fd, bytes, n);
  }
  fmqt_abort(fd);
}

/* A client reset at every stage of the handshake and of a frame: the
 * gateway drops each and the others notice nothing. */
static void resets_at_every_stage_are_survived(void **state) {
  struct watch w;
  watch_start(state, &w, "f. resets");
  for (int round = 0; keep_going(&w, round, RESETS_PER_STAGE, 1000); round++) {
    for (int s = 0; s < STAGES; s++) {
      reset_at(&w, (enum stage)s, round);
      watch_step(&w, 0);
    }
  }
  watch_finish(&w);
}

/* --- g. garbage and an oversized request line --- */

#define GARBAGE_TRIES 20
#define GARBAGE_MAX 64
#define LONG_LINE (100 * 1024)

/* Random bytes (never CR or LF: an empty line before the request line is
 * allowed) and then a valid upgrade request: 400. */
static void garbage_before_the_request_line_gets_400(void **state) {
  struct watch w;
  watch_start(state, &w, "g. garbage first");
  unsigned seed = (unsigned)fmqt_now_ms();
  unsigned r = seed;
  for (int t = 0; keep_going(&w, t, GARBAGE_TRIES, 1000); t++) {
    char buf[GARBAGE_MAX + 1024], key[25], head[4096];
    size_t n = 1 + (size_t)rand_r(&r) % GARBAGE_MAX;
    for (size_t i = 0; i < n; i++) {
      do {
        buf[i] = (char)(rand_r(&r) & 0xFF);
      } while (buf[i] == '\r' || buf[i] == '\n');
    }
    n += fmqt_ws_request(buf + n, sizeof buf - n, "/mqtt", "", key);
    int status = fmqt_http_refused(port_of(&w), buf, n, head, sizeof head);
    if (status != 400) {
      fail_msg("garbage try %d (seed %u): status %d, want 400", t, seed, status);
    }
  }
  watch_finish(&w);
}

/* A 100 KB request line is over websocket.max_header_size (16 KiB): 431,
 * at once (protocol-v1 section 1). */
static void a_100_kb_request_line_gets_431(void **state) {
  struct watch w;
  watch_start(state, &w, "g. 100 KB request line");
  static char req[LONG_LINE + 256];
  int n = snprintf(req, sizeof req, "GET /");
  memset(req + n, 'a', LONG_LINE);
  n += LONG_LINE;
  n += snprintf(req + n, sizeof req - (size_t)n, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  for (int i = 0; keep_going(&w, i, 3, 1000); i++) {
    char head[4096];
    int64_t start = fmqt_now_ms();
    assert_int_equal(fmqt_http_refused(port_of(&w), req, (size_t)n, head, sizeof head), 431);
    assert_true(fmqt_now_ms() - start < BOUND_MS);
  }
  watch_finish(&w);
}

/* --- h. "CONNECT \r" --- */

#define CONNECTS 5

/* The 9 bytes "CONNECT \r" once killed the sanitizer build (a memcpy from
 * NULL for llhttp's empty target span). To llhttp they are the start of a
 * request line with an empty target, so the request is incomplete: the
 * gateway stays up, serves the others, and answers 408 at the handshake
 * deadline (protocol-v1 section 1). */
static void connect_space_cr_is_survived_and_times_out(void **state) {
  struct watch w;
  watch_start(state, &w, "h. CONNECT \\r");
  int fds[CONNECTS];
  for (int i = 0; i < CONNECTS; i++) {
    fds[i] = fmqt_tcp_connect(port_of(&w));
    fmqt_send_all(fds[i], "CONNECT \r", 9);
  }
  assert_answered_at_the_deadline(&w, fds, CONNECTS, "", 0, 408);
  watch_finish(&w);
}

/* --- i. 10,000 connections --- */

#define CHURN 10000
#define CHURN_IN_FLIGHT 8
#define CHURN_UPGRADE_EVERY 20     /* these upgrade before closing */
#define CHURN_CLEAN_EVERY 500      /* these also close with a close frame */
#define CHURN_PACE_EVERY 96        /* the normal traffic steps PACE_MS */
#define CHURN_MS 150000

/* Opens and closes 10,000 connections, CHURN_IN_FLIGHT at a time, a few
 * upgraded first, while the normal clients work. */
static void ten_thousand_connections_come_and_go(void **state) {
  struct watch w;
  watch_start(state, &w, "i. 10,000 connections");
  int64_t deadline = fmqt_now_ms() + CHURN_MS;
  for (int done = 0; done < CHURN; done += CHURN_IN_FLIGHT) {
    int fds[CHURN_IN_FLIGHT];
    for (int k = 0; k < CHURN_IN_FLIGHT; k++) {
      fds[k] = fmqt_tcp_connect(port_of(&w));
      if ((done + k) % CHURN_UPGRADE_EVERY == 0) {
        fmqt_ws_upgrade(fds[k], "/mqtt", "");
      }
    }
    for (int k = 0; k < CHURN_IN_FLIGHT; k++) {
      if ((done + k) % CHURN_CLEAN_EVERY == 0) {
        fmqt_ws_close_cleanly(fds[k], 1000);
      } else {
        fmqt_close(fds[k]);
      }
    }
    watch_step(&w, (done + CHURN_IN_FLIGHT) % CHURN_PACE_EVERY == 0 ? PACE_MS : 0);
    if (fmqt_now_ms() > deadline) {
      fail_msg("only %d connections in %d ms", done, CHURN_MS);
    }
  }
  watch_finish(&w);
}

#define WITH(fn) cmocka_unit_test_prestate_setup_teardown(fn, fmqt_fixture_setup, \
                                                          fmqt_fixture_teardown, &hostile)

int main(void) {
  fmqt_raise_nofile(4096);
  const struct CMUnitTest tests[] = {
      WITH(slowloris_heads_get_408_at_the_handshake_deadline),
      WITH(stalled_frame_payloads_are_closed_at_the_idle_timeout),
      WITH(ping_flood_does_not_slow_the_others),
      WITH(empty_continuation_flood_is_closed_with_1009),
      WITH(hash_subscriber_that_never_reads_is_closed_with_1013),
      WITH(resets_at_every_stage_are_survived),
      WITH(garbage_before_the_request_line_gets_400),
      WITH(a_100_kb_request_line_gets_431),
      WITH(connect_space_cr_is_survived_and_times_out),
      WITH(ten_thousand_connections_come_and_go),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
