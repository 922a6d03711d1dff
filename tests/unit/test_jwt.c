#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "jwt.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Tokens are checked at this time; claims are written relative to it. */
#define NOW INT64_C(1700000000)
#define SECRET "a shared secret of at least 32 bytes for HS512"
#define TOKEN_MAX 4096

/* Keys and vectors come from the openssl command-line tool, run in a
 * directory made for the group and removed after it. */
static struct {
  char dir[64];
  char rsa[128], rsa2[128], ec[128], ec2[128]; /* private key files */
  char *rsa_pub, *rsa1024_pub, *ec_pub, *ec384_pub, *rsa_priv;
} env;

/* Runs cmd through the shell, requires exit status 0 and returns the length
 * of its output (at most cap bytes, read into out). */
static size_t fmqt_run(const char *cmd, void *out, size_t cap) {
  FILE *p = popen(cmd, "r");
  size_t n = 0, got;
  char sink[256];
  int status;

  assert_non_null(p);
  while (n < cap && (got = fread((char *)out + n, 1, cap - n, p)) > 0)
    n += got;
  while (fread(sink, 1, sizeof(sink), p) > 0)
    fail_msg("%s: more than %zu bytes of output", cmd, cap);
  status = pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("%s: failed (status %d)", cmd, status);
  return n;
}

static void fmqt_path(char *path, size_t cap, const char *name) {
  assert_true((size_t)snprintf(path, cap, "%s/%s", env.dir, name) < cap);
}

static void fmqt_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");

  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

/* Reads a file of less than cap bytes. */
static size_t fmqt_read(const char *path, void *data, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;

  assert_non_null(f);
  n = fread(data, 1, cap, f);
  assert_true(n < cap);
  fclose(f);
  return n;
}

static char *fmqt_read_text(const char *path) {
  char *s = calloc(1, TOKEN_MAX);

  assert_non_null(s);
  fmqt_read(path, s, TOKEN_MAX - 1);
  return s;
}

/* Makes a private key file and returns its public key's PEM text. */
static char *fmqt_keygen(char *key, size_t cap, const char *name, const char *params) {
  char cmd[512], pub[160], out[1];

  fmqt_path(key, cap, name);
  assert_true((size_t)snprintf(pub, sizeof(pub), "%s.pub", key) < sizeof(pub));
  snprintf(cmd, sizeof(cmd),
           "openssl genpkey -quiet %s -out %s && openssl pkey -in %s -pubout -out %s", params, key,
           key, pub);
  fmqt_run(cmd, out, sizeof(out));
  return fmqt_read_text(pub);
}

#define RSA_PARAMS(bits) "-algorithm RSA -pkeyopt rsa_keygen_bits:" #bits
#define EC_PARAMS(curve) "-algorithm EC -pkeyopt ec_paramgen_curve:" #curve

static int fmqt_setup(void **state) {
  char unused[128];

  (void)state;
  strcpy(env.dir, "/tmp/fmq-test-jwt-XXXXXX");
  assert_non_null(mkdtemp(env.dir));
  env.rsa_pub = fmqt_keygen(env.rsa, sizeof(env.rsa), "rsa", RSA_PARAMS(2048));
  free(fmqt_keygen(env.rsa2, sizeof(env.rsa2), "rsa2", RSA_PARAMS(2048)));
  env.rsa1024_pub = fmqt_keygen(unused, sizeof(unused), "rsa1024", RSA_PARAMS(1024));
  env.ec_pub = fmqt_keygen(env.ec, sizeof(env.ec), "ec", EC_PARAMS(P-256));
  free(fmqt_keygen(env.ec2, sizeof(env.ec2), "ec2", EC_PARAMS(P-256)));
  env.ec384_pub = fmqt_keygen(unused, sizeof(unused), "ec384", EC_PARAMS(P-384));
  env.rsa_priv = fmqt_read_text(env.rsa);
  return 0;
}

static int fmqt_teardown(void **state) {
  DIR *d = opendir(env.dir);
  struct dirent *e;
  char path[384];

  (void)state;
  assert_non_null(d);
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", env.dir, e->d_name);
    assert_int_equal(unlink(path), 0);
  }
  closedir(d);
  assert_int_equal(rmdir(env.dir), 0);
  free(env.rsa_pub);
  free(env.rsa1024_pub);
  free(env.ec_pub);
  free(env.ec384_pub);
  free(env.rsa_priv);
  return 0;
}

/* base64url without padding, written by the test so that a bug shared with
 * the decoder cannot hide. Returns the length written (out is terminated). */
static size_t fmqt_b64url(const void *data, size_t len, char *out) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const uint8_t *in = data;
  size_t n = 0;

  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < len ? in[i + 2] : 0);
    size_t chars = len - i >= 3 ? 4 : len - i + 1;
    for (size_t k = 0; k < chars; k++)
      out[n++] = abc[v >> (18 - 6 * k) & 63];
  }
  out[n] = '\0';
  return n;
}

static int fmqt_hex_digit(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c - 'a' + 10;
}

/* The R||S form of a DER ECDSA signature, from `openssl asn1parse`'s listing
 * of its two INTEGERs, each padded to 32 bytes. */
