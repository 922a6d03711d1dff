/* fanin: N WebSocket publishers, one MQTT subscriber (the minimal client,
 * at --qos) of PREFIX/in counting. Each client sends K JSON `publish`
 * messages at --qos; QoS 1 ones carry an id (the sequence number) so the
 * gateway answers `puback`. Flat out, a client keeps at most 64 KiB
 * written and not yet taken by its socket and refills when it drains, so
 * it sends as fast as the gateway reads; with --rate each client is paced
 * by a 1 ms timer. The run ends when the subscriber has every message, or
 * nothing arrived (messages or replies) for --drain seconds after the last
 * send. */

#include "bench.h"
#include "clients.h"
#include "hist.h"
#include "mqtt_lite.h"
#include "msg.h"
#include "payload.h"
#include "report.h"
#include "scenarios.h"
#include "seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENT_BACKLOG (64 * 1024)

enum phase { SUBSCRIBING, CONNECTING, SENDING, DRAINING, DONE };

struct fanin {
  const struct fmqb_opts *o;
  uv_loop_t loop;
  struct fmqb_clients cl;
  struct fmqb_mqtt sub;
  uv_timer_t tick, pace;
  char topic[128];
  size_t topic_len;
  uint32_t n, k;
  uint32_t *next;               /* per client: the next sequence number to send */
  uint32_t *answered;           /* per client: pubacks and errors with an id */
  uint64_t *sent_ns;            /* QoS 1: n * k send times, for the puback latency */
  struct fmqb_seq *seq;         /* per client, at the subscriber */
  struct fmqb_hist lat;         /* WebSocket publish -> MQTT subscriber */
  struct fmqb_hist ack_lat;     /* WebSocket publish -> puback */
  uint64_t sent, rx, stray, pubacks, acks_unknown;
  uint32_t clients_done;
  uint64_t t_send_start, t_send_end, t_first_rx, t_last_rx, t_phase;
  uint64_t progress, progress_ns;
  uint32_t closed_during;
  uint64_t t_said;              /* the last progress line */
  struct fmqb_errors errors;
  int timed_out;
  int phase, failed, sub_up;
  const char *failure;
  struct fmqb_procmon gw, br, me;   /* the gateway, the broker, this process */
};

static void finish(struct fanin *f);

/* --- the WebSocket publishers --- */

static void target(void *data, uint32_t i, char *out, size_t cap) {
  struct fanin *f = data;
  (void)i;
  snprintf(out, cap, "%s", f->o->ws_path);
}

static void pump(struct fanin *f, struct fmqb_ws *ws, uint32_t limit) {
  uint32_t c = ws->id;
  int qos = f->o->qos;
  char pl[FMQB_PAYLOAD_MAX_HEAD + 65536];
  if (limit > f->k) {
    limit = f->k;
  }
  while (f->next[c] < limit && fmqb_ws_backlog(ws) < CLIENT_BACKLOG) {
    uint32_t s = f->next[c];
    uint64_t t = fmqb_now_ns();
    size_t plen = fmqb_payload_write(pl, f->o->size, c, s, t);
    size_t len = fmqb_msg_publish_len(f->topic_len, qos, qos > 0, s, plen);
    uint8_t *dst = fmqb_ws_frame_begin(ws, FMQB_WS_TEXT, len);
    if (dst == NULL) {
      return;
    }
    fmqb_msg_publish((char *)dst, f->topic, f->topic_len, qos, qos > 0, s, pl, plen);
    if (f->sent_ns != NULL) {
      f->sent_ns[(uint64_t)c * f->k + s] = t;
    }
    f->next[c]++;
    f->sent++;
    f->t_send_end = t;
    if (f->next[c] == f->k) {
      f->clients_done++;
      if (f->clients_done == f->n) {
        f->phase = DRAINING;
        f->progress_ns = fmqb_now_ns();
      }
    }
  }
}

static void on_open(struct fmqb_ws *ws) { fmqb_clients_ready(fmqb_clients_of(ws), ws); }

