#include "config.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "snapshot.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

extern char **environ;

enum { OPT_LISTEN = 256, OPT_PATH, OPT_BROKER, OPT_LOG_LEVEL, OPT_WORKERS, OPT_CHECK_CONFIG };

static const struct option long_options[] = {
  {"config", required_argument, NULL, 'c'},
  {"listen", required_argument, NULL, OPT_LISTEN},
  {"path", required_argument, NULL, OPT_PATH},
  {"broker", required_argument, NULL, OPT_BROKER},
  {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
  {"workers", required_argument, NULL, OPT_WORKERS},
  {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
  {"version", no_argument, NULL, 'V'},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static void usage(FILE *out) {
  fputs("Usage: ferrymq [options]\n"
        "WebSocket gateway to an MQTT broker.\n"
        "\n"
        "  -c, --config FILE     load the YAML configuration FILE\n"
        "      --listen HOST:PORT  listen there instead of the configured listeners\n"
        "      --path P          WebSocket upgrade path (default /mqtt)\n"
        "      --broker URL      MQTT broker (default tcp://127.0.0.1:1883)\n"
        "      --log-level L     error | warn | info | debug\n"
        "      --workers N       event-loop threads (0: one per core)\n"
        "      --check-config    validate the configuration and exit\n"
        "  -V, --version         print the version and exit\n"
        "  -h, --help            print this help and exit\n"
        "\n"
        "Precedence: built-in defaults < FILE < FERRYMQ_* environment < options.\n",
        out);
}

/* The command line's settings, applied after the file and the environment. */
struct cli {
  const char *config_path;
  const char *listen, *path, *broker, *log_level, *workers;
  int check_config;
};

static int parse_cli(int argc, char **argv, struct cli *cli) {
  int opt;
  while ((opt = getopt_long(argc, argv, "c:Vh", long_options, NULL)) != -1) {
    switch (opt) {
    case 'c': cli->config_path = optarg; break;
    case OPT_LISTEN: cli->listen = optarg; break;
    case OPT_PATH: cli->path = optarg; break;
    case OPT_BROKER: cli->broker = optarg; break;
    case OPT_LOG_LEVEL: cli->log_level = optarg; break;
    case OPT_WORKERS: cli->workers = optarg; break;
    case OPT_CHECK_CONFIG: cli->check_config = 1; break;
    case 'V':
      printf("ferrymq %s\n", FMQ_VERSION);
      exit(0);
    case 'h':
      usage(stdout);
      exit(0);
    default:
      usage(stderr);
      return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "ferrymq: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return -1;
  }
  return 0;
}

/* Configuration warnings wait until log.format is known. */
#define MAX_WARNINGS 16
struct warnings {
  char *text[MAX_WARNINGS];
  size_t n;
};

static void warn_config(const char *message, void *arg) {
  struct warnings *w = arg;
  if (w->n < MAX_WARNINGS && (w->text[w->n] = strdup(message)) != NULL)
    w->n++;
}

static void warnings_flush(struct warnings *w) {
  for (size_t i = 0; i < w->n; i++) {
    fmq_log_warn("%s", w->text[i]);
    free(w->text[i]);
  }
  w->n = 0;
}

static int load_config(struct fmq_config *c, const struct cli *cli, struct warnings *w,
                       char *err, size_t errlen) {
  if (fmq_config_init(c) != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (cli->config_path && fmq_config_load_file(c, cli->config_path, err, errlen) != 0)
    return -1;
  if (fmq_config_apply_env(c, environ, warn_config, w, err, errlen) != 0)
    return -1;
  if (cli->listen && fmq_config_set_listen(c, cli->listen, err, errlen) != 0)
    return -1;
  if (cli->path && fmq_config_set_path(c, cli->path, err, errlen) != 0)
    return -1;
  const struct { const char *key, *value, *option; } scalars[] = {
    {"broker.url", cli->broker, "--broker"},
    {"log.level", cli->log_level, "--log-level"},
    {"workers", cli->workers, "--workers"},
  };
  for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
    if (scalars[i].value &&
        fmq_config_set(c, scalars[i].key, scalars[i].value, scalars[i].option, err, errlen) != 0)
      return -1;
  return fmq_config_check(c, err, errlen);
}

/* Every connection is a descriptor; the usual soft limit of 1024 would cap
 * max_connections long before memory does. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* SIGTERM and SIGINT belong to the process, not to one loop's server: they
 * start the graceful shutdown of every server (one today), a second one
 * aborts every connection (fmq_server_stop). The handles are unreferenced,
 * so they do not keep the loop running once the servers are done. */
struct process_signals {
  uv_signal_t term, intr;
};

static void on_signal(uv_signal_t *h, int signum) {
  fmq_log_info("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
  fmq_server_stop(h->data);
}

static int signals_start(struct process_signals *sig, uv_loop_t *loop, struct fmq_server *server) {
  uv_signal_init(loop, &sig->term);
  uv_signal_init(loop, &sig->intr);
  sig->term.data = sig->intr.data = server;
  uv_unref((uv_handle_t *)&sig->term);
  uv_unref((uv_handle_t *)&sig->intr);
  int rc = uv_signal_start(&sig->term, on_signal, SIGTERM);
  if (rc == 0)
    rc = uv_signal_start(&sig->intr, on_signal, SIGINT);
  if (rc != 0)
    fmq_log_error("signal handlers: %s", uv_strerror(rc));
  return rc;
}

static void signals_close(struct process_signals *sig) {
  uv_close((uv_handle_t *)&sig->term, NULL);
  uv_close((uv_handle_t *)&sig->intr, NULL);
}

/* The server is allocated (its read buffer alone is 64 KiB) and freed only
 * after uv_loop_close: its handles live in it until the loop lets go. */
static int run(struct fmq_snapshot *snapshot) {
  const struct fmq_config *config = &snapshot->config;
  uv_loop_t loop;
  struct fmq_session session;
  struct process_signals signals;
  int rc = uv_loop_init(&loop);
  if (rc != 0) {
    fmq_log_error("event loop: %s", uv_strerror(rc));
    return 1;
  }
  struct fmq_server *server = malloc(sizeof(*server));
  rc = server != NULL ? fmq_server_init(server, &loop, snapshot) : UV_ENOMEM;
  if (rc != 0) {
    fmq_log_error("startup: %s", uv_strerror(rc));
    uv_loop_close(&loop);
    free(server);
    return 1;
  }
  rc = fmq_session_init(&session, &loop, snapshot);
  if (rc != 0) {
    if (rc != -1)
      fmq_log_error("startup: %s", uv_strerror(rc));
    fmq_server_stop(server);
    uv_run(&loop, UV_RUN_DEFAULT);
    fmq_server_close(server);
    uv_loop_close(&loop);
    free(server);
    return 1;
  }
  server->session = &session;
  if (config->workers > 1)
    fmq_log_warn("workers: %llu requested; this version runs one event loop",
                 (unsigned long long)config->workers);
  int failed = signals_start(&signals, &loop, server) != 0 || fmq_server_start(server) != 0 ||
               fmq_session_connect(&session) != 0;
  if (failed)
    fmq_server_stop(server);
  uv_run(&loop, UV_RUN_DEFAULT);
  signals_close(&signals);
  uv_run(&loop, UV_RUN_DEFAULT);
  fmq_session_close(&session);
  fmq_server_close(server);
  rc = uv_loop_close(&loop);
  free(server);
  if (rc != 0) {
    fmq_log_error("event loop did not close cleanly: %s", uv_strerror(rc));
    return 1;
  }
  if (!failed)
    fmq_log_info("stopped");
  return failed;
}

int main(int argc, char **argv) {
  struct cli cli = {0};
  if (parse_cli(argc, argv, &cli) != 0)
    return 2;

  struct fmq_config config;
  char err[FMQ_CONFIG_ERR_MAX];
  struct warnings warnings = {0};
  int loaded = load_config(&config, &cli, &warnings, err, sizeof(err));
  if (loaded == 0) {
    fmq_log_set_level(config.log.level);
    fmq_log_set_format(config.log.format);
  }
  warnings_flush(&warnings);
  if (loaded != 0) {
    fprintf(stderr, "%s\n", err);
    fmq_config_close(&config);
    return 1;
  }
  /* Reads the JWT key file: --check-config checks it too. */
  struct fmq_snapshot *snapshot = fmq_snapshot_new(&config, err, sizeof(err));
  if (snapshot == NULL) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  const struct fmq_auth *auth = &snapshot->auth;
  if (snapshot->config.auth.mode == FMQ_AUTH_JWT && (auth->jwt.algorithms & FMQ_JWT_HMAC_ALGS) &&
      auth->jwt.secret_len < 32)
    fmq_log_warn("auth.jwt.secret is shorter than 32 bytes: RFC 7518 wants at least the "
                 "hash's size, and a short secret can be guessed");
  if (cli.check_config) {
    printf("%s: ok\n", cli.config_path ? cli.config_path : "configuration");
    fmq_snapshot_unref(snapshot);
    return 0;
  }

  /* libuv writes with write(2); a peer gone mid-write must be an EPIPE, not a signal. */
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  int rc = run(snapshot);
  fmq_snapshot_unref(snapshot);
  return rc;
}
