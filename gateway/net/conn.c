#include "conn.h"

#include "container.h"
#include "http_phase.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static int conn_state_is_active(enum fmq_conn_state state) {
  return state == FMQ_CONN_HTTP || state == FMQ_CONN_OPEN;
}

static void conn_set_state(struct fmq_conn *c, enum fmq_conn_state state) {
  struct fmq_server *s = c->server;
  if (c->state == FMQ_CONN_OPEN && state != FMQ_CONN_OPEN)
    fmq_websocket_stop(&c->ws);
  s->nactive += conn_state_is_active(state) - conn_state_is_active(c->state);
  if (c->ip_counted && !conn_state_is_active(state)) {
    fmq_ipcount_remove(&s->per_ip, &c->ip);
    c->ip_counted = 0;
  }
  c->state = state;
  switch (state) {
  case FMQ_CONN_ACCEPTED:
    break;
  case FMQ_CONN_HTTP:
    fmq_timer_arm(&s->timer, &s->handshake_deadlines, &c->deadline);
    break;
  case FMQ_CONN_OPEN:
    fmq_timer_arm(&s->timer, &s->idle_deadlines, &c->deadline);
    fmq_timer_arm(&s->timer, &s->ping_deadlines, &c->ping);
    break;
  case FMQ_CONN_CLOSING:
    fmq_timer_arm(&s->timer, &s->close_deadlines, &c->deadline);
    fmq_deadline_disarm(&c->ping);
    break;
  case FMQ_CONN_CLOSED:
    fmq_deadline_disarm(&c->deadline);
    fmq_deadline_disarm(&c->ping);
    break;
  }
}

static void conn_free_http(struct fmq_conn *c) {
  if (c->http == NULL)
    return;
  fmq_http_request_close(c->http);
  free(c->http);
  c->http = NULL;
}

static void conn_stream_closed(struct fmq_stream *stream) {
  struct fmq_conn *c = fmq_container_of(stream, struct fmq_conn, stream);
  free(c->kept);
  conn_free_http(c);
  fmq_websocket_close(&c->ws);
  fmq_snapshot_unref(c->snapshot);
  free(c);
}

void fmq_conn_abort(struct fmq_conn *c) {
  if (c->state == FMQ_CONN_CLOSED)
    return;
  fmq_log_debug("conn %llu: closed", (unsigned long long)c->stream.id);
  conn_set_state(c, FMQ_CONN_CLOSED);
  fmq_server_forget(c->server, c);
  fmq_stream_close(&c->stream);
}

static void conn_stream_failed(struct fmq_stream *stream) {
  fmq_conn_abort(fmq_container_of(stream, struct fmq_conn, stream));
}

static const struct fmq_stream_ops conn_stream_ops = {.failed = conn_stream_failed,
                                                      .closed = conn_stream_closed};

static void conn_ws_closing(struct fmq_websocket *w) {
  conn_set_state(fmq_container_of(w, struct fmq_conn, ws), FMQ_CONN_CLOSING);
}

static void conn_feed_ws(struct fmq_conn *c, uint8_t *p, size_t len);

/* Backpressure over: what was kept is fed first, then the socket is read
 * again (unless feeding paused it anew). Inside on_read, on_read itself
 * goes on. */
static void conn_ws_resume(struct fmq_websocket *w) {
  struct fmq_conn *c = fmq_container_of(w, struct fmq_conn, ws);
  if (c->in_read || fmq_stream_closed(&c->stream))
    return;
  uint8_t *kept = c->kept;
  size_t nkept = c->nkept;
  c->kept = NULL;
  c->nkept = 0;
  c->in_read = 1;
  if (kept != NULL)
    conn_feed_ws(c, kept, nkept);
  c->in_read = 0;
  free(kept);
  if (!fmq_websocket_paused(&c->ws) && !fmq_stream_closed(&c->stream)) {
    if (c->state == FMQ_CONN_OPEN)
      fmq_timer_arm(&c->server->timer, &c->server->idle_deadlines, &c->deadline);
    if (uv_read_start((uv_stream_t *)&c->stream.tcp, on_alloc, on_read) != 0)
      fmq_conn_abort(c);
  }
}

static const struct fmq_websocket_ops conn_ws_ops = {.closing = conn_ws_closing,
                                                     .resume = conn_ws_resume};

