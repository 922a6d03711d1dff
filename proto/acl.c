#include "acl.h"

#include "error.h"
#include "subst.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Walks both filters level by level. pattern covers filter when each of its
 * levels is '+' or the same literal until it ends with '#' (which also
 * covers the parent level: "a/#" covers "a") or both end together; a '+' in
 * filter needs a '+' in pattern, and a '#' needs a '#'. */
int fmq_acl_covers(const char *pattern, const char *filter) {
  const char *p = pattern, *f = filter;

  /* filter's topics start with '$' exactly when its first level does; such
   * topics escape a leading wildcard. A filter starting with a wildcard
   * matches no '$' topic, so the rule never narrows it further. */
  if (f[0] == '$' && (p[0] == '+' || p[0] == '#'))
    return 0;
  for (;;) {
    size_t pl = strcspn(p, "/"), fl = strcspn(f, "/");

    if (pl == 1 && p[0] == '#')
      return 1;
    /* '#' also matches its parent level, except when that would be the
     * empty topic, which is no valid name: "+/#" matches every topic "#"
     * does, and "+/+/#" every topic "/#" does. */
    if (fl == 1 && f[0] == '#')
      return f - filter <= 1 && strcmp(p, "+/#") == 0;
    if (!(pl == 1 && p[0] == '+') && (pl != fl || memcmp(p, f, pl) != 0))
      return 0;
    p += pl;
    f += fl;
    if (*f == '\0')
      return *p == '\0' || strcmp(p, "/#") == 0;
    if (*p == '\0')
      return 0;
    p++;
    f++;
  }
}

/* A value fills exactly one level and adds no wildcard. */
static int acl_value_ok(const char *value) {
  return fmq_topic_check_level(value, strlen(value));
}

/* pattern with "%u" and "%c" replaced by user and client_id; see
 * fmq_subst. */
static char *acl_subst(const char *pattern, const char *user, const char *client_id, size_t *len,
                       int *nomem) {
  const struct fmq_subst_var vars[] = {{'u', user}, {'c', client_id}};
  return fmq_subst(pattern, vars, 2, acl_value_ok, len, nomem);
}

int fmq_acl_check_pattern(const char *pattern, char *msg, size_t msglen) {
  size_t len;
  int nomem, rc = -1;
  char *f = acl_subst(pattern, "x", "x", &len, &nomem);

  if (f == NULL)
    snprintf(msg, msglen, "out of memory");
  else if (fmq_topic_check_filter(f, len) != 0)
    snprintf(msg, msglen, "'%s' is not a valid MQTT topic filter", pattern);
  else if (fmq_topic_is_shared(f, len))
    snprintf(msg, msglen, "'%s' is a shared subscription, which an ACL cannot grant", pattern);
  else
    rc = 0;
  free(f);
  return rc;
}

/* A result that is a shared subscription is refused as check_pattern
 * refuses one: "$%u/g/#" must not grant "$share/g/#" to the user "share". */
char *fmq_acl_expand(const char *pattern, const char *user, const char *client_id, int *nomem) {
  size_t len;
  char *f = acl_subst(pattern, user, client_id, &len, nomem);

  if (f != NULL && (fmq_topic_check_filter(f, len) != 0 || fmq_topic_is_shared(f, len))) {
    free(f);
    f = NULL;
  }
  return f;
}

int fmq_acl_list_init(struct fmq_acl_list *l, const char *const *patterns, size_t n, int any,
                      const char *user, const char *client_id) {
  l->patterns = NULL;
  l->n = 0;
  l->any = any;
  if (n > 0 && (l->patterns = malloc(n * sizeof(*l->patterns))) == NULL) {
    l->any = 0;
    return FMQ_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    int nomem;
    char *p = fmq_acl_expand(patterns[i], user, client_id, &nomem);
    if (p != NULL) {
      l->patterns[l->n++] = p;
    } else if (nomem) {
      fmq_acl_list_close(l);
      return FMQ_ENOMEM;
    }
  }
  return 0;
}

void fmq_acl_list_close(struct fmq_acl_list *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->patterns[i]);
  free(l->patterns);
  l->patterns = NULL;
  l->n = 0;
  l->any = 0;
}

void fmq_acl_close(struct fmq_acl *acl) {
  fmq_acl_list_close(&acl->subscribe);
  fmq_acl_list_close(&acl->publish);
}

int fmq_acl_allows(const struct fmq_acl_list *l, const char *filter) {
  if (l->any)
    return 1;
  for (size_t i = 0; i < l->n; i++) {
    if (fmq_acl_covers(l->patterns[i], filter))
      return 1;
  }
  return 0;
}
