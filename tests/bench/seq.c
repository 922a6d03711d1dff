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
