#ifndef FMQT_WSCLIENT_H
#define FMQT_WSCLIENT_H

/* A blocking raw-socket WebSocket client for integration tests: it speaks to
 * 127.0.0.1 only and lets a test send any byte sequence, valid or not. Every
 * function fails the running cmocka test on an unexpected socket error;
 * functions that return a status never fail the test by themselves.
 * Bytes received but not yet consumed are kept in a buffer per socket, so
 * close sockets with fmqt_close or fmqt_abort. Only the test's main thread
 * may call these functions, except fmqt_send_slowly and fmqt_now_ms. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define FMQT_TIMEOUT (-1)   /* nothing arrived in time */
#define FMQT_EOF (-2)       /* the peer closed (FIN or RST) */

/* Milliseconds of a monotonic clock. */
int64_t fmqt_now_ms(void);
/* Milliseconds from now until deadline (a fmqt_now_ms value), at least 0. */
int fmqt_ms_until(int64_t deadline);

/* Connects to 127.0.0.1:port; returns the socket. */
int fmqt_tcp_connect(uint16_t port);
/* The same with SO_RCVBUF set to rcvbuf bytes before connecting. */
int fmqt_tcp_connect_rcvbuf(uint16_t port, int rcvbuf);
/* Tries to connect once; returns the socket or -errno (e.g. -ECONNREFUSED). */
int fmqt_tcp_try_connect(uint16_t port);
/* Closes fd and forgets its buffered bytes. */
void fmqt_close(int fd);
/* Closes every socket made by the connect functions and not closed yet
 * (after a failed test); returns how many. */
int fmqt_close_all(void);
/* Closes fd with SO_LINGER {1, 0}: the peer gets a RST. */
void fmqt_abort(int fd);

void fmqt_send_all(int fd, const void *p, size_t n);
/* Sends all of p (waiting for room on a non-blocking socket); returns 0 or
 * -errno (-EPIPE, -ECONNRESET once the peer closed). Never fails the test. */
int fmqt_try_send(int fd, const void *p, size_t n);
/* Sends p one byte at a time with delay_ms between bytes. Returns 0, or
 * -errno when a send failed: it never fails the test, so a helper thread may
 * use it. */
int fmqt_send_slowly(int fd, const void *p, size_t n, int delay_ms);

/* Reads an HTTP response head (through "\r\n\r\n") into head (NUL-terminated,
 * truncated to cap). Returns the status code (0 when the first line is not an
 * HTTP status line), FMQT_TIMEOUT or FMQT_EOF. Bytes after the head
 * stay buffered for fmqt_ws_recv. */
int fmqt_http_read_head(int fd, char *head, size_t cap, int timeout_ms);
/* The value of header `name` in a response head (case-insensitive), copied
 * into out; returns 1 when found. */
int fmqt_http_header(const char *head, const char *name, char *out, size_t cap);
/* A complete upgrade request for path with a random key; extra is "" or
 * header lines each ending in "\r\n". Returns its length; *key gets the key. */
size_t fmqt_ws_request(char *out, size_t cap, const char *path, const char *extra,
                       char key[25]);
/* Sends req (n bytes) on a new connection and reads the response head into
 * head. Asserts a response came, that it is not 101, that it carries
 * "Connection: close" and that the gateway then closes the connection.
 * Returns the status. */
int fmqt_http_refused(uint16_t port, const void *req, size_t n, char *head, size_t cap);
/* The same, copying the body (everything after the head until the gateway
 * closed, NUL-terminated, truncated to body_cap) into body. */
int fmqt_http_refused_body(uint16_t port, const void *req, size_t n, char *head, size_t cap,
                           char *body, size_t body_cap);

/* Upgrades the connected socket fd; asserts 101 and the right
 * Sec-WebSocket-Accept. Returns fd. */
int fmqt_ws_upgrade(int fd, const char *path, const char *extra);
/* Connects and upgrades; asserts 101 and the right Sec-WebSocket-Accept.
 * Returns the socket. */
int fmqt_ws_connect(uint16_t port, const char *path, const char *extra);
/* The same, copying the 101 response head into head. */
int fmqt_ws_connect_head(uint16_t port, const char *path, const char *extra, char *head,
                         size_t cap);

/* Writes a frame header into out, byte by byte from RFC 6455 section 5.2 and
 * independent of proto/'s encoder: first byte b0 (FIN, RSV, opcode), the
 * length in `bits` (7, 16 or 64; 0: the shortest encoding), and mask (4
 * bytes) unless it is NULL. Returns the header size (2..14). */
