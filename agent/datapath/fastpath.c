// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of datapath/fastpath.h: the mesh_fastpath skeleton, its
 * verdict attached to mesh_fp_socks with BPF_PROG_ATTACH (a program of a
 * socket map attaches to the map: no cgroup, no link), the counter mapping,
 * and the per-connection map writes.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi.h"
#include "datapath/fastpath.h"
#include "dp_internal.h"
#include "fastpath.skel.h"
#include "log.h"

struct dp_fastpath {
	struct mesh_fastpath *skel;
	bool attached;
	bool pinned;
	void *bytes; /* mesh_fp_bytes, mapped read-only */
	size_t bytes_len;
};

/* The maps of @skel (opened, not loaded) pinned under @pin_dir. 0 or -errno. */
static int set_pins(struct mesh_fastpath *skel, const char *pin_dir)
{
	struct bpf_map *maps[] = { skel->maps.mesh_fp_socks, skel->maps.mesh_fp_peers,
				   skel->maps.mesh_fp_bytes };
	char path[PATH_MAX];

	char parent[PATH_MAX];
	char *slash;

	/* nft mode makes no bpffs folder of its own: the fast path does. */
	snprintf(parent, sizeof(parent), "%s", pin_dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		if (mkdir(parent, 0700) == -1 && errno != EEXIST)
			return -errno;
	}
	if (mkdir(pin_dir, 0700) == -1 && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		int n = snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(maps[i]));
		int err;

		if (n < 0 || (size_t)n >= sizeof(path))
			return -ENAMETOOLONG;
		err = bpf_map__set_pin_path(maps[i], path);
		if (err)
			return err;
	}
	return 0;
}

/* Open and load the skeleton, its maps pinned under @pin_dir if not NULL.
 * NULL with errno set.
 */
static struct mesh_fastpath *load(const char *pin_dir)
{
	struct mesh_fastpath *skel = mesh_fastpath__open();
	int err;

	if (!skel)
		return NULL;
	err = pin_dir ? set_pins(skel, pin_dir) : 0;
	if (!err)
		err = mesh_fastpath__load(skel);
	if (err) {
		mesh_fastpath__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

int dp_fastpath_open(struct dp_fastpath **out, const char *pin_dir)
{
	struct dp_fastpath *fp;
	int err, socks_fd;

	dp_libbpf_log_init();
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return -ENOMEM;
	if (pin_dir) {
		fp->skel = load(pin_dir);
		if (fp->skel)
			fp->pinned = true;
		else
			log_warn("fastpath: cannot pin the maps under '%s': %s; connections on the "
				 "fast path will drain at a hand-over instead of being passed, "
				 "ignoring",
				 pin_dir, strerror(errno));
	}
	if (!fp->skel)
		fp->skel = load(NULL);
	if (!fp->skel) {
		err = log_errno(-errno, "fastpath: cannot load the stream verdict program");
		goto out_free;
	}
	/* A predecessor's program attached to pinned maps is replaced; the
	 * sockets already on the path keep the program they were added with.
	 */
	socks_fd = bpf_map__fd(fp->skel->maps.mesh_fp_socks);
	if (bpf_prog_attach(bpf_program__fd(fp->skel->progs.mesh_fp_verdict), socks_fd,
			    BPF_SK_SKB_STREAM_VERDICT, 0)) {
		err = log_errno(-errno, "fastpath: cannot attach the verdict to mesh_fp_socks");
		goto out_destroy;
	}
	fp->attached = true;
	fp->bytes_len = (size_t)MESH_FP_SLOTS * sizeof(struct mesh_fp_bytes);
	fp->bytes = mmap(NULL, fp->bytes_len, PROT_READ, MAP_SHARED,
			 bpf_map__fd(fp->skel->maps.mesh_fp_bytes), 0);
	if (fp->bytes == MAP_FAILED) {
		fp->bytes = NULL;
		err = log_errno(-errno, "fastpath: cannot map mesh_fp_bytes");
		goto out_destroy;
	}
	*out = fp;
	return 0;

out_destroy:
	dp_fastpath_close(fp);
	return err;
out_free:
	free(fp);
	return err;
}

bool dp_fastpath_pinned(const struct dp_fastpath *fp)
{
	return fp->pinned;
}

int dp_fastpath_cleanup(const char *pin_dir)
{
	static const char *const names[] = { "mesh_fp_socks", "mesh_fp_peers", "mesh_fp_bytes" };
	char path[PATH_MAX];
	int err = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int n = snprintf(path, sizeof(path), "%s/%s", pin_dir, names[i]);

		if (n < 0 || (size_t)n >= sizeof(path))
			return -ENAMETOOLONG;
		if (unlink(path) == -1 && errno != ENOENT && !err)
			err = -errno;
	}
	if (rmdir(pin_dir) == -1 && errno != ENOENT && !err)
		err = -errno;
	return err;
}

void dp_fastpath_close(struct dp_fastpath *fp)
{
	if (!fp)
		return;
	if (fp->bytes)
		munmap(fp->bytes, fp->bytes_len);
	/* Pinned, the program stays attached for the sockets a successor
	 * adopts; it goes with the maps when they are unpinned.
	 */
	if (fp->attached && !fp->pinned)
		(void)bpf_prog_detach2(bpf_program__fd(fp->skel->progs.mesh_fp_verdict),
				       bpf_map__fd(fp->skel->maps.mesh_fp_socks),
				       BPF_SK_SKB_STREAM_VERDICT);
	mesh_fastpath__destroy(fp->skel);
	free(fp);
}

uint32_t dp_fastpath_slots(const struct dp_fastpath *fp)
{
	(void)fp;
	return MESH_FP_SLOTS;
}

const volatile uint64_t *dp_fastpath_bytes(const struct dp_fastpath *fp)
{
	return fp->bytes;
}

static int sock_cookie(int fd, __u64 *cookie)
{
	socklen_t len = sizeof(*cookie);

	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) == -1 ? -errno : 0;
}

