#ifndef FMQ_JWT_H
#define FMQ_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* JSON Web Tokens (RFC 7519) in JWS compact form (RFC 7515): HS256, HS384
 * and HS512 with a shared secret, RS256 and ES256 with a public key, through
 * OpenSSL's libcrypto. Pure code: no files, no clock (the caller passes the
 * time). A verifier is immutable after init; any thread may use it. */

enum fmq_jwt_alg {
  FMQ_JWT_HS256 = 1u << 0,
  FMQ_JWT_HS384 = 1u << 1,
  FMQ_JWT_HS512 = 1u << 2,
  FMQ_JWT_RS256 = 1u << 3,
  FMQ_JWT_ES256 = 1u << 4
};
#define FMQ_JWT_HMAC_ALGS (FMQ_JWT_HS256 | FMQ_JWT_HS384 | FMQ_JWT_HS512)
#define FMQ_JWT_KEY_ALGS (FMQ_JWT_RS256 | FMQ_JWT_ES256)

/* "HS256" ... "ES256" (exact, case-sensitive as in JWS) -> its flag; 0 for
 * any other name, "none" included. */
unsigned fmq_jwt_alg_from_name(const char *name);

struct fmq_jwt_options {
  unsigned algorithms;         /* FMQ_JWT_* flags accepted; nothing else is */
  const uint8_t *secret;       /* HS*: the shared secret; may be NULL without HS algs */
  size_t secret_len;
  const char *public_key_pem;  /* RS256/ES256: a PEM public key (SubjectPublicKeyInfo);
                                  NULL without RS256/ES256 */
  size_t public_key_pem_len;
  const char *issuer;          /* NULL or "": "iss" not checked */
  const char *audience;        /* NULL or "": "aud" not checked */
  uint64_t leeway_s;           /* tolerance for "exp" and "nbf", seconds */
  int require_exp;             /* a token without "exp" is refused */
};

struct fmq_jwt_verifier {
  unsigned algorithms;
  uint8_t *secret;             /* owned copy */
  size_t secret_len;
  void *key;                   /* owned EVP_PKEY, or NULL */
  char *issuer, *audience;     /* owned; NULL: not checked */
  uint64_t leeway_s;
  int require_exp;
};

/* Copies what it needs from o (o's pointers are not kept). Checks that the
 * key fits the algorithms: RS256 needs an RSA key (2048 bits or more), ES256
 * an EC P-256 key, HS* a non-empty secret. Returns 0, or -1 with msg (a
 * reason without prefix, e.g. "the public key is not an RSA key, which
 * RS256 needs"). On -1 nothing needs closing. */
int fmq_jwt_verifier_init(struct fmq_jwt_verifier *v, const struct fmq_jwt_options *o, char *msg,
                          size_t msglen);
void fmq_jwt_verifier_close(struct fmq_jwt_verifier *v);

/* Verifies token (len bytes, not NUL-terminated) at time now (seconds since
 * the epoch): three base64url parts (no padding); a header that is a JSON
 * object whose "alg" is one of v's algorithms ("none" never is) and that has
 * no "crit"; the signature over "header.payload" (ES256: the 64-byte R||S
 * form of RFC 7518 3.4); a payload that is a JSON object; "exp" (a number;
 * required when require_exp) with now < exp + leeway; "nbf" (a number) with
 * now + leeway >= nbf; "iss" equal to issuer when one is set (missing:
 * refused); "aud", a string or an array of strings, one equal to audience
 * when one is set (missing: refused). Returns 0 with *claims set to the
 * payload object (a new reference, the caller's), or FMQ_EAUTH with *why
 * set to a static reason ("expired", "bad signature", "algorithm not
 * allowed", ...) that never contains any part of the token, or FMQ_ENOMEM. */
int fmq_jwt_verify(const struct fmq_jwt_verifier *v, const char *token, size_t len, int64_t now,
                   json_t **claims, const char **why);

#endif
