#include "seq.h"

#include "bench.h"

#include <stdlib.h>

void fmqb_seq_init(struct fmqb_seq *s, uint32_t expected) {
  s->bits = NULL;
  s->expected = expected;
  s->unique = s->dups = s->stray = 0;
}

void fmqb_seq_close(struct fmqb_seq *s) {
  free(s->bits);
  s->bits = NULL;
}

int fmqb_seq_mark(struct fmqb_seq *s, uint32_t seq) {
  if (seq >= s->expected) {
    s->stray++;
    return 0;
  }
  if (s->bits == NULL) {
    s->bits = fmqb_calloc((s->expected + 7) / 8, 1);
  }
  uint8_t m = (uint8_t)(1u << (seq & 7));
  if (s->bits[seq >> 3] & m) {
    s->dups++;
    return 0;
  }
  s->bits[seq >> 3] |= m;
  s->unique++;
  return 1;
}

uint64_t fmqb_seq_unique_total(const struct fmqb_seq *seqs, uint32_t n) {
  uint64_t u = 0;
  for (uint32_t i = 0; i < n; i++)
    u += seqs[i].unique;
  return u;
}
