#include "gateway_proc.h"

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
#define MAX_LOG 65536
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 15000
#define POLL_MS 10
#define LISTENING "listening on 127.0.0.1:"

static void sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static const char *binary_path(void) {
  const char *bin = getenv("FMQ_TEST_BIN");
  if (bin == NULL || *bin == '\0') {
    fail_msg("FMQ_TEST_BIN is not set (run the test through ctest)");
  }
  return bin;
}

/* Reads up to cap-1 bytes of the file at path into out; returns the length. */
static size_t read_file(const char *path, char *out, size_t cap) {
  size_t n = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, out + n, cap - 1 - n)) > 0) {
      n += (size_t)r;
    }
    close(fd);
  }
  out[n] = '\0';
  return n;
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

/* Forks and execs the binary with argv; its stdout and stderr go to log_fd. */
static pid_t spawn(const char *const *argv, const char *const *env, int log_fd) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fail_msg("fork: %s", strerror(errno));
  }
  if (pid == 0) {
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    closefrom(STDERR_FILENO + 1);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
      putenv((char *)env[i]);
    }
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

static int decode_status(int wstatus) {
  if (WIFEXITED(wstatus)) {
    return WEXITSTATUS(wstatus);
  }
  return 128 + WTERMSIG(wstatus);
}

/* Waits up to timeout_ms for pid; returns the decoded status or -1. */
static int wait_pid(pid_t pid, int timeout_ms) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (;;) {
    int wstatus;
    pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) {
      return decode_status(wstatus);
    }
    if (r < 0 && errno != EINTR) {
      fail_msg("waitpid: %s", strerror(errno));
    }
    if (fmqt_now_ms() >= deadline) {
      return -1;
    }
    sleep_ms(POLL_MS);
  }
}

static void print_log(const struct fmqt_gateway *gw, const char *why) {
  static char log[MAX_LOG];
  read_file(gw->log_path, log, sizeof log);
  fprintf(stderr, "--- ferrymq log (%s) ---\n%s--- end of log ---\n", why, log);
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
  gw->pid = spawn(argv, env, log_fd);
  close(log_fd);

  static char log[MAX_LOG];
  int64_t deadline = fmqt_now_ms() + START_TIMEOUT_MS;
  for (;;) {
    read_file(gw->log_path, log, sizeof log);
    gw->port = find_port(log);
    if (gw->port != 0) {
      return;
    }
    int status = wait_pid(gw->pid, 0);
    if (status >= 0) {
      gw->pid = 0;
      print_log(gw, "exited during start");
      fail_msg("ferrymq exited with status %d before listening", status);
    }
    if (fmqt_now_ms() >= deadline) {
      kill(gw->pid, SIGKILL);
      wait_pid(gw->pid, START_TIMEOUT_MS);
      gw->pid = 0;
      print_log(gw, "start timed out");
      fail_msg("ferrymq did not log \"" LISTENING "PORT\" within %d ms", START_TIMEOUT_MS);
    }
    sleep_ms(POLL_MS);
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
  int status = wait_pid(gw->pid, timeout_ms);
  if (status >= 0) {
    gw->pid = 0;
    gw->status = status;
  }
  return status;
}

int fmqt_gateway_stop(struct fmqt_gateway *gw, int timeout_ms) {
  if (gw->pid > 0) {
    kill(gw->pid, SIGTERM);
    if (fmqt_gateway_wait(gw, timeout_ms) < 0) {
      kill(gw->pid, SIGKILL);
      wait_pid(gw->pid, STOP_TIMEOUT_MS);
      gw->pid = 0;
      gw->status = -1;
    }
  }
  if (gw->log_path[0] != '\0') {
    if (gw->status != 0) {
      char why[64];
      snprintf(why, sizeof why, "exit status %d", gw->status);
      print_log(gw, why);
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

int fmqt_gateway_log_contains(const struct fmqt_gateway *gw, const char *needle) {
  static char log[MAX_LOG];
  read_file(gw->log_path, log, sizeof log);
  return strstr(log, needle) != NULL;
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
  pid_t pid = spawn(argv, env, log_fd);
  close(log_fd);
  int status = wait_pid(pid, timeout_ms);
  if (status < 0) {
    kill(pid, SIGKILL);
    wait_pid(pid, STOP_TIMEOUT_MS);
  }
  read_file(log_path, out, cap);
  unlink(log_path);
  return status;
}

int fmqt_fixture_setup(void **state) {
  struct fmqt_fixture *fx = *state;
  fmqt_gateway_start(&fx->gw, fx->args, fx->env);
  return 0;
}

int fmqt_fixture_teardown(void **state) {
  struct fmqt_fixture *fx = *state;
  assert_int_equal(fmqt_gateway_stop(&fx->gw, STOP_TIMEOUT_MS), 0);
  return 0;
}

struct fmqt_gateway *fmqt_fixture_gateway(void **state) {
  return &((struct fmqt_fixture *)*state)->gw;
}

uint16_t fmqt_fixture_port(void **state) {
  return fmqt_fixture_gateway(state)->port;
}

int fmqt_fixture_connect(void **state) {
  return fmqt_ws_connect(fmqt_fixture_port(state), "/mqtt", "");
}
