#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "error.h"
#include "http_feed.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW INT64_C(1700000000)
#define SECRET "the gateway's shared secret"
#define ALICE_TOKEN "alice-token-16ch" /* exactly 16 bytes: max_token_size below */
#define BOB_TOKEN "bob's token"
#define LONG_TOKEN "carol-token-17chr"

/* --- configurations built in memory (every string owned by the config) --- */

static void fmqt_set(char **field, const char *value) {
  free(*field);
  *field = strdup(value);
  assert_non_null(*field);
}

/* v: NULL-terminated. */
static struct fmq_strv fmqt_strv(const char *const *v) {
  struct fmq_strv s = {0};
  while (v[s.n] != NULL)
    s.n++;
  s.v = calloc(s.n + 1, sizeof(*s.v));
  assert_non_null(s.v);
  for (size_t i = 0; i < s.n; i++)
    fmqt_set(&s.v[i], v[i]);
  return s;
}

static void fmqt_replace_strv(struct fmq_strv *s, const char *const *v) {
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
  *s = fmqt_strv(v);
}

/* sub, pub: NULL for an absent list (everything allowed). */
static void fmqt_add_token(struct fmq_config *c, const char *token, const char *user,
                           const char *const *sub, const char *const *pub) {
  c->auth.tokens = realloc(c->auth.tokens, (c->auth.ntokens + 1) * sizeof(*c->auth.tokens));
  assert_non_null(c->auth.tokens);
  struct fmq_token_config *t = &c->auth.tokens[c->auth.ntokens++];
  *t = (struct fmq_token_config){0};
  fmqt_set(&t->token, token);
  fmqt_set(&t->user, user);
  t->subscribe = fmqt_strv(sub ? sub : (const char *const[]){NULL});
  t->publish = fmqt_strv(pub ? pub : (const char *const[]){NULL});
  t->subscribe_any = sub == NULL;
  t->publish_any = pub == NULL;
}