static void on_text(struct fmqb_ws *ws, const char *p, size_t n) {
  struct fanin *f = fmqb_clients_of(ws)->cfg.data;
  struct fmqb_reply r;
  if (fmqb_reply_scan(p, n, &r) != 0) {
    fmqb_errors_add(&f->errors, "unparsed", 8);
    return;
  }
  uint32_t c = ws->id;
  if (r.type == FMQB_R_PUBACK) {
    f->pubacks++;
    if (r.has_id && r.id < f->k && f->sent_ns != NULL) {
      f->answered[c]++;
      fmqb_hist_add(&f->ack_lat, fmqb_now_ns() - f->sent_ns[(uint64_t)c * f->k + r.id]);
    } else {
      f->acks_unknown++;
    }
  } else if (r.type == FMQB_R_ERROR) {
    fmqb_errors_add(&f->errors, r.code ? r.code : "?", r.code ? r.code_len : 1);
    if (r.has_id) {
      f->answered[c]++;
    }
  }
}

static void on_drained(struct fmqb_ws *ws) {
  struct fanin *f = fmqb_clients_of(ws)->cfg.data;
  if ((f->phase == SENDING || f->phase == DRAINING) && f->o->rate <= 0) {
    pump(f, ws, f->k);
  }
}

static void on_closed(struct fmqb_ws *ws) {
  struct fanin *f = fmqb_clients_of(ws)->cfg.data;
  if (f->phase == SENDING || f->phase == DRAINING) {
    f->closed_during++;
  }
}

static const struct fmqb_ws_ops pub_ops = {on_open, on_text, NULL, on_drained, on_closed};

static void on_pace(uv_timer_t *t) {
  struct fanin *f = t->data;
  if (f->phase != SENDING) {
    return;
  }
  double elapsed = fmqb_secs(fmqb_now_ns() - f->t_send_start);
  uint32_t due = (uint32_t)(elapsed * f->o->rate) + 1;
  for (uint32_t i = 0; i < f->n; i++) {
    if (f->cl.ws[i].state == FMQB_WS_OPEN) {
      pump(f, &f->cl.ws[i], due);
    }
  }
}

static void settled(void *data) {
  struct fanin *f = data;
  if (f->cl.failed > 0) {
    f->failed = 1;
    f->failure = "some publishers could not connect";
    finish(f);
    return;
  }
  fmqb_procmon_ready(&f->gw);
  fmqb_procmon_ready(&f->br);
  fmqb_say("%u WebSocket publishers ready; each sends %u messages of %u bytes at QoS %d%s",
           f->n, f->k, f->o->size, f->o->qos, f->o->rate > 0 ? "" : ", flat out");
  fmqb_procmon_start(&f->gw);
  fmqb_procmon_start(&f->br);
  fmqb_procmon_start(&f->me);
  f->phase = SENDING;
  f->t_phase = f->progress_ns = f->t_send_start = f->t_said = fmqb_now_ns();
  if (f->o->rate > 0) {
    uv_timer_start(&f->pace, on_pace, 1, 1);
    on_pace(&f->pace);
  } else {
    for (uint32_t i = 0; i < f->n; i++) {
      pump(f, &f->cl.ws[i], f->k);
    }
  }
}

/* --- the MQTT subscriber --- */

static void sub_up(struct fmqb_mqtt *m) {
  struct fanin *f = m->data;
  fmqb_mqtt_subscribe(m, f->topic, f->o->qos);
}

static void sub_suback(struct fmqb_mqtt *m, uint16_t pid, int granted) {
  struct fanin *f = m->data;
  (void)pid;
  if (granted == 0x80) {
    f->failed = 1;
    f->failure = "the broker refused the subscriber's SUBSCRIBE";
    finish(f);
    return;
  }
  f->sub_up = 1;
  f->phase = CONNECTING;
  fmqb_clients_start(&f->cl);
}

static void sub_publish(struct fmqb_mqtt *m, const char *topic, size_t tlen, const uint8_t *p,
                        size_t n, int qos) {
  struct fanin *f = m->data;
  struct fmqb_stamp st;
  (void)topic, (void)tlen, (void)qos;
  uint64_t now = fmqb_now_ns();
  if (fmqb_payload_parse((const char *)p, n, &st) != 0 || st.c >= f->n) {
    f->stray++;
    return;
  }
  f->rx++;
  if (f->t_first_rx == 0) {
    f->t_first_rx = now;
  }
  f->t_last_rx = now;
  if (fmqb_seq_mark(&f->seq[st.c], st.s)) {
    fmqb_hist_add(&f->lat, now - st.t);
  }
}

