#include "server.h"

#include "conn.h"
#include "log.h"
#include "session.h"
#include "ws_frame.h"

#include <netdb.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FMQ_LISTEN_BACKLOG 1024

static void server_close_handles(struct fmq_server *s) {
  if (uv_is_closing((uv_handle_t *)&s->timer.handle))
    return;
  fmq_timer_close(&s->timer);
  fmq_flush_close(&s->flush);
  if (s->session != NULL)
    fmq_session_stop(s->session);
}

void fmq_server_forget(struct fmq_server *s, struct fmq_conn *c) {
  LIST_REMOVE(c, link);
  if (s->stopping && LIST_EMPTY(&s->conns)) {
    fmq_log_info("all connections closed");
    server_close_handles(s);
  }
}

int fmq_server_init(struct fmq_server *s, uv_loop_t *loop, struct fmq_snapshot *snapshot) {
  const struct fmq_config *config = &snapshot->config;
  memset(s, 0, offsetof(struct fmq_server, read_buf));
  s->loop = loop;
  s->snapshot = fmq_snapshot_ref(snapshot);
  fmq_deadline_list_init(&s->handshake_deadlines, config->websocket.handshake_timeout);
  fmq_deadline_list_init(&s->idle_deadlines, config->websocket.idle_timeout);
  fmq_deadline_list_init(&s->close_deadlines, config->websocket.close_timeout);
  fmq_deadline_list_init(&s->ping_deadlines, config->websocket.ping_interval);
  /* Keyed only when used: the table stays zeroed (and unused) otherwise. */
  if (config->limits.max_connections_per_ip > 0 && fmq_ipcount_init(&s->per_ip) != 0) {
    unsigned long e = ERR_get_error();
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
    fmq_log_error("limits.max_connections_per_ip: no SipHash key from OpenSSL: %s",
                  why != NULL ? why : "unknown error");
    ERR_clear_error();
    fmq_server_close(s);
    return UV_ENOSYS;
  }
  s->ping_frame = fmq_ws_frame_new(FMQ_WS_PING, NULL, 0);
  s->listeners = calloc(config->nlisten, sizeof(*s->listeners));
  if (s->ping_frame == NULL || s->listeners == NULL) {
    fmq_server_close(s);
    return UV_ENOMEM;
  }
  fmq_timer_init(&s->timer, loop);
  fmq_timer_watch(&s->timer, &s->handshake_deadlines, fmq_conn_deadline_due);
  fmq_timer_watch(&s->timer, &s->idle_deadlines, fmq_conn_deadline_due);
  fmq_timer_watch(&s->timer, &s->close_deadlines, fmq_conn_deadline_due);
  fmq_timer_watch(&s->timer, &s->ping_deadlines, fmq_conn_ping_due);
  fmq_flush_init(&s->flush, loop);
  return 0;
}

static void on_spare_closed(uv_handle_t *h);

/* No memory for a connection: take it off the listener all the same, into
 * the spare handle, and close it (the client sees its connection closed).
 * Left pending, it would stop the listener for good: libuv stops polling a
 * listener whose accepted connection the callback did not take, until
 * uv_accept. Costs no memory (uv_tcp_init, uv_accept and uv_close allocate
 * nothing). While the spare is still closing, the listener keeps its
 * connection pending and is not polled until the spare's close callback, at
 * the end of this loop turn: while memory is exhausted the gateway closes
 * one connection per loop turn and never spins. Warns at most once a
 * second, with the count since the last warning. */
static void listener_shed(struct fmq_listener *l) {
  struct fmq_server *s = l->server;
  if (s->spare_busy) {
    l->waiting = 1;
    return;
  }
  uv_tcp_init(s->loop, &s->spare);
  s->spare.data = s;
  s->spare_busy = 1;
  int rc = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&s->spare);
  uv_close((uv_handle_t *)&s->spare, on_spare_closed);
  if (rc != 0)
    return;
  s->shed++;
  uint64_t now = uv_now(s->loop);
  if (now >= s->shed_warn_at) {
    fmq_log_warn("out of memory: %llu connection(s) closed at accept since the last warning",
                 (unsigned long long)s->shed);
    s->shed = 0;
    s->shed_warn_at = now + 1000;
  }
}

