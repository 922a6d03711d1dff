/* rtt: one client subscribed to PREFIX/rtt (topic= on the upgrade URL)
 * publishes to that topic through the gateway, --messages times at --rate
 * per second (paced: one publish every 1/rate s), and times each message
 * from its JSON `publish` to its `message`: WebSocket -> gateway -> broker
 * -> gateway -> WebSocket. */

#include "bench.h"
#include "clients.h"
#include "hist.h"
#include "msg.h"
#include "payload.h"
#include "report.h"
#include "scenarios.h"
#include "seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum phase { CONNECTING, SENDING, DRAINING, DONE };

struct rtt {
  const struct fmqb_opts *o;
  uv_loop_t loop;
  struct fmqb_clients cl;
  uv_timer_t tick, pace;
  char topic[128];
  size_t topic_len;
  char target[768];
  uint32_t sent;
  uint64_t rx, stray, pubacks;
  struct fmqb_seq seq;
  struct fmqb_hist lat;
  uint64_t t_phase, t_send_start, progress_ns, progress;
  int timed_out;
  int phase, failed;
  const char *failure;
  struct fmqb_errors errors;
  struct fmqb_procmon gw;
};

static void finish(struct rtt *r);

static void target(void *data, uint32_t i, char *out, size_t cap) {
  struct rtt *r = data;
  (void)i;
  snprintf(out, cap, "%s", r->target);
}

static void on_open(struct fmqb_ws *ws) { (void)ws; }

static void send_one(struct rtt *r) {
  struct fmqb_ws *ws = &r->cl.ws[0];
  char pl[FMQB_PAYLOAD_MAX_HEAD + 65536];
  int qos = r->o->qos;
  uint64_t t = fmqb_now_ns();
  size_t plen = fmqb_payload_write(pl, r->o->size, 0, r->sent, t);
  size_t len = fmqb_msg_publish_len(r->topic_len, qos, qos > 0, r->sent, plen);
  uint8_t *dst = fmqb_ws_frame_begin(ws, FMQB_WS_TEXT, len);
  if (dst == NULL) {
    return;
  }
  fmqb_msg_publish((char *)dst, r->topic, r->topic_len, qos, qos > 0, r->sent, pl, plen);
  r->sent++;
}

static void on_pace(uv_timer_t *t) {
  struct rtt *r = t->data;
  if (r->phase != SENDING) {
    return;
  }
  /* Catch up if the loop was late, one timer period at a time. */
  uint32_t due = (uint32_t)(fmqb_secs(fmqb_now_ns() - r->t_send_start) * r->o->rate) + 1;
  while (r->sent < due && r->sent < r->o->messages) {
    send_one(r);
  }
  if (r->sent >= r->o->messages) {
    r->phase = DRAINING;
    r->progress_ns = fmqb_now_ns();
    uv_timer_stop(&r->pace);
  }
}

static void on_text(struct fmqb_ws *ws, const char *p, size_t n) {
  struct fmqb_clients *cl = fmqb_clients_of(ws);
  struct rtt *r = cl->cfg.data;
  struct fmqb_reply rp;
  uint64_t now = fmqb_now_ns();
  if (fmqb_reply_scan(p, n, &rp) != 0) {
    fmqb_errors_add(&r->errors, "unparsed", 8);
    return;
  }
  if (rp.type == FMQB_R_MESSAGE) {
    struct fmqb_stamp st;
    if (rp.payload == NULL || fmqb_payload_parse(rp.payload, rp.payload_len, &st) != 0) {
      r->stray++;
      return;
    }
    r->rx++;
    if (fmqb_seq_mark(&r->seq, st.s)) {
      fmqb_hist_add(&r->lat, now - st.t);
    }
  } else if (rp.type == FMQB_R_SUBSCRIBED) {
    fmqb_clients_ready(cl, ws);
  } else if (rp.type == FMQB_R_PUBACK) {
    r->pubacks++;
  } else if (rp.type == FMQB_R_ERROR) {
    fmqb_errors_add(&r->errors, rp.code ? rp.code : "?", rp.code ? rp.code_len : 1);
  }
}

static void on_closed(struct fmqb_ws *ws) {
  struct rtt *r = fmqb_clients_of(ws)->cfg.data;
  if (r->phase == SENDING || r->phase == DRAINING) {
    r->failed = 1;
    r->failure = "the gateway closed the connection";
    finish(r);
  }
}

static const struct fmqb_ws_ops ops = {on_open, on_text, NULL, NULL, on_closed};

