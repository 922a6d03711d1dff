#include "wsclient.h"

#include "ws_handshake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_FDS 4096
#define READ_CHUNK 65536
#define MAX_FRAME_PAYLOAD (256u << 20)
#define HTTP_TIMEOUT_MS 10000
#define CLOSE_TIMEOUT_MS 5000

/* Bytes received on a socket and not yet consumed: data[start..end). */
struct read_buffer {
  uint8_t *data;
  size_t start, end, cap;
};

static struct read_buffer buffers[MAX_FDS];
static uint8_t opened[MAX_FDS];   /* sockets made here and not closed yet */

int64_t fmqt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct read_buffer *buffer_of(int fd) {
  if (fd < 0 || fd >= MAX_FDS) {
    fail_msg("socket %d outside the read buffer table", fd);
  }
  return &buffers[fd];
}

static void buffer_reset(int fd) {
  struct read_buffer *b = buffer_of(fd);
  b->start = b->end = 0;
}

static size_t buffered(const struct read_buffer *b) {
  return b->end - b->start;
}

static void consume(struct read_buffer *b, size_t n) {
  b->start += n;
  if (b->start == b->end) {
    b->start = b->end = 0;
  }
}

/* Room for at least READ_CHUNK more bytes after end. */
static void make_room(struct read_buffer *b) {
  if (b->start > 0 && b->cap - b->end < READ_CHUNK) {
    memmove(b->data, b->data + b->start, buffered(b));
    b->end -= b->start;
    b->start = 0;
  }
  if (b->cap - b->end < READ_CHUNK) {
    size_t cap = b->cap ? b->cap * 2 : 2 * READ_CHUNK;
    while (cap - b->end < READ_CHUNK) {
      cap *= 2;
    }
    uint8_t *data = realloc(b->data, cap);
    assert_non_null(data);
    b->data = data;
    b->cap = cap;
  }
}

int fmqt_ms_until(int64_t deadline) {
  int64_t left = deadline - fmqt_now_ms();
  return left > 0 ? (int)left : 0;
}

/* Waits until fd has something to read, or the deadline passes. Returns 1
 * when more bytes were buffered, FMQT_TIMEOUT or FMQT_EOF. */
static int fill(int fd, int64_t deadline) {
  struct read_buffer *b = buffer_of(fd);
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, fmqt_ms_until(deadline));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0) {
      fail_msg("poll: %s", strerror(errno));
    }
    if (r == 0) {
      return FMQT_TIMEOUT;
    }
    make_room(b);
    ssize_t n = recv(fd, b->data + b->end, b->cap - b->end, 0);
    if (n > 0) {
      b->end += (size_t)n;
      return 1;
    }
    if (n == 0 || errno == ECONNRESET) {
      return FMQT_EOF;
    }
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      fail_msg("recv: %s", strerror(errno));
    }
  }
}

/* Random bytes from a xorshift generator seeded from /dev/urandom. */
static void random_bytes(uint8_t *out, size_t n) {
  static uint64_t state;
  if (state == 0) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &state, sizeof state) != (ssize_t)sizeof state) {
      state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    }
    if (fd >= 0) {
      close(fd);
    }
    state |= 1;
  }
  for (size_t i = 0; i < n; i++) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    out[i] = (uint8_t)(state >> 24);
  }
}

static void base64_encode(const uint8_t *in, size_t n, char *out) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n) {
      v |= (uint32_t)in[i + 1] << 8;
    }
    if (i + 2 < n) {
      v |= in[i + 2];
    }
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
  }
  out[o] = '\0';
}

/* --- sockets --- */

int fmqt_tcp_try_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -errno;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  buffer_reset(fd);
  opened[fd] = 1;
  return fd;
}

int fmqt_tcp_connect_rcvbuf(uint16_t port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (rcvbuf > 0) {
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fail_msg("connect to 127.0.0.1:%u: %s", port, strerror(errno));
  }
  buffer_reset(fd);
  opened[fd] = 1;
  return fd;
}

