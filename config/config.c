#include "config.h"

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
  FMQ_OPT_STRING,   /* char *, owned */
  FMQ_OPT_ENUM,     /* an int-sized enum, index into names */
  FMQ_OPT_NODE,     /* a YAML sequence or mapping read by load; not in env */
};

/* A number option accepts 0 ("off", "unlimited") besides [min, max]. */
#define FMQ_OPT_ZERO_OFF 1u

struct loader;
struct fmq_option;

typedef int (*fmq_option_validate_cb)(const char *value, char *msg, size_t msglen);
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
  fmq_option_validate_cb validate;       /* FMQ_OPT_STRING, optional */
  const char *const *names;              /* FMQ_OPT_ENUM, NULL-terminated */
  fmq_option_load_cb load;               /* FMQ_OPT_NODE */
  void (*release)(struct fmq_config *c); /* FMQ_OPT_NODE */
};

struct loader {
  yaml_parser_t parser;
  struct fmq_config *c;
  const char *file;
  FILE *fp; /* NULL when reading a string */
  char *err;
  size_t errlen;
  unsigned long seen[64]; /* line of each option's first value, 0: not yet */
};

static int validate_broker_url(const char *value, char *msg, size_t msglen);
static int validate_client_id(const char *value, char *msg, size_t msglen);
static int load_listen(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev);
static void release_listen(struct fmq_config *c);

static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const mqtt_protocol_names[] = {"5", "3.1.1", NULL};

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
#define UINT(f, def, min, max) NUMBER(FMQ_OPT_UINT, f, def, min, max, 0)
#define STRING(f, def_, validate_)                                                                 \
  {                                                                                                \
    .name = #f, .type = FMQ_OPT_STRING, .offset = FIELD(f, char *), .def = def_,                   \
    .validate = validate_                                                                          \
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
    UINT(broker.offline_buffer, "1000", 0, 1000000),
    DURATION(websocket.idle_timeout, "60s", 100, 24 * MS_HOUR, FMQ_OPT_ZERO_OFF),
    DURATION(websocket.ping_interval, "20s", 100, 24 * MS_HOUR, FMQ_OPT_ZERO_OFF),
    DURATION(websocket.handshake_timeout, "30s", 100, MS_HOUR, 0),
    DURATION(websocket.close_timeout, "5s", 100, MS_HOUR, 0),
    /* 126: the smallest payload that needs the 16-bit length form. */
    SIZE(websocket.max_message_size, "64KiB", 126, GIB),
    SIZE(websocket.max_header_size, "16KiB", KIB, MIB),
    SIZE(websocket.outbound_queue_limit, "1MiB", KIB, GIB),
    UINT(limits.max_connections, "100000", 1, 10000000),
    ENUM(log.level, "info", log_level_names),
    UINT(workers, "0", 0, 1024),
};

_Static_assert(ARRAY_SIZE(options) <= ARRAY_SIZE(((struct loader *)0)->seen),
               "loader.seen is too small for the option table");

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

int fmq_config_check(const struct fmq_config *c, char *err, size_t errlen) {
  if (c->broker.reconnect.max < c->broker.reconnect.min)
    return fail(err, errlen, "configuration: broker.reconnect.max is below broker.reconnect.min");
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
  case FMQ_OPT_STRING:
    if (o->validate != NULL && o->validate(text, msg, msglen) != 0)
      return -1;
    return set_string(field_of(c, o), text, msg, msglen);
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

static void listen_free(struct fmq_listen_config *l, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(l[i].address);
    for (size_t j = 0; j < l[i].npaths; j++)
      free(l[i].paths[j]);
    free(l[i].paths);
  }
  free(l);
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

/* Reads a sequence of strings (first event ev) into *v, checking each. */
static int load_strings(struct loader *ld, const char *name, yaml_event_t *ev, char ***v, size_t *n,
                        int (*check)(const char *, char *, size_t)) {
  char msg[FMQ_CONFIG_ERR_MAX];

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
    else if (check((const char *)e.data.scalar.value, msg, sizeof msg) != 0)
      rc = load_fail(ld, &e.start_mark, "%s: %s", name, msg);
    else if (strv_push(v, n, (const char *)e.data.scalar.value) != 0)
      rc = load_fail(ld, &e.start_mark, "out of memory");
    yaml_event_delete(&e);
    if (rc != 0)
      return -1;
  }
}

static const char *const listen_keys[] = {"listen.address", "listen.paths", "listen.tls"};