static void settled(void *data) {
  struct rtt *r = data;
  if (r->cl.failed > 0) {
    r->failed = 1;
    r->failure = "could not connect or subscribe";
    finish(r);
    return;
  }
  fmqb_procmon_ready(&r->gw);
  fmqb_procmon_start(&r->gw);
  fmqb_say("round trip: %u publishes of %u bytes at %.0f/s, QoS %d", r->o->messages,
           r->o->size, r->o->rate, r->o->qos);
  r->phase = SENDING;
  r->t_phase = r->progress_ns = r->t_send_start = fmqb_now_ns();
  uint64_t period_ms = r->o->rate > 0 ? (uint64_t)(1000.0 / r->o->rate) : 0;
  uv_timer_start(&r->pace, on_pace, 0, period_ms ? period_ms : 1);
}

static void on_tick(uv_timer_t *t) {
  struct rtt *r = t->data;
  uint64_t now = fmqb_now_ns();
  if (r->phase == DONE) {
    return;
  }
  if (fmqb_secs(now - r->t_phase) > r->o->timeout) {
    fmqb_warn("timed out after %.0f s", r->o->timeout);
    r->timed_out = 1;
    if (r->phase == CONNECTING) {
      r->failed = 1;
      r->failure = "timed out before the subscription";
    }
    finish(r);
    return;
  }
  if (r->rx != r->progress) {
    r->progress = r->rx;
    r->progress_ns = now;
  }
  if (r->phase == DRAINING &&
      (r->seq.unique >= r->o->messages || fmqb_secs(now - r->progress_ns) > r->o->drain)) {
    finish(r);
  }
}

static void finish(struct rtt *r) {
  if (r->phase == DONE) {
    return;
  }
  fmqb_procmon_end(&r->gw);
  r->phase = DONE;
  uv_close((uv_handle_t *)&r->tick, NULL);
  uv_close((uv_handle_t *)&r->pace, NULL);
  fmqb_clients_close(&r->cl);
}

int fmqb_rtt(const struct fmqb_opts *o, struct fmqb_json *j) {
  struct rtt *r = fmqb_calloc(1, sizeof *r);
  r->o = o;
  uv_loop_init(&r->loop);
  fmqb_hist_init(&r->lat);
  fmqb_seq_init(&r->seq, o->messages);
  fmqb_procmon_init(&r->gw, o->gateway_pid);
  fmqb_procmon_base(&r->gw);
  r->topic_len = (size_t)snprintf(r->topic, sizeof r->topic, "%s/rtt", o->prefix);
  char enc[400];
  fmqb_url_topic(enc, sizeof enc, r->topic);
  snprintf(r->target, sizeof r->target, "%s?topic=%s", o->ws_path, enc);
  struct fmqb_clients_cfg cc = {
      .n = 1, .concurrency = 1, .per_source = o->per_source, .target = target, .settled = settled,
      .ops = &ops, .data = r};
  fmqb_clients_init(&r->cl, &r->loop, &o->ws, &cc);
  uv_timer_init(&r->loop, &r->tick);
  uv_timer_init(&r->loop, &r->pace);
  r->tick.data = r->pace.data = r;
  uv_timer_start(&r->tick, on_tick, 50, 50);
  r->t_phase = fmqb_now_ns();
  fmqb_clients_start(&r->cl);
  uv_run(&r->loop, UV_RUN_DEFAULT);

  int rc = 0;
  fmqb_clients_report(&r->cl, j);
  fmqb_json_bool(j, "timed_out", r->timed_out);
  if (r->failed) {
    rc = fmqb_fail(j, "%s", r->failure);
  }
  fmqb_json_u64(j, "messages", o->messages);
  fmqb_json_u64(j, "size", o->size);
  fmqb_json_num(j, "rate", o->rate);
  fmqb_json_i64(j, "qos", o->qos);
  fmqb_json_u64(j, "sent", r->sent);
  fmqb_json_u64(j, "delivered", r->rx);
  fmqb_json_u64(j, "lost", (uint64_t)r->sent - r->seq.unique);
  fmqb_json_u64(j, "duplicates", r->seq.dups);
  fmqb_json_u64(j, "stray", r->stray + r->seq.stray);
  fmqb_say("sent %u, received %llu: lost %llu, duplicates %u", r->sent,
           (unsigned long long)r->rx, (unsigned long long)(r->sent - r->seq.unique),
           r->seq.dups);
  if (o->qos > 0) {
    fmqb_json_u64(j, "pubacks", r->pubacks);
  }
  fmqb_report_latency(j, "rtt_us", "round trip WebSocket -> broker -> WebSocket", &r->lat);
  fmqb_report_errors(j, "errors", "errors received", &r->errors);
  fmqb_report_proc(j, "gateway", "gateway", &r->gw, r->rx, "round trips", 0);
  fmqb_clients_free(&r->cl);
  fmqb_seq_close(&r->seq);
  uv_loop_close(&r->loop);
  free(r);
  return rc;
}
