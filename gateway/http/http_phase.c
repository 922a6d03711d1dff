#include "http_phase.h"

#include "admission.h"
#include "error.h"
#include "ws_handshake.h"

void fmq_http_phase_refusal(int status, const char *reason, struct fmq_http_answer *answer) {
  int n = fmq_http_render_error(status, reason, answer->head, sizeof(answer->head));
  answer->status = status;
  answer->reason = reason;
  answer->head_len = n > 0 ? (size_t)n : 0;
}

static void answer_handshake(const struct fmq_handshake *hs, struct fmq_http_answer *answer) {
  int n = fmq_handshake_render(hs, answer->head, sizeof(answer->head));
  answer->status = hs->status;
  answer->reason = hs->reason;
  answer->head_len = n > 0 ? (size_t)n : 0;
}

size_t fmq_http_phase_feed(struct fmq_http_request *req, const struct fmq_listen_config *listen,
                           const struct fmq_snapshot *snapshot, const struct fmq_session *session,
                           struct fmq_peer *peer, const uint8_t *p, size_t len,
                           struct fmq_http_answer *answer) {
  size_t used = 0;
  answer->status = 0;
  int rc = fmq_http_request_feed(req, p, len, &used);
  if (rc == FMQ_ENEEDMORE)
    return len;
  if (rc == FMQ_EHTTP) {
    fmq_http_phase_refusal(400, "malformed HTTP request", answer);
    return len;
  }
  if (rc == FMQ_EHEADERS) {
    fmq_http_phase_refusal(431, "request header fields too large", answer);
    return len;
  }
  if (rc != 0) {
    fmq_http_phase_refusal(500, fmq_strerror(rc), answer);
    return len;
  }
  struct fmq_handshake hs;
  fmq_handshake_check(req, (const char *const *)listen->paths, listen->npaths, &hs);
  if (hs.status != 101) {
    answer_handshake(&hs, answer);
    return len;
  }
  const char *reason = NULL;
  int status =
      fmq_admission_check(snapshot, session, req, peer, answer->why, sizeof(answer->why), &reason);
  if (status != 0) {
    fmq_http_phase_refusal(status, reason, answer);
    return len;
  }
  answer_handshake(&hs, answer);
  return used;
}
