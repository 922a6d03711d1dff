#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "acl.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct fmqt_cover {
  const char *pattern, *filter;
  int expected;
};

static const struct fmqt_cover cover_cases[] = {
    /* protocol-v1 section 8 */
    {"devices/alice/#", "devices/alice", 1},
    {"devices/alice/#", "devices/alice/x", 1},
    {"devices/alice/#", "devices/alice/+/temp", 1},
    {"devices/alice/#", "devices/alice/#", 1},
    {"devices/alice/#", "devices/bob/x", 0},
    {"devices/alice/#", "devices/+/x", 0},
    {"devices/alice/#", "devices/#", 0},
    {"devices/alice/#", "devices", 0},
    {"sensors/+", "sensors/#", 0},
    {"sensors/+", "sensors/x", 1},
    {"sensors/+", "sensors/+", 1},
    {"sensors/+", "sensors", 0},
    {"sensors/+", "sensors/x/y", 0},
    /* Nothing but '#' covers '#', except "+/#": '#' matches its parent
     * level, but the empty topic is no valid name, so both match every
     * topic not starting with '$'. The same holds for "/#". */
    {"#", "#", 1},
    {"+/#", "#", 1},
    {"+/+/#", "#", 0},
    {"a/+/#", "a/#", 0},
    {"/+/#", "/#", 1},
    {"+/+/#", "/#", 1},
    {"+/+/#", "+/#", 0},
    {"//+/#", "//#", 0},
    {"a/#", "#", 0},
    {"+", "#", 0},
    {"#", "+/#", 1},
    {"+/#", "+/#", 1},
    {"#", "a/b/c", 1},
    {"#", "+/+", 1},
    /* '#' against '+' */
    {"+/#", "+", 1},
    {"+/#", "a", 1},
    {"+/+", "+/#", 0},
    {"+/+/#", "+/+", 1},
    {"a/+", "a/#", 0},
    {"a/#", "a/+", 1},
    {"a/+/#", "a/+/+/+", 1},
    /* the parent level */
    {"a/#", "a", 1},
    {"a/+/#", "a", 0},
    {"a/+", "a", 0},
    {"a/b/#", "a/b", 1},
    {"a/b/#", "a", 0},
    {"/#", "a", 0},
    {"/#", "/a/b", 1},
    /* equal filters, longer and shorter */
    {"a/b", "a/b", 1},
    {"a/+/c", "a/+/c", 1},
    {"a/b", "a/b/c", 0},
    {"a/b/c", "a/b", 0},
    {"a", "a/b", 0},
    {"a/b", "a", 0},
    {"a/b", "a/c", 0},
    {"a/b", "A/b", 0},
    {"a/b", "a/bc", 0},
    {"a/bc", "a/b", 0},
    {"a/b", "a/+", 0},
    {"+/b", "a/b", 1},
    {"+/+", "a/b", 1},
    {"+", "a/b", 0},
    /* empty levels are levels */
    {"a/+/b", "a//b", 1},
    {"a//b", "a//b", 1},
    {"a//b", "a/+/b", 0},
    {"a/b", "a//b", 0},
    {"a/", "a", 0},
    {"a", "a/", 0},
    {"a/+", "a/", 1},
    {"a/#", "a/", 1},
    {"+", "/", 0},
    {"+/+", "/", 1},
    {"/+", "/", 1},
    {"/#", "/", 1},
    {"#", "/", 1},
    {"//", "/", 0},
    /* topics starting with '$' */
    {"#", "$SYS/x", 0},
    {"#", "$SYS/#", 0},
    {"#", "$SYS", 0},
    {"+/x", "$SYS/x", 0},
    {"+/#", "$SYS/x", 0},
    {"+", "$", 0},
    {"$SYS/#", "$SYS/broker/load", 1},
    {"$SYS/#", "$SYS/#", 1},
    {"$SYS/#", "$SYS", 1},
    {"$SYS/+", "$SYS/x", 1},
    {"$SYS/+", "$SYS/#", 0},
    {"$SYS/#", "+/x", 0},
    {"+/x", "+/x", 1},
    {"#", "+/x", 1},
    {"#", "+", 1},
    {"a/#", "a/$SYS", 1},
    {"a/+", "a/$x", 1},
    {"+/$x", "a/$x", 1},
    {"x$/#", "x$/a", 1},
    {"+/#", "x$/a", 1},
    /* names (publishing) */
    {"devices/alice/+/cmd", "devices/alice/lamp/cmd", 1},
    {"devices/alice/+/cmd", "devices/alice/lamp", 0},
    {"devices/alice/+/cmd", "devices/bob/lamp/cmd", 0},
    {"\xc3\xa9/+", "\xc3\xa9/x", 1},
    {"\xc3\xa9/+", "\xc3\xa8/x", 0},
};

