#include "broker_proc.h"

#include "proc.h"
#include "wsclient.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define START_ATTEMPTS 5
#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define CLIENT_TIMEOUT_MS 10000
#define SUBACK_TIMEOUT_MS 10000
#define POLL_MS 5

static const char *const dynsec_paths[] = {
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
};

const char *fmqt_dynsec_plugin(void) {
  for (size_t i = 0; i < sizeof dynsec_paths / sizeof dynsec_paths[0]; i++) {
    if (access(dynsec_paths[i], R_OK) == 0) {
      return dynsec_paths[i];
    }
  }
  return NULL;
}

void fmqt_broker_prepare(struct fmqt_broker *b) {
  if (b->dir[0] != '\0') {
    return;
  }
  memset(b, 0, sizeof *b);
  fmqt_make_temp_dir(b->dir, sizeof b->dir, "broker");
  snprintf(b->conf_path, sizeof b->conf_path, "%s/mosquitto.conf", b->dir);
  snprintf(b->log_path, sizeof b->log_path, "%s/mosquitto.log", b->dir);
}

void fmqt_broker_write_file(struct fmqt_broker *b, const char *name, const char *text,
                            char *path, size_t cap) {
  fmqt_broker_prepare(b);
  int n = snprintf(path, cap, "%s/%s", b->dir, name);
  assert_true(n > 0 && (size_t)n < cap);
  fmqt_write_file(path, text, strlen(text));
}

static void write_conf(struct fmqt_broker *b, const char *extra_conf) {
  /* Started as root, mosquitto would switch to the "mosquitto" user and
   * could not write its log into our directory: stay who we are. */
  struct passwd *pw = getpwuid(getuid());
  char conf[8192];
  int n = snprintf(conf, sizeof conf,
                   "user %s\n"
                   "listener %u 127.0.0.1\n"
                   "allow_anonymous true\n"
                   "persistence false\n"
                   "set_tcp_nodelay true\n"
                   "sys_interval 1\n"
                   "log_dest file %s\n"
                   "log_type all\n"
                   "connection_messages true\n"
                   "%s",
                   pw != NULL ? pw->pw_name : "root", b->port, b->log_path,
                   extra_conf ? extra_conf : "");
  assert_true(n > 0 && (size_t)n < sizeof conf);
  fmqt_write_file(b->conf_path, conf, (size_t)n);
}

/* Runs mosquitto with the current configuration and waits until the port
 * accepts. Returns 0, or -1 when mosquitto exited first (e.g. the port was
 * taken); fails the test on a timeout. */
static int run_broker(struct fmqt_broker *b) {
  char out_path[352];
  snprintf(out_path, sizeof out_path, "%s/mosquitto.out", b->dir);
  int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) {
    fail_msg("open %s: %s", out_path, strerror(errno));
  }
  const char *argv[] = {"mosquitto", "-c", b->conf_path, NULL};
  b->pid = fmqt_spawn(argv, NULL, out, NULL);
  close(out);
  b->frozen = 0;
  int64_t deadline = fmqt_now_ms() + READY_TIMEOUT_MS;
  for (;;) {
    int fd = fmqt_tcp_try_connect(b->port);
    if (fd >= 0) {
      fmqt_close(fd);
      return 0;
    }
    if (fmqt_proc_wait(b->pid, 0) >= 0) {
      b->pid = 0;
      return -1;
    }
    if (fmqt_now_ms() >= deadline) {
      fmqt_proc_stop(b->pid, SIGKILL, STOP_TIMEOUT_MS);
      b->pid = 0;
      fmqt_broker_print_log(b, 0, "start timed out");
      fail_msg("mosquitto did not accept on 127.0.0.1:%u within %d ms", b->port,
               READY_TIMEOUT_MS);
    }
    fmqt_sleep_ms(POLL_MS);
  }
}

void fmqt_broker_start(struct fmqt_broker *b, const char *extra_conf) {
  fmqt_broker_prepare(b);
  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    b->port = fmqt_free_port();
    snprintf(b->url, sizeof b->url, "tcp://127.0.0.1:%u", b->port);
    write_conf(b, extra_conf);
    if (run_broker(b) == 0) {
      return;
    }
  }
  fmqt_broker_print_log(b, 0, "start failed");
  char out_path[352];
  snprintf(out_path, sizeof out_path, "%s/mosquitto.out", b->dir);
  char *out = fmqt_read_file(out_path, NULL);
  fail_msg("mosquitto did not start in %d attempts:\n%s", START_ATTEMPTS, out);
}

void fmqt_broker_start_on(struct fmqt_broker *b, uint16_t port, const char *extra_conf) {
  fmqt_broker_prepare(b);
  b->port = port;
  snprintf(b->url, sizeof b->url, "tcp://127.0.0.1:%u", b->port);
  write_conf(b, extra_conf);
  fmqt_broker_restart(b);
}

