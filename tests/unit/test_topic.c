#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A string with explicit length, so a NUL inside can be tested. */
struct fmqt_str {
  const char *s;
  size_t len;
};
#define S(lit) {lit, sizeof(lit) - 1}

static void test_check_valid(void **state) {
  /* Valid as both names and filters. */
  static const struct fmqt_str both[] = {
      S("a"), S("a/b"), S("/"), S("//"), S("a//b"), S("/a"), S("a/"), S(" "), S("a b/c d"),
      S("$SYS/broker/load"), S("$"), S("sport/tennis/player1"), S("\xc3\xa9t\xc3\xa9/\xe2\x82\xac"),
      S("\xf0\x9f\x98\x80"), S("a$/b"), S("*"), S("\x01"), S("\x7f"),
  };
  static const struct fmqt_str filters[] = {
      S("+"), S("#"), S("+/+"), S("a/+/b"), S("a/#"), S("+/#"), S("/#"), S("/+"), S("+/"),
      S("a/+/"), S("//#"), S("$SYS/#"), S("+/+/#"), S("+//+"), S("+/a/#"),
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(both); i++) {
    assert_int_equal(fmq_topic_check_name(both[i].s, both[i].len), 0);
    assert_int_equal(fmq_topic_check_filter(both[i].s, both[i].len), 0);
  }
  for (size_t i = 0; i < ARRAY_LEN(filters); i++) {
    assert_int_equal(fmq_topic_check_filter(filters[i].s, filters[i].len), 0);
    assert_int_equal(fmq_topic_check_name(filters[i].s, filters[i].len), FMQ_ETOPIC);
  }
}

static void test_check_invalid(void **state) {
  /* Invalid as both names and filters. */
  static const struct fmqt_str both[] = {
      S(""), S("\0"), S("a\0"), S("\0a"), S("a/\0/b"), S("a\0b"), S("+\0"), S("#\0"),
      S("a+"), S("+a"), S("a/b+"), S("a/+b"), S("a+/b"), S("a/#/b"), S("#/a"), S("a#"), S("#a"),
      S("a/#/"), S("##"), S("++"), S("a/##"), S("a/+#"), S("#+"), S("+#"), S("#/#"), S("a/b#"),
      /* bad UTF-8: stray bytes, overlong '/', surrogate, truncated, above U+10FFFF */
      S("\xff"), S("a/\x80"), S("\xc0\xaf"), S("\xed\xa0\x80"), S("a/\xe2\x82"),
      S("\xf4\x90\x80\x80"),
      S("\xc3"), S("+/\xfe"),
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(both); i++) {
    assert_int_equal(fmq_topic_check_name(both[i].s, both[i].len), FMQ_ETOPIC);
    assert_int_equal(fmq_topic_check_filter(both[i].s, both[i].len), FMQ_ETOPIC);
  }
  assert_int_equal(fmq_topic_check_name(NULL, 0), FMQ_ETOPIC);
  assert_int_equal(fmq_topic_check_filter(NULL, 0), FMQ_ETOPIC);
}

/* Only len bytes are looked at: what follows does not count. */
static void test_check_honours_len(void **state) {
  (void)state;
  assert_int_equal(fmq_topic_check_name("a/b+", 3), 0);
  assert_int_equal(fmq_topic_check_name("a/b\0c", 3), 0);
  assert_int_equal(fmq_topic_check_filter("a/+x", 3), 0);
  assert_int_equal(fmq_topic_check_filter("a/#/b", 3), 0);
  assert_int_equal(fmq_topic_check_filter("a/b\xc3\xa9", 4), FMQ_ETOPIC);
  assert_int_equal(fmq_topic_check_filter("a/b\xc3\xa9", 5), 0);
}