size_t fmqt_ws_header_encoded(uint8_t out[14], uint8_t b0, int bits, uint64_t len,
                              const uint8_t *mask);
/* The same in the shortest encoding. */
size_t fmqt_ws_header(uint8_t out[14], uint8_t b0, uint64_t len, const uint8_t *mask);
/* n bytes of a repeatable pattern (malloc'd; the caller frees). */
uint8_t *fmqt_pattern(size_t n, unsigned seed);
/* Builds a client frame: first byte b0 (FIN, RSV, opcode) and the payload,
 * masked with a random key when masked is set. Returns the frame size; out
 * must hold len + 14 bytes. */
size_t fmqt_ws_build(uint8_t *out, uint8_t b0, int masked, const void *payload, uint64_t len);
/* Builds and sends one masked frame. */
void fmqt_ws_send(int fd, int fin, int opcode, const void *payload, size_t len);
void fmqt_ws_send_text(int fd, const char *text);
/* Sends a masked close frame: with code < 0 an empty one, otherwise the code
 * followed by reason (may be NULL). */
void fmqt_ws_send_close(int fd, int code, const char *reason);

struct fmqt_frame {
  uint8_t fin, rsv, opcode, masked;
  uint8_t *payload;   /* owned, NUL-terminated for convenience */
  size_t len;
};
/* Reads one frame. Returns 0, FMQT_TIMEOUT or FMQT_EOF. */
int fmqt_ws_recv(int fd, struct fmqt_frame *f, int timeout_ms);
void fmqt_frame_free(struct fmqt_frame *f);

/* Many sockets at once: a test polls its sockets itself and, for each
 * readable one, reads what is there without blocking, then takes the
 * complete frames out of the buffer without copying. */
struct fmqt_frame_view {
  uint8_t fin, rsv, opcode, masked;
  const uint8_t *payload;   /* into fd's buffer: valid until the next read on fd */
  size_t len;
};
/* Reads what fd has right now without waiting (MSG_DONTWAIT; at most about
 * 256 KiB per call). Returns the number of bytes read, 0 when nothing was
 * waiting, or FMQT_EOF. */
int fmqt_ws_read_ready(int fd);
/* Takes the next complete frame already buffered for fd; never reads.
 * Returns 1 with *v filled (a masked payload is unmasked in place), 0 when
 * no complete frame is buffered. */
int fmqt_ws_take_frame(int fd, struct fmqt_frame_view *v);

/* Reads frames until a close frame; returns its code (1005 when it had no
 * payload, 0 when its payload was a single byte), FMQT_TIMEOUT or FMQT_EOF.
 * Data and ping frames before it are dropped. reason may be NULL. */
int fmqt_ws_expect_close(int fd, int timeout_ms, char *reason, size_t cap);
/* Waits until the peer closes the TCP connection; returns 1 when it did
 * within timeout_ms (unread data is discarded), 0 otherwise. */
int fmqt_wait_eof(int fd, int timeout_ms);

/* Sends a ping with payload and asserts that the next frame is an unmasked
 * pong with the same payload, within timeout_ms. */
void fmqt_ws_assert_ping(int fd, const void *payload, size_t len, int timeout_ms);
/* Sends close(code) and asserts the gateway answers close(code) and then
 * closes the TCP connection; closes fd. */
void fmqt_ws_close_cleanly(int fd, int code);
/* Connects, upgrades, checks a ping is answered and closes cleanly: the
 * gateway on port serves new clients. */
void fmqt_assert_serving(uint16_t port, const char *path);

/* Reads the next text frame as JSON, skipping pings and pongs. Returns a new
 * reference, or NULL on timeout, EOF, a non-text frame or bad JSON. */
json_t *fmqt_ws_recv_json(int fd, int timeout_ms);
/* Sends {"type":"ping","id":id} and asserts the next JSON message is
 * {"type":"pong"} with the same id, within timeout_ms. */
void fmqt_ws_assert_json_ping(int fd, const char *id, int timeout_ms);
/* Sends the JSON text of v (a compact dump) as one text frame. */
void fmqt_ws_send_json(int fd, const json_t *v);
/* The string member `key` of object v, or NULL when absent or not a string. */
const char *fmqt_json_str(const json_t *v, const char *key);

#endif
