#include "report.h"

#include "bench.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fmqb_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ferrymq-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void fmqb_say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  fflush(stdout);
  va_end(ap);
}

void *fmqb_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) {
    fmqb_warn("out of memory (%zu x %zu bytes)", n, size);
    exit(1);
  }
  return p;
}

void *fmqb_realloc(void *p, size_t size) {
  void *q = realloc(p, size ? size : 1);
  if (q == NULL) {
    fmqb_warn("out of memory (%zu bytes)", size);
    exit(1);
  }
  return q;
}

/* --- JSON --- */

void fmqb_json_init(struct fmqb_json *j) {
  memset(j, 0, sizeof *j);
  j->cap = 4096;
  j->buf = fmqb_calloc(j->cap, 1);
}

void fmqb_json_close(struct fmqb_json *j) {
  free(j->buf);
  j->buf = NULL;
}

static void put(struct fmqb_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct fmqb_json *j, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->buf + j->len, j->cap - j->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < j->cap - j->len) {
      j->len += (size_t)n;
      return;
    }
    j->cap *= 2;
    j->buf = fmqb_realloc(j->buf, j->cap);
  }
}

static void put_str(struct fmqb_json *j, const char *s) {
  put(j, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      put(j, "\\%c", c);
    } else if (c < 0x20) {
      put(j, "\\u%04x", c);
    } else {
      put(j, "%c", c);
    }
  }
  put(j, "\"");
}

static void key(struct fmqb_json *j, const char *k) {
  if (j->depth > 0) {
    if (!j->first[j->depth - 1]) {
      put(j, ",");
    }
    j->first[j->depth - 1] = 0;
  }
  if (k != NULL) {
    put_str(j, k);
    put(j, ":");
  }
}

void fmqb_json_open(struct fmqb_json *j, const char *k) {
  key(j, k);
  put(j, "{");
  if (j->depth < sizeof j->first) {
    j->first[j->depth] = 1;
  }
  j->depth++;
}

void fmqb_json_end(struct fmqb_json *j) {
  put(j, "}");
  j->depth--;
}

void fmqb_json_u64(struct fmqb_json *j, const char *k, uint64_t v) {
  key(j, k);
  put(j, "%" PRIu64, v);
}

void fmqb_json_i64(struct fmqb_json *j, const char *k, int64_t v) {
  key(j, k);
  put(j, "%" PRId64, v);
}

void fmqb_json_num(struct fmqb_json *j, const char *k, double v) {
  key(j, k);
  if (v != v || v > 1e300 || v < -1e300) {
    put(j, "null");
    return;
  }
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.3f", v);
  char *dot = strchr(tmp, '.');
  if (dot != NULL) {
    char *e = tmp + strlen(tmp) - 1;
    while (e > dot && *e == '0') {
      *e-- = '\0';
    }
    if (e == dot) {
      *e = '\0';
    }
  }
  put(j, "%s", strcmp(tmp, "-0") == 0 ? "0" : tmp);
}

void fmqb_json_str(struct fmqb_json *j, const char *k, const char *s) {
  key(j, k);
  put_str(j, s);
}

void fmqb_json_bool(struct fmqb_json *j, const char *k, int v) {
  key(j, k);
  put(j, v ? "true" : "false");
}

void fmqb_json_u64_array(struct fmqb_json *j, const char *k, const uint64_t *v, size_t n) {
  key(j, k);
  put(j, "[");
  for (size_t i = 0; i < n; i++) {
    put(j, "%s%" PRIu64, i ? "," : "", v[i]);
  }
  put(j, "]");
}

void fmqb_json_print_result(struct fmqb_json *j) {
  printf("RESULT %.*s\n", (int)j->len, j->buf);
  fflush(stdout);
}

/* --- composite figures --- */

void fmqb_errors_add(struct fmqb_errors *e, const char *code, size_t len) {
  if (len >= sizeof e->code[0]) {
    len = sizeof e->code[0] - 1;
  }
  e->total++;
  for (unsigned i = 0; i < e->count; i++) {
    if (strlen(e->code[i]) == len && memcmp(e->code[i], code, len) == 0) {
      e->n[i]++;
      return;
    }
  }
  unsigned i = e->count < FMQB_ERR_CODES ? e->count++ : FMQB_ERR_CODES - 1;
  if (i == FMQB_ERR_CODES - 1 && e->n[i] != 0) {
    snprintf(e->code[i], sizeof e->code[i], "other");
  } else {
    memcpy(e->code[i], code, len);
    e->code[i][len] = '\0';
  }
  e->n[i]++;
}