static void fmqt_der_to_rs(const char *der_path, uint8_t rs[64]) {
  char cmd[256], out[1024], *line, *save;
  size_t n;
  int ints = 0;

  snprintf(cmd, sizeof(cmd), "openssl asn1parse -inform DER -in %s", der_path);
  n = fmqt_run(cmd, out, sizeof(out) - 1);
  out[n] = '\0';
  memset(rs, 0, 64);
  for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    char *hex = strrchr(line, ':');
    size_t len;

    if (strstr(line, "INTEGER") == NULL)
      continue;
    assert_true(ints < 2);
    assert_non_null(hex);
    hex++;
    len = strcspn(hex, " \r");
    assert_true(len <= 64);
    for (size_t i = 0; i < len; i++)
      rs[32 * ints + 31 - i / 2] |= (uint8_t)(fmqt_hex_digit(hex[len - 1 - i]) << (4 * (i % 2)));
    ints++;
  }
  assert_int_equal(ints, 2);
}

/* The JWS signature of input: how is "HS256", "HS384" or "HS512" (key: the
 * secret) or "RS256" or "ES256" (key: a private key file). */
static size_t fmqt_sign(const char *how, const char *key, const char *input, uint8_t *sig) {
  char in_path[128], der_path[128], cmd[TOKEN_MAX];
  size_t n;

  fmqt_path(in_path, sizeof(in_path), "input");
  fmqt_write(in_path, input, strlen(input));
  if (how[0] == 'H') {
    n = (size_t)snprintf(cmd, sizeof(cmd), "openssl dgst -sha%s -mac HMAC -binary -macopt hexkey:",
                         how + 2);
    for (const char *k = key; *k != '\0'; k++)
      n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "%02x", (unsigned char)*k);
    assert_true((size_t)snprintf(cmd + n, sizeof(cmd) - n, " %s", in_path) < sizeof(cmd) - n);
    return fmqt_run(cmd, sig, 64);
  }
  snprintf(cmd, sizeof(cmd), "openssl dgst -sha256 -sign %s -binary %s", key, in_path);
  if (strcmp(how, "RS256") == 0)
    return fmqt_run(cmd, sig, 512);
  assert_string_equal(how, "ES256");
  n = fmqt_run(cmd, sig, 128);
  fmqt_path(der_path, sizeof(der_path), "sig.der");
  fmqt_write(der_path, sig, n);
  fmqt_der_to_rs(der_path, sig);
  return 64;
}

/* Appends "." and the base64url of data to tok. */
static void fmqt_append(char *tok, const void *data, size_t len) {
  size_t n = strlen(tok);

  assert_true(n + 2 + (len + 2) / 3 * 4 < TOKEN_MAX);
  tok[n] = '.';
  fmqt_b64url(data, len, tok + n + 1);
}

/* "header.payload" into tok, both given as JSON text. */
static void fmqt_input(char *tok, const char *header, const char *payload) {
  fmqt_b64url(header, strlen(header), tok);
  fmqt_append(tok, payload, strlen(payload));
}

/* A token signed as how says (see fmqt_sign) with key. header NULL: the
 * usual {"alg":how,"typ":"JWT"}. The payload is a printf format. */
