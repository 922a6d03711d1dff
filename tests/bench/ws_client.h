#ifndef FMQB_WS_CLIENT_H
#define FMQB_WS_CLIENT_H

/* The bench's WebSocket client: many non-blocking connections on one libuv
 * loop. Reads go into one buffer shared by the loop (a connection keeps
 * bytes only while a frame is incomplete), writes are appended to a
 * per-connection buffer that exists only while it holds bytes, and every
 * connection with output is written once per loop turn (a uv_prepare
 * handle), so 100,000 idle connections cost little more than their
 * sockets. Client frames are masked with the key 0 (see frame_begin).
 * Server frames must not be fragmented (ferrymq and the Node.js peer never
 * fragment): a fragment counts as a protocol error. Loop thread only. */

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

struct fmqb_ws;

/* Per loop: where to connect, the shared read buffer, the flush list. */
struct fmqb_ws_ctx {
  uv_loop_t *loop;
  uv_prepare_t prepare;
  struct sockaddr_in dst;
  char host[32];                /* the Host header: "127.0.0.1:PORT" */
  uint8_t *rbuf;                /* owned; the loop's read buffer */
  size_t rbuf_size;
  LIST_HEAD(, fmqb_ws) pending; /* connections with bytes to write */
  uint64_t protocol_errors;     /* bad frames, fragments, bad 101s */
};

void fmqb_ws_ctx_init(struct fmqb_ws_ctx *c, uv_loop_t *loop, const struct sockaddr_in *dst);
/* Closes the prepare handle (run the loop afterwards to finish). Every
 * connection must be closed first. */
void fmqb_ws_ctx_close(struct fmqb_ws_ctx *c);

enum fmqb_ws_state {
  FMQB_WS_NEW,
  FMQB_WS_CONNECTING,
  FMQB_WS_HANDSHAKE,            /* the upgrade request is out, waiting for 101 */
  FMQB_WS_OPEN,
  FMQB_WS_CLOSING,              /* a close frame was sent or received */
  FMQB_WS_CLOSED                /* uv_close called */
};

/* Why a connection ended (ws->end, set before ops->closed). */
enum fmqb_ws_end {
  FMQB_WS_END_NONE,
  FMQB_WS_END_CLEAN,            /* close frames exchanged, then the TCP close */
  FMQB_WS_END_EOF,              /* TCP closed (or reset) without a close handshake */
  FMQB_WS_END_CONNECT,          /* connect failed: ws->err */
  FMQB_WS_END_REFUSED,          /* an HTTP answer other than 101: ws->status */
  FMQB_WS_END_PROTOCOL,         /* bytes that are not what the server should send */
  FMQB_WS_END_LOCAL             /* fmqb_ws_abort */
};

struct fmqb_ws_ops {
  void (*open)(struct fmqb_ws *ws);                     /* the 101 arrived */
  void (*text)(struct fmqb_ws *ws, const char *p, size_t n);
  void (*pong)(struct fmqb_ws *ws);                     /* optional */
  void (*drained)(struct fmqb_ws *ws);                  /* optional: output all written */
  /* The handle is closed (ws->end says why); the owner may free ws. */
  void (*closed)(struct fmqb_ws *ws);
};

struct fmqb_ws {
  uv_tcp_t tcp;
  union {
    uv_connect_t connect;
    uv_write_t write;
  } req;                        /* connect, then one write at a time */
  struct fmqb_ws_ctx *ctx;
  const struct fmqb_ws_ops *ops;
  void *data;                   /* the owner's */
  uint32_t id;                  /* the owner's */
  int rcvbuf;                   /* set before connecting: SO_RCVBUF bytes (0: the default) */
  uint8_t state;                /* enum fmqb_ws_state */
  uint8_t end;                  /* enum fmqb_ws_end */
  uint8_t close_sent, close_rcvd, paused, writing, on_pending;
  uint16_t status;              /* HTTP status of a refusal; the close code received */
  int err;                      /* libuv error of a failed connect, read or write */
  uint8_t *in;                  /* owned: bytes of an incomplete frame or head */
  uint32_t in_len, in_cap;
  uint8_t *out;                 /* owned: bytes to write at the next flush */
  uint32_t out_len, out_cap;
  uint8_t *wbuf;                /* owned: the buffer of the write under way */
  uint32_t inflight;            /* its bytes */
  LIST_ENTRY(fmqb_ws) pending_link;
};

/* Starts connecting ws (zeroed by the caller, ops and data set) to the
 * context's target from src (NULL: any address) and sends the upgrade
 * request for target ("/mqtt?topic=..."). Returns 0, or a libuv error
 * (then ws was never started: nothing to close). */
int fmqb_ws_connect(struct fmqb_ws *ws, struct fmqb_ws_ctx *c, const struct sockaddr_in *src,
                    const char *target);

/* Reserves a client frame with this opcode and n payload bytes in the
 * output, writes its header and returns where the n payload bytes go (to
 * be filled before the loop turn ends). NULL when the connection is not
 * open. */
uint8_t *fmqb_ws_frame_begin(struct fmqb_ws *ws, unsigned opcode, size_t n);
/* A text frame holding p. Returns 0, or -1 when the connection is not open. */
int fmqb_ws_send_text(struct fmqb_ws *ws, const void *p, size_t n);
int fmqb_ws_send_ping(struct fmqb_ws *ws);
/* Sends a close frame with code (once) and waits for the server's close
 * and its TCP close. */
void fmqb_ws_close(struct fmqb_ws *ws, uint16_t code);
/* Closes the socket at once (end FMQB_WS_END_LOCAL unless an end was
 * already known). Safe to call twice. */
void fmqb_ws_abort(struct fmqb_ws *ws);
/* Stops and resumes reading (a slow consumer). */
void fmqb_ws_pause(struct fmqb_ws *ws);
void fmqb_ws_resume(struct fmqb_ws *ws);
/* Bytes written by the client but not yet taken by the kernel. */
static inline size_t fmqb_ws_backlog(const struct fmqb_ws *ws) {
  return (size_t)ws->out_len + ws->inflight;
}

#define FMQB_WS_TEXT 0x1
#define FMQB_WS_BINARY 0x2
#define FMQB_WS_CLOSE 0x8
#define FMQB_WS_PING 0x9
#define FMQB_WS_PONG 0xA

#endif
