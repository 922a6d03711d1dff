#ifndef FMQ_AUTH_H
#define FMQ_AUTH_H

#include "acl.h"
#include "config.h"
#include "http_upgrade.h"
#include "jwt.h"

#include <stddef.h>
#include <stdint.h>

/* Authentication at the upgrade (auth.mode, protocol-v1 sections 1 and 8):
 * the request's credentials in, an identity with its ACL out. No loop and no
 * sockets; prepared once from the configuration (which it borrows), then
 * immutable: any thread may check credentials. Credentials never reach a
 * log or an error message. */

/* Who a client is, decided once per connection. Owned by the connection. */
struct fmq_identity {
  char *user;               /* NULL in mode none */
  char *client_id;          /* the JWT's "client_id", else generated; NULL in mode none */
  struct fmq_acl acl;       /* patterns with %u and %c already substituted */
};

/* A configured token, as its SHA-256 digest. */
struct fmq_auth_token {
  uint8_t digest[32];
  const struct fmq_token_config *config; /* borrowed from the configuration */
};

struct fmq_auth {
  const struct fmq_config *config;       /* borrowed; outlives a */
  struct fmq_auth_token *tokens;         /* owned; mode token */
  size_t ntokens;
  struct fmq_jwt_verifier jwt;           /* mode jwt */
};

/* Prepares a from config: digests of the tokens, the JWT verifier with the
 * key read from auth.jwt.public_key_file. Returns 0, or -1 with err
 * ("auth.jwt.public_key_file: /path: why", "auth.tokens: ..."). */
int fmq_auth_init(struct fmq_auth *a, const struct fmq_config *config, char *err, size_t errlen);
void fmq_auth_close(struct fmq_auth *a);

/* The request's credentials: the token of an "Authorization: Bearer ..."
 * header, else the first token= query parameter, percent-decoded into buf
 * (cap bytes; one of r->target_len + 1 is always enough). Returns 1 with
 * *token (into r's arena or buf, not NUL-terminated) and *len, 0 when the
 * request has none (another Authorization scheme counts as none), or
 * FMQ_EHTTP for a malformed query (answer 400). */
int fmq_auth_credentials(const struct fmq_http_request *r, char *buf, size_t cap,
                         const char **token, size_t *len);

/* Decides who presents token (len bytes; NULL: none) at time now (seconds
 * since the epoch), in the configured mode:
 *   none   anyone; user and client_id NULL; everything allowed
 *   token  one of auth.tokens (SHA-256 digests compared in constant time,
 *          every entry looked at); user from the entry, ACL from its lists
 *   jwt    a token fmq_jwt_verify accepts, with a string user claim
 *          (auth.jwt.user_claim); ACL from the "ferrymq" claim's
 *          "subscribe"/"publish" lists (a list it lacks allows nothing), or
 *          auth.jwt.default_subscribe/default_publish without that claim
 * A token longer than auth.max_token_size is refused unread. The client id
 * is the JWT's string "client_id" claim, else "fmq-" and 16 random hex
 * digits. Returns 0 with *id filled (close it with fmq_identity_close),
 * FMQ_EAUTH with *why set to a static reason that never quotes the token,
 * or FMQ_ENOMEM. */
int fmq_auth_check(const struct fmq_auth *a, const char *token, size_t len, int64_t now,
                   struct fmq_identity *id, const char **why);
void fmq_identity_close(struct fmq_identity *id);

#endif
