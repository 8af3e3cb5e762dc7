// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/retry.h. */
#include "proxy/retry.h"

static unsigned int bucket(struct retry_budget *b, uint64_t now_ms)
{
	uint64_t sec = now_ms / 1000;
	unsigned int i = (unsigned int)(sec % BUDGET_WINDOW_S);

	if (b->sec[i] != sec) {
		b->sec[i] = sec;
		b->requests[i] = 0;
		b->retries[i] = 0;
	}
	return i;
}

void budget_request(struct retry_budget *b, uint64_t now_ms)
{
	b->requests[bucket(b, now_ms)]++;
}

bool budget_take(struct retry_budget *b, uint64_t now_ms, uint32_t pct, uint32_t min_per_s)
{
	uint64_t sec = now_ms / 1000, requests = 0, retries = 0;
	unsigned int i = bucket(b, now_ms);

	for (unsigned int k = 0; k < BUDGET_WINDOW_S; k++) {
		if (b->sec[k] + BUDGET_WINDOW_S <= sec)
			continue;	/* older than the window */
		requests += b->requests[k];
		retries += b->retries[k];
	}
	if ((retries + 1) * 100 > requests * pct + (uint64_t)min_per_s * BUDGET_WINDOW_S * 100)
		return false;
	b->retries[i]++;
	return true;
}

uint64_t px_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

uint32_t retry_backoff_ms(uint32_t base_ms, uint32_t n, uint64_t *rng)
{
	uint64_t cap = (uint64_t)base_ms * 10, ms = base_ms;

	for (uint32_t i = 1; i < n && ms < cap; i++)
		ms *= 2;
	if (ms > cap)
		ms = cap;
	if (!ms)
		return 1;
	return (uint32_t)(1 + px_rand(rng) % ms);
}
