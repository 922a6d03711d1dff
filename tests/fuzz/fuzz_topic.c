/* The input is lines: every line is checked as a name and as a filter, the
 * valid filters go into a trie, and every valid name is matched against it.
 * The trie must visit exactly the filters that fmq_topic_matches accepts,
 * each once, and fmq_topic_matches must agree with a plain reference that
 * splits both strings into levels first. */
#include "error.h"
#include "topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct line {
  char *s;  /* NUL-terminated copy, NULL when not valid as a filter */
  int name; /* valid as a name */
  int hits;
};

/* Splits s into its levels; returns how many. */
static size_t levels(const char *s, const char **start, size_t *len) {
  size_t n = 0;
  for (;;) {
    start[n] = s;
    len[n] = strcspn(s, "/");
    s += len[n++];
    if (*s++ == '\0')
      return n;
  }
}

static int is_level(const char *s, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

static int reference_matches(const char *filter, const char *topic) {
  size_t cap = strlen(filter) + strlen(topic) + 2;
  const char **fs = malloc(cap * sizeof(*fs)), **ts = malloc(cap * sizeof(*ts));
  size_t *fl = malloc(cap * sizeof(*fl)), *tl = malloc(cap * sizeof(*tl));
  size_t nf, nt, i;
  int r = -1;

  if (fs == NULL || ts == NULL || fl == NULL || tl == NULL)
    abort();
  nf = levels(filter, fs, fl);
  nt = levels(topic, ts, tl);
  if (topic[0] == '$' && (is_level(fs[0], fl[0], "+") || is_level(fs[0], fl[0], "#")))
    r = 0;
  for (i = 0; r < 0 && i < nf; i++) {
    if (is_level(fs[i], fl[i], "#"))
      r = 1;
    else if (i >= nt || (!is_level(fs[i], fl[i], "+") &&
                         (fl[i] != tl[i] || memcmp(fs[i], ts[i], fl[i]) != 0)))
      r = 0;
  }
  if (r < 0)
    r = nf == nt;
  free(fs);
  free(ts);
  free(fl);
  free(tl);
  return r;
}

static void visit(void *value, void *ctx) {
  (void)ctx;
  ((struct line *)value)->hits++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct line lines[MAX_LINES];
  size_t n = 0, stored = 0;
  const char *p = (const char *)data, *end = p + size;
  struct fmq_trie t;

  fmq_trie_init(&t);
  while (n < MAX_LINES) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = (nl != NULL ? nl : end) - p;
    int name = fmq_topic_check_name(p, len), filter = fmq_topic_check_filter(p, len);
    struct line *l = &lines[n++];

    if ((name != 0 && name != FMQ_ETOPIC) || (filter != 0 && filter != FMQ_ETOPIC))
      abort();
    /* A name is a filter without wildcards. */
    if ((name == 0) != (filter == 0 && memchr(p, '+', len) == NULL && memchr(p, '#', len) == NULL))
      abort();
    l->s = NULL;
    l->name = name == 0;
    l->hits = 0;
    if (filter == 0) {
      if ((l->s = malloc(len + 1)) == NULL)
        abort();
      memcpy(l->s, p, len);
      l->s[len] = '\0';
      int rc = fmq_trie_insert(&t, l->s, l);
      if (rc == 0)
        stored++;
      else if (rc != FMQ_EEXIST || fmq_trie_find(&t, l->s) == NULL)
        abort();
      else
        l->hits = -1; /* a duplicate: the first copy stands for it */
    }
    if (nl == NULL)
      break;
    p = nl + 1;
  }
  if (t.count != stored)
    abort();

  for (size_t j = 0; j < n; j++) {
    if (!lines[j].name)
      continue;
    for (size_t k = 0; k < n; k++)
      if (lines[k].hits > 0)
        lines[k].hits = 0;
    fmq_trie_match(&t, lines[j].s, visit, NULL);
    for (size_t k = 0; k < n; k++) {
      if (lines[k].s == NULL || lines[k].hits < 0)
        continue;
      int want = fmq_topic_matches(lines[k].s, lines[j].s);
      if (want != reference_matches(lines[k].s, lines[j].s) || lines[k].hits != want)
        abort();
    }
  }

  for (size_t k = 0; k < n; k++) {
    if (lines[k].s != NULL && lines[k].hits >= 0 &&
        fmq_trie_remove(&t, lines[k].s) != &lines[k])
      abort();
    free(lines[k].s);
  }
  if (t.count != 0 || t.root != NULL)
    abort();
  fmq_trie_close(&t);
  return 0;
}
