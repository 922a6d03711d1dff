#include "procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    return -1;
  }
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return 0;
}

static uint64_t status_kb(const char *status, const char *key) {
  const char *p = strstr(status, key);
  return p != NULL ? strtoull(p + strlen(key), NULL, 10) : 0;
}

int fmqb_proc_sample(int pid, struct fmqb_proc_sample *out) {
  memset(out, 0, sizeof *out);
  if (pid <= 0) {
    return 0;
  }
  char path[64], buf[8192];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if (read_file(path, buf, sizeof buf) != 0) {
    return 0;
  }
  /* The command name may hold spaces and parentheses: fields count from
   * the last ')'. utime and stime are fields 14 and 15 (1-based), the 12th
   * and 13th after it. */
  char *p = strrchr(buf, ')');
  if (p == NULL) {
    return 0;
  }
  p++;
  unsigned long long v[13];
  for (int i = 0; i < 13; i++) {
    while (*p == ' ') {
      p++;
    }
    char *end;
    v[i] = strtoull(p, &end, 10);
    if (end == p && i != 0) {
      return 0;
    }
    p = (i == 0) ? p + 1 : end;     /* field 3 is the state letter */
  }
  long tck = sysconf(_SC_CLK_TCK);
  out->cpu_s = (double)(v[11] + v[12]) / (double)(tck > 0 ? tck : 100);
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  if (read_file(path, buf, sizeof buf) != 0) {
    return 0;
  }
  out->rss_kb = status_kb(buf, "VmRSS:");
  out->hwm_kb = status_kb(buf, "VmHWM:");
  out->ok = 1;
  return 1;
}