int fmqt_tcp_connect(uint16_t port) {
  return fmqt_tcp_connect_rcvbuf(port, 0);
}

void fmqt_close(int fd) {
  buffer_reset(fd);
  opened[fd] = 0;
  close(fd);
}

int fmqt_close_all(void) {
  int n = 0;
  for (int fd = 0; fd < MAX_FDS; fd++) {
    if (opened[fd]) {
      fmqt_close(fd);
      n++;
    }
  }
  return n;
}

void fmqt_abort(int fd) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  fmqt_close(fd);
}

int fmqt_try_send(int fd, const void *p, size_t n) {
  const uint8_t *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w > 0) {
      c += w;
      n -= (size_t)w;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      (void)poll(&pf, 1, 1000);
    } else if (errno != EINTR) {
      return -errno;
    }
  }
  return 0;
}

void fmqt_send_all(int fd, const void *p, size_t n) {
  int r = fmqt_try_send(fd, p, n);
  if (r != 0) {
    fail_msg("send: %s", strerror(-r));
  }
}

int fmqt_send_slowly(int fd, const void *p, size_t n, int delay_ms) {
  const uint8_t *c = p;
  struct timespec delay = {.tv_sec = delay_ms / 1000, .tv_nsec = (long)(delay_ms % 1000) * 1000000};
  for (size_t i = 0; i < n; i++) {
    int r = fmqt_try_send(fd, c + i, 1);
    if (r != 0) {
      return r;
    }
    if (i + 1 < n) {
      nanosleep(&delay, NULL);
    }
  }
  return 0;
}

/* --- HTTP --- */

static const uint8_t *find_head_end(const struct read_buffer *b) {
  const uint8_t *p = b->data + b->start;
  size_t n = buffered(b);
  for (size_t i = 0; i + 4 <= n; i++) {
    if (memcmp(p + i, "\r\n\r\n", 4) == 0) {
      return p + i + 4;
    }
  }
  return NULL;
}

int fmqt_http_read_head(int fd, char *head, size_t cap, int timeout_ms) {
  struct read_buffer *b = buffer_of(fd);
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  const uint8_t *end;
  while ((end = buffered(b) > 0 ? find_head_end(b) : NULL) == NULL) {
    int r = fill(fd, deadline);
    if (r < 0) {
      return r;
    }
  }
  size_t n = (size_t)(end - (b->data + b->start));
  size_t copy = n < cap ? n : cap - 1;
  memcpy(head, b->data + b->start, copy);
  head[copy] = '\0';
  consume(b, n);
  int major, minor, status;
  if (sscanf(head, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
    return 0;
  }
  return status;
}

int fmqt_http_header(const char *head, const char *name, char *out, size_t cap) {
  size_t name_len = strlen(name);
  const char *line = strstr(head, "\r\n");
  while (line != NULL && line[2] != '\r' && line[2] != '\0') {
    line += 2;
    const char *eol = strstr(line, "\r\n");
    if (eol == NULL) {
      eol = line + strlen(line);
    }
    if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
      const char *v = line + name_len + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) {
        v++;
      }
      const char *v_end = eol;
      while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t')) {
        v_end--;
      }
      size_t n = (size_t)(v_end - v);
      if (n >= cap) {
        n = cap - 1;
      }
      memcpy(out, v, n);
      out[n] = '\0';
      return 1;
    }
    line = *eol ? eol : NULL;
  }
  return 0;
}

size_t fmqt_ws_request(char *out, size_t cap, const char *path, const char *extra,
                       char key[25]) {
  uint8_t raw[16];
  random_bytes(raw, sizeof raw);
  base64_encode(raw, sizeof raw, key);
  int n = snprintf(out, cap,
                   "GET %s HTTP/1.1\r\n"
                   "Host: 127.0.0.1\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "%s\r\n",
                   path, key, extra);
  assert_true(n > 0 && (size_t)n < cap);
  return (size_t)n;
}

