#include "config_internal.h"

#include "acl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lists of entries ---- */

const char *fmq_config_entry_scalar(struct loader *ld, const struct entry *e, size_t key,
                                    const yaml_event_t *v) {
  if (v->type == YAML_SCALAR_EVENT)
    return (const char *)v->data.scalar.value;
  fmq_config_load_fail(ld, &v->start_mark, "%s.%s: expected a single value, got %s", e->where,
                       e->keys[key], fmq_config_node_kind(v));
  return NULL;
}

static int entry_unknown_key(struct loader *ld, const struct entry *e, const yaml_mark_t *mark,
                             const char *key) {
  const char *guess = fmq_config_suggest(key, e->keys, e->nkeys);
  char name[128], full[128];

  snprintf(name, sizeof name, "%s.%s", e->where, key);
  if (guess == NULL)
    return fmq_config_unknown_key(ld, mark, name, NULL);
  snprintf(full, sizeof full, "%s.%s", e->where, guess);
  return fmq_config_unknown_key(ld, mark, name, full);
}

/* The keys of e after its MAPPING_START: each known and given once. */
static int load_entry(struct loader *ld, struct entry *e, const struct list_kind *kind,
                      void *item) {
  for (;;) {
    yaml_event_t k, v;
    const char *key;
    size_t i;
    int rc;

    if (fmq_config_next_event(ld, &k) != 0)
      return -1;
    if (k.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&k);
      return 0;
    }
    if (k.type != YAML_SCALAR_EVENT) {
      fmq_config_load_fail(ld, &k.start_mark, "%s: keys must be strings, got %s", e->where,
                           fmq_config_node_kind(&k));
      yaml_event_delete(&k);
      return -1;
    }
    key = (const char *)k.data.scalar.value;
    for (i = 0; i < e->nkeys && strcmp(key, e->keys[i]) != 0; i++)
      ;
    if (i == e->nkeys)
      rc = entry_unknown_key(ld, e, &k.start_mark, key);
    else if (e->present & KEY_BIT(i))
      rc = fmq_config_load_fail(ld, &k.start_mark, "duplicate key '%s.%s' (first set on line %lu)",
                                e->where, key, (unsigned long)e->key[i].line + 1);
    else
      rc = fmq_config_next_event(ld, &v);
    if (rc != 0) {
      yaml_event_delete(&k);
      return -1;
    }
    e->present |= KEY_BIT(i);
    e->key[i] = k.start_mark;
    e->value[i] = v.start_mark;
    rc = kind->set(ld, e, i, &v, item);
    yaml_event_delete(&k);
    yaml_event_delete(&v);
    if (rc != 0)
      return -1;
  }
}

int fmq_config_load_items(struct loader *ld, const struct list_kind *kind, const yaml_event_t *ev,
                          void **items, size_t *n, void *arg) {
  if (fmq_config_is_null(ev))
    return 0;
  if (ev->type != YAML_SEQUENCE_START_EVENT)
    return fmq_config_load_fail(ld, &ev->start_mark, "%s: expected a sequence of %s, got %s",
                                kind->name, kind->what, fmq_config_node_kind(ev));
  for (;;) {
    struct entry e = {.keys = kind->keys, .nkeys = kind->nkeys};
    yaml_event_t start;
    void *grown;
    size_t i = *n;
    int rc;

    if (fmq_config_next_event(ld, &start) != 0)
      return -1;
    if (start.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&start);
      return 0;
    }
    e.start = start.start_mark;
    rc = start.type == YAML_MAPPING_START_EVENT
             ? 0
             : fmq_config_load_fail(ld, &e.start, "%s: expected a mapping with '%s', got %s",
                                    kind->name, kind->keys[0], fmq_config_node_kind(&start));
    yaml_event_delete(&start);
    if (rc != 0)
      return -1;
    if ((grown = realloc(*items, (*n + 1) * kind->size)) == NULL)
      return fmq_config_load_fail(ld, &e.start, "out of memory");
    *items = grown;
    memset((char *)grown + i * kind->size, 0, kind->size);
    *n = i + 1;
    snprintf(e.where, sizeof e.where, "%s[%zu]", kind->name, i);
    rc = load_entry(ld, &e, kind, (char *)grown + i * kind->size);
    if (rc == 0 && !(e.present & KEY_BIT(0)))
      rc = fmq_config_load_fail(ld, &e.start, "%s: entry has no '%s'", e.where, kind->keys[0]);
    if (rc == 0 && kind->finish != NULL)
      rc = kind->finish(ld, &e, grown, i, arg);
    for (size_t k = 0; k < kind->nkeys; k++)
      free(e.text[k]);
    if (rc != 0)
      return -1;
  }
}

/* ---- listen: from the file, --listen and --path ---- */

/* The rule for the items of listen.paths, which is no option itself. */
static const struct fmq_option path_rule = {.validate = fmq_config_check_path};

