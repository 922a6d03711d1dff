#ifndef FMQ_LOG_H
#define FMQ_LOG_H

#include "config.h"

/* Line-oriented log on stderr, one line per message (log.format):
 *   logfmt  time=2026-11-22T10:00:00.123Z level=info msg="listening on ..."
 *   json    {"time":"2026-11-22T10:00:00.123Z","level":"info","msg":"..."}
 * The message is escaped as a JSON string in both: '"' and '\\', \n, \t,
 * other control characters as \u00XX, bytes that are not UTF-8 as \ufffd.
 * A line is at most 1024 bytes; a longer message is cut at a character.
 * Any thread. */

void fmq_log_set_level(enum fmq_log_level level);
void fmq_log_set_format(enum fmq_log_format format);
int fmq_log_enabled(enum fmq_log_level level);
void fmq_log(enum fmq_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fmq_log_error(...) fmq_log(FMQ_LOG_ERROR, __VA_ARGS__)
#define fmq_log_warn(...) fmq_log(FMQ_LOG_WARN, __VA_ARGS__)
#define fmq_log_info(...) fmq_log(FMQ_LOG_INFO, __VA_ARGS__)
#define fmq_log_debug(...) \
  do { if (fmq_log_enabled(FMQ_LOG_DEBUG)) fmq_log(FMQ_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