/* 65535 bytes is the most; the buffer has no terminator, so an over-read is an ASan error. */
static void test_check_length_limit(void **state) {
  char *p = malloc(FMQ_TOPIC_MAX + 1);

  (void)state;
  assert_non_null(p);
  memset(p, 'a', FMQ_TOPIC_MAX + 1);
  assert_int_equal(fmq_topic_check_name(p, FMQ_TOPIC_MAX), 0);
  assert_int_equal(fmq_topic_check_filter(p, FMQ_TOPIC_MAX), 0);
  assert_int_equal(fmq_topic_check_name(p, FMQ_TOPIC_MAX + 1), FMQ_ETOPIC);
  assert_int_equal(fmq_topic_check_filter(p, FMQ_TOPIC_MAX + 1), FMQ_ETOPIC);
  assert_int_equal(fmq_topic_check_name(p, SIZE_MAX), FMQ_ETOPIC);

  /* A filter of 65535 bytes ending in "/#", and the same one byte longer. */
  p[FMQ_TOPIC_MAX - 2] = '/';
  p[FMQ_TOPIC_MAX - 1] = '#';
  assert_int_equal(fmq_topic_check_filter(p, FMQ_TOPIC_MAX), 0);
  assert_int_equal(fmq_topic_check_name(p, FMQ_TOPIC_MAX), FMQ_ETOPIC);
  memmove(p + 1, p, FMQ_TOPIC_MAX);
  assert_int_equal(fmq_topic_check_filter(p + 1, FMQ_TOPIC_MAX), 0);
  assert_int_equal(fmq_topic_check_filter(p, FMQ_TOPIC_MAX + 1), FMQ_ETOPIC);

  /* Every level empty: 65535 slashes, 65536 levels. */
  memset(p, '/', FMQ_TOPIC_MAX + 1);
  assert_int_equal(fmq_topic_check_name(p, FMQ_TOPIC_MAX), 0);
  assert_int_equal(fmq_topic_check_name(p, FMQ_TOPIC_MAX + 1), FMQ_ETOPIC);
  free(p);
}

struct fmqt_match {
  const char *filter, *topic;
  int expected;
};

static const struct fmqt_match match_cases[] = {
    /* literal */
    {"a", "a", 1},
    {"a", "b", 0},
    {"a/b", "a/b", 1},
    {"a/b", "a/bc", 0},
    {"a/bc", "a/b", 0},
    {"a/b", "a", 0},
    {"a", "a/b", 0},
    {"a/b", "A/b", 0},
    {"\xc3\xa9", "\xc3\xa9", 1},
    {"\xc3\xa9", "\xc3\xa8", 0},
    /* empty levels are levels */
    {"a//b", "a//b", 1},
    {"a//b", "a/b", 0},
    {"a/b", "a//b", 0},
    {"/a", "/a", 1},
    {"/a", "a", 0},
    {"a/", "a/", 1},
    {"a/", "a", 0},
    {"a", "a/", 0},
    {"/", "/", 1},
    {"/", "//", 0},
    /* '+' is exactly one level, possibly empty */
    {"+", "a", 1},
    {"+", "", 1},
    {"+", "/", 0},
    {"+", "a/b", 0},
    {"+/+", "/", 1},
    {"+/+", "a/b", 1},
    {"+/+", "a", 0},
    {"+/+", "a/b/c", 0},
    {"/+", "/a", 1},
    {"/+", "/", 1},
    {"/+", "a/b", 0},
    {"+/", "a/", 1},
    {"+/", "a", 0},
    {"a/+/c", "a/b/c", 1},
    {"a/+/c", "a//c", 1},
    {"a/+/c", "a/c", 0},
    {"a/+/c", "a/b/d", 0},
    {"a/+", "a", 0},
    {"a/+", "a/", 1},
    {"a/+", "a/b/c", 0},
    {"+/b", "a/b", 1},
    {"+/b", "a/c", 0},
    {"a/+/+/d", "a/b/c/d", 1},
    /* '#' is the parent level and everything below */
    {"#", "a", 1},
    {"#", "a/b/c", 1},
    {"#", "/", 1},
    {"#", "", 1},
    {"a/#", "a", 1},
    {"a/#", "a/", 1},
    {"a/#", "a/b", 1},
    {"a/#", "a/b/c", 1},
    {"a/#", "ab", 0},
    {"a/#", "b/a", 0},
    {"a/#", "/a", 0},
    {"a/b/#", "a", 0},
    {"a/b/#", "a/b", 1},
    {"a/b/#", "a/bc", 0},
    {"/#", "/", 1},
    {"/#", "a", 0},
    {"/#", "/a/b", 1},
    {"//#", "/", 1},
    {"//#", "//", 1},
    {"+/#", "a", 1},
    {"+/#", "a/b/c", 1},
    {"+/#", "/", 1},
    {"+/+/#", "a", 0},
    {"+/+/#", "a/b", 1},
    {"a/+/#", "a/b/c/d", 1},
    {"a/+/#", "a", 0},
    /* topics starting with '$' */
    {"#", "$SYS", 0},
    {"#", "$SYS/x", 0},
    {"+/x", "$SYS/x", 0},
    {"+", "$", 0},
    {"+/#", "$SYS/x", 0},
    {"$SYS/#", "$SYS/x", 1},
    {"$SYS/#", "$SYS", 1},
    {"$SYS/+", "$SYS/x", 1},
    {"$SYS/x", "$SYS/x", 1},
    {"$+/x", "$+/x", 1},
    {"a/#", "$a/b", 0},
    {"#", "a/$SYS", 1},
    {"+/$x", "a/$x", 1},
    {"+/+", "a$/x", 1},
    {"#", "x$", 1},
};

