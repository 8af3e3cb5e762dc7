// SPDX-License-Identifier: GPL-2.0-only
/* What the proxy asks of a policy (see policy.h). */
#include "proxy/policy.h"

uint32_t policy_weight_of(const struct policy *p, const struct addr *ep)
{
	for (size_t i = 0; i < p->n_weights; i++)
		if (addr_ip_equal(&p->weights[i].ip, ep))
			return p->weights[i].weight;
	return 1;
}
