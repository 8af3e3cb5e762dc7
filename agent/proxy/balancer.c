// SPDX-License-Identifier: GPL-2.0-only
/* Endpoint selection over a catalogue service port (see balancer.h). Reads
 * the snapshot; writes only the service port's round-robin cursor.
 */
#include "proxy/balancer.h"

const struct cat_endpoint *balancer_pick_rr(struct cat_svc_port *sp)
{
	unsigned int slot;

	if (!sp->n_ready)
		return NULL;
	/* Relaxed is enough: the cursor orders nothing else, it only has to
	 * hand out distinct slots. When it wraps at 2^32 one round is uneven
	 * unless n_ready divides 2^32; harmless.
	 */
	slot = atomic_fetch_add_explicit(&sp->rr_next, 1, memory_order_relaxed);
	return &sp->endpoints[slot % sp->n_ready];
}
