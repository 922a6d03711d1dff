#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Asserts that text parses into the parts given as alternating literal and
 * field strings: "L:text" or "F:name". */
static void fmqt_parses(const char *text, const char *const *parts, size_t n) {
  struct fmq_template t;
  char msg[128] = "";

  if (fmq_template_parse(&t, text, msg, sizeof(msg)) != 0)
    fail_msg("\"%s\": %s", text, msg);
  assert_int_equal(t.nparts, n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(t.parts[i].field, parts[i][0] == 'F');
    assert_string_equal(t.parts[i].text, parts[i] + 2);
    assert_int_equal(t.parts[i].len, strlen(parts[i] + 2));
  }
  fmq_template_close(&t);
  assert_null(t.parts);
  assert_int_equal(t.nparts, 0);
}

static void test_parse(void **state) {
  static const char *const literal[] = {"L:devices/all/status"};
  static const char *const one[] = {"L:sessions/", "F:sessionId", "L:/events"};
  static const char *const several[] = {"L:a/", "F:x", "L:/", "F:y.z", "L:/", "F:A-b_9"};
  static const char *const adjacent[] = {"F:a", "F:b", "L:-", "F:c"};
  static const char *const whole[] = {"F:id"};
  static const char *const edges[] = {"F:a", "L:/", "F:b"};
  static const char *const dollar[] = {"L:$SYS/%u/+/#"};

  (void)state;
  fmqt_parses("devices/all/status", literal, ARRAY_LEN(literal));
  fmqt_parses("sessions/{sessionId}/events", one, ARRAY_LEN(one));
  fmqt_parses("a/{x}/{y.z}/{A-b_9}", several, ARRAY_LEN(several));
  fmqt_parses("{a}{b}-{c}", adjacent, ARRAY_LEN(adjacent));
  fmqt_parses("{id}", whole, ARRAY_LEN(whole));
  fmqt_parses("{a}/{b}", edges, ARRAY_LEN(edges));
  /* Only braces are special. */
  fmqt_parses("$SYS/%u/+/#", dollar, ARRAY_LEN(dollar));
}

static void test_parse_name_length(void **state) {
  char name[66], text[80], part[80];
  const char *parts[] = {part};
  struct fmq_template t;
  char msg[128];

  (void)state;
  memset(name, 'n', 64);
  name[64] = '\0';
  snprintf(text, sizeof(text), "{%s}", name);
  snprintf(part, sizeof(part), "F:%s", name);
  fmqt_parses(text, parts, 1);

  snprintf(text, sizeof(text), "a/{%sn}", name);
  assert_int_equal(fmq_template_parse(&t, text, msg, sizeof(msg)), -1);
  assert_string_equal(msg, "field name at offset 2 is longer than 64 characters");
  assert_null(t.parts);
  assert_int_equal(t.nparts, 0);
}

struct fmqt_parse_error {
  const char *text, *msg;
};

static void test_parse_errors(void **state) {
  static const struct fmqt_parse_error cases[] = {
      {"", "the template is empty"},
      {"sessions/{sessionId", "'{' at offset 9 is not closed"},
      {"{", "'{' at offset 0 is not closed"},
      {"a/{b/{c}", "'{' at offset 2 is not closed"},
      {"{a}/{b", "'{' at offset 4 is not closed"},
      {"a}", "'}' at offset 1 has no matching '{'"},
      {"}", "'}' at offset 0 has no matching '{'"},
      {"{a}}", "'}' at offset 3 has no matching '{'"},
      {"a/{}", "empty field name at offset 2"},
      {"{}{a}", "empty field name at offset 0"},
      {"{a b}",
       "field name at offset 0 holds a character other than A-Z, a-z, 0-9, '_', '.' and '-'"},
      {"x/{a/b}",
       "field name at offset 2 holds a character other than A-Z, a-z, 0-9, '_', '.' and '-'"},
      {"{a+}", NULL},
      {"{#}", NULL},
      {"{\xc3\xa9}", NULL},
      {"{a\tb}", NULL},
      {"{$a}", NULL},
  };
  char msg[128];

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    struct fmq_template t;

    msg[0] = '\0';
    if (fmq_template_parse(&t, cases[i].text, msg, sizeof(msg)) != -1)
      fail_msg("\"%s\" parsed", cases[i].text);
    assert_null(t.parts);
    assert_int_equal(t.nparts, 0);
    if (cases[i].msg != NULL)
      assert_string_equal(msg, cases[i].msg);
    else
      assert_non_null(strstr(msg, "holds a character other than"));
  }
}