/* One listener: a mapping whose MAPPING_START was ev. */
static int load_listener(struct loader *ld, const yaml_event_t *ev, struct fmq_listen_config *l) {
  char msg[FMQ_CONFIG_ERR_MAX];
  bool has_paths = false;

  for (;;) {
    yaml_event_t k, v;
    const char *key;
    int rc = 0;

    if (next_event(ld, &k) != 0)
      return -1;
    if (k.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&k);
      break;
    }
    if (k.type != YAML_SCALAR_EVENT) {
      load_fail(ld, &k.start_mark, "listen: keys must be strings, got %s", node_kind(&k));
      yaml_event_delete(&k);
      return -1;
    }
    key = (const char *)k.data.scalar.value;
    if (next_event(ld, &v) != 0) {
      yaml_event_delete(&k);
      return -1;
    }
    if (strcmp(key, "address") == 0) {
      if (v.type != YAML_SCALAR_EVENT)
        rc = load_fail(ld, &v.start_mark, "listen.address: expected a string, got %s",
                       node_kind(&v));
      else if (l->address != NULL)
        rc = load_fail(ld, &k.start_mark, "duplicate key 'listen.address'");
      else if (check_address((const char *)v.data.scalar.value, msg, sizeof msg) != 0)
        rc = load_fail(ld, &v.start_mark, "listen.address: %s", msg);
      else if ((l->address = strdup((const char *)v.data.scalar.value)) == NULL)
        rc = load_fail(ld, &v.start_mark, "out of memory");
    } else if (strcmp(key, "paths") == 0) {
      if (has_paths)
        rc = load_fail(ld, &k.start_mark, "duplicate key 'listen.paths'");
      else if (load_strings(ld, "listen.paths", &v, &l->paths, &l->npaths, check_path) != 0)
        rc = -1;
      else if (l->npaths == 0)
        rc = load_fail(ld, &v.start_mark, "listen.paths: at least one path is required");
      has_paths = true;
    } else if (strcmp(key, "tls") == 0) {
      rc = load_fail(ld, &k.start_mark, "listen.tls: TLS is not supported yet");
    } else {
      char name[128];
      snprintf(name, sizeof name, "listen.%s", key);
      rc =
          unknown_key(ld, &k.start_mark, name, suggest(name, listen_keys, ARRAY_SIZE(listen_keys)));
    }
    yaml_event_delete(&k);
    yaml_event_delete(&v);
    if (rc != 0)
      return -1;
  }
  if (l->address == NULL)
    return load_fail(ld, &ev->start_mark, "listen: entry has no 'address'");
  if (!has_paths && strv_push(&l->paths, &l->npaths, "/mqtt") != 0)
    return load_fail(ld, &ev->start_mark, "out of memory");
  return 0;
}

static int load_listen(struct loader *ld, const struct fmq_option *o, yaml_event_t *ev) {
  struct fmq_listen_config *list = NULL;
  size_t n = 0;

  (void)o;
  if (ev->type != YAML_SEQUENCE_START_EVENT)
    return load_fail(ld, &ev->start_mark, "listen: expected a sequence of listeners, got %s",
                     node_kind(ev));
  for (;;) {
    yaml_event_t e;
    struct fmq_listen_config *nl;
    int rc;

    if (next_event(ld, &e) != 0)
      goto fail;
    if (e.type == YAML_SEQUENCE_END_EVENT) {
      if (n == 0) {
        load_fail(ld, &e.start_mark, "listen: at least one listener is required");
        yaml_event_delete(&e);
        goto fail;
      }
      yaml_event_delete(&e);
      break;
    }
    if (e.type != YAML_MAPPING_START_EVENT) {
      load_fail(ld, &e.start_mark, "listen: expected a mapping with 'address', got %s",
                node_kind(&e));
      yaml_event_delete(&e);
      goto fail;
    }
    if ((nl = realloc(list, (n + 1) * sizeof *list)) == NULL) {
      load_fail(ld, &e.start_mark, "out of memory");
      yaml_event_delete(&e);
      goto fail;
    }
    list = nl;
    memset(&list[n], 0, sizeof list[n]);
    n++;
    rc = load_listener(ld, &e, &list[n - 1]);
    yaml_event_delete(&e);
    if (rc != 0)
      goto fail;
  }
  listen_free(ld->c->listen, ld->c->nlisten);
  ld->c->listen = list;
  ld->c->nlisten = n;
  return 0;

fail:
  listen_free(list, n);
  return -1;
}

static void release_listen(struct fmq_config *c) {
  listen_free(c->listen, c->nlisten);
  c->listen = NULL;
  c->nlisten = 0;
}

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
  }
  memset(c, 0, sizeof *c);
}

/* Does "FERRYMQ_WEBSOCKET_IDLE_TIMEOUT=..." (from after the prefix up to
 * '=') name option `name`? */
static bool env_names(const char *var, const char *name) {
  for (; *name != '\0'; var++, name++) {
    char want = *name == '.'                     ? '_'
                : (*name >= 'a' && *name <= 'z') ? (char)(*name - 'a' + 'A')
                                                 : *name;
    if (*var != want)
      return false;
  }
  return *var == '=';
}

int fmq_config_apply_env(struct fmq_config *c, char *const *envp, char *err, size_t errlen) {
  static const char prefix[] = "FERRYMQ_";
  char msg[FMQ_CONFIG_ERR_MAX];

  for (; *envp != NULL; envp++) {
    const char *var = *envp;
    if (strncmp(var, prefix, sizeof prefix - 1) != 0)
      continue;
    for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
      const struct fmq_option *o = &options[i];
      const char *value;
      if (o->type == FMQ_OPT_NODE || !env_names(var + sizeof prefix - 1, o->name))
        continue;
      value = strchr(var, '=') + 1;
      if (option_set(c, o, value, msg, sizeof msg) != 0)
        return fail(err, errlen, "%.*s: %s", (int)(value - 1 - var), var, msg);
      break;
    }
  }
  return 0;
}

const char *fmq_log_level_name(enum fmq_log_level level) {
  if ((unsigned)level >= ARRAY_SIZE(log_level_names) - 1)
    return "unknown";
  return log_level_names[level];
}
