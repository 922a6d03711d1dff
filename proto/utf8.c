#include "utf8.h"

#include "error.h"

void fmq_utf8_init(struct fmq_utf8 *v) {
  v->need = 0;
  v->lo = 0x80;
  v->hi = 0xBF;
}

/* Sets up the continuation bytes a lead byte calls for (Unicode table 3-7);
 * returns 0 for bytes that can never start a sequence: 80..C1, F5..FF. The
 * narrowed ranges after E0, ED, F0 and F4 exclude overlongs, surrogates and
 * code points above U+10FFFF. */
static int utf8_lead(struct fmq_utf8 *v, uint8_t c) {
  v->lo = 0x80;
  v->hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    v->need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    v->need = 2;
    if (c == 0xE0)
      v->lo = 0xA0;
    else if (c == 0xED)
      v->hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    v->need = 3;
    if (c == 0xF0)
      v->lo = 0x90;
    else if (c == 0xF4)
      v->hi = 0x8F;
  } else {
    return 0;
  }
  return 1;
}

int fmq_utf8_feed(struct fmq_utf8 *v, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (v->need == 0) {
      if (c < 0x80)
        continue;
      if (!utf8_lead(v, c))
        return FMQ_EUTF8;
    } else {
      if (c < v->lo || c > v->hi)
        return FMQ_EUTF8;
      v->need--;
      v->lo = 0x80;
      v->hi = 0xBF;
    }
  }
  return 0;
}

int fmq_utf8_complete(const struct fmq_utf8 *v) {
  return v->need == 0;
}

int fmq_utf8_valid(const uint8_t *p, size_t n) {
  struct fmq_utf8 v;
  fmq_utf8_init(&v);
  return fmq_utf8_feed(&v, p, n) == 0 && fmq_utf8_complete(&v);
}
