#include "topic.h"

#include "error.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* Literal children are kept sorted by level so a node with many of them
 * (devices/<id>/...) is searched in O(log n); '+' and '#' have their own
 * slots so matching never scans. */
struct fmq_trie_node {
  struct fmq_trie_node *parent;
  struct fmq_trie_node **kids;
  struct fmq_trie_node *plus, *hash;
  void *value;
  uint32_t nkids, cap;
  uint32_t len;
  char level[];
};

static int topic_check(const char *s, size_t len, int filter) {
  if (len == 0 || len > FMQ_TOPIC_MAX || memchr(s, '\0', len) != NULL ||
      !fmq_utf8_valid((const uint8_t *)s, len))
    return FMQ_ETOPIC;
  /* '+' and '#' are ASCII, so they never sit inside a multi-byte sequence. */
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '+' && s[i] != '#')
      continue;
    if (!filter || (i > 0 && s[i - 1] != '/') || (i + 1 < len && s[i + 1] != '/') ||
        (s[i] == '#' && i + 1 != len))
      return FMQ_ETOPIC;
  }
  return 0;
}

int fmq_topic_check_name(const char *name, size_t len) {
  return topic_check(name, len, 0);
}

int fmq_topic_check_filter(const char *filter, size_t len) {
  return topic_check(filter, len, 1);
}

int fmq_topic_is_shared(const char *filter, size_t len) {
  static const char prefix[] = "$share/";
  return len >= sizeof(prefix) - 1 && memcmp(filter, prefix, sizeof(prefix) - 1) == 0;
}

int fmq_topic_matches(const char *filter, const char *topic) {
  const char *f = filter, *t = topic;

  if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
    return 0;
  for (;;) {
    /* f and t are each at the start of a level. */
    if (f[0] == '#')
      return 1;
    if (f[0] == '+') {
      f++;
      t += strcspn(t, "/");
    } else {
      for (; *f != '/' && *f != '\0'; f++, t++)
        if (*f != *t)
          return 0;
      if (*t != '/' && *t != '\0')
        return 0;
    }
    if (*f == '\0')
      return *t == '\0';
    if (*t == '\0')
      return strcmp(f, "/#") == 0; /* "a/#" matches "a" */
    f++;
    t++;
  }
}

void fmq_trie_init(struct fmq_trie *t) {
  t->root = NULL;
  t->count = 0;
}

static struct fmq_trie_node *node_new(struct fmq_trie_node *parent, const char *s, size_t len) {
  struct fmq_trie_node *n = calloc(1, sizeof(*n) + len);

  if (n == NULL)
    return NULL;
  n->parent = parent;
  n->len = (uint32_t)len;
  memcpy(n->level, s, len);
  return n;
}

static int node_empty(const struct fmq_trie_node *n) {
  return n->value == NULL && n->nkids == 0 && n->plus == NULL && n->hash == NULL;
}

/* n's '+' or '#' slot for a wildcard level, NULL for a literal one. */
static struct fmq_trie_node **wild_slot(struct fmq_trie_node *n, const char *s, size_t len) {
  if (len == 1 && s[0] == '+')
    return &n->plus;
  if (len == 1 && s[0] == '#')
    return &n->hash;
  return NULL;
}

static int level_cmp(const struct fmq_trie_node *k, const char *s, size_t len) {
  int c = memcmp(k->level, s, k->len < len ? k->len : len);
  return c != 0 ? c : (k->len > len) - (k->len < len);
}

