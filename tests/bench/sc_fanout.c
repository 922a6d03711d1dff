/* fanout and slow: one MQTT publisher, N WebSocket subscribers of one topic
 * (subscribed by topic= on the upgrade URL). The publisher starts once every
 * subscriber has its `subscribed`, sends M messages, and the run ends when
 * every reader has all of them or nothing arrived for --drain seconds.
 * slow: --slow-percent of the subscribers stop reading as soon as they are
 * subscribed; the figures are the others' (readers'). After the run the slow
 * ones read again for a moment, to count how the gateway treated them
 * (closed with 1013, or still open). */

#include "bench.h"
#include "clients.h"
#include "hist.h"
#include "msg.h"
#include "payload.h"
#include "pub.h"
#include "report.h"
#include "scenarios.h"
#include "seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum phase { CONNECTING, PUBLISHING, DRAINING, SLOW_DRAIN, DONE };

struct fanout {
  const struct fmqb_opts *o;
  uv_loop_t loop;
  struct fmqb_clients cl;
  struct fmqb_pub pub;
  uv_timer_t tick;
  char topic[160];
  size_t topic_len;
  char target[768];
  uint32_t n, nslow;
  uint8_t *slow;                    /* per subscriber */
  struct fmqb_seq *seq;             /* per subscriber */
  struct fmqb_hist lat;             /* readers: publish -> WebSocket receipt */
  uint64_t rx, slow_rx, stray;      /* messages received (readers, slow ones), not ours */
  uint64_t t_first_rx, t_last_rx, t_phase;
  uint64_t progress_rx, progress_ns;
  uint32_t readers_closed;          /* readers the gateway closed during the run */
  uint32_t slow_closed, slow_1013;
  uint64_t t_said;
  int timed_out;
  int phase, failed, pub_up, pub_closed;
  const char *failure;
  struct fmqb_errors errors;
  struct fmqb_procmon gw, br, me;   /* the gateway, the broker, this process */
};

static void finish(struct fanout *f);

/* --- subscribers --- */

static void target(void *data, uint32_t i, char *out, size_t cap) {
  struct fanout *f = data;
  (void)i;
  snprintf(out, cap, "%s", f->target);
}

/* A slow subscriber offers a small receive window, so what it does not read
 * piles up in the gateway rather than in this machine's socket buffers. */
static int slow_rcvbuf(void *data, uint32_t i) {
  struct fanout *f = data;
  return f->slow[i] ? 4096 : 0;
}

static void on_open(struct fmqb_ws *ws) { (void)ws; }

static void on_text(struct fmqb_ws *ws, const char *p, size_t n) {
  struct fmqb_clients *cl = fmqb_clients_of(ws);
  struct fanout *f = cl->cfg.data;
  struct fmqb_reply r;
  if (fmqb_reply_scan(p, n, &r) != 0) {
    fmqb_errors_add(&f->errors, "unparsed", 8);
    return;
  }
  switch (r.type) {
  case FMQB_R_MESSAGE: {
    uint64_t now = fmqb_now_ns();
    struct fmqb_stamp st;
    if (f->slow[ws->id]) {
      f->slow_rx++;
      return;
    }
    if (r.payload == NULL || fmqb_payload_parse(r.payload, r.payload_len, &st) != 0) {
      f->stray++;
      return;
    }
    f->rx++;
    if (f->t_first_rx == 0) {
      f->t_first_rx = now;
    }
    f->t_last_rx = now;
    if (fmqb_seq_mark(&f->seq[ws->id], st.s)) {
      fmqb_hist_add(&f->lat, now - st.t);
    }
    return;
  }
  case FMQB_R_SUBSCRIBED:
    if (f->slow[ws->id]) {
      fmqb_ws_pause(ws);
    }
    fmqb_clients_ready(cl, ws);
    return;
  case FMQB_R_ERROR:
    fmqb_errors_add(&f->errors, r.code ? r.code : "?", r.code ? r.code_len : 1);
    return;
  default:
    return;
  }
}

