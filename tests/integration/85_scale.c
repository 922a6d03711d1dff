/* Fan-out at scale: 1000 WebSocket clients on one topic, 1000 QoS 0
 * messages from one mosquitto_pub -l run (payloads "0".."999"); every client
 * receives all of them, in order, exactly once. All sockets are read
 * without blocking under one poll(). */

#include "bridge_client.h"
#include "broker_proc.h"
#include "gateway_proc.h"
#include "proc.h"
#include "wsclient.h"

#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CLIENTS 1000
#define MESSAGES 1000
#define TOPIC "scale/t"
#define SUBSCRIBE_MS 30000
#define DELIVER_MS 45000
#define QUIET_MS 300

/* Mosquitto drops QoS 0 messages for a session whose socket backs up past
 * max_queued_messages (default 1000 packets): not here. */
static struct fmqt_fixture gateway = {.broker_conf = "max_queued_messages 0\n"};

struct client {
  int fd;
  int subscribed;
  int next;           /* the payload expected next */
};

/* The first frame seen for message i, already checked as JSON; other
 * clients' frames for i are compared to it byte for byte (encode-once makes
 * them equal) and parsed only when they differ. */
struct canon {
  uint8_t *bytes;
  size_t len;
};

static struct client clients[CLIENTS];
static struct canon canon[MESSAGES];

/* Checks one text frame as message `want` for client c. */
static void check_message(int c, const uint8_t *p, size_t len, int want) {
  struct canon *k = &canon[want];
  if (k->bytes != NULL && k->len == len && memcmp(k->bytes, p, len) == 0) {
    return;
  }
  json_error_t err;
  json_t *v = json_loadb((const char *)p, len, 0, &err);
  if (v == NULL) {
    fail_msg("client %d: bad JSON (%s): %.200s", c, err.text, (const char *)p);
  }
  char text[16];
  int n = snprintf(text, sizeof text, "%d", want);
  if (!fmqt_is_message(v, TOPIC)) {
    fail_msg("client %d: expected message %d, got %s", c, want, fmqt_dump(v));
  }
  const char *payload = fmqt_json_str(v, "payload");
  if (payload == NULL || strcmp(payload, text) != 0) {
    fail_msg("client %d: expected payload \"%s\" (in order, once each), got %s", c, text,
             fmqt_dump(v));
  }
  fmqt_assert_message(v, TOPIC, text, (size_t)n, 0, 0);
  json_decref(v);
  if (k->bytes == NULL) {
    k->bytes = malloc(len);
    assert_non_null(k->bytes);
    memcpy(k->bytes, p, len);
    k->len = len;
  }
}

/* Takes every complete frame buffered for client c: first its subscribed
 * reply, then the messages in order. */
static void drain(int c) {
  struct fmqt_frame_view v;
  while (fmqt_ws_take_frame(clients[c].fd, &v)) {
    if (v.opcode == 0x9 || v.opcode == 0xA) {
      continue;
    }
    if (v.opcode != 0x1) {
      fail_msg("client %d: a frame with opcode %u", c, v.opcode);
    }
    if (!clients[c].subscribed) {
      json_error_t err;
      json_t *j = json_loadb((const char *)v.payload, v.len, 0, &err);
      const char *type = j ? fmqt_json_str(j, "type") : NULL;
      if (type == NULL || strcmp(type, "subscribed") != 0) {
        fail_msg("client %d: expected subscribed, got %.200s", c, (const char *)v.payload);
      }
      json_decref(j);
      clients[c].subscribed = 1;
      continue;
    }
    if (clients[c].next >= MESSAGES) {
      fail_msg("client %d: more than %d messages: %.200s", c, MESSAGES,
               (const char *)v.payload);
    }
    check_message(c, v.payload, v.len, clients[c].next);
    clients[c].next++;
  }
}

/* Polls every socket until done() or the deadline; returns 1 when done. */
static int pump(struct pollfd *pfds, int (*done)(void), int64_t deadline) {
  while (!done()) {
    int left = fmqt_ms_until(deadline);
    if (left == 0) {
      return 0;
    }
    int r = poll(pfds, CLIENTS, left < 200 ? left : 200);
    if (r < 0) {
      continue;
    }
    for (int c = 0; c < CLIENTS && r > 0; c++) {
      if (pfds[c].revents == 0) {
        continue;
      }
      r--;
      if (fmqt_ws_read_ready(clients[c].fd) == FMQT_EOF) {
        fail_msg("client %d: the gateway closed the connection", c);
      }
      drain(c);
    }
  }
  return 1;
}

