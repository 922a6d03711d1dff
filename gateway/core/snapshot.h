#ifndef FMQ_SNAPSHOT_H
#define FMQ_SNAPSHOT_H

#include "auth.h"
#include "config.h"

#include <stdatomic.h>

/* One reading of the configuration and what is prepared from it (token
 * digests, the JWT verifier and its key), immutable and shared by
 * reference. The server holds the current one, the broker session the one
 * it was built from, and each connection the one it was admitted under, so
 * that a reload is a swap between loop turns: new connections take the new
 * snapshot while those already open keep theirs, and the last reference
 * frees it. References may be taken and dropped on any thread. */
struct fmq_snapshot {
  atomic_uint refs;
  struct fmq_config config;
  struct fmq_auth auth;
};

/* Takes over *config (moved in: the caller no longer closes it) and
 * prepares auth from it. Returns a snapshot holding one reference, or NULL
 * with err ("auth.jwt.public_key_file: ...", "out of memory"); *config is
 * closed either way. */
struct fmq_snapshot *fmq_snapshot_new(struct fmq_config *config, char *err, size_t errlen);
/* Another reference to s; returns s. */
struct fmq_snapshot *fmq_snapshot_ref(struct fmq_snapshot *s);
/* Drops a reference; the last one frees s. NULL is ignored. */
void fmq_snapshot_unref(struct fmq_snapshot *s);

#endif