void fmqt_broker_restart(struct fmqt_broker *b) {
  assert_true(b->pid == 0 && b->port != 0);
  for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    if (run_broker(b) == 0) {
      return;
    }
    fmqt_sleep_ms(100);
  }
  fmqt_broker_print_log(b, 0, "restart failed");
  fail_msg("mosquitto did not restart on port %u", b->port);
}

void fmqt_broker_stop(struct fmqt_broker *b) {
  if (b->pid > 0) {
    fmqt_proc_stop(b->pid, SIGTERM, STOP_TIMEOUT_MS);
    b->pid = 0;
    b->frozen = 0;
  }
}

void fmqt_broker_kill(struct fmqt_broker *b) {
  assert_true(b->pid > 0);
  fmqt_proc_stop(b->pid, SIGKILL, STOP_TIMEOUT_MS);
  b->pid = 0;
  b->frozen = 0;
}

void fmqt_broker_freeze(struct fmqt_broker *b) {
  assert_true(b->pid > 0);
  assert_int_equal(kill(b->pid, SIGSTOP), 0);
  b->frozen = 1;
}

void fmqt_broker_thaw(struct fmqt_broker *b) {
  assert_true(b->pid > 0);
  assert_int_equal(kill(b->pid, SIGCONT), 0);
  b->frozen = 0;
}

void fmqt_broker_close(struct fmqt_broker *b, int print_log) {
  if (b->pid > 0) {
    kill(b->pid, SIGCONT);
  }
  fmqt_broker_stop(b);
  if (b->dir[0] != '\0') {
    if (print_log) {
      fmqt_broker_print_log(b, 0, "test failed");
    }
    fmqt_remove_temp_dir(b->dir);
  }
  memset(b, 0, sizeof *b);
}

char *fmqt_broker_log(const struct fmqt_broker *b) {
  return fmqt_read_file(b->log_path, NULL);
}

size_t fmqt_broker_log_mark(const struct fmqt_broker *b) {
  struct stat st;
  return stat(b->log_path, &st) == 0 ? (size_t)st.st_size : 0;
}

size_t fmqt_broker_log_count_since(const struct fmqt_broker *b, size_t mark, const char *needle) {
  size_t len;
  char *log = fmqt_read_file(b->log_path, &len);
  size_t count = mark <= len ? fmqt_count(log + mark, needle) : 0;
  free(log);
  return count;
}

size_t fmqt_broker_wait_log(const struct fmqt_broker *b, size_t mark, const char *needle,
                            size_t count, int timeout_ms) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (;;) {
    size_t seen = fmqt_broker_log_count_since(b, mark, needle);
    if (seen >= count || fmqt_now_ms() >= deadline) {
      return seen;
    }
    fmqt_sleep_ms(POLL_MS);
  }
}

void fmqt_broker_print_log(const struct fmqt_broker *b, size_t mark, const char *why) {
  size_t len;
  char *log = fmqt_read_file(b->log_path, &len);
  const char *from = mark <= len ? log + mark : log;
  /* $SYS chatter makes long logs; the tail is what explains a failure. */
  size_t shown = strlen(from);
  if (shown > 24000) {
    from += shown - 24000;
  }
  fprintf(stderr, "--- mosquitto log (%s) ---\n%s--- end of mosquitto log ---\n", why, from);
  free(log);
}

size_t fmqt_broker_subscribes_since(const struct fmqt_broker *b, size_t mark,
                                    const char *client_id, const char *filter, int qos) {
  size_t count = 0;
  for (int q = 0; q <= 2; q++) {
    if (qos >= 0 && q != qos) {
      continue;
    }
    char needle[512];
    snprintf(needle, sizeof needle, ": %s %d %s\n", client_id, q, filter);
    count += fmqt_broker_log_count_since(b, mark, needle);
  }
  return count;
}

size_t fmqt_broker_unsubscribes_since(const struct fmqt_broker *b, size_t mark,
                                      const char *client_id, const char *filter) {
  char needle[512];
  snprintf(needle, sizeof needle, ": %s %s\n", client_id, filter);
  return fmqt_broker_log_count_since(b, mark, needle);
}

/* --- mosquitto_pub --- */

/* Runs a client with argv, feeds it input (n bytes, may be NULL), waits
 * up to timeout_ms and asserts it exited 0 (printing its output if not). */
