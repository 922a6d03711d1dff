#include "hist.h"

#include <string.h>

/* Bucket layout: values below 128 each have their own bucket; a value with
 * its top bit at position e >= 7 falls in block e - 7, at the 64 sub-buckets
 * given by its six bits below the top one. */
static unsigned bucket_of(uint64_t v) {
  if (v < 2 * FMQB_HIST_SUB) {
    return (unsigned)v;
  }
  unsigned e = 63u - (unsigned)__builtin_clzll(v);
  unsigned top = (unsigned)(v >> (e - 6));        /* 64..127 */
  return 2 * FMQB_HIST_SUB + (e - 7) * FMQB_HIST_SUB + (top - FMQB_HIST_SUB);
}

static uint64_t bucket_mid(unsigned i) {
  if (i < 2 * FMQB_HIST_SUB) {
    return i;
  }
  unsigned e = (i - 2 * FMQB_HIST_SUB) / FMQB_HIST_SUB + 7;
  uint64_t top = (i - 2 * FMQB_HIST_SUB) % FMQB_HIST_SUB + FMQB_HIST_SUB;
  uint64_t width = (uint64_t)1 << (e - 6);
  return (top << (e - 6)) + width / 2;
}

void fmqb_hist_init(struct fmqb_hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

void fmqb_hist_add(struct fmqb_hist *h, uint64_t ns) {
  h->b[bucket_of(ns)]++;
  h->count++;
  h->sum += (double)ns;
  if (ns < h->min) {
    h->min = ns;
  }
  if (ns > h->max) {
    h->max = ns;
  }
}

uint64_t fmqb_hist_pct(const struct fmqb_hist *h, double p) {
  if (h->count == 0) {
    return 0;
  }
  /* The rank of the sample at p, 1-based, rounded up: p99 of 1000 samples
   * is the 990th smallest. */
  double want = p / 100.0 * (double)h->count;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want || rank == 0) {
    rank++;
  }
  uint64_t seen = 0;
  for (unsigned i = 0; i < FMQB_HIST_BUCKETS; i++) {
    seen += h->b[i];
    if (seen >= rank) {
      uint64_t v = bucket_mid(i);
      return v < h->min ? h->min : v > h->max ? h->max : v;
    }
  }
  return h->max;
}

double fmqb_hist_mean(const struct fmqb_hist *h) {
  return h->count ? h->sum / (double)h->count : 0.0;
}
