/* streams: T topics, one WebSocket subscriber each (connection i holds
 * PREFIX/s/i through topic= on its upgrade URL), and P MQTT publishers
 * spreading messages over the topics: publisher p owns the topics i with
 * i % P == p and sends to them in turn, K messages per topic, at its share
 * of --rate. Each subscriber checks that what it gets is its own topic's
 * sequence, complete and once. */

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

enum phase { CONNECTING, PUBLISHING, DRAINING, DONE };

struct streams;

struct publisher {
  struct fmqb_pub pub;
  struct streams *s;
  uint32_t index;               /* p */
  uint32_t topics;              /* how many topics it owns */
};

struct streams {
  const struct fmqb_opts *o;
  uv_loop_t loop;
  struct fmqb_clients cl;
  struct publisher *pubs;       /* owned: P */
  uint32_t npub, pubs_up, pubs_done, pubs_closed;
  uv_timer_t tick;
  char base[96];                /* "PREFIX/s/" */
  size_t base_len;
  uint32_t t;                   /* topics (= connections) */
  struct fmqb_seq *seq;         /* per topic */
  struct fmqb_hist lat;
  uint64_t rx, stray, misrouted;
  uint64_t t_first_rx, t_last_rx, t_phase, progress_rx, progress_ns;
  uint32_t closed_during;
  uint64_t t_said;
  int timed_out;
  int phase, failed;
  const char *failure;
  struct fmqb_errors errors;
  struct fmqb_procmon gw, br, me;   /* the gateway, the broker, this process */
};

static void finish(struct streams *s);

static size_t topic_of(const struct streams *s, uint32_t i, char *out) {
  memcpy(out, s->base, s->base_len);
  return s->base_len + fmqb_utoa(out + s->base_len, i);
}

static void target(void *data, uint32_t i, char *out, size_t cap) {
  struct streams *s = data;
  char topic[128], enc[400];
  topic[topic_of(s, i, topic)] = '\0';
  fmqb_url_topic(enc, sizeof enc, topic);
  snprintf(out, cap, "%s?topic=%s", s->o->ws_path, enc);
}

static void on_open(struct fmqb_ws *ws) { (void)ws; }

static void on_text(struct fmqb_ws *ws, const char *p, size_t n) {
  struct fmqb_clients *cl = fmqb_clients_of(ws);
  struct streams *s = cl->cfg.data;
  struct fmqb_reply r;
  if (fmqb_reply_scan(p, n, &r) != 0) {
    fmqb_errors_add(&s->errors, "unparsed", 8);
    return;
  }
  if (r.type == FMQB_R_MESSAGE) {
    uint64_t now = fmqb_now_ns();
    struct fmqb_stamp st;
    if (r.payload == NULL || fmqb_payload_parse(r.payload, r.payload_len, &st) != 0) {
      s->stray++;
      return;
    }
    s->rx++;
    if (s->t_first_rx == 0) {
      s->t_first_rx = now;
    }
    s->t_last_rx = now;
    if (st.c != ws->id) {
      s->misrouted++;
      return;
    }
    if (fmqb_seq_mark(&s->seq[ws->id], st.s)) {
      fmqb_hist_add(&s->lat, now - st.t);
    }
  } else if (r.type == FMQB_R_SUBSCRIBED) {
    fmqb_clients_ready(cl, ws);
  } else if (r.type == FMQB_R_ERROR) {
    fmqb_errors_add(&s->errors, r.code ? r.code : "?", r.code ? r.code_len : 1);
  }
}

static void on_closed(struct fmqb_ws *ws) {
  struct streams *s = fmqb_clients_of(ws)->cfg.data;
  if (s->phase == PUBLISHING || s->phase == DRAINING) {
    s->closed_during++;
  }
}

static const struct fmqb_ws_ops sub_ops = {on_open, on_text, NULL, NULL, on_closed};

/* Message k of publisher p: its topic number p + P * (k % topics), and the
 * k / topics-th message of that topic. */
static size_t pick(void *data, uint64_t k, char *topic, uint32_t *c, uint32_t *seq) {
  struct publisher *pb = data;
  struct streams *s = pb->s;
  uint32_t i = pb->index + s->npub * (uint32_t)(k % pb->topics);
  *c = i;
  *seq = (uint32_t)(k / pb->topics);
  return topic_of(s, i, topic);
}

