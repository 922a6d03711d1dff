#ifndef FMQB_NET_H
#define FMQB_NET_H

/* Addresses: the targets (loopback only: the bench refuses any other
 * address), the source addresses client sockets are spread over
 * (127.0.0.2, 127.0.0.3, ...: one address has only as many ephemeral ports
 * as ip_local_port_range holds, so 100,000 connections to one port need
 * several), and the descriptor limit. */

#include <netinet/in.h>
#include <stdint.h>

/* Parses "HOST:PORT", "ws://HOST:PORT/PATH", "tcp://HOST:PORT" or
 * "mqtt://HOST:PORT" into out (and the path, "/mqtt" when absent, into path
 * when not NULL). HOST must be an IPv4 address in 127.0.0.0/8 or
 * "localhost". Returns 0, or -1 with a message printed. */
int fmqb_parse_target(const char *s, struct sockaddr_in *out, char *path, size_t path_cap);

/* The source address of the i-th connection: 127.0.0.2 + i / per_source
 * (carrying into the third byte past 255), port 0. */
void fmqb_source_addr(uint32_t i, uint32_t per_source, struct sockaddr_in *out);

/* Connections per source address by default: 90% of the ephemeral port
 * range (/proc/sys/net/ipv4/ip_local_port_range), at most 50,000. */
uint32_t fmqb_default_per_source(void);

/* Raises RLIMIT_NOFILE to at least want descriptors: the soft limit up to
 * the hard one, and as root the hard one too (up to fs.nr_open). Returns
 * the soft limit in force afterwards. */
uint64_t fmqb_raise_nofile(uint64_t want);

/* "a.b.c.d:port" of addr into out. */
void fmqb_addr_str(const struct sockaddr_in *addr, char *out, size_t cap);

#endif
