#ifndef FMQ_RATE_H
#define FMQ_RATE_H

#include <stdint.h>

/* One connection's message rate limit (protocol-v1 section 8,
 * limits.rate): a token bucket refilled at per_second tokens a second up to
 * burst, starting full; and the recent refusals, to close a client that
 * keeps pushing. Pure code: the caller passes the time in milliseconds
 * (the loop's clock). Loop thread only. */

#define FMQ_RATE_REFUSAL_WINDOW_MS 10000

struct fmq_rate {
  uint64_t millitokens;       /* tokens x 1000 */
  uint64_t last_ms;           /* when millitokens was last refilled */
  uint64_t *refusals;         /* owned ring of refusal times, allocated at the first refusal */
  uint32_t head, count;       /* ring position and length */
};

/* Starts with a full bucket of burst tokens at now_ms. */
void fmq_rate_init(struct fmq_rate *r, uint64_t burst, uint64_t now_ms);
void fmq_rate_close(struct fmq_rate *r);
/* Refills for the time since the last call and takes one token. Returns 1
 * when the message may go, 0 when it is refused. per_second 0: always 1. */
int fmq_rate_take(struct fmq_rate *r, uint64_t per_second, uint64_t burst, uint64_t now_ms);
/* Records a refusal at now_ms. Returns 1 when more than max_refusals
 * refusals fell within the last FMQ_RATE_REFUSAL_WINDOW_MS (now included):
 * close the client with 1008. 0 otherwise, and always 0 when max_refusals
 * is 0. FMQ_ENOMEM when the ring (max_refusals + 1 entries) could not be
 * allocated. */
int fmq_rate_refused(struct fmq_rate *r, uint64_t max_refusals, uint64_t now_ms);

#endif