/* The cookies of a connection's client (@cfd) and upstream (@ufd) sockets. */
static int pair_cookies(int cfd, int ufd, __u64 *cc, __u64 *uc)
{
	int err = sock_cookie(cfd, cc);

	return err ? err : sock_cookie(ufd, uc);
}

int dp_fastpath_add(struct dp_fastpath *fp, int cfd, int ufd, uint32_t slot)
{
	const struct bpf_map *peers = fp->skel->maps.mesh_fp_peers;
	const struct bpf_map *socks = fp->skel->maps.mesh_fp_socks;
	struct mesh_fp_bytes zero = { 0 };
	struct mesh_fp_peer cp, up;
	__u64 cc, uc, cv = (__u64)cfd, uv = (__u64)ufd;
	int err;

	if (slot >= MESH_FP_SLOTS)
		return -EINVAL;
	err = pair_cookies(cfd, ufd, &cc, &uc);
	if (err)
		return err;
	/* Counters first, then each socket's peer, then the sockets: the
	 * verdict of the first socket in must find everything it needs.
	 */
	err = bpf_map__update_elem(fp->skel->maps.mesh_fp_bytes, &slot, sizeof(slot), &zero,
				   sizeof(zero), BPF_ANY);
	if (err)
		return err;
	memset(&cp, 0, sizeof(cp));
	memset(&up, 0, sizeof(up));
	cp = (struct mesh_fp_peer){ .peer_cookie = uc, .slot = slot, .dir = 0 };
	up = (struct mesh_fp_peer){ .peer_cookie = cc, .slot = slot, .dir = 1 };
	err = bpf_map__update_elem(peers, &cc, sizeof(cc), &cp, sizeof(cp), BPF_ANY);
	if (!err)
		err = bpf_map__update_elem(peers, &uc, sizeof(uc), &up, sizeof(up), BPF_ANY);
	if (!err)
		err = bpf_map__update_elem(socks, &cc, sizeof(cc), &cv, sizeof(cv), BPF_ANY);
	if (!err) {
		err = bpf_map__update_elem(socks, &uc, sizeof(uc), &uv, sizeof(uv), BPF_ANY);
		if (err)
			(void)bpf_map__delete_elem(socks, &cc, sizeof(cc), 0);
	}
	if (err) {
		(void)dp_fastpath_forget(fp, cc);
		(void)dp_fastpath_forget(fp, uc);
	}
	return err;
}

int dp_fastpath_forget(struct dp_fastpath *fp, uint64_t cookie)
{
	__u64 key = cookie;
	int err = bpf_map__delete_elem(fp->skel->maps.mesh_fp_peers, &key, sizeof(key), 0);

	return err == -ENOENT ? 0 : err;
}

/* Note @wr_off in the entry of the socket of cookie @cookie, with the count
 * of its direction in its slot now. 0, -ENOENT, or -errno.
 */
