#ifndef FMQB_PROCSTAT_H
#define FMQB_PROCSTAT_H

/* Another process's CPU time and memory, from /proc: what the bench says
 * about the gateway (--gateway-pid) and the broker (--broker-pid). */

#include <stdint.h>

struct fmqb_proc_sample {
  int ok;                   /* 0: the process could not be read (gone, no pid) */
  double cpu_s;             /* utime + stime of every thread, from /proc/PID/stat
                             * (clock ticks: 10 ms resolution) */
  uint64_t rss_kb;          /* VmRSS */
  uint64_t hwm_kb;          /* VmHWM: the peak resident set so far */
};

/* Samples pid (0: none; then out->ok is 0). Returns out->ok. */
int fmqb_proc_sample(int pid, struct fmqb_proc_sample *out);

#endif
