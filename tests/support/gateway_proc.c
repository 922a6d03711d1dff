#include "gateway_proc.h"

#include "proc.h"
#include "wsclient.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_ARGS 32
#define START_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 15000
#define POLL_MS 10
#define LISTENING "listening on 127.0.0.1:"
#define CLIENT_ID_ENV "FERRYMQ_BROKER_CLIENT_ID="

static const char *binary_path(void) {
  const char *bin = getenv("FMQ_TEST_BIN");
  if (bin == NULL || *bin == '\0') {
    fail_msg("FMQ_TEST_BIN is not set (run the test through ctest)");
  }
  return bin;
}

static int make_log(char path[256]) {
  const char *dir = getenv("TMPDIR");
  snprintf(path, 256, "%s/fmqt-gateway-XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkostemp(path, O_CLOEXEC);
  if (fd < 0) {
    fail_msg("mkstemp %s: %s", path, strerror(errno));
  }
  return fd;
}

void fmqt_gateway_print_log(const struct fmqt_gateway *gw, const char *why) {
  char *log = fmqt_read_file(gw->log_path, NULL);
  fprintf(stderr, "--- ferrymq log (%s) ---\n%s--- end of log ---\n", why, log);
  free(log);
}

/* The port after LISTENING in the log, or 0. */
static uint16_t find_port(const char *log) {
  const char *p = strstr(log, LISTENING);
  if (p == NULL) {
    return 0;
  }
  p += strlen(LISTENING);
  unsigned long port = 0;
  while (*p >= '0' && *p <= '9' && port <= 65535) {
    port = port * 10 + (unsigned long)(*p++ - '0');
  }
  return port <= 65535 ? (uint16_t)port : 0;
}

void fmqt_gateway_start(struct fmqt_gateway *gw, const char *const *args,
                        const char *const *env) {
  const char *argv[MAX_ARGS + 4] = {binary_path(), "--listen", "127.0.0.1:0"};
  size_t argc = 3;
  for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
    assert_true(i < MAX_ARGS);
    argv[argc++] = args[i];
  }
  memset(gw, 0, sizeof *gw);
  int log_fd = make_log(gw->log_path);
  gw->pid = fmqt_spawn(argv, env, log_fd, NULL);
  close(log_fd);

  int64_t deadline = fmqt_now_ms() + START_TIMEOUT_MS;
  for (;;) {
    char *log = fmqt_read_file(gw->log_path, NULL);
    gw->port = find_port(log);
    free(log);
    if (gw->port != 0) {
      return;
    }
    int status = fmqt_proc_wait(gw->pid, 0);
    if (status >= 0) {
      gw->pid = 0;
      gw->status = status;
      fmqt_gateway_print_log(gw, "exited during start");
      fail_msg("ferrymq exited with status %d before listening", status);
    }
    if (fmqt_now_ms() >= deadline) {
      fmqt_proc_stop(gw->pid, SIGKILL, START_TIMEOUT_MS);
      gw->pid = 0;
      gw->status = -1;
      fmqt_gateway_print_log(gw, "start timed out");
      fail_msg("ferrymq did not log \"" LISTENING "PORT\" within %d ms", START_TIMEOUT_MS);
    }
    fmqt_sleep_ms(POLL_MS);
  }
}

void fmqt_gateway_signal(struct fmqt_gateway *gw, int sig) {
  assert_true(gw->pid > 0);
  assert_int_equal(kill(gw->pid, sig), 0);
}

int fmqt_gateway_wait(struct fmqt_gateway *gw, int timeout_ms) {
  if (gw->pid <= 0) {
    return gw->status;
  }
  int status = fmqt_proc_wait(gw->pid, timeout_ms);
  if (status >= 0) {
    gw->pid = 0;
    gw->status = status;
  }
  return status;
}

int fmqt_gateway_stop(struct fmqt_gateway *gw, int timeout_ms) {
  if (gw->pid > 0) {
    kill(gw->pid, SIGTERM);
    kill(gw->pid, SIGCONT);   /* a test may have stopped it */
    if (fmqt_gateway_wait(gw, timeout_ms) < 0) {
      fmqt_proc_stop(gw->pid, SIGKILL, STOP_TIMEOUT_MS);
      gw->pid = 0;
      gw->status = -1;
    }
  }
  if (gw->log_path[0] != '\0') {
    if (gw->status != 0) {
      char why[64];
      snprintf(why, sizeof why, "exit status %d", gw->status);
      fmqt_gateway_print_log(gw, why);
    }
    if (getenv("FMQT_KEEP_LOGS") != NULL) {
      fprintf(stderr, "ferrymq log kept: %s\n", gw->log_path);
    } else {
      unlink(gw->log_path);
    }
    gw->log_path[0] = '\0';
  }
  return gw->status;
}