static void sub_closed(struct fmqb_mqtt *m) {
  struct fanin *f = m->data;
  if (f->phase != DONE) {
    f->failed = 1;
    f->failure = f->sub_up ? "the broker closed the subscriber's connection"
                           : "could not connect the subscriber to the broker";
    finish(f);
  }
}

static const struct fmqb_mqtt_ops sub_ops = {sub_up, sub_suback, sub_publish, NULL, sub_closed};

/* --- the run --- */

static void on_tick(uv_timer_t *t) {
  struct fanin *f = t->data;
  uint64_t now = fmqb_now_ns();
  if (f->phase == DONE) {
    return;
  }
  if (fmqb_secs(now - f->t_phase) > f->o->timeout) {
    fmqb_warn("timed out after %.0f s", f->o->timeout);
    f->timed_out = 1;
    if (f->phase < SENDING) {
      f->failed = 1;
      f->failure = "timed out before every publisher was ready";
    }
    finish(f);
    return;
  }
  if (f->phase >= SENDING && now - f->t_said >= 1000000000u) {
    f->t_said = now;
    fmqb_say("  %.0f s: sent %llu, delivered %llu, pubacks %llu, errors %llu",
             fmqb_secs(now - f->t_send_start), (unsigned long long)f->sent,
             (unsigned long long)f->rx, (unsigned long long)f->pubacks,
             (unsigned long long)f->errors.total);
  }
  uint64_t progress = f->rx + f->pubacks + f->errors.total + f->sent;
  if (progress != f->progress) {
    f->progress = progress;
    f->progress_ns = now;
  }
  if (f->phase == SENDING && fmqb_secs(now - f->progress_ns) > f->o->drain) {
    fmqb_warn("no progress for %.1f s while sending: giving up", f->o->drain);
    finish(f);
    return;
  }
  if (f->phase != DRAINING) {
    return;
  }
  uint64_t answered = 0;
  for (uint32_t i = 0; i < f->n && f->o->qos > 0; i++) {
    answered += f->answered[i];
  }
  int acks_done = f->o->qos == 0 || answered >= (uint64_t)f->n * f->k;
  if ((fmqb_seq_unique_total(f->seq, f->n) >= (uint64_t)f->n * f->k && acks_done) ||
      fmqb_secs(now - f->progress_ns) > f->o->drain) {
    finish(f);
  }
}

static void finish(struct fanin *f) {
  if (f->phase == DONE) {
    return;
  }
  fmqb_procmon_end(&f->gw);
  fmqb_procmon_end(&f->br);
  fmqb_procmon_end(&f->me);
  f->phase = DONE;
  uv_close((uv_handle_t *)&f->tick, NULL);
  uv_close((uv_handle_t *)&f->pace, NULL);
  fmqb_clients_close(&f->cl);
  if (f->sub.state != FMQB_MQTT_CLOSED) {
    fmqb_mqtt_close(&f->sub);
  }
}