static void test_levels(void **state) {
  (void)state;
  assert_int_equal(fmq_topic_levels("a", 1), 1);
  assert_int_equal(fmq_topic_levels("a/b/c", 5), 3);
  assert_int_equal(fmq_topic_levels("/", 1), 2);
  assert_int_equal(fmq_topic_levels("a//#", 4), 3);
  /* Only len bytes count. */
  assert_int_equal(fmq_topic_levels("a/b/c", 3), 2);
}

static void test_check_level(void **state) {
  (void)state;
  assert_int_equal(fmq_topic_check_level("alice", 5), 0);
  assert_int_equal(fmq_topic_check_level("a b.c-$", 7), 0);
  assert_int_equal(fmq_topic_check_level("", 0), FMQ_ETOPIC);
  assert_int_equal(fmq_topic_check_level("a/b", 3), FMQ_ETOPIC);
  assert_int_equal(fmq_topic_check_level("+", 1), FMQ_ETOPIC);
  assert_int_equal(fmq_topic_check_level("x#", 2), FMQ_ETOPIC);
  assert_int_equal(fmq_topic_check_level("x\0y", 3), FMQ_ETOPIC);
  /* Only len bytes count. */
  assert_int_equal(fmq_topic_check_level("ab/", 2), 0);
}

static void test_matches(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(match_cases); i++) {
    const struct fmqt_match *m = &match_cases[i];
    if (fmq_topic_matches(m->filter, m->topic) != m->expected)
      fail_msg("\"%s\" vs \"%s\": expected %d", m->filter, m->topic, m->expected);
  }
}

static void fmqt_count(void *value, void *ctx) {
  (void)ctx;
  ++*(int *)value;
}

/* The same table through a trie holding only that filter; a filter stored
 * under a longer or shorter one must not change the answer either. */
