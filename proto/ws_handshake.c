#include "ws_handshake.h"

#include "base64.h"
#include "error.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define FMQ_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static int handshake_refuse(struct fmq_handshake *hs, int status, const char *reason) {
  hs->status = status;
  hs->reason = reason;
  return status;
}

static int handshake_path_listed(const struct fmq_http_request *req, const char *const *paths,
                                 size_t npaths) {
  size_t len;
  const char *path = fmq_http_path(req, &len);

  for (size_t i = 0; i < npaths; i++) {
    if (strlen(paths[i]) == len && memcmp(paths[i], path, len) == 0)
      return 1;
  }
  return 0;
}

/* Standard base64 of 16 bytes (RFC 6455 section 4.1): only 22 characters
 * and "==" decode to exactly 16 bytes; anything longer does not fit raw. */
static int handshake_key_valid(const char *key, size_t len) {
  uint8_t raw[16];

  return fmq_base64_decode(key, len, FMQ_BASE64_STD, raw, sizeof(raw)) == (int)sizeof(raw);
}

/* 1 when some element of some Sec-WebSocket-Protocol field is ferrymq.v1
 * (case-sensitive, RFC 6455 section 4.1), 0 when none is, -1 when no such
 * field was sent. */
static int handshake_subprotocol(const struct fmq_http_request *req) {
  static const char name[] = "Sec-WebSocket-Protocol";
  unsigned index = 0;
  const char *value;
  size_t value_len;
  int found = -1;

  while ((value = fmq_http_field_next(req, name, &index, &value_len)) != NULL) {
    const char *cur = value;
    const char *elem;
    size_t elem_len;

    found = 0;
    while ((elem = fmq_http_list_next(&cur, value + value_len, &elem_len)) != NULL) {
      if (elem_len == strlen(FMQ_WS_SUBPROTOCOL) &&
          memcmp(elem, FMQ_WS_SUBPROTOCOL, elem_len) == 0)
        return 1;
    }
  }
  return found;
}

int fmq_handshake_check(const struct fmq_http_request *req, const char *const *paths,
                        size_t npaths, struct fmq_handshake *hs) {
  const char *version, *key;
  size_t version_len, key_len, len;
  unsigned index = 0;
  int subprotocol;

  memset(hs, 0, sizeof(*hs));
  if (!handshake_path_listed(req, paths, npaths))
    return handshake_refuse(hs, 404, "unknown path");
  if (req->method != HTTP_GET)
    return handshake_refuse(hs, 400, "not a GET request");
  if (!fmq_http_field_has_token(req, "Upgrade", "websocket"))
    return handshake_refuse(hs, 426, "upgrade required");
  if (!fmq_http_field_has_token(req, "Connection", "upgrade"))
    return handshake_refuse(hs, 400, "missing Connection: upgrade");
  if (req->http_major < 1 || (req->http_major == 1 && req->http_minor < 1))
    return handshake_refuse(hs, 400, "HTTP/1.1 required");
  if (fmq_http_field_next(req, "Host", &index, &len) == NULL ||
      fmq_http_field_next(req, "Host", &index, &len) != NULL)
    return handshake_refuse(hs, 400, "missing or repeated Host");
  index = 0;
  version = fmq_http_field_next(req, "Sec-WebSocket-Version", &index, &version_len);
  if (version == NULL)
    return handshake_refuse(hs, 400, "missing Sec-WebSocket-Version");
  /* A repeated field reads as one comma-joined list, never exactly "13". */
  if (version_len != 2 || memcmp(version, "13", 2) != 0 ||
      fmq_http_field_next(req, "Sec-WebSocket-Version", &index, &len) != NULL)
    return handshake_refuse(hs, 426, "unsupported WebSocket version");
  index = 0;
  key = fmq_http_field_next(req, "Sec-WebSocket-Key", &index, &key_len);
  if (key == NULL || fmq_http_field_next(req, "Sec-WebSocket-Key", &index, &len) != NULL ||
      !handshake_key_valid(key, key_len))
    return handshake_refuse(hs, 400, "invalid Sec-WebSocket-Key");
  subprotocol = handshake_subprotocol(req);
  if (subprotocol == 0)
    return handshake_refuse(hs, 400, "unsupported subprotocol");

  fmq_handshake_accept(key, key_len, hs->accept);
  if (hs->accept[0] == '\0')
    return handshake_refuse(hs, 500, "SHA-1 unavailable");
  hs->subprotocol = subprotocol == 1;
  hs->reason = "switching protocols";
  hs->status = 101;
  return hs->status;
}

void fmq_handshake_accept(const char *key, size_t key_len, char out[FMQ_WS_ACCEPT_LEN + 1]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned digest_len = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
           EVP_DigestUpdate(ctx, key, key_len) &&
           EVP_DigestUpdate(ctx, FMQ_WS_GUID, strlen(FMQ_WS_GUID)) &&
           EVP_DigestFinal_ex(ctx, digest, &digest_len);

  EVP_MD_CTX_free(ctx);
  out[0] = '\0';
  if (ok)
    EVP_EncodeBlock((unsigned char *)out, digest, (int)digest_len);
}

static const char *http_reason_phrase(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 408: return "Request Timeout";
  case 426: return "Upgrade Required";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  }
  return "Error";
}

/* RFC 6455 4.4 for 426; RFC 6750 3 for 401: the challenge names the scheme. */
static const char *http_extra_headers(int status) {
  if (status == 426)
    return "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  if (status == 401)
    return "WWW-Authenticate: Bearer realm=\"ferrymq\"\r\n";
  return "";
}

static int handshake_written(int n, size_t cap) {
  return n < 0 || (size_t)n >= cap ? FMQ_ESPACE : n;
}

int fmq_http_render_error(int status, const char *reason, char *out, size_t cap) {
  const char *phrase = http_reason_phrase(status);

  if (reason == NULL)
    reason = phrase;
  return handshake_written(
      snprintf(out, cap,
               "HTTP/1.1 %d %s\r\n"
               "Content-Type: text/plain\r\n"
               "Content-Length: %zu\r\n"
               "Connection: close\r\n"
               "%s"
               "\r\n"
               "%s\n",
               status, phrase, strlen(reason) + 1,
               http_extra_headers(status), reason),
      cap);
}

int fmq_handshake_render(const struct fmq_handshake *hs, char *out, size_t cap) {
  if (hs->status != 101)
    return fmq_http_render_error(hs->status, hs->reason, out, cap);
  return handshake_written(
      snprintf(out, cap,
               "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n"
               "%s"
               "\r\n",
               hs->accept,
               hs->subprotocol ? "Sec-WebSocket-Protocol: " FMQ_WS_SUBPROTOCOL "\r\n" : ""),
      cap);
}