static int check_address(const char *address, char *msg, size_t msglen) {
  char host[256];
  uint16_t port;

  if (fmq_config_parse_hostport(address, host, sizeof host, &port) != 0)
    return fmq_config_fail(msg, msglen,
                           "invalid address '%s' (use HOST:PORT, e.g. 0.0.0.0:8080 or [::1]:8080)",
                           address);
  return 0;
}

static void listen_free(struct fmq_listen_config *l, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(l[i].address);
    for (size_t j = 0; j < l[i].npaths; j++)
      free(l[i].paths[j]);
    free(l[i].paths);
  }
  free(l);
}

int fmq_config_set_listen(struct fmq_config *c, const char *address, char *err, size_t errlen) {
  struct fmq_listen_config *l;
  char msg[FMQ_CONFIG_ERR_MAX];

  if (check_address(address, msg, sizeof msg) != 0)
    return fmq_config_fail(err, errlen, "--listen: %s", msg);
  if ((l = calloc(1, sizeof *l)) == NULL || (l->address = strdup(address)) == NULL)
    goto nomem;
  for (size_t i = 0; c->nlisten > 0 && i < c->listen[0].npaths; i++)
    if (fmq_config_strv_push(&l->paths, &l->npaths, c->listen[0].paths[i]) != 0)
      goto nomem;
  listen_free(c->listen, c->nlisten);
  c->listen = l;
  c->nlisten = 1;
  fmq_config_mark_set(c, fmq_config_option_find("listen"));
  return 0;

nomem:
  if (l != NULL)
    listen_free(l, 1);
  return fmq_config_fail(err, errlen, "--listen: out of memory");
}

int fmq_config_set_path(struct fmq_config *c, const char *path, char *err, size_t errlen) {
  char msg[FMQ_CONFIG_ERR_MAX];

  if (fmq_config_check_path(path, msg, sizeof msg) != 0)
    return fmq_config_fail(err, errlen, "--path: %s", msg);
  for (size_t i = 0; i < c->nlisten; i++) {
    struct fmq_listen_config *l = &c->listen[i];
    char *p = strdup(path);
    char **v = p != NULL ? malloc(sizeof *v) : NULL;
    if (v == NULL) {
      free(p);
      return fmq_config_fail(err, errlen, "--path: out of memory");
    }
    for (size_t j = 0; j < l->npaths; j++)
      free(l->paths[j]);
    free(l->paths);
    v[0] = p;
    l->paths = v;
    l->npaths = 1;
  }
  fmq_config_mark_set(c, fmq_config_option_find("listen"));
  return 0;
}

enum { LISTEN_ADDRESS, LISTEN_PATHS, LISTEN_TLS };
static const char *const listen_keys[] = {"address", "paths", "tls"};

static int listen_set(struct loader *ld, struct entry *e, size_t key, const yaml_event_t *v,
                      void *item) {
  struct fmq_listen_config *l = item;
  char msg[FMQ_CONFIG_ERR_MAX], name[96];
  struct fmq_strv paths = {NULL, 0};
  const char *s;
  int rc;

  switch (key) {
  case LISTEN_ADDRESS:
    if ((s = fmq_config_entry_scalar(ld, e, key, v)) == NULL)
      return -1;
    if (check_address(s, msg, sizeof msg) != 0)
      return fmq_config_load_fail(ld, &v->start_mark, "%s.address: %s", e->where, msg);
    if ((l->address = strdup(s)) == NULL)
      return fmq_config_load_fail(ld, &v->start_mark, "out of memory");
    return 0;
  case LISTEN_PATHS:
    snprintf(name, sizeof name, "%s.paths", e->where);
    rc = fmq_config_load_strings(ld, name, v, &path_rule, &paths);
    l->paths = paths.v;
    l->npaths = paths.n;
    if (rc == 0 && l->npaths == 0)
      rc = fmq_config_load_fail(ld, &v->start_mark, "%s: at least one path is required", name);
    return rc;
  default: /* LISTEN_TLS */
    return fmq_config_load_fail(ld, &e->key[key], "%s.tls: TLS is not supported yet", e->where);
  }
}

static int listen_finish(struct loader *ld, const struct entry *e, void *items, size_t i,
                         void *arg) {
  struct fmq_listen_config *l = (struct fmq_listen_config *)items + i;

  (void)arg;
  if (l->npaths == 0 && fmq_config_strv_push(&l->paths, &l->npaths, "/mqtt") != 0)
    return fmq_config_load_fail(ld, &e->start, "out of memory");
  return 0;
}

static const struct list_kind listen_kind = {
    .name = "listen",
    .what = "listeners",
    .keys = listen_keys,
    .nkeys = ARRAY_SIZE(listen_keys),
    .size = sizeof(struct fmq_listen_config),
    .set = listen_set,
    .finish = listen_finish,
};