/* Fills text with the JSON object json; expected NULL: FMQ_EFIELD with
 * the message emsg. */
static void fmqt_fills(const char *text, const char *json, const char *expected,
                       const char *emsg) {
  struct fmq_template t;
  json_error_t jerr;
  json_t *obj = json_loads(json, JSON_ALLOW_NUL, &jerr);
  char msg[128] = "", *out = (char *)1;
  int rc;

  if (obj == NULL)
    fail_msg("%s: %s", json, jerr.text);
  assert_int_equal(fmq_template_parse(&t, text, msg, sizeof(msg)), 0);
  rc = fmq_template_fill(&t, obj, &out, msg, sizeof(msg));
  if (expected != NULL) {
    if (rc != 0)
      fail_msg("\"%s\" with %s: %d %s", text, json, rc, msg);
    assert_string_equal(out, expected);
  } else {
    if (rc != FMQ_EFIELD)
      fail_msg("\"%s\" with %s: %d, \"%s\"", text, json, rc, rc == 0 ? out : "");
    assert_null(out);
    assert_string_equal(msg, emsg);
  }
  free(out);
  fmq_template_close(&t);
  json_decref(obj);
}

static void test_fill(void **state) {
  (void)state;
  fmqt_fills("sessions/{sessionId}/events", "{\"sessionId\":\"42\"}", "sessions/42/events", NULL);
  fmqt_fills("sessions/{sessionId}", "{\"sessionId\":42}", "sessions/42", NULL);
  fmqt_fills("{a}", "{\"a\":-7}", "-7", NULL);
  fmqt_fills("{a}", "{\"a\":0}", "0", NULL);
  fmqt_fills("{a}", "{\"a\":9223372036854775807}", "9223372036854775807", NULL);
  fmqt_fills("{a}", "{\"a\":-9223372036854775808}", "-9223372036854775808", NULL);
  /* Reals in the fewest digits that read back the same. */
  fmqt_fills("{a}", "{\"a\":21.3}", "21.3", NULL);
  fmqt_fills("{a}", "{\"a\":0.1}", "0.1", NULL);
  fmqt_fills("{a}", "{\"a\":-1.5}", "-1.5", NULL);
  fmqt_fills("{a}", "{\"a\":1.0}", "1.0", NULL);
  fmqt_fills("{a}", "{\"a\":1e-7}", "1e-7", NULL);
  /* jansson drops the exponent's '+' and leading zeros. */
  fmqt_fills("{a}", "{\"a\":1e20}", "1e20", NULL);
  fmqt_fills("{a}", "{\"a\":-1.5E+300}", "-1.5e300", NULL);
  fmqt_fills("{a}", "{\"a\":0.30000000000000004}", "0.30000000000000004", NULL);
  /* Strings as they are: any UTF-8, spaces, '$', '{'. */
  fmqt_fills("{a}", "{\"a\":\"\\u00e9t\\u00e9 \\u20ac\"}", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac", NULL);
  fmqt_fills("x/{a}", "{\"a\":\"$SYS\"}", "x/$SYS", NULL);
  fmqt_fills("{a}", "{\"a\":\"{b}\"}", "{b}", NULL);
  /* Several fields, adjacent fields, the same field twice, extra fields. */
  fmqt_fills("u/{user}/d/{device}/{n}", "{\"user\":\"alice\",\"device\":\"lamp\",\"n\":3}",
             "u/alice/d/lamp/3", NULL);
  fmqt_fills("{a}{b}-{a}", "{\"a\":\"x\",\"b\":1,\"c\":null}", "x1-x", NULL);
  fmqt_fills("plain/topic", "{}", "plain/topic", NULL);
  fmqt_fills("{type}", "{\"type\":\"subscribeSession\"}", "subscribeSession", NULL);
}

static void test_fill_refusals(void **state) {
  static const char ill[] = "field \"f\" must be a non-empty string or a number";
  static const char bad[] = "field \"f\" must not contain '/', '+', '#' or NUL";

  (void)state;
  fmqt_fills("a/{f}", "{}", NULL, "field \"f\" is missing");
  fmqt_fills("a/{sessionId}", "{\"sessionid\":\"1\"}", NULL, "field \"sessionId\" is missing");
  fmqt_fills("a/{f}", "{\"f\":null}", NULL, ill);
  fmqt_fills("a/{f}", "{\"f\":true}", NULL, ill);
  fmqt_fills("a/{f}", "{\"f\":false}", NULL, ill);
  fmqt_fills("a/{f}", "{\"f\":[]}", NULL, ill);
  fmqt_fills("a/{f}", "{\"f\":[\"x\"]}", NULL, ill);
  fmqt_fills("a/{f}", "{\"f\":{}}", NULL, ill);
  fmqt_fills("a/{f}", "{\"f\":\"\"}", NULL, ill);
  fmqt_fills("a/{f}", "{\"f\":\"a/b\"}", NULL, bad);
  fmqt_fills("a/{f}", "{\"f\":\"/\"}", NULL, bad);
  fmqt_fills("a/{f}", "{\"f\":\"+\"}", NULL, bad);
  fmqt_fills("a/{f}", "{\"f\":\"#\"}", NULL, bad);
  fmqt_fills("a/{f}", "{\"f\":\"x#\"}", NULL, bad);
  fmqt_fills("a/{f}", "{\"f\":\"\\u0000\"}", NULL, bad);
  fmqt_fills("a/{f}", "{\"f\":\"ok\\u0000/\"}", NULL, bad);
  fmqt_fills("a/{f}", "{\"f\":\"ab\\u0000\"}", NULL, bad);
  /* The first unusable field is the one reported. */
  fmqt_fills("{a}/{f}/{g}", "{\"a\":\"x\",\"f\":\"\"}", NULL, ill);
}

/* "ok\0/" is 4 bytes: a check that stopped at the NUL would accept it. */
static void test_fill_nul_length(void **state) {
  struct fmq_template t;
  json_t *obj = json_object();
  char msg[128], *out;

  (void)state;
  assert_int_equal(json_object_set_new(obj, "f", json_stringn("ok\0/", 4)), 0);
  assert_int_equal(fmq_template_parse(&t, "{f}", msg, sizeof(msg)), 0);
  assert_int_equal(fmq_template_fill(&t, obj, &out, msg, sizeof(msg)), FMQ_EFIELD);
  assert_null(out);
  assert_int_equal(json_object_set_new(obj, "f", json_stringn("ok", 2)), 0);
  assert_int_equal(fmq_template_fill(&t, obj, &out, msg, sizeof(msg)), 0);
  assert_string_equal(out, "ok");
  free(out);
  fmq_template_close(&t);
  json_decref(obj);
}

/* Without a message every field is "x": the configuration checks the result. */
static void test_fill_null_object(void **state) {
  static const struct {
    const char *text, *expected;
  } cases[] = {
      {"sessions/{sessionId}/events", "sessions/x/events"},
      {"{a}{b}/{c}", "xx/x"},
      {"{a}", "x"},
      {"no/fields", "no/fields"},
  };
  struct fmq_template t;
  char msg[128], *out;

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    assert_int_equal(fmq_template_parse(&t, cases[i].text, msg, sizeof(msg)), 0);
    assert_int_equal(fmq_template_fill(&t, NULL, &out, msg, sizeof(msg)), 0);
    assert_string_equal(out, cases[i].expected);
    free(out);
    fmq_template_close(&t);
  }
}

/* Long values and many fields grow the output past any first guess. */
static void test_fill_long(void **state) {
  char text[1024], value[4001], expected[48000], msg[128], *out, *e = expected;
  struct fmq_template t;
  json_t *obj;

  (void)state;
  memset(value, 'v', sizeof(value) - 1);
  value[sizeof(value) - 1] = '\0';
  obj = json_pack("{s:s}", "f", value);
  assert_non_null(obj);
  text[0] = '\0';
  for (int i = 0; i < 10; i++) {
    strcat(text, "lit/{f}/");
    e += sprintf(e, "lit/%s/", value);
  }
  assert_int_equal(fmq_template_parse(&t, text, msg, sizeof(msg)), 0);
  assert_int_equal(t.nparts, 21);
  assert_int_equal(fmq_template_fill(&t, obj, &out, msg, sizeof(msg)), 0);
  assert_string_equal(out, expected);
  free(out);
  fmq_template_close(&t);
  json_decref(obj);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_parse_name_length),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_fill),
      cmocka_unit_test(test_fill_refusals),
      cmocka_unit_test(test_fill_nul_length),
      cmocka_unit_test(test_fill_null_object),
      cmocka_unit_test(test_fill_long),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