/* Index of the literal child s[0..len) of n, or where it would go. */
static size_t kid_search(const struct fmq_trie_node *n, const char *s, size_t len, int *found) {
  size_t lo = 0, hi = n->nkids;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = level_cmp(n->kids[mid], s, len);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

static struct fmq_trie_node *kid_find(const struct fmq_trie_node *n, const char *s, size_t len) {
  int found;
  size_t i = kid_search(n, s, len, &found);
  return found ? n->kids[i] : NULL;
}

static struct fmq_trie_node *child_get(struct fmq_trie_node *n, const char *s, size_t len) {
  struct fmq_trie_node **slot = wild_slot(n, s, len);
  return slot != NULL ? *slot : kid_find(n, s, len);
}

static struct fmq_trie_node *child_add(struct fmq_trie_node *n, const char *s, size_t len) {
  struct fmq_trie_node **slot = wild_slot(n, s, len);
  struct fmq_trie_node *c;
  size_t i = 0;
  int found;

  if (slot == NULL) {
    i = kid_search(n, s, len, &found);
    if (n->nkids == n->cap) {
      uint32_t cap = n->cap ? n->cap * 2 : 4;
      struct fmq_trie_node **kids = realloc(n->kids, cap * sizeof(*kids));
      if (kids == NULL)
        return NULL;
      n->kids = kids;
      n->cap = cap;
    }
  }
  if ((c = node_new(n, s, len)) == NULL)
    return NULL;
  if (slot != NULL) {
    *slot = c;
  } else {
    memmove(n->kids + i + 1, n->kids + i, (n->nkids - i) * sizeof(*n->kids));
    n->kids[i] = c;
    n->nkids++;
  }
  return c;
}

static void child_drop(struct fmq_trie_node *n, const struct fmq_trie_node *c) {
  struct fmq_trie_node **slot = wild_slot(n, c->level, c->len);
  size_t i;
  int found;

  if (slot != NULL) {
    *slot = NULL;
    return;
  }
  i = kid_search(n, c->level, c->len, &found);
  memmove(n->kids + i, n->kids + i + 1, (n->nkids - i - 1) * sizeof(*n->kids));
  if (--n->nkids == 0) {
    free(n->kids);
    n->kids = NULL;
    n->cap = 0;
  }
}

/* Frees n and each ancestor left empty, the root included. */
static void trie_prune(struct fmq_trie *t, struct fmq_trie_node *n) {
  while (n != NULL && node_empty(n)) {
    struct fmq_trie_node *p = n->parent;
    if (p != NULL)
      child_drop(p, n);
    else
      t->root = NULL;
    free(n);
    n = p;
  }
}

/* Loops rather than recursion, here and below: a topic may have 65536
 * levels, and the input that sets the depth comes from the network. */
void fmq_trie_close(struct fmq_trie *t) {
  struct fmq_trie_node *n = t->root;

  while (n != NULL) {
    struct fmq_trie_node *c = n->nkids > 0 ? n->kids[n->nkids - 1] : n->plus ? n->plus : n->hash;
    if (c != NULL) {
      n = c;
      continue;
    }
    c = n;
    n = n->parent;
    if (n != NULL) {
      if (c == n->plus)
        n->plus = NULL;
      else if (c == n->hash)
        n->hash = NULL;
      else
        n->nkids--;
    }
    free(c->kids);
    free(c);
  }
  fmq_trie_init(t);
}

/* The node for exactly this filter, or NULL. */
static struct fmq_trie_node *trie_lookup(const struct fmq_trie *t, const char *filter) {
  struct fmq_trie_node *n = t->root;
  const char *s = filter;

  while (n != NULL) {
    size_t len = strcspn(s, "/");
    n = child_get(n, s, len);
    if (s[len] == '\0')
      break;
    s += len + 1;
  }
  return n;
}

int fmq_trie_insert(struct fmq_trie *t, const char *filter, void *value) {
  struct fmq_trie_node *n, *c;
  const char *s = filter;

  if (t->root == NULL && (t->root = node_new(NULL, "", 0)) == NULL)
    return FMQ_ENOMEM;
  n = t->root;
  for (;;) {
    size_t len = strcspn(s, "/");
    if ((c = child_get(n, s, len)) == NULL && (c = child_add(n, s, len)) == NULL) {
      trie_prune(t, n);
      return FMQ_ENOMEM;
    }
    n = c;
    if (s[len] == '\0')
      break;
    s += len + 1;
  }
  if (n->value != NULL)
    return FMQ_EEXIST;
  n->value = value;
  t->count++;
  return 0;
}

void *fmq_trie_find(const struct fmq_trie *t, const char *filter) {
  struct fmq_trie_node *n = trie_lookup(t, filter);
  return n != NULL ? n->value : NULL;
}

void *fmq_trie_remove(struct fmq_trie *t, const char *filter) {
  struct fmq_trie_node *n = trie_lookup(t, filter);
  void *value;

  if (n == NULL || n->value == NULL)
    return NULL;
  value = n->value;
  n->value = NULL;
  t->count--;
  trie_prune(t, n);
  return value;
}

/* A depth-first walk that keeps no stack: each node knows its parent, and
 * i, the offset in topic of the level below the current node (len + 1 once
 * the topic is used up), is found again on the way up by scanning back to
 * the previous '/'. At a node, the literal child is tried first, then '+'
 * (from says which child the walk came back from). */
void fmq_trie_match(const struct fmq_trie *t, const char *topic, fmq_trie_visit_fn visit,
                    void *ctx) {
  const struct fmq_trie_node *n = t->root, *from = NULL, *next;
  size_t len = strlen(topic), i = 0;
  int dollar = topic[0] == '$';

  while (n != NULL) {
    int wild = n != t->root || !dollar;
    size_t l = i <= len ? strcspn(topic + i, "/") : 0;

    next = NULL;
    if (from == NULL) {
      /* '#' matches the level n stands for and everything below it. */
      if (wild && n->hash != NULL && n->hash->value != NULL)
        visit(n->hash->value, ctx);
      if (i > len && n->value != NULL)
        visit(n->value, ctx);
      if (i <= len)
        next = kid_find(n, topic + i, l);
    }
    if (next == NULL && from != n->plus && wild && i <= len)
      next = n->plus;

    if (next != NULL) {
      n = next;
      from = NULL;
      i += l + 1;
    } else {
      if (n->parent != NULL)
        for (i--; i > 0 && topic[i - 1] != '/'; i--)
          ;
      from = n;
      n = n->parent;
    }
  }
}

size_t fmq_topic_levels(const char *topic, size_t len) {
  size_t levels = 1;
  for (const char *p = topic; (p = memchr(p, '/', len - (size_t)(p - topic))) != NULL; p++)
    levels++;
  return levels;
}

int fmq_topic_check_level(const char *value, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (value[i] == '/' || value[i] == '+' || value[i] == '#' || value[i] == '\0')
      return FMQ_ETOPIC;
  return len > 0 ? 0 : FMQ_ETOPIC;
}