void fmq_conn_close(struct fmq_conn *c, uint16_t code, const char *reason) {
  if (c->state == FMQ_CONN_HTTP)
    fmq_conn_abort(c);
  else if (c->state == FMQ_CONN_OPEN)
    fmq_websocket_send_close(&c->ws, code, reason);
}

/* Writes the HTTP phase's refusal, then closes: input is discarded. */
static void conn_refuse(struct fmq_conn *c, const struct fmq_http_answer *answer) {
  fmq_log_debug("conn %llu: refused with %d: %s", (unsigned long long)c->stream.id,
                answer->status, answer->reason);
  conn_free_http(c);
  conn_set_state(c, FMQ_CONN_CLOSING);
  fmq_stream_write(&c->stream,
                   answer->head_len > 0 ? fmq_buf_copy(answer->head, answer->head_len) : NULL);
  fmq_stream_end(&c->stream);
}

/* Counts c against limits.max_connections_per_ip. Returns 0, or -1 when
 * its address is at the limit (or cannot be counted). */
static int conn_count_ip(struct fmq_conn *c) {
  struct fmq_server *s = c->server;
  uint64_t limit = s->snapshot->config.limits.max_connections_per_ip;
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  /* A peer already gone has no address; its first read fails. */
  if (limit == 0 || uv_tcp_getpeername(&c->stream.tcp, (struct sockaddr *)&addr, &len) != 0 ||
      fmq_ip_from_sockaddr((struct sockaddr *)&addr, &c->ip) != 0)
    return 0;
  if (fmq_ipcount_get(&s->per_ip, &c->ip) >= limit || fmq_ipcount_add(&s->per_ip, &c->ip) < 0)
    return -1;
  c->ip_counted = 1;
  return 0;
}

/* Out of memory, returns UV_ENOMEM before taking anything from the
 * listener: the server then accepts the connection into its spare handle
 * and closes it (server.c). */
int fmq_conn_accept(struct fmq_listener *listener) {
  struct fmq_server *s = listener->server;
  struct fmq_conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  c->http = malloc(sizeof(*c->http));
  if (c->http == NULL) {
    free(c);
    return UV_ENOMEM;
  }
  fmq_stream_init(&c->stream, s->loop, &s->flush, &conn_stream_ops, ++s->next_conn_id);
  c->server = s;
  c->listener = listener;
  c->snapshot = fmq_snapshot_ref(s->snapshot);
  const struct fmq_config *config = &c->snapshot->config;
  fmq_http_request_init(c->http, config->websocket.max_header_size);
  fmq_websocket_init(&c->ws, &c->stream, &conn_ws_ops, config, s->session);

  int rc = uv_accept((uv_stream_t *)&listener->tcp, (uv_stream_t *)&c->stream.tcp);
  if (rc == 0)
    rc = uv_read_start((uv_stream_t *)&c->stream.tcp, on_alloc, on_read);
  if (rc != 0) {
    c->state = FMQ_CONN_CLOSED;
    fmq_stream_close(&c->stream);
    return rc;
  }
  uv_tcp_nodelay(&c->stream.tcp, 1);
  LIST_INSERT_HEAD(&s->conns, c, link);
  const char *refusal = NULL;
  if (s->nactive >= s->snapshot->config.limits.max_connections)
    refusal = "connection limit reached";
  else if (conn_count_ip(c) != 0)
    refusal = "connection limit for this address reached";
  conn_set_state(c, FMQ_CONN_HTTP);
  fmq_log_debug("conn %llu: accepted", (unsigned long long)c->stream.id);
  /* Refused at once, before reading: a request head costs memory too. */
  if (refusal != NULL) {
    struct fmq_http_answer answer;
    fmq_http_phase_refusal(503, refusal, &answer);
    conn_refuse(c, &answer);
  }
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct fmq_conn *c = fmq_container_of((uv_tcp_t *)h, struct fmq_conn, stream.tcp);
  *buf = uv_buf_init((char *)c->server->read_buf, sizeof(c->server->read_buf));
}