static void settled(void *data) {
  struct streams *s = data;
  if (s->cl.failed > 0) {
    s->failed = 1;
    s->failure = "some subscribers could not connect or subscribe";
    finish(s);
    return;
  }
  fmqb_procmon_ready(&s->gw);
  fmqb_procmon_ready(&s->br);
  fmqb_say("%u subscribers ready, one topic each; %u publishers send %u messages per topic",
           s->t, s->npub, s->o->messages);
  fmqb_procmon_start(&s->gw);
  fmqb_procmon_start(&s->br);
  fmqb_procmon_start(&s->me);
  s->phase = PUBLISHING;
  s->t_phase = s->progress_ns = s->t_said = fmqb_now_ns();
  for (uint32_t p = 0; p < s->npub; p++) {
    fmqb_pub_start(&s->pubs[p].pub);
  }
}

static void pub_up(struct fmqb_pub *p) {
  struct streams *s = ((struct publisher *)p->cfg.data)->s;
  if (++s->pubs_up == s->npub) {
    fmqb_clients_start(&s->cl);
  }
}

static void pub_done(struct fmqb_pub *p) {
  struct streams *s = ((struct publisher *)p->cfg.data)->s;
  if (++s->pubs_done == s->npub) {
    s->phase = DRAINING;
    s->progress_ns = fmqb_now_ns();
  }
}

static void pub_closed(struct fmqb_pub *p) {
  struct streams *s = ((struct publisher *)p->cfg.data)->s;
  s->pubs_closed++;
  if (s->phase != DONE && !p->finished) {
    s->failed = 1;
    s->failure = s->pubs_up == s->npub ? "the broker closed a publisher's connection"
                                       : "could not connect to the broker";
    finish(s);
  }
}

static void on_tick(uv_timer_t *t) {
  struct streams *s = t->data;
  uint64_t now = fmqb_now_ns();
  if (s->phase == DONE) {
    return;
  }
  if (fmqb_secs(now - s->t_phase) > s->o->timeout) {
    fmqb_warn("timed out after %.0f s", s->o->timeout);
    s->timed_out = 1;
    if (s->phase == CONNECTING) {
      s->failed = 1;
      s->failure = "timed out before every subscriber was ready";
    }
    finish(s);
    return;
  }
  if (s->phase != CONNECTING && now - s->t_said >= 1000000000u) {
    uint64_t sent = 0;
    for (uint32_t p = 0; p < s->npub; p++) {
      sent += s->pubs[p].pub.sent;
    }
    s->t_said = now;
    fmqb_say("  %.0f s: published %llu, delivered %llu", fmqb_secs(now - s->t_phase),
             (unsigned long long)sent, (unsigned long long)s->rx);
  }
  if (s->rx != s->progress_rx) {
    s->progress_rx = s->rx;
    s->progress_ns = now;
  }
  if (s->phase == DRAINING && (fmqb_seq_unique_total(s->seq, s->t) >= (uint64_t)s->t * s->o->messages ||
                               fmqb_secs(now - s->progress_ns) > s->o->drain)) {
    finish(s);
  }
}

static void finish(struct streams *s) {
  if (s->phase == DONE) {
    return;
  }
  fmqb_procmon_end(&s->gw);
  fmqb_procmon_end(&s->br);
  fmqb_procmon_end(&s->me);
  s->phase = DONE;
  uv_close((uv_handle_t *)&s->tick, NULL);
  fmqb_clients_close(&s->cl);
  for (uint32_t p = 0; p < s->npub; p++) {
    fmqb_pub_close(&s->pubs[p].pub);
  }
}

