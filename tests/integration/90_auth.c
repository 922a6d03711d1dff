/* Authentication at the upgrade (protocol-v1 sections 1 and 8): auth.mode
 * token with plain and "sha256:" entries and auth.max_token_size, auth.mode
 * jwt with HS256, RS256 and ES256 tokens made by the openssl command line at
 * run time, credentials from ?token= or "Authorization: Bearer" (the header
 * wins), 401 refusals that never upgrade, and credentials that never reach
 * the log. */

#include "bridge_client.h"
#include "broker_proc.h"
#include "config_fixture.h"
#include "gateway_proc.h"
#include "jwt_maker.h"
#include "proc.h"
#include "wsclient.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define T 5000

#define PLAIN_TOKEN "pl@in/tok=3n&x-7Qz"         /* needs percent-encoding in a query */
#define HASHED_TOKEN "hashed-tok-K9vW2m"         /* configured as its sha256 digest */
#define MAX_TOKEN_SIZE 96
#define HS_SECRET "hs256-integration-secret-6c1d"
#define ISSUER "https://issuer.example"
#define AUDIENCE "ferrymq-test"

static char dir[256];
static char rsa_key[320], rsa_pub[320], ec_key[320], ec_pub[320], ec2_key[320], ec2_pub[320];
static char at_max[MAX_TOKEN_SIZE + 1], over_max[MAX_TOKEN_SIZE + 2];
static char hashed_hex[65];

static char token_yaml[2048], hs_yaml[1024], rs_yaml[1024], es_yaml[1024];
static const char *const debug_args[] = {"--log-level", "debug", NULL};
static struct fmqt_config_fixture token_gw = {.yaml = token_yaml, .args = debug_args};
static struct fmqt_config_fixture hs_gw = {.yaml = hs_yaml, .args = debug_args};
static struct fmqt_config_fixture rs_gw = {.yaml = rs_yaml};
static struct fmqt_config_fixture es_gw = {.yaml = es_yaml};

/* --- helpers --- */

/* n characters from fill on, cycling through seven letters. */
static void make_token(char *out, size_t n, char fill) {
  for (size_t i = 0; i < n; i++) {
    out[i] = (char)(fill + i % 7);
  }
  out[n] = '\0';
}

static int setup_group(void **state) {
  (void)state;
  fmqt_make_temp_dir(dir, sizeof dir, "auth");
  fmqt_genkey(dir, "rsa", "rsa", rsa_key, rsa_pub, sizeof rsa_key);
  fmqt_genkey(dir, "ec", "ec", ec_key, ec_pub, sizeof ec_key);
  fmqt_genkey(dir, "ec", "ec2", ec2_key, ec2_pub, sizeof ec2_key);
  make_token(at_max, MAX_TOKEN_SIZE, 'a');
  make_token(over_max, MAX_TOKEN_SIZE + 1, 'A');
  char at_max_hex[65], over_max_hex[65];
  fmqt_sha256_hex(dir, HASHED_TOKEN, hashed_hex);
  fmqt_sha256_hex(dir, at_max, at_max_hex);
  fmqt_sha256_hex(dir, over_max, over_max_hex);
  snprintf(token_yaml, sizeof token_yaml,
           "auth:\n"
           "  mode: token\n"
           "  max_token_size: %d\n"
           "  tokens:\n"
           "    - token: \"" PLAIN_TOKEN "\"\n"
           "      user: alice\n"
           "    - token: \"sha256:%s\"\n"
           "      user: bob\n"
           "    - token: \"sha256:%s\"\n"
           "      user: carol\n"
           "    - token: \"sha256:%s\"\n"
           "      user: dave\n",
           MAX_TOKEN_SIZE, hashed_hex, at_max_hex, over_max_hex);
  snprintf(hs_yaml, sizeof hs_yaml,
           "auth:\n"
           "  mode: jwt\n"
           "  jwt:\n"
           "    algorithms: [HS256]\n"
           "    secret: \"" HS_SECRET "\"\n"
           "    issuer: \"" ISSUER "\"\n"
           "    audience: \"" AUDIENCE "\"\n"
           "    default_subscribe: [\"jwt/#\"]\n");
  snprintf(rs_yaml, sizeof rs_yaml,
           "auth:\n"
           "  mode: jwt\n"
           "  jwt:\n"
           "    algorithms: [RS256]\n"
           "    public_key_file: \"%s\"\n"
           "    default_subscribe: [\"jwt/#\"]\n",
           rsa_pub);
  snprintf(es_yaml, sizeof es_yaml,
           "auth:\n"
           "  mode: jwt\n"
           "  jwt:\n"
           "    algorithms: [ES256]\n"
           "    public_key_file: \"%s\"\n"
           "    default_subscribe: [\"jwt/#\"]\n",
           ec_pub);
  return 0;
}

