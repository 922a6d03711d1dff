#include "net.h"

#include "bench.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int fmqb_parse_target(const char *s, struct sockaddr_in *out, char *path, size_t path_cap) {
  const char *p = strstr(s, "://");
  p = p != NULL ? p + 3 : s;
  const char *colon = strchr(p, ':');
  if (colon == NULL || colon == p || colon - p >= 64) {
    fmqb_warn("%s: want HOST:PORT", s);
    return -1;
  }
  char host[64];
  memcpy(host, p, (size_t)(colon - p));
  host[colon - p] = '\0';
  char *end;
  unsigned long port = strtoul(colon + 1, &end, 10);
  if (end == colon + 1 || port == 0 || port > 65535 || (*end != '\0' && *end != '/')) {
    fmqb_warn("%s: bad port", s);
    return -1;
  }
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  if (strcmp(host, "localhost") == 0) {
    snprintf(host, sizeof host, "127.0.0.1");
  }
  if (inet_pton(AF_INET, host, &out->sin_addr) != 1 ||
      (ntohl(out->sin_addr.s_addr) >> 24) != 127) {
    fmqb_warn("%s: only loopback addresses (127.0.0.0/8) are allowed", s);
    return -1;
  }
  if (path != NULL) {
    snprintf(path, path_cap, "%s", *end == '/' ? end : "/mqtt");
  }
  return 0;
}

void fmqb_source_addr(uint32_t i, uint32_t per_source, struct sockaddr_in *out) {
  uint32_t host = (127u << 24) + 2u + i / (per_source ? per_source : 1);
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_addr.s_addr = htonl(host);
}

uint32_t fmqb_default_per_source(void) {
  unsigned lo = 32768, hi = 60999;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f != NULL) {
    if (fscanf(f, "%u %u", &lo, &hi) != 2 || hi < lo) {
      lo = 32768;
      hi = 60999;
    }
    fclose(f);
  }
  uint32_t n = (hi - lo + 1) / 10 * 9;
  return n > 50000 ? 50000 : n < 1000 ? 1000 : n;
}

uint64_t fmqb_raise_nofile(uint64_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return 0;
  }
  if (rl.rlim_cur >= want) {
    return rl.rlim_cur;
  }
  if (rl.rlim_max < want) {
    uint64_t nr_open = 1048576;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    if (f != NULL) {
      unsigned long long v;
      if (fscanf(f, "%llu", &v) == 1) {
        nr_open = v;
      }
      fclose(f);
    }
    struct rlimit up = {want < nr_open ? want : nr_open, want < nr_open ? want : nr_open};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
      return up.rlim_cur;
    }
  }
  rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

void fmqb_addr_str(const struct sockaddr_in *addr, char *out, size_t cap) {
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr->sin_addr, ip, sizeof ip);
  snprintf(out, cap, "%s:%u", ip, ntohs(addr->sin_port));
}
