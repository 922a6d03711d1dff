/* Limits: max_connections (503 before the upgrade, counting connections
 * still in the handshake) and the per-connection outbound queue (close 1013
 * for a client that does not read). */

#include "gateway_proc.h"
#include "wsclient.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#define TIMEOUT_MS 5000
#define RETRY_MS 3000
#define FLOOD_BYTES (40u << 20)
#define STALL_MS 2000
#define GOOD_CLIENT_EVERY (1u << 20)
#define PING_PAYLOAD 125

static struct fmqt_fixture two_connections = {
    .env = (const char *const[]){"FERRYMQ_LIMITS_MAX_CONNECTIONS=2", NULL}};
/* A long close timeout: the gateway waits for the slow client's close. */
static struct fmqt_fixture small_queue = {
    .env = (const char *const[]){"FERRYMQ_WEBSOCKET_OUTBOUND_QUEUE_LIMIT=16KiB",
                                 "FERRYMQ_WEBSOCKET_CLOSE_TIMEOUT=30s", NULL}};

/* Sends an upgrade request on a new connection and returns the status; the
 * connection is returned in *fd when it was upgraded, closed otherwise. */
static int try_upgrade(uint16_t port, int *fd) {
  char req[1024], key[25], head[4096];
  size_t n = fmqt_ws_request(req, sizeof req, "/mqtt", "", key);
  *fd = fmqt_tcp_connect(port);
  fmqt_send_all(*fd, req, n);
  int status = fmqt_http_read_head(*fd, head, sizeof head, TIMEOUT_MS);
  if (status != 101) {
    fmqt_close(*fd);
    *fd = -1;
  }
  return status;
}

static void assert_refused_with_503(uint16_t port) {
  char req[1024], key[25], head[4096];
  size_t n = fmqt_ws_request(req, sizeof req, "/mqtt", "", key);
  assert_int_equal(fmqt_http_refused(port, req, n, head, sizeof head), 503);
}

/* Connections that never finish their request hold a slot too, until the
 * handshake deadline; a refusal at the limit does not wait for a request. */
static void unfinished_handshakes_count_against_the_limit(void **state) {
  uint16_t port = fmqt_fixture_port(state);
  static const char partial[] = "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  int a = fmqt_tcp_connect(port);
  int b = fmqt_tcp_connect(port);
  fmqt_send_all(a, partial, sizeof partial - 1);
  fmqt_send_all(b, partial, sizeof partial - 1);
  assert_refused_with_503(port);

  char head[4096];
  int c = fmqt_tcp_connect(port);
  assert_int_equal(fmqt_http_read_head(c, head, sizeof head, TIMEOUT_MS), 503);
  fmqt_close(c);

  fmqt_close(a);
  int ws = -1;
  int64_t deadline = fmqt_now_ms() + RETRY_MS;
  int status;
  while ((status = try_upgrade(port, &ws)) == 503 && fmqt_now_ms() < deadline) {
    poll(NULL, 0, 50);
  }
  assert_int_equal(status, 101);
  fmqt_ws_close_cleanly(ws, 1000);
  fmqt_close(b);
}

static void connections_over_the_limit_get_503(void **state) {
  uint16_t port = fmqt_fixture_port(state);
  int first = fmqt_ws_connect(port, "/mqtt", "");
  int second = fmqt_ws_connect(port, "/mqtt", "");
  assert_refused_with_503(port);
  assert_refused_with_503(port);
  fmqt_ws_assert_ping(first, "1", 1, TIMEOUT_MS);
  fmqt_ws_assert_ping(second, "2", 1, TIMEOUT_MS);

  /* A closed connection frees its slot as soon as the gateway closed it. */
  fmqt_ws_close_cleanly(first, 1000);
  int third = fmqt_ws_connect(port, "/mqtt", "");
  assert_refused_with_503(port);

  /* So does one the client dropped with a RST; the gateway notices soon. */
  fmqt_abort(second);
  int fourth = -1;
  int64_t deadline = fmqt_now_ms() + RETRY_MS;
  int status;
  while ((status = try_upgrade(port, &fourth)) == 503 && fmqt_now_ms() < deadline) {
    poll(NULL, 0, 50);
  }
  if (status != 101) {
    fail_msg("no slot %d ms after a client dropped: status %d", RETRY_MS, status);
  }
  fmqt_ws_assert_ping(fourth, "4", 1, TIMEOUT_MS);
  fmqt_ws_close_cleanly(third, 1000);
  fmqt_ws_close_cleanly(fourth, 1000);
}

