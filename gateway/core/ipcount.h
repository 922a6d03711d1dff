#ifndef FMQ_IPCOUNT_H
#define FMQ_IPCOUNT_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Open connections per client IP address (limits.max_connections_per_ip):
 * an open-addressing hash table whose hash is SipHash-2-4 (OpenSSL's
 * EVP_MAC "SIPHASH", 64-bit output) under a random key drawn at init, so
 * that a client picking many addresses (one IPv6 /64 holds plenty) cannot
 * make them collide on purpose. Addresses with no connection left are
 * removed; an empty table holds no slots. Loop thread only. */

/* An address as 16 bytes: IPv6 as is, IPv4 as ::ffff:a.b.c.d (so a v4
 * client is the same whether it came over a v4 or a dual-stack socket). */
struct fmq_ip {
  uint8_t b[16];
};

/* Fills ip from an AF_INET or AF_INET6 address. Returns 0 or -1. */
int fmq_ip_from_sockaddr(const struct sockaddr *sa, struct fmq_ip *ip);

struct fmq_ipcount_slot;
struct fmq_ipcount {
  struct fmq_ipcount_slot *slots; /* owned; NULL when empty */
  size_t cap, used;
  EVP_MAC_CTX *mac;               /* owned: SipHash keyed once, re-initialised per hash */
};

/* Fetches SipHash and keys it with 16 bytes from RAND_bytes. Returns 0, or
 * -1 when OpenSSL cannot (SipHash not provided, no randomness, no memory;
 * its error queue says which) and t holds nothing. */
int fmq_ipcount_init(struct fmq_ipcount *t);
/* Frees the slots and the key. Safe on a zeroed table and twice. */
void fmq_ipcount_close(struct fmq_ipcount *t);
/* Counts one more connection from ip. Returns the new count, or FMQ_ENOMEM
 * (nothing counted). */
int64_t fmq_ipcount_add(struct fmq_ipcount *t, const struct fmq_ip *ip);
/* Counts one connection less from ip (which must have been added). */
void fmq_ipcount_remove(struct fmq_ipcount *t, const struct fmq_ip *ip);
/* Connections counted for ip. */
uint64_t fmq_ipcount_get(const struct fmq_ipcount *t, const struct fmq_ip *ip);
/* The keyed hash of ip (its home slot is this modulo cap); for tests. */
uint64_t fmq_ipcount_hash(const struct fmq_ipcount *t, const struct fmq_ip *ip);

#endif
