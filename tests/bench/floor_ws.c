/* floor-ws: this machine's limit on the work of fan-out, without the
 * gateway. One writer thread writes a fixed WebSocket frame (the `message`
 * the gateway would send for an S-byte payload, unmasked as a server's) M
 * times to each of N loopback TCP sockets, --batch frames per write()
 * (the gateway gathers the frames queued in one loop turn into one write),
 * in rounds over the sockets as a fan-out of M messages does; it waits in
 * epoll when every socket is full. The other ends are read by a sink on the
 * main loop that only counts bytes (no echo, no parsing). Reports
 * deliveries per second and the writer's CPU time per delivery. */

#include "bench.h"
#include "net.h"
#include "report.h"
#include "scenarios.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define CONNECT_CHUNK 500

struct floor_ws;

struct sink {
  uv_tcp_t tcp;
  struct floor_ws *f;
};

struct floor_ws {
  const struct fmqb_opts *o;
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t wake;
  uv_timer_t tick;
  struct sockaddr_in addr;
  uint32_t n, accepted, closed;
  int *wfd;                     /* owned: the writer's sockets */
  struct sink *sinks;           /* owned: the accepted ends */
  uint8_t *frames;              /* owned: batch + 1 copies of the frame */
  size_t flen;
  uint64_t per_socket;          /* bytes each socket carries */
  uint64_t expected, received;
  uint64_t writes, eagain;
  uint64_t t_start, t_written, t_read;
  double writer_cpu_s, sink_cpu0, sink_cpu1;
  pthread_t thread;
  atomic_int writer_done;
  int writer_failed, writer_started, done, wake_closed;
  uint8_t rbuf[256 * 1024];
};

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- the writer thread --- */

static void *writer(void *arg) {
  struct floor_ws *f = arg;
  double cpu0 = thread_cpu();
  int ep = epoll_create1(EPOLL_CLOEXEC);
  uint64_t *sent = calloc(f->n, sizeof *sent);
  uint8_t *blocked = calloc(f->n, 1);
  struct epoll_event *evs = calloc(1024, sizeof *evs);
  if (ep < 0 || sent == NULL || blocked == NULL || evs == NULL) {
    f->writer_failed = 1;
    goto out;
  }
  for (uint32_t i = 0; i < f->n; i++) {
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_ADD, f->wfd[i], &ev);
  }
  size_t max = (size_t)f->o->batch * f->flen;
  uint32_t remaining = f->n;
  while (remaining > 0) {
    uint32_t progressed = 0;
    for (uint32_t i = 0; i < f->n; i++) {
      if (blocked[i] || sent[i] == f->per_socket) {
        continue;
      }
      size_t off = (size_t)(sent[i] % f->flen);
      size_t len = max;
      if (len > f->per_socket - sent[i]) {
        len = (size_t)(f->per_socket - sent[i]);
      }
      ssize_t w = write(f->wfd[i], f->frames + off, len);
      f->writes++;
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          blocked[i] = 1;
          f->eagain++;
          continue;
        }
        f->writer_failed = 1;
        goto out;
      }
      sent[i] += (uint64_t)w;
      progressed++;
      if (sent[i] == f->per_socket) {
        remaining--;
      }
    }
    if (progressed == 0 && remaining > 0) {
      int k = epoll_wait(ep, evs, 1024, 1000);
      for (int e = 0; e < k; e++) {
        blocked[evs[e].data.u32] = 0;
      }
    }
  }
out:
  f->t_written = fmqb_now_ns();
  f->writer_cpu_s = thread_cpu() - cpu0;
  if (ep >= 0) {
    close(ep);
  }
  free(sent);
  free(blocked);
  free(evs);
  atomic_store(&f->writer_done, 1);
  uv_async_send(&f->wake);
  return NULL;
}

/* --- the sink --- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct sink *s = h->data;
  *buf = uv_buf_init((char *)s->f->rbuf, sizeof s->f->rbuf);
}

static void finish(struct floor_ws *f);

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct sink *s = st->data;
  struct floor_ws *f = s->f;
  (void)buf;
  if (nread < 0) {
    uv_read_stop(st);
    return;
  }
  f->received += (uint64_t)nread;
  if (f->received >= f->expected && f->t_read == 0) {
    f->t_read = fmqb_now_ns();
    f->sink_cpu1 = thread_cpu();
    finish(f);
  }
}

static void on_connection(uv_stream_t *l, int status) {
  struct floor_ws *f = l->data;
  if (status < 0 || f->accepted >= f->n) {
    return;
  }
  struct sink *s = &f->sinks[f->accepted];
  uv_tcp_init(&f->loop, &s->tcp);
  s->tcp.data = s;
  s->f = f;
  if (uv_accept(l, (uv_stream_t *)&s->tcp) != 0) {
    uv_close((uv_handle_t *)&s->tcp, NULL);
    return;
  }
  f->accepted++;
}

/* The wake handle stays open until both the writer has sent its last wake
 * and the run is over: the writer may finish after the sink. */