static int teardown_group(void **state) {
  (void)state;
  fmqt_remove_temp_dir(dir);
  return 0;
}

/* "/mqtt?token=<token percent-encoded>" (malloc'd). */
static char *token_path(const char *token) {
  char *path = malloc(3 * strlen(token) + 32);
  assert_non_null(path);
  strcpy(path, "/mqtt?token=");
  fmqt_url_encode(token, path + strlen(path));
  return path;
}

/* "Authorization: Bearer <token>\r\n" (malloc'd). */
static char *bearer(const char *token) {
  char *h = malloc(strlen(token) + 32);
  assert_non_null(h);
  sprintf(h, "Authorization: Bearer %s\r\n", token);
  return h;
}

/* Upgrades with path and extra headers; asserts 101 and that the
 * connection works, then closes it. */
static void assert_admitted(void **state, const char *path, const char *extra) {
  int fd = fmqt_ws_connect(fmqt_fixture_port(state), path, extra);
  fmqt_ws_assert_json_ping(fd, "admitted", T);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* Asserts the request (path, extra headers) is answered 401 before any
 * upgrade, with the Bearer challenge and an "unauthorized: <reason>" body
 * that does not quote secret (may be NULL). */
static void assert_unauthorized(void **state, const char *path, const char *extra,
                                const char *secret, const char *what) {
  char req[16384], key[25], head[4096], body[4096], challenge[256];
  size_t n = fmqt_ws_request(req, sizeof req, path, extra, key);
  int status = fmqt_http_refused_body(fmqt_fixture_port(state), req, n, head, sizeof head, body,
                                      sizeof body);
  if (status != 401) {
    fail_msg("%s: status %d, want 401\n%s%s", what, status, head, body);
  }
  if (!fmqt_http_header(head, "WWW-Authenticate", challenge, sizeof challenge) ||
      strcmp(challenge, "Bearer realm=\"ferrymq\"") != 0) {
    fail_msg("%s: 401 without WWW-Authenticate: Bearer realm=\"ferrymq\"\n%s", what, head);
  }
  if (strncmp(body, "unauthorized: ", 14) != 0 || strlen(body) < 16) {
    fail_msg("%s: the body is not \"unauthorized: <reason>\": \"%s\"", what, body);
  }
  if (secret != NULL && *secret != '\0' && (strstr(head, secret) || strstr(body, secret))) {
    fail_msg("%s: the refusal quotes the credentials:\n%s%s", what, head, body);
  }
}

/* Connects with token in the query and then in a Bearer header. */
static void assert_admitted_both_ways(void **state, const char *token) {
  char *path = token_path(token), *header = bearer(token);
  assert_admitted(state, path, "");
  assert_admitted(state, "/mqtt", header);
  free(path);
  free(header);
}

static void assert_unauthorized_both_ways(void **state, const char *token, const char *what) {
  char *path = token_path(token), *header = bearer(token);
  assert_unauthorized(state, path, "", token, what);
  assert_unauthorized(state, "/mqtt", header, token, what);
  free(path);
  free(header);
}

/* Checks that a client admitted on path can subscribe and receives what an
 * MQTT client publishes: the connection is really usable. */
static void assert_usable(void **state, const char *path, const char *extra) {
  int fd = fmqt_ws_connect(fmqt_fixture_port(state), path, extra);
  fmqt_subscribe(fd, "jwt/x", 1, "s", 1);
  fmqt_mqtt_pub_text(fmqt_fixture_broker(state), "jwt/x", "through the gateway", 1, 0);
  fmqt_expect_message(fd, "jwt/x", "through the gateway", 1, 0, T);
  fmqt_ws_close_cleanly(fd, 1000);
}

/* Claims with sub, iss, aud and exp (seconds from now); extra is "" or more
 * members starting with ','. */
static void claims(char *out, size_t cap, const char *iss, const char *aud, long exp_in,
                   const char *extra) {
  long now = (long)time(NULL);
  int n = snprintf(out, cap, "{\"sub\":\"alice\",\"iss\":\"%s\",\"aud\":%s,\"exp\":%ld%s}", iss,
                   aud, now + exp_in, extra);
  assert_true(n > 0 && (size_t)n < cap);
}

static void good_claims(char *out, size_t cap) {
  claims(out, cap, ISSUER, "\"" AUDIENCE "\"", 3600, "");
}

static char *hs256(const char *claims_text) {
  return fmqt_jwt(dir, "HS256", NULL, claims_text, HS_SECRET);
}

/* --- mode token --- */

static void configured_tokens_are_admitted_from_the_query_or_the_header(void **state) {
  static const char *const tokens[] = {PLAIN_TOKEN, HASHED_TOKEN, at_max};
  for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
    assert_admitted_both_ways(state, tokens[i]);
  /* The scheme is case-insensitive (RFC 7235 section 2.1). */
  assert_admitted(state, "/mqtt", "Authorization: bearer " HASHED_TOKEN "\r\n");
}

static void wrong_missing_or_oversized_tokens_get_401(void **state) {
  char literal_digest[80], *path;
  snprintf(literal_digest, sizeof literal_digest, "sha256:%s", hashed_hex);
  static const char *const wrong[] = {
      "not-a-configured-token", "hashed-tok-K9vW2", "hashed-tok-K9vW2mX", "HASHED-TOK-K9VW2M",
      "pl@in/tok=3n", "alice",
  };
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
    assert_unauthorized_both_ways(state, wrong[i], wrong[i]);
  /* A digest entry is matched by the token, never by its digest. */
  path = token_path(literal_digest);
  assert_unauthorized(state, path, "", NULL, "the digest itself");
  free(path);
  /* A configured token one byte over max_token_size is refused unread. */
  assert_unauthorized_both_ways(state, over_max, "a token over max_token_size");
  assert_unauthorized(state, "/mqtt", "", NULL, "no credentials");
  assert_unauthorized(state, "/mqtt?token=", "", NULL, "an empty token");
  assert_unauthorized(state, "/mqtt?topic=a", "", NULL, "a topic but no token");
  assert_unauthorized(state, "/mqtt", "Authorization: Basic YWxpY2U6c2VjcmV0\r\n", NULL,
                      "another scheme");
  /* Nothing was upgraded, so the gateway still serves a good token. */
  path = token_path(HASHED_TOKEN);
  assert_admitted(state, path, "");
  free(path);
}

static void the_header_wins_over_the_query(void **state) {
  char *good_path = token_path(HASHED_TOKEN);
  char *bad_path = token_path("wrong-query-token");
  char *good_header = bearer(PLAIN_TOKEN);
  char *bad_header = bearer("wrong-header-token");
  assert_admitted(state, bad_path, good_header);
  assert_unauthorized(state, good_path, bad_header, "wrong-header-token", "bad header, good query");
  free(good_path);
  free(bad_path);
  free(good_header);
  free(bad_header);
}

/* At debug level, with good and bad credentials in both places. */
static void tokens_never_reach_the_log(void **state) {
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  static const char bad[] = "Zq7-bad-token-never-logged-Xv3";
  assert_admitted_both_ways(state, PLAIN_TOKEN);
  assert_admitted_both_ways(state, HASHED_TOKEN);
  assert_unauthorized_both_ways(state, bad, "bad token");
  fmqt_assert_serving(fmqt_fixture_port(state), "/mqtt?token=" HASHED_TOKEN);
  /* The refusals were logged: the test looks at a log that saw them. */
  assert_true(fmqt_gateway_wait_log(gw, "401", T));
  char encoded[3 * sizeof PLAIN_TOKEN];
  fmqt_url_encode(PLAIN_TOKEN, encoded);
  static const char *const secrets[] = {PLAIN_TOKEN, HASHED_TOKEN, bad};
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
    if (fmqt_gateway_log_contains(gw, secrets[i])) {
      fmqt_gateway_print_log(gw, "a token in the log");
      fail_msg("the log contains the token \"%s\"", secrets[i]);
    }
  }
  if (fmqt_gateway_log_contains(gw, encoded)) {
    fmqt_gateway_print_log(gw, "a token in the log");
    fail_msg("the log contains the percent-encoded token \"%s\"", encoded);
  }
}

