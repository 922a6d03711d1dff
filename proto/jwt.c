#include "jwt.h"

#include "base64.h"
#include "error.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  enum fmq_jwt_alg alg;
} jwt_algs[] = {
    {"HS256", FMQ_JWT_HS256}, {"HS384", FMQ_JWT_HS384}, {"HS512", FMQ_JWT_HS512},
    {"RS256", FMQ_JWT_RS256}, {"ES256", FMQ_JWT_ES256},
};

unsigned fmq_jwt_alg_from_name(const char *name) {
  for (size_t i = 0; i < sizeof(jwt_algs) / sizeof(jwt_algs[0]); i++) {
    if (strcmp(jwt_algs[i].name, name) == 0)
      return jwt_algs[i].alg;
  }
  return 0;
}

/* OpenSSL keeps the reasons for a failure in a per-thread queue; a stale
 * entry would be taken for the cause of some later, unrelated failure (TLS
 * reads the queue too). */
static int jwt_init_fail(struct fmq_jwt_verifier *v, char *msg, size_t msglen, const char *why) {
  ERR_clear_error();
  fmq_jwt_verifier_close(v);
  snprintf(msg, msglen, "%s", why);
  return -1;
}

/* Why key cannot serve algs, or NULL when it can. */
static const char *jwt_key_unfit(EVP_PKEY *key, unsigned algs) {
  char group[64];

  if (algs & FMQ_JWT_RS256) {
    if (!EVP_PKEY_is_a(key, "RSA"))
      return "the public key is not an RSA key, which RS256 needs";
    if (EVP_PKEY_get_bits(key) < 2048)
      return "the RSA public key has fewer than the 2048 bits RS256 needs";
  }
  if (algs & FMQ_JWT_ES256) {
    if (!EVP_PKEY_is_a(key, "EC"))
      return "the public key is not an EC key, which ES256 needs";
    if (!EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) ||
        strcmp(group, "prime256v1") != 0)
      return "the EC public key is not on curve P-256, which ES256 needs";
  }
  return NULL;
}

static const char *jwt_read_key(struct fmq_jwt_verifier *v, const struct fmq_jwt_options *o) {
  BIO *bio;

  if (o->public_key_pem == NULL || o->public_key_pem_len == 0)
    return "RS256 and ES256 need a public key";
  if (o->public_key_pem_len > INT_MAX)
    return "the public key is too long";
  bio = BIO_new_mem_buf(o->public_key_pem, (int)o->public_key_pem_len);
  if (bio == NULL)
    return "out of memory";
  v->key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (v->key == NULL)
    return "the public key is not a PEM public key (BEGIN PUBLIC KEY)";
  return jwt_key_unfit(v->key, o->algorithms);
}

int fmq_jwt_verifier_init(struct fmq_jwt_verifier *v, const struct fmq_jwt_options *o, char *msg,
                          size_t msglen) {
  const char *why;

  memset(v, 0, sizeof(*v));
  v->algorithms = o->algorithms;
  v->leeway_s = o->leeway_s;
  v->require_exp = o->require_exp;
  if (o->algorithms == 0)
    return jwt_init_fail(v, msg, msglen, "no algorithm is allowed");
  if (o->algorithms & ~(unsigned)(FMQ_JWT_HMAC_ALGS | FMQ_JWT_KEY_ALGS))
    return jwt_init_fail(v, msg, msglen, "unknown algorithm");
  if (o->algorithms & FMQ_JWT_HMAC_ALGS) {
    if (o->secret == NULL || o->secret_len == 0)
      return jwt_init_fail(v, msg, msglen, "HS256, HS384 and HS512 need a non-empty secret");
    if (o->secret_len > INT_MAX)
      return jwt_init_fail(v, msg, msglen, "the secret is too long");
    v->secret = malloc(o->secret_len);
    if (v->secret == NULL)
      return jwt_init_fail(v, msg, msglen, "out of memory");
    memcpy(v->secret, o->secret, o->secret_len);
    v->secret_len = o->secret_len;
  }
  if (o->algorithms & FMQ_JWT_KEY_ALGS) {
    why = jwt_read_key(v, o);
    if (why != NULL)
      return jwt_init_fail(v, msg, msglen, why);
  }
  if (o->issuer != NULL && o->issuer[0] != '\0' && (v->issuer = strdup(o->issuer)) == NULL)
    return jwt_init_fail(v, msg, msglen, "out of memory");
  if (o->audience != NULL && o->audience[0] != '\0' &&
      (v->audience = strdup(o->audience)) == NULL)
    return jwt_init_fail(v, msg, msglen, "out of memory");
  return 0;
}

void fmq_jwt_verifier_close(struct fmq_jwt_verifier *v) {
  OPENSSL_clear_free(v->secret, v->secret_len);
  EVP_PKEY_free(v->key);
  free(v->issuer);
  free(v->audience);
  memset(v, 0, sizeof(*v));
}

static int jwt_refuse(const char **why, const char *reason) {
  *why = reason;
  return FMQ_EAUTH;
}

