/* churn: C clients, each in a loop for --duration seconds: connect,
 * upgrade, subscribe to F topics (JSON subscribe, waiting for every
 * `subscribed`), send a close frame, wait for the gateway's close and TCP
 * close, start again. Client w's topics are PREFIX/churn/w/0 .. F-1, so the
 * gateway's broker subscriptions come and go with each cycle. Cycles are
 * counted per second (to see whether the rate stays flat). Once the run is
 * over, one fresh client subscribes a fresh topic: how long its
 * `subscribed` takes says whether the gateway's broker side is still
 * backed up after the churn. Source addresses rotate over 127.0.0.2-17
 * so closed connections' ports never run short. */

#include "bench.h"
#include "msg.h"
#include "net.h"
#include "report.h"
#include "scenarios.h"
#include "ws_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOURCES 16
#define CYCLE_TIMEOUT_S 10.0
#define PROBE_TIMEOUT_S 30.0

enum phase { RUNNING, STOPPING, PROBING, DONE };

struct churn;

struct worker {
  struct fmqb_ws ws;
  struct churn *c;
  uint32_t index;
  uint32_t answered;            /* subscribes answered this cycle */
  uint64_t t_cycle;
  int busy, timed_out;
};

struct churn {
  const struct fmqb_opts *o;
  uv_loop_t loop;
  struct fmqb_ws_ctx ctx;
  struct worker *w;             /* owned: C */
  struct worker probe;
  uint32_t nw, active;
  uv_timer_t tick;
  uint64_t t_start, t_end, t_probe, t_probe_sub;
  uint64_t *buckets;            /* owned: cycles completed in each second */
  size_t nbuckets;
  uint64_t cycles, handshakes, started, src;
  double probe_ms, probe_sub_ms;
  int phase, probe_ok;
  struct fmqb_errors errors;
  struct fmqb_procmon gw;
};

static void start_cycle(struct worker *w);
static void start_probe(struct churn *c);
static void finish(struct churn *c);

static void topic_of(const struct churn *c, const struct worker *w, uint32_t i, char *out,
                     size_t cap) {
  if (w == &c->probe) {
    snprintf(out, cap, "%s/churn-probe", c->o->prefix);
  } else {
    snprintf(out, cap, "%s/churn/%u/%u", c->o->prefix, w->index, i);
  }
}

static void on_open(struct fmqb_ws *ws) {
  struct worker *w = ws->data;
  struct churn *c = w->c;
  if (w == &c->probe) {
    char topic[160], msg[400];
    topic_of(c, w, 0, topic, sizeof topic);
    c->t_probe_sub = fmqb_now_ns();
    fmqb_ws_send_text(ws, msg, fmqb_msg_subscribe(msg, sizeof msg, topic, 0, 1));
    return;
  }
  c->handshakes++;
  for (uint32_t i = 0; i < c->o->subs; i++) {
    char topic[160], msg[400];
    topic_of(c, w, i, topic, sizeof topic);
    fmqb_ws_send_text(ws, msg, fmqb_msg_subscribe(msg, sizeof msg, topic, 0, i + 1));
  }
  if (c->o->subs == 0) {
    fmqb_ws_close(ws, 1000);
  }
}

static void on_text(struct fmqb_ws *ws, const char *p, size_t n) {
  struct worker *w = ws->data;
  struct churn *c = w->c;
  struct fmqb_reply r;
  if (fmqb_reply_scan(p, n, &r) != 0) {
    fmqb_errors_add(&c->errors, "unparsed", 8);
    return;
  }
  if (r.type == FMQB_R_ERROR) {
    fmqb_errors_add(&c->errors, r.code ? r.code : "?", r.code ? r.code_len : 1);
  } else if (r.type != FMQB_R_SUBSCRIBED) {
    return;
  }
  if (w == &c->probe) {
    uint64_t now = fmqb_now_ns();
    c->probe_ok = r.type == FMQB_R_SUBSCRIBED;
    c->probe_ms = (double)(now - c->t_probe) / 1e6;
    c->probe_sub_ms = (double)(now - c->t_probe_sub) / 1e6;
    fmqb_ws_close(ws, 1000);
    return;
  }
  if (++w->answered == c->o->subs) {
    fmqb_ws_close(ws, 1000);
  }
}

