/* SPDX-License-Identifier: GPL-2.0-only */
/* Endpoint selection for one service port of a catalogue snapshot. Called by
 * the proxy workers on every new upstream connection, concurrently, without
 * locks. Round robin only for now; issue #3 adds least-outstanding with two
 * random choices, weights and outlier ejection. Those need per-endpoint state
 * that outlives a snapshot (outstanding counts, ejection deadlines), so they
 * will take a state table keyed by endpoint address next to @sp rather than
 * mutate the immutable catalogue; the pick functions stay one per algorithm.
 */
#ifndef WEFT_BALANCER_H
#define WEFT_BALANCER_H

#include "catalogue.h"

/* The next ready endpoint of @sp in round-robin order, or NULL when none is
 * ready. Safe from any number of threads at once: each caller takes its own
 * slot of the shared cursor sp->rr_next, so N concurrent picks over N ready
 * endpoints hit each once. Relies on the catalogue invariant that the
 * n_ready ready endpoints come first. The result is borrowed from the
 * snapshot @sp belongs to. Never blocks.
 */
const struct cat_endpoint *balancer_pick_rr(struct cat_svc_port *sp);

#endif /* WEFT_BALANCER_H */