static void on_closed(struct fmqb_ws *ws) {
  struct fmqb_clients *cl = fmqb_clients_of(ws);
  struct fanout *f = cl->cfg.data;
  if (f->phase == DONE) {
    return;
  }
  if (f->slow[ws->id]) {
    f->slow_closed++;
    if (ws->status == 1013) {
      f->slow_1013++;
    }
  } else if (f->phase != CONNECTING) {
    f->readers_closed++;
  }
}

static const struct fmqb_ws_ops sub_ops = {on_open, on_text, NULL, NULL, on_closed};

/* --- publisher --- */

static size_t pick(void *data, uint64_t k, char *topic, uint32_t *c, uint32_t *s) {
  struct fanout *f = data;
  memcpy(topic, f->topic, f->topic_len);
  *c = 0;
  *s = (uint32_t)k;
  return f->topic_len;
}

static void settled(void *data) {
  struct fanout *f = data;
  if (f->cl.failed > 0) {
    f->failed = 1;
    f->failure = "some subscribers could not connect or subscribe";
    finish(f);
    return;
  }
  fmqb_procmon_ready(&f->gw);
  fmqb_procmon_ready(&f->br);
  fmqb_say("%u subscribers ready (%u slow); publishing %u messages of %u bytes%s", f->n,
           f->nslow, f->o->messages, f->o->size, f->o->rate > 0 ? "" : " flat out");
  fmqb_procmon_start(&f->gw);
  fmqb_procmon_start(&f->br);
  fmqb_procmon_start(&f->me);
  f->phase = PUBLISHING;
  f->t_phase = f->progress_ns = f->t_said = fmqb_now_ns();
  fmqb_pub_start(&f->pub);
}

static void pub_up(struct fmqb_pub *p) {
  struct fanout *f = p->cfg.data;
  f->pub_up = 1;
  fmqb_clients_start(&f->cl);
}

static void pub_done(struct fmqb_pub *p) {
  struct fanout *f = p->cfg.data;
  f->phase = DRAINING;
  f->progress_ns = fmqb_now_ns();
}

static void pub_closed(struct fmqb_pub *p) {
  struct fanout *f = p->cfg.data;
  f->pub_closed = 1;
  if (f->phase != DONE && !p->finished) {
    f->failed = 1;
    f->failure = f->pub_up ? "the broker closed the publisher's connection"
                           : "could not connect to the broker";
    finish(f);
  }
}

/* --- the run --- */

static uint64_t expected(const struct fanout *f) {
  return (uint64_t)(f->n - f->nslow) * f->o->messages;
}

static void on_tick(uv_timer_t *t) {
  struct fanout *f = t->data;
  uint64_t now = fmqb_now_ns();
  if (f->phase == DONE) {
    return;
  }
  if (fmqb_secs(now - f->t_phase) > f->o->timeout && f->phase != SLOW_DRAIN) {
    fmqb_warn("timed out after %.0f s", f->o->timeout);
    f->timed_out = 1;
    if (f->phase == CONNECTING) {
      f->failed = 1;
      f->failure = "timed out before every subscriber was ready";
    }
    finish(f);
    return;
  }
  if ((f->phase == PUBLISHING || f->phase == DRAINING) && now - f->t_said >= 1000000000u) {
    f->t_said = now;
    fmqb_say("  %.0f s: published %llu, delivered %llu", fmqb_secs(now - f->pub.t_start),
             (unsigned long long)f->pub.sent, (unsigned long long)f->rx);
  }
  uint64_t seen = f->rx + f->slow_rx;
  if (seen != f->progress_rx) {
    f->progress_rx = seen;
    f->progress_ns = now;
  }
  if (f->phase == DRAINING &&
      (fmqb_seq_unique_total(f->seq, f->n) >= expected(f) || fmqb_secs(now - f->progress_ns) > f->o->drain)) {
    finish(f);
  } else if (f->phase == SLOW_DRAIN &&
             (f->slow_closed == f->nslow || fmqb_secs(now - f->progress_ns) > 1.0)) {
    finish(f);
  }
}