__attribute__((format(printf, 5, 6))) static void
fmqt_jwt(char *tok, const char *how, const char *key, const char *header, const char *fmt, ...) {
  char payload[1024], usual[64];
  uint8_t sig[512];
  va_list ap;

  va_start(ap, fmt);
  assert_true((size_t)vsnprintf(payload, sizeof(payload), fmt, ap) < sizeof(payload));
  va_end(ap);
  if (header == NULL) {
    snprintf(usual, sizeof(usual), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", how);
    header = usual;
  }
  fmqt_input(tok, header, payload);
  fmqt_append(tok, sig, fmqt_sign(how, key, tok, sig));
}

/* The key (or secret) fmqt_jwt signs with for an algorithm's valid token. */
static const char *fmqt_key_for(const char *how) {
  return how[0] == 'H' ? SECRET : how[0] == 'R' ? env.rsa : env.ec;
}

/* Options for algs with the test's secret and the matching public key;
 * "exp" required, no leeway. */
static struct fmq_jwt_options fmqt_options(unsigned algs) {
  struct fmq_jwt_options o = {.algorithms = algs, .require_exp = 1};

  if (algs & FMQ_JWT_HMAC_ALGS) {
    o.secret = (const uint8_t *)SECRET;
    o.secret_len = strlen(SECRET);
  }
  if (algs & (FMQ_JWT_RS256 | FMQ_JWT_ES256)) {
    o.public_key_pem = algs & FMQ_JWT_RS256 ? env.rsa_pub : env.ec_pub;
    o.public_key_pem_len = strlen(o.public_key_pem);
  }
  return o;
}

static void fmqt_init(struct fmq_jwt_verifier *v, const struct fmq_jwt_options *o) {
  char msg[256] = "";

  if (fmq_jwt_verifier_init(v, o, msg, sizeof(msg)) != 0)
    fail_msg("init: %s", msg);
}

/* Verifies a copy of the first len bytes of token that nothing follows, so
 * that reading past len is an ASan error. */
static int fmqt_verify_n(const struct fmq_jwt_verifier *v, const char *token, size_t len,
                         int64_t now, json_t **claims, const char **why) {
  char *copy = malloc(len + 1);
  int rc;

  assert_non_null(copy);
  memcpy(copy, token, len);
  *claims = NULL;
  *why = NULL;
  rc = fmq_jwt_verify(v, copy, len, now, claims, why);
  free(copy);
  return rc;
}

static const char *const reasons[] = {
    "malformed token", "algorithm not allowed", "bad signature",  "expired",
    "not yet valid",   "no exp claim",          "wrong issuer",   "wrong audience",
    "malformed claims", "unsupported critical header",
};

/* Refused with reason, or with any documented reason when reason is NULL. */
static void fmqt_refused_n(const struct fmq_jwt_verifier *v, const char *token, size_t len,
                           int64_t now, const char *reason) {
  json_t *claims;
  const char *why;
  size_t i;

  if (fmqt_verify_n(v, token, len, now, &claims, &why) != FMQ_EAUTH)
    fail_msg("accepted or error (%s): %.*s", why ? why : "", (int)len, token);
  assert_null(claims);
  assert_non_null(why);
  for (i = 0; i < ARRAY_LEN(reasons) && strcmp(why, reasons[i]) != 0; i++) {
  }
  assert_true(i < ARRAY_LEN(reasons));
  if (reason != NULL && strcmp(why, reason) != 0)
    fail_msg("refused as \"%s\", not \"%s\": %.*s", why, reason, (int)len, token);
}

static void fmqt_refused(const struct fmq_jwt_verifier *v, const char *token, const char *reason) {
  fmqt_refused_n(v, token, strlen(token), NOW, reason);
}

/* Accepted at now, with the claims the token carries ("sub" is "alice"). */
static void fmqt_accepted_at(const struct fmq_jwt_verifier *v, const char *token, int64_t now) {
  json_t *claims;
  const char *why;

  if (fmqt_verify_n(v, token, strlen(token), now, &claims, &why) != 0)
    fail_msg("refused (%s): %s", why ? why : "?", token);
  assert_true(json_is_object(claims));
  assert_string_equal(json_string_value(json_object_get(claims, "sub")), "alice");
  json_decref(claims);
}

static void fmqt_accepted(const struct fmq_jwt_verifier *v, const char *token) {
  fmqt_accepted_at(v, token, NOW);
}

static void test_alg_from_name(void **state) {
  static const char *const others[] = {"none", "None", "NONE", "", "hs256", "HS256 ", "HS25",
                                       "RS384", "ES384", "PS256", "EdDSA"};

  (void)state;
  assert_int_equal(fmq_jwt_alg_from_name("HS256"), FMQ_JWT_HS256);
  assert_int_equal(fmq_jwt_alg_from_name("HS384"), FMQ_JWT_HS384);
  assert_int_equal(fmq_jwt_alg_from_name("HS512"), FMQ_JWT_HS512);
  assert_int_equal(fmq_jwt_alg_from_name("RS256"), FMQ_JWT_RS256);
  assert_int_equal(fmq_jwt_alg_from_name("ES256"), FMQ_JWT_ES256);
  for (size_t i = 0; i < ARRAY_LEN(others); i++)
    assert_int_equal(fmq_jwt_alg_from_name(others[i]), 0);
}

static void test_valid_each_alg(void **state) {
  static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "ES256"};
  struct fmq_jwt_verifier v, all_hmac;
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HMAC_ALGS);
  char tok[TOKEN_MAX];

  (void)state;
  fmqt_init(&all_hmac, &o);
  for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
    o = fmqt_options(fmq_jwt_alg_from_name(algs[i]));
    fmqt_init(&v, &o);
    fmqt_jwt(tok, algs[i], fmqt_key_for(algs[i]), NULL,
             "{\"sub\":\"alice\",\"exp\":%lld,\"iat\":%lld}", (long long)(NOW + 3600),
             (long long)NOW);
    fmqt_accepted(&v, tok);
    if (algs[i][0] == 'H')
      fmqt_accepted(&all_hmac, tok);
    fmq_jwt_verifier_close(&v);
  }
  /* "typ" and "kid" are ignored, whatever they hold. */
  o = fmqt_options(FMQ_JWT_HS256);
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, "{\"kid\":[1],\"alg\":\"HS256\",\"typ\":7}",
           "{\"sub\":\"alice\",\"exp\":%lld}", (long long)(NOW + 1));
  fmqt_accepted(&v, tok);
  fmq_jwt_verifier_close(&v);
  fmq_jwt_verifier_close(&all_hmac);
}

/* Only len bytes are read: what follows does not count, and every proper
 * prefix of a valid token is refused. */
static void test_honours_len(void **state) {
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HS256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX];
  json_t *claims;
  const char *why;
  size_t len;

  (void)state;
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld}", (long long)(NOW + 60));
  len = strlen(tok);
  strcpy(tok + len, "AAAA.x");
  assert_int_equal(fmqt_verify_n(&v, tok, len, NOW, &claims, &why), 0);
  json_decref(claims);
  for (size_t n = 0; n < len; n++)
    fmqt_refused_n(&v, tok, n, NOW, NULL);
  assert_int_equal(fmq_jwt_verify(&v, NULL, 0, NOW, &claims, &why), FMQ_EAUTH);
  assert_string_equal(why, "malformed token");
  fmq_jwt_verifier_close(&v);
}

