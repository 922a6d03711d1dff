#include "config.h"

#include "acl.h"
#include "jwt.h"
#include "origin.h"
#include "topic.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define MS_SECOND UINT64_C(1000)
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define KIB UINT64_C(1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

enum fmq_option_type {
  FMQ_OPT_DURATION, /* uint64_t milliseconds */
  FMQ_OPT_SIZE,     /* uint64_t bytes */
  FMQ_OPT_UINT,     /* uint64_t */
  FMQ_OPT_BOOL,     /* int, 0 or 1: true or false */
  FMQ_OPT_STRING,   /* char *, owned */
  FMQ_OPT_STRINGS,  /* struct fmq_strv: a YAML sequence; as text, comma-separated */
  FMQ_OPT_ENUM,     /* an int-sized enum, index into names */
  FMQ_OPT_NODE,     /* a YAML sequence or mapping read by load; not in env */
};

/* A number option accepts 0 ("off", "unlimited") besides [min, max]. */
#define FMQ_OPT_ZERO_OFF 1u

struct loader;
struct fmq_option;

/* Checks a value; msg gets the reason, without any prefix. */
typedef int (*fmq_option_validate_cb)(const char *value, char *msg, size_t msglen);
/* Checks a value and sets *out to the form to store, a new string. */
typedef int (*fmq_option_normalize_cb)(const char *value, char **out, char *msg, size_t msglen);
/* Reads the option's value, whose first event is ev (owned by the caller),
 * into ld->c; on error writes ld->err and returns -1. */
typedef int (*fmq_option_load_cb)(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);

struct fmq_option {
  const char *name; /* dotted path, also the field's path in struct fmq_config */
  enum fmq_option_type type;
  size_t offset;   /* of the field; FMQ_OPT_NODE's load and release know theirs */
  const char *def; /* text as for fmq_config_set; YAML for FMQ_OPT_NODE */
  uint64_t min, max;
  unsigned flags;
  fmq_option_validate_cb validate;       /* FMQ_OPT_STRING, FMQ_OPT_STRINGS' items; optional */
  fmq_option_normalize_cb normalize;     /* FMQ_OPT_STRINGS' items, instead of validate */
  const char *const *names;              /* FMQ_OPT_ENUM, NULL-terminated */
  fmq_option_load_cb load;               /* FMQ_OPT_NODE */
  void (*release)(struct fmq_config *c); /* FMQ_OPT_NODE */
};

static int validate_broker_url(const char *value, char *msg, size_t msglen);
static int validate_client_id(const char *value, char *msg, size_t msglen);
static int check_not_empty(const char *value, char *msg, size_t msglen);
static int check_optional_path(const char *value, char *msg, size_t msglen);
static int check_jwt_algorithm(const char *value, char *msg, size_t msglen);
static int check_cidr(const char *value, char *msg, size_t msglen);
static int normalize_origin(const char *value, char **out, char *msg, size_t msglen);
static int load_listen(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);
static void release_listen(struct fmq_config *c);
static int load_tokens(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);
static void release_tokens(struct fmq_config *c);
static int load_mappings(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);
static void release_mappings(struct fmq_config *c);

static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_format_names[] = {"logfmt", "json", NULL};
static const char *const mqtt_protocol_names[] = {"5", "3.1.1", NULL};
static const char *const auth_mode_names[] = {"none", "token", "jwt", NULL};

/* offsetof, refusing to compile when the field is not of type T. */
#define FIELD(f, T)                                                                                \
  (offsetof(struct fmq_config, f) +                                                                \
   0 * sizeof(char[sizeof(((struct fmq_config *)0)->f) == sizeof(T) ? 1 : -1]))
#define NUMBER(type_, f, def_, min_, max_, flags_)                                                 \
  {                                                                                                \
    .name = #f, .type = type_, .offset = FIELD(f, uint64_t), .def = def_, .min = min_,             \
    .max = max_, .flags = flags_                                                                   \
  }
#define DURATION(f, def, min, max, flags) NUMBER(FMQ_OPT_DURATION, f, def, min, max, flags)
#define SIZE(f, def, min, max) NUMBER(FMQ_OPT_SIZE, f, def, min, max, 0)
#define UINT(f, def, min, max, flags) NUMBER(FMQ_OPT_UINT, f, def, min, max, flags)
#define BOOL(f, def_)                                                                              \
  { .name = #f, .type = FMQ_OPT_BOOL, .offset = FIELD(f, int), .def = def_ }
#define STRING(f, def_, validate_)                                                                 \
  {                                                                                                \
    .name = #f, .type = FMQ_OPT_STRING, .offset = FIELD(f, char *), .def = def_,                   \
    .validate = validate_                                                                          \
  }
#define STRINGS(f, def_, validate_, normalize_)                                                    \
  {                                                                                                \
    .name = #f, .type = FMQ_OPT_STRINGS, .offset = FIELD(f, struct fmq_strv), .def = def_,         \
    .validate = validate_, .normalize = normalize_                                                 \
  }
#define ENUM(f, def_, names_)                                                                      \
  { .name = #f, .type = FMQ_OPT_ENUM, .offset = FIELD(f, int), .def = def_, .names = names_ }
#define NODE(f, def_, load_, release_)                                                             \
  { .name = #f, .type = FMQ_OPT_NODE, .def = def_, .load = load_, .release = release_ }

static const struct fmq_option options[] = {
    NODE(listen, "[{address: \"0.0.0.0:8080\", paths: [\"/mqtt\"]}]", load_listen, release_listen),
    STRING(broker.url, "tcp://127.0.0.1:1883", validate_broker_url),
    STRING(broker.client_id, "ferrymq-%h-%p", validate_client_id),
    STRING(broker.username, "", NULL),
    STRING(broker.password, "", NULL),
    ENUM(broker.protocol, "5", mqtt_protocol_names),
    /* MQTT's keepalive is a 16-bit count of seconds. */
    DURATION(broker.keepalive, "30s", MS_SECOND, 65535 * MS_SECOND, FMQ_OPT_ZERO_OFF),
    /* Paho retries in whole seconds. */
    DURATION(broker.reconnect.min, "1s", MS_SECOND, MS_HOUR, 0),
    DURATION(broker.reconnect.max, "30s", MS_SECOND, 24 * MS_HOUR, 0),
    UINT(broker.offline_buffer, "1000", 0, 1000000, 0),
    /* Mosquitto drops a client whose topics go past about 200 levels, and
     * every WebSocket client shares that one broker connection. */
    UINT(broker.max_topic_levels, "200", 1, 65535, 0),
    STRING(broker.tls.ca, "", NULL),
    STRING(broker.tls.cert, "", NULL),
    STRING(broker.tls.key, "", NULL),
    BOOL(broker.tls.verify, "true"),
    DURATION(websocket.idle_timeout, "60s", 100, 24 * MS_HOUR, FMQ_OPT_ZERO_OFF),
    DURATION(websocket.ping_interval, "20s", 100, 24 * MS_HOUR, FMQ_OPT_ZERO_OFF),
    DURATION(websocket.handshake_timeout, "30s", 100, MS_HOUR, 0),
    DURATION(websocket.close_timeout, "5s", 100, MS_HOUR, 0),
    /* 126: the smallest payload that needs the 16-bit length form. */
    SIZE(websocket.max_message_size, "64KiB", 126, GIB),
    SIZE(websocket.max_header_size, "16KiB", KIB, MIB),
    SIZE(websocket.outbound_queue_limit, "1MiB", KIB, GIB),
    UINT(websocket.max_subscriptions, "100", 1, 1000000, 0),
    STRINGS(websocket.allowed_origins, "", NULL, normalize_origin),
    UINT(limits.max_connections, "100000", 1, 10000000, 0),
    UINT(limits.max_connections_per_ip, "0", 1, 10000000, FMQ_OPT_ZERO_OFF),
    UINT(limits.rate.messages_per_second, "0", 0, 1000000, 0),
    UINT(limits.rate.burst, "0", 0, 1000000, 0),
    UINT(limits.rate.max_refusals, "50", 0, 1000, 0),
    ENUM(auth.mode, "none", auth_mode_names),
    SIZE(auth.max_token_size, "8KiB", 64, MIB),
    NODE(auth.tokens, "[]", load_tokens, release_tokens),
    STRINGS(auth.jwt.algorithms, "HS256", check_jwt_algorithm, NULL),
    STRING(auth.jwt.secret, "", NULL),
    STRING(auth.jwt.public_key_file, "", NULL),
    STRING(auth.jwt.issuer, "", NULL),
    STRING(auth.jwt.audience, "", NULL),
    DURATION(auth.jwt.leeway, "30s", 0, MS_HOUR, 0),
    STRING(auth.jwt.user_claim, "sub", check_not_empty),
    BOOL(auth.jwt.require_exp, "true"),
    STRINGS(auth.jwt.default_subscribe, "", fmq_acl_check_pattern, NULL),
    STRINGS(auth.jwt.default_publish, "", fmq_acl_check_pattern, NULL),
    NODE(mappings, "[]", load_mappings, release_mappings),
    BOOL(http.demo, "false"),
    BOOL(http.health, "true"),
    BOOL(http.metrics, "true"),
    STRING(http.sse_path, "/events", check_optional_path),
    STRING(http.publish_path, "/publish", check_optional_path),
    DURATION(http.publish_timeout, "10s", 100, MS_HOUR, 0),
    STRINGS(http.trusted_proxies, "", check_cidr, NULL),
    ENUM(log.level, "info", log_level_names),
    ENUM(log.format, "logfmt", log_format_names),
    UINT(workers, "0", 0, 1024, 0),
};

struct loader {
  yaml_parser_t parser;
  struct fmq_config *c;
  const char *file;
  FILE *fp; /* NULL when reading a string */
  char *err;
  size_t errlen;
  unsigned long seen[ARRAY_SIZE(options)]; /* line of each option's first value, 0: not yet */
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;

  if (errlen > 0) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static void *field_of(struct fmq_config *c, const struct fmq_option *o) {
  return (char *)c + o->offset;
}

static const struct fmq_option *option_find(const char *name) {
  for (size_t i = 0; i < ARRAY_SIZE(options); i++)
    if (strcmp(options[i].name, name) == 0)
      return &options[i];
  return NULL;
}

/* ---- values ---- */

/* Parses a decimal integer prefix; *end points past it. */
static int parse_digits(const char *text, uint64_t *value, const char **end) {
  uint64_t v = 0;
  const char *p = text;

  if (*p < '0' || *p > '9')
    return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  *value = v;
  *end = p;
  return 0;
}

struct unit {
  const char *name;
  uint64_t factor;
};

static int parse_with_units(const char *text, const struct unit *units, size_t nunits,
                            bool unit_required, uint64_t *out) {
  const char *p;
  uint64_t v;

  if (parse_digits(text, &v, &p) != 0)
    return -1;
  if (*p == '\0') {
    if (unit_required && v != 0)
      return -1;
    *out = v;
    return 0;
  }
  for (size_t i = 0; i < nunits; i++) {
    if (strcmp(p, units[i].name) != 0)
      continue;
    if (v > UINT64_MAX / units[i].factor)
      return -1;
    *out = v * units[i].factor;
    return 0;
  }
  return -1;
}

static const struct unit duration_units[] = {
    {"h", MS_HOUR}, {"m", MS_MINUTE}, {"s", MS_SECOND}, {"ms", 1}};
static const struct unit size_units[] = {{"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB}, {"B", 1}};

int fmq_config_parse_duration(const char *text, uint64_t *ms) {
  return parse_with_units(text, duration_units, ARRAY_SIZE(duration_units), true, ms);
}

int fmq_config_parse_size(const char *text, uint64_t *bytes) {
  return parse_with_units(text, size_units, ARRAY_SIZE(size_units), false, bytes);
}

/* Renders v in the largest unit that divides it: "24h", "100ms", "1KiB". */
static void format_with_units(uint64_t v, const struct unit *units, size_t nunits, char *buf,
                              size_t buflen) {
  for (size_t i = 0; i < nunits; i++) {
    if (v != 0 && v % units[i].factor == 0) {
      snprintf(buf, buflen, "%llu%s", (unsigned long long)(v / units[i].factor), units[i].name);
      return;
    }
  }
  snprintf(buf, buflen, "%llu", (unsigned long long)v);
}

static void format_number(const struct fmq_option *o, uint64_t v, char *buf, size_t buflen) {
  if (o->type == FMQ_OPT_DURATION)
    format_with_units(v, duration_units, ARRAY_SIZE(duration_units), buf, buflen);
  else if (o->type == FMQ_OPT_SIZE) /* bytes as a plain number, without "B" */
    format_with_units(v, size_units, ARRAY_SIZE(size_units) - 1, buf, buflen);
  else
    snprintf(buf, buflen, "%llu", (unsigned long long)v);
}

static int validate_broker_url(const char *value, char *msg, size_t msglen) {
  static const char *const schemes[] = {"tcp://", "mqtt://", "ssl://", "mqtts://"};

  for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
    size_t n = strlen(schemes[i]);
    if (strncmp(value, schemes[i], n) != 0 || value[n] == '\0')
      continue;
    if (i >= 2)
      return fail(msg, msglen, "'%s': TLS to the broker is not supported yet", value);
    return 0;
  }
  return fail(msg, msglen,
              "invalid URL '%s' (use tcp://, mqtt://, ssl:// or mqtts:// and a host, "
              "e.g. tcp://127.0.0.1:1883)",
              value);
}

static int validate_client_id(const char *value, char *msg, size_t msglen) {
  if (value[0] == '\0')
    return fail(msg, msglen, "the client id must not be empty");
  if (strlen(value) > 1024)
    return fail(msg, msglen, "the client id is longer than 1024 bytes");
  return 0;
}

static int check_not_empty(const char *value, char *msg, size_t msglen) {
  return value[0] == '\0' ? fail(msg, msglen, "must not be empty") : 0;
}

static int check_jwt_algorithm(const char *value, char *msg, size_t msglen) {
  if (fmq_jwt_alg_from_name(value) == 0)
    return fail(msg, msglen, "unknown algorithm '%s' (use HS256, HS384, HS512, RS256 or ES256)",
                value);
  return 0;
}

/* An IPv4 or IPv6 address with an optional "/prefix length". */
static int check_cidr(const char *value, char *msg, size_t msglen) {
  const char *slash = strchr(value, '/'), *end;
  size_t n = slash != NULL ? (size_t)(slash - value) : strlen(value);
  bool v6 = memchr(value, ':', n) != NULL;
  char addr[INET6_ADDRSTRLEN];
  unsigned char bin[16];
  uint64_t bits;

  if (n >= sizeof addr)
    goto bad;
  memcpy(addr, value, n);
  addr[n] = '\0';
  if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) != 1)
    goto bad;
  if (slash != NULL && (parse_digits(slash + 1, &bits, &end) != 0 || *end != '\0' ||
                        end - slash > 4 || bits > (v6 ? 128u : 32u)))
    goto bad;
  return 0;

bad:
  return fail(msg, msglen,
              "invalid CIDR '%s' (use an IPv4 or IPv6 address with an optional /prefix length, "
              "e.g. 10.0.0.0/8 or fd00::/8)",
              value);
}

static int normalize_origin(const char *value, char **out, char *msg, size_t msglen) {
  size_t len = strlen(value), cap = len + 8;
  char *buf = malloc(cap);

  if (buf == NULL)
    return fail(msg, msglen, "out of memory");
  if (fmq_origin_normalize(value, len, buf, cap) < 0) {
    free(buf);
    return fail(msg, msglen,
                "invalid origin '%s' (use scheme://host[:port], e.g. https://app.example.com)",
                value);
  }
  *out = buf;
  return 0;
}

static int parse_bool(const char *text, int *value) {
  if (strcmp(text, "true") == 0)
    *value = 1;
  else if (strcmp(text, "false") == 0)
    *value = 0;
  else
    return -1;
  return 0;
}

int fmq_config_check(const struct fmq_config *c, char *err, size_t errlen) {
  const struct fmq_strv *algs = &c->auth.jwt.algorithms;

  if (c->broker.reconnect.max < c->broker.reconnect.min)
    return fail(err, errlen, "configuration: broker.reconnect.max is below broker.reconnect.min");
  /* The client's pong is what keeps a quiet connection from its idle
   * timeout. */
  if (c->websocket.ping_interval != 0 && c->websocket.idle_timeout != 0 &&
      c->websocket.ping_interval >= c->websocket.idle_timeout)
    return fail(err, errlen,
                "configuration: websocket.ping_interval must be below websocket.idle_timeout");
  if (c->limits.rate.burst > 0 && c->limits.rate.messages_per_second == 0)
    return fail(err, errlen,
                "configuration: limits.rate.burst is set but limits.rate.messages_per_second is "
                "0: a burst without a rate does nothing");
  if (c->auth.mode == FMQ_AUTH_TOKEN && c->auth.ntokens == 0)
    return fail(err, errlen, "configuration: auth.mode token needs at least one auth.tokens entry");
  if (c->auth.mode != FMQ_AUTH_JWT)
    return 0;
  if (algs->n == 0)
    return fail(err, errlen, "configuration: auth.mode jwt needs at least one auth.jwt.algorithms");
  for (size_t i = 0; i < algs->n; i++) {
    unsigned alg = fmq_jwt_alg_from_name(algs->v[i]);
    if ((alg & FMQ_JWT_HMAC_ALGS) && c->auth.jwt.secret[0] == '\0')
      return fail(err, errlen,
                  "configuration: auth.jwt.algorithms lists %s, which needs auth.jwt.secret",
                  algs->v[i]);
    if ((alg & FMQ_JWT_KEY_ALGS) && c->auth.jwt.public_key_file[0] == '\0')
      return fail(err, errlen,
                  "configuration: auth.jwt.algorithms lists %s, which needs "
                  "auth.jwt.public_key_file",
                  algs->v[i]);
  }
  return 0;
}

static int set_string(char **field, const char *value, char *msg, size_t msglen) {
  char *s = strdup(value);

  if (s == NULL)
    return fail(msg, msglen, "out of memory");
  free(*field);
  *field = s;
  return 0;
}

/* Appends a copy of s to *v; returns 0 or -1 when out of memory. */
static int strv_push(char ***v, size_t *n, const char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof **v);

  if (nv == NULL)
    return -1;
  *v = nv;
  if ((nv[*n] = strdup(s)) == NULL)
    return -1;
  (*n)++;
  return 0;
}

static void strv_free(struct fmq_strv *v) {
  for (size_t i = 0; i < v->n; i++)
    free(v->v[i]);
  free(v->v);
  v->v = NULL;
  v->n = 0;
}

/* Checks s by rule's validate or normalize and appends it, as stored, to v. */
static int strv_add(struct fmq_strv *v, const struct fmq_option *rule, const char *s, char *msg,
                    size_t msglen) {
  char *norm = NULL;
  int rc;

  if (rule->normalize != NULL ? rule->normalize(s, &norm, msg, msglen) != 0
                              : rule->validate != NULL && rule->validate(s, msg, msglen) != 0)
    return -1;
  rc = strv_push(&v->v, &v->n, norm != NULL ? norm : s);
  free(norm);
  return rc != 0 ? fail(msg, msglen, "out of memory") : 0;
}

/* A comma-separated list ("" is empty) replaces the list of option o; the
 * blanks around each item go ("a, b" is "a" and "b"). */
static int set_strings(struct fmq_config *c, const struct fmq_option *o, const char *text,
                       char *msg, size_t msglen) {
  struct fmq_strv v = {NULL, 0};
  char *copy = strdup(text), *item, *next;

  if (copy == NULL)
    return fail(msg, msglen, "out of memory");
  for (item = text[0] != '\0' ? copy : NULL; item != NULL; item = next) {
    char *end;
    if ((next = strchr(item, ',')) != NULL)
      *next++ = '\0';
    item += strspn(item, " \t");
    for (end = item + strlen(item); end > item && (end[-1] == ' ' || end[-1] == '\t'); end--)
      end[-1] = '\0';
    if (strv_add(&v, o, item, msg, msglen) != 0) {
      strv_free(&v);
      free(copy);
      return -1;
    }
  }
  free(copy);
  strv_free(field_of(c, o));
  memcpy(field_of(c, o), &v, sizeof v);
  return 0;
}

/* Parses text as option o and stores it in c; msg gets the reason, without
 * any source or key prefix. The one place values are converted. */
static int option_set(struct fmq_config *c, const struct fmq_option *o, const char *text, char *msg,
                      size_t msglen) {
  char lo[32], hi[32];
  uint64_t v;

  switch (o->type) {
  case FMQ_OPT_DURATION:
    if (fmq_config_parse_duration(text, &v) != 0)
      return fail(msg, msglen, "invalid duration '%s' (use e.g. 500ms, 30s, 5m, 1h)", text);
    break;
  case FMQ_OPT_SIZE:
    if (fmq_config_parse_size(text, &v) != 0)
      return fail(msg, msglen, "invalid size '%s' (use e.g. 512, 64KiB, 1MiB, 1GiB)", text);
    break;
  case FMQ_OPT_UINT: {
    const char *end;
    if (parse_digits(text, &v, &end) != 0 || *end != '\0')
      return fail(msg, msglen, "invalid number '%s' (use a non-negative integer)", text);
    break;
  }
  case FMQ_OPT_BOOL: {
    int b;
    if (parse_bool(text, &b) != 0)
      return fail(msg, msglen, "invalid value '%s' (use true or false)", text);
    memcpy(field_of(c, o), &b, sizeof b);
    return 0;
  }
  case FMQ_OPT_STRING:
    if (o->validate != NULL && o->validate(text, msg, msglen) != 0)
      return -1;
    return set_string(field_of(c, o), text, msg, msglen);
  case FMQ_OPT_STRINGS:
    return set_strings(c, o, text, msg, msglen);
  case FMQ_OPT_ENUM: {
    char list[128] = "";
    for (int i = 0; o->names[i] != NULL; i++) {
      if (strcmp(text, o->names[i]) == 0) {
        memcpy(field_of(c, o), &i, sizeof i);
        return 0;
      }
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i > 0 ? " | " : "",
               o->names[i]);
    }
    return fail(msg, msglen, "invalid value '%s' (use %s)", text, list);
  }
  default: /* FMQ_OPT_NODE */
    return fail(msg, msglen, "'%s' cannot be set from a single value", o->name);
  }

  if (!(v == 0 && (o->flags & FMQ_OPT_ZERO_OFF)) && (v < o->min || v > o->max)) {
    format_number(o, o->min, lo, sizeof lo);
    format_number(o, o->max, hi, sizeof hi);
    return fail(msg, msglen, "'%s' is out of range: must be %sbetween %s and %s", text,
                (o->flags & FMQ_OPT_ZERO_OFF) ? "0 (off) or " : "", lo, hi);
  }
  memcpy(field_of(c, o), &v, sizeof v);
  return 0;
}

int fmq_config_set(struct fmq_config *c, const char *key, const char *value, const char *source,
                   char *err, size_t errlen) {
  const struct fmq_option *o = option_find(key);
  char msg[FMQ_CONFIG_ERR_MAX];

  if (o == NULL)
    return fail(err, errlen, "%s: unknown key '%s'", source, key);
  if (option_set(c, o, value, msg, sizeof msg) != 0)
    return fail(err, errlen, "%s: %s", source, msg);
  return 0;
}

/* ---- host:port, paths, listeners ---- */

static bool is_host_char(char ch, bool bracketed) {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
    return true;
  if (ch == '.' || ch == '-' || ch == '_')
    return true;
  return bracketed && (ch == ':' || ch == '%');
}

int fmq_config_parse_hostport(const char *text, char *host, size_t hostlen, uint16_t *port) {
  const char *h = text, *colon;
  size_t n;
  uint64_t p;
  const char *end;
  bool bracketed = text[0] == '[';

  if (bracketed) {
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':')
      return -1;
    h = text + 1;
    n = (size_t)(close - h);
    colon = close + 1;
    if (memchr(h, ':', n) == NULL)
      return -1;
  } else {
    colon = strchr(text, ':');
    if (colon == NULL)
      return -1;
    n = (size_t)(colon - h);
  }
  if (n == 0 || n >= hostlen)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (!is_host_char(h[i], bracketed))
      return -1;
  if (parse_digits(colon + 1, &p, &end) != 0 || *end != '\0' || p > 65535 || end - colon > 6)
    return -1;
  memcpy(host, h, n);
  host[n] = '\0';
  *port = (uint16_t)p;
  return 0;
}

static int check_address(const char *address, char *msg, size_t msglen) {
  char host[256];
  uint16_t port;

  if (fmq_config_parse_hostport(address, host, sizeof host, &port) != 0)
    return fail(msg, msglen,
                "invalid address '%s' (use HOST:PORT, e.g. 0.0.0.0:8080 or [::1]:8080)", address);
  return 0;
}

static int check_path(const char *path, char *msg, size_t msglen) {
  if (path[0] != '/')
    return fail(msg, msglen, "invalid path '%s' (must start with '/')", path);
  for (const char *p = path; *p != '\0'; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
      return fail(msg, msglen, "invalid path '%s' (no spaces, control characters, '?' or '#')",
                  path);
  return 0;
}

/* "" (the endpoint is off) or a path as for listen.paths. */
static int check_optional_path(const char *value, char *msg, size_t msglen) {
  return value[0] == '\0' ? 0 : check_path(value, msg, msglen);
}

static void listen_free(struct fmq_listen_config *l, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(l[i].address);
    for (size_t j = 0; j < l[i].npaths; j++)
      free(l[i].paths[j]);
    free(l[i].paths);
  }
  free(l);
}

int fmq_config_set_listen(struct fmq_config *c, const char *address, char *err, size_t errlen) {
  struct fmq_listen_config *l;
  char msg[FMQ_CONFIG_ERR_MAX];

  if (check_address(address, msg, sizeof msg) != 0)
    return fail(err, errlen, "--listen: %s", msg);
  if ((l = calloc(1, sizeof *l)) == NULL || (l->address = strdup(address)) == NULL)
    goto nomem;
  for (size_t i = 0; c->nlisten > 0 && i < c->listen[0].npaths; i++)
    if (strv_push(&l->paths, &l->npaths, c->listen[0].paths[i]) != 0)
      goto nomem;
  listen_free(c->listen, c->nlisten);
  c->listen = l;
  c->nlisten = 1;
  return 0;

nomem:
  if (l != NULL)
    listen_free(l, 1);
  return fail(err, errlen, "--listen: out of memory");
}

int fmq_config_set_path(struct fmq_config *c, const char *path, char *err, size_t errlen) {
  char msg[FMQ_CONFIG_ERR_MAX];

  if (check_path(path, msg, sizeof msg) != 0)
    return fail(err, errlen, "--path: %s", msg);
  for (size_t i = 0; i < c->nlisten; i++) {
    struct fmq_listen_config *l = &c->listen[i];
    char *p = strdup(path);
    char **v = p != NULL ? malloc(sizeof *v) : NULL;
    if (v == NULL) {
      free(p);
      return fail(err, errlen, "--path: out of memory");
    }
    for (size_t j = 0; j < l->npaths; j++)
      free(l->paths[j]);
    free(l->paths);
    v[0] = p;
    l->paths = v;
    l->npaths = 1;
  }
  return 0;
}

/* ---- YAML ---- */

static int load_fail(struct loader *ld, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int load_fail(struct loader *ld, const yaml_mark_t *mark, const char *fmt, ...) {
  char msg[FMQ_CONFIG_ERR_MAX];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return fail(ld->err, ld->errlen, "%s:%lu: %s", ld->file, (unsigned long)mark->line + 1, msg);
}

/* Reader errors (bad encoding, control characters) have a byte offset, not
 * a mark: count the lines up to it. */
static unsigned long line_at(FILE *fp, size_t offset) {
  unsigned long line = 1;
  int ch;

  rewind(fp);
  for (size_t i = 0; i < offset && (ch = getc(fp)) != EOF; i++)
    line += ch == '\n';
  return line;
}

static int next_event(struct loader *ld, yaml_event_t *ev) {
  const yaml_parser_t *p = &ld->parser;
  const char *problem;

  if (yaml_parser_parse(&ld->parser, ev))
    return 0;
  problem = p->problem != NULL ? p->problem : "unknown";
  if (p->error == YAML_MEMORY_ERROR)
    return fail(ld->err, ld->errlen, "%s: out of memory", ld->file);
  if (p->error == YAML_READER_ERROR && ld->fp != NULL)
    return fail(ld->err, ld->errlen, "%s:%lu: syntax error: %s", ld->file,
                line_at(ld->fp, p->problem_offset), problem);
  return load_fail(ld, &p->problem_mark, "syntax error: %s", problem);
}

static const char *node_kind(const yaml_event_t *ev) {
  switch (ev->type) {
  case YAML_MAPPING_START_EVENT:
    return "a mapping";
  case YAML_SEQUENCE_START_EVENT:
    return "a sequence";
  case YAML_ALIAS_EVENT:
    return "an alias";
  default:
    return "a value";
  }
}

static bool is_null(const yaml_event_t *ev) {
  const char *v = (const char *)ev->data.scalar.value;

  return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0);
}

static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[64];

  if (lb >= ARRAY_SIZE(row))
    return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* The candidate closest to name, allowing one edit per three characters of
 * its last component, at most two: "ur" suggests "broker.url", "foo" does
 * not suggest "log". */
static const char *suggest(const char *name, const char *const *candidates, size_t n) {
  const char *best = NULL;
  size_t best_d = SIZE_MAX;

  for (size_t i = 0; i < n; i++) {
    const char *leaf = strrchr(candidates[i], '.');
    size_t len = strlen(leaf != NULL ? leaf + 1 : candidates[i]);
    size_t max = len < 6 ? 1 : 2;
    size_t d = edit_distance(name, candidates[i]);
    if (d <= max && d < best_d) {
      best = candidates[i];
      best_d = d;
    }
  }
  return best;
}

static int unknown_key(struct loader *ld, const yaml_mark_t *mark, const char *name,
                       const char *guess) {
  if (guess != NULL)
    return load_fail(ld, mark, "unknown key '%s' (did you mean '%s'?)", name, guess);
  return load_fail(ld, mark, "unknown key '%s'", name);
}

/* Reads a sequence of strings (first event ev; a null value is an empty
 * list) into out, each checked and stored as strv_add does with rule. On
 * error out may hold some; the caller frees it. */
static int load_strings(struct loader *ld, const char *name, const yaml_event_t *ev,
                        const struct fmq_option *rule, struct fmq_strv *out) {
  char msg[FMQ_CONFIG_ERR_MAX];

  if (is_null(ev))
    return 0;
  if (ev->type != YAML_SEQUENCE_START_EVENT)
    return load_fail(ld, &ev->start_mark, "%s: expected a sequence, got %s", name, node_kind(ev));
  for (;;) {
    yaml_event_t e;
    int rc = 0;
    if (next_event(ld, &e) != 0)
      return -1;
    if (e.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&e);
      return 0;
    }
    if (e.type != YAML_SCALAR_EVENT)
      rc = load_fail(ld, &e.start_mark, "%s: expected a string, got %s", name, node_kind(&e));
    else if (strv_add(out, rule, (const char *)e.data.scalar.value, msg, sizeof msg) != 0)
      rc = load_fail(ld, &e.start_mark, "%s: %s", name, msg);
    yaml_event_delete(&e);
    if (rc != 0)
      return -1;
  }
}

