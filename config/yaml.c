#include "config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int fmq_config_load_fail(struct loader *ld, const yaml_mark_t *mark, const char *fmt, ...) {
  char msg[FMQ_CONFIG_ERR_MAX];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return fmq_config_fail(ld->err, ld->errlen, "%s:%lu: %s", ld->file, (unsigned long)mark->line + 1,
                         msg);
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

int fmq_config_next_event(struct loader *ld, yaml_event_t *ev) {
  const yaml_parser_t *p = &ld->parser;
  const char *problem;

  if (yaml_parser_parse(&ld->parser, ev))
    return 0;
  problem = p->problem != NULL ? p->problem : "unknown";
  if (p->error == YAML_MEMORY_ERROR)
    return fmq_config_fail(ld->err, ld->errlen, "%s: out of memory", ld->file);
  if (p->error == YAML_READER_ERROR && ld->fp != NULL)
    return fmq_config_fail(ld->err, ld->errlen, "%s:%lu: syntax error: %s", ld->file,
                           line_at(ld->fp, p->problem_offset), problem);
  return fmq_config_load_fail(ld, &p->problem_mark, "syntax error: %s", problem);
}

const char *fmq_config_node_kind(const yaml_event_t *ev) {
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

bool fmq_config_is_null(const yaml_event_t *ev) {
  const char *v = (const char *)ev->data.scalar.value;

  return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0);
}

int fmq_config_unknown_key(struct loader *ld, const yaml_mark_t *mark, const char *name,
                           const char *guess) {
  if (guess != NULL)
    return fmq_config_load_fail(ld, mark, "unknown key '%s' (did you mean '%s'?)", name, guess);
  return fmq_config_load_fail(ld, mark, "unknown key '%s'", name);
}

int fmq_config_load_strings(struct loader *ld, const char *name, const yaml_event_t *ev,
                            const struct fmq_option *rule, struct fmq_strv *out) {
  char msg[FMQ_CONFIG_ERR_MAX];

  if (fmq_config_is_null(ev))
    return 0;
  if (ev->type != YAML_SEQUENCE_START_EVENT)
    return fmq_config_load_fail(ld, &ev->start_mark, "%s: expected a sequence, got %s", name,
                                fmq_config_node_kind(ev));
  for (;;) {
    yaml_event_t e;
    int rc = 0;
    if (fmq_config_next_event(ld, &e) != 0)
      return -1;
    if (e.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&e);
      return 0;
    }
    if (e.type != YAML_SCALAR_EVENT)
      rc = fmq_config_load_fail(ld, &e.start_mark, "%s: expected a string, got %s", name,
                                fmq_config_node_kind(&e));
    else if (fmq_config_strv_add(out, rule, (const char *)e.data.scalar.value, msg, sizeof msg) !=
             0)
      rc = fmq_config_load_fail(ld, &e.start_mark, "%s: %s", name, msg);
    yaml_event_delete(&e);
    if (rc != 0)
      return -1;
  }
}

/* ---- sections and options ---- */

/* Reads option o's value, whose first event is v, into ld->c. */
static int load_value(struct loader *ld, const struct fmq_option *o, yaml_event_t *v) {
  char msg[FMQ_CONFIG_ERR_MAX];

  if (o->type == FMQ_OPT_NODE)
    return o->load(ld, o, v);
  if (o->type == FMQ_OPT_STRINGS) {
    struct fmq_strv list = {NULL, 0};
    if (fmq_config_load_strings(ld, o->name, v, o, &list) != 0) {
      fmq_config_strv_free(&list);
      return -1;
    }
    fmq_config_option_set_strv(ld->c, o, &list);
    return 0;
  }
  if (v->type != YAML_SCALAR_EVENT)
    return fmq_config_load_fail(ld, &v->start_mark, "%s: expected a single value, got %s", o->name,
                                fmq_config_node_kind(v));
  if (fmq_config_option_set(ld->c, o, (const char *)v->data.scalar.value, msg, sizeof msg) != 0)
    return fmq_config_load_fail(ld, &v->start_mark, "%s: %s", o->name, msg);
  return 0;
}

