/* Loads arbitrary bytes as a configuration file: every input must either
 * load (and pass or fail the cross-key checks) or fail with a
 * "FILE:LINE: message" error, and never leak or crash. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[64];
  if (path[0] == '\0')
    snprintf(path, sizeof(path), "/tmp/fuzz_config.%d.yaml", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    abort();
  fwrite(data, 1, size, f);
  fclose(f);

  struct fmq_config c;
  char err[FMQ_CONFIG_ERR_MAX];
  if (fmq_config_init(&c) != 0)
    abort();
  if (fmq_config_load_file(&c, path, err, sizeof(err)) != 0) {
    size_t plen = strlen(path);
    if (strncmp(err, path, plen) != 0 || err[plen] != ':')
      abort();
  } else if (fmq_config_check(&c, err, sizeof(err)) != 0 &&
             strncmp(err, "configuration: ", 15) != 0) {
    abort();
  }
  fmq_config_close(&c);
  return 0;
}