/* The rules for the items of lists that are not options themselves. */
static const struct fmq_option path_rule = {.validate = check_path};
static const struct fmq_option acl_rule = {.validate = fmq_acl_check_pattern};

/* ---- lists of entries: listen, auth.tokens, mappings ---- */

#define ENTRY_KEYS_MAX 8

/* One entry (a YAML mapping) while it is read. */
struct entry {
  char where[64];          /* "mappings[2]", for messages */
  const char *const *keys; /* the keys it may have */
  size_t nkeys;
  yaml_mark_t start; /* of the entry */
  yaml_mark_t key[ENTRY_KEYS_MAX], value[ENTRY_KEYS_MAX];
  unsigned present;           /* bit i: keys[i] was given */
  char *text[ENTRY_KEYS_MAX]; /* values kept for after the entry (mappings) */
};

#define KEY_BIT(i) (1u << (i))

struct list_kind {
  const char *name;        /* "mappings" */
  const char *what;        /* "entries", for messages */
  const char *const *keys; /* keys[0] is required */
  size_t nkeys;
  size_t size; /* of an item */
  /* Reads key's value, whose first event is v, into item. */
  int (*set)(struct loader *ld, struct entry *e, size_t key, const yaml_event_t *v, void *item);
  /* After the entry: checks and completes items[i]; optional. */
  int (*finish)(struct loader *ld, const struct entry *e, void *items, size_t i, void *arg);
};

