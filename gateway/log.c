#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_int log_level = FMQ_LOG_INFO;

void fmq_log_set_level(enum fmq_log_level level) {
  atomic_store(&log_level, (int)level);
}

int fmq_log_enabled(enum fmq_log_level level) {
  return (int)level <= atomic_load(&log_level);
}

void fmq_log(enum fmq_log_level level, const char *fmt, ...) {
  if (!fmq_log_enabled(level))
    return;
  char line[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000, fmq_log_level_name(level));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof(line) - 2)
    len = sizeof(line) - 2;
  line[len++] = '\n';
  /* One write per line, so lines from several threads never interleave. */
  fwrite(line, 1, len, stderr);
}
