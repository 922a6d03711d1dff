#ifndef FMQT_PROC_H
#define FMQT_PROC_H

/* Child processes for integration tests (the gateway, mosquitto and its
 * command-line clients). Every child started here is registered: it gets
 * SIGKILL when the test program dies (PR_SET_PDEATHSIG) and an atexit
 * handler kills whatever is still registered when the program exits, so a
 * failed or crashed test leaves no process behind. Main thread only. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Forks and execs argv[0] (a path, or a name looked up in PATH) with argv,
 * with env entries "NAME=value" added to the environment (NULL-terminated,
 * may be NULL). stdout and stderr go to out_fd (-1: /dev/null). With
 * stdin_fd >= 0 the child's stdin is a pipe and *stdin_fd its write end
 * (close it to send EOF); otherwise stdin is /dev/null. Fails the test when
 * fork fails. The child is registered. */
pid_t fmqt_spawn(const char *const *argv, const char *const *env, int out_fd, int *stdin_fd);
/* Waits up to timeout_ms for pid (a registered child); returns its exit
 * status, 128+N for death by signal N, or -1 when it still runs. A reaped
 * child is unregistered. */
int fmqt_proc_wait(pid_t pid, int timeout_ms);
/* Sends sig, then waits up to timeout_ms; if it still runs, SIGKILL and
 * wait. Returns the status as fmqt_proc_wait does, or -1 when it needed
 * SIGKILL. A stopped process (SIGSTOP) is continued after sig. */
int fmqt_proc_stop(pid_t pid, int sig, int timeout_ms);
/* Kills every registered child at once (SIGKILL) and reaps it. */
void fmqt_proc_kill_all(void);

/* Reads the whole file at path (malloc'd, NUL-terminated; the caller frees);
 * *len gets its length when len is not NULL. A missing file reads as "". */
char *fmqt_read_file(const char *path, size_t *len);
/* Writes n bytes to path (created or truncated, mode 0644). */
void fmqt_write_file(const char *path, const void *data, size_t n);
/* Creates a directory $TMPDIR/fmqt-NAME-XXXXXX (mode 0755) into out. */
void fmqt_make_temp_dir(char *out, size_t cap, const char *name);
/* Removes a directory made by fmqt_make_temp_dir and the files in it
 * (one level), unless $FMQT_KEEP_LOGS is set. */
void fmqt_remove_temp_dir(const char *dir);
/* Number of non-overlapping occurrences of needle in hay. */
size_t fmqt_count(const char *hay, const char *needle);
/* Sleeps ms milliseconds (for pacing only, never to wait for a condition). */
void fmqt_sleep_ms(int ms);
/* A free TCP port on 127.0.0.1 (bound to port 0 and released again). */
uint16_t fmqt_free_port(void);
/* Raises RLIMIT_NOFILE's soft limit to want (or to the hard limit when that
 * is lower); returns the new soft limit. */
long fmqt_raise_nofile(long want);

#endif
