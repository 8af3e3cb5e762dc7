// SPDX-License-Identifier: GPL-2.0-only
/* dp_probe(): does the running kernel have what the datapath needs? Each check
 * names the feature and the kernel release that brought it, so the agent can
 * say why it falls back to nft mode; the last check loads the real programs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp.h"
#include "dp_internal.h"
#include "redirect.skel.h"

static int say(char *why, size_t why_len, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int say(char *why, size_t why_len, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return err;
}

static bool has_cgroup2(void)
{
	char dev[256], dir[4096], type[64];
	bool found = false;
	FILE *f;

	f = fopen("/proc/mounts", "re");
	if (!f)
		return false;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (!strcmp(type, "cgroup2")) {
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

static const struct {
	enum bpf_prog_type type;
	const char *what;	/* "<hook> (Linux x.y)" */
} probe_progs[] = {
	{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup connect4/connect6 programs (Linux 4.17)" },
	{ BPF_PROG_TYPE_SOCK_OPS, "sockops programs (Linux 4.13)" },
	{ BPF_PROG_TYPE_CGROUP_SOCKOPT, "cgroup getsockopt programs (Linux 5.3)" },
};

static const struct {
	enum bpf_map_type type;
	const char *what;
} probe_maps[] = {
	{ BPF_MAP_TYPE_SK_STORAGE, "socket-local storage maps (Linux 5.2)" },
	{ BPF_MAP_TYPE_LRU_HASH, "LRU hash maps (Linux 4.10)" },
	{ BPF_MAP_TYPE_PERCPU_ARRAY, "per-CPU array maps (Linux 4.6)" },
};

static const struct {
	enum bpf_prog_type type;
	enum bpf_func_id helper;
	const char *what;
} probe_helpers[] = {
	{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_netns_cookie,
	  "bpf_get_netns_cookie in connect4/6 (Linux 5.7)" },
	{ BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie,
	  "bpf_get_netns_cookie in sockops (Linux 5.15)" },
	{ BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_FUNC_get_netns_cookie,
	  "bpf_get_netns_cookie in cgroup getsockopt (Linux 5.15)" },
	{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_sk_storage_get,
	  "bpf_sk_storage_get in connect4/6 (Linux 5.8)" },
	{ BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sk_storage_get,
	  "bpf_sk_storage_get in sockops (Linux 5.3)" },
	{ BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sk_storage_delete,
	  "bpf_sk_storage_delete in sockops (Linux 5.3)" },
};

int dp_probe(char *why, size_t why_len)
{
	struct mesh_redirect *skel;
	int err;

	dp_libbpf_log_init();
	if (access("/sys/kernel/btf/vmlinux", R_OK) == -1)
		return say(why, why_len, -EOPNOTSUPP,
			   "kernel has no BTF (/sys/kernel/btf/vmlinux): needs "
			   "CONFIG_DEBUG_INFO_BTF=y (Linux 5.4 or later)");
	if (!has_cgroup2())
		return say(why, why_len, -EOPNOTSUPP,
			   "no cgroup v2 hierarchy in /proc/mounts: mount one "
			   "(mount -t cgroup2 none /sys/fs/cgroup/unified)");
	/* Socket filters exist on every BPF kernel: failing to load one means
	 * no privilege (or no bpf() at all), not a missing hook.
	 */
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCKET_FILTER, NULL) != 1)
		return say(why, why_len, -EPERM,
			   "cannot load BPF programs: needs root (CAP_BPF, CAP_NET_ADMIN and "
			   "CAP_SYS_ADMIN) and a kernel with CONFIG_BPF_SYSCALL");
	for (size_t i = 0; i < sizeof(probe_progs) / sizeof(probe_progs[0]); i++) {
		if (libbpf_probe_bpf_prog_type(probe_progs[i].type, NULL) != 1)
			return say(why, why_len, -EOPNOTSUPP, "kernel lacks %s",
				   probe_progs[i].what);
	}
	for (size_t i = 0; i < sizeof(probe_maps) / sizeof(probe_maps[0]); i++) {
		if (libbpf_probe_bpf_map_type(probe_maps[i].type, NULL) != 1)
			return say(why, why_len, -EOPNOTSUPP, "kernel lacks %s",
				   probe_maps[i].what);
	}
	for (size_t i = 0; i < sizeof(probe_helpers) / sizeof(probe_helpers[0]); i++) {
		if (libbpf_probe_bpf_helper(probe_helpers[i].type, probe_helpers[i].helper,
					    NULL) != 1)
			return say(why, why_len, -EOPNOTSUPP, "kernel lacks %s",
				   probe_helpers[i].what);
	}
	/* With no program fd, BPF_LINK_CREATE and BPF_LINK_DETACH fail with
	 * EBADF when the command exists and EINVAL when it does not; nothing
	 * is attached either way.
	 */
	if (bpf_link_create(-1, -1, BPF_CGROUP_INET4_CONNECT, NULL) != -EBADF)
		return say(why, why_len, -EOPNOTSUPP,
			   "kernel lacks bpf_link for cgroups (Linux 5.7)");
	if (bpf_link_detach(-1) != -EBADF)
		return say(why, why_len, -EOPNOTSUPP, "kernel lacks BPF_LINK_DETACH (Linux 5.9)");

	/* The last word is the verifier's: load the real programs (nothing is
	 * pinned or attached; the maps die with the skeleton).
	 */
	skel = mesh_redirect__open_and_load();
	if (!skel) {
		err = -errno;
		return say(why, why_len, -EOPNOTSUPP,
			   "the kernel refused weft's BPF programs (%s); the verifier log is "
			   "printed at debug level", strerror(-err));
	}
	mesh_redirect__destroy(skel);
	return say(why, why_len, 0, "ok");
}
