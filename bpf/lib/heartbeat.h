/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Whether the agent's heartbeat (mesh_heartbeat) is stale: the test behind
 * fail-open pods (MESH_POD_F_FAIL_OPEN, annotation weft.io/fail-open). Pure,
 * so tests/unit runs it with the host cc; used by redirect.bpf.c and
 * inbound.bpf.c, and by the agent to explain it.
 */
#ifndef WEFT_BPF_LIB_HEARTBEAT_H
#define WEFT_BPF_LIB_HEARTBEAT_H

/* Whether @hb, read at @now_ns (bpf_ktime_get_ns(), CLOCK_MONOTONIC), says
 * the agent stopped beating more than hb->stale_after_ns ago. Stale takes
 * proof: no entry, a beat of 0 (no agent of this version ever wrote one) or
 * a threshold of 0 is "fresh", so a missing or zeroed map never turns a pod's
 * capture off. A beat in the future (written by a clock the programs do not
 * share, e.g. an agent in a time namespace) is fresh too.
 */
static __always_inline bool mesh_heartbeat_is_stale(const struct mesh_heartbeat *hb,
						    __u64 now_ns)
{
	if (!hb || !hb->beat_ns || !hb->stale_after_ns || now_ns <= hb->beat_ns)
		return false;
	return now_ns - hb->beat_ns > hb->stale_after_ns;
}

#endif /* WEFT_BPF_LIB_HEARTBEAT_H */
