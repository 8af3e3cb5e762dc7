// SPDX-License-Identifier: GPL-2.0-only
/* dp_probe() and dp_probe_features(): does the running kernel have what the
 * eBPF mode needs? One table names every feature (program and map types,
 * helpers per program type, attach types, context fields, bpf_link), the
 * kernel release that brought it and what weft uses it for; the last entry
 * loads the real programs. The agent's --mode auto and meshctl check read it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp.h"
#include "dp_internal.h"
#include "inbound.skel.h"
#include "redirect.skel.h"

enum probe_kind {
	P_BTF,
	P_CGROUP2,
	P_BPF,		/* any program loads: privilege and CONFIG_BPF_SYSCALL */
	P_PROG,		/* .type: enum bpf_prog_type */
	P_MAP,		/* .type: enum bpf_map_type */
	P_HELPER,	/* .type: prog type, .arg: enum bpf_func_id */
	P_ATTACH,	/* .type: prog type, .arg: expected attach type at load */
	P_SK_LOOKUP_IFINDEX,
	P_LINK_CREATE,
	P_LINK_DETACH,
	P_LOAD,		/* weft's own programs pass the verifier */
};

static const struct probe {
	const char *name;
	const char *what;
	const char *min_kernel;
	enum probe_kind kind;
	int type, arg;
} probes[] = {
	{ "btf", "kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF) for CO-RE", "5.4",
	  P_BTF, 0, 0 },
	{ "cgroup2", "a cgroup v2 hierarchy for the socket hooks", "4.5", P_CGROUP2, 0, 0 },
	{ "bpf_syscall", "loading BPF programs at all (root: CAP_BPF, CAP_NET_ADMIN, "
	  "CAP_SYS_ADMIN; CONFIG_BPF_SYSCALL)", "4.4", P_BPF, 0, 0 },
	{ "prog_cgroup_sock_addr", "cgroup connect4/6 and getpeername4/6 programs", "4.17", P_PROG,
	  BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 0 },
	{ "prog_sock_ops", "sockops programs (record redirected connections)", "4.13", P_PROG,
	  BPF_PROG_TYPE_SOCK_OPS, 0 },
	{ "prog_cgroup_sockopt", "cgroup getsockopt programs (SO_ORIGINAL_DST)", "5.3", P_PROG,
	  BPF_PROG_TYPE_CGROUP_SOCKOPT, 0 },
	{ "prog_sk_lookup", "sk_lookup programs, per netns (inbound capture)", "5.9", P_PROG,
	  BPF_PROG_TYPE_SK_LOOKUP, 0 },
	{ "map_sk_storage", "socket-local storage maps", "5.2", P_MAP, BPF_MAP_TYPE_SK_STORAGE, 0 },
	{ "map_lru_hash", "LRU hash maps", "4.10", P_MAP, BPF_MAP_TYPE_LRU_HASH, 0 },
	{ "map_percpu_array", "per-CPU array maps (counters)", "4.6", P_MAP,
	  BPF_MAP_TYPE_PERCPU_ARRAY, 0 },
	{ "map_sockhash", "SOCKHASH maps (the inbound listeners)", "4.18", P_MAP,
	  BPF_MAP_TYPE_SOCKHASH, 0 },
	{ "netns_cookie_sock_addr", "bpf_get_netns_cookie in connect4/6", "5.7", P_HELPER,
	  BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_netns_cookie },
	{ "netns_cookie_sock_ops", "bpf_get_netns_cookie in sockops", "5.15", P_HELPER,
	  BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie },
	{ "netns_cookie_sockopt", "bpf_get_netns_cookie in cgroup getsockopt", "5.15", P_HELPER,
	  BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_FUNC_get_netns_cookie },
	{ "sk_storage_sock_addr", "bpf_sk_storage_get in connect4/6 and getpeername4/6", "5.8",
	  P_HELPER, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_sk_storage_get },
	{ "sk_storage_sock_ops", "bpf_sk_storage_get in sockops", "5.3", P_HELPER,
	  BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_sk_storage_get },
	{ "sk_assign_sk_lookup", "bpf_sk_assign in sk_lookup (hand over to the listener)", "5.9",
	  P_HELPER, BPF_PROG_TYPE_SK_LOOKUP, BPF_FUNC_sk_assign },
	{ "attach_getpeername4", "the cgroup/getpeername4 hook (the app sees the VIP)", "5.8",
	  P_ATTACH, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETPEERNAME },
	{ "attach_getpeername6", "the cgroup/getpeername6 hook", "5.8", P_ATTACH,
	  BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_GETPEERNAME },
	{ "sk_lookup_ingress_ifindex", "bpf_sk_lookup.ingress_ifindex (skip traffic over lo)",
	  "5.17", P_SK_LOOKUP_IFINDEX, 0, 0 },
	{ "link_cgroup", "bpf_link for cgroups (pinned, taken over on restart)", "5.7",
	  P_LINK_CREATE, 0, 0 },
	{ "link_detach", "BPF_LINK_DETACH (cleanup of pinned links)", "5.9", P_LINK_DETACH, 0, 0 },
	{ "programs_load", "the verifier accepts weft's programs (mesh_redirect, mesh_inbound)",
	  "5.17", P_LOAD, 0, 0 },
};
#define N_PROBES (sizeof(probes) / sizeof(probes[0]))

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