static void test_covers_table(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(cover_cases); i++) {
    const struct fmqt_cover *c = &cover_cases[i];
    assert_int_equal(fmq_topic_check_filter(c->pattern, strlen(c->pattern)), 0);
    assert_int_equal(fmq_topic_check_filter(c->filter, strlen(c->filter)), 0);
    if (fmq_acl_covers(c->pattern, c->filter) != c->expected)
      fail_msg("\"%s\" covers \"%s\": expected %d", c->pattern, c->filter, c->expected);
  }
}

/* Every valid filter of 1..3 levels over FILTER_LEVELS and every valid name
 * of 1..4 levels over TOPIC_LEVELS, where "z" is in no filter and so stands
 * for any other level. covers(P, F) must hold exactly when every name F
 * matches, P matches too. */
static const char *const filter_levels[] = {"a", "b", "$s", "", "+", "#"};
static const char *const topic_levels[] = {"a", "b", "$s", "", "z"};

#define MAX_FILTERS 256
#define MAX_TOPICS 800
#define TOPIC_WORDS ((MAX_TOPICS + 63) / 64)

struct fmqt_brute {
  char filters[MAX_FILTERS][12];
  char topics[MAX_TOPICS][16];
  uint64_t matched[MAX_FILTERS][TOPIC_WORDS]; /* by filter, a bit per topic */
  size_t nfilters, ntopics;
};

/* Adds every string of depth levels over levels (n of them) to list (cap
 * entries of size bytes) that check accepts. */
static size_t fmqt_enumerate(const char *const *levels, size_t n, size_t depth, char *list,
                             size_t size, size_t count, size_t cap,
                             int (*check)(const char *, size_t)) {
  size_t total = 1;

  for (size_t d = 0; d < depth; d++)
    total *= n;
  for (size_t k = 0; k < total; k++) {
    char s[32] = "";
    size_t code = k;
    for (size_t d = 0; d < depth; d++, code /= n) {
      if (d > 0)
        strcat(s, "/");
      strcat(s, levels[code % n]);
    }
    if (check(s, strlen(s)) != 0)
      continue;
    assert_true(count < cap && strlen(s) < size);
    strcpy(list + count * size, s);
    count++;
  }
  return count;
}

static int fmqt_covered(const struct fmqt_brute *b, size_t p, size_t f) {
  for (size_t w = 0; w < TOPIC_WORDS; w++) {
    if ((b->matched[f][w] & ~b->matched[p][w]) != 0)
      return 0;
  }
  return 1;
}

