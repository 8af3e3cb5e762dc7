/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Run-time settings the agent writes into mesh_config and mesh_heartbeat,
 * read once per decision. Needs lib/heartbeat.h.
 */
#ifndef WEFT_BPF_LIB_CONFIG_H
#define WEFT_BPF_LIB_CONFIG_H

/* The agent's settings (its SO_MARKs); NULL only if the array lookup fails,
 * which mesh_decide_connect() takes as "no socket is the agent's".
 */
static __always_inline const struct mesh_config *mesh_config_get(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&mesh_config, &key);
}

/* Whether pod @pod fails open now: it carries MESH_POD_F_FAIL_OPEN and the
 * agent's heartbeat is stale. The heartbeat is read only for such pods, so
 * the others pay nothing for it.
 */
static __always_inline bool mesh_pod_fails_open(const struct mesh_pod *pod)
{
	__u32 key = 0;

	if (!pod || !(pod->flags & MESH_POD_F_FAIL_OPEN))
		return false;
	return mesh_heartbeat_is_stale(bpf_map_lookup_elem(&mesh_heartbeat, &key),
				       bpf_ktime_get_ns());
}

#endif /* WEFT_BPF_LIB_CONFIG_H */
