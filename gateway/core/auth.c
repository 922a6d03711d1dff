#include "auth.h"

#include "error.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHA256_PREFIX "sha256:"
#define CLIENT_ID_PREFIX "fmq-"
/* A PEM public key is a few KiB; more is not one. */
#define KEY_FILE_MAX (64 * 1024)

/* The configuration checked for 64 hex digits; OpenSSL would also take
 * ':' between pairs, which the length check rules out. */
static int parse_digest(const char *hex, uint8_t digest[32]) {
  long len = 0;
  unsigned char *bin = strlen(hex) == 64 ? OPENSSL_hexstr2buf(hex, &len) : NULL;
  int ok = bin != NULL && len == 32;
  if (ok)
    memcpy(digest, bin, 32);
  OPENSSL_free(bin);
  return ok ? 0 : -1;
}

static int init_tokens(struct fmq_auth *a, char *err, size_t errlen) {
  const struct fmq_config *c = a->config;
  if (c->auth.ntokens == 0)
    return 0;
  a->tokens = calloc(c->auth.ntokens, sizeof(*a->tokens));
  if (a->tokens == NULL) {
    snprintf(err, errlen, "auth.tokens: out of memory");
    return -1;
  }
  a->ntokens = c->auth.ntokens;
  for (size_t i = 0; i < a->ntokens; i++) {
    const struct fmq_token_config *t = &c->auth.tokens[i];
    a->tokens[i].config = t;
    if (strncmp(t->token, SHA256_PREFIX, strlen(SHA256_PREFIX)) != 0) {
      SHA256((const unsigned char *)t->token, strlen(t->token), a->tokens[i].digest);
    } else if (parse_digest(t->token + strlen(SHA256_PREFIX), a->tokens[i].digest) != 0) {
      snprintf(err, errlen, "auth.tokens[%zu]: \"sha256:\" must be followed by 64 hex digits", i);
      return -1;
    }
    /* A token and its own sha256: form are the same token. */
    for (size_t j = 0; j < i; j++) {
      if (memcmp(a->tokens[j].digest, a->tokens[i].digest, 32) == 0) {
        snprintf(err, errlen, "auth.tokens[%zu]: the same token as auth.tokens[%zu]", i, j);
        return -1;
      }
    }
  }
  return 0;
}

/* Reads path whole. Returns the bytes (the caller frees them) and *len, or
 * NULL with err. */
static char *read_key_file(const char *path, size_t *len, char *err, size_t errlen) {
  const char *why = NULL;
  char *buf = malloc(KEY_FILE_MAX + 1);
  FILE *f = buf != NULL ? fopen(path, "rb") : NULL;
  if (buf == NULL)
    why = "out of memory";
  else if (f == NULL)
    why = strerror(errno);
  else if ((*len = fread(buf, 1, KEY_FILE_MAX + 1, f)) > KEY_FILE_MAX)
    why = "larger than 64 KiB, which no public key is";
  else if (ferror(f))
    why = strerror(errno);
  if (f != NULL)
    fclose(f);
  if (why == NULL)
    return buf;
  snprintf(err, errlen, "auth.jwt.public_key_file: %s: %s", path, why);
  free(buf);
  return NULL;
}

static int init_jwt(struct fmq_auth *a, char *err, size_t errlen) {
  const struct fmq_config *c = a->config;
  struct fmq_jwt_options o = {
    .secret = (const uint8_t *)c->auth.jwt.secret,
    .secret_len = strlen(c->auth.jwt.secret),
    .issuer = c->auth.jwt.issuer,
    .audience = c->auth.jwt.audience,
    /* rounded up: the tolerance is never less than configured */
    .leeway_s = c->auth.jwt.leeway / 1000 + (c->auth.jwt.leeway % 1000 != 0),
    .require_exp = c->auth.jwt.require_exp,
  };
  for (size_t i = 0; i < c->auth.jwt.algorithms.n; i++) {
    unsigned alg = fmq_jwt_alg_from_name(c->auth.jwt.algorithms.v[i]);
    if (alg == 0) {
      snprintf(err, errlen, "auth.jwt.algorithms: unknown algorithm \"%s\"",
               c->auth.jwt.algorithms.v[i]);
      return -1;
    }
    o.algorithms |= alg;
  }
  const char *path = c->auth.jwt.public_key_file;
  char *pem = NULL;
  if (path[0] != '\0') {
    if ((pem = read_key_file(path, &o.public_key_pem_len, err, errlen)) == NULL)
      return -1;
    o.public_key_pem = pem;
  }
  char msg[256];
  int rc = fmq_jwt_verifier_init(&a->jwt, &o, msg, sizeof(msg));
  free(pem);
  if (rc == 0)
    return 0;
  if (path[0] != '\0')
    snprintf(err, errlen, "auth.jwt.public_key_file: %s: %s", path, msg);
  else
    snprintf(err, errlen, "auth.jwt: %s", msg);
  return -1;
}

