/* SPDX-License-Identifier: GPL-2.0-only */
/* What the files of agent/datapath share and nobody else sees: the layout of
 * struct dp and the libbpf log hook. dp.c owns the lifecycle, dp_maps.c the
 * typed map verbs, dp_inbound.c the per-pod sk_lookup links, dp_probe.c the
 * feature checks.
 */
#ifndef WEFT_DP_INTERNAL_H
#define WEFT_DP_INTERNAL_H

#include <limits.h>

struct bpf_link;
struct mesh_redirect;

/* Number of programs in the mesh_redirect skeleton (checked at dp_open). */
#define DP_NPROGS 7u

/* The folder of the per-pod sk_lookup links under the bpffs folder. */
#define DP_INBOUND_DIR "inbound"

struct dp {
	struct mesh_redirect *skel;
	struct bpf_link *links[DP_NPROGS];	/* pinned; closing them keeps them attached */
	char inbound_dir[PATH_MAX];		/* <bpffs_dir>/inbound */
};

/* Route libbpf's messages into log_debug, one line each. Idempotent. */
void dp_libbpf_log_init(void);

/* Detach the link pinned at @pin (if any) and remove the pin. 0 or -errno. */
int dp_unpin_link(const char *pin);

#endif /* WEFT_DP_INTERNAL_H */
