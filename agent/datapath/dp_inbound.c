// SPDX-License-Identifier: GPL-2.0-only
/* Inbound capture in eBPF mode: one instance of the mesh_inbound sk_lookup
 * program per pod netns (the program cannot ask for its netns cookie, so each
 * instance carries it as a constant), its bpf_link pinned under
 * <bpffs_dir>/inbound/<cookie>, and the pod's listeners in mesh_inbound. The
 * instances share mesh_redirect's maps (dp.c); dp_cleanup removes the pins.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi.h"
#include "dp.h"
#include "dp_internal.h"
#include "inbound.skel.h"
#include "log.h"
#include "redirect.skel.h"

static int pin_path(const struct dp *dp, uint64_t netns_cookie, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%016" PRIx64, dp->inbound_dir, netns_cookie);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static struct mesh_listener_key listener_key(uint64_t netns_cookie, int family)
{
	struct mesh_listener_key key;

	/* The map hashes every byte, padding included. */
	memset(&key, 0, sizeof(key));
	key.netns_cookie = netns_cookie;
	key.family = family == AF_INET6 ? MESH_AF_INET6 : MESH_AF_INET;
	return key;
}

/* Point the pod's @family entry at listener @fd, or drop it when @fd is -1. */
static int set_listener(struct dp *dp, uint64_t netns_cookie, int family, int fd)
{
	const struct bpf_map *map = dp->skel->maps.mesh_inbound;
	struct mesh_listener_key key = listener_key(netns_cookie, family);
	__u64 value = (__u64)fd;
	int err;

	if (fd < 0) {
		err = bpf_map__delete_elem(map, &key, sizeof(key), 0);
		return err == -ENOENT ? 0 : err;
	}
	return bpf_map__update_elem(map, &key, sizeof(key), &value, sizeof(value), BPF_ANY);
}

int dp_share_maps(struct bpf_object *obj, const struct bpf_object *owner)
{
	struct bpf_map *map, *ours;
	int err;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map))
			continue;
		ours = bpf_object__find_map_by_name(owner, bpf_map__name(map));
		if (!ours)
			return -ENOENT;
		err = bpf_map__reuse_fd(map, bpf_map__fd(ours));
		if (err)
			return err;
	}
	return 0;
}

/* Load the pod's instance of the program. NULL with errno set on failure. */
static struct mesh_inbound *load_instance(struct dp *dp, uint64_t netns_cookie)
{
	struct mesh_inbound *skel;
	int err;

	skel = mesh_inbound__open();
	if (!skel)
		return NULL;
	skel->rodata->mesh_netns_cookie = netns_cookie;
	err = dp_share_maps(skel->obj, dp->skel->obj);
	if (!err)
		err = mesh_inbound__load(skel);
	if (err) {
		mesh_inbound__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

int dp_inbound_try(struct dp *dp)
{
	struct mesh_inbound *skel;

	/* Any cookie: no netns is named by it, and nothing is attached. */
	skel = load_instance(dp, 1);
	if (!skel)
		return -errno;
	mesh_inbound__destroy(skel);
	return 0;
}

/* The netns a pinned sk_lookup link is attached to: its inode, 0 once that
 * netns is gone (the kernel detaches a dying netns' links and keeps the link
 * object). 0 or -errno (-EINVAL: not an sk_lookup link).
 */
static int link_netns(int link_fd, __u32 *netns_ino)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(link_fd, &info, &len))
		return -errno;
	if (info.type != BPF_LINK_TYPE_NETNS || info.netns.attach_type != BPF_SK_LOOKUP)
		return -EINVAL;
	*netns_ino = info.netns.netns_ino;
	return 0;
}

/* Open the link pinned at @pin when it is attached to the netns of inode
 * @ino. Returns 1 with *@out set, 0 when there is none (no pin, or a stale
 * one whose netns is gone, now removed), or -errno (-EEXIST: another netns).
 */