static void test_match_table_trie(void **state) {
  int hits, other;

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(match_cases); i++) {
    const struct fmqt_match *m = &match_cases[i];
    struct fmq_trie t;
    char longer[64];

    fmq_trie_init(&t);
    assert_int_equal(fmq_trie_insert(&t, m->filter, &hits), 0);
    hits = 0;
    fmq_trie_match(&t, m->topic, fmqt_count, NULL);
    if (hits != m->expected)
      fail_msg("trie \"%s\" vs \"%s\": %d visits, expected %d", m->filter, m->topic, hits,
               m->expected);

    snprintf(longer, sizeof(longer), "%s/zz", m->filter);
    if (strchr(m->filter, '#') == NULL && strcmp(m->topic, longer) != 0) {
      assert_int_equal(fmq_trie_insert(&t, longer, &other), 0);
      hits = other = 0;
      fmq_trie_match(&t, m->topic, fmqt_count, NULL);
      assert_int_equal(hits, m->expected);
      assert_int_equal(other, 0);
      assert_ptr_equal(fmq_trie_remove(&t, m->filter), &hits);
      hits = other = 0;
      fmq_trie_match(&t, m->topic, fmqt_count, NULL);
      assert_int_equal(hits, 0);
      assert_int_equal(other, 0);
    }
    fmq_trie_close(&t);
  }
}

static const char *const cross_filters[] = {
    "#", "+", "+/+", "+/#", "a", "a/b", "a/#", "a/+", "a/+/c", "a/b/#", "a/b/c", "a//c", "a/",
    "/", "/#", "/+", "+/", "//", "$SYS/#", "$SYS/+", "$SYS", "+/b/#", "+/+/+", "a/+/#",
    "devices/+/status", "devices/42/#", "devices/42/status", "+/42/+", "\xc3\xa9/+", "b/+/c/#",
    "x/y/z/w", "x/+/z/+",
};

static const char *const cross_topics[] = {
    "a", "b", "a/b", "a/c", "a/b/c", "a/b/d", "a//c", "a/", "a//", "/", "//", "///", "/a",
    "a/b/c/d",
    "$SYS", "$SYS/x", "$SYS/x/y", "$", "$/a", "a/$SYS", "devices/42/status", "devices/43/status",
    "devices/42/temp", "devices/42", "devices", "devices//status", "x/42/y", "\xc3\xa9",
    "\xc3\xa9/z", "\xc3\xa9/z/w", "b/b/c", "b/x/c/d", "b/x/c", "b/x/d", "x/y/z/w", "x/q/z/r",
    "x/y/z", "x/y/z/w/v",
    "ab", "abc/b", "A/b", "a/B", "c/b/a", "q/b", "q/b/r", "a/x/c", "a/x/y/c", "$a/b", "$SYS/",
    " ", "a /b", "a/b ", "z/z/z", "z/z", "a/b/c/d/e", "q/42/r", "/42/", "a/b/", "/b", "/b/c",
    "devices/42/status/extra",
};

#define NF ARRAY_LEN(cross_filters)

/* Filter k is stored with the value &fmqt_hits[k]. */
static int fmqt_hits[NF];

/* For every topic, each stored filter (present[k]) must be visited exactly
 * once when fmq_topic_matches says it matches, and never otherwise. Returns
 * the number of visits. */
static int fmqt_cross_check(const struct fmq_trie *t, const int *present) {
  int total = 0;

  for (size_t k = 0; k < NF; k++)
    assert_ptr_equal(fmq_trie_find(t, cross_filters[k]), present[k] ? &fmqt_hits[k] : NULL);
  for (size_t j = 0; j < ARRAY_LEN(cross_topics); j++) {
    memset(fmqt_hits, 0, sizeof(fmqt_hits));
    fmq_trie_match(t, cross_topics[j], fmqt_count, NULL);
    for (size_t k = 0; k < NF; k++) {
      int want = present[k] && fmq_topic_matches(cross_filters[k], cross_topics[j]);
      if (fmqt_hits[k] != want)
        fail_msg("\"%s\" vs \"%s\": %d visits, expected %d", cross_filters[k], cross_topics[j],
                 fmqt_hits[k], want);
      total += fmqt_hits[k];
    }
  }
  return total;
}

