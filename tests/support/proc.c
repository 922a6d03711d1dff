#include "proc.h"

#include "wsclient.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_CHILDREN 256
#define POLL_MS 5

static pid_t children[MAX_CHILDREN];
static int registered_atexit;

void fmqt_sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void forget(pid_t pid) {
  for (size_t i = 0; i < MAX_CHILDREN; i++) {
    if (children[i] == pid) {
      children[i] = 0;
    }
  }
}

void fmqt_proc_kill_all(void) {
  for (size_t i = 0; i < MAX_CHILDREN; i++) {
    if (children[i] > 0) {
      kill(children[i], SIGKILL);
      int wstatus;
      while (waitpid(children[i], &wstatus, 0) < 0 && errno == EINTR) {
      }
      children[i] = 0;
    }
  }
}

static void remember(pid_t pid) {
  if (!registered_atexit) {
    atexit(fmqt_proc_kill_all);
    /* Writing to the stdin pipe of a client that already exited must not
     * kill the test. */
    signal(SIGPIPE, SIG_IGN);
    registered_atexit = 1;
  }
  for (size_t i = 0; i < MAX_CHILDREN; i++) {
    if (children[i] == 0) {
      children[i] = pid;
      return;
    }
  }
  kill(pid, SIGKILL);
  fail_msg("more than %d child processes", MAX_CHILDREN);
}

pid_t fmqt_spawn(const char *const *argv, const char *const *env, int out_fd, int *stdin_fd) {
  int in[2] = {-1, -1};
  if (stdin_fd != NULL && pipe2(in, O_CLOEXEC) != 0) {
    fail_msg("pipe: %s", strerror(errno));
  }
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fail_msg("fork: %s", strerror(errno));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);
    }
    signal(SIGPIPE, SIG_DFL);
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    dup2(in[0] >= 0 ? in[0] : null_fd, STDIN_FILENO);
    dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO);
    dup2(out_fd >= 0 ? out_fd : null_fd, STDERR_FILENO);
    closefrom(STDERR_FILENO + 1);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
      putenv((char *)env[i]);
    }
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  if (stdin_fd != NULL) {
    close(in[0]);
    *stdin_fd = in[1];
  }
  remember(pid);
  return pid;
}

static int decode_status(int wstatus) {
  if (WIFEXITED(wstatus)) {
    return WEXITSTATUS(wstatus);
  }
  return 128 + WTERMSIG(wstatus);
}

int fmqt_proc_wait(pid_t pid, int timeout_ms) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (;;) {
    int wstatus;
    pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) {
      forget(pid);
      return decode_status(wstatus);
    }
    if (r < 0 && errno != EINTR) {
      fail_msg("waitpid %d: %s", (int)pid, strerror(errno));
    }
    if (fmqt_now_ms() >= deadline) {
      return -1;
    }
    fmqt_sleep_ms(POLL_MS);
  }
}

int fmqt_proc_stop(pid_t pid, int sig, int timeout_ms) {
  kill(pid, sig);
  kill(pid, SIGCONT);
  int status = fmqt_proc_wait(pid, timeout_ms);
  if (status < 0) {
    kill(pid, SIGKILL);
    (void)fmqt_proc_wait(pid, 10000);
  }
  return status;
}

char *fmqt_read_file(const char *path, size_t *len) {
  size_t n = 0, cap = 4096;
  char *data = malloc(cap);
  assert_non_null(data);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    for (;;) {
      if (cap - n < 4096) {
        cap *= 2;
        data = realloc(data, cap);
        assert_non_null(data);
      }
      ssize_t r = read(fd, data + n, cap - 1 - n);
      if (r > 0) {
        n += (size_t)r;
      } else if (r == 0 || errno != EINTR) {
        break;
      }
    }
    close(fd);
  }
  data[n] = '\0';
  if (len != NULL) {
    *len = n;
  }
  return data;
}

void fmqt_write_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail_msg("open %s: %s", path, strerror(errno));
  }
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) {
      continue;
    }
    if (w <= 0) {
      fail_msg("write %s: %s", path, strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
  close(fd);
}

void fmqt_make_temp_dir(char *out, size_t cap, const char *name) {
  const char *tmp = getenv("TMPDIR");
  int n = snprintf(out, cap, "%s/fmqt-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
  assert_true(n > 0 && (size_t)n < cap);
  if (mkdtemp(out) == NULL) {
    fail_msg("mkdtemp %s: %s", out, strerror(errno));
  }
  /* mosquitto started as root drops to its own user unless told otherwise;
   * either way it must be able to write its log here. */
  chmod(out, 0755);
}

void fmqt_remove_temp_dir(const char *dir) {
  if (dir[0] == '\0') {
    return;
  }
  if (getenv("FMQT_KEEP_LOGS") != NULL) {
    fprintf(stderr, "kept: %s\n", dir);
    return;
  }
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
      }
    }
    closedir(d);
  }
  rmdir(dir);
}

size_t fmqt_count(const char *hay, const char *needle) {
  size_t count = 0, n = strlen(needle);
  if (n == 0) {
    return 0;
  }
  for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + n, needle)) {
    count++;
  }
  return count;
}

uint16_t fmqt_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fail_msg("bind 127.0.0.1:0: %s", strerror(errno));
  }
  socklen_t len = sizeof sa;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

long fmqt_raise_nofile(long want) {
  struct rlimit rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rlim_t target = (rlim_t)want;
  if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max) {
    target = rl.rlim_max;
  }
  if (rl.rlim_cur < target) {
    rl.rlim_cur = target;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  return (long)rl.rlim_cur;
}
