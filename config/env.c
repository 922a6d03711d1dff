#include "config_internal.h"

#include <stdio.h>
#include <string.h>

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
    guess = fmq_config_suggest(wanted, candidates, n);
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
  char names[FMQ_CONFIG_OPTIONS_MAX][64], msg[FMQ_CONFIG_ERR_MAX];
  const char *settable[FMQ_CONFIG_OPTIONS_MAX];
  size_t nsettable = 0;

  for (size_t i = 0; i < fmq_config_noptions; i++) {
    env_form(fmq_config_options[i].name, names[i], sizeof names[i]);
    if (fmq_config_options[i].type != FMQ_OPT_NODE)
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
    for (size_t i = 0; i < fmq_config_noptions && o == NULL; i++)
      if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
        o = &fmq_config_options[i];
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
    } else if (fmq_config_option_set(c, o, eq + 1, msg, sizeof msg) != 0) {
      return fmq_config_fail(err, errlen, "%.*s: %s", (int)(eq - var), var, msg);
    } else {
      fmq_config_mark_set(c, o);
    }
  }
  return 0;
}
