#ifndef FMQT_CONFIG_FIXTURE_H
#define FMQT_CONFIG_FIXTURE_H

/* A fixture (gateway_proc.h) whose gateway reads a configuration file: the
 * setup writes yaml to ferrymq.yaml in a new temporary directory and starts
 * broker and gateway as fmqt_fixture_setup does, with "-c FILE" followed by
 * args. The fx member comes first, so the state is also a
 * struct fmqt_fixture and every fmqt_fixture_* function takes it as is.
 * The teardown removes the directory, then is fmqt_fixture_teardown. */

#include "gateway_proc.h"

struct fmqt_config_fixture {
  struct fmqt_fixture fx;     /* fx.env, fx.broker_conf, fx.no_broker as usual */
  const char *yaml;           /* the file's text (may be set in a group setup) */
  const char *const *args;    /* after -c FILE; NULL-terminated, may be NULL */
  /* Set by the setup: */
  char dir[256];
  char path[320];
  /* Private. */
  const char *args_[20];
};
int fmqt_config_fixture_setup(void **state);
int fmqt_config_fixture_teardown(void **state);

#endif