static void test_covers_brute_force(void **state) {
  struct fmqt_brute *b = calloc(1, sizeof(*b));
  size_t yes = 0, no = 0, dollar = 0;

  (void)state;
  assert_non_null(b);
  for (size_t depth = 1; depth <= 3; depth++)
    b->nfilters = fmqt_enumerate(filter_levels, ARRAY_LEN(filter_levels), depth, b->filters[0],
                                 sizeof(b->filters[0]), b->nfilters, MAX_FILTERS,
                                 fmq_topic_check_filter);
  for (size_t depth = 1; depth <= 4; depth++)
    b->ntopics = fmqt_enumerate(topic_levels, ARRAY_LEN(topic_levels), depth, b->topics[0],
                                sizeof(b->topics[0]), b->ntopics, MAX_TOPICS,
                                fmq_topic_check_name);
  /* 5 + 5 * 6 + 5 * 5 * 6 filters ('#' only last, "" alone is invalid);
   * 5 + 25 + 125 + 625 names but "". */
  assert_int_equal(b->nfilters, 185);
  assert_int_equal(b->ntopics, 779);

  for (size_t f = 0; f < b->nfilters; f++) {
    for (size_t t = 0; t < b->ntopics; t++) {
      if (fmq_topic_matches(b->filters[f], b->topics[t]))
        b->matched[f][t / 64] |= UINT64_C(1) << (t % 64);
    }
  }
  for (size_t p = 0; p < b->nfilters; p++) {
    for (size_t f = 0; f < b->nfilters; f++) {
      int want = fmqt_covered(b, p, f);
      if (fmq_acl_covers(b->filters[p], b->filters[f]) != want)
        fail_msg("\"%s\" covers \"%s\": expected %d", b->filters[p], b->filters[f], want);
      if (want) {
        yes++;
        dollar += b->filters[f][0] == '$';
      } else {
        no++;
      }
    }
  }
  /* Not vacuous: both answers occur often, '$' filters are covered too. */
  assert_true(yes > 1000);
  assert_true(no > 10000);
  assert_true(dollar > 100);
  free(b);
}

struct fmqt_expand {
  const char *pattern, *user, *client_id, *expected; /* expected NULL: grants nothing */
};

static const struct fmqt_expand expand_cases[] = {
    {"devices/%u/#", "alice", "c1", "devices/alice/#"},
    {"clients/%c/in", "alice", "c1", "clients/c1/in"},
    {"%u/%c", "alice", "c1", "alice/c1"},
    {"%u/%u/%c/%c", "alice", "c1", "alice/alice/c1/c1"},
    {"pre-%u-%c.post/+", "alice", "c1", "pre-alice-c1.post/+"},
    {"%u%c", "alice", "c1", "alicec1"},
    {"a/b", NULL, NULL, "a/b"},
    {"%c/x", NULL, "c1", "c1/x"},
    {"%u/x", "alice", NULL, "alice/x"},
    /* any other '%' is literal */
    {"%", "alice", "c1", "%"},
    {"a/%", "alice", "c1", "a/%"},
    {"%x/%U/%C", "alice", "c1", "%x/%U/%C"},
    {"100%/%%u", "alice", "c1", "100%/%alice"},
    {"%/u", "alice", "c1", "%/u"},
    /* values that would add a level or a wildcard, or are not there */
    {"devices/%u/#", "a/#", "c1", NULL},
    {"devices/%u/#", "+", "c1", NULL},
    {"devices/%u/#", "#", "c1", NULL},
    {"devices/%u/#", "x+y", "c1", NULL},
    {"devices/%u/#", "", "c1", NULL},
    {"devices/%u/#", NULL, "c1", NULL},
    {"devices/%u/#", "a/b", "c1", NULL},
    {"%c", "alice", "/", NULL},
    {"%c", "alice", NULL, NULL},
    {"%u/%c", "alice", "", NULL},
    /* the result must be a valid, non-shared filter */
    {"devices/%u", "\xff", "c1", NULL},
    {"+%u", "alice", "c1", NULL},
    {"a/#/b", "alice", "c1", NULL},
    {"$%u/g/#", "share", "c1", NULL},
    {"$%u/g/#", "x", "c1", "$x/g/#"},
    {"$share/%u/#", "alice", "c1", NULL},
    {"$SYS/%u", "alice", "c1", "$SYS/alice"},
    {"\xc3\xa9/%u", "\xc3\xa9", "c1", "\xc3\xa9/\xc3\xa9"},
};