/* Returns how many bytes the request took; the rest are WebSocket frames. */
static size_t conn_read_http(struct fmq_conn *c, const uint8_t *p, size_t len) {
  struct fmq_http_answer answer;
  size_t used = fmq_http_phase_feed(c->http, c->listener->config, c->snapshot,
                                    c->server->session, &c->ws.peer, p, len, &answer);
  if (answer.status == 0)
    return used;
  if (answer.status != 101) {
    conn_refuse(c, &answer);
    return used;
  }
  /* Decoding never lengthens: the target's size holds any query value. */
  char *topic = malloc(c->http->target_len + 1);
  if (topic == NULL) {
    fmq_http_phase_refusal(500, "out of memory", &answer);
    conn_refuse(c, &answer);
    return used;
  }
  conn_set_state(c, FMQ_CONN_OPEN);
  fmq_stream_write(&c->stream,
                   answer.head_len > 0 ? fmq_buf_copy(answer.head, answer.head_len) : NULL);
  fmq_log_debug("conn %llu: upgraded", (unsigned long long)c->stream.id);
  if (c->state == FMQ_CONN_OPEN)
    fmq_websocket_open(&c->ws, c->http, topic);
  else
    free(topic);
  conn_free_http(c);
  return used;
}

/* Feeds p to the WebSocket. Paused, it keeps the rest (a copy: p may be
 * the loop's read buffer) and stops reading; a paused client is not idle,
 * it is waiting for the broker. */
static void conn_feed_ws(struct fmq_conn *c, uint8_t *p, size_t len) {
  int activity = 0;
  size_t used = fmq_websocket_feed(&c->ws, p, len, &activity);
  if (activity && c->state == FMQ_CONN_OPEN)
    fmq_timer_arm(&c->server->timer, &c->server->idle_deadlines, &c->deadline);
  if (!fmq_websocket_paused(&c->ws) || fmq_stream_closed(&c->stream))
    return;
  if (used < len) {
    c->kept = malloc(len - used);
    if (c->kept == NULL) {
      /* Failing resumes reading, for the close frame. */
      fmq_websocket_fail(&c->ws, 1011, "internal error");
      return;
    }
    memcpy(c->kept, p + used, len - used);
    c->nkept = len - used;
  }
  uv_read_stop((uv_stream_t *)&c->stream.tcp);
  if (c->state == FMQ_CONN_OPEN)
    fmq_deadline_disarm(&c->deadline);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct fmq_conn *c = fmq_container_of((uv_tcp_t *)stream, struct fmq_conn, stream.tcp);
  if (nread == 0)
    return;
  if (nread < 0) {
    if (nread != UV_EOF)
      fmq_log_debug("conn %llu: read failed: %s", (unsigned long long)c->stream.id,
                    uv_strerror((int)nread));
    fmq_conn_abort(c);
    return;
  }
  uint8_t *p = (uint8_t *)buf->base;
  size_t len = (size_t)nread;
  if (c->state == FMQ_CONN_HTTP) {
    size_t used = conn_read_http(c, p, len);
    p += used;
    len -= used;
  }
  if (c->state != FMQ_CONN_OPEN && c->state != FMQ_CONN_CLOSING)
    return;
  c->in_read = 1;
  conn_feed_ws(c, p, len);
  c->in_read = 0;
}

void fmq_conn_deadline_due(struct fmq_deadline *d) {
  struct fmq_conn *c = fmq_container_of(d, struct fmq_conn, deadline);
  struct fmq_http_answer answer;
  switch (c->state) {
  case FMQ_CONN_HTTP:
    fmq_http_phase_refusal(408, "request timeout", &answer);
    conn_refuse(c, &answer);
    break;
  case FMQ_CONN_OPEN:
    fmq_log_debug("conn %llu: idle timeout", (unsigned long long)c->stream.id);
    fmq_websocket_send_close(&c->ws, 1001, "idle timeout");
    /* The node must leave the idle list, or the timer would find it due
     * again at once. */
    if (c->state == FMQ_CONN_OPEN)
      fmq_conn_abort(c);
    break;
  case FMQ_CONN_ACCEPTED:
  case FMQ_CONN_CLOSING:
  case FMQ_CONN_CLOSED:
    fmq_conn_abort(c);
    break;
  }
}

void fmq_conn_ping_due(struct fmq_deadline *d) {
  struct fmq_conn *c = fmq_container_of(d, struct fmq_conn, ping);
  struct fmq_server *s = c->server;
  fmq_timer_arm(&s->timer, &s->ping_deadlines, &c->ping);
  fmq_websocket_send(&c->ws, fmq_buf_ref(s->ping_frame));
}
