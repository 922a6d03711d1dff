/* Applies the input as FERRYMQ_* environment variables on top of the
 * defaults. The input is lines, each one variable: a line whose first byte
 * is 0x80 or more names a key of the option table by index (the byte's low
 * 7 bits modulo their number) and the rest of the line is its value; a
 * line starting with '!' is taken as it is ("PATH=/bin", "FERRYMQ_X" with
 * no '='); any other line gets "FERRYMQ_" in front ("WORKERS=4").
 *
 * The result must be what config.h promises, worked out here variable by
 * variable: a variable without the prefix or without '=' is ignored; an
 * unknown one, or a key only the file can set, gives exactly one warning,
 * "FERRYMQ_X: unknown variable" (with "(did you mean FERRYMQ_Y?)" naming a
 * settable key) or "FERRYMQ_X: KEY cannot be set from the environment,
 * only in the configuration file", and never a failure; a known key
 * behaves as fmq_config_set with the variable's name as the source, so the
 * first bad value fails with "FERRYMQ_X: message", exactly the message
 * fmq_config_set gives, and nothing after it is read. A loaded result must
 * pass fmq_config_check or fail it with "configuration: ". Nothing leaks. */
/* White-box: the keys come from the option table itself. */
#include "config_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VARS 64
#define PREFIX "FERRYMQ_"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NKEYS fmq_config_noptions
/* Only the file sets a node (listen, auth.tokens, mappings). */
#define KEY_IS_NODE(k) (fmq_config_options[k].type == FMQ_OPT_NODE)

static char env_names[FMQ_CONFIG_OPTIONS_MAX][64]; /* "websocket.idle_timeout" -> "WEBSOCKET_IDLE_TIMEOUT" */

struct warnings {
  char *v[MAX_VARS];
  size_t n;
};

static void on_warn(const char *message, void *arg) {
  struct warnings *w = arg;

  /* One warning per variable at most. */
  if (w->n == MAX_VARS || (w->v[w->n] = strdup(message)) == NULL)
    abort();
  w->n++;
}

static void warnings_free(struct warnings *w) {
  for (size_t i = 0; i < w->n; i++)
    free(w->v[i]);
  w->n = 0;
}

/* The key whose variable name is name[0..len), or -1. */
static int find_key(const char *name, size_t len) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strlen(env_names[i]) == len && memcmp(env_names[i], name, len) == 0)
      return (int)i;
  return -1;
}

/* The warning for FERRYMQ_ + name[0..len): unknown, or a file-only key k. */
static int warning_ok(const char *got, const char *name, size_t len, int k) {
  char want[FMQ_CONFIG_ERR_MAX];
  const char *guess;
  size_t n;

  if (k >= 0) {
    snprintf(want, sizeof(want),
             PREFIX "%.*s: %s cannot be set from the environment, only in the configuration file",
             (int)len, name, fmq_config_options[k].name);
    return strcmp(got, want) == 0;
  }
  snprintf(want, sizeof(want), PREFIX "%.*s: unknown variable", (int)len, name);
  n = strlen(want);
  if (strcmp(got, want) == 0)
    return 1;
  /* A guess only for names short enough to compare, and always a key the
   * environment can set. */
  if (len >= 128 || strncmp(got, want, n) != 0 ||
      strncmp(got + n, " (did you mean " PREFIX, 15 + PREFIX_LEN) != 0)
    return 0;
  guess = got + n + 15 + PREFIX_LEN;
  n = strlen(guess);
  if (n < 2 || strcmp(guess + n - 2, "?)") != 0 || (k = find_key(guess, n - 2)) < 0 ||
      KEY_IS_NODE(k))
    return 0;
  return 1;
}

