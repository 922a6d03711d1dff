#ifndef FMQ_TOPIC_H
#define FMQ_TOPIC_H

#include <stddef.h>
#include <stdint.h>

/* MQTT topic names and filters (MQTT 5.0 section 4.7, the same in 3.1.1):
 * validation, matching, and a trie of filters that finds every filter a
 * topic matches. Pure code; any thread, but a trie is not shared. */

#define FMQ_TOPIC_MAX 65535

/* Checks a topic name of len bytes: 1..65535 bytes of valid UTF-8, no NUL,
 * no '+' or '#'. Returns 0 or FMQ_ETOPIC. */
int fmq_topic_check_name(const char *name, size_t len);
/* Checks a topic filter: as a name, but '+' may fill a whole level and '#'
 * may only be the whole last level. Returns 0 or FMQ_ETOPIC. */
int fmq_topic_check_filter(const char *filter, size_t len);
/* 1 when filter (of len bytes) is an MQTT 5 shared subscription,
 * "$share/GROUP/FILTER". */
int fmq_topic_is_shared(const char *filter, size_t len);
/* 1 when filter matches topic (both valid, NUL-terminated). A topic that
 * starts with '$' is not matched by a filter starting with '+' or '#'. */
int fmq_topic_matches(const char *filter, const char *topic);

/* Checks a value that must stand as one plain level (a user name in an
 * ACL pattern, a field in a mapping's template): len > 0 bytes without '/',
 * '+', '#' or NUL, so it can neither add levels nor wildcards. Returns 0 or
 * FMQ_ETOPIC. */
int fmq_topic_check_level(const char *value, size_t len);
/* The number of levels of a topic or filter of len bytes ("a/b" 2, "" 1). */
size_t fmq_topic_levels(const char *topic, size_t len);

/* A trie keyed by filter level. Each stored filter carries one value
 * (owned by the caller, never NULL). */
struct fmq_trie_node;
struct fmq_trie {
  struct fmq_trie_node *root;
  size_t count;                 /* filters stored */
};

typedef void (*fmq_trie_visit_fn)(void *value, void *ctx);

void fmq_trie_init(struct fmq_trie *t);
/* Frees the nodes; values are the caller's. */
void fmq_trie_close(struct fmq_trie *t);
/* Stores value under filter (valid, NUL-terminated). Returns 0, FMQ_EEXIST
 * when the filter is already stored (nothing changes), or FMQ_ENOMEM. */
int fmq_trie_insert(struct fmq_trie *t, const char *filter, void *value);
/* The value stored under exactly this filter, or NULL. */
void *fmq_trie_find(const struct fmq_trie *t, const char *filter);
/* Removes filter and frees the nodes left empty, the root too: an empty
 * trie holds no memory. Returns the filter's value or NULL. */
void *fmq_trie_remove(struct fmq_trie *t, const char *filter);
/* Calls visit(value, ctx) once for every stored filter that matches topic
 * (a valid name), with the '$' rule of fmq_topic_matches. The walk allocates
 * nothing and does not recurse. The trie must not change during it. */
void fmq_trie_match(const struct fmq_trie *t, const char *topic, fmq_trie_visit_fn visit,
                    void *ctx);

#endif
