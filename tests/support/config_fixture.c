#include "config_fixture.h"

#include "proc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

int fmqt_config_fixture_setup(void **state) {
  struct fmqt_config_fixture *cf = *state;
  fmqt_make_temp_dir(cf->dir, sizeof cf->dir, "config");
  snprintf(cf->path, sizeof cf->path, "%s/ferrymq.yaml", cf->dir);
  assert_non_null(cf->yaml);
  fmqt_write_file(cf->path, cf->yaml, strlen(cf->yaml));
  size_t argc = 0;
  cf->args_[argc++] = "-c";
  cf->args_[argc++] = cf->path;
  for (size_t i = 0; cf->args != NULL && cf->args[i] != NULL; i++) {
    assert_true(argc + 1 < sizeof cf->args_ / sizeof cf->args_[0]);
    cf->args_[argc++] = cf->args[i];
  }
  cf->args_[argc] = NULL;
  cf->fx.args = cf->args_;
  return fmqt_fixture_setup(state);
}

int fmqt_config_fixture_teardown(void **state) {
  struct fmqt_config_fixture *cf = *state;
  /* First: the gateway read the file at start, and a failed teardown
   * assertion would skip the removal. */
  fmqt_remove_temp_dir(cf->dir);
  cf->dir[0] = '\0';
  return fmqt_fixture_teardown(state);
}