/* The value of e's key, which must be a single value; NULL after an error. */
static const char *entry_scalar(struct loader *ld, const struct entry *e, size_t key,
                                const yaml_event_t *v) {
  if (v->type == YAML_SCALAR_EVENT)
    return (const char *)v->data.scalar.value;
  load_fail(ld, &v->start_mark, "%s.%s: expected a single value, got %s", e->where, e->keys[key],
            node_kind(v));
  return NULL;
}

static int entry_unknown_key(struct loader *ld, const struct entry *e, const yaml_mark_t *mark,
                             const char *key) {
  const char *guess = suggest(key, e->keys, e->nkeys);
  char name[128], full[128];

  snprintf(name, sizeof name, "%s.%s", e->where, key);
  if (guess == NULL)
    return unknown_key(ld, mark, name, NULL);
  snprintf(full, sizeof full, "%s.%s", e->where, guess);
  return unknown_key(ld, mark, name, full);
}

/* The keys of e after its MAPPING_START: each known and given once. */
static int load_entry(struct loader *ld, struct entry *e, const struct list_kind *kind,
                      void *item) {
  for (;;) {
    yaml_event_t k, v;
    const char *key;
    size_t i;
    int rc;

    if (next_event(ld, &k) != 0)
      return -1;
    if (k.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&k);
      return 0;
    }
    if (k.type != YAML_SCALAR_EVENT) {
      load_fail(ld, &k.start_mark, "%s: keys must be strings, got %s", e->where, node_kind(&k));
      yaml_event_delete(&k);
      return -1;
    }
    key = (const char *)k.data.scalar.value;
    for (i = 0; i < e->nkeys && strcmp(key, e->keys[i]) != 0; i++)
      ;
    if (i == e->nkeys)
      rc = entry_unknown_key(ld, e, &k.start_mark, key);
    else if (e->present & KEY_BIT(i))
      rc = load_fail(ld, &k.start_mark, "duplicate key '%s.%s' (first set on line %lu)", e->where,
                     key, (unsigned long)e->key[i].line + 1);
    else
      rc = next_event(ld, &v);
    if (rc != 0) {
      yaml_event_delete(&k);
      return -1;
    }
    e->present |= KEY_BIT(i);
    e->key[i] = k.start_mark;
    e->value[i] = v.start_mark;
    rc = kind->set(ld, e, i, &v, item);
    yaml_event_delete(&k);
    yaml_event_delete(&v);
    if (rc != 0)
      return -1;
  }
}