static void report(struct streams *s, struct fmqb_json *j) {
  uint64_t exp = (uint64_t)s->t * s->o->messages, uniq = 0, dups = 0, stray = s->stray;
  uint64_t sent = 0, t0 = UINT64_MAX, t1 = 0;
  uint32_t lossy = 0;
  for (uint32_t i = 0; i < s->t; i++) {
    uniq += s->seq[i].unique;
    dups += s->seq[i].dups;
    stray += s->seq[i].stray;
    lossy += fmqb_seq_lost(&s->seq[i]) > 0;
  }
  for (uint32_t p = 0; p < s->npub; p++) {
    sent += s->pubs[p].pub.sent;
    t0 = s->pubs[p].pub.t_start < t0 ? s->pubs[p].pub.t_start : t0;
    t1 = s->pubs[p].pub.t_end > t1 ? s->pubs[p].pub.t_end : t1;
  }
  double secs = s->t_last_rx > t0 ? fmqb_secs(s->t_last_rx - t0) : 0;
  double pub_secs = t1 > t0 ? fmqb_secs(t1 - t0) : 0;
  double rate = secs > 0 ? (double)s->rx / secs : 0;
  fmqb_clients_report(&s->cl, j);
  fmqb_json_bool(j, "timed_out", s->timed_out);
  fmqb_json_u64(j, "topics", s->t);
  fmqb_json_u64(j, "publishers", s->npub);
  fmqb_json_u64(j, "messages_per_topic", s->o->messages);
  fmqb_json_u64(j, "size", s->o->size);
  fmqb_json_num(j, "rate", s->o->rate);
  fmqb_json_u64(j, "published", sent);
  fmqb_json_num(j, "publish_s", pub_secs);
  fmqb_json_u64(j, "expected", exp);
  fmqb_json_u64(j, "delivered", s->rx);
  fmqb_json_u64(j, "lost", exp - uniq);
  fmqb_json_u64(j, "duplicates", dups);
  fmqb_json_u64(j, "stray", stray);
  fmqb_json_u64(j, "misrouted", s->misrouted);
  fmqb_json_u64(j, "topics_with_loss", lossy);
  fmqb_json_num(j, "seconds", secs);
  fmqb_json_num(j, "msgs_per_s", rate);
  fmqb_json_u64(j, "closed_during_run", s->closed_during);
  fmqb_say("published %llu messages in %.3f s (%.0f/s)", (unsigned long long)sent, pub_secs,
           pub_secs > 0 ? (double)sent / pub_secs : 0);
  fmqb_say("delivered %llu of %llu in %.3f s: %.0f messages/s", (unsigned long long)s->rx,
           (unsigned long long)exp, secs, rate);
  fmqb_say("lost %llu (on %u topics), duplicates %llu, misrouted %llu, stray %llu",
           (unsigned long long)(exp - uniq), lossy, (unsigned long long)dups,
           (unsigned long long)s->misrouted, (unsigned long long)stray);
  fmqb_report_latency(j, "latency_us", "latency publish -> WebSocket", &s->lat);
  fmqb_report_errors(j, "errors", "errors received", &s->errors);
  fmqb_report_proc(j, "gateway", "gateway", &s->gw, s->rx, "messages", s->t);
  fmqb_report_proc(j, "broker", "broker", &s->br, sent, "messages published", 0);
  fmqb_report_bench_cpu(j, &s->me, sent);
}

int fmqb_streams(const struct fmqb_opts *o, struct fmqb_json *j) {
  struct streams *s = fmqb_calloc(1, sizeof *s);
  s->o = o;
  s->t = o->topics;
  s->npub = o->publishers > s->t ? s->t : o->publishers;
  uv_loop_init(&s->loop);
  fmqb_hist_init(&s->lat);
  fmqb_procmon_init(&s->gw, o->gateway_pid);
  fmqb_procmon_init(&s->br, o->broker_pid);
  fmqb_procmon_init(&s->me, (int)getpid());
  fmqb_procmon_base(&s->gw);
  fmqb_procmon_base(&s->br);
  s->base_len = (size_t)snprintf(s->base, sizeof s->base, "%s/s/", o->prefix);
  s->seq = fmqb_calloc(s->t, sizeof *s->seq);
  for (uint32_t i = 0; i < s->t; i++) {
    fmqb_seq_init(&s->seq[i], o->messages);
  }
  struct fmqb_clients_cfg cc = {
      .n = s->t, .concurrency = o->concurrency, .per_source = o->per_source, .target = target,
      .settled = settled, .ops = &sub_ops, .data = s};
  fmqb_clients_init(&s->cl, &s->loop, &o->ws, &cc);
  uv_timer_init(&s->loop, &s->tick);
  s->tick.data = s;
  uv_timer_start(&s->tick, on_tick, 50, 50);
  s->t_phase = fmqb_now_ns();
  s->pubs = fmqb_calloc(s->npub, sizeof *s->pubs);
  for (uint32_t p = 0; p < s->npub; p++) {
    struct publisher *pb = &s->pubs[p];
    pb->s = s;
    pb->index = p;
    pb->topics = (s->t - p + s->npub - 1) / s->npub;
    struct fmqb_pub_cfg pc = {(uint64_t)pb->topics * o->messages, o->rate / s->npub, o->size,
                              pick, pub_up, pub_done, pub_closed, pb};
    char id[64];
    snprintf(id, sizeof id, "fmqb-pub-%d-%u", (int)getpid(), p);
    fmqb_pub_init(&pb->pub, &s->loop, &o->mqtt, id, &pc);
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);

  int rc = 0;
  if (s->failed) {
    fmqb_clients_report(&s->cl, j);
    rc = fmqb_fail(j, "%s", s->failure);
  } else {
    report(s, j);
  }
  fmqb_clients_free(&s->cl);
  for (uint32_t i = 0; i < s->t; i++) {
    fmqb_seq_close(&s->seq[i]);
  }
  free(s->seq);
  free(s->pubs);
  uv_loop_close(&s->loop);
  free(s);
  return rc;
}