static void on_closed(struct fmqb_ws *ws) {
  struct worker *w = ws->data;
  struct churn *c = w->c;
  w->busy = 0;
  if (w == &c->probe) {
    finish(c);
    return;
  }
  uint64_t now = fmqb_now_ns();
  if (ws->end == FMQB_WS_END_CLEAN && w->answered == c->o->subs) {
    c->cycles++;
    size_t b = (size_t)((now - c->t_start) / 1000000000u);
    if (b < c->nbuckets) {
      c->buckets[b]++;
    }
  } else {
    char why[48];
    if (w->timed_out) {
      snprintf(why, sizeof why, "cycle_timeout");
    } else if (ws->end == FMQB_WS_END_CONNECT) {
      snprintf(why, sizeof why, "connect_%s", uv_err_name(ws->err));
    } else if (ws->end == FMQB_WS_END_REFUSED) {
      snprintf(why, sizeof why, "http_%u", ws->status);
    } else if (ws->end == FMQB_WS_END_PROTOCOL) {
      snprintf(why, sizeof why, "protocol");
    } else if (ws->close_rcvd && !ws->close_sent) {
      snprintf(why, sizeof why, "closed_by_gateway_%u", ws->status);
    } else {
      snprintf(why, sizeof why, "eof");
    }
    fmqb_errors_add(&c->errors, why, strlen(why));
  }
  if (c->phase == RUNNING) {
    start_cycle(w);
    return;
  }
  if (--c->active == 0 && c->phase == STOPPING) {
    start_probe(c);
  }
}

static const struct fmqb_ws_ops ops = {on_open, on_text, NULL, NULL, on_closed};

static int connect_worker(struct churn *c, struct worker *w) {
  struct sockaddr_in src;
  memset(&w->ws, 0, sizeof w->ws);
  w->ws.ops = &ops;
  w->ws.data = w;
  w->answered = 0;
  w->timed_out = 0;
  w->t_cycle = fmqb_now_ns();
  fmqb_source_addr((uint32_t)(c->src++ % SOURCES), 1, &src);
  w->busy = 1;
  c->started++;
  int rc = fmqb_ws_connect(&w->ws, &c->ctx, &src, c->o->ws_path);
  if (rc != 0) {
    w->busy = 0;
    fmqb_errors_add(&c->errors, "socket", 6);
  }
  return rc;
}

static void start_cycle(struct worker *w) {
  if (connect_worker(w->c, w) != 0 && --w->c->active == 0) {
    finish(w->c);
  }
}

static void start_probe(struct churn *c) {
  c->phase = PROBING;
  fmqb_procmon_end(&c->gw);
  c->t_probe = fmqb_now_ns();
  if (connect_worker(c, &c->probe) != 0) {
    finish(c);
  }
}

static void on_tick(uv_timer_t *t) {
  struct churn *c = t->data;
  uint64_t now = fmqb_now_ns();
  if (c->phase == RUNNING && fmqb_secs(now - c->t_start) >= c->o->duration) {
    c->phase = STOPPING;
    c->t_end = now;
    if (c->active == 0) {
      start_probe(c);
      return;
    }
  }
  for (uint32_t i = 0; i < c->nw; i++) {
    struct worker *w = &c->w[i];
    if (w->busy && fmqb_secs(now - w->t_cycle) > CYCLE_TIMEOUT_S) {
      w->timed_out = 1;
      fmqb_ws_abort(&w->ws);
    }
  }
  if (c->phase == PROBING && c->probe.busy && fmqb_secs(now - c->t_probe) > PROBE_TIMEOUT_S) {
    fmqb_ws_abort(&c->probe.ws);
  }
}

static void finish(struct churn *c) {
  if (c->phase == DONE) {
    return;
  }
  if (c->phase != PROBING) {
    fmqb_procmon_end(&c->gw);
  }
  c->phase = DONE;
  uv_close((uv_handle_t *)&c->tick, NULL);
  fmqb_ws_ctx_close(&c->ctx);
}