static void close_wake(struct floor_ws *f) {
  if (!f->wake_closed && f->done && (!f->writer_started || atomic_load(&f->writer_done))) {
    f->wake_closed = 1;
    uv_close((uv_handle_t *)&f->wake, NULL);
  }
}

static void on_wake(uv_async_t *a) {
  struct floor_ws *f = a->data;
  if (atomic_load(&f->writer_done) && f->writer_failed) {
    finish(f);
  }
  close_wake(f);
}

static void on_tick(uv_timer_t *t) {
  struct floor_ws *f = t->data;
  if (f->t_start != 0 && fmqb_secs(fmqb_now_ns() - f->t_start) > f->o->timeout) {
    fmqb_warn("timed out");
    finish(f);
  }
}

static void finish(struct floor_ws *f) {
  if (f->done) {
    return;
  }
  f->done = 1;
  for (uint32_t i = 0; i < f->accepted; i++) {
    uv_close((uv_handle_t *)&f->sinks[i].tcp, NULL);
  }
  uv_close((uv_handle_t *)&f->listener, NULL);
  uv_close((uv_handle_t *)&f->tick, NULL);
  close_wake(f);
}

/* The frame the gateway sends for a message with an S-byte payload. */
static size_t make_frame(uint8_t *out, size_t cap, const char *topic, uint32_t size) {
  char *json = malloc(size + 256);
  int n = snprintf(json, size + 256, "{\"type\":\"message\",\"topic\":\"%s\",\"payload\":\"",
                   topic);
  size_t len = (size_t)n;
  len += (size_t)snprintf(json + len, 64, "c=0 s=0 t=0");
  while (len < (size_t)n + size) {
    json[len++] = 'x';
  }
  len += (size_t)snprintf(json + len, 64, "\",\"qos\":0,\"retain\":false}");
  size_t h = len < 126 ? 2 : 4;
  if (h + len > cap) {
    free(json);
    return 0;
  }
  out[0] = 0x81;
  if (h == 2) {
    out[1] = (uint8_t)len;
  } else {
    out[1] = 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
  }
  memcpy(out + h, json, len);
  free(json);
  return h + len;
}

static int connect_all(struct floor_ws *f) {
  uint32_t per_source = f->o->per_source ? f->o->per_source : fmqb_default_per_source();
  for (uint32_t i = 0; i < f->n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fmqb_warn("socket: %s", strerror(errno));
      return -1;
    }
    f->wfd[i] = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src;
    fmqb_source_addr(i, per_source, &src);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        (connect(fd, (struct sockaddr *)&f->addr, sizeof f->addr) != 0 &&
         errno != EINPROGRESS)) {
      fmqb_warn("connect %u: %s", i, strerror(errno));
      return -1;
    }
    /* Let the listener keep up (its backlog is bounded). */
    if ((i + 1) % CONNECT_CHUNK == 0 || i + 1 == f->n) {
      uint64_t t0 = fmqb_now_ns();
      while (f->accepted < i + 1 && fmqb_secs(fmqb_now_ns() - t0) < 10) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
      }
      if (f->accepted < i + 1) {
        fmqb_warn("only %u of %u connections accepted", f->accepted, i + 1);
        return -1;
      }
    }
  }
  return 0;
}

