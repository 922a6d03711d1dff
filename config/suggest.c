#include "config_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[64];

  if (lb >= ARRAY_SIZE(row))
    return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* The candidate closest to name, allowing one edit per three characters of
 * its last component, at most two: "ur" suggests "broker.url", "foo" does
 * not suggest "log". */
const char *fmq_config_suggest(const char *name, const char *const *candidates, size_t n) {
  const char *best = NULL;
  size_t best_d = SIZE_MAX;

  for (size_t i = 0; i < n; i++) {
    const char *leaf = strrchr(candidates[i], '.');
    size_t len = strlen(leaf != NULL ? leaf + 1 : candidates[i]);
    size_t max = len < 6 ? 1 : 2;
    size_t d = edit_distance(name, candidates[i]);
    if (d <= max && d < best_d) {
      best = candidates[i];
      best_d = d;
    }
  }
  return best;
}

/* "websocket.idle_timeout" is under "websocket" (and under ""). */
static bool is_under(const char *name, const char *prefix) {
  size_t n = strlen(prefix);

  return n == 0 || (strncmp(name, prefix, n) == 0 && name[n] == '.');
}

bool fmq_config_is_section(const char *path) {
  for (size_t i = 0; i < fmq_config_noptions; i++)
    if (is_under(fmq_config_options[i].name, path))
      return true;
  return false;
}

/* The nearest known key for an unknown `path` in section `prefix`: a sibling
 * within a small edit distance, else a key elsewhere with the same last
 * component (a key put in the wrong section). */
const char *fmq_config_suggest_key(const char *prefix, const char *path, char *buf, size_t buflen) {
  char names[FMQ_CONFIG_OPTIONS_MAX][64];
  const char *cand[FMQ_CONFIG_OPTIONS_MAX] = {NULL}; /* GCC cannot tell the loop fills any */
  size_t n = 0, skip = strlen(prefix) + (prefix[0] != '\0');
  const char *best, *leaf = path + skip;

  for (size_t i = 0; i < fmq_config_noptions; i++) {
    const char *name = fmq_config_options[i].name;
    size_t len;
    if (!is_under(name, prefix))
      continue;
    len = strcspn(name + skip, ".") + skip;
    snprintf(names[n], sizeof names[n], "%.*s", (int)len, name);
    cand[n] = names[n];
    n++;
  }
  if ((best = fmq_config_suggest(path, cand, n)) != NULL) {
    snprintf(buf, buflen, "%s", best);
    return buf;
  }
  for (size_t i = 0; i < fmq_config_noptions; i++) {
    const char *dot = strrchr(fmq_config_options[i].name, '.');
    if (dot != NULL && strcmp(dot + 1, leaf) == 0)
      return fmq_config_options[i].name;
  }
  return NULL;
}