static int all_subscribed(void) {
  for (int c = 0; c < CLIENTS; c++) {
    if (!clients[c].subscribed) {
      return 0;
    }
  }
  return 1;
}

static int all_delivered(void) {
  for (int c = 0; c < CLIENTS; c++) {
    if (clients[c].next < MESSAGES) {
      return 0;
    }
  }
  return 1;
}

static int never(void) {
  return 0;
}

static void thousand_clients_get_a_thousand_messages_in_order(void **state) {
  struct fmqt_broker *b = fmqt_fixture_broker(state);
  assert_true(fmqt_raise_nofile(CLIENTS + 512) >= CLIENTS + 64);
  static struct pollfd pfds[CLIENTS];
  int64_t start = fmqt_now_ms();
  for (int c = 0; c < CLIENTS; c++) {
    clients[c].fd = fmqt_fixture_connect(state);
    pfds[c].fd = clients[c].fd;
    pfds[c].events = POLLIN;
    fmqt_send_subscribe(clients[c].fd, TOPIC, 0, NULL);
  }
  if (!pump(pfds, all_subscribed, start + SUBSCRIBE_MS)) {
    int n = 0;
    for (int c = 0; c < CLIENTS; c++) {
      n += clients[c].subscribed;
    }
    fail_msg("%d of %d clients subscribed within %d ms", n, CLIENTS, SUBSCRIBE_MS);
  }
  int64_t subscribed = fmqt_now_ms();

  static char lines[MESSAGES * 5];
  size_t n = 0;
  for (int i = 0; i < MESSAGES; i++) {
    n += (size_t)snprintf(lines + n, sizeof lines - n, "%d\n", i);
  }
  long cpu_before = fmqt_gateway_cpu_ms(fmqt_fixture_gateway(state));
  int64_t published = fmqt_now_ms();
  fmqt_mqtt_pub_lines(b, TOPIC, lines, n, 0, 20000);
  if (!pump(pfds, all_delivered, published + DELIVER_MS)) {
    long total = 0;
    int worst = 0;
    for (int c = 0; c < CLIENTS; c++) {
      total += clients[c].next;
      if (clients[c].next < clients[worst].next) {
        worst = c;
      }
    }
    fail_msg("%ld of %d messages delivered within %d ms; client %d got %d", total,
             CLIENTS * MESSAGES, DELIVER_MS, worst, clients[worst].next);
  }
  int64_t delivered = fmqt_now_ms();
  long cpu = fmqt_gateway_cpu_ms(fmqt_fixture_gateway(state)) - cpu_before;
  char needle[128];
  snprintf(needle, sizeof needle, "Received SUBSCRIBE from %s\n",
           fmqt_fixture_of(state)->client_id);
  size_t subscribes = fmqt_broker_log_count_since(b, 0, needle);
  /* Nothing more for anyone. */
  pump(pfds, never, fmqt_now_ms() + QUIET_MS);
  fprintf(stderr,
          "85_scale: %d clients connected and subscribed in %lld ms; %d messages to each "
          "(%d frames) delivered in %lld ms after mosquitto_pub started, using %ld ms of the "
          "gateway's CPU (%.2f us per frame); the broker got %zu SUBSCRIBE packets\n",
          CLIENTS, (long long)(subscribed - start), MESSAGES, CLIENTS * MESSAGES,
          (long long)(delivered - published), cpu, cpu * 1000.0 / (CLIENTS * MESSAGES),
          subscribes);

  for (int c = 0; c < CLIENTS; c++) {
    fmqt_close(clients[c].fd);
  }
  for (int i = 0; i < MESSAGES; i++) {
    free(canon[i].bytes);
    canon[i].bytes = NULL;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_prestate_setup_teardown(thousand_clients_get_a_thousand_messages_in_order,
                                               fmqt_fixture_setup, fmqt_fixture_teardown,
                                               &gateway),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