/* Whether WEFT_PROBE_HIDE names @name (or says "ebpf": every feature). */
static bool is_hidden(const char *name)
{
	const char *env = getenv("WEFT_PROBE_HIDE");
	size_t len = strlen(name);

	if (!env)
		return false;
	for (const char *p = env; *p;) {
		size_t n = strcspn(p, ",");

		if ((n == len && !strncmp(p, name, n)) || (n == 4 && !strncmp(p, "ebpf", 4)))
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

/* Load a two- or three-instruction program: returns true when it loads. */
static bool loads(enum bpf_prog_type type, enum bpf_attach_type attach,
		  const struct bpf_insn *insns, size_t n)
{
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach);
	int fd = bpf_prog_load(type, NULL, "GPL", insns, n, &opts);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* r0 = 1; exit: accepted by every hook weft uses. */
static const struct bpf_insn ret1[] = {
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
	{ .code = BPF_JMP | BPF_EXIT },
};

/* r0 = ctx->ingress_ifindex; r0 = SK_PASS; exit. */
static const struct bpf_insn read_ifindex[] = {
	{ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_1,
	  .off = offsetof(struct bpf_sk_lookup, ingress_ifindex) },
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
	{ .code = BPF_JMP | BPF_EXIT },
};

/* Load both skeletons, mesh_inbound with mesh_redirect's maps as the
 * datapath loads it (creating its own would cost more than the program:
 * preallocated hash maps). Nothing pinned or attached; the maps die with
 * them. 0 or -errno.
 */
static int load_programs(void)
{
	struct mesh_inbound *inbound = NULL;
	struct mesh_redirect *redirect;
	int err;

	redirect = mesh_redirect__open_and_load();
	if (!redirect)
		return -errno;
	inbound = mesh_inbound__open();
	if (!inbound) {
		err = -errno;
		goto out;
	}
	err = dp_share_maps(inbound->obj, redirect->obj);
	if (!err)
		err = mesh_inbound__load(inbound);
out:
	mesh_inbound__destroy(inbound);
	mesh_redirect__destroy(redirect);
	return err;
}

/* Run probe @p: true when the kernel has it. *@err gets the load error of
 * P_LOAD (0 otherwise).
 */
static bool run_probe(const struct probe *p, int *err)
{
	*err = 0;
	switch (p->kind) {
	case P_BTF:
		return access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	case P_CGROUP2:
		return has_cgroup2();
	case P_BPF:
		/* Socket filters exist on every BPF kernel: failing to load
		 * one means no privilege (or no bpf() at all).
		 */
		return libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCKET_FILTER, NULL) == 1;
	case P_PROG:
		return libbpf_probe_bpf_prog_type(p->type, NULL) == 1;
	case P_MAP:
		return libbpf_probe_bpf_map_type(p->type, NULL) == 1;
	case P_HELPER:
		return libbpf_probe_bpf_helper(p->type, p->arg, NULL) == 1;
	case P_ATTACH:
		/* The kernel checks the expected attach type at load. */
		return loads(p->type, p->arg, ret1, 2);
	case P_SK_LOOKUP_IFINDEX:
		return loads(BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP, read_ifindex, 3);
	case P_LINK_CREATE:
		/* With no program fd, BPF_LINK_CREATE fails with EBADF when
		 * the command exists and EINVAL when it does not; nothing is
		 * attached either way.
		 */
		return bpf_link_create(-1, -1, BPF_CGROUP_INET4_CONNECT, NULL) == -EBADF;
	case P_LINK_DETACH:
		return bpf_link_detach(-1) == -EBADF;
	case P_LOAD:
		*err = load_programs();
		return *err == 0;
	}
	return false;
}

int dp_probe_features(struct dp_feature *out, size_t n)
{
	int err;

	dp_libbpf_log_init();
	for (size_t i = 0; i < N_PROBES && i < n; i++) {
		out[i] = (struct dp_feature){
			.name = probes[i].name,
			.what = probes[i].what,
			.min_kernel = probes[i].min_kernel,
			.hidden = is_hidden(probes[i].name),
		};
		out[i].present = !out[i].hidden && run_probe(&probes[i], &err);
	}
	return (int)N_PROBES;
}

int dp_probe_refused(int err, char *why, size_t why_len)
{
	return say(why, why_len, -EOPNOTSUPP,
		   "the kernel refused weft's BPF programs (%s); the verifier log is printed at "
		   "debug level", strerror(-err));
}

/* dp_probe(), and with @load false dp_probe_kernel(): the loading of the
 * programs is the caller's (its hiding by WEFT_PROBE_HIDE is still told).
 */
static int probe(bool load, char *why, size_t why_len)
{
	int err;

	dp_libbpf_log_init();
	for (size_t i = 0; i < N_PROBES; i++) {
		const struct probe *p = &probes[i];

		if (is_hidden(p->name))
			return say(why, why_len, -EOPNOTSUPP,
				   "%s (%s) is hidden by WEFT_PROBE_HIDE", p->name, p->what);
		if (p->kind == P_LOAD && !load)
			continue;
		if (run_probe(p, &err))
			continue;
		if (p->kind == P_BPF)
			return say(why, why_len, -EPERM,
				   "cannot load BPF programs: needs root (CAP_BPF, CAP_NET_ADMIN "
				   "and CAP_SYS_ADMIN) and a kernel with CONFIG_BPF_SYSCALL");
		if (p->kind == P_LOAD)
			return dp_probe_refused(err, why, why_len);
		return say(why, why_len, -EOPNOTSUPP, "kernel lacks %s: %s (Linux %s)", p->name,
			   p->what, p->min_kernel);
	}
	return say(why, why_len, 0, "ok");
}

int dp_probe(char *why, size_t why_len)
{
	return probe(true, why, why_len);
}

int dp_probe_kernel(char *why, size_t why_len)
{
	return probe(false, why, why_len);
}