int fmqb_churn(const struct fmqb_opts *o, struct fmqb_json *j) {
  struct churn *c = fmqb_calloc(1, sizeof *c);
  c->o = o;
  c->nw = o->concurrency;
  uv_loop_init(&c->loop);
  fmqb_procmon_init(&c->gw, o->gateway_pid);
  fmqb_procmon_base(&c->gw);
  fmqb_procmon_ready(&c->gw);
  fmqb_procmon_start(&c->gw);
  fmqb_ws_ctx_init(&c->ctx, &c->loop, &o->ws);
  c->w = fmqb_calloc(c->nw, sizeof *c->w);
  c->nbuckets = (size_t)o->duration + 2;
  c->buckets = fmqb_calloc(c->nbuckets, sizeof *c->buckets);
  uv_timer_init(&c->loop, &c->tick);
  c->tick.data = c;
  uv_timer_start(&c->tick, on_tick, 20, 20);
  c->probe.c = c;
  c->probe.index = UINT32_MAX;
  c->probe_ms = c->probe_sub_ms = -1;
  fmqb_say("churn: %u clients, %u subscriptions per cycle, for %.1f s", c->nw, o->subs,
           o->duration);
  c->t_start = fmqb_now_ns();
  c->active = c->nw;
  for (uint32_t i = 0; i < c->nw; i++) {
    c->w[i].c = c;
    c->w[i].index = i;
    start_cycle(&c->w[i]);
  }
  uv_run(&c->loop, UV_RUN_DEFAULT);

  double secs = fmqb_secs((c->t_end ? c->t_end : fmqb_now_ns()) - c->t_start);
  size_t full = (size_t)secs;                 /* whole seconds in the run */
  if (full > c->nbuckets) {
    full = c->nbuckets;
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  for (size_t i = 0; i < full; i++) {
    lo = c->buckets[i] < lo ? c->buckets[i] : lo;
    hi = c->buckets[i] > hi ? c->buckets[i] : hi;
  }
  if (full == 0) {
    lo = 0;
  }
  fmqb_json_u64(j, "clients", c->nw);
  fmqb_json_u64(j, "subs_per_cycle", o->subs);
  fmqb_json_num(j, "seconds", secs);
  fmqb_json_u64(j, "cycles", c->cycles);
  fmqb_json_num(j, "cycles_per_s", secs > 0 ? (double)c->cycles / secs : 0);
  fmqb_json_u64(j, "handshakes", c->handshakes);
  fmqb_json_num(j, "handshakes_per_s", secs > 0 ? (double)c->handshakes / secs : 0);
  fmqb_json_u64_array(j, "cycles_by_second", c->buckets, full);
  fmqb_json_u64(j, "cycles_per_s_min", lo);
  fmqb_json_u64(j, "cycles_per_s_max", hi);
  fmqb_say("cycles: %llu in %.2f s (%.0f/s); handshakes %llu (%.0f/s)",
           (unsigned long long)c->cycles, secs, secs > 0 ? (double)c->cycles / secs : 0,
           (unsigned long long)c->handshakes, secs > 0 ? (double)c->handshakes / secs : 0);
  char line[4096];
  size_t n = (size_t)snprintf(line, sizeof line, "cycles per second:");
  for (size_t i = 0; i < full && n < sizeof line - 24; i++) {
    n += (size_t)snprintf(line + n, sizeof line - n, " %llu", (unsigned long long)c->buckets[i]);
  }
  fmqb_say("%s (min %llu, max %llu)", line, (unsigned long long)lo, (unsigned long long)hi);
  fmqb_report_errors(j, "errors", "errors", &c->errors);
  if (c->probe_ok) {
    fmqb_say("after the run, a new client: connected and subscribed in %.1f ms "
             "(subscribe -> subscribed %.1f ms)", c->probe_ms, c->probe_sub_ms);
  } else {
    fmqb_say("after the run, a new client got no `subscribed` within %.0f s", PROBE_TIMEOUT_S);
  }
  fmqb_json_bool(j, "probe_ok", c->probe_ok);
  fmqb_json_num(j, "probe_ms", c->probe_ms);
  fmqb_json_num(j, "probe_subscribe_ms", c->probe_sub_ms);
  fmqb_report_proc(j, "gateway", "gateway", &c->gw, c->cycles, "cycles", 0);
  int rc = 0;
  if (c->handshakes == 0) {
    rc = fmqb_fail(j, "no connection could be made");
  }
  free(c->w);
  free(c->buckets);
  uv_loop_close(&c->loop);
  free(c);
  return rc;
}
