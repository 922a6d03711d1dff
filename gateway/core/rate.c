#include "rate.h"

#include "error.h"

#include <stdlib.h>

/* n x 1000, saturating. */
static uint64_t milli(uint64_t n) {
  return n > UINT64_MAX / 1000 ? UINT64_MAX : n * 1000;
}

void fmq_rate_init(struct fmq_rate *r, uint64_t burst, uint64_t now_ms) {
  /* burst 0 stands for per_second, which only fmq_rate_take knows: start
   * above any capacity and let the first take cut the bucket down to full. */
  *r = (struct fmq_rate){.millitokens = burst ? milli(burst) : UINT64_MAX, .last_ms = now_ms};
}

void fmq_rate_close(struct fmq_rate *r) {
  free(r->refusals);
  r->refusals = NULL;
  r->head = r->count = 0;
}

/* The loop's clock (uv_now) never goes back; should now_ms be earlier than
 * the last call anyway, no time has passed. */
int fmq_rate_take(struct fmq_rate *r, uint64_t per_second, uint64_t burst, uint64_t now_ms) {
  if (per_second == 0)
    return 1;
  uint64_t cap = milli(burst ? burst : per_second);
  if (r->millitokens > cap)
    r->millitokens = cap;
  if (now_ms > r->last_ms) {
    uint64_t elapsed = now_ms - r->last_ms;
    /* elapsed ms x tokens per second = millitokens */
    uint64_t refill = elapsed > UINT64_MAX / per_second ? UINT64_MAX : elapsed * per_second;
    r->millitokens = refill >= cap - r->millitokens ? cap : r->millitokens + refill;
    r->last_ms = now_ms;
  }
  if (r->millitokens < 1000)
    return 0;
  r->millitokens -= 1000;
  return 1;
}

int fmq_rate_refused(struct fmq_rate *r, uint64_t max_refusals, uint64_t now_ms) {
  /* A ring longer than uint32 would need billions of refusals in 10 s, which
   * no connection can send: such a limit never closes. */
  if (max_refusals == 0 || max_refusals >= UINT32_MAX)
    return 0;
  uint32_t cap = (uint32_t)max_refusals + 1;
  if (r->refusals == NULL) {
    r->refusals = malloc(cap * sizeof(*r->refusals));
    if (r->refusals == NULL)
      return FMQ_ENOMEM;
    r->head = r->count = 0;
  }
  while (r->count > 0 && now_ms - r->refusals[r->head] >= FMQ_RATE_REFUSAL_WINDOW_MS) {
    r->head = (r->head + 1) % cap;
    r->count--;
  }
  if (r->count == cap) {
    r->refusals[r->head] = now_ms;
    r->head = (r->head + 1) % cap;
  } else {
    r->refusals[(r->head + r->count) % cap] = now_ms;
    r->count++;
  }
  return r->count > max_refusals;
}