/* --- mode jwt, HS256 --- */

static void valid_hs256_tokens_open_working_connections(void **state) {
  char c[512];
  good_claims(c, sizeof c);
  char *jwt = hs256(c);
  char *path = token_path(jwt);
  char *header = bearer(jwt);
  assert_usable(state, path, "");
  assert_usable(state, "/mqtt", header);
  free(jwt);
  free(path);
  free(header);

  /* aud may be an array; one match is enough. */
  claims(c, sizeof c, ISSUER, "[\"someone-else\",\"" AUDIENCE "\"]", 3600, "");
  jwt = hs256(c);
  path = token_path(jwt);
  assert_admitted(state, path, "");
  free(jwt);
  free(path);
  /* Expired 10 s ago: within the default 30 s leeway. */
  claims(c, sizeof c, ISSUER, "\"" AUDIENCE "\"", -10, "");
  jwt = hs256(c);
  path = token_path(jwt);
  assert_admitted(state, path, "");
  free(jwt);
  free(path);
}

struct jwt_case {
  const char *what;
  char *jwt;   /* malloc'd */
};

static void invalid_jwts_get_401(void **state) {
  long now = (long)time(NULL);
  char c[512], good[512], extra[64];
  good_claims(good, sizeof good);
  struct jwt_case cases[20];
  size_t n = 0;

  claims(c, sizeof c, ISSUER, "\"" AUDIENCE "\"", -3600, "");
  cases[n++] = (struct jwt_case){"expired an hour ago", hs256(c)};
  cases[n++] = (struct jwt_case){"signed with another secret",
                                  fmqt_jwt(dir, "HS256", NULL, good, HS_SECRET "x")};
  cases[n++] = (struct jwt_case){"alg none",
                                  fmqt_jwt(dir, "none", "{\"alg\":\"none\",\"typ\":\"JWT\"}",
                                           good, NULL)};
  cases[n++] = (struct jwt_case){"alg None",
                                  fmqt_jwt(dir, "none", "{\"alg\":\"None\"}", good, NULL)};
  cases[n++] = (struct jwt_case){"HS384 (not in algorithms)",
                                  fmqt_jwt(dir, "HS384", NULL, good, HS_SECRET)};
  cases[n++] = (struct jwt_case){"HS512 (not in algorithms)",
                                  fmqt_jwt(dir, "HS512", NULL, good, HS_SECRET)};
  claims(c, sizeof c, "https://other-issuer.example", "\"" AUDIENCE "\"", 3600, "");
  cases[n++] = (struct jwt_case){"wrong issuer", hs256(c)};
  snprintf(c, sizeof c, "{\"sub\":\"alice\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}", now + 3600);
  cases[n++] = (struct jwt_case){"no issuer", hs256(c)};
  claims(c, sizeof c, ISSUER, "\"other-audience\"", 3600, "");
  cases[n++] = (struct jwt_case){"wrong audience", hs256(c)};
  claims(c, sizeof c, ISSUER, "[\"a\",\"b\"]", 3600, "");
  cases[n++] = (struct jwt_case){"audience array without ours", hs256(c)};
  snprintf(c, sizeof c, "{\"sub\":\"alice\",\"iss\":\"" ISSUER "\",\"exp\":%ld}", now + 3600);
  cases[n++] = (struct jwt_case){"no audience", hs256(c)};
  snprintf(c, sizeof c, "{\"sub\":\"alice\",\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\"}");
  cases[n++] = (struct jwt_case){"no exp", hs256(c)};
  snprintf(extra, sizeof extra, ",\"nbf\":%ld", now + 3600);
  claims(c, sizeof c, ISSUER, "\"" AUDIENCE "\"", 7200, extra);
  cases[n++] = (struct jwt_case){"not valid before an hour from now", hs256(c)};
  snprintf(c, sizeof c, "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":%ld}",
           now + 3600);
  cases[n++] = (struct jwt_case){"no user claim", hs256(c)};
  /* Claims swapped under a valid signature of other claims. */
  char *signed_jwt = hs256(good);
  claims(c, sizeof c, ISSUER, "\"" AUDIENCE "\"", 3600,
         ",\"ferrymq\":{\"subscribe\":[\"#\"],\"publish\":[\"#\"]}");
  char *forged = hs256(c);
  char *forged_sig = strrchr(forged, '.');
  strcpy(forged_sig + 1, strrchr(signed_jwt, '.') + 1);
  cases[n++] = (struct jwt_case){"claims changed after signing", forged};
  free(signed_jwt);
  cases[n++] = (struct jwt_case){"two parts", strdup("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0")};
  cases[n++] = (struct jwt_case){"not a JWT", strdup("a.b.c")};

  for (size_t i = 0; i < n; i++) {
    assert_unauthorized_both_ways(state, cases[i].jwt, cases[i].what);
    free(cases[i].jwt);
  }
  char *path = token_path(good);
  assert_unauthorized(state, path, "", NULL, "unsigned claims as a token");
  free(path);
  /* A good token still works after all of that. */
  char *jwt = hs256(good);
  path = token_path(jwt);
  assert_admitted(state, path, "");
  free(path);
  free(jwt);
}

