/* SPDX-License-Identifier: GPL-2.0-only */
/* Endpoint selection for one service port: least outstanding with the power
 * of two choices (the default), weighted round robin, weighted random. Only
 * ready endpoints that are not ejected are candidates; when every ready
 * endpoint is ejected all ready ones are (panic mode: a degraded answer beats
 * none). A retry avoids the endpoints it already tried while others remain.
 * Reads the service's state (svc_state, ep_state); writes only its
 * round-robin cursor. Never blocks.
 */
#ifndef WEFT_BALANCER_H
#define WEFT_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/state.h"

/* Pick an endpoint of @s at @now_ms with @s->pol.lb, avoiding the @n_tried
 * endpoints in @tried when another candidate exists. Sets *@panic when every
 * ready endpoint was ejected. Returns NULL only when @s has no ready endpoint.
 * @rng is the caller's random state.
 */
struct ep_state *balancer_pick(struct svc_state *s, uint64_t now_ms, struct ep_state *const *tried,
			       size_t n_tried, uint64_t *rng, bool *panic);

#endif /* WEFT_BALANCER_H */
