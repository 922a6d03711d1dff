#include "jwt_maker.h"

#include "bridge_client.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define OPENSSL_TIMEOUT_MS 30000
#define MAX_ARGS 24

size_t fmqt_openssl(const char *dir, const char *const *args, char *out, size_t cap) {
  const char *argv[MAX_ARGS + 2] = {"openssl"};
  size_t argc = 1;
  for (size_t i = 0; args[i] != NULL; i++) {
    assert_true(i < MAX_ARGS);
    argv[argc++] = args[i];
  }
  char out_path[320];
  snprintf(out_path, sizeof out_path, "%s/openssl.out", dir);
  int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail_msg("open %s: %s", out_path, strerror(errno));
  }
  pid_t pid = fmqt_spawn(argv, NULL, fd, NULL);
  close(fd);
  int status = fmqt_proc_wait(pid, OPENSSL_TIMEOUT_MS);
  size_t len;
  char *text = fmqt_read_file(out_path, &len);
  unlink(out_path);
  if (status != 0) {
    fail_msg("openssl %s %s: status %d\n%s", args[0], args[1] ? args[1] : "", status, text);
  }
  if (out != NULL) {
    size_t copy = len < cap ? len : cap - 1;
    memcpy(out, text, copy);
    out[copy] = '\0';
  }
  free(text);
  return len;
}

