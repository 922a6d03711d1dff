#include "websocket.h"

#include "container.h"
#include "dispatch.h"
#include "error.h"
#include "log.h"
#include "session.h"
#include "ws_frame.h"

#include <stdlib.h>
#include <string.h>

static void websocket_peer_send(struct fmq_peer *p, struct fmq_buf *frame) {
  fmq_websocket_send(fmq_container_of(p, struct fmq_websocket, peer), frame);
}

static void websocket_resume(struct fmq_websocket *w) {
  if (!fmq_websocket_paused(w))
    return;
  w->flags &= ~FMQ_WEBSOCKET_PAUSED;
  w->ops->resume(w);
}

static void websocket_peer_pause(struct fmq_peer *p, int paused) {
  struct fmq_websocket *w = fmq_container_of(p, struct fmq_websocket, peer);
  if (paused)
    w->flags |= FMQ_WEBSOCKET_PAUSED;
  else
    websocket_resume(w);
}

static const struct fmq_peer_ops websocket_peer_ops = {.send = websocket_peer_send,
                                                       .pause = websocket_peer_pause};

void fmq_websocket_init(struct fmq_websocket *w, struct fmq_stream *stream,
                        const struct fmq_websocket_ops *ops, const struct fmq_config *config,
                        struct fmq_session *session) {
  w->stream = stream;
  w->ops = ops;
  w->config = config;
  w->session = session;
  w->flags = 0;
  w->outbound_limit = config->websocket.outbound_queue_limit;
  w->peer.ops = &websocket_peer_ops;
  fmq_ws_reader_init(&w->reader, config->websocket.max_message_size,
                     (uint32_t)config->websocket.max_fragments);
}

void fmq_websocket_close(struct fmq_websocket *w) {
  fmq_ws_reader_close(&w->reader);
  fmq_rate_close(&w->rate);
  fmq_identity_close(&w->peer.identity);
}

/* Open, our close frame not sent, still in the session. */
static int websocket_answering(const struct fmq_websocket *w) {
  const unsigned mask = FMQ_WEBSOCKET_OPEN | FMQ_WEBSOCKET_CLOSE_SENT | FMQ_WEBSOCKET_STOPPED;
  return (w->flags & mask) == FMQ_WEBSOCKET_OPEN;
}

void fmq_websocket_open(struct fmq_websocket *w, const struct fmq_http_request *req,
                        char *topic) {
  fmq_rate_init(&w->rate, w->config->limits.rate.burst, uv_now(w->stream->tcp.loop));
  w->flags |= FMQ_WEBSOCKET_OPEN;
  fmq_session_attach(w->session, &w->peer);
  size_t cap = req->target_len + 1, pos = 0, len;
  while (websocket_answering(w) && fmq_http_query_next(req, "topic", &pos, topic, cap, &len) == 1)
    fmq_session_subscribe(w->session, &w->peer, topic, 0, NULL, 0);
  free(topic);
}

void fmq_websocket_stop(struct fmq_websocket *w) {
  w->flags |= FMQ_WEBSOCKET_STOPPED;
  fmq_session_release(w->session, &w->peer);
}

void fmq_websocket_send_close(struct fmq_websocket *w, uint16_t code, const char *reason) {
  if (!websocket_answering(w))
    return;
  uint8_t frame[FMQ_WS_HEADER_MAX + 2 + FMQ_WS_CONTROL_MAX];
  size_t n = fmq_ws_close_frame_encode(frame, code, reason, reason ? strlen(reason) : 0);
  w->flags |= FMQ_WEBSOCKET_CLOSE_SENT;
  fmq_websocket_stop(w);
  w->ops->closing(w);
  fmq_stream_write(w->stream, fmq_buf_copy(frame, n));
  /* The client's close frame must be read, whatever the broker's state. */
  websocket_resume(w);
}

void fmq_websocket_fail(struct fmq_websocket *w, uint16_t code, const char *reason) {
  fmq_log_debug("conn %llu: failing with %u: %s", (unsigned long long)fmq_websocket_id(w), code,
                reason);
  w->flags |= FMQ_WEBSOCKET_INPUT_DONE;
  fmq_websocket_send_close(w, code, reason);
  fmq_stream_end(w->stream);
}

void fmq_websocket_send(struct fmq_websocket *w, struct fmq_buf *frame) {
  if (!websocket_answering(w)) {
    fmq_buf_unref(frame);
    return;
  }
  if (frame == NULL) {
    fmq_websocket_fail(w, 1011, "internal error");
    return;
  }
  struct fmq_outq *q = &w->stream->outq;
  if (q->bytes + fmq_outq_cost(frame) > w->outbound_limit) {
    fmq_buf_unref(frame);
    fmq_log_warn("conn %llu: outbound queue over %llu bytes, closing with 1013",
                 (unsigned long long)fmq_websocket_id(w), (unsigned long long)w->outbound_limit);
    fmq_outq_drop_waiting(q);
    fmq_websocket_send_close(w, 1013, "outbound queue full");
    return;
  }
  fmq_stream_write(w->stream, frame);
}

/* The client's close frame: echo it unless ours went first, then end. */
static void websocket_on_close_frame(struct fmq_websocket *w, const struct fmq_ws_event *ev) {
  w->flags |= FMQ_WEBSOCKET_INPUT_DONE;
  fmq_websocket_send_close(w, ev->close_code, NULL);
  fmq_stream_end(w->stream);
}

static void websocket_on_event(struct fmq_websocket *w, const struct fmq_ws_event *ev) {
  int answering = websocket_answering(w);
  switch (ev->type) {
  case FMQ_WS_EV_TEXT:
  case FMQ_WS_EV_BINARY:
    if (answering)
      fmq_dispatch_data(w, ev);
    break;
  case FMQ_WS_EV_PING:
    if (answering)
      fmq_websocket_send(w, fmq_ws_frame_new(FMQ_WS_PONG, ev->data, ev->len));
    break;
  case FMQ_WS_EV_CLOSE:
    websocket_on_close_frame(w, ev);
    break;
  case FMQ_WS_EV_PONG:
  case FMQ_WS_EV_NONE:
    break;
  }
}

size_t fmq_websocket_feed(struct fmq_websocket *w, uint8_t *p, size_t len, int *activity) {
  uint64_t before = w->reader.activity;
  size_t total = len;
  const unsigned reading = FMQ_WEBSOCKET_OPEN | FMQ_WEBSOCKET_INPUT_DONE;
  while (len > 0 && (w->flags & reading) == FMQ_WEBSOCKET_OPEN && !fmq_stream_closed(w->stream)) {
    if (fmq_websocket_paused(w)) {
      fmq_ws_reader_done(&w->reader);
      *activity = w->reader.activity != before;
      return total - len;
    }
    size_t used = 0;
    struct fmq_ws_event ev;
    int rc = fmq_ws_reader_feed(&w->reader, p, len, &used, &ev);
    if (rc < 0) {
      fmq_websocket_fail(w, fmq_ws_close_code_for(rc), fmq_strerror(rc));
      break;
    }
    p += used;
    len -= used;
    websocket_on_event(w, &ev);
  }
  fmq_ws_reader_done(&w->reader);
  *activity = w->reader.activity != before;
  return total;
}
