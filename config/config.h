#ifndef FMQ_CONFIG_H
#define FMQ_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* The gateway's configuration (config-v1.md): one table of options drives
 * defaults, the YAML file, FERRYMQ_* environment variables and the command
 * line, applied in that order. The loaded struct is not changed afterwards:
 * a reload builds a new one. Durations are milliseconds, sizes bytes. */

#include "template.h"

/* The most options the table may have (config.c checks that it fits). */
#define FMQ_CONFIG_OPTIONS_MAX 128

enum fmq_log_level { FMQ_LOG_ERROR = 0, FMQ_LOG_WARN, FMQ_LOG_INFO, FMQ_LOG_DEBUG };
enum fmq_log_format { FMQ_LOG_LOGFMT = 0, FMQ_LOG_JSON };
enum fmq_mqtt_protocol { FMQ_MQTT_5 = 0, FMQ_MQTT_311 };
enum fmq_auth_mode { FMQ_AUTH_NONE = 0, FMQ_AUTH_TOKEN, FMQ_AUTH_JWT };
enum fmq_mapping_action { FMQ_MAPPING_SUBSCRIBE = 0, FMQ_MAPPING_UNSUBSCRIBE, FMQ_MAPPING_PUBLISH };

/* A list of strings, each owned. */
struct fmq_strv {
  char **v;
  size_t n;
};

struct fmq_listen_config {
  char *address;            /* "host:port", IPv6 as "[::1]:8080" */
  char **paths;             /* WebSocket upgrade paths, each starting with '/' */
  size_t npaths;
};

/* One entry of auth.tokens. */
struct fmq_token_config {
  char *token;              /* as configured: the token, or "sha256:" + 64 lower-case hex */
  char *user;               /* "" when absent */
  struct fmq_strv subscribe, publish;  /* ACL patterns (checked by fmq_acl_check_pattern) */
  int subscribe_any, publish_any;      /* the list was absent: everything is allowed */
};

/* One entry of mappings (protocol-v1 section 6). */
struct fmq_mapping_config {
  char *type;                   /* the client's message type; not a built-in one */
  enum fmq_mapping_action action;
  struct fmq_template topic;    /* nparts 0: none (an unsubscribe with undoes) */
  int qos;                      /* subscribe, publish: 0..2 */
  int retain;                   /* publish */
  char *deliver_type;           /* subscribe: the "type" of delivered messages; NULL: "message" */
  char *undoes;                 /* unsubscribe: a subscribe mapping's type; NULL: none */
  size_t undoes_index;          /* that mapping's index in mappings */
  char *payload_field;          /* publish: the field that is the payload; NULL: the whole message */
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
    uint64_t publish_window;        /* bytes of publishes on their way to the broker */
    uint64_t max_topic_levels;      /* deeper topics and filters are refused (invalid_topic) */
    struct {
      char *ca, *cert, *key;        /* "": none; used with ssl:// and mqtts:// */
      int verify;
    } tls;
  } broker;
  struct {
    uint64_t idle_timeout;          /* 0: off */
    uint64_t ping_interval;         /* 0: off */
    uint64_t handshake_timeout;     /* whole HTTP upgrade must arrive within it */
    uint64_t close_timeout;         /* wait for the peer's close frame / TCP close */
    uint64_t max_message_size;
    uint64_t max_header_size;
    uint64_t outbound_queue_limit;
    uint64_t max_subscriptions;     /* per connection */
    uint64_t max_fragments;         /* data frames in one message */
    /* Normalised by fmq_origin_normalize ("https://example.com:443");
     * empty: any Origin, or none, is accepted. */
    struct fmq_strv allowed_origins;
  } websocket;
  struct {
    uint64_t max_connections;
    uint64_t max_connections_per_ip;  /* 0: unlimited */
    struct {
      uint64_t messages_per_second;   /* 0: off */
      uint64_t burst;                 /* 0: messages_per_second */
      uint64_t max_refusals;          /* within 10 s, then close 1008; 0: never close */
    } rate;
  } limits;
  struct {
    enum fmq_auth_mode mode;
    uint64_t max_token_size;        /* longer credentials are refused (401) */
    struct fmq_token_config *tokens;
    size_t ntokens;
    struct {
      struct fmq_strv algorithms;   /* names accepted by fmq_jwt_alg_from_name */
      char *secret;
      char *public_key_file;
      char *issuer, *audience;      /* "": not checked */
      uint64_t leeway;
      char *user_claim;
      int require_exp;
      struct fmq_strv default_subscribe, default_publish;
    } jwt;
  } auth;
  struct fmq_mapping_config *mappings;
  size_t nmappings;
  struct {
    int demo, health, metrics;
    char *sse_path, *publish_path;  /* "": disabled */
    uint64_t publish_timeout;
    struct fmq_strv trusted_proxies;  /* CIDRs */
  } http;
  struct {
    enum fmq_log_level level;
    enum fmq_log_format format;
  } log;
  uint64_t workers;                 /* 0: one per core */
  /* Which options a source (the file, the environment, the command line)
   * set, by index in the option table; the defaults fmq_config_init
   * applies are not marked. fmq_config_check reads it to tell an option
   * left at its default from one set to the same value. */
  unsigned char set_by_source[FMQ_CONFIG_OPTIONS_MAX];
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
/* Called with "FERRYMQ_X: unknown variable (did you mean FERRYMQ_Y?)". */
typedef void (*fmq_config_warn_fn)(const char *message, void *arg);
/* Applies FERRYMQ_<PATH> variables for scalar keys from envp (NULL-terminated),
 * and for lists of strings as comma-separated values ("" is the empty list).
 * A FERRYMQ_ variable that names no key, or a key only the file can set
 * (listen, auth.tokens, mappings), is passed to warn (may be NULL) and
 * otherwise ignored. Returns 0 or -1 with err. */
int fmq_config_apply_env(struct fmq_config *c, char *const *envp, fmq_config_warn_fn warn,
                         void *warn_arg, char *err, size_t errlen);
/* Sets one scalar key by its dotted name ("websocket.idle_timeout") from
 * text, as the file and the environment do (a list of strings from
 * comma-separated text). `source` prefixes errors. */
int fmq_config_set(struct fmq_config *c, const char *key, const char *value, const char *source,
                   char *err, size_t errlen);
/* Completes c once every source was applied, then checks the rules that
 * involve more than one key. Completing sets what the contract derives
 * from other keys when no source set it: websocket.ping_interval becomes
 * half of websocket.idle_timeout (in whole milliseconds, rounded down)
 * when that is neither 0 nor 40s or more. The half of an idle_timeout
 * below 200ms is kept though it is under the 100ms a source may set: it
 * must stay below idle_timeout. Calling it again changes nothing. Returns
 * 0 or -1 with err "configuration: message". */
int fmq_config_check(struct fmq_config *c, char *err, size_t errlen);
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
