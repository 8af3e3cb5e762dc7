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
#define DP_NPROGS 11u

/* The folder of the per-pod sk_lookup links under the bpffs folder. */
#define DP_INBOUND_DIR "inbound"

struct dp {
	struct mesh_redirect *skel;
	struct bpf_link *links[DP_NPROGS];	/* pinned; closing them keeps them attached */
	char inbound_dir[PATH_MAX];		/* <bpffs_dir>/inbound */
	char links_dir[PATH_MAX];		/* <bpffs_dir>/links */
};

/* Route libbpf's messages into log_debug, one line each. Idempotent. */
void dp_libbpf_log_init(void);

/* dp_migrate.c: pinned maps of another layout, migrated instead of refused. */
struct bpf_object;
struct dp_migration;
/* Before loading @obj (its pin paths set): save the entries of every pinned
 * map whose layout differs from @obj's and move its pin aside. *@out is NULL
 * or what dp_migrate_finish()/dp_migrate_abort() take. 0 or -errno (nothing
 * moved).
 */
int dp_migrate_prepare(struct bpf_object *obj, struct dp_migration **out);
/* After a successful load: write the saved entries, converted, into the new
 * maps, remove the old pins, free @mig. Accepts NULL.
 */
void dp_migrate_finish(struct dp_migration *mig, struct bpf_object *obj);
/* The load failed: move the old pins back, free @mig. Accepts NULL. */
void dp_migrate_abort(struct dp_migration *mig);
void dp_migration_free(struct dp_migration *mig);

/* dp_inbound.c: make every map of @obj (opened, not loaded) the same-named
 * map of the loaded @owner (mesh_redirect): one pods map, one set of counters
 * for all programs. 0 or -errno (-ENOENT: @owner has no such map).
 */
int dp_share_maps(struct bpf_object *obj, const struct bpf_object *owner);

/* Detach the link pinned at @pin (if any) and remove the pin. 0 or -errno. */
int dp_unpin_link(const char *pin);

#endif /* WEFT_DP_INTERNAL_H */