/* Reads until the peer closes, copying what arrives (after what was
 * already consumed) into body when it is not NULL. Returns 1 on EOF within
 * timeout_ms, 0 otherwise. */
static int read_to_eof(int fd, char *body, size_t cap, int timeout_ms) {
  if (body == NULL) {
    return fmqt_wait_eof(fd, timeout_ms);
  }
  struct read_buffer *b = buffer_of(fd);
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  size_t len = 0;
  for (;;) {
    size_t n = buffered(b);
    size_t copy = len + n < cap ? n : cap - 1 - len;
    memcpy(body + len, b->data + b->start, copy);
    len += copy;
    body[len] = '\0';
    consume(b, n);
    int r = fill(fd, deadline);
    if (r == FMQT_EOF) {
      return 1;
    }
    if (r == FMQT_TIMEOUT) {
      return 0;
    }
  }
}

static int http_refused(uint16_t port, const void *req, size_t n, char *head, size_t cap,
                        char *body, size_t body_cap) {
  int fd = fmqt_tcp_connect(port);
  /* The gateway may refuse and close before it has read everything. */
  (void)fmqt_try_send(fd, req, n);
  int status = fmqt_http_read_head(fd, head, cap, HTTP_TIMEOUT_MS);
  if (status <= 0 || status == 101) {
    fail_msg("expected a refusal, got %d:\n%s", status, status > 0 ? head : "");
  }
  char connection[64];
  if (!fmqt_http_header(head, "Connection", connection, sizeof connection) ||
      strcasecmp(connection, "close") != 0) {
    fail_msg("refusal without \"Connection: close\":\n%s", head);
  }
  if (!read_to_eof(fd, body, body_cap, CLOSE_TIMEOUT_MS)) {
    fail_msg("the connection stayed open after a %d refusal", status);
  }
  fmqt_close(fd);
  return status;
}

int fmqt_http_refused(uint16_t port, const void *req, size_t n, char *head, size_t cap) {
  return http_refused(port, req, n, head, cap, NULL, 0);
}

int fmqt_http_refused_body(uint16_t port, const void *req, size_t n, char *head, size_t cap,
                           char *body, size_t body_cap) {
  assert_true(body_cap > 0);
  return http_refused(port, req, n, head, cap, body, body_cap);
}

/* --- WebSocket --- */

static int upgrade(int fd, const char *path, const char *extra, char *head, size_t cap) {
  char req[8192], key[25];
  size_t n = fmqt_ws_request(req, sizeof req, path, extra, key);
  fmqt_send_all(fd, req, n);
  int status = fmqt_http_read_head(fd, head, cap, HTTP_TIMEOUT_MS);
  if (status != 101) {
    fail_msg("upgrade of %s: status %d\n%s", path, status, status > 0 ? head : "");
  }
  char expected[FMQ_WS_ACCEPT_LEN + 1], accept[64];
  fmq_handshake_accept(key, strlen(key), expected);
  if (!fmqt_http_header(head, "Sec-WebSocket-Accept", accept, sizeof accept) ||
      strcmp(accept, expected) != 0) {
    fail_msg("wrong Sec-WebSocket-Accept (want %s):\n%s", expected, head);
  }
  return fd;
}

int fmqt_ws_upgrade(int fd, const char *path, const char *extra) {
  char head[4096];
  return upgrade(fd, path, extra, head, sizeof head);
}

int fmqt_ws_connect(uint16_t port, const char *path, const char *extra) {
  return fmqt_ws_upgrade(fmqt_tcp_connect(port), path, extra);
}

int fmqt_ws_connect_head(uint16_t port, const char *path, const char *extra, char *head,
                         size_t cap) {
  return upgrade(fmqt_tcp_connect(port), path, extra, head, cap);
}

