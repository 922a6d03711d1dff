#include "config_internal.h"

#include "acl.h"
#include "jwt.h"
#include "origin.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_SECOND UINT64_C(1000)
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define KIB UINT64_C(1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

static int validate_broker_url(const char *value, char *msg, size_t msglen);
static int validate_client_id(const char *value, char *msg, size_t msglen);
static int check_not_empty(const char *value, char *msg, size_t msglen);
static int check_optional_path(const char *value, char *msg, size_t msglen);
static int check_jwt_algorithm(const char *value, char *msg, size_t msglen);
static int check_cidr(const char *value, char *msg, size_t msglen);
static int normalize_origin(const char *value, char **out, char *msg, size_t msglen);

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

const struct fmq_option fmq_config_options[] = {
    NODE(listen, "[{address: \"0.0.0.0:8080\", paths: [\"/mqtt\"]}]", fmq_config_load_listen,
         fmq_config_release_listen),
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
    SIZE(broker.publish_window, "1MiB", 4 * KIB, GIB),
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
    UINT(websocket.max_fragments, "1024", 1, 1000000, 0),
    STRINGS(websocket.allowed_origins, "", NULL, normalize_origin),
    UINT(limits.max_connections, "100000", 1, 10000000, 0),
    UINT(limits.max_connections_per_ip, "0", 1, 10000000, FMQ_OPT_ZERO_OFF),
    UINT(limits.rate.messages_per_second, "0", 0, 1000000, 0),
    UINT(limits.rate.burst, "0", 0, 1000000, 0),
    UINT(limits.rate.max_refusals, "50", 0, 1000, 0),
    ENUM(auth.mode, "none", auth_mode_names),
    SIZE(auth.max_token_size, "8KiB", 64, MIB),
    NODE(auth.tokens, "[]", fmq_config_load_tokens, fmq_config_release_tokens),
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
    NODE(mappings, "[]", fmq_config_load_mappings, fmq_config_release_mappings),
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

const size_t fmq_config_noptions = ARRAY_SIZE(fmq_config_options);

_Static_assert(ARRAY_SIZE(fmq_config_options) <= FMQ_CONFIG_OPTIONS_MAX,
               "FMQ_CONFIG_OPTIONS_MAX is too small");

int fmq_config_fail(char *err, size_t errlen, const char *fmt, ...) {
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

const struct fmq_option *fmq_config_option_find(const char *name) {
  for (size_t i = 0; i < ARRAY_SIZE(fmq_config_options); i++)
    if (strcmp(fmq_config_options[i].name, name) == 0)
      return &fmq_config_options[i];
  return NULL;
}

void fmq_config_mark_set(struct fmq_config *c, const struct fmq_option *o) {
  c->set_by_source[o - fmq_config_options] = 1;
}

static bool set_by_source(const struct fmq_config *c, const char *name) {
  const struct fmq_option *o = fmq_config_option_find(name);

  return o != NULL && c->set_by_source[o - fmq_config_options];
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
      return fmq_config_fail(msg, msglen, "'%s': TLS to the broker is not supported yet", value);
    return 0;
  }
  return fmq_config_fail(msg, msglen,
                         "invalid URL '%s' (use tcp://, mqtt://, ssl:// or mqtts:// and a host, "
                         "e.g. tcp://127.0.0.1:1883)",
                         value);
}

static int validate_client_id(const char *value, char *msg, size_t msglen) {
  if (value[0] == '\0')
    return fmq_config_fail(msg, msglen, "the client id must not be empty");
  if (strlen(value) > 1024)
    return fmq_config_fail(msg, msglen, "the client id is longer than 1024 bytes");
  return 0;
}

static int check_not_empty(const char *value, char *msg, size_t msglen) {
  return value[0] == '\0' ? fmq_config_fail(msg, msglen, "must not be empty") : 0;
}

static int check_jwt_algorithm(const char *value, char *msg, size_t msglen) {
  if (fmq_jwt_alg_from_name(value) == 0)
    return fmq_config_fail(
        msg, msglen, "unknown algorithm '%s' (use HS256, HS384, HS512, RS256 or ES256)", value);
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
  return fmq_config_fail(
      msg, msglen,
      "invalid CIDR '%s' (use an IPv4 or IPv6 address with an optional /prefix length, "
      "e.g. 10.0.0.0/8 or fd00::/8)",
      value);
}

static int normalize_origin(const char *value, char **out, char *msg, size_t msglen) {
  size_t len = strlen(value), cap = len + 8;
  char *buf = malloc(cap);

  if (buf == NULL)
    return fmq_config_fail(msg, msglen, "out of memory");
  if (fmq_origin_normalize(value, len, buf, cap) < 0) {
    free(buf);
    return fmq_config_fail(
        msg, msglen, "invalid origin '%s' (use scheme://host[:port], e.g. https://app.example.com)",
        value);
  }
  *out = buf;
  return 0;
}

int fmq_config_parse_bool(const char *text, int *value) {
  if (strcmp(text, "true") == 0)
    *value = 1;
  else if (strcmp(text, "false") == 0)
    *value = 0;
  else
    return -1;
  return 0;
}

/* Values the contract derives from others when no source set them. */
static void complete(struct fmq_config *c) {
  /* "when unset and idle_timeout < 40s: half of idle_timeout": the default
   * 20s would not be below such an idle timeout. */
  if (!set_by_source(c, "websocket.ping_interval") && c->websocket.idle_timeout != 0 &&
      c->websocket.idle_timeout < 40 * MS_SECOND)
    c->websocket.ping_interval = c->websocket.idle_timeout / 2;
}

int fmq_config_check(struct fmq_config *c, char *err, size_t errlen) {
  const struct fmq_strv *algs = &c->auth.jwt.algorithms;

  complete(c);
  if (c->broker.reconnect.max < c->broker.reconnect.min)
    return fmq_config_fail(err, errlen,
                           "configuration: broker.reconnect.max is below broker.reconnect.min");
  /* The client's pong is what keeps a quiet connection from its idle
   * timeout. Only a ping_interval a source set can fail this. */
  if (c->websocket.ping_interval != 0 && c->websocket.idle_timeout != 0 &&
      c->websocket.ping_interval >= c->websocket.idle_timeout)
    return fmq_config_fail(
        err, errlen, "configuration: websocket.ping_interval must be below websocket.idle_timeout");
  if (c->limits.rate.burst > 0 && c->limits.rate.messages_per_second == 0)
    return fmq_config_fail(
        err, errlen,
        "configuration: limits.rate.burst is set but limits.rate.messages_per_second is "
        "0: a burst without a rate does nothing");
  if (c->auth.mode == FMQ_AUTH_TOKEN && c->auth.ntokens == 0)
    return fmq_config_fail(err, errlen,
                           "configuration: auth.mode token needs at least one auth.tokens entry");
  if (c->auth.mode != FMQ_AUTH_JWT)
    return 0;
  if (algs->n == 0)
    return fmq_config_fail(err, errlen,
                           "configuration: auth.mode jwt needs at least one auth.jwt.algorithms");
  for (size_t i = 0; i < algs->n; i++) {
    unsigned alg = fmq_jwt_alg_from_name(algs->v[i]);
    if ((alg & FMQ_JWT_HMAC_ALGS) && c->auth.jwt.secret[0] == '\0')
      return fmq_config_fail(
          err, errlen, "configuration: auth.jwt.algorithms lists %s, which needs auth.jwt.secret",
          algs->v[i]);
    if ((alg & FMQ_JWT_KEY_ALGS) && c->auth.jwt.public_key_file[0] == '\0')
      return fmq_config_fail(err, errlen,
                             "configuration: auth.jwt.algorithms lists %s, which needs "
                             "auth.jwt.public_key_file",
                             algs->v[i]);
  }
  return 0;
}

int fmq_config_set_string(char **field, const char *value, char *msg, size_t msglen) {
  char *s = strdup(value);

  if (s == NULL)
    return fmq_config_fail(msg, msglen, "out of memory");
  free(*field);
  *field = s;
  return 0;
}

int fmq_config_strv_push(char ***v, size_t *n, const char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof **v);

  if (nv == NULL)
    return -1;
  *v = nv;
  if ((nv[*n] = strdup(s)) == NULL)
    return -1;
  (*n)++;
  return 0;
}

void fmq_config_strv_free(struct fmq_strv *v) {
  for (size_t i = 0; i < v->n; i++)
    free(v->v[i]);
  free(v->v);
  v->v = NULL;
  v->n = 0;
}

void fmq_config_option_set_strv(struct fmq_config *c, const struct fmq_option *o,
                                const struct fmq_strv *v) {
  fmq_config_strv_free(field_of(c, o));
  memcpy(field_of(c, o), v, sizeof *v);
}

int fmq_config_strv_add(struct fmq_strv *v, const struct fmq_option *rule, const char *s, char *msg,
                        size_t msglen) {
  char *norm = NULL;
  int rc;

  if (rule->normalize != NULL ? rule->normalize(s, &norm, msg, msglen) != 0
                              : rule->validate != NULL && rule->validate(s, msg, msglen) != 0)
    return -1;
  rc = fmq_config_strv_push(&v->v, &v->n, norm != NULL ? norm : s);
  free(norm);
  return rc != 0 ? fmq_config_fail(msg, msglen, "out of memory") : 0;
}

/* A comma-separated list ("" is empty) replaces the list of option o; the
 * blanks around each item go ("a, b" is "a" and "b"). */
static int set_strings(struct fmq_config *c, const struct fmq_option *o, const char *text,
                       char *msg, size_t msglen) {
  struct fmq_strv v = {NULL, 0};
  char *copy = strdup(text), *item, *next;

  if (copy == NULL)
    return fmq_config_fail(msg, msglen, "out of memory");
  for (item = text[0] != '\0' ? copy : NULL; item != NULL; item = next) {
    char *end;
    if ((next = strchr(item, ',')) != NULL)
      *next++ = '\0';
    item += strspn(item, " \t");
    for (end = item + strlen(item); end > item && (end[-1] == ' ' || end[-1] == '\t'); end--)
      end[-1] = '\0';
    if (fmq_config_strv_add(&v, o, item, msg, msglen) != 0) {
      fmq_config_strv_free(&v);
      free(copy);
      return -1;
    }
  }
  free(copy);
  fmq_config_option_set_strv(c, o, &v);
  return 0;
}

int fmq_config_option_set(struct fmq_config *c, const struct fmq_option *o, const char *text,
                          char *msg, size_t msglen) {
  char lo[32], hi[32];
  uint64_t v;

  switch (o->type) {
  case FMQ_OPT_DURATION:
    if (fmq_config_parse_duration(text, &v) != 0)
      return fmq_config_fail(msg, msglen, "invalid duration '%s' (use e.g. 500ms, 30s, 5m, 1h)",
                             text);
    break;
  case FMQ_OPT_SIZE:
    if (fmq_config_parse_size(text, &v) != 0)
      return fmq_config_fail(msg, msglen, "invalid size '%s' (use e.g. 512, 64KiB, 1MiB, 1GiB)",
                             text);
    break;
  case FMQ_OPT_UINT: {
    const char *end;
    if (parse_digits(text, &v, &end) != 0 || *end != '\0')
      return fmq_config_fail(msg, msglen, "invalid number '%s' (use a non-negative integer)", text);
    break;
  }
  case FMQ_OPT_BOOL: {
    int b;
    if (fmq_config_parse_bool(text, &b) != 0)
      return fmq_config_fail(msg, msglen, "invalid value '%s' (use true or false)", text);
    memcpy(field_of(c, o), &b, sizeof b);
    return 0;
  }
  case FMQ_OPT_STRING:
    if (o->validate != NULL && o->validate(text, msg, msglen) != 0)
      return -1;
    return fmq_config_set_string(field_of(c, o), text, msg, msglen);
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
    return fmq_config_fail(msg, msglen, "invalid value '%s' (use %s)", text, list);
  }
  default: /* FMQ_OPT_NODE */
    return fmq_config_fail(msg, msglen, "'%s' cannot be set from a single value", o->name);
  }

  if (!(v == 0 && (o->flags & FMQ_OPT_ZERO_OFF)) && (v < o->min || v > o->max)) {
    format_number(o, o->min, lo, sizeof lo);
    format_number(o, o->max, hi, sizeof hi);
    return fmq_config_fail(msg, msglen, "'%s' is out of range: must be %sbetween %s and %s", text,
                           (o->flags & FMQ_OPT_ZERO_OFF) ? "0 (off) or " : "", lo, hi);
  }
  memcpy(field_of(c, o), &v, sizeof v);
  return 0;
}

