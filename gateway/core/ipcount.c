#include "ipcount.h"

#include "error.h"
#include "log.h"

#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
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

/* Keyed: without a secret key, a client choosing its source addresses (any
 * address of its IPv6 prefix) could pick ones that share a probe sequence
 * and turn every lookup into a scan of the table. SipHash is made for this
 * (short inputs, a 128-bit key, 64-bit output). The context is keyed once at
 * init; EVP_MAC_init without a key restores that keyed state, so a hash
 * allocates nothing and costs about 45 ns (dup'ing a keyed template per
 * hash: 60-75 ns, and an allocation that can fail). */
uint64_t fmq_ipcount_hash(const struct fmq_ipcount *t, const struct fmq_ip *ip) {
  uint8_t out[8];
  size_t len = 0;
  if (!EVP_MAC_init(t->mac, NULL, 0, NULL) || !EVP_MAC_update(t->mac, ip->b, sizeof(ip->b)) ||
      !EVP_MAC_final(t->mac, out, &len, sizeof(out)) || len != sizeof(out)) {
    /* Cannot happen once init succeeded (the provider checks nothing else
     * per call); going on with a hash that is not a function of the address
     * would lose counts, so this is fatal. */
    fmq_log_error("per-address table: SipHash failed");
    abort();
  }
  uint64_t h;
  memcpy(&h, out, sizeof(h));
  return h;
}

static void free_slots(struct fmq_ipcount *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = t->used = 0;
}

int fmq_ipcount_init(struct fmq_ipcount *t) {
  *t = (struct fmq_ipcount){0};
  uint8_t key[16];
  size_t size = 8;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                         OSSL_PARAM_END};
  /* Fetched once: the context holds its own reference to the algorithm. */
  EVP_MAC *alg = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
  EVP_MAC_CTX *mac = alg != NULL ? EVP_MAC_CTX_new(alg) : NULL;
  EVP_MAC_free(alg);
  int ok = mac != NULL && RAND_bytes(key, sizeof(key)) == 1 &&
           EVP_MAC_init(mac, key, sizeof(key), params) == 1;
  OPENSSL_cleanse(key, sizeof(key));
  if (!ok) {
    EVP_MAC_CTX_free(mac);
    return -1;
  }
  t->mac = mac;
  return 0;
}

void fmq_ipcount_close(struct fmq_ipcount *t) {
  free_slots(t);
  EVP_MAC_CTX_free(t->mac);
  t->mac = NULL;
}

/* The slot holding ip, or the free slot where it would go. */
static size_t find(const struct fmq_ipcount *t, const struct fmq_ip *ip) {
  size_t mask = t->cap - 1, i = (size_t)fmq_ipcount_hash(t, ip) & mask;
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
    size_t home = (size_t)fmq_ipcount_hash(t, &t->slots[j].ip) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      t->slots[i] = t->slots[j];
      t->slots[j].count = 0;
      i = j;
    }
  }
  if (--t->used == 0)
    free_slots(t);
}

uint64_t fmq_ipcount_get(const struct fmq_ipcount *t, const struct fmq_ip *ip) {
  return t->slots != NULL ? t->slots[find(t, ip)].count : 0;
}
