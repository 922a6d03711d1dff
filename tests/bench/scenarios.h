#ifndef FMQB_SCENARIOS_H
#define FMQB_SCENARIOS_H

/* One function per scenario (one file each): runs it with the options
 * (their defaults already applied), prints the human-readable lines and
 * adds every figure to j (an open object). Returns 0, or -1 when the run
 * itself failed (could not connect, ...; j then has "failure"). Poor
 * figures are not a failure. */

#include "opts.h"
#include "report.h"

int fmqb_fanout(const struct fmqb_opts *o, struct fmqb_json *j);   /* fanout and slow */
int fmqb_streams(const struct fmqb_opts *o, struct fmqb_json *j);
int fmqb_fanin(const struct fmqb_opts *o, struct fmqb_json *j);
int fmqb_idle(const struct fmqb_opts *o, struct fmqb_json *j);
int fmqb_churn(const struct fmqb_opts *o, struct fmqb_json *j);
int fmqb_rtt(const struct fmqb_opts *o, struct fmqb_json *j);
int fmqb_floor_ws(const struct fmqb_opts *o, struct fmqb_json *j);
int fmqb_floor_mqtt(const struct fmqb_opts *o, struct fmqb_json *j);

/* Records a failure: a warning and "failure" in j. Returns -1. */
int fmqb_fail(struct fmqb_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