static int peer_note(struct dp_fastpath *fp, __u64 cookie, uint64_t wr_off)
{
	const struct bpf_map *peers = fp->skel->maps.mesh_fp_peers;
	const volatile struct mesh_fp_bytes *ctr = fp->bytes;
	struct mesh_fp_peer p;
	int err;

	err = bpf_map__lookup_elem(peers, &cookie, sizeof(cookie), &p, sizeof(p), 0);
	if (err)
		return err;
	if (p.slot >= MESH_FP_SLOTS)
		return -EINVAL;
	p.wr_off = wr_off;
	p.counted = ctr[p.slot].bytes[p.dir & 1];
	return bpf_map__update_elem(peers, &cookie, sizeof(cookie), &p, sizeof(p), BPF_EXIST);
}

int dp_fastpath_note(struct dp_fastpath *fp, int cfd, int ufd, const uint64_t wr_off[2])
{
	__u64 cc, uc;
	int err = pair_cookies(cfd, ufd, &cc, &uc);

	if (!err)
		err = peer_note(fp, cc, wr_off[0]);
	if (!err)
		err = peer_note(fp, uc, wr_off[1]);
	return err;
}

int dp_fastpath_adopt(struct dp_fastpath *fp, int cfd, int ufd, uint32_t slot, uint64_t wr_off[2])
{
	const struct bpf_map *peers = fp->skel->maps.mesh_fp_peers;
	const volatile struct mesh_fp_bytes *ctr = fp->bytes;
	struct mesh_fp_bytes zero = { 0 };
	struct mesh_fp_peer pc, pu;
	__u64 cc, uc, sock;
	int err;

	if (slot >= MESH_FP_SLOTS)
		return -EINVAL;
	err = pair_cookies(cfd, ufd, &cc, &uc);
	if (err)
		return err;
	/* On this path at all: a lookup in a SOCKHASH gives the cookie. */
	if (bpf_map__lookup_elem(fp->skel->maps.mesh_fp_socks, &cc, sizeof(cc), &sock, sizeof(sock),
				 0) ||
	    bpf_map__lookup_elem(fp->skel->maps.mesh_fp_socks, &uc, sizeof(uc), &sock, sizeof(sock),
				 0))
		return -ENOENT;
	if (bpf_map__lookup_elem(peers, &cc, sizeof(cc), &pc, sizeof(pc), 0) ||
	    bpf_map__lookup_elem(peers, &uc, sizeof(uc), &pu, sizeof(pu), 0) ||
	    pc.slot >= MESH_FP_SLOTS || pu.slot >= MESH_FP_SLOTS)
		return -ENOENT;
	/* What the old slot counted after the note is in no record: it goes
	 * into the offset, which the check after a FIN compares the
	 * destination's intake with (the counts since the hand-over start
	 * from zero in @slot). Read before @slot is zeroed: it may be the
	 * same one.
	 */
	wr_off[0] = pc.wr_off + (ctr[pc.slot].bytes[pc.dir & 1] - pc.counted);
	wr_off[1] = pu.wr_off + (ctr[pu.slot].bytes[pu.dir & 1] - pu.counted);
	err = bpf_map__update_elem(fp->skel->maps.mesh_fp_bytes, &slot, sizeof(slot), &zero,
				   sizeof(zero), BPF_ANY);
	if (err)
		return err;
	/* Only the slot changes: the sockets stay in the map (adding one
	 * again would be refused, it has a verdict already).
	 */
	pc.slot = pu.slot = slot;
	err = bpf_map__update_elem(peers, &cc, sizeof(cc), &pc, sizeof(pc), BPF_EXIST);
	if (!err)
		err = bpf_map__update_elem(peers, &uc, sizeof(uc), &pu, sizeof(pu), BPF_EXIST);
	return err;
}

static int del_one(struct dp_fastpath *fp, int fd)
{
	__u64 cookie;
	int err;

	if (fd < 0)
		return 0;
	err = sock_cookie(fd, &cookie);
	if (err)
		return err;
	err = bpf_map__delete_elem(fp->skel->maps.mesh_fp_socks, &cookie, sizeof(cookie), 0);
	(void)bpf_map__delete_elem(fp->skel->maps.mesh_fp_peers, &cookie, sizeof(cookie), 0);
	return err == -ENOENT ? 0 : err;
}

int dp_fastpath_del(struct dp_fastpath *fp, int cfd, int ufd)
{
	int err = del_one(fp, cfd), err2 = del_one(fp, ufd);

	return err ? err : err2;
}
