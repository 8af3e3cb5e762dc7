// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/latency.h. */
#include <string.h>
#include <time.h>

#include "proxy/latency.h"

const uint64_t lat_bounds_us[LAT_BUCKETS - 1] = {
	100,   250,    500,    1000,   2500,	5000,	 10000,	  25000,
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
};

uint64_t lat_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void hist_add(struct lat_hist *h, uint64_t us)
{
	size_t i = 0;

	while (i < LAT_BUCKETS - 1 && us > lat_bounds_us[i])
		i++;
	h->count[i]++;
	h->sum_us += us;
	h->n++;
}

static void hist_merge(struct lat_hist *into, const struct lat_hist *h)
{
	for (size_t i = 0; i < LAT_BUCKETS; i++)
		into->count[i] += h->count[i];
	into->sum_us += h->sum_us;
	into->n += h->n;
}

/* Rotate lazily, on write: a quiet service costs nothing. */
static void rotate(struct lat *l, uint64_t now_ms)
{
	if (now_ms < l->win_start_ms + LAT_WINDOW_MS)
		return;
	if (now_ms < l->win_start_ms + 2 * LAT_WINDOW_MS) {
		l->win[1] = l->win[0];
		l->win_start_ms += LAT_WINDOW_MS;
	} else {
		memset(&l->win[1], 0, sizeof(l->win[1]));
		l->win_start_ms = now_ms;
	}
	memset(&l->win[0], 0, sizeof(l->win[0]));
}

void lat_record(struct lat *l, uint64_t us, uint64_t now_ms)
{
	rotate(l, now_ms);
	hist_add(&l->total, us);
	hist_add(&l->win[0], us);
}

void lat_recent(const struct lat *l, uint64_t now_ms, struct lat_hist *out)
{
	memset(out, 0, sizeof(*out));
	/* The same view rotate() would leave, without writing. */
	if (now_ms >= l->win_start_ms + 2 * LAT_WINDOW_MS)
		return;
	hist_merge(out, &l->win[0]);
	if (now_ms < l->win_start_ms + LAT_WINDOW_MS)
		hist_merge(out, &l->win[1]);
}

uint64_t lat_quantile_us(const struct lat_hist *h, double q)
{
	double rank = q * (double)h->n, seen = 0;

	if (!h->n)
		return 0;
	for (size_t i = 0; i < LAT_BUCKETS; i++) {
		double lo = i ? (double)lat_bounds_us[i - 1] : 0, hi;

		if (seen + (double)h->count[i] < rank || !h->count[i]) {
			seen += (double)h->count[i];
			continue;
		}
		if (i == LAT_BUCKETS - 1)
			return lat_bounds_us[LAT_BUCKETS - 2];
		hi = (double)lat_bounds_us[i];
		return (uint64_t)(lo + (hi - lo) * (rank - seen) / (double)h->count[i]);
	}
	return lat_bounds_us[LAT_BUCKETS - 2];
}
