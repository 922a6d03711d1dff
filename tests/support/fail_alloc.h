#ifndef FMQT_FAIL_ALLOC_H
#define FMQT_FAIL_ALLOC_H

/* The interface of the LD_PRELOAD library fail_alloc.c (target
 * fmqt_fail_alloc, never linked into anything): the environment variables
 * it reads and the lines it writes to stderr, once when it is loaded and
 * once for each failure it causes. */

#define FMQT_FAIL_CALLOC_SIZE_ENV "FMQT_FAIL_CALLOC_SIZE"
#define FMQT_FAIL_CALLOC_FLAG_ENV "FMQT_FAIL_CALLOC_FLAG"
#define FMQT_FAIL_CALLOC_LOADED "fmqt_fail_alloc: loaded\n"
#define FMQT_FAIL_CALLOC_MARK "fmqt_fail_alloc: calloc failed on purpose\n"

#endif