static void report(struct fanout *f, struct fmqb_json *j) {
  uint64_t exp = expected(f), uniq = 0, dups = 0, stray = f->stray;
  uint32_t lossy = 0, worst = 0;
  for (uint32_t i = 0; i < f->n; i++) {
    if (f->slow[i]) {
      continue;
    }
    uniq += f->seq[i].unique;
    dups += f->seq[i].dups;
    stray += f->seq[i].stray;
    uint32_t lost = fmqb_seq_lost(&f->seq[i]);
    if (lost > 0) {
      lossy++;
      worst = lost > worst ? lost : worst;
    }
  }
  double secs = f->t_last_rx > f->pub.t_start ? fmqb_secs(f->t_last_rx - f->pub.t_start) : 0;
  double pub_secs = fmqb_secs(f->pub.t_end - f->pub.t_start);
  double rate = secs > 0 ? (double)f->rx / secs : 0;
  fmqb_clients_report(&f->cl, j);
  fmqb_json_bool(j, "timed_out", f->timed_out);
  fmqb_json_u64(j, "subscribers", f->n);
  fmqb_json_u64(j, "slow_subscribers", f->nslow);
  fmqb_json_u64(j, "messages", f->o->messages);
  fmqb_json_u64(j, "size", f->o->size);
  fmqb_json_num(j, "rate", f->o->rate);
  fmqb_json_u64(j, "published", f->pub.sent);
  fmqb_json_num(j, "publish_s", pub_secs);
  fmqb_json_u64(j, "expected", exp);
  fmqb_json_u64(j, "delivered", f->rx);
  fmqb_json_u64(j, "lost", exp - uniq);
  fmqb_json_u64(j, "duplicates", dups);
  fmqb_json_u64(j, "stray", stray);
  fmqb_json_u64(j, "subscribers_with_loss", lossy);
  fmqb_json_u64(j, "worst_subscriber_lost", worst);
  fmqb_json_num(j, "seconds", secs);
  fmqb_json_num(j, "deliveries_per_s", rate);
  fmqb_say("published %llu messages in %.3f s (%.0f/s)", (unsigned long long)f->pub.sent,
           pub_secs, pub_secs > 0 ? (double)f->pub.sent / pub_secs : 0);
  fmqb_say("delivered %llu of %llu to %u readers in %.3f s: %.0f deliveries/s",
           (unsigned long long)f->rx, (unsigned long long)exp, f->n - f->nslow, secs, rate);
  fmqb_say("lost %llu, duplicates %llu, stray %llu; %u readers lost some (worst: %u)",
           (unsigned long long)(exp - uniq), (unsigned long long)dups,
           (unsigned long long)stray, lossy, worst);
  fmqb_report_latency(j, "latency_us", "latency publish -> WebSocket", &f->lat);
  fmqb_json_u64(j, "readers_closed", f->readers_closed);
  if (f->readers_closed > 0) {
    fmqb_say("readers closed by the gateway during the run: %u", f->readers_closed);
  }
  if (f->nslow > 0) {
    fmqb_say("slow subscribers: %u closed by the gateway (%u with 1013), %u still open; "
             "%llu messages read after the run", f->slow_closed, f->slow_1013,
             f->nslow - f->slow_closed, (unsigned long long)f->slow_rx);
    fmqb_json_u64(j, "slow_closed", f->slow_closed);
    fmqb_json_u64(j, "slow_closed_1013", f->slow_1013);
    fmqb_json_u64(j, "slow_read_after", f->slow_rx);
  }
  fmqb_report_errors(j, "errors", "errors received", &f->errors);
  fmqb_report_proc(j, "gateway", "gateway", &f->gw, f->rx, "deliveries", f->n);
  fmqb_report_proc(j, "broker", "broker", &f->br, f->pub.sent, "messages published", 0);
  fmqb_report_bench_cpu(j, &f->me, f->rx);
}

