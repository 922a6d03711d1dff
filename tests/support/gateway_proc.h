#ifndef FMQT_GATEWAY_PROC_H
#define FMQT_GATEWAY_PROC_H

/* Runs the real ferrymq binary (path in $FMQ_TEST_BIN) for a test: on
 * 127.0.0.1 with an OS-chosen port, its stderr in a temporary log file.
 * Call from the test's main thread only. */

#include "broker_proc.h"

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
/* Occurrences of needle in the log. */
size_t fmqt_gateway_log_count(const struct fmqt_gateway *gw, const char *needle);
/* Waits up to timeout_ms until the log contains needle; returns 1 when it
 * does, 0 otherwise. */
int fmqt_gateway_wait_log(const struct fmqt_gateway *gw, const char *needle, int timeout_ms);
/* Waits up to timeout_ms until needle occurs at least count times; returns
 * the number of occurrences seen last. */
size_t fmqt_gateway_wait_log_count(const struct fmqt_gateway *gw, const char *needle,
                                   size_t count, int timeout_ms);
/* Prints the log to stderr (for failure reports). */
void fmqt_gateway_print_log(const struct fmqt_gateway *gw, const char *why);
/* The number of file descriptors the gateway holds open (from /proc). */
int fmqt_gateway_fd_count(const struct fmqt_gateway *gw);

/* Runs the binary once with exactly args (no --listen) and env added, output
 * (stdout and stderr) in out (NUL-terminated, truncated to cap). Returns the
 * exit status, 128+N for death by signal N, or -1 when it ran longer than
 * timeout_ms (it is killed). */
int fmqt_run_binary(const char *const *args, const char *const *env, char *out,
                    size_t cap, int timeout_ms);

/* A cmocka fixture: one gateway started with args and env, bridged to its
 * own Mosquitto. Pass a struct as the test's initial state
 * (cmocka_unit_test_prestate_setup_teardown), or set *state to it in a
 * group setup, and use these as setup and teardown.
 *
 * The setup starts the broker (broker_conf: extra mosquitto.conf lines, or
 * NULL), then the gateway with "--broker tcp://127.0.0.1:PORT" before args
 * and FERRYMQ_BROKER_CLIENT_ID=<client_id> before env (so env may override
 * it; client_id then follows env), and returns once the gateway logged
 * "broker connected: tcp://127.0.0.1:PORT": clients that connect then see
 * the broker up. With no_broker set, no broker is started and --broker
 * names a free port nobody listens on: the broker is down from the start.
 * The teardown closes the sockets a (failed) test left open, asserts the
 * gateway exits 0 on SIGTERM, then stops the broker and removes its files. */
struct fmqt_fixture {
  const char *const *args;
  const char *const *env;
  int no_broker;
  const char *broker_conf;
  /* Set by the setup: */
  struct fmqt_broker broker;
  char client_id[64];          /* the gateway's MQTT client id */
  char url[64];                /* what --broker said */
  struct fmqt_gateway gw;
  /* Private: the composed command line and environment. */
  const char *argv_[40];
  const char *env_[40];
  char client_id_env_[96];
};
int fmqt_fixture_setup(void **state);
int fmqt_fixture_teardown(void **state);
/* The gateway of the fixture in *state. */
struct fmqt_gateway *fmqt_fixture_gateway(void **state);
/* Its port. */
uint16_t fmqt_fixture_port(void **state);
/* A WebSocket connection to it on /mqtt (see fmqt_ws_connect). */
int fmqt_fixture_connect(void **state);
/* The broker of the fixture in *state. */
struct fmqt_broker *fmqt_fixture_broker(void **state);
/* The fixture itself. */
struct fmqt_fixture *fmqt_fixture_of(void **state);
/* Starts the fixture's gateway (again) against its broker; the setup calls
 * it once the broker runs. With wait_connected, returns once the gateway
 * logged "broker connected: URL". */
void fmqt_fixture_start_gateway(struct fmqt_fixture *fx, int wait_connected);

/* The gateway's resident set size in KiB (VmRSS in /proc/PID/status).
 * Meaningless under ASan (shadow memory, quarantine): tests that bound it
 * skip the bound when FMQT_SANITIZED is defined. */
long fmqt_gateway_rss_kib(const struct fmqt_gateway *gw);

/* The CPU time (user + system, all threads) the gateway has used so far,
 * in milliseconds (from /proc/PID/stat); for figures a test prints. */
long fmqt_gateway_cpu_ms(const struct fmqt_gateway *gw);

/* Waits up to timeout_ms until the gateway holds want file descriptors
 * (e.g. it noticed a client went); returns the count seen last. */
int fmqt_gateway_wait_fd_count(const struct fmqt_gateway *gw, int want, int timeout_ms);

#endif
