#include "pub.h"

#include "bench.h"
#include "payload.h"

#include <string.h>

#define TURN_BYTES (64 * 1024)      /* built per loop turn at most */
#define MAX_BACKLOG (256 * 1024)    /* not yet taken by the kernel */

static void pump(struct fmqb_pub *p);

static void maybe_closed(struct fmqb_pub *p) {
  if (p->closing && p->handles == 0) {
    p->cfg.closed(p);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  struct fmqb_pub *p = h->data;
  p->handles--;
  maybe_closed(p);
}

static void on_up(struct fmqb_mqtt *m) {
  struct fmqb_pub *p = m->data;
  p->cfg.up(p);
}

static void on_publish(struct fmqb_mqtt *m, const char *topic, size_t tlen, const uint8_t *pl,
                       size_t n, int qos) {
  (void)m, (void)topic, (void)tlen, (void)pl, (void)n, (void)qos;
}

static void on_drained(struct fmqb_mqtt *m) { pump(m->data); }

static void on_mqtt_closed(struct fmqb_mqtt *m) {
  struct fmqb_pub *p = m->data;
  p->handles--;
  if (!p->closing) {
    /* The broker went away: the owner decides; close the rest. */
    fmqb_pub_close(p);
    return;
  }
  maybe_closed(p);
}

static const struct fmqb_mqtt_ops pub_ops = {on_up, NULL, on_publish, on_drained,
                                             on_mqtt_closed};

static void on_timer(uv_timer_t *t) { pump(t->data); }
static void on_idle(uv_idle_t *i) { pump(i->data); }

static void pump(struct fmqb_pub *p) {
  if (!p->running || p->pumping || p->closing || p->m.state != FMQB_MQTT_UP) {
    return;
  }
  p->pumping = 1;
  uint64_t now = fmqb_now_ns();
  uint64_t limit = p->cfg.total;
  if (p->cfg.rate > 0) {
    uint64_t due = (uint64_t)((double)(now - p->t_start) * p->cfg.rate / 1e9) + 1;
    if (due < limit) {
      limit = due;
    }
  }
  size_t built = 0;
  char topic[256];
  while (p->sent < limit && built < TURN_BYTES && fmqb_mqtt_backlog(&p->m) < MAX_BACKLOG) {
    uint32_t c, s;
    size_t tlen = p->cfg.pick(p->cfg.data, p->sent, topic, &c, &s);
    uint64_t t = fmqb_now_ns();
    size_t plen = fmqb_payload_len(p->cfg.size, c, s, t);
    uint8_t *dst = fmqb_mqtt_publish_begin(&p->m, topic, tlen, plen);
    fmqb_payload_write((char *)dst, p->cfg.size, c, s, t);
    p->sent++;
    built += plen + tlen + 5;
    if (p->sent == 1) {
      p->t_start = t;
    }
    p->t_end = t;
  }
  fmqb_mqtt_flush(&p->m);
  /* More is due now and the socket has room: go on next turn. */
  if (p->sent < limit && fmqb_mqtt_backlog(&p->m) < MAX_BACKLOG) {
    uv_idle_start(&p->idle, on_idle);
  } else {
    uv_idle_stop(&p->idle);
  }
  if (p->sent == p->cfg.total && !p->finished && fmqb_mqtt_backlog(&p->m) == 0) {
    p->finished = 1;
    uv_timer_stop(&p->timer);
    p->cfg.done(p);
  }
  p->pumping = 0;
}

int fmqb_pub_init(struct fmqb_pub *p, uv_loop_t *loop, const struct sockaddr_in *broker,
                  const char *client_id, const struct fmqb_pub_cfg *cfg) {
  memset(p, 0, sizeof *p);
  p->cfg = *cfg;
  uv_timer_init(loop, &p->timer);
  uv_idle_init(loop, &p->idle);
  p->timer.data = p->idle.data = p;
  p->m.ops = &pub_ops;
  p->m.data = p;
  p->handles = 3;
  int rc = fmqb_mqtt_connect(&p->m, loop, broker, client_id, 60);
  if (rc != 0) {
    p->handles = 2;
    p->closing = 1;
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    uv_close((uv_handle_t *)&p->idle, on_handle_closed);
  }
  return rc;
}

void fmqb_pub_start(struct fmqb_pub *p) {
  p->running = 1;
  p->t_start = fmqb_now_ns();
  if (p->cfg.total == 0) {
    p->finished = 1;
    p->cfg.done(p);
    return;
  }
  if (p->cfg.rate > 0) {
    uv_timer_start(&p->timer, on_timer, 1, 1);
  }
  pump(p);
}

void fmqb_pub_close(struct fmqb_pub *p) {
  if (p->closing) {
    return;
  }
  p->closing = 1;
  uv_close((uv_handle_t *)&p->timer, on_handle_closed);
  uv_close((uv_handle_t *)&p->idle, on_handle_closed);
  if (p->m.state != FMQB_MQTT_CLOSED) {
    fmqb_mqtt_close(&p->m);
  }
}
