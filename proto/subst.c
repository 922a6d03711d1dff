#include "subst.h"

#include <stdlib.h>
#include <string.h>

/* The variable "%X" at s names, or NULL. */
static const struct fmq_subst_var *subst_var(const char *s, const struct fmq_subst_var *vars,
                                             size_t n) {
  if (s[0] != '%' || s[1] == '\0')
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (vars[i].letter == s[1])
      return &vars[i];
  return NULL;
}

char *fmq_subst(const char *pattern, const struct fmq_subst_var *vars, size_t n,
                fmq_subst_check_fn check, size_t *len, int *nomem) {
  const struct fmq_subst_var *v;
  const char *s;
  char *out, *o;
  size_t total = 0;

  *nomem = 0;
  for (s = pattern; *s != '\0'; s++) {
    if ((v = subst_var(s, vars, n)) == NULL) {
      total++;
      continue;
    }
    if (v->value == NULL || (check != NULL && check(v->value) != 0))
      return NULL;
    total += strlen(v->value);
    s++;
  }
  if ((out = malloc(total + 1)) == NULL) {
    *nomem = 1;
    return NULL;
  }
  for (s = pattern, o = out; *s != '\0'; s++) {
    if ((v = subst_var(s, vars, n)) == NULL) {
      *o++ = *s;
      continue;
    }
    o = stpcpy(o, v->value);
    s++;
  }
  *o = '\0';
  *len = total;
  return out;
}