int fmq_auth_init(struct fmq_auth *a, const struct fmq_config *config, char *err, size_t errlen) {
  *a = (struct fmq_auth){.config = config};
  int rc = 0;
  if (config->auth.mode == FMQ_AUTH_TOKEN)
    rc = init_tokens(a, err, errlen);
  else if (config->auth.mode == FMQ_AUTH_JWT)
    rc = init_jwt(a, err, errlen);
  if (rc != 0)
    fmq_auth_close(a);
  return rc;
}

void fmq_auth_close(struct fmq_auth *a) {
  free(a->tokens);
  a->tokens = NULL;
  a->ntokens = 0;
  fmq_jwt_verifier_close(&a->jwt);
}

int fmq_auth_credentials(const struct fmq_http_request *r, char *buf, size_t cap,
                         const char **token, size_t *len) {
  static const char bearer[] = "Bearer ";
  size_t n;
  const char *v = fmq_http_field(r, "Authorization", &n);
  if (v != NULL && n >= sizeof(bearer) - 1 && strncasecmp(v, bearer, sizeof(bearer) - 1) == 0) {
    size_t i = sizeof(bearer) - 1;
    while (i < n && v[i] == ' ')
      i++;
    *token = v + i;
    *len = n - i;
    return 1;
  }
  size_t pos = 0;
  int rc = fmq_http_query_next(r, "token", &pos, buf, cap, len);
  if (rc == 1)
    *token = buf;
  return rc;
}

/* Sets id's user and client id: client_id, or a new one when NULL.
 * Returns 0 or FMQ_ENOMEM. */
static int set_names(struct fmq_identity *id, const char *user, const char *client_id) {
  if ((id->user = strdup(user)) == NULL)
    return FMQ_ENOMEM;
  if (client_id != NULL)
    return (id->client_id = strdup(client_id)) != NULL ? 0 : FMQ_ENOMEM;
  uint8_t bytes[8];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1)
    return FMQ_ENOMEM;
  id->client_id = malloc(sizeof(CLIENT_ID_PREFIX) + 2 * sizeof(bytes));
  if (id->client_id == NULL)
    return FMQ_ENOMEM;
  char *p = id->client_id + strlen(CLIENT_ID_PREFIX);
  memcpy(id->client_id, CLIENT_ID_PREFIX, strlen(CLIENT_ID_PREFIX));
  for (size_t i = 0; i < sizeof(bytes); i++)
    p += sprintf(p, "%02x", bytes[i]);
  return 0;
}

/* The entry of a->tokens whose digest is token's, or NULL. */
static const struct fmq_token_config *find_token(const struct fmq_auth *a, const char *token,
                                                 size_t len) {
  uint8_t digest[32];
  SHA256((const unsigned char *)token, len, digest);
  const struct fmq_token_config *found = NULL;
  for (size_t i = 0; i < a->ntokens; i++) {
    if (CRYPTO_memcmp(digest, a->tokens[i].digest, sizeof(digest)) == 0 && found == NULL)
      found = a->tokens[i].config;
  }
  return found;
}

static int check_token(const struct fmq_auth *a, const char *token, size_t len,
                       struct fmq_identity *id, const char **why) {
  const struct fmq_token_config *t = find_token(a, token, len);
  if (t == NULL) {
    *why = "unknown token";
    return FMQ_EAUTH;
  }
  int rc = set_names(id, t->user, NULL);
  if (rc == 0)
    rc = fmq_acl_list_init(&id->acl.subscribe, (const char *const *)t->subscribe.v,
                           t->subscribe.n, t->subscribe_any, id->user, id->client_id);
  if (rc == 0)
    rc = fmq_acl_list_init(&id->acl.publish, (const char *const *)t->publish.v, t->publish.n,
                           t->publish_any, id->user, id->client_id);
  return rc;
}