/* Floods fd (non-blocking) with pings without reading until FLOOD_BYTES are
 * sent, sends stall for STALL_MS, or the gateway drops the connection.
 * Every GOOD_CLIENT_EVERY bytes, checks that good still gets its pongs. */
static void flood_with_pings(int fd, int good) {
  uint8_t payload[PING_PAYLOAD], batch[64 * (PING_PAYLOAD + 6)];
  memset(payload, 'p', sizeof payload);
  size_t batch_len = 0;
  for (int i = 0; i < 64; i++) {
    batch_len += fmqt_ws_build(batch + batch_len, 0x89, 1, payload, sizeof payload);
  }
  assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
  size_t total = 0, offset = 0, next_check = GOOD_CLIENT_EVERY;
  while (total < FLOOD_BYTES) {
    ssize_t w = send(fd, batch + offset, batch_len - offset, MSG_NOSIGNAL);
    if (w > 0) {
      total += (size_t)w;
      offset = (offset + (size_t)w) % batch_len;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      if (poll(&p, 1, STALL_MS) == 0) {
        break;
      }
    } else if (errno == EPIPE || errno == ECONNRESET) {
      break;
    } else if (errno != EINTR) {
      fail_msg("send: %s", strerror(errno));
    }
    if (total >= next_check) {
      fmqt_ws_assert_ping(good, "good", 4, TIMEOUT_MS);
      next_check += GOOD_CLIENT_EVERY;
    }
  }
  /* End on a frame boundary: a close frame sent next must not be read as
   * the rest of a ping's payload. */
  size_t frame = PING_PAYLOAD + 6, rest = (frame - offset % frame) % frame;
  if (rest > 0) {
    (void)fmqt_try_send(fd, batch + offset, rest);
  }
}

static void slow_reader_gets_1013_and_others_are_served(void **state) {
  uint16_t port = fmqt_fixture_port(state);
  int slow = fmqt_ws_upgrade(fmqt_tcp_connect_rcvbuf(port, 4096), "/mqtt", "");
  int good = fmqt_ws_connect(port, "/mqtt", "");
  flood_with_pings(slow, good);

  /* Pongs first, then close 1013, then nothing but EOF after our close. */
  size_t pongs = 0;
  for (;;) {
    struct fmqt_frame f;
    int r = fmqt_ws_recv(slow, &f, TIMEOUT_MS);
    if (r != 0) {
      fail_msg("%s after %zu pongs, no close 1013", r == FMQT_EOF ? "EOF" : "timeout", pongs);
    }
    if (f.opcode == 0x8) {
      int code = f.len >= 2 ? f.payload[0] << 8 | f.payload[1] : 1005;
      fmqt_frame_free(&f);
      assert_int_equal(code, 1013);
      break;
    }
    if (f.opcode != 0xA || f.len != PING_PAYLOAD) {
      fail_msg("frame %zu: opcode %u with %zu bytes, want a pong", pongs, f.opcode, f.len);
    }
    fmqt_frame_free(&f);
    pongs++;
  }
  fmqt_ws_send_close(slow, 1013, NULL);
  struct fmqt_frame after;
  assert_int_equal(fmqt_ws_recv(slow, &after, TIMEOUT_MS), FMQT_EOF);
  fmqt_close(slow);

  fmqt_ws_assert_ping(good, "still good", 10, TIMEOUT_MS);
  fmqt_ws_close_cleanly(good, 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(unfinished_handshakes_count_against_the_limit,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &two_connections),
      cmocka_unit_test_prestate_setup_teardown(connections_over_the_limit_get_503,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &two_connections),
      cmocka_unit_test_prestate_setup_teardown(slow_reader_gets_1013_and_others_are_served,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &small_queue),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