int fmq_config_load_listen(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev) {
  void *items = NULL;
  size_t n = 0;
  int rc = fmq_config_load_items(ld, &listen_kind, ev, &items, &n, NULL);

  (void)o;
  if (rc == 0 && n == 0)
    rc = fmq_config_load_fail(ld, &ev->start_mark, "listen: at least one listener is required");
  if (rc != 0) {
    listen_free(items, n);
    return -1;
  }
  listen_free(ld->c->listen, ld->c->nlisten);
  ld->c->listen = items;
  ld->c->nlisten = n;
  return 0;
}

void fmq_config_release_listen(struct fmq_config *c) {
  listen_free(c->listen, c->nlisten);
  c->listen = NULL;
  c->nlisten = 0;
}

/* ---- auth.tokens ---- */

enum { TOKEN_TOKEN, TOKEN_USER, TOKEN_SUBSCRIBE, TOKEN_PUBLISH };
static const char *const token_keys[] = {"token", "user", "subscribe", "publish"};

static const char sha256_prefix[] = "sha256:";
/* The rule for the items of subscribe and publish. */
static const struct fmq_option acl_rule = {.validate = fmq_acl_check_pattern};

static void tokens_free(struct fmq_token_config *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(t[i].token);
    free(t[i].user);
    fmq_config_strv_free(&t[i].subscribe);
    fmq_config_strv_free(&t[i].publish);
  }
  free(t);
}

/* "sha256:" and 64 hex digits, stored lower-case; or the token itself.
 * Messages never quote a token. */
static int set_token(struct fmq_token_config *t, const char *s, char *msg, size_t msglen) {
  size_t n = sizeof sha256_prefix - 1;

  if (s[0] == '\0')
    return fmq_config_fail(msg, msglen, "must not be empty");
  if (strncmp(s, sha256_prefix, n) == 0 &&
      (strlen(s + n) != 64 || strspn(s + n, "0123456789abcdefABCDEF") != 64))
    return fmq_config_fail(msg, msglen,
                           "'%s' must be followed by exactly 64 hex digits (the token's SHA-256)",
                           sha256_prefix);
  if (fmq_config_set_string(&t->token, s, msg, msglen) != 0)
    return -1;
  if (strncmp(s, sha256_prefix, n) == 0)
    for (char *p = t->token + n; *p != '\0'; p++)
      if (*p >= 'A' && *p <= 'F')
        *p = (char)(*p - 'A' + 'a');
  return 0;
}

static int token_set(struct loader *ld, struct entry *e, size_t key, const yaml_event_t *v,
                     void *item) {
  struct fmq_token_config *t = item;
  char msg[FMQ_CONFIG_ERR_MAX], name[96];
  const char *s;

  snprintf(name, sizeof name, "%s.%s", e->where, e->keys[key]);
  if (key == TOKEN_SUBSCRIBE)
    return fmq_config_load_strings(ld, name, v, &acl_rule, &t->subscribe);
  if (key == TOKEN_PUBLISH)
    return fmq_config_load_strings(ld, name, v, &acl_rule, &t->publish);
  if ((s = fmq_config_entry_scalar(ld, e, key, v)) == NULL)
    return -1;
  if ((key == TOKEN_TOKEN ? set_token(t, s, msg, sizeof msg)
                          : fmq_config_set_string(&t->user, s, msg, sizeof msg)) != 0)
    return fmq_config_load_fail(ld, &v->start_mark, "%s: %s", name, msg);
  return 0;
}

static int token_finish(struct loader *ld, const struct entry *e, void *items, size_t i,
                        void *arg) {
  struct fmq_token_config *tokens = items, *t = &tokens[i];

  (void)arg;
  t->subscribe_any = !(e->present & KEY_BIT(TOKEN_SUBSCRIBE));
  t->publish_any = !(e->present & KEY_BIT(TOKEN_PUBLISH));
  if (t->user == NULL && (t->user = strdup("")) == NULL)
    return fmq_config_load_fail(ld, &e->start, "out of memory");
  for (size_t j = 0; j < i; j++)
    if (strcmp(tokens[j].token, t->token) == 0)
      return fmq_config_load_fail(ld, &e->value[TOKEN_TOKEN],
                                  "%s.token: the same token as auth.tokens[%zu]", e->where, j);
  return 0;
}

static const struct list_kind tokens_kind = {
    .name = "auth.tokens",
    .what = "entries",
    .keys = token_keys,
    .nkeys = ARRAY_SIZE(token_keys),
    .size = sizeof(struct fmq_token_config),
    .set = token_set,
    .finish = token_finish,
};

int fmq_config_load_tokens(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev) {
  void *items = NULL;
  size_t n = 0;

  (void)o;
  if (fmq_config_load_items(ld, &tokens_kind, ev, &items, &n, NULL) != 0) {
    tokens_free(items, n);
    return -1;
  }
  tokens_free(ld->c->auth.tokens, ld->c->auth.ntokens);
  ld->c->auth.tokens = items;
  ld->c->auth.ntokens = n;
  return 0;
}

void fmq_config_release_tokens(struct fmq_config *c) {
  tokens_free(c->auth.tokens, c->auth.ntokens);
  c->auth.tokens = NULL;
  c->auth.ntokens = 0;
}