static int load_option(struct loader *ld, const struct fmq_option *o, const yaml_event_t *k,
                       yaml_event_t *v) {
  size_t i = (size_t)(o - fmq_config_options);

  if (ld->seen[i] != 0)
    return fmq_config_load_fail(ld, &k->start_mark, "duplicate key '%s' (first set on line %lu)",
                                o->name, ld->seen[i]);
  ld->seen[i] = (unsigned long)k->start_mark.line + 1;
  if (load_value(ld, o, v) != 0)
    return -1;
  fmq_config_mark_set(ld->c, o);
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

    if (fmq_config_next_event(ld, &k) != 0)
      return -1;
    if (k.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&k);
      return 0;
    }
    if (k.type != YAML_SCALAR_EVENT) {
      fmq_config_load_fail(ld, &k.start_mark, "keys must be strings, got %s",
                           fmq_config_node_kind(&k));
      yaml_event_delete(&k);
      return -1;
    }
    key = (const char *)k.data.scalar.value;
    len = snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
    o = (size_t)len < sizeof path ? fmq_config_option_find(path) : NULL;
    if (o == NULL && ((size_t)len >= sizeof path || !fmq_config_is_section(path))) {
      fmq_config_unknown_key(ld, &k.start_mark, path,
                             fmq_config_suggest_key(prefix, path, guess, sizeof guess));
      yaml_event_delete(&k);
      return -1;
    }
    if (fmq_config_next_event(ld, &v) != 0) {
      yaml_event_delete(&k);
      return -1;
    }
    if (o != NULL)
      rc = load_option(ld, o, &k, &v);
    else if (v.type == YAML_MAPPING_START_EVENT)
      rc = load_mapping(ld, path);
    else if (fmq_config_is_null(&v)) /* a section with every key commented out */
      rc = 0;
    else
      rc = fmq_config_load_fail(ld, &v.start_mark, "%s: expected a mapping, got %s", path,
                                fmq_config_node_kind(&v));
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

    if (fmq_config_next_event(ld, &ev) != 0)
      return -1;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      yaml_event_delete(&ev);
      return 0;
    case YAML_DOCUMENT_START_EVENT:
      if (docs++ > 0)
        rc = fmq_config_load_fail(ld, &ev.start_mark, "only one YAML document is allowed");
      break;
    case YAML_MAPPING_START_EVENT:
      rc = load_mapping(ld, "");
      break;
    case YAML_SCALAR_EVENT:
    case YAML_SEQUENCE_START_EVENT:
    case YAML_ALIAS_EVENT:
      if (!fmq_config_is_null(&ev))
        rc = fmq_config_load_fail(ld, &ev.start_mark, "expected a mapping of keys, got %s",
                                  fmq_config_node_kind(&ev));
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
    return fmq_config_fail(err, errlen, "%s: %s", path, strerror(errno));
  if (!yaml_parser_initialize(&ld.parser)) {
    fclose(f);
    return fmq_config_fail(err, errlen, "%s: out of memory", path);
  }
  yaml_parser_set_input_file(&ld.parser, f);
  rc = load_stream(&ld);
  yaml_parser_delete(&ld.parser);
  fclose(f);
  return rc;
}

int fmq_config_load_default(struct fmq_config *c, const struct fmq_option *o) {
  char err[FMQ_CONFIG_ERR_MAX];
  struct loader ld = {.c = c, .file = o->name, .err = err, .errlen = sizeof err};
  yaml_event_t ev;
  int rc = -1;

  if (!yaml_parser_initialize(&ld.parser))
    return -1;
  yaml_parser_set_input_string(&ld.parser, (const unsigned char *)o->def, strlen(o->def));
  while (fmq_config_next_event(&ld, &ev) == 0) {
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
