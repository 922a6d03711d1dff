/* The input is verified as a token by two verifiers allowing HS256 and
 * HS384 with a fixed secret: one checks nothing but the signature and the
 * times (exp not required), the other wants exp, an issuer and an audience.
 * An input holding exactly one '.' is also verified as "header.payload"
 * followed by its HS256 signature, so that what lies behind the signature
 * check (the payload and its claims) is reached. A refusal must give one of
 * the documented reasons, an acceptance a JSON object. */
#include "error.h"
#include "jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "fuzz secret"
#define NOW INT64_C(1700000000)
#define SIGNED_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const reasons[] = {
    "malformed token", "algorithm not allowed", "bad signature",  "expired",
    "not yet valid",   "no exp claim",          "wrong issuer",   "wrong audience",
    "malformed claims", "unsupported critical header",
};

static struct fmq_jwt_verifier verifiers[2];

static void setup(void) {
  struct fmq_jwt_options o = {
      .algorithms = FMQ_JWT_HS256 | FMQ_JWT_HS384,
      .secret = (const uint8_t *)SECRET,
      .secret_len = strlen(SECRET),
  };
  char msg[128];

  if (fmq_jwt_verifier_init(&verifiers[0], &o, msg, sizeof(msg)) != 0)
    abort();
  o.require_exp = 1;
  o.leeway_s = 30;
  o.issuer = "iss";
  o.audience = "aud";
  if (fmq_jwt_verifier_init(&verifiers[1], &o, msg, sizeof(msg)) != 0)
    abort();
}

static void check(const char *token, size_t len) {
  for (size_t i = 0; i < sizeof(verifiers) / sizeof(verifiers[0]); i++) {
    json_t *claims = NULL;
    const char *why = NULL;
    size_t r = 0;
    int rc = fmq_jwt_verify(&verifiers[i], token, len, NOW, &claims, &why);

    if (rc == 0) {
      if (!json_is_object(claims))
        abort();
      json_decref(claims);
      continue;
    }
    if (rc != FMQ_EAUTH || claims != NULL || why == NULL)
      abort();
    while (r < sizeof(reasons) / sizeof(reasons[0]) && strcmp(why, reasons[r]) != 0)
      r++;
    if (r == sizeof(reasons) / sizeof(reasons[0]))
      abort();
  }
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