int fmq_config_set(struct fmq_config *c, const char *key, const char *value, const char *source,
                   char *err, size_t errlen) {
  const struct fmq_option *o = fmq_config_option_find(key);
  char msg[FMQ_CONFIG_ERR_MAX];

  if (o == NULL)
    return fmq_config_fail(err, errlen, "%s: unknown key '%s'", source, key);
  if (fmq_config_option_set(c, o, value, msg, sizeof msg) != 0)
    return fmq_config_fail(err, errlen, "%s: %s", source, msg);
  fmq_config_mark_set(c, o);
  return 0;
}

/* ---- host:port, paths ---- */

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

int fmq_config_check_path(const char *path, char *msg, size_t msglen) {
  if (path[0] != '/')
    return fmq_config_fail(msg, msglen, "invalid path '%s' (must start with '/')", path);
  for (const char *p = path; *p != '\0'; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
      return fmq_config_fail(msg, msglen,
                             "invalid path '%s' (no spaces, control characters, '?' or '#')", path);
  return 0;
}

/* "" (the endpoint is off) or a path as for listen.paths. */
static int check_optional_path(const char *value, char *msg, size_t msglen) {
  return value[0] == '\0' ? 0 : fmq_config_check_path(value, msg, msglen);
}

int fmq_config_init(struct fmq_config *c) {
  char msg[FMQ_CONFIG_ERR_MAX];

  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < ARRAY_SIZE(fmq_config_options); i++) {
    const struct fmq_option *o = &fmq_config_options[i];
    int rc = o->type == FMQ_OPT_NODE ? fmq_config_load_default(c, o)
                                     : fmq_config_option_set(c, o, o->def, msg, sizeof msg);
    if (rc != 0) {
      fmq_config_close(c);
      return -1;
    }
  }
  return 0;
}

void fmq_config_close(struct fmq_config *c) {
  for (size_t i = 0; i < ARRAY_SIZE(fmq_config_options); i++) {
    const struct fmq_option *o = &fmq_config_options[i];
    if (o->type == FMQ_OPT_NODE)
      o->release(c);
    else if (o->type == FMQ_OPT_STRING)
      free(*(char **)field_of(c, o));
    else if (o->type == FMQ_OPT_STRINGS)
      fmq_config_strv_free(field_of(c, o));
  }
  memset(c, 0, sizeof *c);
}

const char *fmq_log_level_name(enum fmq_log_level level) {
  if ((unsigned)level >= ARRAY_SIZE(log_level_names) - 1)
    return "unknown";
  return log_level_names[level];
}
