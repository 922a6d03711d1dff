/* Feeds client bytes to the WebSocket message reader. The first input byte
 * picks how the rest is cut into reads (0: one read, n: reads of n bytes);
 * each read is its own heap block, freed once consumed, so ASan catches a
 * reader that keeps a pointer into an earlier read. */
#include "utf8.h"
#include "ws_message.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_MESSAGE 4096
/* Small, so that inputs reach the fragment bound. */
#define FUZZ_MAX_FRAGMENTS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_event(const struct fmq_ws_event *ev) {
  switch (ev->type) {
  case FMQ_WS_EV_TEXT:
    if (!fmq_utf8_valid(ev->data, ev->len))
      abort();
    break;
  case FMQ_WS_EV_CLOSE:
    if (ev->close_code != 0 && !fmq_ws_close_code_valid(ev->close_code))
      abort();
    if (!fmq_utf8_valid((const uint8_t *)ev->reason, ev->reason_len))
      abort();
    break;
  case FMQ_WS_EV_PING:
  case FMQ_WS_EV_PONG:
    if (ev->len > FMQ_WS_CONTROL_MAX)
      abort();
    break;
  case FMQ_WS_EV_BINARY:
  case FMQ_WS_EV_NONE:
    break;
  }
  if (ev->len > FUZZ_MAX_MESSAGE)
    abort();
  /* Touch every byte so ASan sees a dangling data pointer. */
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < ev->len; i++)
    sink ^= ev->data[i];
  (void)sink;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct fmq_ws_reader r;

  if (size == 0)
    return 0;
  size_t step = data[0] == 0 ? size : data[0];
  data++;
  size--;

  fmq_ws_reader_init(&r, FUZZ_MAX_MESSAGE, FUZZ_MAX_FRAGMENTS);
  for (size_t at = 0; at < size;) {
    size_t n = size - at < step ? size - at : step;
    uint8_t *piece = malloc(n);
    if (piece == NULL)
      abort();
    memcpy(piece, data + at, n);
    at += n;
    int rc = 0;
    for (size_t off = 0; off < n;) {
      struct fmq_ws_event ev;
      size_t used;
      rc = fmq_ws_reader_feed(&r, piece + off, n - off, &used, &ev);
      if (used > n - off)
        abort();
      off += used;
      if (rc != 0) {
        uint16_t code = fmq_ws_close_code_for(rc);
        if (code != 1002 && code != 1007 && code != 1009 && code != 1011)
          abort();
        break;
      }
      if (ev.type == FMQ_WS_EV_NONE && off != n)
        abort();
      check_event(&ev);
    }
    free(piece);
    if (rc != 0)
      break;
  }
  fmq_ws_reader_close(&r);
  return 0;
}
