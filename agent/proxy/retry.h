/* SPDX-License-Identifier: GPL-2.0-only */
/* Retry budget and backoff. The budget (Finagle's and Linkerd's idea) lets
 * retries add at most pct % to a service's request rate over a sliding
 * window, plus a small floor per second so a quiet service can still retry:
 * when every endpoint fails, the upstream sees at most (1 + pct/100) times the
 * offered load, never a retry storm. Backoff is exponential with full jitter.
 * Pure state, no I/O.
 */
#ifndef WEFT_PROXY_RETRY_H
#define WEFT_PROXY_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define BUDGET_WINDOW_S 10	/* seconds of history, one bucket each */

struct retry_budget {
	uint64_t sec[BUDGET_WINDOW_S];		/* which second each bucket holds */
	uint32_t requests[BUDGET_WINDOW_S];	/* original requests (or connections) */
	uint32_t retries[BUDGET_WINDOW_S];
};

/* Count an original request at @now_ms. */
void budget_request(struct retry_budget *b, uint64_t now_ms);

/* Take one retry if the window allows it: retries + 1 <= requests * pct / 100
 * + min_per_s * BUDGET_WINDOW_S. Returns whether it was taken.
 */
bool budget_take(struct retry_budget *b, uint64_t now_ms, uint32_t pct, uint32_t min_per_s);

/* Delay before retry number @n (1 = the first retry): uniform in
 * [1, min(base * 2^(n-1), 10 * base)] ms (Envoy's cap).
 */
uint32_t retry_backoff_ms(uint32_t base_ms, uint32_t n, uint64_t *rng);

/* xorshift64*: fast, good enough for balancing and jitter. @state != 0. */
uint64_t px_rand(uint64_t *state);

#endif /* WEFT_PROXY_RETRY_H */