int fmqt_gateway_alive(struct fmqt_gateway *gw) {
  return gw->pid > 0 && fmqt_gateway_wait(gw, 0) < 0;
}

size_t fmqt_gateway_log_count(const struct fmqt_gateway *gw, const char *needle) {
  char *log = fmqt_read_file(gw->log_path, NULL);
  size_t count = fmqt_count(log, needle);
  free(log);
  return count;
}

int fmqt_gateway_log_contains(const struct fmqt_gateway *gw, const char *needle) {
  return fmqt_gateway_log_count(gw, needle) > 0;
}

size_t fmqt_gateway_wait_log_count(const struct fmqt_gateway *gw, const char *needle,
                                   size_t count, int timeout_ms) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (;;) {
    size_t seen = fmqt_gateway_log_count(gw, needle);
    if (seen >= count || fmqt_now_ms() >= deadline) {
      return seen;
    }
    fmqt_sleep_ms(POLL_MS);
  }
}

int fmqt_gateway_wait_log(const struct fmqt_gateway *gw, const char *needle, int timeout_ms) {
  return fmqt_gateway_wait_log_count(gw, needle, 1, timeout_ms) >= 1;
}

int fmqt_gateway_fd_count(const struct fmqt_gateway *gw) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)gw->pid);
  DIR *dir = opendir(path);
  if (dir == NULL) {
    fail_msg("opendir %s: %s", path, strerror(errno));
  }
  int count = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] != '.') {
      count++;
    }
  }
  closedir(dir);
  return count;
}

int fmqt_run_binary(const char *const *args, const char *const *env, char *out,
                    size_t cap, int timeout_ms) {
  const char *argv[MAX_ARGS + 2] = {binary_path()};
  size_t argc = 1;
  for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
    assert_true(i < MAX_ARGS);
    argv[argc++] = args[i];
  }
  char log_path[256];
  int log_fd = make_log(log_path);
  pid_t pid = fmqt_spawn(argv, env, log_fd, NULL);
  close(log_fd);
  int status = fmqt_proc_wait(pid, timeout_ms);
  if (status < 0) {
    fmqt_proc_stop(pid, SIGKILL, STOP_TIMEOUT_MS);
  }
  size_t len;
  char *text = fmqt_read_file(log_path, &len);
  size_t copy = len < cap ? len : cap - 1;
  memcpy(out, text, copy);
  out[copy] = '\0';
  free(text);
  unlink(log_path);
  return status;
}

/* --- the fixture --- */

void fmqt_fixture_start_gateway(struct fmqt_fixture *fx, int wait_connected) {
  size_t argc = 0, envc = 0;
  fx->argv_[argc++] = "--broker";
  fx->argv_[argc++] = fx->url;
  for (size_t i = 0; fx->args != NULL && fx->args[i] != NULL; i++) {
    assert_true(argc + 1 < sizeof fx->argv_ / sizeof fx->argv_[0]);
    fx->argv_[argc++] = fx->args[i];
  }
  fx->argv_[argc] = NULL;
  fx->env_[envc++] = fx->client_id_env_;
  for (size_t i = 0; fx->env != NULL && fx->env[i] != NULL; i++) {
    assert_true(envc + 1 < sizeof fx->env_ / sizeof fx->env_[0]);
    fx->env_[envc++] = fx->env[i];
  }
  fx->env_[envc] = NULL;
  fmqt_gateway_start(&fx->gw, fx->argv_, fx->env_);
  /* Both connections: the subscribing one and the publishing one. */
  static const char *const connected[] = {"broker connected: %s",
                                          "broker connected for publishing: %s"};
  for (size_t i = 0; wait_connected && i < sizeof connected / sizeof connected[0]; i++) {
    char needle[128];
    snprintf(needle, sizeof needle, connected[i], fx->url);
    if (!fmqt_gateway_wait_log(&fx->gw, needle, CONNECT_TIMEOUT_MS)) {
      fmqt_gateway_print_log(&fx->gw, "no broker connection");
      fmqt_broker_print_log(&fx->broker, 0, "the gateway did not connect");
      fail_msg("ferrymq did not log \"%s\" within %d ms", needle, CONNECT_TIMEOUT_MS);
    }
  }
}

