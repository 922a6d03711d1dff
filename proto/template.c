#include "template.h"

#include "client_proto.h"
#include "error.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE_NAME_MAX 64

static int template_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '-';
}

/* Checks the field name s[0..len) whose '{' is at offset at. */
static int template_check_name(const char *s, size_t len, size_t at, char *msg, size_t msglen) {
  if (len == 0) {
    snprintf(msg, msglen, "empty field name at offset %zu", at);
    return -1;
  }
  if (len > TEMPLATE_NAME_MAX) {
    snprintf(msg, msglen, "field name at offset %zu is longer than %d characters", at,
             TEMPLATE_NAME_MAX);
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    if (!template_name_char(s[i])) {
      snprintf(msg, msglen,
               "field name at offset %zu holds a character other than A-Z, a-z, 0-9, '_', '.' "
               "and '-'",
               at);
      return -1;
    }
  }
  return 0;
}

static int template_add(struct fmq_template *t, const char *s, size_t len, int field) {
  struct fmq_template_part *p = &t->parts[t->nparts];

  if ((p->text = strndup(s, len)) == NULL)
    return -1;
  p->len = len;
  p->field = field;
  t->nparts++;
  return 0;
}

int fmq_template_parse(struct fmq_template *t, const char *text, char *msg, size_t msglen) {
  const char *s = text;
  size_t cap = 1;

  t->parts = NULL;
  t->nparts = 0;
  if (text[0] == '\0') {
    snprintf(msg, msglen, "the template is empty");
    return -1;
  }
  /* Each '{' adds at most a field and the literal after it. */
  for (const char *b = strchr(text, '{'); b != NULL; b = strchr(b + 1, '{'))
    cap += 2;
  if ((t->parts = calloc(cap, sizeof(*t->parts))) == NULL)
    goto nomem;
  while (*s != '\0') {
    size_t lit = strcspn(s, "{}");
    const char *end;

    if (lit > 0 && template_add(t, s, lit, 0) != 0)
      goto nomem;
    s += lit;
    if (*s == '\0')
      break;
    if (*s == '}') {
      snprintf(msg, msglen, "'}' at offset %zu has no matching '{'", (size_t)(s - text));
      goto fail;
    }
    /* A '{' before the '}' means this one was left open. */
    end = strpbrk(s + 1, "{}");
    if (end == NULL || *end == '{') {
      snprintf(msg, msglen, "'{' at offset %zu is not closed", (size_t)(s - text));
      goto fail;
    }
    if (template_check_name(s + 1, (size_t)(end - s - 1), (size_t)(s - text), msg, msglen) != 0)
      goto fail;
    if (template_add(t, s + 1, (size_t)(end - s - 1), 1) != 0)
      goto nomem;
    s = end + 1;
  }
  return 0;

nomem:
  snprintf(msg, msglen, "out of memory");
fail:
  fmq_template_close(t);
  return -1;
}

void fmq_template_close(struct fmq_template *t) {
  for (size_t i = 0; i < t->nparts; i++)
    free(t->parts[i].text);
  free(t->parts);
  t->parts = NULL;
  t->nparts = 0;
}

struct template_out {
  char *p;
  size_t len, cap;
};

static int template_append(struct template_out *o, const char *s, size_t len) {
  if (o->len + len + 1 > o->cap) {
    size_t cap = o->cap * 2 > o->len + len + 1 ? o->cap * 2 : o->len + len + 1;
    char *p = realloc(o->p, cap);
    if (p == NULL)
      return FMQ_ENOMEM;
    o->p = p;
    o->cap = cap;
  }
  memcpy(o->p + o->len, s, len);
  o->len += len;
  o->p[o->len] = '\0';
  return 0;
}

/* A value fills exactly one topic level and adds no wildcard. */
/* Appends the value of obj's field name; msg is set on FMQ_EFIELD only. */
static int template_fill_field(struct template_out *o, const json_t *obj, const char *name,
                               char *msg, size_t msglen) {
  json_t *v = json_object_get(obj, name);
  char num[32];
  const char *s = num;
  uint8_t *real = NULL;
  size_t len;
  int rc;

  if (v == NULL) {
    snprintf(msg, msglen, "field \"%s\" is missing", name);
    return FMQ_EFIELD;
  }
  if (json_is_string(v)) {
    s = json_string_value(v);
    len = json_string_length(v);
  } else if (json_is_integer(v)) {
    len = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  } else if (json_is_real(v)) {
    if ((real = fmq_client_json_text(v, &len)) == NULL)
      return FMQ_ENOMEM;
    s = (const char *)real;
  } else {
    len = 0; /* true, false, null, arrays, objects: refused as "" is */
  }
  if (len == 0) {
    snprintf(msg, msglen, "field \"%s\" must be a non-empty string or a number", name);
    rc = FMQ_EFIELD;
  } else if (fmq_topic_check_level(s, len) != 0) {
    snprintf(msg, msglen, "field \"%s\" must not contain '/', '+', '#' or NUL", name);
    rc = FMQ_EFIELD;
  } else {
    rc = template_append(o, s, len);
  }
  free(real);
  return rc;
}

int fmq_template_fill(const struct fmq_template *t, const json_t *obj, char **out, char *msg,
                      size_t msglen) {
  struct template_out o = {NULL, 0, 0};
  int rc = 0;

  *out = NULL;
  for (size_t i = 0; i < t->nparts && rc == 0; i++) {
    const struct fmq_template_part *p = &t->parts[i];
    if (!p->field)
      rc = template_append(&o, p->text, p->len);
    else if (obj == NULL)
      rc = template_append(&o, "x", 1);
    else
      rc = template_fill_field(&o, obj, p->text, msg, msglen);
    if (rc == FMQ_ENOMEM)
      snprintf(msg, msglen, "out of memory");
  }
  if (rc != 0) {
    free(o.p);
    return rc;
  }
  *out = o.p;
  return 0;
}
