/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Run-time settings the agent writes into mesh_config, read once per decision. */
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

#endif /* WEFT_BPF_LIB_CONFIG_H */
