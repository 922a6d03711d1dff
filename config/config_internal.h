#ifndef FMQ_CONFIG_INTERNAL_H
#define FMQ_CONFIG_INTERNAL_H

/* What the files of config/ share; included by nothing outside config/
 * but its white-box fuzz target (tests/fuzz/fuzz_config_env.c).
 * config.c: the option table, values, init and close; suggest.c: "did you
 * mean"; env.c: FERRYMQ_* variables; yaml.c: the YAML loader; lists.c: lists
 * of entries, listen and auth.tokens; mappings.c: mappings. */

#include "config.h"

#include <stdbool.h>
#include <stdio.h>

#include <yaml.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum fmq_option_type {
  FMQ_OPT_DURATION, /* uint64_t milliseconds */
  FMQ_OPT_SIZE,     /* uint64_t bytes */
  FMQ_OPT_UINT,     /* uint64_t */
  FMQ_OPT_BOOL,     /* int, 0 or 1: true or false */
  FMQ_OPT_STRING,   /* char *, owned */
  FMQ_OPT_STRINGS,  /* struct fmq_strv: a YAML sequence; as text, comma-separated */
  FMQ_OPT_ENUM,     /* an int-sized enum, index into names */
  FMQ_OPT_NODE,     /* a YAML sequence or mapping read by load; not in env */
};

/* A number option accepts 0 ("off", "unlimited") besides [min, max]. */
#define FMQ_OPT_ZERO_OFF 1u

struct loader;
struct fmq_option;

/* Checks a value; msg gets the reason, without any prefix. */
typedef int (*fmq_option_validate_cb)(const char *value, char *msg, size_t msglen);
/* Checks a value and sets *out to the form to store, a new string. */
typedef int (*fmq_option_normalize_cb)(const char *value, char **out, char *msg, size_t msglen);
/* Reads the option's value, whose first event is ev (owned by the caller),
 * into ld->c; on error writes ld->err and returns -1. */
typedef int (*fmq_option_load_cb)(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);

struct fmq_option {
  const char *name; /* dotted path, also the field's path in struct fmq_config */
  enum fmq_option_type type;
  size_t offset;   /* of the field; FMQ_OPT_NODE's load and release know theirs */
  const char *def; /* text as for fmq_config_set; YAML for FMQ_OPT_NODE */
  uint64_t min, max;
  unsigned flags;
  fmq_option_validate_cb validate;       /* FMQ_OPT_STRING, FMQ_OPT_STRINGS' items; optional */
  fmq_option_normalize_cb normalize;     /* FMQ_OPT_STRINGS' items, instead of validate */
  const char *const *names;              /* FMQ_OPT_ENUM, NULL-terminated */
  fmq_option_load_cb load;               /* FMQ_OPT_NODE */
  void (*release)(struct fmq_config *c); /* FMQ_OPT_NODE */
};

/* ---- config.c: the options and their values ---- */

extern const struct fmq_option fmq_config_options[];
extern const size_t fmq_config_noptions;

/* Writes the message to err (if errlen > 0); returns -1. */
int fmq_config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const struct fmq_option *fmq_config_option_find(const char *name);
/* Records in c->set_by_source that a source set option o: the file's
 * loader, fmq_config_apply_env, fmq_config_set and --listen / --path do,
 * after the value was stored; fmq_config_init does not. */
void fmq_config_mark_set(struct fmq_config *c, const struct fmq_option *o);
/* Parses text as option o and stores it in c; msg gets the reason, without
 * any source or key prefix. The one place values are converted. */
int fmq_config_option_set(struct fmq_config *c, const struct fmq_option *o, const char *text,
                          char *msg, size_t msglen);
/* Replaces the list of FMQ_OPT_STRINGS option o by *v, which c takes. */
void fmq_config_option_set_strv(struct fmq_config *c, const struct fmq_option *o,
                                const struct fmq_strv *v);
int fmq_config_parse_bool(const char *text, int *value);
/* A path as for listen.paths. */
int fmq_config_check_path(const char *path, char *msg, size_t msglen);
/* Replaces *field by a copy of value. */
int fmq_config_set_string(char **field, const char *value, char *msg, size_t msglen);
/* Appends a copy of s to *v; returns 0 or -1 when out of memory. */
int fmq_config_strv_push(char ***v, size_t *n, const char *s);
void fmq_config_strv_free(struct fmq_strv *v);
/* Checks s by rule's validate or normalize and appends it, as stored, to v. */
int fmq_config_strv_add(struct fmq_strv *v, const struct fmq_option *rule, const char *s, char *msg,
                        size_t msglen);