static void test_exp_nbf(void **state) {
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HS256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX];

  (void)state;
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld}", (long long)(NOW - 1));
  fmqt_refused(&v, tok, "expired");
  /* exp is the first second at which the token is no longer valid. */
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld}", (long long)NOW);
  fmqt_refused(&v, tok, "expired");
  fmqt_accepted_at(&v, tok, NOW - 1);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":%lld}",
           (long long)(NOW + 60), (long long)(NOW + 1));
  fmqt_refused(&v, tok, "not yet valid");
  fmqt_accepted_at(&v, tok, NOW + 1);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":%lld}",
           (long long)(NOW + 60), (long long)NOW);
  fmqt_accepted(&v, tok);
  /* A real NumericDate counts to the fraction. */
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld.5,\"nbf\":%lld.5}",
           (long long)NOW, (long long)(NOW - 1));
  fmqt_accepted(&v, tok);
  fmqt_refused_n(&v, tok, strlen(tok), NOW + 1, "expired");
  fmqt_refused_n(&v, tok, strlen(tok), NOW - 1, "not yet valid");
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":1e300,\"nbf\":-1e300}");
  fmqt_accepted(&v, tok);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":-1e300}");
  fmqt_refused(&v, tok, "expired");
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":1e300}",
           (long long)(NOW + 60));
  fmqt_refused(&v, tok, "not yet valid");
  fmq_jwt_verifier_close(&v);
}

static void test_leeway(void **state) {
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HS256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX];

  (void)state;
  o.leeway_s = 30;
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld}", (long long)(NOW - 10));
  fmqt_accepted(&v, tok);
  fmqt_refused_n(&v, tok, strlen(tok), NOW + 20, "expired");
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld}", (long long)(NOW - 40));
  fmqt_refused(&v, tok, "expired");
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":%lld}",
           (long long)(NOW + 600), (long long)(NOW + 10));
  fmqt_accepted(&v, tok);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":%lld}",
           (long long)(NOW + 600), (long long)(NOW + 30));
  fmqt_accepted(&v, tok);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":%lld}",
           (long long)(NOW + 600), (long long)(NOW + 40));
  fmqt_refused(&v, tok, "not yet valid");
  fmq_jwt_verifier_close(&v);

  /* The widest leeway and the farthest times must not overflow. */
  o.leeway_s = UINT64_MAX;
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, NULL,
           "{\"sub\":\"alice\",\"exp\":-9223372036854775808,\"nbf\":9223372036854775807}");
  fmqt_accepted_at(&v, tok, INT64_MAX - 1);
  fmqt_accepted_at(&v, tok, INT64_MIN);
  fmqt_refused_n(&v, tok, strlen(tok), INT64_MAX, "expired");
  fmq_jwt_verifier_close(&v);
  o.leeway_s = 0;
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":-9223372036854775808}");
  fmqt_refused_n(&v, tok, strlen(tok), INT64_MAX, "expired");
  fmqt_jwt(tok, "HS256", SECRET, NULL,
           "{\"sub\":\"alice\",\"exp\":9223372036854775807,\"nbf\":9223372036854775807}");
  fmqt_refused_n(&v, tok, strlen(tok), INT64_MIN, "not yet valid");
  fmq_jwt_verifier_close(&v);
}

/* A token whose signature is sig, of len bytes, over what tok signs. */
static void fmqt_resign(char *tok, const uint8_t *sig, size_t len) {
  *strrchr(tok, '.') = '\0';
  fmqt_append(tok, sig, len);
}

/* Replaces tok's signature with a valid HS256 one of what precedes it. */
static void fmqt_hs256_resign(char *tok) {
  uint8_t sig[64];

  *strrchr(tok, '.') = '\0';
  fmqt_append(tok, sig, fmqt_sign("HS256", SECRET, tok, sig));
}

static void test_bad_signature(void **state) {
  static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "ES256"};
  static const char *const payload = "{\"sub\":\"alice\",\"exp\":1700003600}";
  struct fmq_jwt_verifier v;
  struct fmq_jwt_options o;
  char tok[TOKEN_MAX], header[64];
  uint8_t sig[512];
  size_t n;

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
    o = fmqt_options(fmq_jwt_alg_from_name(algs[i]));
    fmqt_init(&v, &o);
    snprintf(header, sizeof(header), "{\"alg\":\"%s\"}", algs[i]);
    fmqt_input(tok, header, payload);
    n = fmqt_sign(algs[i], fmqt_key_for(algs[i]), tok, sig);
    fmqt_append(tok, sig, n);
    fmqt_accepted(&v, tok);
    /* A flipped bit at the start, in the middle and at the end. */
    for (size_t k = 0; k < 3; k++) {
      size_t at = k * (n - 1) / 2;
      sig[at] ^= 1;
      fmqt_resign(tok, sig, n);
      fmqt_refused(&v, tok, "bad signature");
      sig[at] ^= 1;
    }
    /* Cut short, or one byte more. */
    fmqt_resign(tok, sig, n - 1);
    fmqt_refused(&v, tok, "bad signature");
    sig[n] = 0;
    fmqt_resign(tok, sig, n + 1);
    fmqt_refused(&v, tok, "bad signature");
    /* The signature of another payload. */
    fmqt_input(tok, header, "{\"sub\":\"alice\",\"exp\":1700003601}");
    fmqt_append(tok, sig, n);
    fmqt_refused(&v, tok, "bad signature");
    fmq_jwt_verifier_close(&v);
  }

  o = fmqt_options(FMQ_JWT_HS256);
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", "another secret", NULL, "%s", payload);
  fmqt_refused(&v, tok, "bad signature");
  fmq_jwt_verifier_close(&v);
  o = fmqt_options(FMQ_JWT_RS256);
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "RS256", env.rsa2, NULL, "%s", payload);
  fmqt_refused(&v, tok, "bad signature");
  fmq_jwt_verifier_close(&v);
  o = fmqt_options(FMQ_JWT_ES256);
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "ES256", env.ec2, NULL, "%s", payload);
  fmqt_refused(&v, tok, "bad signature");
  memset(sig, 0, 64); /* R = S = 0 */
  fmqt_resign(tok, sig, 64);
  fmqt_refused(&v, tok, "bad signature");
  fmq_jwt_verifier_close(&v);
}

