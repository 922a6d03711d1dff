#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fmq_snapshot *fmq_snapshot_new(struct fmq_config *config, char *err, size_t errlen) {
  struct fmq_snapshot *s = malloc(sizeof(*s));
  if (s == NULL) {
    snprintf(err, errlen, "out of memory");
    fmq_config_close(config);
    return NULL;
  }
  atomic_init(&s->refs, 1);
  s->config = *config;
  memset(config, 0, sizeof(*config));
  /* auth borrows the configuration: prepared only once it lies where it stays. */
  if (fmq_auth_init(&s->auth, &s->config, err, errlen) != 0) {
    fmq_config_close(&s->config);
    free(s);
    return NULL;
  }
  return s;
}

struct fmq_snapshot *fmq_snapshot_ref(struct fmq_snapshot *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  return s;
}

void fmq_snapshot_unref(struct fmq_snapshot *s) {
  if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
    return;
  fmq_auth_close(&s->auth);
  fmq_config_close(&s->config);
  free(s);
}