size_t fmqt_ws_header_encoded(uint8_t out[14], uint8_t b0, int bits, uint64_t len,
                              const uint8_t *mask) {
  if (bits == 0)
    bits = len < 126 ? 7 : len <= 0xFFFF ? 16 : 64;
  size_t n = 0;
  uint8_t mask_bit = mask ? 0x80 : 0;
  out[n++] = b0;
  if (bits == 7) {
    out[n++] = mask_bit | (uint8_t)len;
  } else if (bits == 16) {
    out[n++] = mask_bit | 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = mask_bit | 127;
    for (int shift = 56; shift >= 0; shift -= 8) {
      out[n++] = (uint8_t)(len >> shift);
    }
  }
  if (mask) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

size_t fmqt_ws_header(uint8_t out[14], uint8_t b0, uint64_t len, const uint8_t *mask) {
  return fmqt_ws_header_encoded(out, b0, 0, len, mask);
}

uint8_t *fmqt_pattern(size_t n, unsigned seed) {
  uint8_t *p = malloc(n ? n : 1);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)(i * 7 + seed + (i >> 8));
  }
  return p;
}

size_t fmqt_ws_build(uint8_t *out, uint8_t b0, int masked, const void *payload, uint64_t len) {
  uint8_t mask[4];
  random_bytes(mask, sizeof mask);
  size_t n = fmqt_ws_header(out, b0, len, masked ? mask : NULL);
  if (len > 0) {
    memcpy(out + n, payload, len);
  }
  if (masked) {
    for (uint64_t i = 0; i < len; i++) {
      out[n + i] ^= mask[i & 3];
    }
  }
  return n + len;
}

void fmqt_ws_send(int fd, int fin, int opcode, const void *payload, size_t len) {
  uint8_t *frame = malloc(len + 14);
  assert_non_null(frame);
  uint8_t b0 = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
  size_t n = fmqt_ws_build(frame, b0, 1, payload, len);
  fmqt_send_all(fd, frame, n);
  free(frame);
}

void fmqt_ws_send_text(int fd, const char *text) {
  fmqt_ws_send(fd, 1, 0x1, text, strlen(text));
}

void fmqt_ws_send_close(int fd, int code, const char *reason) {
  uint8_t payload[125];
  size_t n = 0;
  if (code >= 0) {
    size_t reason_len = reason ? strlen(reason) : 0;
    assert_true(reason_len <= sizeof payload - 2);
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (reason_len > 0) {
      memcpy(payload + 2, reason, reason_len);
    }
    n = 2 + reason_len;
  }
  fmqt_ws_send(fd, 1, 0x8, payload, n);
}

int fmqt_ws_recv(int fd, struct fmqt_frame *f, int timeout_ms) {
  struct read_buffer *b = buffer_of(fd);
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  memset(f, 0, sizeof *f);
  for (;;) {
    size_t have = buffered(b);
    if (have >= 2) {
      const uint8_t *p = b->data + b->start;
      size_t len_bytes = (p[1] & 0x7F) == 126 ? 2 : (p[1] & 0x7F) == 127 ? 8 : 0;
      size_t header = 2 + len_bytes + ((p[1] & 0x80) ? 4 : 0);
      if (have >= header) {
        uint64_t len = p[1] & 0x7F;
        if (len_bytes > 0) {
          len = 0;
          for (size_t i = 0; i < len_bytes; i++) {
            len = len << 8 | p[2 + i];
          }
        }
        if (len > MAX_FRAME_PAYLOAD) {
          fail_msg("received a frame declaring %llu bytes", (unsigned long long)len);
        }
        if (have >= header + len) {
          f->fin = p[0] >> 7;
          f->rsv = (p[0] >> 4) & 7;
          f->opcode = p[0] & 0x0F;
          f->masked = p[1] >> 7;
          f->len = (size_t)len;
          f->payload = malloc(f->len + 1);
          assert_non_null(f->payload);
          memcpy(f->payload, p + header, f->len);
          f->payload[f->len] = '\0';
          if (f->masked) {
            const uint8_t *mask = p + header - 4;
            for (size_t i = 0; i < f->len; i++) {
              f->payload[i] ^= mask[i & 3];
            }
          }
          consume(b, header + f->len);
          return 0;
        }
      }
    }
    int r = fill(fd, deadline);
    if (r < 0) {
      return r;
    }
  }
}

