/* The input is verified as a token by six verifiers: HS256+HS384 with a
 * fixed secret, RS256 with an RSA-2048 public key, ES256 with a P-256 one
 * (keys/rs256.pub.pem and keys/es256.pub.pem, made by make-jwt-seeds,
 * whose private halves were thrown away). Some check nothing but the signature and the
 * times (exp not required, with or without leeway); the strict ones want
 * exp, an issuer and an audience. An input holding exactly one '.' is also
 * verified as "header.payload" followed by its HS256 signature, so that
 * what lies behind the signature check (the payload and its claims) is
 * reached; the RS256/ES256 seeds reach it as they are.
 *
 * A refusal must give one of the documented reasons, an acceptance a JSON
 * object. What one verifier decides binds the others: a verifier accepts
 * only what its looser twin (the same key, fewer checks, as much leeway or
 * more) accepts, with the same claims; and once a token is accepted, every
 * verifier that allows none of the accepting one's algorithms must refuse
 * it as "algorithm not allowed" (the header is the same for all). */
#include "error.h"
#include "jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FMQ_FUZZ_KEYS_DIR
#error "FMQ_FUZZ_KEYS_DIR must name tests/fuzz/keys"
#endif

#define SECRET "fuzz secret"
#define NOW INT64_C(1700000000)
#define SIGNED_MAX 65536
#define NVERIFIERS 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const reasons[] = {
    "malformed token", "algorithm not allowed", "bad signature",  "expired",
    "not yet valid",   "no exp claim",          "wrong issuer",   "wrong audience",
    "malformed claims", "unsupported critical header",
};

#define HS (FMQ_JWT_HS256 | FMQ_JWT_HS384)
static const struct {
  unsigned algorithms;
  const char *key_file; /* under FMQ_FUZZ_KEYS_DIR; NULL: the secret */
  int strict;           /* exp required, issuer "iss", audience "aud" */
  uint64_t leeway_s;
  int looser;           /* a verifier that accepts all this one does; -1: none */
} specs[NVERIFIERS] = {
    {HS, NULL, 0, 0, 1},
    {HS, NULL, 0, 30, -1},
    {HS, NULL, 1, 30, 1},
    {FMQ_JWT_RS256, "rs256.pub.pem", 0, 30, -1},
    {FMQ_JWT_RS256, "rs256.pub.pem", 1, 30, 3},
    {FMQ_JWT_ES256, "es256.pub.pem", 0, 0, -1},
};

static struct fmq_jwt_verifier verifiers[NVERIFIERS];

static char *read_key(const char *name, size_t *len) {
  char path[512];
  FILE *f;
  char *pem;

  snprintf(path, sizeof(path), "%s/%s", FMQ_FUZZ_KEYS_DIR, name);
  f = fopen(path, "rb");
  pem = malloc(8192);
  if (f == NULL || pem == NULL) {
    fprintf(stderr, "fuzz_jwt: cannot read %s\n", path);
    abort();
  }
  *len = fread(pem, 1, 8192, f);
  fclose(f);
  return pem;
}

static void setup(void) {
  for (size_t i = 0; i < NVERIFIERS; i++) {
    struct fmq_jwt_options o = {
        .algorithms = specs[i].algorithms,
        .leeway_s = specs[i].leeway_s,
        .require_exp = specs[i].strict,
        .issuer = specs[i].strict ? "iss" : NULL,
        .audience = specs[i].strict ? "aud" : NULL,
    };
    char msg[128], *pem = NULL;

    if (specs[i].key_file != NULL) {
      pem = read_key(specs[i].key_file, &o.public_key_pem_len);
      o.public_key_pem = pem;
    } else {
      o.secret = (const uint8_t *)SECRET;
      o.secret_len = strlen(SECRET);
    }
    if (fmq_jwt_verifier_init(&verifiers[i], &o, msg, sizeof(msg)) != 0) {
      fprintf(stderr, "fuzz_jwt: verifier %zu: %s\n", i, msg);
      abort();
    }
    free(pem);
  }
}

static void check(const char *token, size_t len) {
  json_t *claims[NVERIFIERS];
  const char *why[NVERIFIERS];
  int rc[NVERIFIERS];

  for (size_t i = 0; i < NVERIFIERS; i++) {
    size_t r = 0;

    why[i] = NULL;
    rc[i] = fmq_jwt_verify(&verifiers[i], token, len, NOW, &claims[i], &why[i]);
    if (rc[i] == 0) {
      if (!json_is_object(claims[i]))
        abort();
      continue;
    }
    if (rc[i] != FMQ_EAUTH || claims[i] != NULL || why[i] == NULL)
      abort();
    while (r < sizeof(reasons) / sizeof(reasons[0]) && strcmp(why[i], reasons[r]) != 0)
      r++;
    if (r == sizeof(reasons) / sizeof(reasons[0]))
      abort();
  }
  for (size_t i = 0; i < NVERIFIERS; i++) {
    if (rc[i] != 0)
      continue;
    int k = specs[i].looser;
    if (k >= 0 && (rc[k] != 0 || !json_equal(claims[i], claims[k])))
      abort();
    for (size_t j = 0; j < NVERIFIERS; j++)
      if ((specs[i].algorithms & specs[j].algorithms) == 0 &&
          (rc[j] == 0 || strcmp(why[j], "algorithm not allowed") != 0))
        abort();
  }
  for (size_t i = 0; i < NVERIFIERS; i++)
    json_decref(claims[i]);
}

/* input "." and the base64url of its HS256 MAC into a new buffer. */
static char *sign(const uint8_t *input, size_t len, size_t *out_len) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len;
  char *out = malloc(len + 1 + 4 * sizeof(mac) / 3 + 4);
  char *b64;
  int n;

  if (out == NULL || HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), input, len, mac,
                          &mac_len) == NULL)
    abort();
  memcpy(out, input, len);
  out[len] = '.';
  b64 = out + len + 1;
  n = EVP_EncodeBlock((unsigned char *)b64, mac, (int)mac_len);
  while (n > 0 && b64[n - 1] == '=')
    n--;
  for (int i = 0; i < n; i++)
    b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
  *out_len = len + 1 + (size_t)n;
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  const uint8_t *dot = size > 0 ? memchr(data, '.', size) : NULL;
  char *token;
  size_t len;

  if (!ready) {
    setup();
    ready = 1;
  }
  check((const char *)data, size);
  if (dot != NULL && size <= SIGNED_MAX &&
      memchr(dot + 1, '.', size - (size_t)(dot - data) - 1) == NULL) {
    token = sign(data, size, &len);
    check(token, len);
    free(token);
  }
  return 0;
}