/* Reads a sequence of entries (first event ev; a null value is an empty
 * list) into *items, *n of them. On error *items may hold some, each in a
 * state its kind's free handles. */
static int load_items(struct loader *ld, const struct list_kind *kind, const yaml_event_t *ev,
                      void **items, size_t *n, void *arg) {
  if (is_null(ev))
    return 0;
  if (ev->type != YAML_SEQUENCE_START_EVENT)
    return load_fail(ld, &ev->start_mark, "%s: expected a sequence of %s, got %s", kind->name,
                     kind->what, node_kind(ev));
  for (;;) {
    struct entry e = {.keys = kind->keys, .nkeys = kind->nkeys};
    yaml_event_t start;
    void *grown;
    size_t i = *n;
    int rc;

    if (next_event(ld, &start) != 0)
      return -1;
    if (start.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&start);
      return 0;
    }
    e.start = start.start_mark;
    rc = start.type == YAML_MAPPING_START_EVENT
             ? 0
             : load_fail(ld, &e.start, "%s: expected a mapping with '%s', got %s", kind->name,
                         kind->keys[0], node_kind(&start));
    yaml_event_delete(&start);
    if (rc != 0)
      return -1;
    if ((grown = realloc(*items, (*n + 1) * kind->size)) == NULL)
      return load_fail(ld, &e.start, "out of memory");
    *items = grown;
    memset((char *)grown + i * kind->size, 0, kind->size);
    *n = i + 1;
    snprintf(e.where, sizeof e.where, "%s[%zu]", kind->name, i);
    rc = load_entry(ld, &e, kind, (char *)grown + i * kind->size);
    if (rc == 0 && !(e.present & KEY_BIT(0)))
      rc = load_fail(ld, &e.start, "%s: entry has no '%s'", e.where, kind->keys[0]);
    if (rc == 0 && kind->finish != NULL)
      rc = kind->finish(ld, &e, grown, i, arg);
    for (size_t k = 0; k < kind->nkeys; k++)
      free(e.text[k]);
    if (rc != 0)
      return -1;
  }
}

