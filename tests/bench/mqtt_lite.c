#include "mqtt_lite.h"

#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PACKET (16u << 20)

static void flush(struct fmqb_mqtt *m);

static uint8_t *reserve(struct fmqb_mqtt *m, size_t n) {
  if (m->out_len + n > m->out_cap) {
    size_t cap = m->out_cap ? m->out_cap : 4096;
    while (cap < m->out_len + n) {
      cap *= 2;
    }
    m->out = fmqb_realloc(m->out, cap);
    m->out_cap = cap;
  }
  uint8_t *p = m->out + m->out_len;
  m->out_len += n;
  return p;
}

static size_t varint_len(size_t v) { return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4; }

/* A fixed header (type byte, remaining length) and room for rem bytes;
 * returns where those go. */
static uint8_t *packet(struct fmqb_mqtt *m, uint8_t type, size_t rem) {
  size_t vl = varint_len(rem);
  uint8_t *p = reserve(m, 1 + vl + rem);
  *p++ = type;
  size_t v = rem;
  do {
    uint8_t b = v % 128;
    v /= 128;
    *p++ = (uint8_t)(v ? b | 0x80 : b);
  } while (v);
  return p;
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t n) {
  *p++ = (uint8_t)(n >> 8);
  *p++ = (uint8_t)n;
  memcpy(p, s, n);
  return p + n;
}

/* --- closing --- */

static void on_handle_closed(uv_handle_t *h) {
  struct fmqb_mqtt *m = h->data;
  if (--m->open_handles > 0) {
    return;
  }
  free(m->in);
  free(m->out);
  free(m->wbuf);
  m->in = m->out = m->wbuf = NULL;
  m->in_len = m->out_len = m->inflight = 0;
  m->ops->closed(m);
}

static void finish(struct fmqb_mqtt *m, int err) {
  if (m->state == FMQB_MQTT_CLOSED) {
    return;
  }
  m->state = FMQB_MQTT_CLOSED;
  m->err = err;
  uv_close((uv_handle_t *)&m->ping, on_handle_closed);
  uv_close((uv_handle_t *)&m->tcp, on_handle_closed);
}

void fmqb_mqtt_close(struct fmqb_mqtt *m) {
  if (m->state == FMQB_MQTT_UP) {
    uint8_t *p = packet(m, 0xE0, 0);
    (void)p;
    flush(m);
  }
  finish(m, 0);
}

/* --- writing --- */

static void on_write(uv_write_t *req, int status) {
  struct fmqb_mqtt *m = fmqb_container_of(req, struct fmqb_mqtt, req.write);
  free(m->wbuf);
  m->wbuf = NULL;
  m->inflight = 0;
  m->writing = 0;
  if (status < 0) {
    if (status != UV_ECANCELED) {
      finish(m, status);
    }
    return;
  }
  if (m->out_len > 0) {
    flush(m);                       /* may write it all at once, or start a write */
  }
  if (!m->writing && m->out_len == 0 && m->state != FMQB_MQTT_CLOSED &&
      m->ops->drained != NULL) {
    m->ops->drained(m);
  }
}

static void flush(struct fmqb_mqtt *m) {
  if (m->writing || m->out_len == 0 || m->state < FMQB_MQTT_WAIT_CONNACK ||
      m->state == FMQB_MQTT_CLOSED) {
    return;
  }
  uv_buf_t b = uv_buf_init((char *)m->out, (unsigned)m->out_len);
  int n = uv_try_write((uv_stream_t *)&m->tcp, &b, 1);
  if (n == (int)m->out_len) {
    /* No ops->drained here: the caller is still at work (it may be the
     * owner's own loop filling the buffer), and a call back into it would
     * recurse. drained comes only after an asynchronous write. */
    m->out_len = 0;
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    finish(m, n);
    return;
  }
  if (n < 0) {
    n = 0;
  }
  m->wbuf = m->out;
  m->inflight = m->out_len - (size_t)n;
  m->out = NULL;
  m->out_len = m->out_cap = 0;
  m->writing = 1;
  b = uv_buf_init((char *)m->wbuf + n, (unsigned)m->inflight);
  int rc = uv_write(&m->req.write, (uv_stream_t *)&m->tcp, &b, 1, on_write);
  if (rc != 0) {
    m->writing = 0;
    finish(m, rc);
  }
}

void fmqb_mqtt_flush(struct fmqb_mqtt *m) { flush(m); }

uint16_t fmqb_mqtt_subscribe(struct fmqb_mqtt *m, const char *filter, int qos) {
  size_t n = strlen(filter);
  uint16_t pid = ++m->next_pid ? m->next_pid : ++m->next_pid;
  uint8_t *p = packet(m, 0x82, 2 + 2 + n + 1);
  *p++ = (uint8_t)(pid >> 8);
  *p++ = (uint8_t)pid;
  p = put_str(p, filter, n);
  *p = (uint8_t)qos;
  flush(m);
  return pid;
}

uint8_t *fmqb_mqtt_publish_begin(struct fmqb_mqtt *m, const char *topic, size_t tlen,
                                 size_t n) {
  uint8_t *p = packet(m, 0x30, 2 + tlen + n);
  m->published++;
  return put_str(p, topic, tlen);
}

static void on_ping(uv_timer_t *t) {
  struct fmqb_mqtt *m = t->data;
  if (m->state == FMQB_MQTT_UP) {
    packet(m, 0xC0, 0);
    flush(m);
  }
}

/* --- reading --- */

