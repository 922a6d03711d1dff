/* Client-controlled text of access control: the Origin header, and the user
 * and client id substituted into ACL patterns. The input is lines: line 1 is
 * an Origin, line 2 a user, line 3 a pattern, the rest filters. A
 * normalised origin must normalise to itself; an expanded pattern must be a
 * valid filter that gives the user no level or wildcard of its own; and a
 * pattern that covers a filter must match every other line that filter
 * matches. */
#include "acl.h"
#include "error.h"
#include "origin.h"
#include "topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_origin(const char *s, size_t len) {
  size_t cap = len + 8;
  char *out = malloc(cap), *again = malloc(cap);
  int n;

  if (out == NULL || again == NULL)
    abort();
  n = fmq_origin_normalize(s, len, out, cap);
  if (n == FMQ_ESPACE)
    abort(); /* len + 8 always fits */
  if (n >= 0 && (fmq_origin_normalize(out, (size_t)n, again, cap) != n ||
                 memcmp(out, again, (size_t)n) != 0))
    abort();
  free(out);
  free(again);
}

static void check_expand(const char *pattern, const char *user) {
  int nomem;
  char *e = fmq_acl_expand(pattern, user, "c1", &nomem);

  if (e == NULL)
    return;
  if (fmq_topic_check_filter(e, strlen(e)) != 0 || fmq_topic_is_shared(e, strlen(e)))
    abort();
  /* The user fills levels only where %u stood: "%u" alone expands to it. */
  if (strcmp(pattern, "%u") == 0 && strcmp(e, user) != 0)
    abort();
  free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1), *lines[MAX_LINES];
  size_t n = 0;

  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  for (char *p = text; n < MAX_LINES && p != NULL; n++) {
    lines[n] = p;
    if ((p = strchr(p, '\n')) != NULL)
      *p++ = '\0';
  }
  check_origin(lines[0], strlen(lines[0]));
  if (n >= 3) {
    check_expand(lines[2], lines[1]);
    const char *pattern = lines[2];
    if (fmq_topic_check_filter(pattern, strlen(pattern)) == 0) {
      for (size_t f = 3; f < n; f++) {
        if (fmq_topic_check_filter(lines[f], strlen(lines[f])) != 0 ||
            !fmq_acl_covers(pattern, lines[f]))
          continue;
        for (size_t t = 3; t < n; t++)
          if (fmq_topic_check_name(lines[t], strlen(lines[t])) == 0 &&
              fmq_topic_matches(lines[f], lines[t]) && !fmq_topic_matches(pattern, lines[t]))
            abort();
      }
    }
  }
  free(text);
  return 0;
}