static void fmqt_sha256_hex(const char *text, char hex[65]) {
  uint8_t d[32];
  SHA256((const unsigned char *)text, strlen(text), d);
  for (size_t i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void fmqt_token_config(struct fmq_config *c) {
  char hashed[7 + 65] = "sha256:";
  assert_int_equal(fmq_config_init(c), 0);
  c->auth.mode = FMQ_AUTH_TOKEN;
  c->auth.max_token_size = 16;
  fmqt_add_token(c, ALICE_TOKEN, "alice", (const char *const[]){"devices/%u/#", NULL},
                 (const char *const[]){"devices/%u/commands", "clients/%c/out", NULL});
  fmqt_sha256_hex(BOB_TOKEN, hashed + 7);
  fmqt_add_token(c, hashed, "bob", NULL, (const char *const[]){NULL});
  fmqt_add_token(c, LONG_TOKEN, "carol", NULL, NULL);
}

static void fmqt_jwt_config(struct fmq_config *c) {
  assert_int_equal(fmq_config_init(c), 0);
  c->auth.mode = FMQ_AUTH_JWT;
  c->auth.max_token_size = 4096;
  fmqt_replace_strv(&c->auth.jwt.algorithms, (const char *const[]){"HS256", NULL});
  fmqt_set(&c->auth.jwt.secret, SECRET);
  fmqt_set(&c->auth.jwt.user_claim, "sub");
  c->auth.jwt.leeway = 30000;
  c->auth.jwt.require_exp = 1;
}

static void fmqt_auth_init(struct fmq_auth *a, const struct fmq_config *c) {
  char err[FMQ_CONFIG_ERR_MAX];
  if (fmq_auth_init(a, c, err, sizeof(err)) != 0)
    fail_msg("fmq_auth_init: %s", err);
}

/* --- checking --- */

static void fmqt_accept(const struct fmq_auth *a, const char *token, struct fmq_identity *id) {
  const char *why = NULL;
  int rc = fmq_auth_check(a, token, strlen(token), NOW, id, &why);
  if (rc != 0)
    fail_msg("refused (%d): %s", rc, why ? why : "?");
}

/* Refused with FMQ_EAUTH and a reason that quotes no part of the token. */
static const char *fmqt_refuse(const struct fmq_auth *a, const char *token, size_t len) {
  struct fmq_identity id;
  const char *why = NULL;
  assert_int_equal(fmq_auth_check(a, token, len, NOW, &id, &why), FMQ_EAUTH);
  assert_non_null(why);
  assert_true(strlen(why) > 0);
  assert_null(id.user);
  assert_null(id.client_id);
  assert_false(id.acl.subscribe.any || id.acl.publish.any);
  char part[4096];
  for (const char *p = token; p != NULL && p < token + len;) {
    const char *dot = memchr(p, '.', (size_t)(token + len - p));
    size_t n = dot ? (size_t)(dot - p) : (size_t)(token + len - p);
    if (n >= 4) {
      memcpy(part, p, n);
      part[n] = '\0';
      assert_null(strstr(why, part));
    }
    p = dot ? dot + 1 : NULL;
  }
  return why;
}

static void fmqt_assert_client_id_generated(const char *client_id) {
  assert_non_null(client_id);
  assert_int_equal(strlen(client_id), 20);
  assert_memory_equal(client_id, "fmq-", 4);
  assert_int_equal(strspn(client_id + 4, "0123456789abcdef"), 16);
}

/* --- mode token --- */

static void test_token_plain(void **state) {
  (void)state;
  struct fmq_config c;
  struct fmq_auth a;
  struct fmq_identity id;
  char topic[64];
  fmqt_token_config(&c);
  fmqt_auth_init(&a, &c);

  fmqt_accept(&a, ALICE_TOKEN, &id);
  assert_string_equal(id.user, "alice");
  fmqt_assert_client_id_generated(id.client_id);
  assert_false(id.acl.subscribe.any);
  assert_true(fmq_acl_allows(&id.acl.subscribe, "devices/alice/x"));
  assert_true(fmq_acl_allows(&id.acl.subscribe, "devices/alice/#"));
  assert_false(fmq_acl_allows(&id.acl.subscribe, "devices/bob/x"));
  assert_false(fmq_acl_allows(&id.acl.subscribe, "devices/%u/x"));
  assert_true(fmq_acl_allows(&id.acl.publish, "devices/alice/commands"));
  assert_false(fmq_acl_allows(&id.acl.publish, "devices/alice/x"));
  snprintf(topic, sizeof(topic), "clients/%s/out", id.client_id);
  assert_true(fmq_acl_allows(&id.acl.publish, topic));
  assert_false(fmq_acl_allows(&id.acl.publish, "clients/fmq-0000000000000000/out"));

  struct fmq_identity id2;
  fmqt_accept(&a, ALICE_TOKEN, &id2);
  fmqt_assert_client_id_generated(id2.client_id);
  assert_string_not_equal(id.client_id, id2.client_id);
  fmq_identity_close(&id2);
  fmq_identity_close(&id);
  assert_null(id.user);

  fmq_auth_close(&a);
  fmq_config_close(&c);
}

static void test_token_sha256(void **state) {
  (void)state;
  struct fmq_config c;
  struct fmq_auth a;
  struct fmq_identity id;
  fmqt_token_config(&c);
  fmqt_auth_init(&a, &c);

  fmqt_accept(&a, BOB_TOKEN, &id);
  assert_string_equal(id.user, "bob");
  assert_true(id.acl.subscribe.any); /* no subscribe list: everything */
  assert_true(fmq_acl_allows(&id.acl.subscribe, "#"));
  assert_false(id.acl.publish.any); /* an empty list: nothing */
  assert_false(fmq_acl_allows(&id.acl.publish, "a"));
  fmq_identity_close(&id);
  /* the configured digest is no token */
  c.auth.max_token_size = 100;
  assert_string_equal(fmqt_refuse(&a, c.auth.tokens[1].token, strlen(c.auth.tokens[1].token)),
                      "unknown token");

  fmq_auth_close(&a);
  fmq_config_close(&c);
}

static void test_token_refusals(void **state) {
  (void)state;
  struct fmq_config c;
  struct fmq_auth a;
  fmqt_token_config(&c);
  fmqt_auth_init(&a, &c);

  fmqt_refuse(&a, "alice-token-16cH", 16);
  fmqt_refuse(&a, ALICE_TOKEN, 15); /* a prefix */
  fmqt_refuse(&a, "", 0);
  struct fmq_identity id;
  const char *why = NULL;
  assert_int_equal(fmq_auth_check(&a, NULL, 0, NOW, &id, &why), FMQ_EAUTH);
  assert_non_null(why);
  /* configured, but one byte over max_token_size: refused unread */
  fmqt_refuse(&a, LONG_TOKEN, strlen(LONG_TOKEN));
  c.auth.max_token_size = 17;
  fmqt_accept(&a, LONG_TOKEN, &id);
  assert_string_equal(id.user, "carol");
  fmq_identity_close(&id);

  fmq_auth_close(&a);
  fmq_config_close(&c);
}

static void test_token_bad_digest(void **state) {
  (void)state;
  struct fmq_config c;
  struct fmq_auth a;
  char err[FMQ_CONFIG_ERR_MAX];
  assert_int_equal(fmq_config_init(&c), 0);
  c.auth.mode = FMQ_AUTH_TOKEN;
  fmqt_add_token(&c, "sha256:0123", "x", NULL, NULL);
  assert_int_equal(fmq_auth_init(&a, &c, err, sizeof(err)), -1);
  assert_memory_equal(err, "auth.tokens", 11);
  fmq_config_close(&c);
}

/* The configuration compares token texts; only the digests show that a
 * token and its own sha256: form are one token. */
static void test_token_twice(void **state) {
  (void)state;
  struct fmq_config c;
  struct fmq_auth a;
  char err[FMQ_CONFIG_ERR_MAX], hashed[7 + 65] = "sha256:";
  assert_int_equal(fmq_config_init(&c), 0);
  c.auth.mode = FMQ_AUTH_TOKEN;
  fmqt_sha256_hex(BOB_TOKEN, hashed + 7);
  fmqt_add_token(&c, ALICE_TOKEN, "alice", NULL, NULL);
  fmqt_add_token(&c, hashed, "bob", NULL, NULL);
  fmqt_add_token(&c, BOB_TOKEN, "bob's twin", NULL, NULL);
  assert_int_equal(fmq_auth_init(&a, &c, err, sizeof(err)), -1);
  assert_string_equal(err, "auth.tokens[2]: the same token as auth.tokens[1]");
  fmq_config_close(&c);
}

/* --- mode jwt --- */

static size_t fmqt_b64url(const void *data, size_t len, char *out) {
  int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
  assert_true(n >= 0);
  while (n > 0 && out[n - 1] == '=')
    n--;
  for (int i = 0; i < n; i++)
    out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
  out[n] = '\0';
  return (size_t)n;
}

/* An HS256 token for payload (JSON) signed with secret. */
static char *fmqt_hs256(const char *secret, const char *payload) {
  static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  char *tok = malloc(2 * strlen(payload) + 256);
  assert_non_null(tok);
  size_t n = fmqt_b64url(header, strlen(header), tok);
  tok[n++] = '.';
  n += fmqt_b64url(payload, strlen(payload), tok + n);
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned mac_len;
  assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, n,
                       mac, &mac_len));
  tok[n++] = '.';
  fmqt_b64url(mac, mac_len, tok + n);
  return tok;
}

