/* The input is a template, '\n', and JSON: hostile templates and hostile
 * field values. A template that parses must rebuild its text from its
 * parts, and fill with no object as a plain reference says ("x" for each
 * field). When the JSON is an object (numbers huge or real, strings with
 * NUL, '/', '+', '#', any UTF-8, nested values, null, booleans), the fill
 * must be what a reference worked out here from the values gives: each
 * string as is, each integer in decimal, each real as its shortest JSON
 * text (which must read back as the same number), and a refusal
 * (FMQ_EFIELD, nothing out) naming the first field that is missing, not a
 * non-empty string or number, or holds '/', '+', '#' or NUL, with the
 * reason template.h gives. Each field's value is also taken as a mapped
 * publish's payload, which must give its bytes (a string) or JSON text that
 * reads back as the same value. */
#include "client_proto.h"
#include "error.h"
#include "template.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_special(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    n += s[i] == '/' || s[i] == '+' || s[i] == '#';
  return n;
}

/* text with each "{name}" replaced by "x"; text parsed, so braces pair up. */
static char *reference_fill(const char *text) {
  char *out = malloc(strlen(text) + 1), *o = out;

  if (out == NULL)
    abort();
  for (const char *s = text; *s != '\0'; s++) {
    if (*s == '{') {
      s = strchr(s, '}');
      *o++ = 'x';
    } else {
      *o++ = *s;
    }
  }
  *o = '\0';
  return out;
}

static void check_parts(const struct fmq_template *t, const char *text) {
  size_t off = 0;

  if (t->nparts == 0)
    abort();
  for (size_t i = 0; i < t->nparts; i++) {
    const struct fmq_template_part *p = &t->parts[i];
    if (p->len == 0 || strlen(p->text) != p->len || (i > 0 && !p->field && !t->parts[i - 1].field))
      abort();
    if (p->field) {
      if (p->len > 64 || text[off] != '{' || strncmp(text + off + 1, p->text, p->len) != 0 ||
          text[off + 1 + p->len] != '}')
        abort();
      off += p->len + 2;
    } else {
      if (strncmp(text + off, p->text, p->len) != 0 || strpbrk(p->text, "{}") != NULL)
        abort();
      off += p->len;
    }
  }
  if (text[off] != '\0')
    abort();
}

/* A growing output buffer for the reference fill. */
struct ref_out {
  char *p;
  size_t len;
};

static void ref_append(struct ref_out *o, const char *s, size_t len) {
  char *p = realloc(o->p, o->len + len + 1);

  if (p == NULL)
    abort();
  memcpy(p + o->len, s, len);
  o->len += len;
  p[o->len] = '\0';
  o->p = p;
}

/* The text a field's value v fills in (*owned when allocated), or NULL
 * with *why: the reason of template.h. */
static const char *ref_value(const json_t *v, size_t *len, char *num, size_t numlen,
                             uint8_t **owned, const char **why) {
  const char *s = NULL;

  *owned = NULL;
  *len = 0;
  if (v == NULL) {
    *why = "is missing";
    return NULL;
  }
  if (json_is_string(v)) {
    s = json_string_value(v);
    *len = json_string_length(v);
  } else if (json_is_integer(v)) {
    *len = (size_t)snprintf(num, numlen, "%lld", (long long)json_integer_value(v));
    s = num;
  } else if (json_is_real(v)) {
    json_t *back;
    if ((*owned = fmq_client_json_text(v, len)) == NULL)
      abort();
    s = (const char *)*owned;
    back = json_loadb(s, *len, JSON_DECODE_ANY, NULL);
    if (!json_is_real(back) || json_real_value(back) != json_real_value(v))
      abort();
    json_decref(back);
  }
  if (*len == 0) {
    *why = "must be a non-empty string or a number";
    return NULL;
  }
  for (size_t i = 0; i < *len; i++) {
    if (s[i] == '/' || s[i] == '+' || s[i] == '#' || s[i] == '\0') {
      *why = "must not contain '/', '+', '#' or NUL";
      return NULL;
    }
  }
  return s;
}

