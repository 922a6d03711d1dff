#include "ws_client.h"

#include "bench.h"
#include "net.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every connection sends the key of RFC 6455's example; the server cannot
 * tell, and the expected accept value is then a constant. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define READ_BUF_SIZE (256 * 1024)
#define MAX_HEAD 8192
#define MAX_IN (1u << 20)            /* a server frame larger than this is refused */

static void flush_all(uv_prepare_t *p);
static void on_close(uv_handle_t *h);

void fmqb_ws_ctx_init(struct fmqb_ws_ctx *c, uv_loop_t *loop, const struct sockaddr_in *dst) {
  memset(c, 0, sizeof *c);
  c->loop = loop;
  c->dst = *dst;
  fmqb_addr_str(dst, c->host, sizeof c->host);
  c->rbuf_size = READ_BUF_SIZE;
  c->rbuf = fmqb_calloc(1, c->rbuf_size);
  LIST_INIT(&c->pending);
  uv_prepare_init(loop, &c->prepare);
  c->prepare.data = c;
  uv_prepare_start(&c->prepare, flush_all);
  uv_unref((uv_handle_t *)&c->prepare);
}

static void ctx_closed(uv_handle_t *h) {
  struct fmqb_ws_ctx *c = h->data;
  free(c->rbuf);
  c->rbuf = NULL;
}

void fmqb_ws_ctx_close(struct fmqb_ws_ctx *c) {
  uv_close((uv_handle_t *)&c->prepare, ctx_closed);
}

/* --- buffers --- */

static void grow(uint8_t **buf, uint32_t *cap, uint32_t need) {
  if (need <= *cap) {
    return;
  }
  uint32_t n = *cap ? *cap : 256;
  while (n < need) {
    n *= 2;
  }
  *buf = fmqb_realloc(*buf, n);
  *cap = n;
}

static void mark_pending(struct fmqb_ws *ws) {
  if (!ws->on_pending) {
    ws->on_pending = 1;
    LIST_INSERT_HEAD(&ws->ctx->pending, ws, pending_link);
  }
}

static void unmark_pending(struct fmqb_ws *ws) {
  if (ws->on_pending) {
    ws->on_pending = 0;
    LIST_REMOVE(ws, pending_link);
  }
}

static uint8_t *out_reserve(struct fmqb_ws *ws, size_t n) {
  grow(&ws->out, &ws->out_cap, ws->out_len + (uint32_t)n);
  uint8_t *p = ws->out + ws->out_len;
  ws->out_len += (uint32_t)n;
  if (ws->state >= FMQB_WS_HANDSHAKE) {
    mark_pending(ws);
  }
  return p;
}

/* --- closing --- */

static void finish(struct fmqb_ws *ws, enum fmqb_ws_end end) {
  if (ws->state == FMQB_WS_CLOSED) {
    return;
  }
  if (ws->end == FMQB_WS_END_NONE) {
    ws->end = (uint8_t)end;
  }
  ws->state = FMQB_WS_CLOSED;
  unmark_pending(ws);
  uv_close((uv_handle_t *)&ws->tcp, on_close);
}

static void on_close(uv_handle_t *h) {
  struct fmqb_ws *ws = fmqb_container_of(h, struct fmqb_ws, tcp);
  free(ws->in);
  free(ws->out);
  free(ws->wbuf);
  ws->in = ws->out = ws->wbuf = NULL;
  ws->in_len = ws->in_cap = ws->out_len = ws->out_cap = ws->inflight = 0;
  ws->ops->closed(ws);
}

void fmqb_ws_abort(struct fmqb_ws *ws) { finish(ws, FMQB_WS_END_LOCAL); }

/* --- writing --- */

static void on_write(uv_write_t *req, int status);

