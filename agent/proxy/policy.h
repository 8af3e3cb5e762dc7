/* SPDX-License-Identifier: GPL-2.0-only */
/* The proxy's side of a service's resilience policy. The typed policy, its
 * knobs and the decoding of Service annotations live in the model
 * (model/policy.h); the proxy applies a Service's override to its defaults
 * once per catalogue snapshot (state.c) and asks only what is below.
 */
#ifndef WEFT_PROXY_POLICY_H
#define WEFT_PROXY_POLICY_H

#include <stdint.h>

#include "addr.h"
#include "model/policy.h"

/* The weight of endpoint @ep under @p: 1 unless weft.io/weights names it. */
uint32_t policy_weight_of(const struct policy *p, const struct addr *ep);

#endif /* WEFT_PROXY_POLICY_H */
