#include "stream.h"

#include "container.h"
#include "log.h"

#define FMQ_WRITE_BATCH 64

static void stream_want_flush(struct fmq_stream *s);
static void stream_shutdown_when_drained(struct fmq_stream *s);

static void pending_remove(struct fmq_stream *s) {
  if (!(s->flags & FMQ_STREAM_PENDING))
    return;
  LIST_REMOVE(s, pending_link);
  s->flags &= ~FMQ_STREAM_PENDING;
}

static void on_write(uv_write_t *req, int status) {
  struct fmq_stream *s = fmq_container_of(req, struct fmq_stream, write_req);
  fmq_outq_written(&s->outq);
  if (fmq_stream_closed(s))
    return;
  if (status < 0) {
    fmq_log_debug("conn %llu: write failed: %s", (unsigned long long)s->id, uv_strerror(status));
    s->ops->failed(s);
  } else if (fmq_outq_waiting(&s->outq)) {
    stream_want_flush(s);
  } else {
    stream_shutdown_when_drained(s);
  }
}

static void stream_flush(struct fmq_stream *s) {
  uv_buf_t bufs[FMQ_WRITE_BATCH];
  unsigned n = fmq_outq_gather(&s->outq, bufs, FMQ_WRITE_BATCH);
  if (n == 0)
    return;
  int rc = uv_write(&s->write_req, (uv_stream_t *)&s->tcp, bufs, n, on_write);
  if (rc != 0) {
    fmq_log_debug("conn %llu: write failed: %s", (unsigned long long)s->id, uv_strerror(rc));
    s->ops->failed(s);
  }
}

static void on_flush(uv_prepare_t *h) {
  struct fmq_flush *f = fmq_container_of(h, struct fmq_flush, prepare);
  struct fmq_stream *s;
  while ((s = LIST_FIRST(&f->pending)) != NULL) {
    pending_remove(s);
    stream_flush(s);
  }
  uv_prepare_stop(h);
}

void fmq_flush_init(struct fmq_flush *f, uv_loop_t *loop) {
  uv_prepare_init(loop, &f->prepare);
  LIST_INIT(&f->pending);
}

void fmq_flush_close(struct fmq_flush *f) {
  if (!uv_is_closing((uv_handle_t *)&f->prepare))
    uv_close((uv_handle_t *)&f->prepare, NULL);
}

static void stream_want_flush(struct fmq_stream *s) {
  if (s->flags & (FMQ_STREAM_PENDING | FMQ_STREAM_CLOSED))
    return;
  s->flags |= FMQ_STREAM_PENDING;
  LIST_INSERT_HEAD(&s->flush->pending, s, pending_link);
  uv_prepare_start(&s->flush->prepare, on_flush);
}

void fmq_stream_init(struct fmq_stream *s, uv_loop_t *loop, struct fmq_flush *flush,
                     const struct fmq_stream_ops *ops, uint64_t id) {
  uv_tcp_init(loop, &s->tcp);
  s->ops = ops;
  s->flush = flush;
  s->id = id;
  s->flags = 0;
  fmq_outq_init(&s->outq);
}

void fmq_stream_write(struct fmq_stream *s, struct fmq_buf *b) {
  if (s->flags & (FMQ_STREAM_SHUT_DOWN | FMQ_STREAM_CLOSED)) {
    fmq_buf_unref(b);
    return;
  }
  if (b == NULL || fmq_outq_push(&s->outq, b) != 0) {
    fmq_log_error("conn %llu: out of memory", (unsigned long long)s->id);
    s->ops->failed(s);
    return;
  }
  stream_want_flush(s);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct fmq_stream *s = fmq_container_of(req, struct fmq_stream, shutdown_req);
  if (status < 0 && !fmq_stream_closed(s))
    s->ops->failed(s);
}

/* Closing first with unread input would reset the connection and could
 * destroy the last frame in flight; FIN after it does not. */
static void stream_shutdown_when_drained(struct fmq_stream *s) {
  if (!(s->flags & FMQ_STREAM_END) || (s->flags & (FMQ_STREAM_SHUT_DOWN | FMQ_STREAM_CLOSED)) ||
      s->outq.count > 0)
    return;
  s->flags |= FMQ_STREAM_SHUT_DOWN;
  if (uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->tcp, on_shutdown) != 0)
    s->ops->failed(s);
}

void fmq_stream_end(struct fmq_stream *s) {
  s->flags |= FMQ_STREAM_END;
  stream_shutdown_when_drained(s);
}

static void on_close(uv_handle_t *h) {
  struct fmq_stream *s = fmq_container_of((uv_tcp_t *)h, struct fmq_stream, tcp);
  fmq_outq_close(&s->outq);
  s->ops->closed(s);
}

void fmq_stream_close(struct fmq_stream *s) {
  if (fmq_stream_closed(s))
    return;
  pending_remove(s);
  s->flags |= FMQ_STREAM_CLOSED;
  uv_close((uv_handle_t *)&s->tcp, on_close);
}