static void flush_one(struct fmqb_ws *ws) {
  if (ws->writing || ws->out_len == 0 || ws->state == FMQB_WS_CLOSED) {
    return;
  }
  uv_buf_t b = uv_buf_init((char *)ws->out, ws->out_len);
  int n = uv_try_write((uv_stream_t *)&ws->tcp, &b, 1);
  if (n == (int)ws->out_len) {
    ws->out_len = 0;
    /* An idle connection holds no buffer; a busy one keeps a small one. */
    if (ws->out_cap > 16384) {
      free(ws->out);
      ws->out = NULL;
      ws->out_cap = 0;
    }
    if (ws->ops->drained != NULL) {
      ws->ops->drained(ws);
    }
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    ws->err = n;
    finish(ws, FMQB_WS_END_EOF);
    return;
  }
  if (n < 0) {
    n = 0;
  }
  /* The rest goes to a uv_write that owns the buffer until it completes. */
  ws->wbuf = ws->out;
  ws->inflight = ws->out_len - (uint32_t)n;
  ws->out = NULL;
  ws->out_len = ws->out_cap = 0;
  ws->writing = 1;
  b = uv_buf_init((char *)ws->wbuf + n, ws->inflight);
  int rc = uv_write(&ws->req.write, (uv_stream_t *)&ws->tcp, &b, 1, on_write);
  if (rc != 0) {
    ws->writing = 0;
    ws->err = rc;
    finish(ws, FMQB_WS_END_EOF);
  }
}

static void on_write(uv_write_t *req, int status) {
  struct fmqb_ws *ws = fmqb_container_of(req, struct fmqb_ws, req.write);
  free(ws->wbuf);
  ws->wbuf = NULL;
  ws->inflight = 0;
  ws->writing = 0;
  if (status < 0) {
    if (status != UV_ECANCELED) {
      ws->err = status;
      finish(ws, FMQB_WS_END_EOF);
    }
    return;
  }
  if (ws->out_len > 0) {
    flush_one(ws);
  } else if (ws->ops->drained != NULL) {
    ws->ops->drained(ws);
  }
}

static void flush_all(uv_prepare_t *p) {
  struct fmqb_ws_ctx *c = p->data;
  struct fmqb_ws *ws;
  while ((ws = LIST_FIRST(&c->pending)) != NULL) {
    unmark_pending(ws);
    flush_one(ws);
  }
}

/* The mask key is 0: legal (RFC 6455 5.3 asks for an unpredictable key to
 * protect intermediaries from browser-made traffic, which a load generator
 * on loopback is not), and it makes masking free: the payload is sent as
 * it is, so the bench spends nothing per byte on it. */