void fmqb_report_errors(struct fmqb_json *j, const char *k, const char *what,
                        const struct fmqb_errors *e) {
  char line[1024];
  size_t n = (size_t)snprintf(line, sizeof line, "%s: %" PRIu64, what, e->total);
  for (unsigned i = 0; i < e->count && n < sizeof line; i++) {
    n += (size_t)snprintf(line + n, sizeof line - n, "%s%s %" PRIu64, i ? ", " : " (",
                          e->code[i], e->n[i]);
  }
  if (e->count > 0 && n < sizeof line) {
    snprintf(line + n, sizeof line - n, ")");
  }
  fmqb_say("%s", line);
  fmqb_json_open(j, k);
  for (unsigned i = 0; i < e->count; i++) {
    fmqb_json_u64(j, e->code[i], e->n[i]);
  }
  fmqb_json_end(j);
}

void fmqb_report_latency(struct fmqb_json *j, const char *k, const char *what,
                         const struct fmqb_hist *h) {
  double p50 = (double)fmqb_hist_pct(h, 50) / 1e3;
  double p99 = (double)fmqb_hist_pct(h, 99) / 1e3;
  double p999 = (double)fmqb_hist_pct(h, 99.9) / 1e3;
  double max = h->count ? (double)h->max / 1e3 : 0;
  double mean = fmqb_hist_mean(h) / 1e3;
  fmqb_say("%s: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us, mean %.1f us"
           " (%" PRIu64 " samples)", what, p50, p99, p999, max, mean, h->count);
  fmqb_json_open(j, k);
  fmqb_json_u64(j, "count", h->count);
  fmqb_json_num(j, "p50", p50);
  fmqb_json_num(j, "p99", p99);
  fmqb_json_num(j, "p999", p999);
  fmqb_json_num(j, "max", max);
  fmqb_json_num(j, "mean", mean);
  fmqb_json_end(j);
}

void fmqb_procmon_init(struct fmqb_procmon *m, int pid) {
  memset(m, 0, sizeof *m);
  m->pid = pid;
}

void fmqb_procmon_base(struct fmqb_procmon *m) { fmqb_proc_sample(m->pid, &m->base); }
void fmqb_procmon_ready(struct fmqb_procmon *m) { fmqb_proc_sample(m->pid, &m->ready); }
void fmqb_procmon_start(struct fmqb_procmon *m) { fmqb_proc_sample(m->pid, &m->start); }
void fmqb_procmon_end(struct fmqb_procmon *m) { fmqb_proc_sample(m->pid, &m->end); }

void fmqb_report_proc(struct fmqb_json *j, const char *k, const char *who,
                      const struct fmqb_procmon *m, uint64_t units, const char *unit_name,
                      uint64_t conns) {
  if (m->pid <= 0) {
    return;
  }
  fmqb_json_open(j, k);
  fmqb_json_i64(j, "pid", m->pid);
  if (!m->end.ok) {
    fmqb_say("%s (pid %d): could not be read at the end (gone?)", who, m->pid);
    fmqb_json_bool(j, "alive", 0);
    fmqb_json_end(j);
    return;
  }
  fmqb_json_bool(j, "alive", 1);
  if (m->start.ok) {
    double cpu = m->end.cpu_s - m->start.cpu_s;
    fmqb_json_num(j, "cpu_s", cpu);
    if (units > 0) {
      double per_m = cpu / (double)units * 1e6;
      fmqb_say("%s CPU: %.2f s over the traffic, %.3f s per million %s (%.3f us each)", who,
               cpu, per_m, unit_name, per_m);
      fmqb_json_num(j, "cpu_s_per_million", per_m);
    } else {
      fmqb_say("%s CPU: %.2f s over the measured phase", who, cpu);
    }
  }
  fmqb_json_u64(j, "rss_base_kb", m->base.rss_kb);
  fmqb_json_u64(j, "rss_ready_kb", m->ready.rss_kb);
  fmqb_json_u64(j, "rss_end_kb", m->end.rss_kb);
  fmqb_json_u64(j, "peak_rss_kb", m->end.hwm_kb);
  fmqb_say("%s memory: RSS %" PRIu64 " kB before, %" PRIu64 " kB ready, %" PRIu64
           " kB at the end, peak (VmHWM) %" PRIu64 " kB", who, m->base.rss_kb,
           m->ready.rss_kb, m->end.rss_kb, m->end.hwm_kb);
  if (conns > 0 && m->base.ok && m->ready.ok) {
    double per = ((double)m->ready.rss_kb - (double)m->base.rss_kb) * 1024.0 / (double)conns;
    fmqb_say("%s RSS growth per connection: %.0f bytes (%" PRIu64 " connections)", who, per,
             conns);
    fmqb_json_num(j, "rss_per_conn_bytes", per);
  }
  fmqb_json_end(j);
}

void fmqb_report_bench_cpu(struct fmqb_json *j, const struct fmqb_procmon *m, uint64_t units) {
  if (!m->start.ok || !m->end.ok) {
    return;
  }
  double cpu = m->end.cpu_s - m->start.cpu_s;
  fmqb_say("bench CPU: %.2f s over the traffic (%.3f us per message)", cpu,
           units ? cpu / (double)units * 1e6 : 0);
  fmqb_json_num(j, "bench_cpu_s", cpu);
}
