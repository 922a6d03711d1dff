#include "origin.h"

#include "error.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ASCII only, whatever the locale. */
static int origin_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int origin_digit(char c) {
  return c >= '0' && c <= '9';
}

static char origin_lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). Returns its length,
 * 0 when there is none. */
static size_t origin_scheme(const char *s, size_t n) {
  size_t i = 0;

  if (n == 0 || !origin_alpha(s[0]))
    return 0;
  while (i < n && (origin_alpha(s[i]) || origin_digit(s[i]) || s[i] == '+' || s[i] == '-' ||
                   s[i] == '.'))
    i++;
  return i;
}

/* A name or IPv4 address ([A-Za-z0-9._-]), or an IPv6 address in brackets.
 * Returns its length, 0 when there is none. */
static size_t origin_host(const char *s, size_t n) {
  size_t i = 0;

  if (n > 0 && s[0] == '[') {
    const char *end = memchr(s, ']', n);
    char addr[INET6_ADDRSTRLEN];
    struct in6_addr a;
    size_t alen;

    if (end == NULL || (alen = (size_t)(end - s - 1)) >= sizeof(addr) ||
        memchr(s + 1, '\0', alen) != NULL)
      return 0;
    memcpy(addr, s + 1, alen);
    addr[alen] = '\0';
    return inet_pton(AF_INET6, addr, &a) == 1 ? alen + 2 : 0;
  }
  while (i < n && (origin_alpha(s[i]) || origin_digit(s[i]) || s[i] == '.' || s[i] == '_' ||
                   s[i] == '-'))
    i++;
  return i;
}

/* The default port of a scheme of n bytes, 0 when it has none. */
static int origin_default_port(const char *scheme, size_t n) {
  static const struct {
    const char *name;
    int port;
  } defaults[] = {{"http", 80}, {"ws", 80}, {"https", 443}, {"wss", 443}};

  for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
    if (strlen(defaults[i].name) == n && strncasecmp(defaults[i].name, scheme, n) == 0)
      return defaults[i].port;
  }
  return 0;
}

int fmq_origin_normalize(const char *origin, size_t len, char *out, size_t cap) {
  const char *host;
  size_t slen = origin_scheme(origin, len), hlen, i, n;
  char port[16] = "";
  int p;

  if (slen == 0 || len - slen < 3 || memcmp(origin + slen, "://", 3) != 0)
    return -1;
  i = slen + 3;
  host = origin + i;
  if ((hlen = origin_host(host, len - i)) == 0)
    return -1;
  i += hlen;
  p = origin_default_port(origin, slen);
  if (i < len && origin[i] == ':') {
    size_t start = ++i;
    /* Leading zeros are allowed, as browsers allow them ("0080" is 80). */
    for (p = 0; i < len && origin_digit(origin[i]) && p <= 65535; i++)
      p = p * 10 + (origin[i] - '0');
    if (i == start || p == 0 || p > 65535)
      return -1;
  }
  if (i < len && origin[i] == '/')
    i++;
  if (i != len)
    return -1;

  if (p > 0)
    snprintf(port, sizeof(port), ":%d", p);
  n = slen + 3 + hlen + strlen(port);
  if (n > INT_MAX)
    return -1;
  if (n >= cap)
    return FMQ_ESPACE;
  for (i = 0; i < slen; i++)
    out[i] = origin_lower(origin[i]);
  memcpy(out + i, "://", 3);
  i += 3;
  for (size_t k = 0; k < hlen; k++)
    out[i++] = origin_lower(host[k]);
  memcpy(out + i, port, strlen(port) + 1);
  return (int)n;
}
