/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* mesh_count(): the one way a program records a decision, into the per-CPU
 * mesh_metrics array that the agent sums (dp_counters) and meshctl prints.
 */
#ifndef WEFT_BPF_LIB_METRICS_H
#define WEFT_BPF_LIB_METRICS_H

static __always_inline void mesh_count(enum mesh_reason reason)
{
	__u32 key = reason;
	__u64 *slot = bpf_map_lookup_elem(&mesh_metrics, &key);

	/* Atomic although per-CPU: cgroup programs run with migration, not
	 * preemption, disabled, so two tasks can interleave on one CPU and a
	 * plain increment could lose a count the tests and operators rely on.
	 */
	if (slot)
		__sync_fetch_and_add(slot, 1);
}

#endif /* WEFT_BPF_LIB_METRICS_H */