static void test_trie_cross_check(void **state) {
  struct fmq_trie t;
  int present[NF];
  int all;

  (void)state;
  for (size_t k = 0; k < NF; k++)
    assert_int_equal(fmq_topic_check_filter(cross_filters[k], strlen(cross_filters[k])), 0);
  for (size_t j = 0; j < ARRAY_LEN(cross_topics); j++)
    assert_int_equal(fmq_topic_check_name(cross_topics[j], strlen(cross_topics[j])), 0);

  /* Forward order. */
  fmq_trie_init(&t);
  memset(present, 0, sizeof(present));
  assert_int_equal(fmqt_cross_check(&t, present), 0);
  for (size_t k = 0; k < NF; k++) {
    assert_int_equal(fmq_trie_insert(&t, cross_filters[k], &fmqt_hits[k]), 0);
    present[k] = 1;
    assert_int_equal(t.count, k + 1);
  }
  all = fmqt_cross_check(&t, present);
  assert_true(all > 150); /* the table is not vacuous */

  /* Remove every other filter, check, put them back, check again. */
  for (size_t k = 0; k < NF; k += 2) {
    assert_ptr_equal(fmq_trie_remove(&t, cross_filters[k]), &fmqt_hits[k]);
    present[k] = 0;
  }
  assert_int_equal(t.count, NF / 2);
  assert_true(fmqt_cross_check(&t, present) < all);
  for (size_t k = 0; k < NF; k += 2) {
    assert_int_equal(fmq_trie_insert(&t, cross_filters[k], &fmqt_hits[k]), 0);
    present[k] = 1;
  }
  assert_int_equal(fmqt_cross_check(&t, present), all);

  /* Remove from the front, checking as the trie shrinks. */
  for (size_t k = 0; k < NF; k++) {
    assert_ptr_equal(fmq_trie_remove(&t, cross_filters[k]), &fmqt_hits[k]);
    present[k] = 0;
    fmqt_cross_check(&t, present);
  }
  assert_int_equal(t.count, 0);
  assert_null(t.root);

  /* Reverse order in, and out from the back. */
  for (size_t k = NF; k-- > 0;) {
    assert_int_equal(fmq_trie_insert(&t, cross_filters[k], &fmqt_hits[k]), 0);
    present[k] = 1;
  }
  assert_int_equal(fmqt_cross_check(&t, present), all);
  for (size_t k = NF; k-- > 0;) {
    assert_ptr_equal(fmq_trie_remove(&t, cross_filters[k]), &fmqt_hits[k]);
    present[k] = 0;
    fmqt_cross_check(&t, present);
  }
  assert_int_equal(t.count, 0);
  assert_null(t.root);
  fmq_trie_close(&t);
}

