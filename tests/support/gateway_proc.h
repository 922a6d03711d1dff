#ifndef FMQT_GATEWAY_PROC_H
#define FMQT_GATEWAY_PROC_H

/* Runs the real ferrymq binary (path in $FMQ_TEST_BIN) for a test: on
 * 127.0.0.1 with an OS-chosen port, its stderr in a temporary log file.
 * Call from the test's main thread only. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fmqt_gateway {
  pid_t pid;          /* 0 once the process was reaped */
  uint16_t port;
  int status;         /* the exit status once reaped (see fmqt_gateway_wait) */
  char log_path[256];
};

/* Starts the gateway with "--listen 127.0.0.1:0" followed by args
 * (NULL-terminated, may be NULL) and with env entries "NAME=value" added to
 * the environment (NULL-terminated, may be NULL). Waits (10 s at most) for
 * "listening on 127.0.0.1:PORT" in its log; fails the test otherwise. */
void fmqt_gateway_start(struct fmqt_gateway *gw, const char *const *args,
                        const char *const *env);
/* Sends signal sig to the running gateway. */
void fmqt_gateway_signal(struct fmqt_gateway *gw, int sig);
/* Waits up to timeout_ms for the gateway to exit. Returns its exit status,
 * 128+N for death by signal N, or -1 when it still runs (it is left running).
 * Once reaped, further calls return the same status at once. */
int fmqt_gateway_wait(struct fmqt_gateway *gw, int timeout_ms);
/* Sends SIGTERM (unless it already exited) and waits up to timeout_ms.
 * Returns the exit status, 128+N for death by signal N, or -1 when it had to
 * be killed with SIGKILL. The log file is removed; it is printed to stderr
 * first when the status is not 0 (or kept when $FMQT_KEEP_LOGS is set). */
int fmqt_gateway_stop(struct fmqt_gateway *gw, int timeout_ms);
/* 1 while the process runs. */
int fmqt_gateway_alive(struct fmqt_gateway *gw);
/* 1 when the log contains needle. */
int fmqt_gateway_log_contains(const struct fmqt_gateway *gw, const char *needle);
/* The number of file descriptors the gateway holds open (from /proc). */
int fmqt_gateway_fd_count(const struct fmqt_gateway *gw);

/* Runs the binary once with exactly args (no --listen) and env added, output
 * (stdout and stderr) in out (NUL-terminated, truncated to cap). Returns the
 * exit status, 128+N for death by signal N, or -1 when it ran longer than
 * timeout_ms (it is killed). */
int fmqt_run_binary(const char *const *args, const char *const *env, char *out,
                    size_t cap, int timeout_ms);

/* A cmocka fixture: one gateway started with args and env. Pass a struct as
 * the test's initial state (cmocka_unit_test_prestate_setup_teardown), or
 * set *state to it in a group setup, and use these as setup and teardown.
 * The teardown asserts the gateway exits 0 on SIGTERM. */
struct fmqt_fixture {
  const char *const *args;
  const char *const *env;
  struct fmqt_gateway gw;
};
int fmqt_fixture_setup(void **state);
int fmqt_fixture_teardown(void **state);
/* The gateway of the fixture in *state. */
struct fmqt_gateway *fmqt_fixture_gateway(void **state);
/* Its port. */
uint16_t fmqt_fixture_port(void **state);
/* A WebSocket connection to it on /mqtt (see fmqt_ws_connect). */
int fmqt_fixture_connect(void **state);

#endif