static void setup(void) {
  for (size_t i = 0; i < NKEYS; i++) {
    const char *s = fmq_config_options[i].name;
    size_t j;

    for (j = 0; s[j] != '\0'; j++)
      env_names[i][j] = s[j] == '.' ? '_' : s[j] >= 'a' && s[j] <= 'z' ? (char)(s[j] - 32) : s[j];
    env_names[i][j] = '\0';
  }
  /* Each settable key is taken without a warning, each file-only one
   * warned about as such. */
  for (size_t i = 0; i < NKEYS; i++) {
    struct fmq_config c;
    struct warnings w = {{NULL}, 0};
    char var[96], err[FMQ_CONFIG_ERR_MAX];
    char *envp[] = {var, NULL};

    snprintf(var, sizeof(var), PREFIX "%s=", env_names[i]);
    if (fmq_config_init(&c) != 0)
      abort();
    fmq_config_apply_env(&c, envp, on_warn, &w, err, sizeof(err));
    if (w.n != (size_t)KEY_IS_NODE(i) ||
        (w.n == 1 && !warning_ok(w.v[0], env_names[i], strlen(env_names[i]), (int)i))) {
      fprintf(stderr, "fuzz_config_env: %s: not read from the environment as documented\n",
              fmq_config_options[i].name);
      abort();
    }
    warnings_free(&w);
    fmq_config_close(&c);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  char *vars[MAX_VARS + 1], err[FMQ_CONFIG_ERR_MAX], want[FMQ_CONFIG_ERR_MAX];
  const uint8_t *p = data, *end = data + size;
  struct warnings w = {{NULL}, 0};
  struct fmq_config c, ref;
  size_t n = 0, seen = 0;
  int rc, failed = 0;

  if (!ready) {
    setup();
    ready = 1;
  }
  while (n < MAX_VARS && p < end) {
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = (size_t)((nl != NULL ? nl : end) - p), off = 0;
    const char *prefix = PREFIX, *key = "", *eq = "";
    char *v;
    int h;

    if (len > 0 && p[0] >= 0x80) {
      key = env_names[(p[0] & 0x7f) % NKEYS];
      eq = "=";
      off = 1;
    } else if (len > 0 && p[0] == '!') {
      prefix = "";
      off = 1;
    }
    v = malloc(strlen(prefix) + strlen(key) + strlen(eq) + len - off + 1);
    if (v == NULL)
      abort();
    h = sprintf(v, "%s%s%s", prefix, key, eq);
    /* An embedded NUL ends the variable, as it would in environ. */
    memcpy(v + h, p + off, len - off);
    v[(size_t)h + len - off] = '\0';
    vars[n++] = v;
    p += len + 1;
  }
  vars[n] = NULL;

  if (fmq_config_init(&c) != 0 || fmq_config_init(&ref) != 0)
    abort();
  err[0] = '\0';
  rc = fmq_config_apply_env(&c, vars, on_warn, &w, err, sizeof(err));
  if (rc != 0 && rc != -1)
    abort();

  /* What it must have done, variable by variable. */
  for (size_t i = 0; i < n && !failed; i++) {
    const char *var = vars[i], *name = var + PREFIX_LEN, *eq = strchr(var, '=');
    size_t len;
    int k;

    if (strncmp(var, PREFIX, PREFIX_LEN) != 0 || eq == NULL)
      continue;
    len = (size_t)(eq - name);
    k = find_key(name, len);
    if (k < 0 || KEY_IS_NODE(k)) {
      if (seen == w.n || !warning_ok(w.v[seen], name, len, k)) {
        fprintf(stderr, "fuzz_config_env: %.*s: %s%s%s\n",
                (int)(eq - var), var, seen == w.n ? "no warning" : "wrong warning \"",
                seen == w.n ? "" : w.v[seen], seen == w.n ? "" : "\"");
        abort();
      }
      seen++;
      continue;
    }
    char source[80];
    snprintf(source, sizeof(source), "%.*s", (int)(eq - var), var);
    if (fmq_config_set(&ref, fmq_config_options[k].name, eq + 1, source, want, sizeof(want)) != 0) {
      /* "FERRYMQ_X: message", as fmq_config_set says it. */
      size_t slen = strlen(source);
      if (rc != -1 || strcmp(err, want) != 0 || strncmp(err, source, slen) != 0 ||
          strncmp(err + slen, ": ", 2) != 0 || err[slen + 2] == '\0')
        abort();
      failed = 1;
    }
  }
  if (seen != w.n || (rc == -1) != failed)
    abort();
  if (rc == 0) {
    err[0] = '\0';
    if (fmq_config_check(&c, err, sizeof(err)) != 0 &&
        strncmp(err, "configuration: ", 15) != 0)
      abort();
  }

  warnings_free(&w);
  fmq_config_close(&c);
  fmq_config_close(&ref);
  for (size_t i = 0; i < n; i++)
    free(vars[i]);
  return 0;
}