static void run_client(const struct fmqt_broker *b, const char *const *argv, const void *input,
                       size_t n, int timeout_ms) {
  char out_path[352];
  snprintf(out_path, sizeof out_path, "%s/client.out", b->dir);
  int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    fail_msg("open %s: %s", out_path, strerror(errno));
  }
  int in = -1;
  pid_t pid = fmqt_spawn(argv, NULL, out, input != NULL ? &in : NULL);
  close(out);
  if (input != NULL) {
    const char *p = input;
    while (n > 0) {
      ssize_t w = write(in, p, n);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w <= 0) {
        break;  /* it exited; its status says why */
      }
      p += w;
      n -= (size_t)w;
    }
    close(in);
  }
  int status = fmqt_proc_wait(pid, timeout_ms);
  if (status != 0) {
    if (status < 0) {
      fmqt_proc_stop(pid, SIGKILL, STOP_TIMEOUT_MS);
    }
    char *text = fmqt_read_file(out_path, NULL);
    fail_msg("%s (topic %s) %s: %s", argv[0], argv[6],
             status < 0 ? "timed out" : "failed", text);
  }
}

void fmqt_mqtt_pub(const struct fmqt_broker *b, const char *topic, const void *payload,
                   size_t len, int qos, int retain, const char *version) {
  char port[16], q[8];
  snprintf(port, sizeof port, "%u", b->port);
  snprintf(q, sizeof q, "%d", qos);
  const char *argv[16] = {"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", topic,
                          "-q", q, "-V", version ? version : "mqttv311"};
  size_t argc = 11;
  if (retain) {
    argv[argc++] = "-r";
  }
  argv[argc++] = len > 0 ? "-s" : "-n";
  argv[argc] = NULL;
  run_client(b, argv, len > 0 ? payload : NULL, len, CLIENT_TIMEOUT_MS);
}

void fmqt_mqtt_pub_text(const struct fmqt_broker *b, const char *topic, const char *text,
                        int qos, int retain) {
  fmqt_mqtt_pub(b, topic, text, strlen(text), qos, retain, NULL);
}

void fmqt_mqtt_pub_lines(const struct fmqt_broker *b, const char *topic, const char *lines,
                         size_t n, int qos, int timeout_ms) {
  char port[16], q[8];
  snprintf(port, sizeof port, "%u", b->port);
  snprintf(q, sizeof q, "%d", qos);
  const char *argv[] = {"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", topic,
                        "-q", q, "-l", NULL};
  run_client(b, argv, lines, n, timeout_ms);
}

/* --- mosquitto_sub --- */

void fmqt_sub_start(struct fmqt_sub *s, const struct fmqt_broker *b, const char *const *topics,
                    int qos, const char *version) {
  static unsigned serial;
  memset(s, 0, sizeof *s);
  s->broker = b;
  snprintf(s->client_id, sizeof s->client_id, "fmqt-sub-%d-%u", (int)getpid(), ++serial);
  const char *tmp = getenv("TMPDIR");
  snprintf(s->out_path, sizeof s->out_path, "%s/fmqt-sub-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int out = mkostemp(s->out_path, O_CLOEXEC | O_APPEND);
  if (out < 0) {
    fail_msg("mkstemp %s: %s", s->out_path, strerror(errno));
  }
  char port[16], q[8];
  snprintf(port, sizeof port, "%u", b->port);
  snprintf(q, sizeof q, "%d", qos);
  const char *argv[64] = {"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-i", s->client_id,
                          "-q", q, "-V", version ? version : "mqttv311",
                          "-F", "M %r %q %l %x %t"};
  size_t argc = 13;
  for (size_t i = 0; topics[i] != NULL; i++) {
    assert_true(argc + 3 < sizeof argv / sizeof argv[0]);
    argv[argc++] = "-t";
    argv[argc++] = topics[i];
  }
  argv[argc] = NULL;
  size_t mark = fmqt_broker_log_mark(b);
  s->pid = fmqt_spawn(argv, NULL, out, NULL);
  close(out);
  char needle[128];
  snprintf(needle, sizeof needle, "Sending SUBACK to %s\n", s->client_id);
  if (fmqt_broker_wait_log(b, mark, needle, 1, SUBACK_TIMEOUT_MS) < 1) {
    char *text = fmqt_read_file(s->out_path, NULL);
    fmqt_broker_print_log(b, mark, "mosquitto_sub not subscribed");
    fail_msg("mosquitto_sub %s got no SUBACK within %d ms; its output: %s", s->client_id,
             SUBACK_TIMEOUT_MS, text);
  }
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

/* Parses "M R Q LEN HEX TOPIC"; returns 1 when line is such a line. */
static int parse_line(const char *line, size_t n, struct fmqt_sub_msg *m) {
  if (n < 2 || line[0] != 'M' || line[1] != ' ') {
    return 0;
  }
  const char *p = line + 2, *end = line + n;
  char *after;
  long retain = strtol(p, &after, 10);
  if (after == p || *after != ' ') {
    return 0;
  }
  p = after + 1;
  long qos = strtol(p, &after, 10);
  if (after == p || *after != ' ') {
    return 0;
  }
  p = after + 1;
  long len = strtol(p, &after, 10);
  if (after == p || *after != ' ' || len < 0) {
    return 0;
  }
  p = after + 1;
  const char *hex = p;
  while (p < end && *p != ' ') {
    p++;
  }
  if (p >= end || (size_t)(p - hex) != (size_t)len * 2) {
    return 0;
  }
  memset(m, 0, sizeof *m);
  m->retain = (int)retain;
  m->qos = (int)qos;
  m->len = (size_t)len;
  m->payload = malloc(m->len + 1);
  assert_non_null(m->payload);
  for (size_t i = 0; i < m->len; i++) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(m->payload);
      return 0;
    }
    m->payload[i] = (uint8_t)(hi << 4 | lo);
  }
  m->payload[m->len] = '\0';
  p++;
  m->topic = strndup(p, (size_t)(end - p));
  assert_non_null(m->topic);
  return 1;
}