static void test_trie_insert_find_remove(void **state) {
  struct fmq_trie t;
  int v1, v2, v3, v4;

  (void)state;
  fmq_trie_init(&t);
  assert_null(t.root);
  assert_int_equal(t.count, 0);
  assert_null(fmq_trie_find(&t, "a"));
  assert_null(fmq_trie_remove(&t, "a"));
  fmq_trie_match(&t, "a", fmqt_count, NULL);

  assert_int_equal(fmq_trie_insert(&t, "a/b", &v1), 0);
  assert_int_equal(fmq_trie_insert(&t, "a/b", &v2), FMQ_EEXIST);
  assert_int_equal(t.count, 1);
  assert_ptr_equal(fmq_trie_find(&t, "a/b"), &v1);

  /* Only the exact filter is found: not a prefix, an extension, or a wildcard over it. */
  assert_null(fmq_trie_find(&t, "a"));
  assert_null(fmq_trie_find(&t, "a/b/c"));
  assert_null(fmq_trie_find(&t, "a/+"));
  assert_null(fmq_trie_find(&t, "a/#"));
  assert_null(fmq_trie_find(&t, "a/b/"));
  assert_null(fmq_trie_find(&t, "a//b"));
  assert_null(fmq_trie_find(&t, "a/bb"));
  assert_null(fmq_trie_remove(&t, "a"));
  assert_null(fmq_trie_remove(&t, "a/+"));
  assert_int_equal(t.count, 1);

  /* A prefix and wildcard siblings are separate filters. */
  assert_int_equal(fmq_trie_insert(&t, "a", &v2), 0);
  assert_int_equal(fmq_trie_insert(&t, "a/+", &v3), 0);
  assert_int_equal(fmq_trie_insert(&t, "a/#", &v4), 0);
  assert_int_equal(fmq_trie_insert(&t, "a/#", &v1), FMQ_EEXIST);
  assert_int_equal(fmq_trie_insert(&t, "a/+", &v1), FMQ_EEXIST);
  assert_int_equal(fmq_trie_insert(&t, "a", &v1), FMQ_EEXIST);
  assert_int_equal(t.count, 4);
  assert_ptr_equal(fmq_trie_find(&t, "a"), &v2);
  assert_ptr_equal(fmq_trie_find(&t, "a/+"), &v3);
  assert_ptr_equal(fmq_trie_find(&t, "a/#"), &v4);

  /* Removing an inner filter keeps the ones below it. */
  assert_ptr_equal(fmq_trie_remove(&t, "a"), &v2);
  assert_null(fmq_trie_remove(&t, "a"));
  assert_int_equal(t.count, 3);
  assert_ptr_equal(fmq_trie_find(&t, "a/b"), &v1);
  assert_ptr_equal(fmq_trie_find(&t, "a/+"), &v3);
  assert_ptr_equal(fmq_trie_find(&t, "a/#"), &v4);

  assert_ptr_equal(fmq_trie_remove(&t, "a/+"), &v3);
  assert_ptr_equal(fmq_trie_remove(&t, "a/b"), &v1);
  assert_non_null(t.root);
  assert_ptr_equal(fmq_trie_remove(&t, "a/#"), &v4);
  assert_int_equal(t.count, 0);
  assert_null(t.root);

  /* The trie is usable again after it emptied. */
  assert_int_equal(fmq_trie_insert(&t, "#", &v1), 0);
  assert_ptr_equal(fmq_trie_find(&t, "#"), &v1);
  assert_null(fmq_trie_find(&t, "+"));
  fmq_trie_close(&t);
  assert_null(t.root);
  assert_int_equal(t.count, 0);
  fmq_trie_close(&t);
}

/* A removed filter leaves no node behind that a later match could trip on:
 * the removed leaf's parent is a '+' or '#' slot, or a literal between others. */
static void test_trie_prune(void **state) {
  static const char *const filters[] = {"a/+/b/c", "a/+/#", "a/m/x", "a/a/x", "a/z/x", "+/+/+/+"};
  struct fmq_trie t;
  int v[ARRAY_LEN(filters)];

  (void)state;
  fmq_trie_init(&t);
  for (size_t i = 0; i < ARRAY_LEN(filters); i++)
    assert_int_equal(fmq_trie_insert(&t, filters[i], &v[i]), 0);
  for (size_t i = 0; i < ARRAY_LEN(filters); i++) {
    assert_ptr_equal(fmq_trie_remove(&t, filters[i]), &v[i]);
    assert_null(fmq_trie_find(&t, filters[i]));
    for (size_t k = i + 1; k < ARRAY_LEN(filters); k++)
      assert_ptr_equal(fmq_trie_find(&t, filters[k]), &v[k]);
    memset(v, 0, sizeof(v));
    fmq_trie_match(&t, "a/m/b/c", fmqt_count, NULL);
    fmq_trie_match(&t, "a/m/x", fmqt_count, NULL);
    for (size_t k = 0; k <= i; k++)
      assert_int_equal(v[k], 0);
  }
  assert_null(t.root);

  /* Interior filters removed before and after their descendants. */
  assert_int_equal(fmq_trie_insert(&t, "a/b/c/d", &v[0]), 0);
  assert_int_equal(fmq_trie_insert(&t, "a/b", &v[1]), 0);
  assert_ptr_equal(fmq_trie_remove(&t, "a/b/c/d"), &v[0]);
  assert_null(fmq_trie_find(&t, "a/b/c"));
  assert_ptr_equal(fmq_trie_find(&t, "a/b"), &v[1]);
  assert_ptr_equal(fmq_trie_remove(&t, "a/b"), &v[1]);
  assert_null(t.root);
  assert_int_equal(t.count, 0);
  fmq_trie_close(&t);
}

