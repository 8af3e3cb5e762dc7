// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of datapath/fastpath.h: the mesh_fastpath skeleton, its
 * verdict attached to mesh_fp_socks with BPF_PROG_ATTACH (a program of a
 * socket map attaches to the map: no cgroup, no link), the counter mapping,
 * and the per-connection map writes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
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
	void *bytes;		/* mesh_fp_bytes, mapped read-only */
	size_t bytes_len;
};

int dp_fastpath_open(struct dp_fastpath **out)
{
	struct dp_fastpath *fp;
	int err, socks_fd;

	dp_libbpf_log_init();
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return -ENOMEM;
	fp->skel = mesh_fastpath__open_and_load();
	if (!fp->skel) {
		err = log_errno(-errno, "fastpath: cannot load the stream verdict program");
		goto out_free;
	}
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

void dp_fastpath_close(struct dp_fastpath *fp)
{
	if (!fp)
		return;
	if (fp->bytes)
		munmap(fp->bytes, fp->bytes_len);
	if (fp->attached)
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
	err = sock_cookie(cfd, &cc);
	if (!err)
		err = sock_cookie(ufd, &uc);
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
	if (err)
		return err;
	err = bpf_map__update_elem(socks, &uc, sizeof(uc), &uv, sizeof(uv), BPF_ANY);
	if (err) {
		(void)bpf_map__delete_elem(socks, &cc, sizeof(cc), 0);
		return err;
	}
	return 0;
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