int fmqb_floor_ws(const struct fmqb_opts *o, struct fmqb_json *j) {
  struct floor_ws *f = fmqb_calloc(1, sizeof *f);
  int rc = 0;
  f->o = o;
  f->n = o->clients;
  uv_loop_init(&f->loop);
  uv_tcp_init(&f->loop, &f->listener);
  uv_async_init(&f->loop, &f->wake, on_wake);
  uv_timer_init(&f->loop, &f->tick);
  f->listener.data = f->wake.data = f->tick.data = f;
  uv_ip4_addr("127.0.0.1", 0, &f->addr);
  int len = sizeof f->addr;
  if (uv_tcp_bind(&f->listener, (struct sockaddr *)&f->addr, 0) != 0 ||
      uv_listen((uv_stream_t *)&f->listener, 4096, on_connection) != 0 ||
      uv_tcp_getsockname(&f->listener, (struct sockaddr *)&f->addr, &len) != 0) {
    rc = fmqb_fail(j, "cannot listen on 127.0.0.1");
  }
  char topic[128];
  snprintf(topic, sizeof topic, "%s/floor", o->prefix);
  uint8_t frame[70000];
  f->flen = make_frame(frame, sizeof frame, topic, o->size);
  f->frames = fmqb_calloc((size_t)o->batch + 1, f->flen);
  for (uint32_t b = 0; b <= o->batch; b++) {
    memcpy(f->frames + (size_t)b * f->flen, frame, f->flen);
  }
  f->per_socket = (uint64_t)o->messages * f->flen;
  f->expected = f->per_socket * f->n;
  f->wfd = fmqb_calloc(f->n, sizeof *f->wfd);
  for (uint32_t i = 0; i < f->n; i++) {
    f->wfd[i] = -1;
  }
  f->sinks = fmqb_calloc(f->n, sizeof *f->sinks);
  if (rc == 0 && connect_all(f) != 0) {
    rc = fmqb_fail(j, "could not open %u loopback connections", f->n);
  }
  if (rc == 0) {
    fmqb_say("floor-ws: %u sockets, %u frames of %zu bytes each (payload %u), %u per write",
             f->n, o->messages, f->flen, o->size, o->batch);
    for (uint32_t i = 0; i < f->n; i++) {
      uv_read_start((uv_stream_t *)&f->sinks[i].tcp, on_alloc, on_read);
    }
    uv_timer_start(&f->tick, on_tick, 100, 100);
    f->sink_cpu0 = thread_cpu();
    f->t_start = fmqb_now_ns();
    f->writer_started = 1;
    if (pthread_create(&f->thread, NULL, writer, f) != 0) {
      f->writer_started = 0;
      rc = fmqb_fail(j, "pthread_create failed");
      finish(f);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    if (rc == 0) {
      pthread_join(f->thread, NULL);
    }
  } else {
    finish(f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
  }
  for (uint32_t i = 0; i < f->n; i++) {
    if (f->wfd[i] >= 0) {
      close(f->wfd[i]);
    }
  }
  if (rc == 0) {
    uint64_t deliveries = f->received / f->flen;
    double secs = fmqb_secs((f->t_read ? f->t_read : fmqb_now_ns()) - f->t_start);
    double per_s = secs > 0 ? (double)deliveries / secs : 0;
    double cpu_us = deliveries ? f->writer_cpu_s / (double)deliveries * 1e6 : 0;
    double sink_cpu = f->sink_cpu1 > 0 ? f->sink_cpu1 - f->sink_cpu0 : 0;
    fmqb_say("delivered %llu frames in %.3f s: %.0f deliveries/s",
             (unsigned long long)deliveries, secs, per_s);
    fmqb_say("writer CPU %.3f s: %.4f us per delivery (%.3f s per million); %llu writes, "
             "%llu EAGAIN; sink CPU %.3f s", f->writer_cpu_s, cpu_us, cpu_us,
             (unsigned long long)f->writes, (unsigned long long)f->eagain, sink_cpu);
    fmqb_json_u64(j, "sockets", f->n);
    fmqb_json_u64(j, "messages", o->messages);
    fmqb_json_u64(j, "size", o->size);
    fmqb_json_u64(j, "frame_bytes", f->flen);
    fmqb_json_u64(j, "batch", o->batch);
    fmqb_json_u64(j, "expected", (uint64_t)f->n * o->messages);
    fmqb_json_u64(j, "delivered", deliveries);
    fmqb_json_num(j, "seconds", secs);
    fmqb_json_num(j, "deliveries_per_s", per_s);
    fmqb_json_num(j, "writer_cpu_s", f->writer_cpu_s);
    fmqb_json_num(j, "writer_cpu_s_per_million", cpu_us);
    fmqb_json_num(j, "sink_cpu_s", sink_cpu);
    fmqb_json_u64(j, "writes", f->writes);
    if (f->writer_failed || f->received < f->expected) {
      rc = fmqb_fail(j, "the writer failed or the sink did not get everything");
    }
  }
  free(f->wfd);
  free(f->sinks);
  free(f->frames);
  uv_loop_close(&f->loop);
  free(f);
  return rc;
}
