/* SPDX-License-Identifier: GPL-2.0-only */
/* Latency histograms of a service port (upstream connect time, HTTP time to
 * the response head): fixed buckets, so recording is a few compares and an
 * increment with no allocation, and the admin API and /metrics read them
 * as they are. Besides the total since the service appeared, two rotating
 * windows keep the last LAT_WINDOW_MS..2*LAT_WINDOW_MS, which is what
 * "recent latency" means in meshctl. Written by the proxy only.
 */
#ifndef WEFT_PROXY_LATENCY_H
#define WEFT_PROXY_LATENCY_H

#include <stdint.h>

/* Upper bounds in microseconds of the first LAT_BUCKETS - 1 buckets; the
 * last bucket is +Inf. From 100 us (loopback) to 5 s (the connect timeout).
 */
#define LAT_BUCKETS 16
extern const uint64_t lat_bounds_us[LAT_BUCKETS - 1];

#define LAT_WINDOW_MS 10000

struct lat_hist {
	uint64_t count[LAT_BUCKETS];	/* per bucket, not cumulative */
	uint64_t sum_us;
	uint64_t n;
};

struct lat {
	struct lat_hist total;		/* since the service port appeared */
	struct lat_hist win[2];		/* [0] the current window, [1] the one before */
	uint64_t win_start_ms;		/* start of win[0], loop clock */
};

/* CLOCK_MONOTONIC in microseconds: the loop's millisecond clock is too coarse
 * for a connect on a local network.
 */
uint64_t lat_now_us(void);

/* Record one observation of @us at loop time @now_ms. */
void lat_record(struct lat *l, uint64_t us, uint64_t now_ms);

/* The observations of the recent windows at @now_ms into @out (between
 * LAT_WINDOW_MS and 2 * LAT_WINDOW_MS of history).
 */
void lat_recent(const struct lat *l, uint64_t now_ms, struct lat_hist *out);

/* The @q quantile (0 < q <= 1) of @h in microseconds, interpolated linearly
 * inside its bucket as Prometheus' histogram_quantile() does; a quantile in
 * the +Inf bucket is the last finite bound. 0 when @h is empty.
 */
uint64_t lat_quantile_us(const struct lat_hist *h, double q);

#endif /* WEFT_PROXY_LATENCY_H */
