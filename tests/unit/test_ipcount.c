#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ipcount.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static struct fmq_ip v4(const char *text) {
  struct sockaddr_in sin = {.sin_family = AF_INET};
  assert_int_equal(inet_pton(AF_INET, text, &sin.sin_addr), 1);
  struct fmq_ip ip;
  assert_int_equal(fmq_ip_from_sockaddr((const struct sockaddr *)&sin, &ip), 0);
  return ip;
}

static struct fmq_ip v6(const char *text) {
  struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
  assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
  struct fmq_ip ip;
  assert_int_equal(fmq_ip_from_sockaddr((const struct sockaddr *)&sin6, &ip), 0);
  return ip;
}

/* The i-th address of one IPv6 /64, as a client choosing its addresses has. */
static struct fmq_ip nth(uint32_t i) {
  struct fmq_ip ip = v6("2001:db8:1:2::");
  ip.b[12] = (uint8_t)(i >> 24);
  ip.b[13] = (uint8_t)(i >> 16);
  ip.b[14] = (uint8_t)(i >> 8);
  ip.b[15] = (uint8_t)i;
  return ip;
}

static void test_from_sockaddr(void **state) {
  (void)state;
  struct fmq_ip ip = v4("192.0.2.7");
  static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};
  assert_memory_equal(ip.b, mapped, 16);
  ip = v6("::ffff:192.0.2.7");
  assert_memory_equal(ip.b, mapped, 16);
  ip = v6("2001:db8::1");
  assert_int_equal(ip.b[0], 0x20);
  assert_int_equal(ip.b[15], 1);
  struct sockaddr sa = {.sa_family = AF_UNIX};
  assert_int_equal(fmq_ip_from_sockaddr(&sa, &ip), -1);
}

static void test_add_remove_get(void **state) {
  (void)state;
  struct fmq_ipcount t;
  assert_int_equal(fmq_ipcount_init(&t), 0);
  struct fmq_ip a = v4("192.0.2.1"), b = v6("2001:db8::1");
  assert_null(t.slots);
  assert_int_equal(fmq_ipcount_get(&t, &a), 0);
  assert_int_equal(fmq_ipcount_add(&t, &a), 1);
  assert_int_equal(fmq_ipcount_add(&t, &a), 2);
  assert_int_equal(fmq_ipcount_add(&t, &b), 1);
  assert_int_equal(fmq_ipcount_add(&t, &a), 3);
  assert_int_equal(fmq_ipcount_get(&t, &a), 3);
  assert_int_equal(fmq_ipcount_get(&t, &b), 1);
  assert_int_equal(t.used, 2);
  fmq_ipcount_remove(&t, &b);
  assert_int_equal(fmq_ipcount_get(&t, &b), 0);
  assert_int_equal(fmq_ipcount_get(&t, &a), 3);
  assert_int_equal(t.used, 1);
  fmq_ipcount_remove(&t, &a);
  fmq_ipcount_remove(&t, &a);
  assert_int_equal(fmq_ipcount_get(&t, &a), 1);
  assert_non_null(t.slots);
  fmq_ipcount_remove(&t, &a);
  assert_int_equal(fmq_ipcount_get(&t, &a), 0);
  assert_null(t.slots); /* empty: no memory */
  assert_int_equal(t.cap, 0);
  assert_int_equal(t.used, 0);
  /* usable again after emptying */
  assert_int_equal(fmq_ipcount_add(&t, &b), 1);
  fmq_ipcount_close(&t);
  assert_null(t.slots);
}

static void test_v4_equals_v4_mapped(void **state) {
  (void)state;
  struct fmq_ipcount t;
  assert_int_equal(fmq_ipcount_init(&t), 0);
  struct fmq_ip plain = v4("198.51.100.9"), mapped = v6("::ffff:198.51.100.9");
  assert_int_equal(fmq_ipcount_add(&t, &plain), 1);
  assert_int_equal(fmq_ipcount_add(&t, &mapped), 2);
  assert_int_equal(fmq_ipcount_get(&t, &plain), 2);
  struct fmq_ip other = v4("198.51.100.10"), compat = v6("::198.51.100.9");
  assert_int_equal(fmq_ipcount_get(&t, &other), 0);
  assert_int_equal(fmq_ipcount_get(&t, &compat), 0);
  fmq_ipcount_remove(&t, &mapped);
  fmq_ipcount_remove(&t, &plain);
  assert_null(t.slots);
  fmq_ipcount_close(&t);
}

/* 10k addresses, each with its own count: the table grows, keeps its load
 * at or under a half, finds everything after every removal (backward shift
 * moving entries), and ends with no memory. */
