/* An LD_PRELOAD library for integration tests (61_accept_oom): makes one
 * allocation fail on demand in the real gateway.
 *
 *   FMQT_FAIL_CALLOC_SIZE=N     the size to fail (a decimal byte count)
 *   FMQT_FAIL_CALLOC_FLAG=PATH  a file: failing only while it exists
 *
 * (names and marks in fail_alloc.h). While PATH exists, calloc(1, N)
 * called on the process's main thread (the gateway's event loop) returns
 * NULL with errno ENOMEM and writes FMQT_FAIL_CALLOC_MARK to stderr (the
 * gateway's log), so a test can count the failures it caused. Every other
 * call goes to the next calloc (glibc's). Paho's threads are never failed:
 * the test is about the loop, and a failure there would be one the test did
 * not mean.
 *
 * The bootstrap: dlsym may itself call calloc (older glibc allocates its
 * per-thread error state there) before the real calloc is known. Such
 * calls get zeroed memory from a small static buffer that is never reused;
 * free is wrapped too, so that a block from the buffer is never handed to
 * glibc. Both functions are resolved in a constructor, before the program
 * starts any thread, or by an earlier call. */

#include "fail_alloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static void *(*real_calloc)(size_t, size_t);
static void (*real_free)(void *);
static int resolving;
static size_t fail_size;          /* 0: never fail */
static const char *fail_flag;

static alignas(max_align_t) unsigned char early[4096];
static size_t early_used;

static int is_early(const void *p) {
  uintptr_t a = (uintptr_t)p, lo = (uintptr_t)early;
  return a >= lo && a < lo + sizeof early;
}

/* Zeroed memory for calls made while dlsym runs; NULL when the buffer is
 * exhausted (it is never reused). */
static void *early_calloc(size_t n, size_t size) {
  size_t room = sizeof early - early_used;
  if (size != 0 && n > room / size) {
    errno = ENOMEM;
    return NULL;
  }
  size_t bytes = n * size;
  bytes = (bytes + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
  if (bytes > room) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = early + early_used;
  early_used += bytes;
  return p;
}

static size_t parse_size(const char *s) {
  size_t v = 0;
  for (; s != NULL && *s >= '0' && *s <= '9'; s++)
    v = v * 10 + (size_t)(*s - '0');
  return v;
}

/* 1 once the real functions are known; 0 while dlsym runs. */
static int resolve(void) {
  if (real_calloc != NULL)
    return 1;
  if (resolving)
    return 0;
  resolving = 1;
  real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  void *(*found)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  if (found == NULL || real_free == NULL)
    abort();
  fail_size = parse_size(getenv(FMQT_FAIL_CALLOC_SIZE_ENV));
  fail_flag = getenv(FMQT_FAIL_CALLOC_FLAG_ENV);
  real_calloc = found;
  resolving = 0;
  return 1;
}

static void say(const char *line, size_t len) {
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}

__attribute__((constructor)) static void fail_alloc_init(void) {
  resolve();
  say(FMQT_FAIL_CALLOC_LOADED, sizeof FMQT_FAIL_CALLOC_LOADED - 1);
}

/* access() sets errno when the file is missing: not the caller's business. */
static int flag_exists(void) {
  int saved = errno;
  int exists = access(fail_flag, F_OK) == 0;
  errno = saved;
  return exists;
}

void *calloc(size_t n, size_t size) {
  if (!resolve())
    return early_calloc(n, size);
  if (n == 1 && size == fail_size && fail_flag != NULL && gettid() == getpid() &&
      flag_exists()) {
    say(FMQT_FAIL_CALLOC_MARK, sizeof FMQT_FAIL_CALLOC_MARK - 1);
    errno = ENOMEM;
    return NULL;
  }
  return real_calloc(n, size);
}

void free(void *p) {
  if (p == NULL || is_early(p))
    return;
  /* A block freed while dlsym runs is leaked: the real free is not known
   * yet. */
  if (resolve())
    real_free(p);
}
