#include "conn.h"

#include "container.h"
#include "dispatch.h"
#include "error.h"
#include "log.h"
#include "origin.h"
#include "session.h"
#include "topic.h"
#include "ws_handshake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FMQ_WRITE_BATCH 64

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_shutdown_when_drained(struct fmq_conn *c);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static int conn_state_is_active(enum fmq_conn_state state) {
  return state == FMQ_CONN_HTTP || state == FMQ_CONN_OPEN;
}

static void conn_set_state(struct fmq_conn *c, enum fmq_conn_state state) {
  struct fmq_server *s = c->server;
  if (c->state == FMQ_CONN_OPEN && state != FMQ_CONN_OPEN)
    fmq_session_release(s->session, &c->peer);
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
    fmq_server_arm(s, &s->handshake_deadlines, &c->deadline);
    break;
  case FMQ_CONN_OPEN:
    fmq_server_arm(s, &s->idle_deadlines, &c->deadline);
    fmq_server_arm(s, &s->ping_deadlines, &c->ping);
    break;
  case FMQ_CONN_CLOSING:
    fmq_server_arm(s, &s->close_deadlines, &c->deadline);
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

static void on_close(uv_handle_t *h) {
  struct fmq_conn *c = h->data;
  conn_free_http(c);
  fmq_ws_reader_close(&c->reader);
  fmq_outq_close(&c->outq);
  fmq_identity_close(&c->peer.identity);
  fmq_rate_close(&c->rate);
  fmq_snapshot_unref(c->snapshot);
  free(c);
}

void fmq_conn_abort(struct fmq_conn *c) {
  if (c->state == FMQ_CONN_CLOSED)
    return;
  fmq_log_debug("conn %llu: closed", (unsigned long long)c->id);
  conn_set_state(c, FMQ_CONN_CLOSED);
  fmq_server_forget(c->server, c);
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* Queues b whatever the limit: handshake responses and close frames. */
static void conn_push(struct fmq_conn *c, struct fmq_buf *b) {
  if (b == NULL || fmq_outq_push(&c->outq, b) != 0) {
    fmq_log_error("conn %llu: out of memory", (unsigned long long)c->id);
    fmq_conn_abort(c);
    return;
  }
  fmq_server_want_flush(c->server, c);
}

static void conn_send_close(struct fmq_conn *c, uint16_t code, const char *reason) {
  if ((c->flags & FMQ_CONN_CLOSE_SENT) || c->state == FMQ_CONN_CLOSED)
    return;
  uint8_t frame[FMQ_WS_HEADER_MAX + 2 + FMQ_WS_CONTROL_MAX];
  size_t n = fmq_ws_close_frame_encode(frame, code, reason, reason ? strlen(reason) : 0);
  c->flags |= FMQ_CONN_CLOSE_SENT;
  conn_set_state(c, FMQ_CONN_CLOSING);
  conn_push(c, fmq_buf_copy(frame, n));
}

/* RFC 6455 "fail the WebSocket connection": say why, then stop listening. */
void fmq_conn_fail(struct fmq_conn *c, uint16_t code, const char *reason) {
  fmq_log_debug("conn %llu: failing with %u: %s", (unsigned long long)c->id, code, reason);
  c->flags |= FMQ_CONN_INPUT_DONE | FMQ_CONN_CLOSE_AFTER_WRITE;
  conn_send_close(c, code, reason);
  conn_shutdown_when_drained(c);
}

void fmq_conn_close(struct fmq_conn *c, uint16_t code, const char *reason) {
  if (c->state == FMQ_CONN_HTTP)
    fmq_conn_abort(c);
  else if (c->state == FMQ_CONN_OPEN)
    conn_send_close(c, code, reason);
}

static void conn_refuse(struct fmq_conn *c, int status, const char *reason,
                        const struct fmq_handshake *hs) {
  char head[1024];
  int n = hs ? fmq_handshake_render(hs, head, sizeof(head))
             : fmq_http_render_error(status, reason, head, sizeof(head));
  fmq_log_debug("conn %llu: refused with %d: %s", (unsigned long long)c->id, status, reason);
  conn_free_http(c);
  c->flags |= FMQ_CONN_INPUT_DONE | FMQ_CONN_CLOSE_AFTER_WRITE;
  conn_set_state(c, FMQ_CONN_CLOSING);
  conn_push(c, n > 0 ? fmq_buf_copy(head, (size_t)n) : NULL);
}

void fmq_conn_send(struct fmq_conn *c, struct fmq_buf *frame) {
  if (c->state != FMQ_CONN_OPEN) {
    fmq_buf_unref(frame);
    return;
  }
  if (frame == NULL) {
    fmq_conn_fail(c, 1011, "internal error");
    return;
  }
  if (c->outq.bytes + fmq_outq_cost(frame) > c->snapshot->config.websocket.outbound_queue_limit) {
    fmq_buf_unref(frame);
    fmq_log_warn("conn %llu: outbound queue over %llu bytes, closing with 1013",
                 (unsigned long long)c->id,
                 (unsigned long long)c->snapshot->config.websocket.outbound_queue_limit);
    fmq_outq_drop_waiting(&c->outq);
    conn_send_close(c, 1013, "outbound queue full");
    return;
  }
  conn_push(c, frame);
}

static void conn_peer_send(struct fmq_peer *p, struct fmq_buf *frame) {
  fmq_conn_send(fmq_container_of(p, struct fmq_conn, peer), frame);
}

static const struct fmq_peer_ops conn_peer_ops = {.send = conn_peer_send};

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct fmq_conn *c = req->handle->data;
  if (status < 0 && c->state != FMQ_CONN_CLOSED)
    fmq_conn_abort(c);
}

/* After the last frame we owe is written, send FIN and wait (bounded by
 * the close deadline) for the peer's: closing first with unread input would
 * reset the connection and could destroy the close frame in flight. */
static void conn_shutdown_when_drained(struct fmq_conn *c) {
  if (!(c->flags & FMQ_CONN_CLOSE_AFTER_WRITE) || (c->flags & FMQ_CONN_SHUT_DOWN) ||
      c->outq.count > 0 || c->state == FMQ_CONN_CLOSED)
    return;
  c->flags |= FMQ_CONN_SHUT_DOWN;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    fmq_conn_abort(c);
}

static void on_write(uv_write_t *req, int status) {
  struct fmq_conn *c = req->handle->data;
  fmq_outq_written(&c->outq);
  if (c->state == FMQ_CONN_CLOSED)
    return;
  if (status < 0) {
    fmq_log_debug("conn %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(status));
    fmq_conn_abort(c);
  } else if (fmq_outq_waiting(&c->outq)) {
    fmq_server_want_flush(c->server, c);
  } else {
    conn_shutdown_when_drained(c);
  }
}

void fmq_conn_flush(struct fmq_conn *c) {
  uv_buf_t bufs[FMQ_WRITE_BATCH];
  unsigned n = fmq_outq_gather(&c->outq, bufs, FMQ_WRITE_BATCH);
  if (n == 0)
    return;
  int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, n, on_write);
  if (rc != 0) {
    fmq_log_debug("conn %llu: write failed: %s", (unsigned long long)c->id, uv_strerror(rc));
    fmq_conn_abort(c);
  }
}

/* Counts c against limits.max_connections_per_ip. Returns 0, or -1 when
 * its address is at the limit (or cannot be counted). */
static int conn_count_ip(struct fmq_conn *c) {
  struct fmq_server *s = c->server;
  uint64_t limit = s->snapshot->config.limits.max_connections_per_ip;
  struct sockaddr_storage addr;
  int len = sizeof(addr);
  /* A peer already gone has no address; its first read fails. */
  if (limit == 0 || uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &len) != 0 ||
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
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  c->server = s;
  c->listener = listener;
  c->id = ++s->next_conn_id;
  c->peer.ops = &conn_peer_ops;
  c->snapshot = fmq_snapshot_ref(s->snapshot);
  const struct fmq_config *config = &c->snapshot->config;
  fmq_http_request_init(c->http, config->websocket.max_header_size);
  fmq_ws_reader_init(&c->reader, config->websocket.max_message_size,
                     (uint32_t)config->websocket.max_fragments);
  fmq_outq_init(&c->outq);

  int rc = uv_accept((uv_stream_t *)&listener->tcp, (uv_stream_t *)&c->tcp);
  if (rc == 0)
    rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc != 0) {
    c->state = FMQ_CONN_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return rc;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  LIST_INSERT_HEAD(&s->conns, c, link);
  const char *refusal = NULL;
  if (s->nactive >= s->snapshot->config.limits.max_connections)
    refusal = "connection limit reached";
  else if (conn_count_ip(c) != 0)
    refusal = "connection limit for this address reached";
  conn_set_state(c, FMQ_CONN_HTTP);
  fmq_log_debug("conn %llu: accepted", (unsigned long long)c->id);
  /* Refused at once, before reading: a request head costs memory too. */
  if (refusal != NULL)
    conn_refuse(c, 503, refusal, NULL);
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct fmq_conn *c = h->data;
  *buf = uv_buf_init((char *)c->server->read_buf, sizeof(c->server->read_buf));
}

/* websocket.allowed_origins (protocol-v1 section 8): a request without
 * Origin is not from a browser, and auth alone judges it. */
static int conn_origin_allowed(const struct fmq_conn *c) {
  const struct fmq_strv *allowed = &c->snapshot->config.websocket.allowed_origins;
  size_t len;
  const char *origin = fmq_http_field(c->http, "Origin", &len);
  char norm[512];
  if (allowed->n == 0 || origin == NULL)
    return 1;
  if (fmq_origin_normalize(origin, len, norm, sizeof(norm)) < 0)
    return 0;
  for (size_t i = 0; i < allowed->n; i++)
    if (strcmp(norm, allowed->v[i]) == 0)
      return 1;
  return 0;
}

/* Each topic= of the upgrade URL must be a filter the credentials may read
 * (protocol-v1 section 1): 400 when it cannot be used, 403 when the ACL
 * refuses it. Returns 0 or the refusing status with *reason (in why when
 * composed). */
static int conn_check_query_topics(struct fmq_conn *c, char *topic, size_t cap, char *why,
                                   size_t whylen, const char **reason) {
  size_t pos = 0, len;
  int rc;
  while ((rc = fmq_http_query_next(c->http, "topic", &pos, topic, cap, &len)) == 1) {
    enum fmq_client_error_code code;
    char msg[96];
    if (fmq_topic_check_filter(topic, len) != 0) {
      *reason = "topic= is not a valid MQTT topic filter";
      return 400;
    }
    if (fmq_session_check_topic(c->server->session, &c->peer, topic, 1, &code, msg,
                                sizeof(msg)) != 0) {
      snprintf(why, whylen, "topic=: %s", msg);
      *reason = why;
      return code == FMQ_CE_FORBIDDEN ? 403 : 400;
    }
  }
  *reason = "malformed query string";
  return rc == 0 ? 0 : 400;
}

/* After a valid handshake: the origin, the credentials, then the topics.
 * buf: cap bytes, enough for any decoded query value. Returns 0 or the
 * refusing status with *reason (in why when composed). */
static int conn_admit(struct fmq_conn *c, char *buf, size_t cap, char *why, size_t whylen,
                      const char **reason) {
  const char *token = NULL, *cause = NULL;
  size_t len = 0;
  if (!conn_origin_allowed(c)) {
    *reason = "origin not allowed";
    return 403;
  }
  int rc = fmq_auth_credentials(c->http, buf, cap, &token, &len);
  if (rc < 0) {
    *reason = "malformed query string";
    return 400;
  }
  rc = fmq_auth_check(&c->snapshot->auth, rc == 1 ? token : NULL, len, (int64_t)time(NULL),
                      &c->peer.identity, &cause);
  if (rc == FMQ_ENOMEM) {
    *reason = "out of memory";
    return 500;
  }
  if (rc != 0) {
    snprintf(why, whylen, "unauthorized: %s", cause);
    *reason = why;
    return 401;
  }
  return conn_check_query_topics(c, buf, cap, why, whylen, reason);
}

/* Returns how many bytes the request took; the rest are WebSocket frames. */
static size_t conn_read_http(struct fmq_conn *c, const uint8_t *p, size_t len) {
  size_t used = 0;
  int rc = fmq_http_request_feed(c->http, p, len, &used);
  if (rc == FMQ_ENEEDMORE)
    return len;
  if (rc == FMQ_EHTTP) {
    conn_refuse(c, 400, "malformed HTTP request", NULL);
    return len;
  }
  if (rc == FMQ_EHEADERS) {
    conn_refuse(c, 431, "request header fields too large", NULL);
    return len;
  }
  if (rc != 0) {
    conn_refuse(c, 500, fmq_strerror(rc), NULL);
    return len;
  }

  struct fmq_handshake hs;
  const struct fmq_listen_config *lc = c->listener->config;
  fmq_handshake_check(c->http, (const char *const *)lc->paths, lc->npaths, &hs);
  if (hs.status != 101) {
    conn_refuse(c, hs.status, hs.reason, &hs);
    return len;
  }
  /* Room for any decoded query value: decoding never lengthens. */
  char *topic = malloc(c->http->target_len + 1);
  if (topic == NULL) {
    conn_refuse(c, 500, "out of memory", NULL);
    return len;
  }
  char why[128];
  const char *reason = NULL;
  int status = conn_admit(c, topic, c->http->target_len + 1, why, sizeof(why), &reason);
  if (status != 0) {
    free(topic);
    conn_refuse(c, status, reason, NULL);
    return len;
  }
  fmq_rate_init(&c->rate, c->snapshot->config.limits.rate.burst, uv_now(c->server->loop));
  char head[512];
  int n = fmq_handshake_render(&hs, head, sizeof(head));
  conn_set_state(c, FMQ_CONN_OPEN);
  conn_push(c, n > 0 ? fmq_buf_copy(head, (size_t)n) : NULL);
  fmq_log_debug("conn %llu: upgraded", (unsigned long long)c->id);
  fmq_session_attach(c->server->session, &c->peer);
  size_t pos = 0, tlen;
  while (c->state == FMQ_CONN_OPEN &&
         fmq_http_query_next(c->http, "topic", &pos, topic, c->http->target_len + 1, &tlen) == 1)
    fmq_session_subscribe(c->server->session, &c->peer, topic, 0, NULL, 0);
  free(topic);
  conn_free_http(c);
  return used;
}

static void conn_on_close_frame(struct fmq_conn *c, const struct fmq_ws_event *ev) {
  c->flags |= FMQ_CONN_INPUT_DONE | FMQ_CONN_CLOSE_AFTER_WRITE;
  if (!(c->flags & FMQ_CONN_CLOSE_SENT))
    conn_send_close(c, ev->close_code, NULL);
  else
    conn_shutdown_when_drained(c);
}

static void conn_on_event(struct fmq_conn *c, const struct fmq_ws_event *ev) {
  int answering = !(c->flags & FMQ_CONN_CLOSE_SENT);
  switch (ev->type) {
  case FMQ_WS_EV_TEXT:
  case FMQ_WS_EV_BINARY:
    if (answering)
      fmq_dispatch_data(c, ev);
    break;
  case FMQ_WS_EV_PING:
    if (answering)
      fmq_conn_send(c, fmq_ws_frame_new(FMQ_WS_PONG, ev->data, ev->len));
    break;
  case FMQ_WS_EV_CLOSE:
    conn_on_close_frame(c, ev);
    break;
  case FMQ_WS_EV_PONG:
  case FMQ_WS_EV_NONE:
    break;
  }
}

static void conn_read_frames(struct fmq_conn *c, uint8_t *p, size_t len) {
  while (len > 0 && !(c->flags & FMQ_CONN_INPUT_DONE) && c->state != FMQ_CONN_CLOSED) {
    size_t used = 0;
    struct fmq_ws_event ev;
    int rc = fmq_ws_reader_feed(&c->reader, p, len, &used, &ev);
    if (rc < 0) {
      fmq_conn_fail(c, fmq_ws_close_code_for(rc), fmq_strerror(rc));
      return;
    }
    p += used;
    len -= used;
    conn_on_event(c, &ev);
  }
  fmq_ws_reader_done(&c->reader);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct fmq_conn *c = stream->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    if (nread != UV_EOF)
      fmq_log_debug("conn %llu: read failed: %s", (unsigned long long)c->id,
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
  uint64_t activity = c->reader.activity;
  conn_read_frames(c, p, len);
  if (c->state == FMQ_CONN_OPEN && c->reader.activity != activity)
    fmq_server_arm(c->server, &c->server->idle_deadlines, &c->deadline);
}

void fmq_conn_deadline_due(struct fmq_conn *c) {
  switch (c->state) {
  case FMQ_CONN_HTTP:
    conn_refuse(c, 408, "request timeout", NULL);
    break;
  case FMQ_CONN_OPEN:
    fmq_log_debug("conn %llu: idle timeout", (unsigned long long)c->id);
    conn_send_close(c, 1001, "idle timeout");
    break;
  case FMQ_CONN_ACCEPTED:
  case FMQ_CONN_CLOSING:
  case FMQ_CONN_CLOSED:
    fmq_conn_abort(c);
    break;
  }
}

void fmq_conn_ping_due(struct fmq_conn *c) {
  struct fmq_server *s = c->server;
  fmq_server_arm(s, &s->ping_deadlines, &c->ping);
  fmq_conn_send(c, fmq_buf_ref(s->ping_frame));
}