/* base64url without padding (RFC 7515 section 2). The unused bits of the
 * last character must be zero, so that each value has one encoding. *out
 * is a new buffer. */
static int jwt_b64url_decode(const char *s, size_t len, uint8_t **out, size_t *out_len) {
  int n = fmq_base64_decode_new(s, len, FMQ_BASE64_URL | FMQ_BASE64_CANONICAL, out);

  if (n < 0)
    return n == FMQ_ENOMEM ? n : FMQ_EAUTH;
  *out_len = (size_t)n;
  return 0;
}

/* A base64url JSON object (duplicate keys refused) into *obj. Strings
 * holding \u0000 are refused too: a claim read as a C string must not end
 * early ("alice\u0000x" is not "alice"). */
static int jwt_decode_object(const char *s, size_t len, json_t **obj, const char **why) {
  json_error_t jerr;
  uint8_t *raw;
  size_t n;
  int rc = jwt_b64url_decode(s, len, &raw, &n);

  if (rc != 0)
    return rc == FMQ_EAUTH ? jwt_refuse(why, "malformed token") : rc;
  *obj = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, &jerr);
  free(raw);
  if (*obj == NULL && json_error_code(&jerr) == json_error_out_of_memory)
    return FMQ_ENOMEM;
  if (!json_is_object(*obj)) {
    json_decref(*obj);
    *obj = NULL;
    return jwt_refuse(why, "malformed token");
  }
  return 0;
}

/* The header's algorithm, when v allows it, into *alg. */
static int jwt_header_alg(const struct fmq_jwt_verifier *v, const char *s, size_t len,
                          unsigned *alg, const char **why) {
  json_t *header, *name;
  int rc = jwt_decode_object(s, len, &header, why);

  if (rc != 0)
    return rc;
  name = json_object_get(header, "alg");
  if (!json_is_string(name))
    rc = jwt_refuse(why, "malformed token");
  else if (json_object_get(header, "crit") != NULL)
    rc = jwt_refuse(why, "unsupported critical header");
  else if ((*alg = fmq_jwt_alg_from_name(json_string_value(name)) & v->algorithms) == 0)
    rc = jwt_refuse(why, "algorithm not allowed");
  json_decref(header);
  return rc;
}

static int jwt_check_hmac(const struct fmq_jwt_verifier *v, unsigned alg, const char *input,
                          size_t len, const uint8_t *sig, size_t sig_len) {
  const EVP_MD *md = alg == FMQ_JWT_HS512   ? EVP_sha512()
                     : alg == FMQ_JWT_HS384 ? EVP_sha384()
                                            : EVP_sha256();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len;

  if (HMAC(md, v->secret, (int)v->secret_len, (const unsigned char *)input, len, mac, &mac_len) ==
      NULL)
    return FMQ_ENOMEM;
  return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0 ? 0 : FMQ_EAUTH;
}

/* JWS carries an ES256 signature as R||S, 32 bytes each (RFC 7518 section
 * 3.4); OpenSSL verifies the DER form. *der is OpenSSL's. */
static int jwt_es256_der(const uint8_t *sig, size_t sig_len, unsigned char **der, size_t *der_len) {
  ECDSA_SIG *es;
  BIGNUM *r, *s;
  int n;

  if (sig_len != 64)
    return FMQ_EAUTH;
  es = ECDSA_SIG_new();
  r = BN_bin2bn(sig, 32, NULL);
  s = BN_bin2bn(sig + 32, 32, NULL);
  if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    return FMQ_ENOMEM;
  }
  *der = NULL;
  n = i2d_ECDSA_SIG(es, der);
  ECDSA_SIG_free(es);
  if (n <= 0)
    return FMQ_ENOMEM;
  *der_len = (size_t)n;
  return 0;
}

/* RS256 and ES256 both hash with SHA-256; an RSA key's default padding is
 * PKCS #1 v1.5. */
static int jwt_check_key(const struct fmq_jwt_verifier *v, unsigned alg, const char *input,
                         size_t len, const uint8_t *sig, size_t sig_len) {
  unsigned char *der = NULL;
  EVP_MD_CTX *ctx;
  int rc = 0;

  if (alg == FMQ_JWT_ES256) {
    rc = jwt_es256_der(sig, sig_len, &der, &sig_len);
    if (rc != 0)
      return rc;
    sig = der;
  }
  ctx = EVP_MD_CTX_new();
  if (ctx == NULL)
    rc = FMQ_ENOMEM;
  else if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, v->key) != 1 ||
           EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, len) != 1)
    rc = FMQ_EAUTH;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  /* A refused signature leaves reasons in OpenSSL's queue (see jwt_init_fail). */
  ERR_clear_error();
  return rc;
}