/* Thousands of literal siblings, inserted and removed in scattered order. */
static void test_trie_fan_in(void **state) {
  enum { N = 5000 };
  struct fmq_trie t;
  char f[64];
  int *v = calloc(N, sizeof(*v));
  int plus = 0, hash = 0;

  (void)state;
  assert_non_null(v);
  fmq_trie_init(&t);
  assert_int_equal(fmq_trie_insert(&t, "devices/+/status", &plus), 0);
  assert_int_equal(fmq_trie_insert(&t, "devices/#", &hash), 0);
  for (size_t i = 0; i < N; i++) {
    size_t id = i * 7919 % N; /* 7919 is prime, so this visits every id once */
    snprintf(f, sizeof(f), "devices/%zu/status", id);
    assert_int_equal(fmq_trie_insert(&t, f, &v[id]), 0);
  }
  assert_int_equal(t.count, N + 2);
  for (size_t id = 0; id < N; id++) {
    snprintf(f, sizeof(f), "devices/%zu/status", id);
    assert_ptr_equal(fmq_trie_find(&t, f), &v[id]);
    fmq_trie_match(&t, f, fmqt_count, NULL);
    assert_int_equal(v[id], 1);
  }
  assert_int_equal(plus, N);
  assert_int_equal(hash, N);
  memset(v, 0, N * sizeof(*v));
  fmq_trie_match(&t, "devices/5000/status", fmqt_count, NULL);
  fmq_trie_match(&t, "devices/00/status", fmqt_count, NULL);
  for (size_t id = 0; id < N; id++)
    assert_int_equal(v[id], 0);

  for (size_t i = 0; i < N; i++) {
    size_t id = (i * 3301 + 17) % N;
    snprintf(f, sizeof(f), "devices/%zu/status", id);
    assert_ptr_equal(fmq_trie_remove(&t, f), &v[id]);
    assert_null(fmq_trie_find(&t, f));
    if (i % 500 == 0) {
      /* the neighbours are still there */
      snprintf(f, sizeof(f), "devices/%zu/status", (i * 3301 + 17 + 3301) % N);
      assert_non_null(fmq_trie_find(&t, f));
    }
  }
  assert_int_equal(t.count, 2);
  assert_ptr_equal(fmq_trie_remove(&t, "devices/#"), &hash);
  assert_ptr_equal(fmq_trie_remove(&t, "devices/+/status"), &plus);
  assert_null(t.root);
  fmq_trie_close(&t);
  free(v);
}