static void test_many_addresses(void **state) {
  (void)state;
  enum { N = 10000 };
  struct fmq_ipcount t;
  assert_int_equal(fmq_ipcount_init(&t), 0);
  for (uint32_t i = 0; i < N; i++) {
    struct fmq_ip ip = nth(i);
    for (uint32_t k = 0; k <= i % 3; k++)
      assert_int_equal(fmq_ipcount_add(&t, &ip), k + 1);
    assert_true(t.used * 2 <= t.cap);
  }
  assert_int_equal(t.used, N);
  assert_int_equal(t.cap & (t.cap - 1), 0);
  for (uint32_t i = 0; i < N; i++) {
    struct fmq_ip ip = nth(i);
    assert_int_equal(fmq_ipcount_get(&t, &ip), i % 3 + 1);
  }
  struct fmq_ip absent = nth(N);
  assert_int_equal(fmq_ipcount_get(&t, &absent), 0);

  /* Remove the odd ones entirely, in another order (7919 is prime to N). */
  for (uint32_t i = 1; i < N; i += 2) {
    struct fmq_ip ip = nth((i * 7919) % N);
    while (fmq_ipcount_get(&t, &ip) > 0)
      fmq_ipcount_remove(&t, &ip);
  }
  assert_int_equal(t.used, N / 2);
  for (uint32_t i = 0; i < N; i++) {
    struct fmq_ip ip = nth(i);
    assert_int_equal(fmq_ipcount_get(&t, &ip), i % 2 ? 0 : i % 3 + 1);
  }
  for (uint32_t i = 0; i < N; i += 2) {
    struct fmq_ip ip = nth(i);
    for (uint32_t k = 0; k <= i % 3; k++)
      fmq_ipcount_remove(&t, &ip);
  }
  assert_int_equal(t.used, 0);
  assert_null(t.slots);
  fmq_ipcount_close(&t);
}

/* The hash is SipHash under each table's own random key: stable for one
 * table (through growth and removals), unrelated between two. */
static void test_keyed_hash(void **state) {
  (void)state;
  enum { N = 64 };
  struct fmq_ipcount t1, t2;
  assert_int_equal(fmq_ipcount_init(&t1), 0);
  assert_int_equal(fmq_ipcount_init(&t2), 0);
  uint64_t h1[N], h2[N];
  for (uint32_t i = 0; i < N; i++) {
    struct fmq_ip ip = nth(i);
    h1[i] = fmq_ipcount_hash(&t1, &ip);
    h2[i] = fmq_ipcount_hash(&t2, &ip);
    assert_int_equal(fmq_ipcount_add(&t1, &ip), 1);
    assert_int_equal(fmq_ipcount_add(&t2, &ip), 1);
  }
  /* 64 addresses in 128 slots each. */
  assert_int_equal(t1.cap, 2 * N);
  assert_int_equal(t2.cap, 2 * N);
  size_t same_slot = 0, distinct = 0;
  for (uint32_t i = 0; i < N; i++) {
    struct fmq_ip ip = nth(i);
    assert_int_equal(fmq_ipcount_hash(&t1, &ip), h1[i]);
    assert_int_equal(fmq_ipcount_hash(&t2, &ip), h2[i]);
    same_slot += (h1[i] & (t1.cap - 1)) == (h2[i] & (t2.cap - 1));
    for (uint32_t j = 0; j < i; j++)
      distinct += h1[j] != h1[i];
  }
  /* Two keys: the slot sequences differ (identical with probability
   * 128^-64); on average one address in 128 shares its slot. */
  assert_true(same_slot < N);
  /* 64-bit outputs of 64 inputs do not collide (probability ~2^-52). */
  assert_int_equal(distinct, N * (N - 1) / 2);
  /* Stable through removals and re-adding. */
  for (uint32_t i = 0; i < N; i += 2) {
    struct fmq_ip ip = nth(i);
    fmq_ipcount_remove(&t1, &ip);
  }
  for (uint32_t i = 0; i < N; i++) {
    struct fmq_ip ip = nth(i);
    assert_int_equal(fmq_ipcount_hash(&t1, &ip), h1[i]);
    assert_int_equal(fmq_ipcount_get(&t1, &ip), i % 2);
  }
  fmq_ipcount_close(&t1);
  fmq_ipcount_close(&t2);
  fmq_ipcount_close(&t2); /* twice is harmless */
  assert_null(t2.mac);
}

/* A table that was never initialised (the limit is off) closes cleanly. */
static void test_close_zeroed(void **state) {
  (void)state;
  struct fmq_ipcount t = {0};
  fmq_ipcount_close(&t);
  assert_null(t.slots);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_from_sockaddr),
    cmocka_unit_test(test_add_remove_get),
    cmocka_unit_test(test_v4_equals_v4_mapped),
    cmocka_unit_test(test_many_addresses),
    cmocka_unit_test(test_keyed_hash),
    cmocka_unit_test(test_close_zeroed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
