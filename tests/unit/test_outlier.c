// SPDX-License-Identifier: GPL-2.0-only
/* agent/proxy/outlier.c and retry.c: the ejection state machine, and the
 * retry budget and backoff.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "proxy/outlier.h"
#include "proxy/policy.h"
#include "proxy/retry.h"

#define T0 1000000

static struct policy pol(uint32_t failures, uint32_t base, uint32_t max)
{
	struct policy p;

	policy_builtin(&p);
	p.outlier_failures = failures;
	p.outlier_base_ms = base;
	p.outlier_max_ms = max;
	return p;
}

Test(outlier, ejects_after_n_consecutive_failures_only)
{
	struct policy p = pol(3, 1000, 10000);
	struct outlier o = { 0 };

	cr_assert_not(outlier_failure(&o, &p, T0, true));
	cr_assert_not(outlier_failure(&o, &p, T0, true));
	outlier_success(&o, &p, T0);	/* breaks the streak */
	cr_assert_not(outlier_failure(&o, &p, T0, true));
	cr_assert_not(outlier_failure(&o, &p, T0, true));
	cr_assert(outlier_failure(&o, &p, T0, true));
	cr_assert(outlier_is_ejected(&o, T0 + 999));
	cr_assert_not(outlier_is_ejected(&o, T0 + 1000));
}

Test(outlier, half_open_failure_ejects_again_at_once_for_longer)
{
	struct policy p = pol(5, 1000, 2500);
	struct outlier o = { 0 };

	for (int i = 0; i < 4; i++)
		cr_assert_not(outlier_failure(&o, &p, T0, true));
	cr_assert(outlier_failure(&o, &p, T0, true));
	/* Back after 1 s, on probation: one failure is enough, and lasts 2 s. */
	cr_assert(outlier_failure(&o, &p, T0 + 1000, true));
	cr_assert(outlier_is_ejected(&o, T0 + 2999));
	cr_assert_not(outlier_is_ejected(&o, T0 + 3000));
	/* The third ejection would be 3 s: capped at 2.5 s. */
	cr_assert(outlier_failure(&o, &p, T0 + 3000, true));
	cr_assert_eq(o.until_ms, T0 + 3000 + 2500);
}

Test(outlier, success_on_probation_heals_and_the_multiplier_decays)
{
	struct policy p = pol(1, 1000, 60000);
	struct outlier o = { 0 };

	cr_assert(outlier_failure(&o, &p, T0, true));
	cr_assert(outlier_failure(&o, &p, T0 + 1000, true));
	cr_assert_eq(o.ejections, 2);
	outlier_success(&o, &p, T0 + 3000);
	cr_assert_not(o.ejected, "a success on probation heals it");
	/* Decay: one step per base time of good behaviour after the last ejection. */
	outlier_success(&o, &p, T0 + 4000);
	cr_assert_eq(o.ejections, 1);
	outlier_success(&o, &p, T0 + 4500);
	cr_assert_eq(o.ejections, 1);
	outlier_success(&o, &p, T0 + 5000);
	cr_assert_eq(o.ejections, 0);
}

Test(outlier, failures_while_ejected_do_not_extend_it)
{
	struct policy p = pol(1, 1000, 60000);
	struct outlier o = { 0 };

	cr_assert(outlier_failure(&o, &p, T0, true));
	cr_assert_not(outlier_failure(&o, &p, T0 + 10, true));
	cr_assert_eq(o.until_ms, T0 + 1000);
}

Test(outlier, disabled_and_capped)
{
	struct policy p = pol(0, 1000, 60000);
	struct outlier o = { 0 };

	for (int i = 0; i < 100; i++)
		cr_assert_not(outlier_failure(&o, &p, T0, true));
	p = pol(1, 1000, 60000);
	cr_assert_not(outlier_failure(&o, &p, T0, false), "the cap forbids it");
	cr_assert(outlier_may_eject(0, 3, 10), "one may always be ejected");
	cr_assert_not(outlier_may_eject(1, 3, 50), "2 of 3 is over 50 %");
	cr_assert(outlier_may_eject(1, 4, 50));
	cr_assert_not(outlier_may_eject(2, 4, 50));
	cr_assert_not(outlier_may_eject(0, 3, 0), "0 % means never");
	cr_assert_not(outlier_may_eject(1, 1, 100), "nothing left to eject");
}

Test(retry, budget_allows_its_share_of_the_requests)
{
	struct retry_budget b = { 0 };
	int allowed = 0;

	for (int i = 0; i < 100; i++) {
		budget_request(&b, T0 + (uint64_t)i);
		allowed += budget_take(&b, T0 + (uint64_t)i, 20, 0);
	}
	cr_assert_eq(allowed, 20);
	/* More retries, no more requests: refused. */
	cr_assert_not(budget_take(&b, T0 + 200, 20, 0));
}

Test(retry, budget_floor_and_window)
{
	struct retry_budget b = { 0 };
	int allowed = 0;

	/* No requests at all: the floor alone, 2/s over 10 s. */
	for (int i = 0; i < 100; i++)
		allowed += budget_take(&b, T0, 20, 2);
	cr_assert_eq(allowed, 20);
	/* The window slides: 10 s later the old retries no longer count. */
	cr_assert(budget_take(&b, T0 + 10000, 20, 2));
	cr_assert_not(budget_take(&b, T0 + 5000 + 10000, 0, 0));
}

Test(retry, backoff_is_jittered_exponential_and_capped)
{
	uint64_t rng = 99;
	uint32_t max1 = 0, max3 = 0, max9 = 0;

	for (int i = 0; i < 2000; i++) {
		uint32_t a = retry_backoff_ms(25, 1, &rng), b = retry_backoff_ms(25, 3, &rng),
			 c = retry_backoff_ms(25, 9, &rng);

		cr_assert(a >= 1 && a <= 25);
		cr_assert(b >= 1 && b <= 100);
		cr_assert(c >= 1 && c <= 250);
		max1 = a > max1 ? a : max1;
		max3 = b > max3 ? b : max3;
		max9 = c > max9 ? c : max9;
	}
	cr_assert(max1 > 20 && max3 > 80 && max9 > 200, "spread: %u %u %u", max1, max3, max9);
}
