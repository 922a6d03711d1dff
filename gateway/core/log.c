#include "log.h"

#include "utf8.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES 1024

static atomic_int log_level = FMQ_LOG_INFO;
static atomic_int log_format = FMQ_LOG_LOGFMT;

void fmq_log_set_level(enum fmq_log_level level) {
  atomic_store(&log_level, (int)level);
}

void fmq_log_set_format(enum fmq_log_format format) {
  atomic_store(&log_format, (int)format);
}

int fmq_log_enabled(enum fmq_log_level level) {
  return (int)level <= atomic_load(&log_level);
}

/* Length of the valid UTF-8 sequence at p[0..n) (p[0] >= 0x80), or 0. */
static size_t utf8_sequence(const uint8_t *p, size_t n) {
  size_t len = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
  return len <= n && fmq_utf8_valid(p, len) ? len : 0;
}

/* Appends text[0..n) to out[*len..cap) as the inside of a JSON string (which
 * logfmt's quoted values use too), stopping before an escape that would not
 * fit whole. */
static void append_escaped(char *out, size_t *len, size_t cap, const char *text, size_t n) {
  const uint8_t *p = (const uint8_t *)text;
  for (size_t i = 0; i < n;) {
    char esc[8];
    const char *piece = esc;
    size_t m = 1, used = 1;
    if (p[i] == '"' || p[i] == '\\') {
      esc[0] = '\\';
      esc[1] = (char)p[i];
      m = 2;
    } else if (p[i] == '\n' || p[i] == '\t') {
      esc[0] = '\\';
      esc[1] = p[i] == '\n' ? 'n' : 't';
      m = 2;
    } else if (p[i] < 0x20 || p[i] == 0x7f) {
      m = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
    } else if (p[i] < 0x80) {
      piece = text + i;
    } else if ((used = utf8_sequence(p + i, n - i)) > 0) {
      piece = text + i;
      m = used;
    } else {
      /* Not UTF-8 (a log line may quote a client's bytes): U+FFFD keeps the
       * JSON valid, escaped so the line stays ASCII where the input was bad. */
      piece = "\\ufffd";
      m = 6;
      used = 1;
    }
    if (m > cap - *len)
      return;
    memcpy(out + *len, piece, m);
    *len += m;
    i += used;
  }
}

void fmq_log(enum fmq_log_level level, const char *fmt, ...) {
  if (!fmq_log_enabled(level))
    return;
  char msg[LINE_MAX_BYTES], line[LINE_MAX_BYTES];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  size_t msg_len = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;

  int json = atomic_load(&log_format) == FMQ_LOG_JSON;
  const char *head = json ? "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\""
                          : "time=%s level=%s msg=\"";
  const char *end = json ? "\"}\n" : "\"\n";
  char stamp[64];
  size_t t = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + t, sizeof(stamp) - t, ".%03ldZ", ts.tv_nsec / 1000000);
  int n = snprintf(line, sizeof(line), head, stamp, fmq_log_level_name(level));
  size_t len = (size_t)n;
  append_escaped(line, &len, sizeof(line) - strlen(end), msg, msg_len);
  memcpy(line + len, end, strlen(end));
  len += strlen(end);
  /* One write per line, so lines from several threads never interleave. */
  fwrite(line, 1, len, stderr);
}
