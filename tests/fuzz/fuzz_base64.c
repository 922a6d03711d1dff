/* Decodes the input as strict base64: the first byte picks the flags (url,
 * canonical), the rest is the text. Both entry points must agree, and what
 * a canonical decode accepts must be exactly what OpenSSL's encoder writes
 * for the decoded bytes (in the url alphabet without padding for url), so
 * that every value has one accepted text. */
#include "base64.h"
#include "error.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_TEXT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_canonical(const char *text, size_t len, unsigned flags, const uint8_t *bytes,
                            size_t n) {
  char enc[FUZZ_MAX_TEXT + 4];
  size_t m = (size_t)EVP_EncodeBlock((unsigned char *)enc, bytes, (int)n);

  if (flags & FMQ_BASE64_URL) {
    while (m > 0 && enc[m - 1] == '=')
      m--;
    for (size_t i = 0; i < m; i++)
      enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
  }
  if (m != len || memcmp(enc, text, len) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t out[FUZZ_MAX_TEXT];
  uint8_t *owned = NULL;

  if (size == 0 || size - 1 > FUZZ_MAX_TEXT)
    return 0;
  unsigned flags = data[0] & (FMQ_BASE64_URL | FMQ_BASE64_CANONICAL);
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  int n = fmq_base64_decode(text, len, flags, out, sizeof(out));
  int n_new = fmq_base64_decode_new(text, len, flags, &owned);

  if (n != n_new || (n < 0 && (n != FMQ_EBASE64 || owned != NULL)) ||
      (n >= 0 && (owned == NULL || (size_t)n > len || memcmp(out, owned, (size_t)n) != 0)))
    abort();
  if (n >= 0 && (flags & FMQ_BASE64_CANONICAL))
    check_canonical(text, len, flags, out, (size_t)n);
  free(owned);
  return 0;
}
