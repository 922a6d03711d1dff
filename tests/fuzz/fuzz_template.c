/* The input is a template, '\n', and JSON. A template that parses must
 * rebuild its text from its parts, and fill with no object as a plain
 * reference says ("x" for each field). When the JSON is an object, a
 * successful fill adds no '/', '+' or '#' beyond the template's own. */
#include "error.h"
#include "template.h"

#include <stdint.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  size_t tlen = nl != NULL ? (size_t)(nl - data) : size;
  char *text = malloc(tlen + 1), *out, *want, msg[256];
  struct fmq_template t;
  size_t literal_special = 0;
  int rc;

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
    if (json_is_object(obj)) {
      msg[0] = '\0';
      rc = fmq_template_fill(&t, obj, &out, msg, sizeof(msg));
      if (rc == 0) {
        if (count_special(out, strlen(out)) != literal_special)
          abort();
        free(out);
      } else if ((rc != FMQ_EFIELD && rc != FMQ_ENOMEM) || out != NULL || msg[0] == '\0') {
        abort();
      }
    }
    json_decref(obj);
  }
  fmq_template_close(&t);
  free(text);
  return 0;
}