/* ---- listen ---- */

enum { LISTEN_ADDRESS, LISTEN_PATHS, LISTEN_TLS };
static const char *const listen_keys[] = {"address", "paths", "tls"};

static int listen_set(struct loader *ld, struct entry *e, size_t key, const yaml_event_t *v,
                      void *item) {
  struct fmq_listen_config *l = item;
  char msg[FMQ_CONFIG_ERR_MAX], name[96];
  struct fmq_strv paths = {NULL, 0};
  const char *s;
  int rc;

  switch (key) {
  case LISTEN_ADDRESS:
    if ((s = entry_scalar(ld, e, key, v)) == NULL)
      return -1;
    if (check_address(s, msg, sizeof msg) != 0)
      return load_fail(ld, &v->start_mark, "%s.address: %s", e->where, msg);
    if ((l->address = strdup(s)) == NULL)
      return load_fail(ld, &v->start_mark, "out of memory");
    return 0;
  case LISTEN_PATHS:
    snprintf(name, sizeof name, "%s.paths", e->where);
    rc = load_strings(ld, name, v, &path_rule, &paths);
    l->paths = paths.v;
    l->npaths = paths.n;
    if (rc == 0 && l->npaths == 0)
      rc = load_fail(ld, &v->start_mark, "%s: at least one path is required", name);
    return rc;
  default: /* LISTEN_TLS */
    return load_fail(ld, &e->key[key], "%s.tls: TLS is not supported yet", e->where);
  }
}

static int listen_finish(struct loader *ld, const struct entry *e, void *items, size_t i,
                         void *arg) {
  struct fmq_listen_config *l = (struct fmq_listen_config *)items + i;

  (void)arg;
  if (l->npaths == 0 && strv_push(&l->paths, &l->npaths, "/mqtt") != 0)
    return load_fail(ld, &e->start, "out of memory");
  return 0;
}

static const struct list_kind listen_kind = {
    .name = "listen",
    .what = "listeners",
    .keys = listen_keys,
    .nkeys = ARRAY_SIZE(listen_keys),
    .size = sizeof(struct fmq_listen_config),
    .set = listen_set,
    .finish = listen_finish,
};

static int load_listen(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev) {
  void *items = NULL;
  size_t n = 0;
  int rc = load_items(ld, &listen_kind, ev, &items, &n, NULL);

  (void)o;
  if (rc == 0 && n == 0)
    rc = load_fail(ld, &ev->start_mark, "listen: at least one listener is required");
  if (rc != 0) {
    listen_free(items, n);
    return -1;
  }
  listen_free(ld->c->listen, ld->c->nlisten);
  ld->c->listen = items;
  ld->c->nlisten = n;
  return 0;
}

static void release_listen(struct fmq_config *c) {
  listen_free(c->listen, c->nlisten);
  c->listen = NULL;
  c->nlisten = 0;
}

/* ---- auth.tokens ---- */

enum { TOKEN_TOKEN, TOKEN_USER, TOKEN_SUBSCRIBE, TOKEN_PUBLISH };
static const char *const token_keys[] = {"token", "user", "subscribe", "publish"};

static const char sha256_prefix[] = "sha256:";

static void tokens_free(struct fmq_token_config *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(t[i].token);
    free(t[i].user);
    strv_free(&t[i].subscribe);
    strv_free(&t[i].publish);
  }
  free(t);
}

/* "sha256:" and 64 hex digits, stored lower-case; or the token itself.
 * Messages never quote a token. */
static int set_token(struct fmq_token_config *t, const char *s, char *msg, size_t msglen) {
  size_t n = sizeof sha256_prefix - 1;

  if (s[0] == '\0')
    return fail(msg, msglen, "must not be empty");
  if (strncmp(s, sha256_prefix, n) == 0 &&
      (strlen(s + n) != 64 || strspn(s + n, "0123456789abcdefABCDEF") != 64))
    return fail(msg, msglen, "'%s' must be followed by exactly 64 hex digits (the token's SHA-256)",
                sha256_prefix);
  if (set_string(&t->token, s, msg, msglen) != 0)
    return -1;
  if (strncmp(s, sha256_prefix, n) == 0)
    for (char *p = t->token + n; *p != '\0'; p++)
      if (*p >= 'A' && *p <= 'F')
        *p = (char)(*p - 'A' + 'a');
  return 0;
}