static void test_alg_none(void **state) {
  static const char *const names[] = {"none", "None", "NONE", "nOnE"};
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HMAC_ALGS);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX], header[64];

  (void)state;
  fmqt_init(&v, &o);
  for (size_t i = 0; i < ARRAY_LEN(names); i++) {
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", names[i]);
    fmqt_input(tok, header, "{\"sub\":\"alice\",\"exp\":1700003600}");
    strcat(tok, ".");
    fmqt_refused(&v, tok, "malformed token");
    /* With a signature the secret makes, it is the algorithm that fails. */
    fmqt_hs256_resign(tok);
    fmqt_refused(&v, tok, "algorithm not allowed");
  }
  fmq_jwt_verifier_close(&v);
}

static void test_alg_not_allowed(void **state) {
  static const struct {
    unsigned allowed;
    const char *alg;
  } cases[] = {
      {FMQ_JWT_RS256, "HS256"},
      {FMQ_JWT_HS256, "RS256"},
      {FMQ_JWT_HS256, "HS384"},
      {FMQ_JWT_HS256 | FMQ_JWT_HS384, "HS512"},
      {FMQ_JWT_RS256 | FMQ_JWT_HS256, "ES256"},
      {FMQ_JWT_ES256 | FMQ_JWT_HMAC_ALGS, "RS256"},
  };
  struct fmq_jwt_verifier v;
  struct fmq_jwt_options o;
  char tok[TOKEN_MAX];

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    o = fmqt_options(cases[i].allowed);
    fmqt_init(&v, &o);
    fmqt_jwt(tok, cases[i].alg, fmqt_key_for(cases[i].alg), NULL,
             "{\"sub\":\"alice\",\"exp\":1700003600}");
    fmqt_refused(&v, tok, "algorithm not allowed");
    fmq_jwt_verifier_close(&v);
  }
  /* A name the header carries must be a string and match exactly. */
  o = fmqt_options(FMQ_JWT_HS256);
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, "{\"alg\":\"hs256\"}", "{\"sub\":\"alice\",\"exp\":1700003600}");
  fmqt_refused(&v, tok, "algorithm not allowed");
  fmqt_jwt(tok, "HS256", SECRET, "{\"alg\":\"HS256\\u0020\"}", "{\"sub\":\"alice\"}");
  fmqt_refused(&v, tok, "algorithm not allowed");
  fmqt_jwt(tok, "HS256", SECRET, "{\"alg\":[\"HS256\"]}", "{\"sub\":\"alice\"}");
  fmqt_refused(&v, tok, "malformed token");
  fmqt_jwt(tok, "HS256", SECRET, "{\"typ\":\"JWT\"}", "{\"sub\":\"alice\"}");
  fmqt_refused(&v, tok, "malformed token");
  fmq_jwt_verifier_close(&v);
}

/* An HS256 token whose HMAC key is the RSA public key's PEM text, which an
 * attacker knows: it must not pass for RS256. */
static void test_key_confusion(void **state) {
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_RS256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX];

  (void)state;
  fmqt_jwt(tok, "HS256", env.rsa_pub, NULL, "{\"sub\":\"alice\",\"exp\":1700003600}");
  fmqt_init(&v, &o);
  fmqt_refused(&v, tok, "algorithm not allowed");
  fmq_jwt_verifier_close(&v);
  o = fmqt_options(FMQ_JWT_RS256 | FMQ_JWT_HS256);
  fmqt_init(&v, &o);
  fmqt_refused(&v, tok, "bad signature");
  fmq_jwt_verifier_close(&v);
  /* The token is sound: the secret it was made with accepts it. */
  o.secret = (const uint8_t *)env.rsa_pub;
  o.secret_len = strlen(env.rsa_pub);
  fmqt_init(&v, &o);
  fmqt_accepted(&v, tok);
  fmq_jwt_verifier_close(&v);
}

static void test_issuer(void **state) {
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HS256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX], *expected = strdup("https://auth.example");

  (void)state;
  assert_non_null(expected);
  o.issuer = expected;
  fmqt_init(&v, &o);
  /* The verifier keeps its own copy. */
  expected[0] = 'X';
  fmqt_jwt(tok, "HS256", SECRET, NULL,
           "{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://auth.example\"}");
  fmqt_accepted(&v, tok);
  fmqt_jwt(tok, "HS256", SECRET, NULL,
           "{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://auth.example/\"}");
  fmqt_refused(&v, tok, "wrong issuer");
  fmqt_jwt(tok, "HS256", SECRET, NULL,
           "{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://auth.exampl\"}");
  fmqt_refused(&v, tok, "wrong issuer");
  fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":1700003600}");
  fmqt_refused(&v, tok, "wrong issuer");
  fmqt_jwt(tok, "HS256", SECRET, NULL,
           "{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":[\"https://auth.example\"]}");
  fmqt_refused(&v, tok, "malformed claims");
  fmq_jwt_verifier_close(&v);
  free(expected);

  /* No issuer set (NULL or ""): any "iss" is accepted. */
  o.issuer = "";
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, NULL,
           "{\"sub\":\"alice\",\"exp\":1700003600,\"iss\":\"https://elsewhere\"}");
  fmqt_accepted(&v, tok);
  fmq_jwt_verifier_close(&v);
  o.issuer = NULL;
  fmqt_init(&v, &o);
  fmqt_accepted(&v, tok);
  fmq_jwt_verifier_close(&v);
}

