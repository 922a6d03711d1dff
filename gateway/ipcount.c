#include "ipcount.h"

#include "error.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* count 0: the slot is free. */
struct fmq_ipcount_slot {
  struct fmq_ip ip;
  uint64_t count;
};

#define MIN_CAP 8

int fmq_ip_from_sockaddr(const struct sockaddr *sa, struct fmq_ip *ip) {
  if (sa->sa_family == AF_INET6) {
    memcpy(ip->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 0;
  }
  if (sa->sa_family == AF_INET) {
    memset(ip->b, 0, 10);
    ip->b[10] = ip->b[11] = 0xff;
    memcpy(ip->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 0;
  }
  return -1;
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93u;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93u;
  x ^= x >> 32;
  return x;
}

/* Keyed by the seed: without it, a client choosing its source addresses
 * (any address of its IPv6 prefix) could pick ones that share a probe
 * sequence and turn every lookup into a scan of the table. */
static size_t hash(const struct fmq_ipcount *t, const struct fmq_ip *ip) {
  uint64_t a, b;
  memcpy(&a, ip->b, 8);
  memcpy(&b, ip->b + 8, 8);
  return (size_t)mix(mix(a ^ t->seed) ^ b ^ (t->seed >> 32 | t->seed << 32));
}

void fmq_ipcount_init(struct fmq_ipcount *t, uint64_t seed) {
  *t = (struct fmq_ipcount){.seed = seed};
}

void fmq_ipcount_close(struct fmq_ipcount *t) {
  free(t->slots);
  fmq_ipcount_init(t, t->seed);
}

/* The slot holding ip, or the free slot where it would go. */
static size_t find(const struct fmq_ipcount *t, const struct fmq_ip *ip) {
  size_t mask = t->cap - 1, i = hash(t, ip) & mask;
  while (t->slots[i].count > 0 && memcmp(&t->slots[i].ip, ip, sizeof(*ip)) != 0)
    i = (i + 1) & mask;
  return i;
}

static int grow(struct fmq_ipcount *t) {
  size_t cap = t->cap ? t->cap * 2 : MIN_CAP;
  struct fmq_ipcount_slot *slots = calloc(cap, sizeof(*slots));
  if (slots == NULL)
    return FMQ_ENOMEM;
  struct fmq_ipcount old = *t;
  t->slots = slots;
  t->cap = cap;
  for (size_t i = 0; i < old.cap; i++)
    if (old.slots[i].count > 0)
      t->slots[find(t, &old.slots[i].ip)] = old.slots[i];
  free(old.slots);
  return 0;
}

int64_t fmq_ipcount_add(struct fmq_ipcount *t, const struct fmq_ip *ip) {
  if (t->slots != NULL) {
    struct fmq_ipcount_slot *s = &t->slots[find(t, ip)];
    if (s->count > 0)
      return (int64_t)++s->count;
  }
  if ((t->used + 1) * 2 > t->cap && grow(t) != 0)
    return FMQ_ENOMEM;
  struct fmq_ipcount_slot *s = &t->slots[find(t, ip)];
  s->ip = *ip;
  s->count = 1;
  t->used++;
  return 1;
}

void fmq_ipcount_remove(struct fmq_ipcount *t, const struct fmq_ip *ip) {
  if (t->slots == NULL)
    return;
  size_t mask = t->cap - 1, i = find(t, ip);
  if (t->slots[i].count == 0 || --t->slots[i].count > 0)
    return;
  /* Backward-shift deletion: pull later entries of the run into the hole
   * unless that would put them before their home slot. */
  for (size_t j = (i + 1) & mask; t->slots[j].count > 0; j = (j + 1) & mask) {
    size_t home = hash(t, &t->slots[j].ip) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      t->slots[i] = t->slots[j];
      t->slots[j].count = 0;
      i = j;
    }
  }
  if (--t->used == 0)
    fmq_ipcount_close(t);
}

uint64_t fmq_ipcount_get(const struct fmq_ipcount *t, const struct fmq_ip *ip) {
  return t->slots != NULL ? t->slots[find(t, ip)].count : 0;
}