int fmqt_fixture_setup(void **state) {
  static unsigned serial;
  struct fmqt_fixture *fx = *state;
  memset(&fx->broker, 0, sizeof fx->broker);
  memset(&fx->gw, 0, sizeof fx->gw);
  snprintf(fx->client_id, sizeof fx->client_id, "fmqt-gw-%d-%u", (int)getpid(), ++serial);
  for (size_t i = 0; fx->env != NULL && fx->env[i] != NULL; i++) {
    if (strncmp(fx->env[i], CLIENT_ID_ENV, strlen(CLIENT_ID_ENV)) == 0) {
      snprintf(fx->client_id, sizeof fx->client_id, "%s", fx->env[i] + strlen(CLIENT_ID_ENV));
    }
  }
  snprintf(fx->client_id_env_, sizeof fx->client_id_env_, CLIENT_ID_ENV "%s", fx->client_id);
  if (fx->no_broker) {
    snprintf(fx->url, sizeof fx->url, "tcp://127.0.0.1:%u", fmqt_free_port());
    fmqt_fixture_start_gateway(fx, 0);
  } else {
    fmqt_broker_start(&fx->broker, fx->broker_conf);
    snprintf(fx->url, sizeof fx->url, "%s", fx->broker.url);
    fmqt_fixture_start_gateway(fx, 1);
  }
  return 0;
}

int fmqt_fixture_teardown(void **state) {
  struct fmqt_fixture *fx = *state;
  /* Sockets a failed test left open would hold the gateway's shutdown for
   * its close timeout. */
  fmqt_close_all();
  int status = fmqt_gateway_stop(&fx->gw, STOP_TIMEOUT_MS);
  fmqt_broker_close(&fx->broker, status != 0);
  assert_int_equal(status, 0);
  return 0;
}

struct fmqt_fixture *fmqt_fixture_of(void **state) {
  return *state;
}

struct fmqt_gateway *fmqt_fixture_gateway(void **state) {
  return &((struct fmqt_fixture *)*state)->gw;
}

struct fmqt_broker *fmqt_fixture_broker(void **state) {
  return &((struct fmqt_fixture *)*state)->broker;
}

uint16_t fmqt_fixture_port(void **state) {
  return fmqt_fixture_gateway(state)->port;
}

int fmqt_fixture_connect(void **state) {
  return fmqt_ws_connect(fmqt_fixture_port(state), "/mqtt", "");
}

int fmqt_gateway_wait_fd_count(const struct fmqt_gateway *gw, int want, int timeout_ms) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  int have;
  while ((have = fmqt_gateway_fd_count(gw)) != want && fmqt_now_ms() < deadline) {
    fmqt_sleep_ms(10);
  }
  return have;
}

/* /proc/PID/name of the gateway (malloc'd); its path in path. */
static char *gateway_proc_file(const struct fmqt_gateway *gw, const char *name, char *path,
                               size_t cap) {
  snprintf(path, cap, "/proc/%d/%s", (int)gw->pid, name);
  return fmqt_read_file(path, NULL);
}

long fmqt_gateway_rss_kib(const struct fmqt_gateway *gw) {
  char path[64];
  char *status = gateway_proc_file(gw, "status", path, sizeof path);
  const char *line = strstr(status, "\nVmRSS:");
  long kib = line != NULL ? strtol(line + strlen("\nVmRSS:"), NULL, 10) : -1;
  free(status);
  if (kib <= 0) {
    fail_msg("no VmRSS in %s", path);
  }
  return kib;
}

long fmqt_gateway_cpu_ms(const struct fmqt_gateway *gw) {
  char path[64];
  char *stat = gateway_proc_file(gw, "stat", path, sizeof path);
  /* Fields 14 and 15 (utime, stime) follow the command name in
   * parentheses, which may itself hold spaces. */
  const char *p = strrchr(stat, ')');
  unsigned long utime = 0, stime = 0;
  int fields = p != NULL ? sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                                  &utime, &stime)
                         : 0;
  free(stat);
  if (fields != 2) {
    fail_msg("no CPU times in %s", path);
  }
  return (long)((utime + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}