static void test_audience(void **state) {
  static const char *const accepted[] = {
      "\"ferrymq\"",
      "[\"ferrymq\"]",
      "[\"other\",\"ferrymq\"]",
      "[\"other\",\"ferrymq\",\"third\"]",
      /* Any element that matches is enough; others are not read. */
      "[7,\"ferrymq\"]",
      "[\"ferrymq\",{\"x\":1}]",
  };
  static const struct {
    const char *aud;
    const char *reason;
  } refused[] = {
      {NULL, "wrong audience"},
      {"\"ferrymq2\"", "wrong audience"},
      {"\"ferry\"", "wrong audience"},
      {"[]", "wrong audience"},
      {"[\"other\",\"third\"]", "wrong audience"},
      {"[\"ferrymq \"]", "wrong audience"},
      {"7", "malformed claims"},
      {"{\"ferrymq\":1}", "malformed claims"},
      {"[7,null]", "wrong audience"},
  };
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HS256);
  struct fmq_jwt_verifier v, any;
  char tok[TOKEN_MAX];

  (void)state;
  fmqt_init(&any, &o);
  o.audience = "ferrymq";
  fmqt_init(&v, &o);
  for (size_t i = 0; i < ARRAY_LEN(accepted); i++) {
    fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":1700003600,\"aud\":%s}",
             accepted[i]);
    fmqt_accepted(&v, tok);
    fmqt_accepted(&any, tok);
  }
  for (size_t i = 0; i < ARRAY_LEN(refused); i++) {
    if (refused[i].aud == NULL)
      fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":1700003600}");
    else
      fmqt_jwt(tok, "HS256", SECRET, NULL, "{\"sub\":\"alice\",\"exp\":1700003600,\"aud\":%s}",
               refused[i].aud);
    fmqt_refused(&v, tok, refused[i].reason);
    /* Without an audience set, "aud" is not looked at. */
    fmqt_accepted(&any, tok);
  }
  fmq_jwt_verifier_close(&v);
  fmq_jwt_verifier_close(&any);
}

static void test_require_exp(void **state) {
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_ES256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX];

  (void)state;
  fmqt_jwt(tok, "ES256", env.ec, NULL, "{\"sub\":\"alice\"}");
  fmqt_init(&v, &o);
  fmqt_refused(&v, tok, "no exp claim");
  fmq_jwt_verifier_close(&v);
  o.require_exp = 0;
  fmqt_init(&v, &o);
  fmqt_accepted(&v, tok);
  /* Not required, but checked when there. */
  fmqt_jwt(tok, "ES256", env.ec, NULL, "{\"sub\":\"alice\",\"exp\":%lld}", (long long)(NOW - 1));
  fmqt_refused(&v, tok, "expired");
  fmqt_jwt(tok, "ES256", env.ec, NULL, "{\"sub\":\"alice\",\"exp\":null}");
  fmqt_refused(&v, tok, "malformed claims");
  fmq_jwt_verifier_close(&v);
}