static int token_set(struct loader *ld, struct entry *e, size_t key, const yaml_event_t *v,
                     void *item) {
  struct fmq_token_config *t = item;
  char msg[FMQ_CONFIG_ERR_MAX], name[96];
  const char *s;

  snprintf(name, sizeof name, "%s.%s", e->where, e->keys[key]);
  if (key == TOKEN_SUBSCRIBE)
    return load_strings(ld, name, v, &acl_rule, &t->subscribe);
  if (key == TOKEN_PUBLISH)
    return load_strings(ld, name, v, &acl_rule, &t->publish);
  if ((s = entry_scalar(ld, e, key, v)) == NULL)
    return -1;
  if ((key == TOKEN_TOKEN ? set_token(t, s, msg, sizeof msg)
                          : set_string(&t->user, s, msg, sizeof msg)) != 0)
    return load_fail(ld, &v->start_mark, "%s: %s", name, msg);
  return 0;
}

static int token_finish(struct loader *ld, const struct entry *e, void *items, size_t i,
                        void *arg) {
  struct fmq_token_config *tokens = items, *t = &tokens[i];

  (void)arg;
  t->subscribe_any = !(e->present & KEY_BIT(TOKEN_SUBSCRIBE));
  t->publish_any = !(e->present & KEY_BIT(TOKEN_PUBLISH));
  if (t->user == NULL && (t->user = strdup("")) == NULL)
    return load_fail(ld, &e->start, "out of memory");
  for (size_t j = 0; j < i; j++)
    if (strcmp(tokens[j].token, t->token) == 0)
      return load_fail(ld, &e->value[TOKEN_TOKEN], "%s.token: the same token as auth.tokens[%zu]",
                       e->where, j);
  return 0;
}

static const struct list_kind tokens_kind = {
    .name = "auth.tokens",
    .what = "entries",
    .keys = token_keys,
    .nkeys = ARRAY_SIZE(token_keys),
    .size = sizeof(struct fmq_token_config),
    .set = token_set,
    .finish = token_finish,
};

static int load_tokens(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev) {
  void *items = NULL;
  size_t n = 0;

  (void)o;
  if (load_items(ld, &tokens_kind, ev, &items, &n, NULL) != 0) {
    tokens_free(items, n);
    return -1;
  }
  tokens_free(ld->c->auth.tokens, ld->c->auth.ntokens);
  ld->c->auth.tokens = items;
  ld->c->auth.ntokens = n;
  return 0;
}

static void release_tokens(struct fmq_config *c) {
  tokens_free(c->auth.tokens, c->auth.ntokens);
  c->auth.tokens = NULL;
  c->auth.ntokens = 0;
}

/* ---- mappings (protocol-v1 section 6) ---- */

enum {
  MAPPING_TYPE,
  MAPPING_ACTION,
  MAPPING_TOPIC,
  MAPPING_QOS,
  MAPPING_RETAIN,
  MAPPING_DELIVER_TYPE,
  MAPPING_PAYLOAD,
  MAPPING_UNDOES
};
static const char *const mapping_keys[] = {"type",   "action",       "topic",   "qos",
                                           "retain", "deliver_type", "payload", "undoes"};
static const char *const mapping_action_names[] = {"subscribe", "unsubscribe", "publish", NULL};

#define ACTION_BIT(a) (1u << FMQ_MAPPING_##a)
#define ALL_ACTIONS (ACTION_BIT(SUBSCRIBE) | ACTION_BIT(UNSUBSCRIBE) | ACTION_BIT(PUBLISH))

/* The actions each of mapping_keys applies to. */
static const unsigned mapping_key_actions[] = {
    ALL_ACTIONS,         ALL_ACTIONS,
    ALL_ACTIONS,         ACTION_BIT(SUBSCRIBE) | ACTION_BIT(PUBLISH),
    ACTION_BIT(PUBLISH), ACTION_BIT(SUBSCRIBE),
    ACTION_BIT(PUBLISH), ACTION_BIT(UNSUBSCRIBE),
};

_Static_assert(ARRAY_SIZE(mapping_keys) <= ENTRY_KEYS_MAX, "struct entry is too small");
_Static_assert(ARRAY_SIZE(mapping_key_actions) == ARRAY_SIZE(mapping_keys),
               "an action set for each mapping key");

/* Types the client protocol itself gives meaning to, one way or the other. */
static const char *const client_types[] = {"subscribe", "unsubscribe", "publish", "ping"};
static const char *const gateway_types[] = {"subscribed", "unsubscribed", "puback",
                                            "error",      "status",       "pong"};

/* Where each mapping's type and undoes were, for messages about other
 * entries and for undoes, resolved after the whole list. */
struct mapping_marks {
  yaml_mark_t type, undoes;
};

static bool is_one_of(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, list[i]) == 0)
      return true;
  return false;
}

static void mappings_free(struct fmq_mapping_config *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(m[i].type);
    fmq_template_close(&m[i].topic);
    free(m[i].deliver_type);
    free(m[i].undoes);
    free(m[i].payload_field);
  }
  free(m);
}

static int mapping_set(struct loader *ld, struct entry *e, size_t key, const yaml_event_t *v,
                       void *item) {
  const char *s = entry_scalar(ld, e, key, v);

  (void)item;
  if (s == NULL)
    return -1;
  if ((e->text[key] = strdup(s)) == NULL)
    return load_fail(ld, &v->start_mark, "out of memory");
  return 0;
}

/* The topic template must give a valid filter (subscribe, unsubscribe) or
 * topic name (publish) whatever the fields hold. */
static int mapping_topic(struct fmq_mapping_config *m, const char *text, char *msg, size_t msglen) {
  char why[FMQ_CONFIG_ERR_MAX], *topic;
  size_t len;
  int rc = 0;

  if (fmq_template_parse(&m->topic, text, why, sizeof why) != 0)
    return fail(msg, msglen, "invalid template '%s': %s", text, why);
  if (fmq_template_fill(&m->topic, NULL, &topic, why, sizeof why) != 0)
    return fail(msg, msglen, "out of memory");
  len = strlen(topic);
  if (m->action == FMQ_MAPPING_PUBLISH) {
    if (fmq_topic_check_name(topic, len) != 0)
      rc = fail(msg, msglen, "'%s' is not a valid topic name (no '+' or '#' in a publish topic)",
                text);
  } else if (fmq_topic_check_filter(topic, len) != 0) {
    rc = fail(msg, msglen,
              "'%s' is not a valid topic filter ('+' fills a whole level, '#' only the last one)",
              text);
  } else if (fmq_topic_is_shared(topic, len)) {
    rc = fail(msg, msglen, "'%s' is a shared subscription, which a mapping cannot make", text);
  }
  free(topic);
  return rc;
}

/* payload: exactly "{field}". */
static int mapping_payload(struct fmq_mapping_config *m, const char *text, char *msg,
                           size_t msglen) {
  struct fmq_template t;
  char why[FMQ_CONFIG_ERR_MAX];
  int rc;

  if (fmq_template_parse(&t, text, why, sizeof why) != 0)
    return fail(msg, msglen, "invalid template '%s': %s", text, why);
  if (t.nparts == 1 && t.parts[0].field)
    rc = set_string(&m->payload_field, t.parts[0].text, msg, msglen);
  else
    rc = fail(msg, msglen,
              "'%s' is not a single field (use e.g. \"{command}\", or no payload for the whole "
              "message)",
              text);
  fmq_template_close(&t);
  return rc;
}