int fmqt_ws_read_ready(int fd) {
  struct read_buffer *b = buffer_of(fd);
  size_t total = 0;
  while (total < 4 * READ_CHUNK) {
    make_room(b);
    ssize_t n = recv(fd, b->data + b->end, b->cap - b->end, MSG_DONTWAIT);
    if (n > 0) {
      b->end += (size_t)n;
      total += (size_t)n;
      continue;
    }
    if (n == 0 || errno == ECONNRESET) {
      return total > 0 ? (int)total : FMQT_EOF;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    }
    if (errno != EINTR) {
      fail_msg("recv: %s", strerror(errno));
    }
  }
  return (int)total;
}

int fmqt_ws_take_frame(int fd, struct fmqt_frame_view *v) {
  struct read_buffer *b = buffer_of(fd);
  size_t have = buffered(b);
  if (have < 2) {
    return 0;
  }
  uint8_t *p = b->data + b->start;
  size_t len_bytes = (p[1] & 0x7F) == 126 ? 2 : (p[1] & 0x7F) == 127 ? 8 : 0;
  size_t header = 2 + len_bytes + ((p[1] & 0x80) ? 4 : 0);
  if (have < header) {
    return 0;
  }
  uint64_t len = p[1] & 0x7F;
  if (len_bytes > 0) {
    len = 0;
    for (size_t i = 0; i < len_bytes; i++) {
      len = len << 8 | p[2 + i];
    }
  }
  if (len > MAX_FRAME_PAYLOAD) {
    fail_msg("received a frame declaring %llu bytes", (unsigned long long)len);
  }
  if (have < header + len) {
    return 0;
  }
  v->fin = p[0] >> 7;
  v->rsv = (p[0] >> 4) & 7;
  v->opcode = p[0] & 0x0F;
  v->masked = p[1] >> 7;
  v->len = (size_t)len;
  uint8_t *payload = p + header;
  if (v->masked) {
    const uint8_t *mask = p + header - 4;
    for (size_t i = 0; i < v->len; i++) {
      payload[i] ^= mask[i & 3];
    }
  }
  v->payload = payload;
  /* Consumed without resetting start/end to 0 when empty, so the view stays
   * where it is until the next read moves the buffer. */
  b->start += header + v->len;
  return 1;
}

void fmqt_frame_free(struct fmqt_frame *f) {
  free(f->payload);
  f->payload = NULL;
  f->len = 0;
}

int fmqt_ws_expect_close(int fd, int timeout_ms, char *reason, size_t cap) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (;;) {
    struct fmqt_frame f;
    int r = fmqt_ws_recv(fd, &f, fmqt_ms_until(deadline));
    if (r < 0) {
      return r;
    }
    if (f.opcode != 0x8) {
      fmqt_frame_free(&f);
      continue;
    }
    int code = f.len == 0 ? 1005 : f.len == 1 ? 0 : f.payload[0] << 8 | f.payload[1];
    if (reason != NULL && cap > 0) {
      size_t n = f.len > 2 ? f.len - 2 : 0;
      if (n >= cap) {
        n = cap - 1;
      }
      memcpy(reason, f.payload + (f.len > 2 ? 2 : 0), n);
      reason[n] = '\0';
    }
    fmqt_frame_free(&f);
    return code;
  }
}