static void test_expand(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(expand_cases); i++) {
    const struct fmqt_expand *e = &expand_cases[i];
    int nomem = -1;
    char *got = fmq_acl_expand(e->pattern, e->user, e->client_id, &nomem);

    assert_int_equal(nomem, 0);
    if (e->expected == NULL) {
      if (got != NULL)
        fail_msg("\"%s\" with \"%s\": \"%s\", expected nothing", e->pattern,
                 e->user != NULL ? e->user : "(null)", got);
    } else {
      if (got == NULL || strcmp(got, e->expected) != 0)
        fail_msg("\"%s\": \"%s\", expected \"%s\"", e->pattern, got != NULL ? got : "(null)",
                 e->expected);
    }
    free(got);
  }
}

static void test_check_pattern(void **state) {
  static const char *const valid[] = {
      "devices/%u/#", "%c", "%u/%c/+", "a%u", "#", "+", "$SYS/#", "%", "a/%x", "a//b", "+/%c/#",
  };
  char msg[128];

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(valid); i++) {
    if (fmq_acl_check_pattern(valid[i], msg, sizeof(msg)) != 0)
      fail_msg("\"%s\": %s", valid[i], msg);
  }

  assert_int_equal(fmq_acl_check_pattern("devices/#/x", msg, sizeof(msg)), -1);
  assert_string_equal(msg, "'devices/#/x' is not a valid MQTT topic filter");
  assert_int_equal(fmq_acl_check_pattern("", msg, sizeof(msg)), -1);
  assert_string_equal(msg, "'' is not a valid MQTT topic filter");
  /* "%u" is a plain level name: it cannot sit next to a wildcard. */
  assert_int_equal(fmq_acl_check_pattern("devices/+%u", msg, sizeof(msg)), -1);
  assert_string_equal(msg, "'devices/+%u' is not a valid MQTT topic filter");
  assert_int_equal(fmq_acl_check_pattern("%c#", msg, sizeof(msg)), -1);
  assert_int_equal(fmq_acl_check_pattern("a/\xff", msg, sizeof(msg)), -1);
  assert_int_equal(fmq_acl_check_pattern("$share/g/a", msg, sizeof(msg)), -1);
  assert_string_equal(msg, "'$share/g/a' is a shared subscription, which an ACL cannot grant");
  assert_int_equal(fmq_acl_check_pattern("$share/%u/#", msg, sizeof(msg)), -1);
  assert_non_null(strstr(msg, "shared"));
  /* A short buffer truncates the message, never overflows it. */
  assert_int_equal(fmq_acl_check_pattern("a/#/b", msg, 4), -1);
  assert_string_equal(msg, "'a/");
}

