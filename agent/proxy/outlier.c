// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/outlier.h. */
#include "proxy/outlier.h"
#include "proxy/policy.h"

void outlier_success(struct outlier *o, const struct policy *p, uint64_t now_ms)
{
	o->consecutive = 0;
	if (o->ejected && now_ms >= o->until_ms)
		o->ejected = false;	/* probation passed */
	if (!o->ejected && o->ejections && now_ms >= o->decay_ms) {
		o->ejections--;
		o->decay_ms = now_ms + p->outlier_base_ms;
	}
}

bool outlier_failure(struct outlier *o, const struct policy *p, uint64_t now_ms, bool may_eject)
{
	uint64_t ms;

	if (!p->outlier_failures)
		return false;
	if (outlier_is_ejected(o, now_ms))
		return false;	/* an attempt started before the ejection */
	o->consecutive++;
	if (!may_eject || (!o->ejected && o->consecutive < p->outlier_failures))
		return false;
	o->ejections++;
	ms = (uint64_t)p->outlier_base_ms * o->ejections;
	if (ms > p->outlier_max_ms)
		ms = p->outlier_max_ms;
	o->ejected = true;
	o->until_ms = now_ms + ms;
	o->decay_ms = o->until_ms + p->outlier_base_ms;
	o->consecutive = 0;
	return true;
}

bool outlier_may_eject(size_t ejected, size_t n, uint32_t max_pct)
{
	if (!max_pct || ejected >= n)
		return false;
	return !ejected || (ejected + 1) * 100 <= (size_t)max_pct * n;
}
