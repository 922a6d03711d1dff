#ifndef FMQB_BENCH_H
#define FMQB_BENCH_H

/* What every file of ferrymq-bench uses: the clock, container_of, messages
 * to the person running it. The bench is one process whose client side runs
 * on one libuv loop (the floors add one thread each); nothing here is
 * thread-safe unless it says so. */

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define fmqb_container_of(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

#define FMQB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC in nanoseconds: the timestamps in payloads and every
 * duration. One clock for the whole machine, so a timestamp written by one
 * process may be compared with one read in another. Thread-safe. */
static inline uint64_t fmqb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double fmqb_secs(uint64_t ns) { return (double)ns / 1e9; }

/* "ferrymq-bench: ..." on stderr. */
void fmqb_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A human-readable report line on stdout (flushed at once, so a driver
 * reading the pipe sees progress). */
void fmqb_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* calloc/realloc that end the process on failure: the bench sizes its
 * tables up front and running out of memory is a failed run. */
void *fmqb_calloc(size_t n, size_t size);
void *fmqb_realloc(void *p, size_t size);

#endif