static void test_list(void **state) {
  static const char *const patterns[] = {"devices/%u/#", "clients/%c/+", "%u/%c", "public/#"};
  struct fmq_acl_list l;

  (void)state;
  assert_int_equal(fmq_acl_list_init(&l, patterns, ARRAY_LEN(patterns), 0, "alice", "c1"), 0);
  assert_int_equal(l.n, 4);
  assert_int_equal(l.any, 0);
  assert_string_equal(l.patterns[0], "devices/alice/#");
  assert_string_equal(l.patterns[1], "clients/c1/+");
  assert_string_equal(l.patterns[2], "alice/c1");
  assert_string_equal(l.patterns[3], "public/#");
  assert_true(fmq_acl_allows(&l, "devices/alice/+/temp"));
  assert_true(fmq_acl_allows(&l, "devices/alice"));
  assert_true(fmq_acl_allows(&l, "clients/c1/x"));
  assert_true(fmq_acl_allows(&l, "alice/c1"));
  assert_true(fmq_acl_allows(&l, "public/news/today"));
  assert_false(fmq_acl_allows(&l, "devices/bob/x"));
  assert_false(fmq_acl_allows(&l, "devices/+/x"));
  assert_false(fmq_acl_allows(&l, "clients/c1/#"));
  assert_false(fmq_acl_allows(&l, "#"));
  fmq_acl_list_close(&l);
  assert_null(l.patterns);
  assert_int_equal(l.n, 0);

  /* A user that would smuggle levels loses the patterns that name it. */
  assert_int_equal(fmq_acl_list_init(&l, patterns, ARRAY_LEN(patterns), 0, "a/#", "c1"), 0);
  assert_int_equal(l.n, 2);
  assert_string_equal(l.patterns[0], "clients/c1/+");
  assert_string_equal(l.patterns[1], "public/#");
  assert_false(fmq_acl_allows(&l, "devices/a/#"));
  assert_false(fmq_acl_allows(&l, "devices/a/x"));
  assert_true(fmq_acl_allows(&l, "public/x"));
  fmq_acl_list_close(&l);

  /* No client id: only the patterns without %c remain. */
  assert_int_equal(fmq_acl_list_init(&l, patterns, ARRAY_LEN(patterns), 0, "alice", NULL), 0);
  assert_int_equal(l.n, 2);
  assert_false(fmq_acl_allows(&l, "alice/c1"));
  assert_true(fmq_acl_allows(&l, "devices/alice/x"));
  fmq_acl_list_close(&l);

  /* Nothing at all. */
  assert_int_equal(fmq_acl_list_init(&l, NULL, 0, 0, "alice", "c1"), 0);
  assert_int_equal(l.n, 0);
  assert_false(fmq_acl_allows(&l, "a"));
  fmq_acl_list_close(&l);
}

static void test_list_any(void **state) {
  static const char *const patterns[] = {"a/%u"};
  struct fmq_acl acl;

  (void)state;
  assert_int_equal(fmq_acl_list_init(&acl.subscribe, patterns, 1, 1, "alice", "c1"), 0);
  assert_int_equal(fmq_acl_list_init(&acl.publish, NULL, 0, 1, NULL, NULL), 0);
  assert_int_equal(acl.subscribe.any, 1);
  assert_true(fmq_acl_allows(&acl.subscribe, "#"));
  assert_true(fmq_acl_allows(&acl.subscribe, "$SYS/#"));
  assert_true(fmq_acl_allows(&acl.publish, "x/y"));
  fmq_acl_close(&acl);
  assert_int_equal(acl.subscribe.any, 0);
  assert_null(acl.subscribe.patterns);
  assert_int_equal(acl.publish.any, 0);
  assert_false(fmq_acl_allows(&acl.publish, "x/y"));
}

/* Publishing checks a topic name: the pattern must match it. */
static void test_publish(void **state) {
  static const char *const patterns[] = {"devices/%u/+/cmd", "$SYS/%c"};
  struct fmq_acl_list l;

  (void)state;
  assert_int_equal(fmq_acl_list_init(&l, patterns, ARRAY_LEN(patterns), 0, "alice", "c1"), 0);
  assert_true(fmq_acl_allows(&l, "devices/alice/lamp/cmd"));
  assert_true(fmq_acl_allows(&l, "devices/alice//cmd"));
  assert_false(fmq_acl_allows(&l, "devices/alice/lamp"));
  assert_false(fmq_acl_allows(&l, "devices/alice/lamp/cmd/x"));
  assert_false(fmq_acl_allows(&l, "devices/bob/lamp/cmd"));
  assert_true(fmq_acl_allows(&l, "$SYS/c1"));
  assert_false(fmq_acl_allows(&l, "$SYS/c2"));
  fmq_acl_list_close(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_covers_table),
      cmocka_unit_test(test_covers_brute_force),
      cmocka_unit_test(test_expand),
      cmocka_unit_test(test_check_pattern),
      cmocka_unit_test(test_list),
      cmocka_unit_test(test_list_any),
      cmocka_unit_test(test_publish),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