static void finish(struct fanout *f) {
  if (f->phase == DONE) {
    return;
  }
  if (f->nslow > 0 && f->phase == DRAINING) {
    /* Measure first, then let the slow ones read to see what became of them. */
    fmqb_procmon_end(&f->gw);
    fmqb_procmon_end(&f->br);
  fmqb_procmon_end(&f->me);
    f->phase = SLOW_DRAIN;
    f->progress_ns = fmqb_now_ns();
    for (uint32_t i = 0; i < f->n; i++) {
      if (f->slow[i]) {
        fmqb_ws_resume(&f->cl.ws[i]);
      }
    }
    return;
  }
  if (f->phase != SLOW_DRAIN) {
    fmqb_procmon_end(&f->gw);
    fmqb_procmon_end(&f->br);
  fmqb_procmon_end(&f->me);
  }
  f->phase = DONE;
  uv_timer_stop(&f->tick);
  uv_close((uv_handle_t *)&f->tick, NULL);
  fmqb_clients_close(&f->cl);
  fmqb_pub_close(&f->pub);
}

int fmqb_fanout(const struct fmqb_opts *o, struct fmqb_json *j) {
  struct fanout *f = fmqb_calloc(1, sizeof *f);
  f->o = o;
  f->n = o->clients;
  uv_loop_init(&f->loop);
  fmqb_hist_init(&f->lat);
  fmqb_procmon_init(&f->gw, o->gateway_pid);
  fmqb_procmon_init(&f->br, o->broker_pid);
  fmqb_procmon_init(&f->me, (int)getpid());
  fmqb_procmon_base(&f->gw);
  fmqb_procmon_base(&f->br);
  f->topic_len = (size_t)snprintf(f->topic, sizeof f->topic, "%s/fanout", o->prefix);
  char enc[400];
  fmqb_url_topic(enc, sizeof enc, f->topic);
  snprintf(f->target, sizeof f->target, "%s?topic=%s", o->ws_path, enc);
  f->slow = fmqb_calloc(f->n, 1);
  f->seq = fmqb_calloc(f->n, sizeof *f->seq);
  /* Every k-th subscriber is slow, spread evenly over the set. */
  f->nslow = (uint32_t)((double)f->n * o->slow_percent / 100.0 + 0.5);
  if (o->slow_percent > 0 && f->nslow == 0) {
    f->nslow = 1;
  }
  if (f->nslow >= f->n && f->n > 0) {
    f->nslow = f->n - 1;
  }
  for (uint32_t k = 0; k < f->nslow; k++) {
    f->slow[(uint64_t)k * f->n / f->nslow] = 1;
  }
  for (uint32_t i = 0; i < f->n; i++) {
    fmqb_seq_init(&f->seq[i], o->messages);
  }
  struct fmqb_clients_cfg cc = {
      .n = f->n, .concurrency = o->concurrency, .per_source = o->per_source, .target = target,
      .rcvbuf = slow_rcvbuf, .settled = settled, .ops = &sub_ops, .data = f};
  fmqb_clients_init(&f->cl, &f->loop, &o->ws, &cc);
  struct fmqb_pub_cfg pc = {o->messages, o->rate, o->size, pick, pub_up, pub_done, pub_closed,
                            f};
  char id[64];
  snprintf(id, sizeof id, "fmqb-pub-%d", (int)getpid());
  uv_timer_init(&f->loop, &f->tick);
  f->tick.data = f;
  uv_timer_start(&f->tick, on_tick, 50, 50);
  f->t_phase = fmqb_now_ns();
  fmqb_pub_init(&f->pub, &f->loop, &o->mqtt, id, &pc);
  uv_run(&f->loop, UV_RUN_DEFAULT);

  int rc = 0;
  if (f->failed) {
    fmqb_clients_report(&f->cl, j);
    rc = fmqb_fail(j, "%s", f->failure);
  } else {
    report(f, j);
  }
  fmqb_clients_free(&f->cl);
  for (uint32_t i = 0; i < f->n; i++) {
    fmqb_seq_close(&f->seq[i]);
  }
  free(f->seq);
  free(f->slow);
  uv_loop_close(&f->loop);
  free(f);
  return rc;
}