/* Handles one packet (type byte b0, body p of n bytes). */
static void handle(struct fmqb_mqtt *m, uint8_t b0, const uint8_t *p, size_t n) {
  switch (b0 >> 4) {
  case 2:                                                   /* CONNACK */
    if (n < 2 || p[1] != 0) {
      finish(m, -1);
      return;
    }
    m->state = FMQB_MQTT_UP;
    if (m->keepalive > 0) {
      uint64_t ms = (uint64_t)m->keepalive * 500;
      uv_timer_start(&m->ping, on_ping, ms, ms);
    }
    m->ops->up(m);
    return;
  case 3: {                                                 /* PUBLISH */
    int qos = (b0 >> 1) & 3;
    if (n < 2) {
      finish(m, -1);
      return;
    }
    size_t tlen = (size_t)p[0] << 8 | p[1];
    size_t off = 2 + tlen + (qos ? 2 : 0);
    if (off > n) {
      finish(m, -1);
      return;
    }
    m->received++;
    if (qos == 1) {
      uint8_t *a = packet(m, 0x40, 2);
      a[0] = p[2 + tlen];
      a[1] = p[3 + tlen];
    } else if (qos == 2) {                                  /* never asked for */
      finish(m, -1);
      return;
    }
    m->ops->publish(m, (const char *)p + 2, tlen, p + off, n - off, qos);
    return;
  }
  case 9:                                                   /* SUBACK */
    if (n >= 3 && m->ops->suback != NULL) {
      m->ops->suback(m, (uint16_t)(p[0] << 8 | p[1]), p[2]);
    }
    return;
  default:                                                  /* PINGRESP, PUBACK */
    return;
  }
}

/* Handles the complete packets at p; returns the bytes consumed. */
static size_t packets(struct fmqb_mqtt *m, const uint8_t *p, size_t n) {
  size_t used = 0;
  while (m->state != FMQB_MQTT_CLOSED && n - used >= 2) {
    const uint8_t *q = p + used;
    size_t avail = n - used, rem = 0, i = 1;
    unsigned shift = 0;
    for (;;) {
      if (i >= avail) {
        return used;
      }
      if (i > 4) {
        finish(m, -1);
        return used;
      }
      rem |= (size_t)(q[i] & 0x7f) << shift;
      shift += 7;
      if (!(q[i++] & 0x80)) {
        break;
      }
    }
    if (rem > MAX_PACKET) {
      finish(m, -1);
      return used;
    }
    if (avail < i + rem) {
      break;
    }
    handle(m, q[0], q + i, rem);
    used += i + rem;
  }
  return used;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct fmqb_mqtt *m = h->data;
  *buf = uv_buf_init((char *)m->rbuf, sizeof m->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct fmqb_mqtt *m = s->data;
  if (nread < 0) {
    finish(m, (int)nread);
    return;
  }
  size_t n = (size_t)nread;
  if (m->in_len == 0) {
    size_t used = packets(m, (const uint8_t *)buf->base, n);
    if (used < n && m->state != FMQB_MQTT_CLOSED) {
      if (m->in_cap < n - used) {
        m->in = fmqb_realloc(m->in, n - used);
        m->in_cap = n - used;
      }
      memcpy(m->in, buf->base + used, n - used);
      m->in_len = n - used;
    }
  } else {
    if (m->in_cap < m->in_len + n) {
      m->in_cap = (m->in_len + n) * 2;
      m->in = fmqb_realloc(m->in, m->in_cap);
    }
    memcpy(m->in + m->in_len, buf->base, n);
    m->in_len += n;
    size_t used = packets(m, m->in, m->in_len);
    if (m->state != FMQB_MQTT_CLOSED) {
      memmove(m->in, m->in + used, m->in_len - used);
      m->in_len -= used;
    }
  }
  flush(m);                                 /* the PUBACKs of this read */
}

static void on_connect(uv_connect_t *req, int status) {
  struct fmqb_mqtt *m = fmqb_container_of(req, struct fmqb_mqtt, req.connect);
  if (status == UV_ECANCELED || m->state == FMQB_MQTT_CLOSED) {
    return;
  }
  if (status < 0) {
    finish(m, status);
    return;
  }
  uv_tcp_nodelay(&m->tcp, 1);
  m->state = FMQB_MQTT_WAIT_CONNACK;
  int rc = uv_read_start((uv_stream_t *)&m->tcp, on_alloc, on_read);
  if (rc != 0) {
    finish(m, rc);
    return;
  }
  flush(m);
}

int fmqb_mqtt_connect(struct fmqb_mqtt *m, uv_loop_t *loop, const struct sockaddr_in *addr,
                      const char *client_id, uint16_t keepalive) {
  int rc = uv_tcp_init(loop, &m->tcp);
  if (rc != 0) {
    return rc;
  }
  uv_timer_init(loop, &m->ping);
  m->tcp.data = m->ping.data = m;
  m->open_handles = 2;
  m->keepalive = keepalive;
  m->state = FMQB_MQTT_CONNECTING;
  size_t idn = strlen(client_id);
  if (idn >= sizeof m->client_id) {
    idn = sizeof m->client_id - 1;
  }
  memcpy(m->client_id, client_id, idn);
  m->client_id[idn] = '\0';
  uint8_t *p = packet(m, 0x10, 10 + 2 + idn);
  p = put_str(p, "MQTT", 4);
  *p++ = 4;                                 /* protocol level: 3.1.1 */
  *p++ = 0x02;                              /* clean session */
  *p++ = (uint8_t)(keepalive >> 8);
  *p++ = (uint8_t)keepalive;
  put_str(p, m->client_id, idn);
  rc = uv_tcp_connect(&m->req.connect, &m->tcp, (const struct sockaddr *)addr, on_connect);
  if (rc != 0) {
    m->state = FMQB_MQTT_CLOSED;
    m->err = rc;
    uv_close((uv_handle_t *)&m->ping, on_handle_closed);
    uv_close((uv_handle_t *)&m->tcp, on_handle_closed);
  }
  return 0;
}