uint8_t *fmqb_ws_frame_begin(struct fmqb_ws *ws, unsigned opcode, size_t n) {
  if (ws->close_sent) {
    return NULL;                /* nothing may follow a close frame */
  }
  if (ws->state != FMQB_WS_OPEN && !(ws->state == FMQB_WS_CLOSING && opcode >= 0x8)) {
    return NULL;
  }
  size_t hlen = n < 126 ? 2 : n < 65536 ? 4 : 10;
  uint8_t *h = out_reserve(ws, hlen + 4 + n);
  h[0] = (uint8_t)(0x80 | opcode);
  if (n < 126) {
    h[1] = (uint8_t)(0x80 | n);
  } else if (n < 65536) {
    h[1] = 0x80 | 126;
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
  } else {
    h[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) {
      h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
  }
  memset(h + hlen, 0, 4);
  return h + hlen + 4;
}

int fmqb_ws_send_text(struct fmqb_ws *ws, const void *p, size_t n) {
  uint8_t *dst = fmqb_ws_frame_begin(ws, FMQB_WS_TEXT, n);
  if (dst == NULL) {
    return -1;
  }
  memcpy(dst, p, n);
  return 0;
}

int fmqb_ws_send_ping(struct fmqb_ws *ws) {
  return fmqb_ws_frame_begin(ws, FMQB_WS_PING, 0) != NULL ? 0 : -1;
}

void fmqb_ws_close(struct fmqb_ws *ws, uint16_t code) {
  if (ws->state != FMQB_WS_OPEN && ws->state != FMQB_WS_CLOSING) {
    fmqb_ws_abort(ws);
    return;
  }
  if (!ws->close_sent) {
    uint8_t *p = fmqb_ws_frame_begin(ws, FMQB_WS_CLOSE, 2);
    if (p != NULL) {
      p[0] = (uint8_t)(code >> 8);
      p[1] = (uint8_t)code;
    }
    ws->close_sent = 1;
  }
  ws->state = FMQB_WS_CLOSING;
}

/* --- reading --- */

/* Handles complete frames at p; returns the bytes consumed. Stops early
 * when a callback closed the connection. */
static size_t frames(struct fmqb_ws *ws, uint8_t *p, size_t n) {
  size_t used = 0;
  while (ws->state != FMQB_WS_CLOSED && n - used >= 2) {
    uint8_t *f = p + used;
    size_t avail = n - used;
    unsigned fin = f[0] & 0x80, op = f[0] & 0x0f, masked = f[1] & 0x80;
    uint64_t len = f[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
      if (avail < 4) {
        break;
      }
      len = (uint64_t)f[2] << 8 | f[3];
      h = 4;
    } else if (len == 127) {
      if (avail < 10) {
        break;
      }
      len = 0;
      for (int i = 0; i < 8; i++) {
        len = len << 8 | f[2 + i];
      }
      h = 10;
    }
    if (masked) {
      h += 4;
    }
    if (len > MAX_IN || !fin || (f[0] & 0x70) != 0) {
      ws->ctx->protocol_errors++;
      finish(ws, FMQB_WS_END_PROTOCOL);
      break;
    }
    if (avail < h + len) {
      break;
    }
    uint8_t *pl = f + h;
    if (masked) {
      for (uint64_t i = 0; i < len; i++) {
        pl[i] ^= f[h - 4 + (i & 3)];
      }
    }
    used += h + (size_t)len;
    switch (op) {
    case FMQB_WS_TEXT:
    case FMQB_WS_BINARY:
      if (ws->state == FMQB_WS_OPEN) {
        ws->ops->text(ws, (const char *)pl, (size_t)len);
      }
      break;
    case FMQB_WS_PING: {
      uint8_t *pong = fmqb_ws_frame_begin(ws, FMQB_WS_PONG, (size_t)len);
      if (pong != NULL) {
        memcpy(pong, pl, (size_t)len);
      }
      break;
    }
    case FMQB_WS_PONG:
      if (ws->ops->pong != NULL) {
        ws->ops->pong(ws);
      }
      break;
    case FMQB_WS_CLOSE:
      ws->close_rcvd = 1;
      ws->status = len >= 2 ? (uint16_t)(pl[0] << 8 | pl[1]) : 1005;
      if (!ws->close_sent) {
        /* Echo it; the server then closes the TCP connection. */
        fmqb_ws_close(ws, len >= 2 ? ws->status : 1000);
      }
      ws->state = FMQB_WS_CLOSING;
      break;
    default:
      ws->ctx->protocol_errors++;
      finish(ws, FMQB_WS_END_PROTOCOL);
      break;
    }
  }
  return used;
}

/* Handles the response head at p (complete); returns its length, or 0 after
 * closing the connection. */
static size_t head(struct fmqb_ws *ws, const uint8_t *p, size_t n) {
  const char *s = (const char *)p;
  const char *end = memmem(s, n, "\r\n\r\n", 4);
  size_t hlen = (size_t)(end - s) + 4;
  unsigned status = 0;
  if (n > 12 && memcmp(s, "HTTP/1.1 ", 9) == 0) {
    status = (unsigned)((s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0'));
  }
  ws->status = (uint16_t)status;
  if (status != 101) {
    finish(ws, status ? FMQB_WS_END_REFUSED : FMQB_WS_END_PROTOCOL);
    return 0;
  }
  if (memmem(s, hlen, WS_ACCEPT, sizeof WS_ACCEPT - 1) == NULL) {
    ws->ctx->protocol_errors++;
    finish(ws, FMQB_WS_END_PROTOCOL);
    return 0;
  }
  ws->status = 0;
  ws->state = FMQB_WS_OPEN;
  ws->ops->open(ws);
  return hlen;
}

/* Consumes what it can of p; returns the bytes consumed. */
static size_t consume(struct fmqb_ws *ws, uint8_t *p, size_t n) {
  size_t used = 0;
  if (ws->state == FMQB_WS_HANDSHAKE) {
    if (memmem(p, n, "\r\n\r\n", 4) == NULL) {
      if (n > MAX_HEAD) {
        finish(ws, FMQB_WS_END_PROTOCOL);
      }
      return 0;
    }
    used = head(ws, p, n);
    if (used == 0) {
      return 0;
    }
  }
  return used + frames(ws, p + used, n - used);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct fmqb_ws *ws = fmqb_container_of(h, struct fmqb_ws, tcp);
  *buf = uv_buf_init((char *)ws->ctx->rbuf, (unsigned)ws->ctx->rbuf_size);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct fmqb_ws *ws = fmqb_container_of(s, struct fmqb_ws, tcp);
  if (nread < 0) {
    ws->err = nread == UV_EOF ? 0 : (int)nread;
    finish(ws, ws->close_rcvd && ws->close_sent ? FMQB_WS_END_CLEAN : FMQB_WS_END_EOF);
    return;
  }
  if (nread == 0 || ws->state == FMQB_WS_CLOSED) {
    return;
  }
  size_t n = (size_t)nread;
  if (ws->in_len == 0) {
    size_t used = consume(ws, (uint8_t *)buf->base, n);
    if (used < n && ws->state != FMQB_WS_CLOSED) {
      grow(&ws->in, &ws->in_cap, (uint32_t)(n - used));
      memcpy(ws->in, buf->base + used, n - used);
      ws->in_len = (uint32_t)(n - used);
    }
    return;
  }
  grow(&ws->in, &ws->in_cap, ws->in_len + (uint32_t)n);
  memcpy(ws->in + ws->in_len, buf->base, n);
  ws->in_len += (uint32_t)n;
  size_t used = consume(ws, ws->in, ws->in_len);
  if (ws->state == FMQB_WS_CLOSED) {
    return;
  }
  memmove(ws->in, ws->in + used, ws->in_len - used);
  ws->in_len -= (uint32_t)used;
  if (ws->in_len == 0 && ws->in_cap > 16384) {
    free(ws->in);
    ws->in = NULL;
    ws->in_cap = 0;
  }
}

void fmqb_ws_pause(struct fmqb_ws *ws) {
  if (!ws->paused && ws->state != FMQB_WS_CLOSED) {
    ws->paused = 1;
    uv_read_stop((uv_stream_t *)&ws->tcp);
  }
}

void fmqb_ws_resume(struct fmqb_ws *ws) {
  if (ws->paused && ws->state != FMQB_WS_CLOSED) {
    ws->paused = 0;
    uv_read_start((uv_stream_t *)&ws->tcp, on_alloc, on_read);
  }
}

/* --- connecting --- */

static void on_connect(uv_connect_t *req, int status) {
  struct fmqb_ws *ws = fmqb_container_of(req, struct fmqb_ws, req.connect);
  if (status == UV_ECANCELED || ws->state == FMQB_WS_CLOSED) {
    return;
  }
  if (status < 0) {
    ws->err = status;
    finish(ws, FMQB_WS_END_CONNECT);
    return;
  }
  ws->state = FMQB_WS_HANDSHAKE;
  uv_tcp_nodelay(&ws->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&ws->tcp, on_alloc, on_read);
  if (rc != 0) {
    ws->err = rc;
    finish(ws, FMQB_WS_END_CONNECT);
    return;
  }
  mark_pending(ws);
}

int fmqb_ws_connect(struct fmqb_ws *ws, struct fmqb_ws_ctx *c, const struct sockaddr_in *src,
                    const char *target) {
  ws->ctx = c;
  int rc = uv_tcp_init_ex(c->loop, &ws->tcp, AF_INET);
  if (rc != 0) {
    return rc;
  }
  ws->state = FMQB_WS_CONNECTING;
  if (ws->rcvbuf > 0) {
    /* Before connect, so the window the peer is offered is small from the
     * start: a client that stops reading then stops the sender soon. */
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&ws->tcp, &fd) == 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &ws->rcvbuf, sizeof ws->rcvbuf);
    }
  }
  if (src != NULL) {
    /* Leave the port to connect(): bind() alone would take an ephemeral
     * port for this address whatever the destination. */
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno((uv_handle_t *)&ws->tcp, &fd) == 0) {
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    }
    rc = uv_tcp_bind(&ws->tcp, (const struct sockaddr *)src, 0);
  }
  if (rc == 0) {
    rc = uv_tcp_connect(&ws->req.connect, &ws->tcp, (const struct sockaddr *)&c->dst,
                        on_connect);
  }
  if (rc != 0) {
    ws->err = rc;
    ws->end = FMQB_WS_END_CONNECT;
    ws->state = FMQB_WS_CLOSED;
    uv_close((uv_handle_t *)&ws->tcp, on_close);
    return 0;     /* reported through ops->closed like any failed connect */
  }
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\n"
                   "Host: %s\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: " WS_KEY "\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "\r\n",
                   target, c->host);
  if (n < 0 || (size_t)n >= sizeof req) {
    n = 0;
  }
  memcpy(out_reserve(ws, (size_t)n), req, (size_t)n);
  return 0;
}
