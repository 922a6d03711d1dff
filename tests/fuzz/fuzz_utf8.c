/* Differential check of the UTF-8 validator: feeding the input in pieces
 * (cut where the first byte says) must agree with the one-shot check, and
 * with an independent decoder of the Unicode rules written out plainly. */
#include "error.h"
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int reference_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    size_t len;
    if (p[i] < 0x80) { cp = p[i]; len = 1; }
    else if ((p[i] & 0xE0) == 0xC0) { cp = p[i] & 0x1F; len = 2; }
    else if ((p[i] & 0xF0) == 0xE0) { cp = p[i] & 0x0F; len = 3; }
    else if ((p[i] & 0xF8) == 0xF0) { cp = p[i] & 0x07; len = 4; }
    else return 0;
    if (i + len > n)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  size_t step = data[0] ? data[0] : 1;
  const uint8_t *text = data + 1;
  size_t n = size - 1;

  struct fmq_utf8 v;
  fmq_utf8_init(&v);
  int ok = 1;
  for (size_t off = 0; ok && off < n; off += step)
    ok = fmq_utf8_feed(&v, text + off, off + step > n ? n - off : step) == 0;
  int incremental = ok && fmq_utf8_complete(&v);

  int expected = reference_valid(text, n);
  if (incremental != expected || fmq_utf8_valid(text, n) != expected)
    abort();
  return 0;
}
