#ifndef FMQB_REPORT_H
#define FMQB_REPORT_H

/* The run's figures: the human-readable lines go to stdout as they are
 * known (fmqb_say), and every figure also goes into one JSON object, printed
 * last as "RESULT {json}" for scripts. */

#include "hist.h"
#include "procstat.h"

#include <stddef.h>
#include <stdint.h>

struct fmqb_json {
  char *buf;                /* owned */
  size_t len, cap;
  unsigned depth;
  uint8_t first[16];        /* per open object: nothing written in it yet */
};

void fmqb_json_init(struct fmqb_json *j);
void fmqb_json_close(struct fmqb_json *j);
/* Opens an object under key (NULL for the top-level one). */
void fmqb_json_open(struct fmqb_json *j, const char *key);
void fmqb_json_end(struct fmqb_json *j);
void fmqb_json_u64(struct fmqb_json *j, const char *key, uint64_t v);
void fmqb_json_i64(struct fmqb_json *j, const char *key, int64_t v);
/* A number with up to 3 decimals (trailing zeros dropped). */
void fmqb_json_num(struct fmqb_json *j, const char *key, double v);
void fmqb_json_str(struct fmqb_json *j, const char *key, const char *s);
void fmqb_json_bool(struct fmqb_json *j, const char *key, int v);
void fmqb_json_u64_array(struct fmqb_json *j, const char *key, const uint64_t *v, size_t n);
/* Prints "RESULT " and the object (all objects must be ended). */
void fmqb_json_print_result(struct fmqb_json *j);

/* Error replies by code ("unavailable": 12): a short table. */
#define FMQB_ERR_CODES 24
struct fmqb_errors {
  unsigned count;
  uint64_t total;
  char code[FMQB_ERR_CODES][32];
  uint64_t n[FMQB_ERR_CODES];
};
void fmqb_errors_add(struct fmqb_errors *e, const char *code, size_t len);
/* A human line "what: N (code N, ...)" and the object {code: N} under key. */
void fmqb_report_errors(struct fmqb_json *j, const char *key, const char *what,
                        const struct fmqb_errors *e);

/* A latency histogram: a human line and {count, p50, p99, p999, max, mean}
 * in microseconds under key. */
void fmqb_report_latency(struct fmqb_json *j, const char *key, const char *what,
                         const struct fmqb_hist *h);

/* The gateway (or broker) process over a run: samples before any
 * connection (base), once every connection is ready, when the measured
 * traffic starts and when it ends. */
struct fmqb_procmon {
  int pid;
  struct fmqb_proc_sample base, ready, start, end;
};
void fmqb_procmon_init(struct fmqb_procmon *m, int pid);
void fmqb_procmon_base(struct fmqb_procmon *m);
void fmqb_procmon_ready(struct fmqb_procmon *m);
void fmqb_procmon_start(struct fmqb_procmon *m);
void fmqb_procmon_end(struct fmqb_procmon *m);
/* Human lines and the object under key: cpu_s over start..end, per million
 * of `units` (messages or deliveries), rss at each sample, peak (VmHWM),
 * growth per connection ((ready - base) / conns). Nothing without a pid. */
void fmqb_report_proc(struct fmqb_json *j, const char *key, const char *who,
                      const struct fmqb_procmon *m, uint64_t units, const char *unit_name,
                      uint64_t conns);

/* This process's CPU over start..end ("bench_cpu_s", and per million
 * units): when it nears one core per loop thread, the bench, not the
 * gateway, is the limit. */
void fmqb_report_bench_cpu(struct fmqb_json *j, const struct fmqb_procmon *m, uint64_t units);

#endif