/* Signs payload, a printf format whose %lld is the expiry NOW + 60. */
static char *fmqt_jwt(const char *fmt) {
  char payload[1024];
  snprintf(payload, sizeof(payload), fmt, (long long)(NOW + 60));
  return fmqt_hs256(SECRET, payload);
}

struct fmqt_jwt_env {
  struct fmq_config c;
  struct fmq_auth a;
};

static int fmqt_jwt_setup(void **state) {
  struct fmqt_jwt_env *e = calloc(1, sizeof(*e));
  fmqt_jwt_config(&e->c);
  fmqt_replace_strv(&e->c.auth.jwt.default_subscribe,
                    (const char *const[]){"public/#", "users/%u/#", NULL});
  fmqt_auth_init(&e->a, &e->c);
  *state = e;
  return 0;
}

static int fmqt_jwt_teardown(void **state) {
  struct fmqt_jwt_env *e = *state;
  fmq_auth_close(&e->a);
  fmq_config_close(&e->c);
  free(e);
  return 0;
}

static void test_jwt_claim_acl(void **state) {
  struct fmqt_jwt_env *e = *state;
  struct fmq_identity id;
  char *tok = fmqt_jwt("{\"sub\":\"carol\",\"exp\":%lld,\"ferrymq\":{"
                       "\"subscribe\":[\"rooms/%%u/#\",\"bad/#/x\",\"$share/g/#\"],"
                       "\"publish\":[\"rooms/%%u/say\"]}}");
  fmqt_accept(&e->a, tok, &id);
  assert_string_equal(id.user, "carol");
  fmqt_assert_client_id_generated(id.client_id);
  assert_int_equal(id.acl.subscribe.n, 1); /* the invalid patterns grant nothing */
  assert_true(fmq_acl_allows(&id.acl.subscribe, "rooms/carol/a"));
  assert_false(fmq_acl_allows(&id.acl.subscribe, "rooms/dave/a"));
  assert_false(fmq_acl_allows(&id.acl.subscribe, "public/x")); /* the claim replaces the default */
  assert_true(fmq_acl_allows(&id.acl.publish, "rooms/carol/say"));
  assert_false(fmq_acl_allows(&id.acl.publish, "rooms/carol/a"));
  fmq_identity_close(&id);
  free(tok);

  /* a list the claim lacks allows nothing */
  tok = fmqt_jwt("{\"sub\":\"carol\",\"exp\":%lld,\"ferrymq\":{\"subscribe\":[\"#\"]}}");
  fmqt_accept(&e->a, tok, &id);
  assert_true(fmq_acl_allows(&id.acl.subscribe, "a/b"));
  assert_false(id.acl.publish.any);
  assert_int_equal(id.acl.publish.n, 0);
  fmq_identity_close(&id);
  free(tok);
}