static int jwt_check_signature(const struct fmq_jwt_verifier *v, unsigned alg, const char *input,
                               size_t len, const char *s, size_t s_len, const char **why) {
  uint8_t *sig;
  size_t sig_len;
  int rc = jwt_b64url_decode(s, s_len, &sig, &sig_len);

  if (rc != 0)
    return rc == FMQ_EAUTH ? jwt_refuse(why, "malformed token") : rc;
  if (alg & FMQ_JWT_HMAC_ALGS)
    rc = jwt_check_hmac(v, alg, input, len, sig, sig_len);
  else
    rc = jwt_check_key(v, alg, input, len, sig, sig_len);
  free(sig);
  return rc == FMQ_EAUTH ? jwt_refuse(why, "bad signature") : rc;
}

/* A NumericDate (RFC 7519 section 2), which may be a real, into whole
 * seconds rounded up: for a whole now, now < x exactly when now < ceil(x),
 * and x <= now + leeway exactly when ceil(x) <= now + leeway. */
static int jwt_time(const json_t *j, int64_t *t) {
  double d;

  if (json_is_integer(j)) {
    *t = json_integer_value(j);
    return 0;
  }
  if (!json_is_real(j))
    return -1;
  d = json_real_value(j);
  if (d >= 0x1p63) {
    *t = INT64_MAX;
  } else if (d <= -0x1p63) {
    *t = INT64_MIN;
  } else {
    *t = (int64_t)d;
    if ((double)*t < d)
      (*t)++;
  }
  return 0;
}

/* Differences are taken as uint64_t: a later time minus an earlier one
 * always fits, whatever the two are. */
static int jwt_check_times(const struct fmq_jwt_verifier *v, const json_t *claims, int64_t now,
                           const char **why) {
  json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
  int64_t t;

  if (exp == NULL) {
    if (v->require_exp)
      return jwt_refuse(why, "no exp claim");
  } else if (jwt_time(exp, &t) != 0) {
    return jwt_refuse(why, "malformed claims");
  } else if (t <= now && (uint64_t)now - (uint64_t)t >= v->leeway_s) {
    return jwt_refuse(why, "expired");
  }
  if (nbf == NULL)
    return 0;
  if (jwt_time(nbf, &t) != 0)
    return jwt_refuse(why, "malformed claims");
  if (t > now && (uint64_t)t - (uint64_t)now > v->leeway_s)
    return jwt_refuse(why, "not yet valid");
  return 0;
}

static int jwt_check_audience(const char *audience, const json_t *aud, const char **why) {
  int found = 0;
  size_t i;
  json_t *e;

  if (aud == NULL)
    return jwt_refuse(why, "wrong audience");
  if (json_is_string(aud))
    return strcmp(json_string_value(aud), audience) == 0 ? 0 : jwt_refuse(why, "wrong audience");
  if (!json_is_array(aud))
    return jwt_refuse(why, "malformed claims");
  /* protocol-v1: accepted when any element matches; others are not read. */
  json_array_foreach(aud, i, e) {
    found |= json_is_string(e) && strcmp(json_string_value(e), audience) == 0;
  }
  return found ? 0 : jwt_refuse(why, "wrong audience");
}

static int jwt_check_claims(const struct fmq_jwt_verifier *v, const json_t *claims, int64_t now,
                            const char **why) {
  json_t *iss = json_object_get(claims, "iss");
  int rc = jwt_check_times(v, claims, now, why);

  if (rc != 0)
    return rc;
  if (v->issuer != NULL) {
    if (iss != NULL && !json_is_string(iss))
      return jwt_refuse(why, "malformed claims");
    if (iss == NULL || strcmp(json_string_value(iss), v->issuer) != 0)
      return jwt_refuse(why, "wrong issuer");
  }
  if (v->audience != NULL)
    return jwt_check_audience(v->audience, json_object_get(claims, "aud"), why);
  return 0;
}

int fmq_jwt_verify(const struct fmq_jwt_verifier *v, const char *token, size_t len, int64_t now,
                   json_t **claims, const char **why) {
  const char *dot1 = len > 0 ? memchr(token, '.', len) : NULL, *dot2, *end = token + len;
  json_t *payload;
  unsigned alg;
  int rc;

  *claims = NULL;
  *why = "out of memory";
  /* Three parts, none empty. A fourth would leave a '.' in the signature,
   * which base64url refuses. */
  dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
  if (dot1 == NULL || dot2 == NULL || dot1 == token || dot2 == dot1 + 1 || dot2 + 1 == end)
    return jwt_refuse(why, "malformed token");
  rc = jwt_header_alg(v, token, (size_t)(dot1 - token), &alg, why);
  if (rc == 0)
    rc = jwt_check_signature(v, alg, token, (size_t)(dot2 - token), dot2 + 1,
                             (size_t)(end - dot2 - 1), why);
  /* The payload is parsed only once it is known to come from the key's
   * holder. */
  if (rc == 0)
    rc = jwt_decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload, why);
  if (rc != 0)
    return rc;
  rc = jwt_check_claims(v, payload, now, why);
  if (rc != 0) {
    json_decref(payload);
    return rc;
  }
  *claims = payload;
  return 0;
}
