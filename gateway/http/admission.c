#include "admission.h"

#include "error.h"
#include "origin.h"
#include "session.h"
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* websocket.allowed_origins: a request without Origin is not from a
 * browser, and auth alone judges it. */
static int admission_origin_allowed(const struct fmq_config *config,
                                    const struct fmq_http_request *req) {
  const struct fmq_strv *allowed = &config->websocket.allowed_origins;
  size_t len;
  const char *origin = fmq_http_field(req, "Origin", &len);
  char norm[512];
  if (allowed->n == 0 || origin == NULL)
    return 1;
  if (fmq_origin_normalize(origin, len, norm, sizeof(norm)) < 0)
    return 0;
  for (size_t i = 0; i < allowed->n; i++)
    if (strcmp(norm, allowed->v[i]) == 0)
      return 1;
  return 0;
}

/* buf: cap bytes, room for any decoded query value. */
static int admission_check_topics(const struct fmq_session *session,
                                  const struct fmq_http_request *req, const struct fmq_peer *peer,
                                  char *buf, size_t cap, char *why, size_t whylen,
                                  const char **reason) {
  size_t pos = 0, len;
  int rc;
  while ((rc = fmq_http_query_next(req, "topic", &pos, buf, cap, &len)) == 1) {
    enum fmq_client_error_code code;
    char msg[96];
    if (fmq_topic_check_filter(buf, len) != 0) {
      *reason = "topic= is not a valid MQTT topic filter";
      return 400;
    }
    if (fmq_session_check_topic(session, peer, buf, 1, &code, msg, sizeof(msg)) != 0) {
      snprintf(why, whylen, "topic=: %s", msg);
      *reason = why;
      return code == FMQ_CE_FORBIDDEN ? 403 : 400;
    }
  }
  *reason = "malformed query string";
  return rc == 0 ? 0 : 400;
}

/* buf as above. */
static int admission_check_credentials(const struct fmq_snapshot *snapshot,
                                       const struct fmq_http_request *req, struct fmq_peer *peer,
                                       char *buf, size_t cap, char *why, size_t whylen,
                                       const char **reason) {
  const char *token = NULL, *cause = NULL;
  size_t len = 0;
  int rc = fmq_auth_credentials(req, buf, cap, &token, &len);
  if (rc < 0) {
    *reason = "malformed query string";
    return 400;
  }
  rc = fmq_auth_check(&snapshot->auth, rc == 1 ? token : NULL, len, (int64_t)time(NULL),
                      &peer->identity, &cause);
  if (rc == FMQ_ENOMEM) {
    *reason = "out of memory";
    return 500;
  }
  if (rc != 0) {
    snprintf(why, whylen, "unauthorized: %s", cause);
    *reason = why;
    return 401;
  }
  return 0;
}

int fmq_admission_check(const struct fmq_snapshot *snapshot, const struct fmq_session *session,
                        const struct fmq_http_request *req, struct fmq_peer *peer, char *why,
                        size_t whylen, const char **reason) {
  if (!admission_origin_allowed(&snapshot->config, req)) {
    *reason = "origin not allowed";
    return 403;
  }
  /* Decoding never lengthens: the target's size holds any query value. */
  size_t cap = req->target_len + 1;
  char *buf = malloc(cap);
  if (buf == NULL) {
    *reason = "out of memory";
    return 500;
  }
  int status = admission_check_credentials(snapshot, req, peer, buf, cap, why, whylen, reason);
  if (status == 0)
    status = admission_check_topics(session, req, peer, buf, cap, why, whylen, reason);
  free(buf);
  return status;
}