/* Builds l from the claim's list `name`: an array of strings, or absent
 * (nothing allowed). Returns 0, FMQ_EAUTH or FMQ_ENOMEM. */
static int claim_acl(struct fmq_acl_list *l, const json_t *claim, const char *name,
                     const struct fmq_identity *id, const char **why) {
  const json_t *list = json_object_get(claim, name);
  if (list == NULL)
    return fmq_acl_list_init(l, NULL, 0, 0, id->user, id->client_id);
  if (!json_is_array(list)) {
    *why = "malformed ferrymq claim";
    return FMQ_EAUTH;
  }
  size_t n = json_array_size(list);
  const char **patterns = malloc((n ? n : 1) * sizeof(*patterns));
  if (patterns == NULL)
    return FMQ_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const json_t *p = json_array_get(list, i);
    if (!json_is_string(p)) {
      free(patterns);
      *why = "malformed ferrymq claim";
      return FMQ_EAUTH;
    }
    patterns[i] = json_string_value(p);
  }
  int rc = fmq_acl_list_init(l, patterns, n, 0, id->user, id->client_id);
  free(patterns);
  return rc;
}

static int check_jwt(const struct fmq_auth *a, const char *token, size_t len, int64_t now,
                     struct fmq_identity *id, const char **why) {
  const struct fmq_strv *sub = &a->config->auth.jwt.default_subscribe;
  const struct fmq_strv *pub = &a->config->auth.jwt.default_publish;
  json_t *claims;
  int rc = fmq_jwt_verify(&a->jwt, token, len, now, &claims, why);
  if (rc != 0)
    return rc;
  /* fmq_jwt_verify refuses strings holding NUL: these are whole */
  const char *user = json_string_value(json_object_get(claims, a->config->auth.jwt.user_claim));
  const json_t *claim = json_object_get(claims, "ferrymq");
  if (user == NULL) {
    *why = "no user claim";
    rc = FMQ_EAUTH;
  } else if (claim != NULL && !json_is_object(claim)) {
    *why = "malformed ferrymq claim";
    rc = FMQ_EAUTH;
  } else {
    rc = set_names(id, user, json_string_value(json_object_get(claims, "client_id")));
  }
  if (rc == 0 && claim != NULL) {
    rc = claim_acl(&id->acl.subscribe, claim, "subscribe", id, why);
    if (rc == 0)
      rc = claim_acl(&id->acl.publish, claim, "publish", id, why);
  } else if (rc == 0) {
    rc = fmq_acl_list_init(&id->acl.subscribe, (const char *const *)sub->v, sub->n, 0, id->user,
                           id->client_id);
    if (rc == 0)
      rc = fmq_acl_list_init(&id->acl.publish, (const char *const *)pub->v, pub->n, 0, id->user,
                             id->client_id);
  }
  json_decref(claims);
  return rc;
}

int fmq_auth_check(const struct fmq_auth *a, const char *token, size_t len, int64_t now,
                   struct fmq_identity *id, const char **why) {
  *id = (struct fmq_identity){0};
  enum fmq_auth_mode mode = a->config->auth.mode;
  if (mode == FMQ_AUTH_NONE) {
    id->acl.subscribe.any = id->acl.publish.any = 1;
    return 0;
  }
  int rc;
  if (token == NULL || len == 0) {
    *why = "no credentials";
    rc = FMQ_EAUTH;
  } else if (len > a->config->auth.max_token_size) {
    *why = "credentials too long";
    rc = FMQ_EAUTH;
  } else if (mode == FMQ_AUTH_TOKEN) {
    rc = check_token(a, token, len, id, why);
  } else {
    rc = check_jwt(a, token, len, now, id, why);
  }
  if (rc != 0)
    fmq_identity_close(id);
  return rc;
}

void fmq_identity_close(struct fmq_identity *id) {
  free(id->user);
  free(id->client_id);
  fmq_acl_close(&id->acl);
  *id = (struct fmq_identity){0};
}
