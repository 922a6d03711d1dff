#ifndef FMQ_UTF8_H
#define FMQ_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Incremental UTF-8 validation (Unicode table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF). A code point may be split across
 * calls. It fails at the first byte that cannot continue a valid sequence,
 * so a bad text message is rejected before it is complete. */
struct fmq_utf8 {
  uint8_t need;   /* continuation bytes still expected */
  uint8_t lo, hi; /* allowed range of the next continuation byte */
};

void fmq_utf8_init(struct fmq_utf8 *v);
/* Returns 0 while everything fed so far is a valid prefix, FMQ_EUTF8 once it
 * is not (then the state is undefined until fmq_utf8_init). */
int fmq_utf8_feed(struct fmq_utf8 *v, const uint8_t *p, size_t n);
/* Returns 1 when the bytes fed so far end on a code point boundary. */
int fmq_utf8_complete(const struct fmq_utf8 *v);
/* One-shot check: returns 1 when p[0..n) is complete, valid UTF-8. */
int fmq_utf8_valid(const uint8_t *p, size_t n);

#endif