/* 65536 levels, the most a name can have: the walks must not recurse per level. */
static void test_trie_deep(void **state) {
  struct fmq_trie t;
  char *deep = malloc(FMQ_TOPIC_MAX + 1), *slashes, *hash, *plus;
  int a = 0, b = 0, c = 0, d = 0;

  (void)state;
  assert_non_null(deep);
  memset(deep, '/', FMQ_TOPIC_MAX);
  deep[FMQ_TOPIC_MAX] = '\0';
  slashes = strdup(deep); /* 65536 empty levels */
  deep[FMQ_TOPIC_MAX - 1] = '#';
  hash = strdup(deep);    /* 65535 empty levels and '#' */
  deep[FMQ_TOPIC_MAX - 1] = '+';
  plus = strdup(deep);    /* 65535 levels, the last '+' */
  assert_non_null(slashes);
  assert_non_null(hash);
  assert_non_null(plus);

  fmq_trie_init(&t);
  assert_int_equal(fmq_trie_insert(&t, slashes, &a), 0);
  assert_int_equal(fmq_trie_insert(&t, hash, &b), 0);
  assert_int_equal(fmq_trie_insert(&t, plus, &c), 0);
  assert_int_equal(fmq_trie_insert(&t, "#", &d), 0);
  assert_int_equal(t.count, 4);

  fmq_trie_match(&t, slashes, fmqt_count, NULL);
  assert_int_equal(a, 1);
  assert_int_equal(b, 1);
  assert_int_equal(c, 0);
  assert_int_equal(d, 1);
  assert_true(fmq_topic_matches(slashes, slashes));
  assert_true(fmq_topic_matches(hash, slashes));
  assert_false(fmq_topic_matches(plus, slashes));

  deep[FMQ_TOPIC_MAX - 1] = 'x'; /* 65535 levels, the last "x" */
  fmq_trie_match(&t, deep, fmqt_count, NULL);
  assert_int_equal(a, 1);
  assert_int_equal(b, 2);
  assert_int_equal(c, 1);
  assert_int_equal(d, 2);
  assert_false(fmq_topic_matches(slashes, deep));
  assert_true(fmq_topic_matches(hash, deep));
  assert_true(fmq_topic_matches(plus, deep));

  fmq_trie_close(&t); /* LeakSanitizer checks that close freed every level */
  assert_null(t.root);
  assert_int_equal(fmq_trie_insert(&t, slashes, &a), 0);
  assert_ptr_equal(fmq_trie_remove(&t, slashes), &a);
  assert_null(t.root);
  free(plus);
  free(hash);
  free(slashes);
  free(deep);
}

/* The '$' rule is about the topic's first character, at the root only. */
static void test_trie_dollar(void **state) {
  static const char *const filters[] = {"#",      "+/x", "+",      "$SYS/#",
                                        "$SYS/x", "+/+", "$SYS/+", "a/#"};
  struct fmq_trie t;
  int v[ARRAY_LEN(filters)];

  (void)state;
  fmq_trie_init(&t);
  for (size_t i = 0; i < ARRAY_LEN(filters); i++)
    assert_int_equal(fmq_trie_insert(&t, filters[i], &v[i]), 0);

  memset(v, 0, sizeof(v));
  fmq_trie_match(&t, "$SYS/x", fmqt_count, NULL);
  assert_int_equal(v[0] + v[1] + v[2] + v[5] + v[7], 0);
  assert_int_equal(v[3], 1);
  assert_int_equal(v[4], 1);
  assert_int_equal(v[6], 1);

  memset(v, 0, sizeof(v));
  fmq_trie_match(&t, "SYS/x", fmqt_count, NULL);
  assert_int_equal(v[0], 1);
  assert_int_equal(v[1], 1);
  assert_int_equal(v[5], 1);
  assert_int_equal(v[2] + v[3] + v[4] + v[6] + v[7], 0);

  memset(v, 0, sizeof(v));
  fmq_trie_match(&t, "a/$SYS", fmqt_count, NULL);
  assert_int_equal(v[0], 1);
  assert_int_equal(v[5], 1);
  assert_int_equal(v[7], 1);
  assert_int_equal(v[1] + v[2] + v[3] + v[4] + v[6], 0);
  fmq_trie_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check_valid),
      cmocka_unit_test(test_check_invalid),
      cmocka_unit_test(test_check_honours_len),
      cmocka_unit_test(test_check_length_limit),
      cmocka_unit_test(test_levels),
      cmocka_unit_test(test_check_level),
      cmocka_unit_test(test_matches),
      cmocka_unit_test(test_match_table_trie),
      cmocka_unit_test(test_trie_cross_check),
      cmocka_unit_test(test_trie_insert_find_remove),
      cmocka_unit_test(test_trie_prune),
      cmocka_unit_test(test_trie_fan_in),
      cmocka_unit_test(test_trie_deep),
      cmocka_unit_test(test_trie_dollar),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