static void listener_accept(struct fmq_listener *l) {
  /* UV_ENOMEM: nothing allocated, the connection still on the listener. */
  int rc = fmq_conn_accept(l);
  if (rc == UV_ENOMEM)
    listener_shed(l);
  else if (rc < 0)
    fmq_log_warn("accept failed: %s", uv_strerror(rc));
}

static void on_spare_closed(uv_handle_t *h) {
  struct fmq_server *s = h->data;
  s->spare_busy = 0;
  /* A closed listener closed its pending connection itself. */
  if (s->stopping)
    return;
  for (size_t i = 0; i < s->nlisteners; i++) {
    struct fmq_listener *l = &s->listeners[i];
    if (l->waiting) {
      /* Memory may be back; if not, the first takes the spare again and
       * the others wait for it. */
      l->waiting = 0;
      listener_accept(l);
    }
  }
}

static void on_connection(uv_stream_t *server, int status) {
  struct fmq_listener *l = server->data;
  if (status < 0)
    fmq_log_warn("accept failed: %s", uv_strerror(status));
  else
    listener_accept(l);
}

static int format_address(const struct sockaddr_storage *ss, char *out, size_t cap) {
  char host[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, host, sizeof(host));
    return snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
  }
  const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
  uv_ip4_name(a, host, sizeof(host));
  return snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
}

static int listener_start(struct fmq_server *s, struct fmq_listener *l,
                          const struct fmq_listen_config *lc) {
  char host[256];
  uint16_t port;
  if (fmq_config_parse_hostport(lc->address, host, sizeof(host), &port) != 0) {
    fmq_log_error("listen %s: invalid address", lc->address);
    return UV_EINVAL;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  char service[8];
  snprintf(service, sizeof(service), "%u", port);
  int gai = getaddrinfo(host, service, &hints, &ai);
  if (gai != 0) {
    fmq_log_error("listen %s: %s", lc->address, gai_strerror(gai));
    return UV_EINVAL;
  }
  l->server = s;
  l->config = lc;
  uv_tcp_init(s->loop, &l->tcp);
  l->tcp.data = l;
  s->nlisteners++;
  int rc = uv_tcp_bind(&l->tcp, ai->ai_addr, 0);
  freeaddrinfo(ai);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&l->tcp, FMQ_LISTEN_BACKLOG, on_connection);
  if (rc != 0) {
    fmq_log_error("listen %s: %s", lc->address, uv_strerror(rc));
    return rc;
  }
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char name[INET6_ADDRSTRLEN + 16];
  uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
  format_address(&ss, name, sizeof(name));
  fmq_log_info("listening on %s", name);
  return 0;
}

int fmq_server_start(struct fmq_server *s) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < s->snapshot->config.nlisten; i++)
    rc = listener_start(s, &s->listeners[i], &s->snapshot->config.listen[i]);
  return rc;
}

void fmq_server_stop(struct fmq_server *s) {
  if (s->stopping) {
    while (!LIST_EMPTY(&s->conns))
      fmq_conn_abort(LIST_FIRST(&s->conns));
    return;
  }
  s->stopping = 1;
  for (size_t i = 0; i < s->nlisteners; i++)
    uv_close((uv_handle_t *)&s->listeners[i].tcp, NULL);
  if (LIST_EMPTY(&s->conns)) {
    server_close_handles(s);
    return;
  }
  for (struct fmq_conn *c = LIST_FIRST(&s->conns), *next; c != NULL; c = next) {
    next = LIST_NEXT(c, link);
    fmq_conn_close(c, 1001, "server shutting down");
  }
}

void fmq_server_close(struct fmq_server *s) {
  fmq_ipcount_close(&s->per_ip);
  free(s->listeners);
  s->listeners = NULL;
  fmq_buf_unref(s->ping_frame);
  s->ping_frame = NULL;
  fmq_snapshot_unref(s->snapshot);
  s->snapshot = NULL;
}
