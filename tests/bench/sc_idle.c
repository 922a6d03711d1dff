/* idle: N connections, each subscribed (topic= on the upgrade URL: one
 * shared topic, or with --distinct one topic per connection), held open for
 * --duration seconds while every connection pings every --ping-interval
 * seconds (WebSocket pings, or {"type":"ping"} with --ping json). Reports
 * the gateway's RSS growth per connection (RSS once all are subscribed,
 * minus RSS before the first connected, over N), the pongs, and whether
 * every connection was held to the end. */

#include "bench.h"
#include "clients.h"
#include "msg.h"
#include "report.h"
#include "scenarios.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum phase { CONNECTING, HOLDING, DONE };

struct idle {
  const struct fmqb_opts *o;
  uv_loop_t loop;
  struct fmqb_clients cl;
  uv_timer_t tick, ping;
  char topic[128];
  uint64_t pings, pongs, messages;
  uint64_t t_phase, t_hold;
  uint32_t held;
  int phase, failed;
  const char *failure;
  struct fmqb_errors closed;    /* connections that ended during the hold, by cause */
  struct fmqb_errors errors;
  struct fmqb_procmon gw;
};

static void finish(struct idle *d);

static void target(void *data, uint32_t i, char *out, size_t cap) {
  struct idle *d = data;
  char topic[160], enc[480];
  if (d->o->distinct) {
    snprintf(topic, sizeof topic, "%s/%u", d->topic, i);
  } else {
    snprintf(topic, sizeof topic, "%s", d->topic);
  }
  fmqb_url_topic(enc, sizeof enc, topic);
  snprintf(out, cap, "%s?topic=%s", d->o->ws_path, enc);
}

static void on_open(struct fmqb_ws *ws) { (void)ws; }

static void on_text(struct fmqb_ws *ws, const char *p, size_t n) {
  struct fmqb_clients *cl = fmqb_clients_of(ws);
  struct idle *d = cl->cfg.data;
  struct fmqb_reply r;
  if (fmqb_reply_scan(p, n, &r) != 0) {
    fmqb_errors_add(&d->errors, "unparsed", 8);
    return;
  }
  if (r.type == FMQB_R_SUBSCRIBED) {
    fmqb_clients_ready(cl, ws);
  } else if (r.type == FMQB_R_PONG) {
    d->pongs++;
  } else if (r.type == FMQB_R_MESSAGE) {
    d->messages++;
  } else if (r.type == FMQB_R_ERROR) {
    fmqb_errors_add(&d->errors, r.code ? r.code : "?", r.code ? r.code_len : 1);
  }
}

static void on_pong(struct fmqb_ws *ws) {
  struct idle *d = fmqb_clients_of(ws)->cfg.data;
  d->pongs++;
}

static void on_closed(struct fmqb_ws *ws) {
  struct idle *d = fmqb_clients_of(ws)->cfg.data;
  if (d->phase != HOLDING) {
    return;
  }
  char why[32];
  if (ws->close_rcvd) {
    snprintf(why, sizeof why, "close_%u", ws->status);
  } else {
    snprintf(why, sizeof why, "%s", ws->end == FMQB_WS_END_PROTOCOL ? "protocol" : "eof");
  }
  fmqb_errors_add(&d->closed, why, strlen(why));
}

static const struct fmqb_ws_ops ops = {on_open, on_text, on_pong, NULL, on_closed};

static void on_ping(uv_timer_t *t) {
  struct idle *d = t->data;
  static const char json_ping[] = "{\"type\":\"ping\"}";
  for (uint32_t i = 0; i < d->cl.cfg.n; i++) {
    struct fmqb_ws *ws = &d->cl.ws[i];
    if (ws->state != FMQB_WS_OPEN) {
      continue;
    }
    int rc = d->o->ping_json ? fmqb_ws_send_text(ws, json_ping, sizeof json_ping - 1)
                             : fmqb_ws_send_ping(ws);
    d->pings += rc == 0;
  }
}

