#ifndef FMQT_JWT_MAKER_H
#define FMQT_JWT_MAKER_H

/* Credentials for tests of auth.mode token and jwt, made at run time with
 * the openssl command line (independent of the gateway's libcrypto code):
 * SHA-256 digests, key pairs from openssl genpkey, and JWS compact tokens
 * signed with HS256/HS384/HS512, RS256 or ES256. Temporary files go to a
 * directory the caller owns (fmqt_make_temp_dir). Main thread only. */

#include <stddef.h>

/* Runs openssl with args (NULL-terminated, without "openssl"); its output
 * (stdout and stderr) is copied into out (cap bytes, NUL-terminated) unless
 * out is NULL. Asserts it exits 0 within 30 s. Returns the output length. */
size_t fmqt_openssl(const char *dir, const char *const *args, char *out, size_t cap);

/* The lower-case hex SHA-256 digest of text (as for "sha256:<hex>" in
 * auth.tokens). */
void fmqt_sha256_hex(const char *dir, const char *text, char hex[65]);

/* Generates a key pair in dir: kind "rsa" (2048 bits) or "ec" (P-256).
 * Writes NAME.key (private, PEM) and NAME.pub (SubjectPublicKeyInfo, PEM)
 * and copies their paths into key and pub (cap bytes each). */
void fmqt_genkey(const char *dir, const char *kind, const char *name, char *key, char *pub,
                 size_t cap);

/* Encodes n bytes as base64url without padding into out
 * (4 * ((n + 2) / 3) + 1 bytes). */
void fmqt_base64url(const void *in, size_t n, char *out);

/* A JWS compact token (malloc'd; the caller frees) over the JSON texts
 * header (NULL: {"alg":ALG,"typ":"JWT"}) and claims, signed as alg says:
 *   "HS256" "HS384" "HS512"  HMAC with key as the secret
 *   "RS256"                  key is an RSA private key's path
 *   "ES256"                  key is an EC P-256 private key's path; the
 *                            signature is converted to R||S (RFC 7518 3.4)
 *   "ES256-DER"              the same, left in openssl's DER form
 *   "none"                   no signature (an empty third part)
 * Header and claims are encoded as given, byte for byte. */
char *fmqt_jwt(const char *dir, const char *alg, const char *header, const char *claims,
               const char *key);

/* Percent-encodes every byte of text that is not unreserved (RFC 3986)
 * into out (3 * strlen(text) + 1 bytes), for ?token= and ?topic=. */
void fmqt_url_encode(const char *text, char *out);

#endif