int fmqt_wait_eof(int fd, int timeout_ms) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (;;) {
    buffer_reset(fd);
    int r = fill(fd, deadline);
    if (r == FMQT_EOF) {
      return 1;
    }
    if (r == FMQT_TIMEOUT) {
      return 0;
    }
  }
}

void fmqt_ws_assert_ping(int fd, const void *payload, size_t len, int timeout_ms) {
  fmqt_ws_send(fd, 1, 0x9, payload, len);
  struct fmqt_frame f;
  int r = fmqt_ws_recv(fd, &f, timeout_ms);
  if (r != 0) {
    fail_msg("no pong: %s", r == FMQT_EOF ? "connection closed" : "timeout");
  }
  if (f.opcode != 0xA || !f.fin || f.masked || f.rsv || f.len != len ||
      (len > 0 && memcmp(f.payload, payload, len) != 0)) {
    fail_msg("expected an unmasked pong of %zu bytes, got opcode %u fin %u masked %u rsv %u, "
             "%zu bytes",
             len, f.opcode, f.fin, f.masked, f.rsv, f.len);
  }
  fmqt_frame_free(&f);
}

void fmqt_ws_close_cleanly(int fd, int code) {
  fmqt_ws_send_close(fd, code, NULL);
  assert_int_equal(fmqt_ws_expect_close(fd, CLOSE_TIMEOUT_MS, NULL, 0), code);
  assert_true(fmqt_wait_eof(fd, CLOSE_TIMEOUT_MS));
  fmqt_close(fd);
}

void fmqt_assert_serving(uint16_t port, const char *path) {
  int fd = fmqt_ws_connect(port, path, "");
  fmqt_ws_assert_ping(fd, "alive", 5, CLOSE_TIMEOUT_MS);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* --- JSON --- */

json_t *fmqt_ws_recv_json(int fd, int timeout_ms) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (;;) {
    struct fmqt_frame f;
    if (fmqt_ws_recv(fd, &f, fmqt_ms_until(deadline)) != 0) {
      return NULL;
    }
    if (f.opcode == 0x9 || f.opcode == 0xA) {
      fmqt_frame_free(&f);
      continue;
    }
    json_t *v = NULL;
    if (f.opcode == 0x1) {
      json_error_t err;
      /* A payload with a NUL byte is delivered as "\u0000". */
      v = json_loadb((const char *)f.payload, f.len, JSON_ALLOW_NUL, &err);
      if (v == NULL) {
        fprintf(stderr, "bad JSON from the gateway (%s): %.300s\n", err.text, f.payload);
      }
    } else {
      fprintf(stderr, "a frame with opcode %u (%zu bytes) where JSON was expected\n", f.opcode,
              f.len);
    }
    fmqt_frame_free(&f);
    return v;
  }
}

void fmqt_ws_assert_json_ping(int fd, const char *id, int timeout_ms) {
  json_t *ping = json_pack("{s:s, s:s}", "type", "ping", "id", id);
  assert_non_null(ping);
  fmqt_ws_send_json(fd, ping);
  json_decref(ping);
  json_t *pong = fmqt_ws_recv_json(fd, timeout_ms);
  if (pong == NULL) {
    fail_msg("no JSON reply to a ping with id \"%.40s\"", id);
  }
  const char *type = fmqt_json_str(pong, "type");
  const char *got = fmqt_json_str(pong, "id");
  if (type == NULL || strcmp(type, "pong") != 0 || got == NULL || strcmp(got, id) != 0) {
    char *text = json_dumps(pong, JSON_COMPACT);
    fail_msg("ping with id \"%.40s\": expected its pong, got %.200s", id, text);
  }
  json_decref(pong);
}

void fmqt_ws_send_json(int fd, const json_t *v) {
  char *text = json_dumps(v, JSON_COMPACT);
  assert_non_null(text);
  fmqt_ws_send_text(fd, text);
  free(text);
}

const char *fmqt_json_str(const json_t *v, const char *key) {
  return json_string_value(json_object_get(v, key));
}