static void jwts_never_reach_the_log(void **state) {
  struct fmqt_gateway *gw = fmqt_fixture_gateway(state);
  char c[512];
  claims(c, sizeof c, ISSUER, "\"" AUDIENCE "\"", 3600, ",\"jti\":\"good-6Tq\"");
  char *good = hs256(c);
  claims(c, sizeof c, ISSUER, "\"" AUDIENCE "\"", 3600, ",\"jti\":\"bad-9Wx\"");
  char *bad = fmqt_jwt(dir, "HS256", NULL, c, "a-secret-the-gateway-does-not-know");
  assert_admitted_both_ways(state, good);
  assert_unauthorized_both_ways(state, bad, "bad jwt");
  assert_true(fmqt_gateway_wait_log(gw, "401", T));
  const char *const secrets[] = {good, bad, strrchr(good, '.') + 1, strrchr(bad, '.') + 1};
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
    if (fmqt_gateway_log_contains(gw, secrets[i])) {
      fmqt_gateway_print_log(gw, "a JWT in the log");
      fail_msg("the log contains \"%s\"", secrets[i]);
    }
  }
  free(good);
  free(bad);
}

/* --- mode jwt, RS256 and ES256 --- */

static void rs256_tokens_are_verified_with_the_public_key(void **state) {
  char c[512];
  snprintf(c, sizeof c, "{\"sub\":\"rsa-user\",\"exp\":%ld}", (long)time(NULL) + 3600);
  char *jwt = fmqt_jwt(dir, "RS256", NULL, c, rsa_key);
  char *path = token_path(jwt);
  assert_usable(state, path, "");
  free(path);

  /* The public key used as an HMAC secret (algorithm confusion). */
  char *pem = fmqt_read_file(rsa_pub, NULL);
  char *confused = fmqt_jwt(dir, "HS256", NULL, c, pem);
  path = token_path(confused);
  assert_unauthorized(state, path, "", confused, "HS256 keyed with the RSA public key");
  free(path);
  free(confused);
  free(pem);

  /* Another key's signature, and a signature over other claims. */
  char other_key[320], other_pub[320];
  fmqt_genkey(dir, "rsa", "rsa-other", other_key, other_pub, sizeof other_key);
  char *other = fmqt_jwt(dir, "RS256", NULL, c, other_key);
  path = token_path(other);
  assert_unauthorized(state, path, "", other, "RS256 by another key");
  free(path);
  free(other);
  snprintf(c, sizeof c, "{\"sub\":\"root\",\"exp\":%ld}", (long)time(NULL) + 3600);
  char *forged = fmqt_jwt(dir, "RS256", NULL, c, rsa_key);
  strcpy(strrchr(forged, '.') + 1, strrchr(jwt, '.') + 1);
  path = token_path(forged);
  assert_unauthorized(state, path, "", forged, "RS256 claims changed after signing");
  free(path);
  free(forged);
  free(jwt);

  char *none = fmqt_jwt(dir, "none", "{\"alg\":\"none\"}", c, NULL);
  path = token_path(none);
  assert_unauthorized(state, path, "", NULL, "alg none on an RS256 gateway");
  free(path);
  free(none);
}

