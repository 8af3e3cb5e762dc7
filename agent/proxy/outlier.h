/* SPDX-License-Identifier: GPL-2.0-only */
/* Outlier detection for one endpoint: N consecutive failures eject it for a
 * time that grows with each ejection (base * ejections, capped); once the
 * time is up it is back on probation (half-open): its first result decides,
 * a failure ejects it again at once. The ejection multiplier decays by one
 * per base time of good behaviour. Pure state, no I/O; the caller supplies
 * the clock and whether the service's cap allows one more ejection.
 */
#ifndef WEFT_PROXY_OUTLIER_H
#define WEFT_PROXY_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy;

struct outlier {
	uint32_t consecutive;	/* failures in a row */
	uint32_t ejections;	/* multiplier of the next ejection time */
	uint64_t until_ms;	/* ejected until; meaningful while @ejected */
	uint64_t decay_ms;	/* when @ejections may next decrease */
	bool ejected;		/* ejected, or back but on probation (half-open) */
};

/* Out of rotation at @now_ms. */
static inline bool outlier_is_ejected(const struct outlier *o, uint64_t now_ms)
{
	return o->ejected && now_ms < o->until_ms;
}

/* Record a success at @now_ms: clears the failure streak and ends probation. */
void outlier_success(struct outlier *o, const struct policy *p, uint64_t now_ms);

/* Record a failure. Ejects when the streak reaches p->outlier_failures, or at
 * once on probation, provided @may_eject. Returns true if it ejected now.
 */
bool outlier_failure(struct outlier *o, const struct policy *p, uint64_t now_ms, bool may_eject);

/* Whether ejecting one more of @n endpoints, @ejected of them already out,
 * stays within @max_pct percent; one ejection is always allowed unless
 * @max_pct is 0.
 */
bool outlier_may_eject(size_t ejected, size_t n, uint32_t max_pct);

#endif /* WEFT_PROXY_OUTLIER_H */