static void report(struct fanin *f, struct fmqb_json *j) {
  uint64_t exp = (uint64_t)f->n * f->k, uniq = 0, dups = 0, stray = f->stray;
  for (uint32_t i = 0; i < f->n; i++) {
    uniq += f->seq[i].unique;
    dups += f->seq[i].dups;
    stray += f->seq[i].stray;
  }
  double secs = f->t_last_rx > f->t_send_start ? fmqb_secs(f->t_last_rx - f->t_send_start) : 0;
  double send_secs = fmqb_secs(f->t_send_end - f->t_send_start);
  double rate = secs > 0 ? (double)uniq / secs : 0;
  fmqb_clients_report(&f->cl, j);
  fmqb_json_bool(j, "timed_out", f->timed_out);
  fmqb_json_u64(j, "clients", f->n);
  fmqb_json_u64(j, "messages_per_client", f->k);
  fmqb_json_u64(j, "size", f->o->size);
  fmqb_json_i64(j, "qos", f->o->qos);
  fmqb_json_num(j, "rate_per_client", f->o->rate);
  fmqb_json_u64(j, "sent", f->sent);
  fmqb_json_num(j, "send_s", send_secs);
  fmqb_json_num(j, "offered_per_s", send_secs > 0 ? (double)f->sent / send_secs : 0);
  fmqb_json_u64(j, "expected", exp);
  fmqb_json_u64(j, "delivered", f->rx);
  fmqb_json_u64(j, "lost", exp - uniq);
  fmqb_json_u64(j, "duplicates", dups);
  fmqb_json_u64(j, "stray", stray);
  fmqb_json_num(j, "seconds", secs);
  fmqb_json_num(j, "msgs_per_s", rate);
  fmqb_json_u64(j, "closed_during_run", f->closed_during);
  fmqb_say("sent %llu publishes in %.3f s (%.0f/s offered)", (unsigned long long)f->sent,
           send_secs, send_secs > 0 ? (double)f->sent / send_secs : 0);
  fmqb_say("delivered %llu of %llu to the MQTT subscriber in %.3f s: %.0f messages/s",
           (unsigned long long)uniq, (unsigned long long)exp, secs, rate);
  fmqb_say("lost %llu, duplicates %llu, stray %llu", (unsigned long long)(exp - uniq),
           (unsigned long long)dups, (unsigned long long)stray);
  fmqb_report_latency(j, "latency_us", "latency WebSocket publish -> MQTT subscriber", &f->lat);
  if (f->o->qos > 0) {
    uint64_t answered = 0;
    for (uint32_t i = 0; i < f->n; i++) {
      answered += f->answered[i];
    }
    fmqb_say("pubacks %llu (%llu unknown ids), publishes answered (puback or error) %llu of %llu",
             (unsigned long long)f->pubacks, (unsigned long long)f->acks_unknown,
             (unsigned long long)answered, (unsigned long long)f->sent);
    fmqb_json_u64(j, "pubacks", f->pubacks);
    fmqb_json_u64(j, "pubacks_unknown", f->acks_unknown);
    fmqb_json_u64(j, "answered", answered);
    fmqb_report_latency(j, "puback_latency_us", "latency publish -> puback", &f->ack_lat);
  }
  fmqb_report_errors(j, "errors", "errors received by the clients", &f->errors);
  fmqb_report_proc(j, "gateway", "gateway", &f->gw, uniq, "messages", f->n);
  fmqb_report_proc(j, "broker", "broker", &f->br, uniq, "messages", 0);
  fmqb_report_bench_cpu(j, &f->me, uniq);
}

int fmqb_fanin(const struct fmqb_opts *o, struct fmqb_json *j) {
  struct fanin *f = fmqb_calloc(1, sizeof *f);
  f->o = o;
  f->n = o->clients;
  f->k = o->messages;
  uv_loop_init(&f->loop);
  fmqb_hist_init(&f->lat);
  fmqb_hist_init(&f->ack_lat);
  fmqb_procmon_init(&f->gw, o->gateway_pid);
  fmqb_procmon_init(&f->br, o->broker_pid);
  fmqb_procmon_init(&f->me, (int)getpid());
  fmqb_procmon_base(&f->gw);
  fmqb_procmon_base(&f->br);
  f->topic_len = (size_t)snprintf(f->topic, sizeof f->topic, "%s/in", o->prefix);
  f->next = fmqb_calloc(f->n, sizeof *f->next);
  f->answered = fmqb_calloc(f->n, sizeof *f->answered);
  f->seq = fmqb_calloc(f->n, sizeof *f->seq);
  if (o->qos > 0) {
    f->sent_ns = fmqb_calloc((size_t)f->n * f->k, sizeof *f->sent_ns);
  }
  for (uint32_t i = 0; i < f->n; i++) {
    fmqb_seq_init(&f->seq[i], f->k);
  }
  struct fmqb_clients_cfg cc = {
      .n = f->n, .concurrency = o->concurrency, .per_source = o->per_source, .target = target,
      .settled = settled, .ops = &pub_ops, .data = f};
  fmqb_clients_init(&f->cl, &f->loop, &o->ws, &cc);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_init(&f->loop, &f->pace);
  f->tick.data = f->pace.data = f;
  uv_timer_start(&f->tick, on_tick, 50, 50);
  f->t_phase = fmqb_now_ns();
  f->sub.ops = &sub_ops;
  f->sub.data = f;
  char id[64];
  snprintf(id, sizeof id, "fmqb-sub-%d", (int)getpid());
  fmqb_mqtt_connect(&f->sub, &f->loop, &o->mqtt, id, 60);
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
  free(f->next);
  free(f->answered);
  free(f->sent_ns);
  uv_loop_close(&f->loop);
  free(f);
  return rc;
}