static int adopt_link(const char *pin, __u32 ino, struct bpf_link **out)
{
	struct bpf_link *link;
	__u32 link_ino = 0;
	int err;

	link = bpf_link__open(pin);
	if (!link)
		return errno == ENOENT ? 0 : -errno;
	err = link_netns(bpf_link__fd(link), &link_ino);
	if (!err && link_ino == 0) {
		/* Its netns died (the pod went away while no agent ran) and
		 * the cookie names a new one now: start over.
		 */
		log_debug("datapath: inbound link '%s' outlived its netns, replacing it", pin);
		bpf_link__destroy(link);
		return unlink(pin) == -1 && errno != ENOENT ? -errno : 0;
	}
	if (!err && link_ino != ino)
		err = -EEXIST;
	if (err) {
		bpf_link__destroy(link);
		return err;
	}
	*out = link;
	return 1;
}

int dp_inbound_attach(struct dp *dp, int netns_fd, uint64_t netns_cookie, int lfd4, int lfd6)
{
	struct bpf_link *link = NULL;
	struct mesh_inbound *skel;
	char pin[PATH_MAX];
	struct stat st;
	int err;

	if (netns_fd < 0 || !netns_cookie)
		return -EINVAL;
	if (fstat(netns_fd, &st) == -1)
		return -errno;
	err = pin_path(dp, netns_cookie, pin, sizeof(pin));
	if (err)
		return err;
	/* Listeners before the link: the program never runs for a pod whose
	 * listeners are not known yet (it would fail open anyway).
	 */
	err = set_listener(dp, netns_cookie, AF_INET, lfd4);
	if (!err)
		err = set_listener(dp, netns_cookie, AF_INET6, lfd6);
	if (err) {
		log_debug("datapath: listeners of netns %016" PRIx64 ": %s", netns_cookie,
			  strerror(-err));
		return err;
	}

	skel = load_instance(dp, netns_cookie);
	if (!skel) {
		err = -errno;
		log_debug("datapath: load mesh_inbound for netns %016" PRIx64 ": %s",
			  netns_cookie, strerror(-err));
		return err;
	}
	err = adopt_link(pin, (__u32)st.st_ino, &link);
	if (err < 0)
		goto out_destroy_skel;
	if (err == 1) {
		/* A restarted agent: the same link, the new program swapped in
		 * atomically, so no connection ever misses the hook.
		 */
		err = bpf_link__update_program(link, skel->progs.mesh_sk_lookup);
		goto out_destroy_link;
	}
	link = bpf_program__attach_netns(skel->progs.mesh_sk_lookup, netns_fd);
	if (!link) {
		err = -errno;
		goto out_destroy_skel;
	}
	err = bpf_link__pin(link, pin);
	/* Unpinned, destroying the link below also detaches it. */

out_destroy_link:
	/* A pinned link stays attached when this process lets go of it. */
	bpf_link__destroy(link);
out_destroy_skel:
	mesh_inbound__destroy(skel);
	if (err)
		log_debug("datapath: inbound link of netns %016" PRIx64 " at '%s': %s",
			  netns_cookie, pin, strerror(-err));
	return err;
}

int dp_inbound_detach(struct dp *dp, uint64_t netns_cookie)
{
	char pin[PATH_MAX];
	int err;

	err = pin_path(dp, netns_cookie, pin, sizeof(pin));
	if (!err)
		err = dp_unpin_link(pin);
	if (err)
		return err;
	err = set_listener(dp, netns_cookie, AF_INET, -1);
	if (!err)
		err = set_listener(dp, netns_cookie, AF_INET6, -1);
	return err;
}

int dp_inbound_state(struct dp *dp, uint64_t netns_cookie, bool *attached,
		     unsigned int *n_listeners)
{
	static const int families[] = { AF_INET, AF_INET6 };
	const struct bpf_map *map = dp->skel->maps.mesh_inbound;
	char pin[PATH_MAX];
	__u32 ino = 0;
	int fd, err;

	*attached = false;
	*n_listeners = 0;
	err = pin_path(dp, netns_cookie, pin, sizeof(pin));
	if (err)
		return err;
	fd = bpf_obj_get(pin);
	if (fd < 0 && fd != -ENOENT)
		return fd;
	if (fd >= 0) {
		err = link_netns(fd, &ino);
		close(fd);
		if (err)
			return err;
		*attached = ino != 0;
	}
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		struct mesh_listener_key key = listener_key(netns_cookie, families[i]);
		__u64 sk_cookie;

		err = bpf_map__lookup_elem(map, &key, sizeof(key), &sk_cookie, sizeof(sk_cookie),
					   0);
		if (err == -ENOENT)
			continue;
		if (err)
			return err;
		(*n_listeners)++;
	}
	return 0;
}
