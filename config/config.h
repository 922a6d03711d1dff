#ifndef FMQ_CONFIG_H
#define FMQ_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* The gateway's configuration (config-v1.md): one table of options drives
 * defaults, the YAML file, FERRYMQ_* environment variables and the command
 * line, applied in that order. The loaded struct is not changed afterwards:
 * a reload builds a new one. Durations are milliseconds, sizes bytes. */

enum fmq_log_level { FMQ_LOG_ERROR = 0, FMQ_LOG_WARN, FMQ_LOG_INFO, FMQ_LOG_DEBUG };
enum fmq_mqtt_protocol { FMQ_MQTT_5 = 0, FMQ_MQTT_311 };

struct fmq_listen_config {
  char *address;            /* "host:port", IPv6 as "[::1]:8080" */
  char **paths;             /* WebSocket upgrade paths, each starting with '/' */
  size_t npaths;
};

struct fmq_config {
  struct fmq_listen_config *listen;
  size_t nlisten;
  struct {
    char *url;
    char *client_id;                /* %h host name, %p process id */
    char *username;                 /* "": none */
    char *password;
    enum fmq_mqtt_protocol protocol;
    uint64_t keepalive;             /* 0: off */
    struct {
      uint64_t min, max;            /* automatic reconnect backoff */
    } reconnect;
    uint64_t offline_buffer;        /* QoS>0 publishes held while down; 0: none */
  } broker;
  struct {
    uint64_t idle_timeout;          /* 0: off */
    uint64_t ping_interval;         /* 0: off */
    uint64_t handshake_timeout;     /* whole HTTP upgrade must arrive within it */
    uint64_t close_timeout;         /* wait for the peer's close frame / TCP close */
    uint64_t max_message_size;
    uint64_t max_header_size;
    uint64_t outbound_queue_limit;
  } websocket;
  struct {
    uint64_t max_connections;
  } limits;
  struct {
    enum fmq_log_level level;
  } log;
  uint64_t workers;                 /* 0: one per core */
};

/* Errors are written to err as "SOURCE: message", where SOURCE is
 * "FILE:LINE", the environment variable or the command-line option. */
#define FMQ_CONFIG_ERR_MAX 512

/* Fills c with the built-in defaults (one listener 0.0.0.0:8080 on /mqtt). */
int fmq_config_init(struct fmq_config *c);
void fmq_config_close(struct fmq_config *c);

/* Loads a YAML file over c. Returns 0, or -1 with err "FILE:LINE: message"
 * (syntax errors, unknown keys, ill-typed or out-of-range values). */
int fmq_config_load_file(struct fmq_config *c, const char *path, char *err, size_t errlen);
/* Applies FERRYMQ_<PATH> variables for scalar keys from envp (NULL-terminated).
 * Variables that name no key are ignored. Returns 0 or -1 with err. */
int fmq_config_apply_env(struct fmq_config *c, char *const *envp, char *err, size_t errlen);
/* Sets one scalar key by its dotted name ("websocket.idle_timeout") from
 * text, as the file and the environment do. `source` prefixes errors. */
int fmq_config_set(struct fmq_config *c, const char *key, const char *value, const char *source,
                   char *err, size_t errlen);
/* Checks rules that involve more than one key (after every source was
 * applied). Returns 0 or -1 with err "configuration: message". */
int fmq_config_check(const struct fmq_config *c, char *err, size_t errlen);
/* --listen HOST:PORT: replaces every listener by one, keeping the first
 * listener's paths. --path P: sets the paths of every listener to P alone. */
int fmq_config_set_listen(struct fmq_config *c, const char *address, char *err, size_t errlen);
int fmq_config_set_path(struct fmq_config *c, const char *path, char *err, size_t errlen);

/* "500ms" "30s" "5m" "1h" -> milliseconds; "512" "64KiB" "1MiB" -> bytes.
 * Return 0 or -1. */
int fmq_config_parse_duration(const char *text, uint64_t *ms);
int fmq_config_parse_size(const char *text, uint64_t *bytes);
/* Splits "host:port" / "[v6]:port" into host (NUL-terminated) and port. */
int fmq_config_parse_hostport(const char *text, char *host, size_t hostlen, uint16_t *port);

const char *fmq_log_level_name(enum fmq_log_level level);

#endif