static int mapping_value(struct fmq_mapping_config *maps, size_t i,
                         const struct mapping_marks *marks, size_t key, const char *text, char *msg,
                         size_t msglen) {
  struct fmq_mapping_config *m = &maps[i];

  switch (key) {
  case MAPPING_TYPE:
    if (text[0] == '\0')
      return fail(msg, msglen, "must not be empty");
    if (is_one_of(text, client_types, ARRAY_SIZE(client_types)))
      return fail(msg, msglen, "'%s' is a message type of the protocol itself", text);
    for (size_t j = 0; j < i; j++)
      if (strcmp(maps[j].type, text) == 0)
        return fail(msg, msglen, "type '%s' is already mapped on line %lu", text,
                    (unsigned long)marks[j].type.line + 1);
    return set_string(&m->type, text, msg, msglen);
  case MAPPING_ACTION:
    for (int a = 0; mapping_action_names[a] != NULL; a++) {
      if (strcmp(text, mapping_action_names[a]) == 0) {
        m->action = (enum fmq_mapping_action)a;
        return 0;
      }
    }
    return fail(msg, msglen, "invalid value '%s' (use subscribe | unsubscribe | publish)", text);
  case MAPPING_TOPIC:
    return mapping_topic(m, text, msg, msglen);
  case MAPPING_QOS:
    if (text[0] < '0' || text[0] > '2' || text[1] != '\0')
      return fail(msg, msglen, "invalid value '%s' (use 0, 1 or 2)", text);
    m->qos = text[0] - '0';
    return 0;
  case MAPPING_RETAIN:
    if (parse_bool(text, &m->retain) != 0)
      return fail(msg, msglen, "invalid value '%s' (use true or false)", text);
    return 0;
  case MAPPING_DELIVER_TYPE:
    if (text[0] == '\0')
      return fail(msg, msglen, "must not be empty");
    if (is_one_of(text, gateway_types, ARRAY_SIZE(gateway_types)))
      return fail(msg, msglen, "'%s' is a message type of the gateway", text);
    return set_string(&m->deliver_type, text, msg, msglen);
  case MAPPING_PAYLOAD:
    return mapping_payload(m, text, msg, msglen);
  default: /* MAPPING_UNDOES, resolved after the whole list */
    return set_string(&m->undoes, text, msg, msglen);
  }
}

/* "only for action publish", "only for actions subscribe and publish". */
static int only_for(struct loader *ld, const struct entry *e, size_t key) {
  char list[64] = "";
  unsigned actions = mapping_key_actions[key];
  int n = 0;

  for (int a = 0; mapping_action_names[a] != NULL; a++)
    if (actions & (1u << a))
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", n++ > 0 ? " and " : "",
               mapping_action_names[a]);
  return load_fail(ld, &e->key[key], "%s.%s: only for action%s %s", e->where, mapping_keys[key],
                   n > 1 ? "s" : "", list);
}

static int mapping_finish(struct loader *ld, const struct entry *e, void *items, size_t i,
                          void *arg) {
  struct mapping_marks **marks = arg, *grown;
  struct fmq_mapping_config *maps = items, *m = &maps[i];
  char msg[FMQ_CONFIG_ERR_MAX];

  if ((grown = realloc(*marks, (i + 1) * sizeof **marks)) == NULL)
    return load_fail(ld, &e->start, "out of memory");
  *marks = grown;
  grown[i].type = e->value[MAPPING_TYPE];
  grown[i].undoes = e->value[MAPPING_UNDOES];
  if (!(e->present & KEY_BIT(MAPPING_ACTION)))
    return load_fail(ld, &e->start, "%s: entry has no 'action'", e->where);
  /* In key order: type, then action, which the other keys depend on. */
  for (size_t k = 0; k < ARRAY_SIZE(mapping_keys); k++) {
    if (!(e->present & KEY_BIT(k)))
      continue;
    if (!(mapping_key_actions[k] & (1u << m->action)))
      return only_for(ld, e, k);
    if (mapping_value(maps, i, grown, k, e->text[k], msg, sizeof msg) != 0)
      return load_fail(ld, &e->value[k], "%s.%s: %s", e->where, mapping_keys[k], msg);
  }
  if (m->action != FMQ_MAPPING_UNSUBSCRIBE && !(e->present & KEY_BIT(MAPPING_TOPIC)))
    return load_fail(ld, &e->start, "%s: entry has no 'topic' (required for action %s)", e->where,
                     mapping_action_names[m->action]);
  if (m->action == FMQ_MAPPING_UNSUBSCRIBE && (e->present & KEY_BIT(MAPPING_TOPIC)) &&
      (e->present & KEY_BIT(MAPPING_UNDOES)))
    return load_fail(ld, &e->key[MAPPING_UNDOES], "%s.undoes: give 'topic' or 'undoes', not both",
                     e->where);
  if (m->action == FMQ_MAPPING_UNSUBSCRIBE &&
      !(e->present & (KEY_BIT(MAPPING_TOPIC) | KEY_BIT(MAPPING_UNDOES))))
    return load_fail(ld, &e->start, "%s: an unsubscribe needs 'topic' or 'undoes'", e->where);
  return 0;
}

static const struct list_kind mappings_kind = {
    .name = "mappings",
    .what = "entries",
    .keys = mapping_keys,
    .nkeys = ARRAY_SIZE(mapping_keys),
    .size = sizeof(struct fmq_mapping_config),
    .set = mapping_set,
    .finish = mapping_finish,
};

static int resolve_undoes(struct loader *ld, struct fmq_mapping_config *maps, size_t n,
                          const struct mapping_marks *marks) {
  for (size_t i = 0; i < n; i++) {
    size_t j;
    if (maps[i].undoes == NULL)
      continue;
    for (j = 0; j < n && strcmp(maps[j].type, maps[i].undoes) != 0; j++)
      ;
    if (j == n)
      return load_fail(ld, &marks[i].undoes, "mappings[%zu].undoes: no mapping has type '%s'", i,
                       maps[i].undoes);
    if (maps[j].action != FMQ_MAPPING_SUBSCRIBE)
      return load_fail(ld, &marks[i].undoes,
                       "mappings[%zu].undoes: '%s' (line %lu) is not a subscribe mapping", i,
                       maps[i].undoes, (unsigned long)marks[j].type.line + 1);
    maps[i].undoes_index = j;
  }
  return 0;
}

static int load_mappings(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev) {
  struct mapping_marks *marks = NULL;
  void *items = NULL;
  size_t n = 0;
  int rc = load_items(ld, &mappings_kind, ev, &items, &n, &marks);

  (void)o;
  if (rc == 0)
    rc = resolve_undoes(ld, items, n, marks);
  free(marks);
  if (rc != 0) {
    mappings_free(items, n);
    return -1;
  }
  mappings_free(ld->c->mappings, ld->c->nmappings);
  ld->c->mappings = items;
  ld->c->nmappings = n;
  return 0;
}

static void release_mappings(struct fmq_config *c) {
  mappings_free(c->mappings, c->nmappings);
  c->mappings = NULL;
  c->nmappings = 0;
}

/* ---- sections and options ---- */

/* "websocket.idle_timeout" is under "websocket" (and under ""). */
static bool is_under(const char *name, const char *prefix) {
  size_t n = strlen(prefix);

  return n == 0 || (strncmp(name, prefix, n) == 0 && name[n] == '.');
}

static bool is_section(const char *path) {
  for (size_t i = 0; i < ARRAY_SIZE(options); i++)
    if (is_under(options[i].name, path))
      return true;
  return false;
}

/* The nearest known key for an unknown `path` in section `prefix`: a sibling
 * within a small edit distance, else a key elsewhere with the same last
 * component (a key put in the wrong section). */
static const char *suggest_key(const char *prefix, const char *path, char *buf, size_t buflen) {
  char names[ARRAY_SIZE(options)][64];
  const char *cand[ARRAY_SIZE(options)];
  size_t n = 0, skip = strlen(prefix) + (prefix[0] != '\0');
  const char *best, *leaf = path + skip;

  for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
    const char *name = options[i].name;
    size_t len;
    if (!is_under(name, prefix))
      continue;
    len = strcspn(name + skip, ".") + skip;
    snprintf(names[n], sizeof names[n], "%.*s", (int)len, name);
    cand[n] = names[n];
    n++;
  }
  if ((best = suggest(path, cand, n)) != NULL) {
    snprintf(buf, buflen, "%s", best);
    return buf;
  }
  for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
    const char *dot = strrchr(options[i].name, '.');
    if (dot != NULL && strcmp(dot + 1, leaf) == 0)
      return options[i].name;
  }
  return NULL;
}

static int load_option(struct loader *ld, const struct fmq_option *o, const yaml_event_t *k,
                       yaml_event_t *v) {
  size_t i = (size_t)(o - options);
  char msg[FMQ_CONFIG_ERR_MAX];

  if (ld->seen[i] != 0)
    return load_fail(ld, &k->start_mark, "duplicate key '%s' (first set on line %lu)", o->name,
                     ld->seen[i]);
  ld->seen[i] = (unsigned long)k->start_mark.line + 1;
  if (o->type == FMQ_OPT_NODE)
    return o->load(ld, o, v);
  if (o->type == FMQ_OPT_STRINGS) {
    struct fmq_strv list = {NULL, 0};
    if (load_strings(ld, o->name, v, o, &list) != 0) {
      strv_free(&list);
      return -1;
    }
    strv_free(field_of(ld->c, o));
    memcpy(field_of(ld->c, o), &list, sizeof list);
    return 0;
  }
  if (v->type != YAML_SCALAR_EVENT)
    return load_fail(ld, &v->start_mark, "%s: expected a single value, got %s", o->name,
                     node_kind(v));
  if (option_set(ld->c, o, (const char *)v->data.scalar.value, msg, sizeof msg) != 0)
    return load_fail(ld, &v->start_mark, "%s: %s", o->name, msg);
  return 0;
}