static void settled(void *data) {
  struct idle *d = data;
  if (d->cl.failed > 0) {
    d->failed = 1;
    d->failure = "some connections could not connect or subscribe";
    finish(d);
    return;
  }
  fmqb_procmon_ready(&d->gw);
  fmqb_procmon_start(&d->gw);
  fmqb_say("%u connections subscribed; holding them %.1f s, %s pings every %.1f s",
           d->cl.cfg.n, d->o->duration, d->o->ping_json ? "JSON" : "WebSocket",
           d->o->ping_interval);
  d->phase = HOLDING;
  d->t_hold = fmqb_now_ns();
  if (d->o->ping_interval > 0) {
    uint64_t ms = (uint64_t)(d->o->ping_interval * 1000);
    uv_timer_start(&d->ping, on_ping, ms ? ms : 1, ms ? ms : 1);
  }
}

static void on_tick(uv_timer_t *t) {
  struct idle *d = t->data;
  uint64_t now = fmqb_now_ns();
  if (d->phase == CONNECTING && fmqb_secs(now - d->t_phase) > d->o->timeout) {
    d->failed = 1;
    d->failure = "timed out before every connection was subscribed";
    finish(d);
  } else if (d->phase == HOLDING && fmqb_secs(now - d->t_hold) >= d->o->duration) {
    finish(d);
  }
}

static void finish(struct idle *d) {
  if (d->phase == DONE) {
    return;
  }
  fmqb_procmon_end(&d->gw);
  if (d->phase == HOLDING) {
    for (uint32_t i = 0; i < d->cl.cfg.n; i++) {
      d->held += d->cl.ws[i].state == FMQB_WS_OPEN;
    }
  }
  d->phase = DONE;
  uv_close((uv_handle_t *)&d->tick, NULL);
  uv_close((uv_handle_t *)&d->ping, NULL);
  fmqb_clients_close(&d->cl);
}

int fmqb_idle(const struct fmqb_opts *o, struct fmqb_json *j) {
  struct idle *d = fmqb_calloc(1, sizeof *d);
  d->o = o;
  uv_loop_init(&d->loop);
  fmqb_procmon_init(&d->gw, o->gateway_pid);
  fmqb_procmon_base(&d->gw);
  snprintf(d->topic, sizeof d->topic, "%s/idle", o->prefix);
  struct fmqb_clients_cfg cc = {
      .n = o->clients, .concurrency = o->concurrency, .per_source = o->per_source,
      .target = target, .settled = settled, .ops = &ops, .data = d};
  fmqb_clients_init(&d->cl, &d->loop, &o->ws, &cc);
  uv_timer_init(&d->loop, &d->tick);
  uv_timer_init(&d->loop, &d->ping);
  d->tick.data = d->ping.data = d;
  uv_timer_start(&d->tick, on_tick, 50, 50);
  d->t_phase = fmqb_now_ns();
  fmqb_clients_start(&d->cl);
  uv_run(&d->loop, UV_RUN_DEFAULT);

  int rc = 0;
  fmqb_clients_report(&d->cl, j);
  if (d->failed) {
    rc = fmqb_fail(j, "%s", d->failure);
  } else {
    fmqb_json_u64(j, "connections", o->clients);
    fmqb_json_u64(j, "held", d->held);
    fmqb_json_num(j, "duration_s", o->duration);
    fmqb_json_str(j, "ping", o->ping_json ? "json" : "ws");
    fmqb_json_num(j, "ping_interval_s", o->ping_interval);
    fmqb_json_u64(j, "pings", d->pings);
    fmqb_json_u64(j, "pongs", d->pongs);
    fmqb_json_u64(j, "messages", d->messages);
    fmqb_say("held %u of %u connections to the end; pings %llu, pongs %llu", d->held,
             o->clients, (unsigned long long)d->pings, (unsigned long long)d->pongs);
    fmqb_report_errors(j, "closed_during_hold", "connections closed during the hold",
                       &d->closed);
    fmqb_report_errors(j, "errors", "errors received", &d->errors);
    fmqb_report_proc(j, "gateway", "gateway", &d->gw, 0, "", o->clients);
  }
  fmqb_clients_free(&d->cl);
  uv_loop_close(&d->loop);
  free(d);
  return rc;
}