/* ---- suggest.c: names of keys and sections, the nearest to a wrong one ---- */

const char *fmq_config_suggest(const char *name, const char *const *candidates, size_t n);
/* "websocket" is a section: some key is under it. */
bool fmq_config_is_section(const char *path);
/* The key to suggest for the unknown path in section prefix; NULL: none. */
const char *fmq_config_suggest_key(const char *prefix, const char *path, char *buf, size_t buflen);

/* ---- yaml.c: the loader ---- */

struct loader {
  yaml_parser_t parser;
  struct fmq_config *c;
  const char *file;
  FILE *fp; /* NULL when reading a string */
  char *err;
  size_t errlen;
  unsigned long seen[FMQ_CONFIG_OPTIONS_MAX]; /* line of each option's first value, 0: not yet */
};

/* Writes "FILE:LINE: message" to ld->err; returns -1. */
int fmq_config_load_fail(struct loader *ld, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The next event, or -1 with ld->err. */
int fmq_config_next_event(struct loader *ld, yaml_event_t *ev);
/* "a mapping", "a sequence", "an alias", "a value": what ev starts. */
const char *fmq_config_node_kind(const yaml_event_t *ev);
bool fmq_config_is_null(const yaml_event_t *ev);
/* "unknown key 'name'", with "(did you mean 'guess'?)" unless guess is NULL. */
int fmq_config_unknown_key(struct loader *ld, const yaml_mark_t *mark, const char *name,
                           const char *guess);
/* Reads a sequence of strings (first event ev; a null value is an empty
 * list) into out, each checked and stored as fmq_config_strv_add does with
 * rule. On error out may hold some; the caller frees it. */
int fmq_config_load_strings(struct loader *ld, const char *name, const yaml_event_t *ev,
                            const struct fmq_option *rule, struct fmq_strv *out);
/* Loads a FMQ_OPT_NODE default, a one-node YAML document. */
int fmq_config_load_default(struct fmq_config *c, const struct fmq_option *o);

/* ---- lists.c: lists of entries ---- */

#define ENTRY_KEYS_MAX 8

/* One entry (a YAML mapping) while it is read. */
struct entry {
  char where[64];          /* "mappings[2]", for messages */
  const char *const *keys; /* the keys it may have */
  size_t nkeys;
  yaml_mark_t start; /* of the entry */
  yaml_mark_t key[ENTRY_KEYS_MAX], value[ENTRY_KEYS_MAX];
  unsigned present;           /* bit i: keys[i] was given */
  char *text[ENTRY_KEYS_MAX]; /* values kept for after the entry (mappings) */
};

#define KEY_BIT(i) (1u << (i))

struct list_kind {
  const char *name;        /* "mappings" */
  const char *what;        /* "entries", for messages */
  const char *const *keys; /* keys[0] is required */
  size_t nkeys;
  size_t size; /* of an item */
  /* Reads key's value, whose first event is v, into item. */
  int (*set)(struct loader *ld, struct entry *e, size_t key, const yaml_event_t *v, void *item);
  /* After the entry: checks and completes items[i]; optional. */
  int (*finish)(struct loader *ld, const struct entry *e, void *items, size_t i, void *arg);
};

/* Reads a sequence of entries (first event ev; a null value is an empty
 * list) into *items, *n of them. On error *items may hold some, each in a
 * state its kind's free handles. */
int fmq_config_load_items(struct loader *ld, const struct list_kind *kind, const yaml_event_t *ev,
                          void **items, size_t *n, void *arg);
/* The value of e's key, which must be a single value; NULL after an error. */
const char *fmq_config_entry_scalar(struct loader *ld, const struct entry *e, size_t key,
                                    const yaml_event_t *v);

/* FMQ_OPT_NODE's load and release: listen and auth.tokens (lists.c),
 * mappings (mappings.c, protocol-v1 section 6). */
int fmq_config_load_listen(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);
void fmq_config_release_listen(struct fmq_config *c);
int fmq_config_load_tokens(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);
void fmq_config_release_tokens(struct fmq_config *c);
int fmq_config_load_mappings(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);
void fmq_config_release_mappings(struct fmq_config *c);

#endif