static void test_jwt_default_acl(void **state) {
  struct fmqt_jwt_env *e = *state;
  struct fmq_identity id;
  char *tok = fmqt_jwt("{\"sub\":\"erin\",\"exp\":%lld}");
  fmqt_accept(&e->a, tok, &id);
  assert_true(fmq_acl_allows(&id.acl.subscribe, "public/news"));
  assert_true(fmq_acl_allows(&id.acl.subscribe, "users/erin/inbox"));
  assert_false(fmq_acl_allows(&id.acl.subscribe, "users/frank/inbox"));
  assert_false(id.acl.subscribe.any);
  assert_false(id.acl.publish.any); /* default_publish empty: nothing */
  assert_false(fmq_acl_allows(&id.acl.publish, "public/news"));
  fmq_identity_close(&id);
  free(tok);
}

static void test_jwt_client_id_claim(void **state) {
  struct fmqt_jwt_env *e = *state;
  struct fmq_identity id;
  char *tok = fmqt_jwt("{\"sub\":\"f\",\"client_id\":\"dev-1\",\"exp\":%lld,"
                       "\"ferrymq\":{\"publish\":[\"c/%%c\"]}}");
  fmqt_accept(&e->a, tok, &id);
  assert_string_equal(id.client_id, "dev-1");
  assert_true(fmq_acl_allows(&id.acl.publish, "c/dev-1"));
  assert_false(fmq_acl_allows(&id.acl.publish, "c/dev-2"));
  fmq_identity_close(&id);
  free(tok);
  /* not a string: generated */
  tok = fmqt_jwt("{\"sub\":\"f\",\"client_id\":7,\"exp\":%lld}");
  fmqt_accept(&e->a, tok, &id);
  fmqt_assert_client_id_generated(id.client_id);
  fmq_identity_close(&id);
  free(tok);
}

