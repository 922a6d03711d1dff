#ifndef FMQB_HIST_H
#define FMQB_HIST_H

/* A latency histogram in log-linear buckets (HdrHistogram's layout, kept
 * small): exact below 128 ns, then 64 buckets per power of two, so a
 * reported percentile is within 0.8% of the true sample. Fixed size (about
 * 30 KiB), no allocation, values up to 2^64 ns. */

#include <stdint.h>

#define FMQB_HIST_SUB 64
#define FMQB_HIST_BUCKETS (2 * FMQB_HIST_SUB + (63 - 7 + 1) * FMQB_HIST_SUB)

struct fmqb_hist {
  uint64_t count;
  uint64_t min, max;
  double sum;
  uint64_t b[FMQB_HIST_BUCKETS];
};

void fmqb_hist_init(struct fmqb_hist *h);
void fmqb_hist_add(struct fmqb_hist *h, uint64_t ns);
/* The value at percentile p (0 < p <= 100), the middle of its bucket
 * clamped to [min, max]; 0 when empty. */
uint64_t fmqb_hist_pct(const struct fmqb_hist *h, double p);
double fmqb_hist_mean(const struct fmqb_hist *h);

#endif
