#include "base64.h"

#include "error.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Characters per EVP_DecodeBlock call: a whole number of quanta, so that the
 * url alphabet can be translated without a buffer the size of the input. */
#define B64_CHUNK 256

/* The length and padding rules. Returns the decoded length and sets *pad to
 * the number of '=' that end the text EVP_DecodeBlock is given (for url, put
 * back after the input), or returns FMQ_EBASE64. */
static int base64_measure(const char *in, size_t len, unsigned flags, size_t *pad) {
  *pad = 0;
  if (len == 0)
    return 0;
  if (flags & FMQ_BASE64_URL) {
    *pad = (4 - len % 4) % 4;
    if (*pad == 3 || len > INT_MAX - *pad)
      return FMQ_EBASE64;
    return (int)((len + *pad) / 4 * 3 - *pad);
  }
  if (len % 4 != 0 || len > INT_MAX)
    return FMQ_EBASE64;
  while (*pad < len && in[len - 1 - *pad] == '=')
    (*pad)++;
  if (*pad > 2 || memchr(in, '=', len - *pad) != NULL)
    return FMQ_EBASE64;
  return (int)(len / 4 * 3 - *pad);
}

/* Decodes the n bytes that base64_measure promised, chunk by chunk. A chunk
 * EVP_DecodeBlock decodes to fewer bytes than its quanta hold had whitespace
 * trimmed; '=' reaches it only as padding at the very end. */
static int base64_decode_measured(const char *in, size_t len, unsigned flags, size_t pad,
                                  uint8_t *out, int n) {
  unsigned char text[B64_CHUNK], bin[B64_CHUNK / 4 * 3];
  size_t total = flags & FMQ_BASE64_URL ? len + pad : len, done = 0;
  int got = 0;

  for (size_t at = 0; at < total; at += B64_CHUNK) {
    size_t chunk = total - at < B64_CHUNK ? total - at : B64_CHUNK, copy;

    for (size_t i = 0; i < chunk; i++) {
      unsigned char c = at + i < len ? (unsigned char)in[at + i] : '=';

      if ((flags & FMQ_BASE64_URL) && at + i < len) {
        if (c == '+' || c == '/' || c == '=')
          return FMQ_EBASE64;
        c = c == '-' ? '+' : c == '_' ? '/' : c;
      }
      text[i] = c;
    }
    got = EVP_DecodeBlock(bin, text, (int)chunk);
    if (got < 0 || (size_t)got != chunk / 4 * 3)
      return FMQ_EBASE64;
    copy = (size_t)n - done < (size_t)got ? (size_t)n - done : (size_t)got;
    memcpy(out + done, bin, copy);
    done += copy;
  }
  /* The unused bits land in the bytes the padding stands for. */
  if ((flags & FMQ_BASE64_CANONICAL) && pad > 0 &&
      (bin[got - 1] != 0 || (pad > 1 && bin[got - 2] != 0)))
    return FMQ_EBASE64;
  return n;
}

int fmq_base64_decode(const char *in, size_t len, unsigned flags, uint8_t *out, size_t cap) {
  size_t pad;
  int n = base64_measure(in, len, flags, &pad);

  if (n < 0)
    return n;
  if ((size_t)n > cap)
    return FMQ_ESPACE;
  return base64_decode_measured(in, len, flags, pad, out, n);
}

int fmq_base64_decode_new(const char *in, size_t len, unsigned flags, uint8_t **out) {
  size_t pad;
  int n = base64_measure(in, len, flags, &pad);

  *out = NULL;
  if (n < 0)
    return n;
  /* + 1: never malloc(0). */
  *out = malloc((size_t)n + 1);
  if (*out == NULL)
    return FMQ_ENOMEM;
  n = base64_decode_measured(in, len, flags, pad, *out, n);
  if (n < 0) {
    free(*out);
    *out = NULL;
  }
  return n;
}
