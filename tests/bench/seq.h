#ifndef FMQB_SEQ_H
#define FMQB_SEQ_H

/* Which sequence numbers of one stream (a publisher, a topic) one receiver
 * got: a bitmap of the numbers expected, so loss and duplicates are exact
 * whatever the order. A number beyond the expected range counts as stray. */

#include <stdint.h>

struct fmqb_seq {
  uint8_t *bits;              /* owned; NULL until the first mark */
  uint32_t expected;          /* sequence numbers 0 .. expected-1 */
  uint32_t unique;
  uint32_t dups;
  uint32_t stray;
};

void fmqb_seq_init(struct fmqb_seq *s, uint32_t expected);
void fmqb_seq_close(struct fmqb_seq *s);
/* Records seq; returns 1 when it is new, 0 for a duplicate or a stray. */
int fmqb_seq_mark(struct fmqb_seq *s, uint32_t seq);
static inline uint32_t fmqb_seq_lost(const struct fmqb_seq *s) {
  return s->expected - s->unique;
}
/* The distinct numbers received over the n streams of seqs. */
uint64_t fmqb_seq_unique_total(const struct fmqb_seq *seqs, uint32_t n);

#endif
