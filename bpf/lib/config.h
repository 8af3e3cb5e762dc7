/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Run-time settings the agent writes into mesh_config, read once per decision. */
#ifndef WEFT_BPF_LIB_CONFIG_H
#define WEFT_BPF_LIB_CONFIG_H

/* The SO_MARK of the agent's own sockets; 0 when no agent has configured one
 * yet, which mesh_decide_connect() takes as "no socket is the agent's".
 */
static __always_inline __u32 mesh_agent_mark(void)
{
	__u32 key = 0;
	const struct mesh_config *cfg = bpf_map_lookup_elem(&mesh_config, &key);

	return cfg ? cfg->mark : 0;
}

#endif /* WEFT_BPF_LIB_CONFIG_H */