/* The keys of a mapping in section prefix ("" at the top), after its start. */
static int load_mapping(struct loader *ld, const char *prefix) {
  for (;;) {
    yaml_event_t k, v;
    const struct fmq_option *o;
    const char *key;
    char path[128], guess[64];
    int rc, len;

    if (next_event(ld, &k) != 0)
      return -1;
    if (k.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&k);
      return 0;
    }
    if (k.type != YAML_SCALAR_EVENT) {
      load_fail(ld, &k.start_mark, "keys must be strings, got %s", node_kind(&k));
      yaml_event_delete(&k);
      return -1;
    }
    key = (const char *)k.data.scalar.value;
    len = snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
    o = (size_t)len < sizeof path ? option_find(path) : NULL;
    if (o == NULL && ((size_t)len >= sizeof path || !is_section(path))) {
      unknown_key(ld, &k.start_mark, path, suggest_key(prefix, path, guess, sizeof guess));
      yaml_event_delete(&k);
      return -1;
    }
    if (next_event(ld, &v) != 0) {
      yaml_event_delete(&k);
      return -1;
    }
    if (o != NULL)
      rc = load_option(ld, o, &k, &v);
    else if (v.type == YAML_MAPPING_START_EVENT)
      rc = load_mapping(ld, path);
    else if (is_null(&v)) /* a section with every key commented out */
      rc = 0;
    else
      rc = load_fail(ld, &v.start_mark, "%s: expected a mapping, got %s", path, node_kind(&v));
    yaml_event_delete(&k);
    yaml_event_delete(&v);
    if (rc != 0)
      return -1;
  }
}

static int load_stream(struct loader *ld) {
  int docs = 0;

  for (;;) {
    yaml_event_t ev;
    int rc = 0;

    if (next_event(ld, &ev) != 0)
      return -1;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      yaml_event_delete(&ev);
      return 0;
    case YAML_DOCUMENT_START_EVENT:
      if (docs++ > 0)
        rc = load_fail(ld, &ev.start_mark, "only one YAML document is allowed");
      break;
    case YAML_MAPPING_START_EVENT:
      rc = load_mapping(ld, "");
      break;
    case YAML_SCALAR_EVENT:
    case YAML_SEQUENCE_START_EVENT:
    case YAML_ALIAS_EVENT:
      if (!is_null(&ev))
        rc = load_fail(ld, &ev.start_mark, "expected a mapping of keys, got %s", node_kind(&ev));
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
    if (rc != 0)
      return -1;
  }
}

int fmq_config_load_file(struct fmq_config *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  struct loader ld = {.c = c, .file = path, .fp = f, .err = err, .errlen = errlen};
  int rc;

  if (f == NULL)
    return fail(err, errlen, "%s: %s", path, strerror(errno));
  if (!yaml_parser_initialize(&ld.parser)) {
    fclose(f);
    return fail(err, errlen, "%s: out of memory", path);
  }
  yaml_parser_set_input_file(&ld.parser, f);
  rc = load_stream(&ld);
  yaml_parser_delete(&ld.parser);
  fclose(f);
  return rc;
}

/* Loads a FMQ_OPT_NODE default, a one-node YAML document. */
static int load_default(struct fmq_config *c, const struct fmq_option *o) {
  char err[FMQ_CONFIG_ERR_MAX];
  struct loader ld = {.c = c, .file = o->name, .err = err, .errlen = sizeof err};
  yaml_event_t ev;
  int rc = -1;

  if (!yaml_parser_initialize(&ld.parser))
    return -1;
  yaml_parser_set_input_string(&ld.parser, (const unsigned char *)o->def, strlen(o->def));
  while (next_event(&ld, &ev) == 0) {
    if (ev.type != YAML_STREAM_START_EVENT && ev.type != YAML_DOCUMENT_START_EVENT) {
      rc = o->load(&ld, o, &ev);
      yaml_event_delete(&ev);
      break;
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&ld.parser);
  return rc;
}

int fmq_config_init(struct fmq_config *c) {
  char msg[FMQ_CONFIG_ERR_MAX];

  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
    const struct fmq_option *o = &options[i];
    int rc =
        o->type == FMQ_OPT_NODE ? load_default(c, o) : option_set(c, o, o->def, msg, sizeof msg);
    if (rc != 0) {
      fmq_config_close(c);
      return -1;
    }
  }
  return 0;
}

void fmq_config_close(struct fmq_config *c) {
  for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
    const struct fmq_option *o = &options[i];
    if (o->type == FMQ_OPT_NODE)
      o->release(c);
    else if (o->type == FMQ_OPT_STRING)
      free(*(char **)field_of(c, o));
    else if (o->type == FMQ_OPT_STRINGS)
      strv_free(field_of(c, o));
  }
  memset(c, 0, sizeof *c);
}

/* "websocket.idle_timeout" -> "WEBSOCKET_IDLE_TIMEOUT". */
static void env_form(const char *name, char *buf, size_t buflen) {
  size_t i;

  for (i = 0; name[i] != '\0' && i + 1 < buflen; i++)
    buf[i] = name[i] == '.'                       ? '_'
             : (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 'a' + 'A')
                                                  : name[i];
  buf[i] = '\0';
}

static void warn_unknown_env(const char *name, size_t len, const char *const *candidates, size_t n,
                             fmq_config_warn_fn warn, void *warn_arg) {
  char msg[FMQ_CONFIG_ERR_MAX], wanted[128];
  const char *guess = NULL;

  if (len < sizeof wanted) {
    memcpy(wanted, name, len);
    wanted[len] = '\0';
    guess = suggest(wanted, candidates, n);
  }
  if (guess != NULL)
    snprintf(msg, sizeof msg, "FERRYMQ_%.*s: unknown variable (did you mean FERRYMQ_%s?)", (int)len,
             name, guess);
  else
    snprintf(msg, sizeof msg, "FERRYMQ_%.*s: unknown variable", (int)len, name);
  warn(msg, warn_arg);
}

int fmq_config_apply_env(struct fmq_config *c, char *const *envp, fmq_config_warn_fn warn,
                         void *warn_arg, char *err, size_t errlen) {
  static const char prefix[] = "FERRYMQ_";
  char names[ARRAY_SIZE(options)][64], msg[FMQ_CONFIG_ERR_MAX];
  const char *settable[ARRAY_SIZE(options)];
  size_t nsettable = 0;

  for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
    env_form(options[i].name, names[i], sizeof names[i]);
    if (options[i].type != FMQ_OPT_NODE)
      settable[nsettable++] = names[i];
  }
  for (; *envp != NULL; envp++) {
    const char *var = *envp, *name, *eq;
    const struct fmq_option *o = NULL;
    size_t len;

    if (strncmp(var, prefix, sizeof prefix - 1) != 0 || (eq = strchr(var, '=')) == NULL)
      continue;
    name = var + sizeof prefix - 1;
    len = (size_t)(eq - name);
    for (size_t i = 0; i < ARRAY_SIZE(options) && o == NULL; i++)
      if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
        o = &options[i];
    if (o == NULL) {
      if (warn != NULL)
        warn_unknown_env(name, len, settable, nsettable, warn, warn_arg);
    } else if (o->type == FMQ_OPT_NODE) {
      if (warn != NULL) {
        snprintf(msg, sizeof msg,
                 "%.*s: %s cannot be set from the environment, only in the configuration file",
                 (int)(eq - var), var, o->name);
        warn(msg, warn_arg);
      }
    } else if (option_set(c, o, eq + 1, msg, sizeof msg) != 0) {
      return fail(err, errlen, "%.*s: %s", (int)(eq - var), var, msg);
    }
  }
  return 0;
}

const char *fmq_log_level_name(enum fmq_log_level level) {
  if ((unsigned)level >= ARRAY_SIZE(log_level_names) - 1)
    return "unknown";
  return log_level_names[level];
}