/* A mapped publish's payload from v: a string's bytes, any other value's
 * JSON text, which reads back as v. */
static void check_payload(const json_t *v) {
  struct fmq_client_msg m;
  json_t *back;

  memset(&m, 0, sizeof(m));
  if (fmq_client_set_payload(&m, v) != 0 || m.payload == NULL)
    abort();
  if (json_is_string(v)) {
    if (m.payload_len != json_string_length(v) || m.payload_owned != NULL ||
        (m.payload_len > 0 && memcmp(m.payload, json_string_value(v), m.payload_len) != 0))
      abort();
  } else {
    back = json_loadb((const char *)m.payload, m.payload_len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                      NULL);
    if (back == NULL || !json_equal(back, v))
      abort();
    json_decref(back);
  }
  fmq_client_msg_close(&m);
}

/* Fills t with obj and compares with the reference; a fill adds no '/',
 * '+' or '#' to the literal_special of the template's text. */
static void check_fill(const struct fmq_template *t, const json_t *obj, size_t literal_special) {
  struct ref_out want = {NULL, 0};
  const char *bad = NULL, *why = NULL;
  char msg[256], expected_msg[256], *out;
  int rc;

  for (size_t i = 0; i < t->nparts && bad == NULL; i++) {
    const struct fmq_template_part *p = &t->parts[i];
    char num[32];
    uint8_t *owned;
    size_t len;
    const char *s;

    if (!p->field) {
      ref_append(&want, p->text, p->len);
      continue;
    }
    s = ref_value(json_object_get(obj, p->text), &len, num, sizeof(num), &owned, &why);
    if (s == NULL)
      bad = p->text;
    else
      ref_append(&want, s, len);
    free(owned);
    if (json_object_get(obj, p->text) != NULL)
      check_payload(json_object_get(obj, p->text));
  }

  msg[0] = '\0';
  rc = fmq_template_fill(t, obj, &out, msg, sizeof(msg));
  if (bad == NULL) {
    if (rc != 0 || out == NULL || strlen(out) != want.len || memcmp(out, want.p, want.len) != 0 ||
        count_special(out, want.len) != literal_special)
      abort();
    free(out);
  } else {
    snprintf(expected_msg, sizeof(expected_msg), "field \"%s\" %s", bad, why);
    if (rc != FMQ_EFIELD || out != NULL || strcmp(msg, expected_msg) != 0)
      abort();
  }
  free(want.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  size_t tlen = nl != NULL ? (size_t)(nl - data) : size;
  char *text = malloc(tlen + 1), *out, *want, msg[256];
  struct fmq_template t;
  size_t literal_special = 0;

  if (text == NULL)
    abort();
  memcpy(text, data, tlen);
  text[tlen] = '\0';
  msg[0] = '\0';
  if (fmq_template_parse(&t, text, msg, sizeof(msg)) != 0) {
    if (msg[0] == '\0' || t.parts != NULL || t.nparts != 0)
      abort();
    free(text);
    return 0;
  }
  check_parts(&t, text);
  for (size_t i = 0; i < t.nparts; i++) {
    if (!t.parts[i].field)
      literal_special += count_special(t.parts[i].text, t.parts[i].len);
  }

  if (fmq_template_fill(&t, NULL, &out, msg, sizeof(msg)) != 0)
    abort();
  want = reference_fill(text);
  if (strcmp(out, want) != 0)
    abort();
  free(want);
  free(out);

  if (nl != NULL) {
    json_t *obj = json_loadb((const char *)nl + 1, size - tlen - 1, JSON_ALLOW_NUL, NULL);
    if (json_is_object(obj))
      check_fill(&t, obj, literal_special);
    json_decref(obj);
  }
  fmq_template_close(&t);
  free(text);
  return 0;
}