/* Breaks in the compact form itself: tok is valid, each case edits a copy. */
static void test_malformed_form(void **state) {
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HS256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX], bad[TOKEN_MAX + 16], *p1, *p2;
  size_t len, h_len, sig_len;

  (void)state;
  fmqt_init(&v, &o);
  fmqt_jwt(tok, "HS256", SECRET, "{\"alg\":\"HS256\",\"kid\":\"k1\"}",
           "{\"sub\":\"alice\",\"exp\":1700003600,\"x\":123}");
  fmqt_accepted(&v, tok);
  len = strlen(tok);
  p1 = strchr(tok, '.');
  p2 = strrchr(tok, '.');
  h_len = (size_t)(p1 - tok);
  sig_len = len - (size_t)(p2 - tok) - 1;
  /* The 26-byte header and the 32-byte MAC each leave 2 bits over in their
   * last character, the 40-byte payload 4: the cases below rely on it. */
  assert_int_equal(h_len % 4, 3);
  assert_int_equal((p2 - p1 - 1) % 4, 2);
  assert_int_equal(sig_len % 4, 3);

  fmqt_refused(&v, "", "malformed token");
  fmqt_refused(&v, ".", "malformed token");
  fmqt_refused(&v, "..", "malformed token");
  fmqt_refused(&v, "...", "malformed token");
  /* Two parts, four parts, one part empty. */
  snprintf(bad, sizeof(bad), "%.*s", (int)(p2 - tok), tok);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%s.", tok);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%s.%s", tok, p2 + 1);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%.*s.%s", (int)(p1 - tok), tok, p1);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%s", p1);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%.*s..%s", (int)h_len, tok, p2 + 1);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%.*s", (int)(p2 - tok + 1), tok);
  fmqt_refused(&v, bad, "malformed token");

  /* '=' padding, in the header and in the signature. */
  snprintf(bad, sizeof(bad), "%.*s=%s", (int)h_len, tok, p1);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%s=", tok);
  fmqt_refused(&v, bad, "malformed token");
  /* A length no encoding has (4n + 1). */
  snprintf(bad, sizeof(bad), "%.*sAA%s", (int)h_len, tok, p1);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%sAA", tok);
  fmqt_refused(&v, bad, "malformed token");
  /* Characters outside the alphabet, each in place of a valid one and at
   * either end (where EVP_DecodeBlock would trim whitespace). The payload
   * is decoded only after the signature over its text is checked. */
  for (const char *c = "+/=* \t\n\r.\x80\xff"; *c != '\0'; c++) {
    static const char *const sig_first = "bad signature";
    struct {
      size_t at;
      const char *reason;
    } cases[] = {{0, "malformed token"},       {h_len - 1, "malformed token"},
                 {h_len + 1, sig_first},       {p2 - tok - 1, sig_first},
                 {len - sig_len, "malformed token"}, {len - 1, "malformed token"}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
      if (*c == '.' && (cases[i].at == 0 || cases[i].at == len - 1))
        continue;
      strcpy(bad, tok);
      bad[cases[i].at] = *c;
      fmqt_refused(&v, bad, *c == '.' ? "malformed token" : cases[i].reason);
    }
  }
  /* Whitespace EVP_DecodeBlock would trim, a whole quantum of it. */
  snprintf(bad, sizeof(bad), "    %s", tok);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%.*s\t\t\t\t%s", (int)(p2 - tok + 1), tok, p2 + 1);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%s \r\n ", tok);
  fmqt_refused(&v, bad, "malformed token");
  /* The same bytes with a spare bit of the last character set. */
  for (size_t i = 0; i < 3; i++) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t at = i == 0 ? h_len - 1 : i == 1 ? (size_t)(p2 - tok - 1) : len - 1;
    strcpy(bad, tok);
    bad[at] = abc[(strchr(abc, tok[at]) - abc) ^ 1];
    if (i == 1)
      fmqt_hs256_resign(bad);
    fmqt_refused(&v, bad, "malformed token");
  }
  /* The payload's breaks under a signature of its text. */
  snprintf(bad, sizeof(bad), "%.*s    %.*s", (int)(p1 - tok + 1), tok, (int)(p2 - p1), p1 + 1);
  fmqt_hs256_resign(bad);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%.*s==%s", (int)(p2 - tok), tok, p2);
  fmqt_hs256_resign(bad);
  fmqt_refused(&v, bad, "malformed token");
  snprintf(bad, sizeof(bad), "%.*s+%s", (int)(p1 - tok + 1), tok, p1 + 2);
  fmqt_hs256_resign(bad);
  fmqt_refused(&v, bad, "malformed token");
  fmq_jwt_verifier_close(&v);
}

/* Headers and payloads that are not what they must be, correctly signed. */
static void test_malformed_json(void **state) {
  static const struct {
    const char *header, *payload, *reason;
  } cases[] = {
      {"not json", "{\"sub\":\"alice\"}", "malformed token"},
      {"", "{\"sub\":\"alice\"}", "malformed token"}, /* an empty part */
      {"[\"HS256\"]", "{\"sub\":\"alice\"}", "malformed token"},
      {"\"HS256\"", "{\"sub\":\"alice\"}", "malformed token"},
      {"{\"alg\":\"HS256\"} x", "{\"sub\":\"alice\"}", "malformed token"},
      {"{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"sub\":\"alice\"}", "malformed token"},
      {"{\"alg\":\"none\",\"alg\":\"HS256\"}", "{\"sub\":\"alice\"}", "malformed token"},
      {"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"sub\":\"alice\"}",
       "unsupported critical header"},
      {"{\"alg\":\"HS256\",\"crit\":[]}", "{\"sub\":\"alice\"}", "unsupported critical header"},
      {"{\"alg\":\"HS256\"}", "not json", "malformed token"},
      {"{\"alg\":\"HS256\"}", "[{\"sub\":\"alice\"}]", "malformed token"},
      {"{\"alg\":\"HS256\"}", "\"alice\"", "malformed token"},
      {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"sub\":\"admin\"}", "malformed token"},
      {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\\u0000admin\"}", "malformed token"},
      {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"exp\":\"1700003600\"}", "malformed claims"},
      {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"exp\":true}", "malformed claims"},
      {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"nbf\":\"0\"}", "malformed claims"},
  };
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_HS256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX];
  uint8_t sig[64];

  (void)state;
  o.require_exp = 0;
  fmqt_init(&v, &o);
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    fmqt_input(tok, cases[i].header, cases[i].payload);
    fmqt_append(tok, sig, fmqt_sign("HS256", SECRET, tok, sig));
    fmqt_refused(&v, tok, cases[i].reason);
  }
  fmq_jwt_verifier_close(&v);
}

