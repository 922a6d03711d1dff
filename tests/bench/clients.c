#include "clients.h"

#include "bench.h"
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_STARTED = 1, F_OPEN = 2, F_READY = 4, F_DONE = 8 };

static void start_more(struct fmqb_clients *c);

static void check_settled(struct fmqb_clients *c) {
  if (!c->settled && c->ready + c->failed == c->cfg.n) {
    c->settled = 1;
    c->t_settled = fmqb_now_ns();
    c->cfg.settled(c->cfg.data);
  }
}

static void on_open(struct fmqb_ws *ws) {
  struct fmqb_clients *c = ws->data;
  c->flags[ws->id] |= F_OPEN;
  c->open++;
  c->cfg.ops->open(ws);
}

static void on_text(struct fmqb_ws *ws, const char *p, size_t n) {
  struct fmqb_clients *c = ws->data;
  c->cfg.ops->text(ws, p, n);
}

static void on_pong(struct fmqb_ws *ws) {
  struct fmqb_clients *c = ws->data;
  if (c->cfg.ops->pong != NULL) {
    c->cfg.ops->pong(ws);
  }
}

static void on_drained(struct fmqb_ws *ws) {
  struct fmqb_clients *c = ws->data;
  if (c->cfg.ops->drained != NULL) {
    c->cfg.ops->drained(ws);
  }
}

static void failure(struct fmqb_clients *c, struct fmqb_ws *ws) {
  char why[48];
  switch (ws->end) {
  case FMQB_WS_END_CONNECT:
    snprintf(why, sizeof why, "connect_%s", uv_err_name(ws->err));
    break;
  case FMQB_WS_END_REFUSED:
    snprintf(why, sizeof why, "http_%u", ws->status);
    break;
  case FMQB_WS_END_PROTOCOL:
    snprintf(why, sizeof why, "protocol");
    break;
  case FMQB_WS_END_LOCAL:
    snprintf(why, sizeof why, "not_ready_in_time");
    break;
  default:
    snprintf(why, sizeof why, "closed_before_ready");
    break;
  }
  fmqb_errors_add(&c->failures, why, strlen(why));
}

static void on_closed(struct fmqb_ws *ws) {
  struct fmqb_clients *c = ws->data;
  uint8_t *f = &c->flags[ws->id];
  *f |= F_DONE;
  c->closed++;
  if (*f & F_OPEN) {
    c->open--;
  }
  if (!(*f & F_READY)) {
    c->failed++;
    c->pending--;
    failure(c, ws);
  }
  c->cfg.ops->closed(ws);
  start_more(c);
  check_settled(c);
}

static const struct fmqb_ws_ops set_ops = {on_open, on_text, on_pong, on_drained, on_closed};

void fmqb_clients_init(struct fmqb_clients *c, uv_loop_t *loop, const struct sockaddr_in *dst,
                       const struct fmqb_clients_cfg *cfg) {
  memset(c, 0, sizeof *c);
  c->cfg = *cfg;
  if (c->cfg.concurrency == 0) {
    c->cfg.concurrency = 200;
  }
  if (c->cfg.per_source == 0) {
    c->cfg.per_source = fmqb_default_per_source();
  }
  fmqb_ws_ctx_init(&c->ctx, loop, dst);
  c->ws = fmqb_calloc(c->cfg.n, sizeof *c->ws);
  c->flags = fmqb_calloc(c->cfg.n, 1);
}

static void start_more(struct fmqb_clients *c) {
  while (c->pending < c->cfg.concurrency && c->next < c->cfg.n) {
    uint32_t i = c->next++;
    struct fmqb_ws *ws = &c->ws[i];
    struct sockaddr_in src;
    char target[1024];
    ws->id = i;
    ws->data = c;
    ws->ops = &set_ops;
    ws->rcvbuf = c->cfg.rcvbuf != NULL ? c->cfg.rcvbuf(c->cfg.data, i) : 0;
    fmqb_source_addr(i, c->cfg.per_source, &src);
    c->cfg.target(c->cfg.data, i, target, sizeof target);
    c->flags[i] |= F_STARTED;
    c->pending++;
    if (fmqb_ws_connect(ws, &c->ctx, &src, target) != 0) {
      c->pending--;
      c->failed++;
      c->flags[i] |= F_DONE;
      fmqb_errors_add(&c->failures, "socket", 6);
    }
  }
}

void fmqb_clients_start(struct fmqb_clients *c) {
  c->t_start = fmqb_now_ns();
  if (c->cfg.n == 0) {
    check_settled(c);
    return;
  }
  start_more(c);
  check_settled(c);
}

void fmqb_clients_ready(struct fmqb_clients *c, struct fmqb_ws *ws) {
  uint8_t *f = &c->flags[ws->id];
  if (*f & (F_READY | F_DONE)) {
    return;
  }
  *f |= F_READY;
  c->ready++;
  c->pending--;
  start_more(c);
  check_settled(c);
}

void fmqb_clients_close(struct fmqb_clients *c) {
  c->next = c->cfg.n;                   /* start no more */
  for (uint32_t i = 0; i < c->cfg.n; i++) {
    if ((c->flags[i] & F_STARTED) && !(c->flags[i] & F_DONE) &&
        c->ws[i].state != FMQB_WS_CLOSED) {
      fmqb_ws_abort(&c->ws[i]);
    }
  }
  fmqb_ws_ctx_close(&c->ctx);
}

void fmqb_clients_free(struct fmqb_clients *c) {
  free(c->ws);
  free(c->flags);
  c->ws = NULL;
  c->flags = NULL;
}

void fmqb_clients_report(struct fmqb_clients *c, struct fmqb_json *j) {
  double secs = fmqb_secs((c->t_settled ? c->t_settled : fmqb_now_ns()) - c->t_start);
  double hs = secs > 0 ? (double)c->ready / secs : 0;
  fmqb_say("connections: %u ready, %u failed, in %.2f s (%.0f handshakes+subscribes/s)",
           c->ready, c->failed, secs, hs);
  fmqb_json_open(j, "connect");
  fmqb_json_u64(j, "ready", c->ready);
  fmqb_json_u64(j, "failed", c->failed);
  fmqb_json_num(j, "seconds", secs);
  fmqb_json_num(j, "per_s", hs);
  fmqb_json_end(j);
  if (c->failed > 0) {
    fmqb_report_errors(j, "connect_failures", "connection failures", &c->failures);
  }
}