static void es256_tokens_need_the_r_s_signature_of_the_key(void **state) {
  char c[512];
  snprintf(c, sizeof c, "{\"sub\":\"ec-user\",\"exp\":%ld}", (long)time(NULL) + 3600);
  char *jwt = fmqt_jwt(dir, "ES256", NULL, c, ec_key);
  char *path = token_path(jwt);
  char *header = bearer(jwt);
  assert_usable(state, path, "");
  assert_usable(state, "/mqtt", header);
  free(path);
  free(header);
  free(jwt);

  /* RFC 7518 3.4: R||S, not DER. */
  char *der = fmqt_jwt(dir, "ES256-DER", NULL, c, ec_key);
  path = token_path(der);
  assert_unauthorized(state, path, "", der, "ES256 with a DER signature");
  free(path);
  free(der);
  char *other = fmqt_jwt(dir, "ES256", NULL, c, ec2_key);
  path = token_path(other);
  assert_unauthorized(state, path, "", other, "ES256 by another key");
  free(path);
  free(other);
  char *hs = fmqt_jwt(dir, "HS256", NULL, c, "any-secret");
  path = token_path(hs);
  assert_unauthorized(state, path, "", hs, "HS256 on an ES256 gateway");
  free(path);
  free(hs);
}

#define TEST(fn, fixture) \
  cmocka_unit_test_prestate_setup_teardown(fn, fmqt_config_fixture_setup, \
                                           fmqt_config_fixture_teardown, &fixture)

int main(void) {
  const struct CMUnitTest tests[] = {
      TEST(configured_tokens_are_admitted_from_the_query_or_the_header, token_gw),
      TEST(wrong_missing_or_oversized_tokens_get_401, token_gw),
      TEST(the_header_wins_over_the_query, token_gw),
      TEST(tokens_never_reach_the_log, token_gw),
      TEST(valid_hs256_tokens_open_working_connections, hs_gw),
      TEST(invalid_jwts_get_401, hs_gw),
      TEST(jwts_never_reach_the_log, hs_gw),
      TEST(rs256_tokens_are_verified_with_the_public_key, rs_gw),
      TEST(es256_tokens_need_the_r_s_signature_of_the_key, es_gw),
  };
  return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