static void to_hex(const uint8_t *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void fmqt_sha256_hex(const char *dir, const char *text, char hex[65]) {
  char in_path[320], out_path[320];
  snprintf(in_path, sizeof in_path, "%s/sha256.in", dir);
  snprintf(out_path, sizeof out_path, "%s/sha256.out", dir);
  fmqt_write_file(in_path, text, strlen(text));
  fmqt_openssl(dir, (const char *const[]){"dgst", "-sha256", "-binary", "-out", out_path, in_path,
                                          NULL},
               NULL, 0);
  size_t len;
  char *digest = fmqt_read_file(out_path, &len);
  assert_int_equal(len, 32);
  to_hex((const uint8_t *)digest, 32, hex);
  free(digest);
  unlink(in_path);
  unlink(out_path);
}

void fmqt_genkey(const char *dir, const char *kind, const char *name, char *key, char *pub,
                 size_t cap) {
  snprintf(key, cap, "%s/%s.key", dir, name);
  snprintf(pub, cap, "%s/%s.pub", dir, name);
  if (strcmp(kind, "rsa") == 0) {
    fmqt_openssl(dir, (const char *const[]){"genpkey", "-algorithm", "RSA", "-pkeyopt",
                                            "rsa_keygen_bits:2048", "-out", key, NULL},
                 NULL, 0);
  } else if (strcmp(kind, "ec") == 0) {
    fmqt_openssl(dir, (const char *const[]){"genpkey", "-algorithm", "EC", "-pkeyopt",
                                            "ec_paramgen_curve:P-256", "-out", key, NULL},
                 NULL, 0);
  } else {
    fail_msg("fmqt_genkey: unknown kind %s", kind);
  }
  fmqt_openssl(dir, (const char *const[]){"pkey", "-in", key, "-pubout", "-out", pub, NULL},
               NULL, 0);
}

void fmqt_base64url(const void *in, size_t n, char *out) {
  fmqt_base64_encode(in, n, out);
  size_t o = 0;
  for (size_t i = 0; out[i] != '\0'; i++) {
    if (out[i] == '=') {
      break;
    }
    out[o++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
  }
  out[o] = '\0';
}

/* Copies the next "INTEGER :HEX" of openssl asn1parse output after *pos
 * into out as a big-endian number of exactly 32 bytes. */
static void next_integer(const char *text, const char **pos, uint8_t out[32]) {
  const char *p = strstr(*pos, "INTEGER");
  if (p == NULL || (p = strchr(p, ':')) == NULL) {
    fail_msg("no INTEGER in openssl asn1parse output:\n%s", text);
  }
  p++;
  size_t n = 0;
  while (hex_value(p[n]) >= 0) {
    n++;
  }
  /* DER keeps a leading zero byte for a set high bit, drops other ones. */
  while (n > 64 && p[0] == '0' && p[1] == '0') {
    p += 2;
    n -= 2;
  }
  if (n == 0 || n > 64 || n % 2 != 0) {
    fail_msg("odd INTEGER in openssl asn1parse output:\n%s", text);
  }
  memset(out, 0, 32);
  uint8_t *dst = out + 32 - n / 2;
  for (size_t i = 0; i < n; i += 2) {
    *dst++ = (uint8_t)(hex_value(p[i]) << 4 | hex_value(p[i + 1]));
  }
  *pos = p + n;
}

/* Signs input_path with alg and key; returns the signature (malloc'd) and
 * its length in *len. */
static uint8_t *sign(const char *dir, const char *alg, const char *key, const char *input_path,
                     size_t *len) {
  char sig_path[320];
  snprintf(sig_path, sizeof sig_path, "%s/jwt.sig", dir);
  if (alg[0] == 'H') {
    const char *digest = strcmp(alg, "HS384") == 0   ? "-sha384"
                         : strcmp(alg, "HS512") == 0 ? "-sha512"
                                                     : "-sha256";
    size_t key_len = strlen(key);
    char *macopt = malloc(2 * key_len + 8);
    assert_non_null(macopt);
    memcpy(macopt, "hexkey:", 7);
    to_hex((const uint8_t *)key, key_len, macopt + 7);
    fmqt_openssl(dir, (const char *const[]){"dgst", digest, "-mac", "HMAC", "-macopt", macopt,
                                            "-binary", "-out", sig_path, input_path, NULL},
                 NULL, 0);
    free(macopt);
  } else {
    fmqt_openssl(dir, (const char *const[]){"dgst", "-sha256", "-sign", key, "-binary", "-out",
                                            sig_path, input_path, NULL},
                 NULL, 0);
  }
  uint8_t *sig = (uint8_t *)fmqt_read_file(sig_path, len);
  if (strcmp(alg, "ES256") == 0) {
    char text[4096];
    fmqt_openssl(dir, (const char *const[]){"asn1parse", "-inform", "DER", "-in", sig_path,
                                            NULL},
                 text, sizeof text);
    const char *pos = text;
    uint8_t *rs = malloc(64);
    assert_non_null(rs);
    next_integer(text, &pos, rs);
    next_integer(text, &pos, rs + 32);
    free(sig);
    sig = rs;
    *len = 64;
  }
  unlink(sig_path);
  return sig;
}

char *fmqt_jwt(const char *dir, const char *alg, const char *header, const char *claims,
               const char *key) {
  char default_header[64];
  int der = strcmp(alg, "ES256-DER") == 0;
  /* openssl dgst -sign leaves an ECDSA signature in DER, as for RS256. */
  const char *sign_alg = der ? "RS256" : alg;
  if (header == NULL) {
    snprintf(default_header, sizeof default_header, "{\"alg\":\"%.10s\",\"typ\":\"JWT\"}",
             der ? "ES256" : alg);
    header = default_header;
  }
  size_t hlen = strlen(header), clen = strlen(claims);
  char *token = malloc(4 * ((hlen + 2) / 3) + 4 * ((clen + 2) / 3) + 4 * ((512 + 2) / 3) + 4);
  assert_non_null(token);
  fmqt_base64url(header, hlen, token);
  size_t n = strlen(token);
  token[n++] = '.';
  fmqt_base64url(claims, clen, token + n);
  n += strlen(token + n);
  if (strcmp(alg, "none") != 0) {
    char input_path[320];
    snprintf(input_path, sizeof input_path, "%s/jwt.in", dir);
    fmqt_write_file(input_path, token, n);
    size_t sig_len;
    uint8_t *sig = sign(dir, sign_alg, key, input_path, &sig_len);
    unlink(input_path);
    assert_true(sig_len <= 512);
    token[n++] = '.';
    fmqt_base64url(sig, sig_len, token + n);
    free(sig);
  } else {
    token[n++] = '.';
    token[n] = '\0';
  }
  return token;
}

void fmqt_url_encode(const char *text, char *out) {
  static const char digits[] = "0123456789ABCDEF";
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '.' || *p == '_' || *p == '~') {
      out[o++] = (char)*p;
    } else {
      out[o++] = '%';
      out[o++] = digits[*p >> 4];
      out[o++] = digits[*p & 15];
    }
  }
  out[o] = '\0';
}