static void test_jwt_refusals(void **state) {
  struct fmqt_jwt_env *e = *state;
  static const struct {
    const char *payload, *why;
  } cases[] = {
    {"{\"exp\":%lld}", "no user claim"},
    {"{\"sub\":5,\"exp\":%lld}", "no user claim"},
    {"{\"sub\":\"g\",\"exp\":%lld,\"ferrymq\":[]}", "malformed ferrymq claim"},
    {"{\"sub\":\"g\",\"exp\":%lld,\"ferrymq\":\"#\"}", "malformed ferrymq claim"},
    {"{\"sub\":\"g\",\"exp\":%lld,\"ferrymq\":{\"subscribe\":\"a/#\"}}", "malformed ferrymq claim"},
    {"{\"sub\":\"g\",\"exp\":%lld,\"ferrymq\":{\"publish\":[\"a\",1]}}", "malformed ferrymq claim"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *tok = fmqt_jwt(cases[i].payload);
    const char *why = fmqt_refuse(&e->a, tok, strlen(tok));
    if (strcmp(why, cases[i].why) != 0)
      fail_msg("%s: \"%s\", expected \"%s\"", cases[i].payload, why, cases[i].why);
    free(tok);
  }
  /* a user that C would cut short */
  char *tok = fmqt_jwt("{\"sub\":\"a\\u0000b\",\"exp\":%lld}");
  fmqt_refuse(&e->a, tok, strlen(tok));
  free(tok);
  /* another secret */
  tok = fmqt_hs256("not " SECRET, "{\"sub\":\"g\",\"exp\":9999999999}");
  fmqt_refuse(&e->a, tok, strlen(tok));
  free(tok);
}

/* leeway is 30 s (configured in milliseconds) */
static void test_jwt_expiry(void **state) {
  struct fmqt_jwt_env *e = *state;
  struct fmq_identity id;
  char payload[128];
  snprintf(payload, sizeof(payload), "{\"sub\":\"h\",\"exp\":%lld}", (long long)(NOW - 29));
  char *tok = fmqt_hs256(SECRET, payload);
  fmqt_accept(&e->a, tok, &id);
  fmq_identity_close(&id);
  free(tok);
  snprintf(payload, sizeof(payload), "{\"sub\":\"h\",\"exp\":%lld}", (long long)(NOW - 31));
  tok = fmqt_hs256(SECRET, payload);
  fmqt_refuse(&e->a, tok, strlen(tok));
  free(tok);
  /* require_exp */
  tok = fmqt_hs256(SECRET, "{\"sub\":\"h\"}");
  fmqt_refuse(&e->a, tok, strlen(tok));
  free(tok);
}

static void test_jwt_user_claim_and_size(void **state) {
  (void)state;
  struct fmq_config c;
  struct fmq_auth a;
  struct fmq_identity id;
  fmqt_jwt_config(&c);
  fmqt_set(&c.auth.jwt.user_claim, "email");
  fmqt_auth_init(&a, &c);
  char *tok = fmqt_jwt("{\"sub\":\"i\",\"email\":\"i@example.com\",\"exp\":%lld}");
  fmqt_accept(&a, tok, &id);
  assert_string_equal(id.user, "i@example.com");
  fmq_identity_close(&id);
  c.auth.max_token_size = strlen(tok) - 1;
  assert_string_equal(fmqt_refuse(&a, tok, strlen(tok)), "credentials too long");
  free(tok);
  fmq_auth_close(&a);
  fmq_config_close(&c);
}

/* --- mode none --- */

static void test_mode_none(void **state) {
  (void)state;
  struct fmq_config c;
  struct fmq_auth a;
  struct fmq_identity id;
  const char *why = NULL;
  assert_int_equal(fmq_config_init(&c), 0);
  assert_int_equal(c.auth.mode, FMQ_AUTH_NONE);
  fmqt_auth_init(&a, &c);
  assert_int_equal(fmq_auth_check(&a, NULL, 0, NOW, &id, &why), 0);
  assert_null(id.user);
  assert_null(id.client_id);
  assert_true(id.acl.subscribe.any);
  assert_true(id.acl.publish.any);
  assert_true(fmq_acl_allows(&id.acl.subscribe, "#"));
  fmq_identity_close(&id);
  assert_int_equal(fmq_auth_check(&a, "whatever", 8, NOW, &id, &why), 0);
  assert_true(id.acl.publish.any);
  fmq_identity_close(&id);
  fmq_auth_close(&a);
  fmq_config_close(&c);
}

/* --- fmq_auth_init errors --- */

static void fmqt_temp_file(char path[64], const char *text) {
  const char *dir = getenv("TMPDIR");
  snprintf(path, 64, "%s/fmqt-auth-XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

/* fmq_auth_init with algorithms and key file; returns its error ("" when
 * it succeeded). */
static const char *fmqt_init_error(const char *alg, const char *key_file) {
  static char err[FMQ_CONFIG_ERR_MAX];
  struct fmq_config c;
  struct fmq_auth a;
  fmqt_jwt_config(&c);
  fmqt_replace_strv(&c.auth.jwt.algorithms, (const char *const[]){alg, NULL});
  fmqt_set(&c.auth.jwt.public_key_file, key_file);
  err[0] = '\0';
  if (fmq_auth_init(&a, &c, err, sizeof(err)) == 0) {
    assert_string_equal(err, "");
    fmq_auth_close(&a);
  }
  fmq_config_close(&c);
  return err;
}

static void test_init_errors(void **state) {
  (void)state;
  char path[64], expected[256];
  assert_string_equal(fmqt_init_error("RS256", "/nonexistent/key.pem"),
                      "auth.jwt.public_key_file: /nonexistent/key.pem: No such file or directory");

  fmqt_temp_file(path, "-----BEGIN GARBAGE-----\nnot a key\n");
  snprintf(expected, sizeof(expected), "auth.jwt.public_key_file: %s: ", path);
  const char *err = fmqt_init_error("RS256", path);
  assert_memory_equal(err, expected, strlen(expected));
  assert_non_null(strstr(err, "PEM"));
  unlink(path);

  /* a real P-256 key: fine for ES256, not for RS256 */
  EVP_PKEY *key = EVP_EC_gen("P-256");
  assert_non_null(key);
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
  char *pem;
  long n = BIO_get_mem_data(bio, &pem);
  char text[1024];
  assert_true(n > 0 && (size_t)n < sizeof(text));
  memcpy(text, pem, (size_t)n);
  text[n] = '\0';
  BIO_free(bio);
  EVP_PKEY_free(key);
  fmqt_temp_file(path, text);
  assert_string_equal(fmqt_init_error("ES256", path), "");
  snprintf(expected, sizeof(expected), "auth.jwt.public_key_file: %s: ", path);
  err = fmqt_init_error("RS256", path);
  assert_memory_equal(err, expected, strlen(expected));
  assert_non_null(strstr(err, "not an RSA key"));
  unlink(path);

  assert_memory_equal(fmqt_init_error("none", ""), "auth.jwt.algorithms: ", 21);
}

static void test_init_empty_secret(void **state) {
  (void)state;
  struct fmq_config c;
  struct fmq_auth a;
  char err[FMQ_CONFIG_ERR_MAX];
  fmqt_jwt_config(&c);
  fmqt_set(&c.auth.jwt.secret, "");
  assert_int_equal(fmq_auth_init(&a, &c, err, sizeof(err)), -1);
  assert_memory_equal(err, "auth.jwt: ", 10);
  fmq_config_close(&c);
}

/* --- fmq_auth_credentials --- */

/* The credentials of request head (without its final blank line): rc, and
 * the token in out (NUL-terminated). */
static int fmqt_credentials(const char *head, char *out, size_t cap) {
  char req[1024];
  struct fmq_http_request r;
  size_t consumed, len = 0;
  const char *token = NULL;
  snprintf(req, sizeof(req), "%s\r\n\r\n", head);
  assert_int_equal(fmqt_http_parse(&r, req, strlen(req), 8192, &consumed), 0);
  char *buf = malloc(r.target_len + 1);
  assert_non_null(buf);
  int rc = fmq_auth_credentials(&r, buf, r.target_len + 1, &token, &len);
  out[0] = '\0';
  if (rc == 1) {
    assert_true(len < cap);
    memcpy(out, token, len);
    out[len] = '\0';
  }
  free(buf);
  fmq_http_request_close(&r);
  return rc;
}

static void test_credentials(void **state) {
  (void)state;
  char tok[256];
  assert_int_equal(fmqt_credentials("GET /mqtt HTTP/1.1\r\nAuthorization: Bearer abc.def-_~", tok,
                                    sizeof(tok)), 1);
  assert_string_equal(tok, "abc.def-_~");
  assert_int_equal(fmqt_credentials("GET /mqtt HTTP/1.1\r\nauthorization: bEARER   x y ", tok,
                                    sizeof(tok)), 1);
  assert_string_equal(tok, "x y");
  assert_int_equal(fmqt_credentials("GET /mqtt?token=q HTTP/1.1\r\nAuthorization: Bearer h",
                                    tok, sizeof(tok)), 1);
  assert_string_equal(tok, "h"); /* the header wins */
  assert_int_equal(fmqt_credentials("GET /mqtt HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz",
                                    tok, sizeof(tok)), 0);
  assert_int_equal(fmqt_credentials("GET /mqtt HTTP/1.1\r\nAuthorization: BearerX t", tok,
                                    sizeof(tok)), 0);
  assert_int_equal(fmqt_credentials("GET /mqtt?token=q HTTP/1.1\r\nAuthorization: Basic Zm9v",
                                    tok, sizeof(tok)), 1);
  assert_string_equal(tok, "q");
  assert_int_equal(fmqt_credentials("GET /mqtt?topic=a%2Fb&token=a%2Fb%20c%2B&token=second "
                                    "HTTP/1.1", tok, sizeof(tok)), 1);
  assert_string_equal(tok, "a/b c+");
  assert_int_equal(fmqt_credentials("GET /mqtt?tokens=x&Token=y HTTP/1.1", tok, sizeof(tok)), 0);
  assert_int_equal(fmqt_credentials("GET /mqtt HTTP/1.1\r\nHost: h", tok, sizeof(tok)), 0);
  assert_int_equal(fmqt_credentials("GET /mqtt?token=%zz HTTP/1.1", tok, sizeof(tok)), FMQ_EHTTP);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_token_plain),
    cmocka_unit_test(test_token_sha256),
    cmocka_unit_test(test_token_refusals),
    cmocka_unit_test(test_token_bad_digest),
    cmocka_unit_test(test_token_twice),
    cmocka_unit_test_setup_teardown(test_jwt_claim_acl, fmqt_jwt_setup, fmqt_jwt_teardown),
    cmocka_unit_test_setup_teardown(test_jwt_default_acl, fmqt_jwt_setup, fmqt_jwt_teardown),
    cmocka_unit_test_setup_teardown(test_jwt_client_id_claim, fmqt_jwt_setup, fmqt_jwt_teardown),
    cmocka_unit_test_setup_teardown(test_jwt_refusals, fmqt_jwt_setup, fmqt_jwt_teardown),
    cmocka_unit_test_setup_teardown(test_jwt_expiry, fmqt_jwt_setup, fmqt_jwt_teardown),
    cmocka_unit_test(test_jwt_user_claim_and_size),
    cmocka_unit_test(test_mode_none),
    cmocka_unit_test(test_init_errors),
    cmocka_unit_test(test_init_empty_secret),
    cmocka_unit_test(test_credentials),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