static void test_es256_length(void **state) {
  struct fmq_jwt_options o = fmqt_options(FMQ_JWT_ES256);
  struct fmq_jwt_verifier v;
  char tok[TOKEN_MAX], der_path[128];
  uint8_t sig[128];

  (void)state;
  fmqt_init(&v, &o);
  fmqt_input(tok, "{\"alg\":\"ES256\"}", "{\"sub\":\"alice\",\"exp\":1700003600}");
  assert_int_equal(fmqt_sign("ES256", env.ec, tok, sig), 64);
  fmqt_append(tok, sig, 64);
  fmqt_accepted(&v, tok);
  fmqt_resign(tok, sig, 63);
  fmqt_refused(&v, tok, "bad signature");
  sig[64] = 0;
  fmqt_resign(tok, sig, 65);
  fmqt_refused(&v, tok, "bad signature");
  /* The DER form OpenSSL makes is not the JWS form. */
  fmqt_path(der_path, sizeof(der_path), "sig.der");
  fmqt_resign(tok, sig, fmqt_read(der_path, sig, sizeof(sig)));
  fmqt_refused(&v, tok, "bad signature");
  fmq_jwt_verifier_close(&v);
}

static void test_init_errors(void **state) {
  static const char garbage[] =
      "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n";
  static const struct {
    unsigned algs;
    int key; /* 0 none, 1 RSA 2048, 2 RSA 1024, 3 EC P-256, 4 EC P-384, 5 garbage, 6 private */
    int secret;
    const char *msg;
  } cases[] = {
      {FMQ_JWT_ES256, 1, 0, "the public key is not an EC key, which ES256 needs"},
      {FMQ_JWT_RS256, 3, 0, "the public key is not an RSA key, which RS256 needs"},
      {FMQ_JWT_RS256 | FMQ_JWT_ES256, 1, 0, "the public key is not an EC key, which ES256 needs"},
      {FMQ_JWT_RS256 | FMQ_JWT_ES256, 3, 0, "the public key is not an RSA key, which RS256 needs"},
      {FMQ_JWT_RS256, 2, 0, "the RSA public key has fewer than the 2048 bits RS256 needs"},
      {FMQ_JWT_ES256, 4, 0, "the EC public key is not on curve P-256, which ES256 needs"},
      {FMQ_JWT_RS256, 0, 1, "RS256 and ES256 need a public key"},
      {FMQ_JWT_ES256 | FMQ_JWT_HS256, 0, 1, "RS256 and ES256 need a public key"},
      {FMQ_JWT_RS256, 5, 0, "the public key is not a PEM public key (BEGIN PUBLIC KEY)"},
      {FMQ_JWT_RS256, 6, 0, "the public key is not a PEM public key (BEGIN PUBLIC KEY)"},
      {FMQ_JWT_HS256, 0, 0, "HS256, HS384 and HS512 need a non-empty secret"},
      {FMQ_JWT_HS512 | FMQ_JWT_RS256, 1, 0, "HS256, HS384 and HS512 need a non-empty secret"},
      {0, 1, 1, "no algorithm is allowed"},
      {1u << 5, 0, 1, "unknown algorithm"},
  };
  const char *pems[] = {NULL, env.rsa_pub, env.rsa1024_pub, env.ec_pub, env.ec384_pub, garbage,
                        env.rsa_priv};
  struct fmq_jwt_verifier v;
  struct fmq_jwt_options o;
  char msg[256];

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    memset(&o, 0, sizeof(o));
    o.algorithms = cases[i].algs;
    o.public_key_pem = pems[cases[i].key];
    o.public_key_pem_len = o.public_key_pem != NULL ? strlen(o.public_key_pem) : 0;
    if (cases[i].secret) {
      o.secret = (const uint8_t *)SECRET;
      o.secret_len = strlen(SECRET);
    }
    strcpy(msg, "unchanged");
    assert_int_equal(fmq_jwt_verifier_init(&v, &o, msg, sizeof(msg)), -1);
    assert_string_equal(msg, cases[i].msg);
  }
  /* An empty secret is no secret. */
  o = fmqt_options(FMQ_JWT_HS256);
  o.secret_len = 0;
  assert_int_equal(fmq_jwt_verifier_init(&v, &o, msg, sizeof(msg)), -1);
  assert_string_equal(msg, "HS256, HS384 and HS512 need a non-empty secret");
  /* The message is cut to fit. */
  o = fmqt_options(FMQ_JWT_ES256);
  o.public_key_pem = env.rsa_pub;
  o.public_key_pem_len = strlen(env.rsa_pub);
  assert_int_equal(fmq_jwt_verifier_init(&v, &o, msg, 8), -1);
  assert_string_equal(msg, "the pub");
  /* A key the algorithms do not use is not read. */
  o = fmqt_options(FMQ_JWT_HS256);
  o.public_key_pem = garbage;
  o.public_key_pem_len = strlen(garbage);
  fmqt_init(&v, &o);
  fmq_jwt_verifier_close(&v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alg_from_name),
      cmocka_unit_test(test_valid_each_alg),
      cmocka_unit_test(test_honours_len),
      cmocka_unit_test(test_exp_nbf),
      cmocka_unit_test(test_leeway),
      cmocka_unit_test(test_bad_signature),
      cmocka_unit_test(test_alg_none),
      cmocka_unit_test(test_alg_not_allowed),
      cmocka_unit_test(test_key_confusion),
      cmocka_unit_test(test_issuer),
      cmocka_unit_test(test_audience),
      cmocka_unit_test(test_require_exp),
      cmocka_unit_test(test_malformed_form),
      cmocka_unit_test(test_malformed_json),
      cmocka_unit_test(test_es256_length),
      cmocka_unit_test(test_init_errors),
  };

  return cmocka_run_group_tests(tests, fmqt_setup, fmqt_teardown);
}