size_t fmqt_sub_messages(const struct fmqt_sub *s, struct fmqt_sub_msg **out) {
  size_t len;
  char *text = fmqt_read_file(s->out_path, &len);
  size_t count = 0, cap = 16;
  struct fmqt_sub_msg *msgs = malloc(cap * sizeof *msgs);
  assert_non_null(msgs);
  const char *line = text;
  const char *end = text + len;
  while (line < end) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (eol == NULL) {
      break;  /* an unfinished line: not yet a message */
    }
    if (count == cap) {
      cap *= 2;
      msgs = realloc(msgs, cap * sizeof *msgs);
      assert_non_null(msgs);
    }
    if (parse_line(line, (size_t)(eol - line), &msgs[count])) {
      count++;
    }
    line = eol + 1;
  }
  free(text);
  *out = msgs;
  return count;
}

void fmqt_sub_msgs_free(struct fmqt_sub_msg *msgs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(msgs[i].topic);
    free(msgs[i].payload);
  }
  free(msgs);
}

size_t fmqt_sub_wait(const struct fmqt_sub *s, size_t n, int timeout_ms) {
  int64_t deadline = fmqt_now_ms() + timeout_ms;
  for (;;) {
    struct fmqt_sub_msg *msgs;
    size_t count = fmqt_sub_messages(s, &msgs);
    fmqt_sub_msgs_free(msgs, count);
    if (count >= n || fmqt_now_ms() >= deadline) {
      return count;
    }
    fmqt_sleep_ms(POLL_MS);
  }
}

void fmqt_sub_stop(struct fmqt_sub *s) {
  if (s->pid > 0) {
    fmqt_proc_stop(s->pid, SIGTERM, STOP_TIMEOUT_MS);
  }
  if (s->out_path[0] != '\0' && getenv("FMQT_KEEP_LOGS") == NULL) {
    unlink(s->out_path);
  }
  memset(s, 0, sizeof *s);
}

void fmqt_sub_expect(const struct fmqt_sub *s, const struct fmqt_sub_want *want, size_t n,
                     int timeout_ms) {
  fmqt_sub_wait(s, n, timeout_ms);
  struct fmqt_sub_msg *msgs;
  size_t got = fmqt_sub_messages(s, &msgs);
  for (size_t i = 0; i < got || i < n; i++) {
    if (i >= got || i >= n) {
      fmqt_broker_print_log(s->broker, 0, "mosquitto_sub got a different number of messages");
      fail_msg("mosquitto_sub %s got %zu messages within %d ms, want %zu (first missing or "
               "extra: %s)", s->client_id, got, timeout_ms, n,
               i < n ? want[i].topic : msgs[i].topic);
    }
    size_t len = strlen(want[i].text);
    if (strcmp(msgs[i].topic, want[i].topic) != 0 || msgs[i].len != len ||
        memcmp(msgs[i].payload, want[i].text, len) != 0 || msgs[i].qos != want[i].qos ||
        msgs[i].retain != want[i].retain) {
      fail_msg("mosquitto_sub message %zu: got %s \"%.*s\" (%zu bytes) qos %d retain %d, want "
               "%s \"%s\" (%zu bytes) qos %d retain %d", i, msgs[i].topic, (int)msgs[i].len,
               (const char *)msgs[i].payload, msgs[i].len, msgs[i].qos, msgs[i].retain,
               want[i].topic, want[i].text, len, want[i].qos, want[i].retain);
    }
  }
  fmqt_sub_msgs_free(msgs, got);
}

void fmqt_sub_expect_only(const struct fmqt_sub *s, const struct fmqt_sub_want *want, size_t n,
                          int timeout_ms, int quiet_ms) {
  fmqt_sub_expect(s, want, n, timeout_ms);
  size_t got = fmqt_sub_wait(s, n + 1, quiet_ms);
  if (got != n)
    fail_msg("mosquitto_sub %s got %zu messages, want %zu", s->client_id, got, n);
}
