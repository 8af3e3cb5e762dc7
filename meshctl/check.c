// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl check [--pre|--ready] [--bpffs DIR]`: preflight. Each check prints PASS or
 * FAIL with what it saw, and the fix when it failed. --pre checks only this
 * machine (before installing: kernel, BTF, cgroup v2, bpffs, the BPF program
 * and map types weft loads, netfilter for the nft fallback, permissions);
 * without it, the running agent too (reachable, its programs attached per
 * the pinned links, every meshed pod's listeners and pods-map entry,
 * registries synced). --ready checks only what makes the agent ready to
 * serve (reachable, programs attached, every registry synced): the
 * DaemonSet's readiness probe, cheap enough to run every few seconds.
 * Exit status 1 when any check failed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "bpfread.h"
#include "fs.h"
#include "client.h"
#include "meshctl.h"

#define CHECK_MIN_MAJOR 5
#define CHECK_MIN_MINOR 15 /* bpf_get_netns_cookie in sockops and getsockopt */
#define CHECK_TEXT_MAX	512

struct checks {
	struct meshctl *m;
	json_object *arr;
	size_t failed;
	bool root; /* may load BPF: root or CAP_BPF + CAP_SYS_ADMIN */
};

static void result(struct checks *c, const char *name, bool ok, const char *fix, const char *fmt,
		   ...) __attribute__((format(printf, 5, 6)));

static void result(struct checks *c, const char *name, bool ok, const char *fix, const char *fmt,
		   ...)
{
	json_object *o = json_object_new_object();
	char text[CHECK_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->failed += !ok;
	json_object_object_add(o, "check", json_object_new_string(name));
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "detail", json_object_new_string(text));
	json_object_object_add(o, "fix", ok ? NULL : json_object_new_string(fix));
	json_object_array_add(c->arr, o);
	if (c->m->format == OUT_JSON)
		return;
	fprintf(c->m->out, "%s  %-22s %s\n", ok ? "PASS" : "FAIL", name, text);
	if (!ok)
		fprintf(c->m->out, "      %-22s fix: %s\n", "", fix);
}

/* ---------------------------------------------------------------- machine */

static void check_kernel(struct checks *c)
{
	struct utsname u;
	unsigned int major = 0, minor = 0;

	if (uname(&u) == -1 || sscanf(u.release, "%u.%u", &major, &minor) != 2) {
		result(c, "kernel", false, "run on Linux", "cannot read the kernel release");
		return;
	}
	result(c, "kernel",
	       major > CHECK_MIN_MAJOR || (major == CHECK_MIN_MAJOR && minor >= CHECK_MIN_MINOR),
	       "upgrade to Linux 5.15 or later (netns cookies in sockops and getsockopt)",
	       "Linux %s (%s); weft needs 5.15 or later", u.release, u.machine);
}

static void check_btf(struct checks *c)
{
	bool ok = access("/sys/kernel/btf/vmlinux", R_OK) == 0;

	result(c, "BTF", ok,
	       "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major "
	       "distribution's is)",
	       "/sys/kernel/btf/vmlinux %s",
	       ok ? "is readable: CO-RE programs load" : "is missing or unreadable");
}

/* The first mount of filesystem @type from /proc/mounts into @dir. */
static bool find_mount(const char *type, char *dir, size_t len)
{
	char dev[256], mnt[4096], t[64];
	bool found = false;
	FILE *f = fopen("/proc/mounts", "re");

	if (!f)
		return false;
	while (!found && fscanf(f, "%255s %4095s %63s %*[^\n]", dev, mnt, t) == 3) {
		if (!strcmp(t, type)) {
			snprintf(dir, len, "%s", mnt);
			found = true;
		}
	}
	fclose(f);
	return found;
}

static void check_mounts(struct checks *c, const char *bpffs)
{
	char dir[4096], probe[4096];
	struct statfs st;
	bool ok;

	ok = find_mount("cgroup2", dir, sizeof(dir));
	result(c, "cgroup v2", ok,
	       "mount the unified hierarchy: mount -t cgroup2 none "
	       "/sys/fs/cgroup (or boot with systemd.unified_cgroup_hierarchy=1)",
	       ok ? "mounted at %s" : "%s", ok ? dir : "no cgroup2 mount in /proc/mounts");
	/* The pin folder may not exist yet: the agent creates it on a bpffs. */
	snprintf(probe, sizeof(probe), "%s", bpffs);
	while (statfs(probe, &st) == -1 && strrchr(probe, '/') && strrchr(probe, '/') != probe)
		*strrchr(probe, '/') = '\0';
	ok = statfs(probe, &st) == 0 && st.f_type == BPF_FS_MAGIC;
	result(c, "bpffs", ok,
	       "mount -t bpf bpf /sys/fs/bpf (or pass the agent a --bpffs folder "
	       "on a bpffs)",
	       "%s %s on a bpffs (pins: %s)", probe, ok ? "is" : "is NOT", bpffs);
}

static void check_perms(struct checks *c)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };
	bool bpf = false, admin = false, net = false;

	if (syscall(SYS_capget, &h, d) == 0) {
		admin = d[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32));
		net = d[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32));
		bpf = d[CAP_BPF / 32].effective & (1u << (CAP_BPF % 32));
	}
	c->root = admin && (bpf || geteuid() == 0);
	result(c, "permissions", c->root && net,
	       "run as root (the agent needs CAP_BPF, "
	       "CAP_SYS_ADMIN for cgroup attach and setns, CAP_NET_ADMIN)",
	       "uid %u; CAP_SYS_ADMIN %s, CAP_BPF %s, CAP_NET_ADMIN %s", geteuid(),
	       admin ? "yes" : "no", bpf ? "yes" : "no", net ? "yes" : "no");
}

static void check_bpf_types(struct checks *c)
{
	static const struct {
		enum bpf_prog_type type;
		const char *what;
	} progs[] = {
		{ BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "cgroup connect4/6" },
		{ BPF_PROG_TYPE_SOCK_OPS, "sockops" },
		{ BPF_PROG_TYPE_CGROUP_SOCKOPT, "cgroup getsockopt" },
	};
	static const struct {
		enum bpf_map_type type;
		const char *what;
	} maps[] = {
		{ BPF_MAP_TYPE_HASH, "hash" },
		{ BPF_MAP_TYPE_LRU_HASH, "LRU hash" },
		{ BPF_MAP_TYPE_PERCPU_ARRAY, "per-CPU array" },
		{ BPF_MAP_TYPE_SK_STORAGE, "socket storage" },
	};
	char missing[256] = "";
	size_t off = 0;

	if (!c->root) {
		result(c, "BPF programs", false, "run meshctl check as root",
		       "cannot probe without privileges");
		return;
	}
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		if (libbpf_probe_bpf_prog_type(progs[i].type, NULL) != 1)
			off += (size_t)snprintf(missing + off, sizeof(missing) - off, "%s%s",
						off ? ", " : "", progs[i].what);
		else if (libbpf_probe_bpf_helper(progs[i].type, BPF_FUNC_get_netns_cookie, NULL) !=
			 1)
			off += (size_t)snprintf(missing + off, sizeof(missing) - off,
						"%sbpf_get_netns_cookie in %s", off ? ", " : "",
						progs[i].what);
	}
	result(c, "BPF programs", !off,
	       "upgrade the kernel (5.15+) or enable "
	       "CONFIG_CGROUP_BPF; without them the agent cannot capture with eBPF",
	       off ? "not loadable: %s" : "%s",
	       off ? missing
		   : "cgroup connect4/6, sockops and getsockopt load, with bpf_get_netns_cookie");
	off = 0;
	missing[0] = '\0';
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		if (libbpf_probe_bpf_map_type(maps[i].type, NULL) != 1)
			off += (size_t)snprintf(missing + off, sizeof(missing) - off, "%s%s",
						off ? ", " : "", maps[i].what);
	result(c, "BPF maps", !off, "upgrade the kernel (socket storage needs 5.2+)",
	       off ? "not creatable: %s" : "%s",
	       off ? missing : "hash, LRU hash, per-CPU array and socket storage maps");
}

/* Ask nf_tables for its generation (NFT_MSG_GETGEN, read-only): an answer
 * means the nft fallback can program rules here.
 */
static void check_netfilter(struct checks *c)
{
	struct {
		struct nlmsghdr nh;
		struct nfgenmsg g;
	} req = {
		.nh = { .nlmsg_len = sizeof(req),
			.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			.nlmsg_seq = 1 },
		.g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0 },
	};
	struct timeval tv = { .tv_sec = 2 };
	char buf[4096];
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	const char *why = NULL;
	ssize_t n;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

	if (fd == -1) {
		why = errno == EPROTONOSUPPORT ? "no nfnetlink in this kernel" : strerror(errno);
		goto out;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, &req, sizeof(req), 0) == -1 || (n = recv(fd, buf, sizeof(buf), 0)) <= 0) {
		why = strerror(errno);
		goto out_close;
	}
	if (!NLMSG_OK(nh, (size_t)n))
		why = "a malformed netlink answer";
	else if (nh->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(nh))->error)
		why = strerror(-((struct nlmsgerr *)NLMSG_DATA(nh))->error);
out_close:
	close(fd);
out:
	result(c, "netfilter (nft mode)", !why,
	       "modprobe nf_tables (needed only where eBPF "
	       "capture is not possible)",
	       "nf_tables %s%s",
	       why ? "unavailable: "
		   : "answers over "
		     "netlink",
	       why ? why : "");
}

/* ---------------------------------------------------------------- agent */

static void check_links(struct checks *c, json_object *status)
{
	json_object *progs = out_path(status, "bpf.programs"), *links;
	const char *bpffs = out_str(status, "bpffs"), *cgroup = out_str(status, "cgroup");
	unsigned long long cg_id = 0;
	char err[512], bad[256] = "";
	size_t off = 0, n;

	if (!bpffs || !progs || bpfread_links(bpffs, &links, err, sizeof(err))) {
		result(c, "programs attached", false,
		       "run as root; restart weft-agent to re-attach", "%s",
		       bpffs && progs ? err : "the agent's status lacks bpffs or programs");
		return;
	}
	if (!cgroup || fs_cgroup_id(cgroup, &cg_id))
		cg_id = 0;
	n = json_object_array_length(progs);
	for (size_t i = 0; i < n; i++) {
		const char *name = out_str(json_object_array_get_idx(progs, i), "name");
		json_object *l = NULL;

		for (size_t j = 0; j < json_object_array_length(links) && !l; j++)
			if (!strcmp(out_str(json_object_array_get_idx(links, j), "pin") ?: "",
				    name ?: ""))
				l = json_object_array_get_idx(links, j);
		if (!l || !out_bool(l, "attached") || (cg_id && out_u64(l, "cgroup_id") != cg_id))
			off += (size_t)snprintf(
				bad + off, sizeof(bad) - off, "%s%s (%s)", off ? ", " : "", name,
				!l			   ? "no pinned link"
				: !out_bool(l, "attached") ? "detached"
							   : "attached to another cgroup");
	}
	if (off)
		result(c, "programs attached", false,
		       "restart weft-agent: it re-attaches and "
		       "re-pins its programs",
		       "%s", bad);
	else
		result(c, "programs attached", true, "",
		       "%zu programs attached to %s per the "
		       "links pinned in %s/links",
		       n, cgroup, bpffs);
	json_object_put(links);
}

static void check_pods(struct checks *c, json_object *pods)
{
	json_object *arr = out_path(pods, "pods");
	char bad[CHECK_TEXT_MAX - 64] = "";
	size_t off = 0, meshed = 0;

	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *p = json_object_array_get_idx(arr, i);

		if (!out_bool(p, "meshed"))
			continue;
		meshed++;
		if (!out_bool(p, "listening") ||
		    !json_object_array_length(out_path(p, "listeners")))
			off += (size_t)snprintf(bad + off, sizeof(bad) - off, "%s%s/%s (listeners)",
						off ? ", " : "", out_str(p, "namespace"),
						out_str(p, "name"));
		else if (out_str(p, "fail_open.heartbeat") &&
			 strcmp(out_str(p, "fail_open.heartbeat"), "fresh"))
			off += (size_t)snprintf(bad + off, sizeof(bad) - off,
						"%s%s/%s (fail-open, heartbeat %s: bypassing the mesh)",
						off ? ", " : "", out_str(p, "namespace"),
						out_str(p, "name"), out_str(p, "fail_open.heartbeat"));
		else if (!out_bool(p, "capture_in_place"))
			off += (size_t)snprintf(bad + off, sizeof(bad) - off, "%s%s/%s (%s)",
						off ? ", " : "", out_str(p, "namespace"),
						out_str(p, "name"),
						out_str(p, "capture_problem") ?: "capture not in place");
		if (off >= sizeof(bad))
			break;
	}
	result(c, "pods", !off,
	       "restart weft-agent (it re-creates listeners and entries of the "
	       "pods it saved), or delete and re-create the pod",
	       off ? "broken: %s" : "%s",
	       off	? bad
	       : meshed ? "every meshed pod has its listeners and its mesh_pods entry"
			: "no meshed pod yet");
}

/* The mode in force and, per mode, what it needs from the kernel against
 * what this node has, as the agent's own probes found it just now.
 */
static void check_capture(struct checks *c, json_object *cap)
{
	const char *mode = out_str(cap, "mode") ?: "?";
	json_object *needs = out_path(cap, "needs");
	static const char *const modes[] = { "ebpf", "nft" };

	result(c, "capture mode", true, "", "%s (%s)", mode, out_str(cap, "reason") ?: "");
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		char have[CHECK_TEXT_MAX - 64] = "", lack[CHECK_TEXT_MAX - 64] = "";
		size_t nh = 0, nl = 0, n_rows = 0;
		char name[32];

		for (size_t i = 0; needs && i < json_object_array_length(needs); i++) {
			json_object *f = json_object_array_get_idx(needs, i);
			const char *fm = out_str(f, "mode");
			bool present = out_bool(f, "present");
			char *buf = present ? have : lack;
			size_t *off = present ? &nh : &nl;

			if (!fm || strcmp(fm, modes[m]))
				continue;
			n_rows++;
			if (*off < sizeof(have))
				*off += (size_t)snprintf(buf + *off, sizeof(have) - *off, "%s%s",
							 *off ? ", " : "", out_str(f, "name"));
		}
		if (!n_rows)
			continue;	/* the agent did not probe it: nothing to report */
		snprintf(name, sizeof(name), "%s mode needs", modes[m]);
		/* Only the mode in force must be complete; the other is information. */
		if (nl && !strcmp(mode, modes[m]))
			result(c, name, false,
			       "upgrade the kernel or enable what is missing (docs/datapath.md lists each feature and its release)",
			       "missing: %s", lack);
		else if (!nl && n_rows == 1)
			result(c, name, true, "", "%s", have);
		else if (!nl)
			result(c, name, true, "",
			       "all %zu present (GET /v1/capture lists them)", n_rows);
		else if (c->m->format != OUT_JSON)
			fprintf(c->m->out, "INFO  %-22s missing here: %s (not the mode in force)\n",
				name, lack);
	}
}

/* Pods of meshed namespaces running on this node without ever being
 * enrolled: their traffic bypasses the mesh.
 */
static void check_escaped(struct checks *c, json_object *escaped)
{
	json_object *arr = out_path(escaped, "pods");
	char bad[CHECK_TEXT_MAX - 64] = "";
	size_t off = 0, n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n && off < sizeof(bad); i++) {
		json_object *p = json_object_array_get_idx(arr, i);

		off += (size_t)snprintf(bad + off, sizeof(bad) - off, "%s%s/%s", off ? ", " : "",
					out_str(p, "namespace"), out_str(p, "name"));
	}
	result(c, "unmeshed pods", !n,
	       out_bool(escaped, "evict") ?
		       "the agent evicts them one at a time (--evict-escaped); see its log" :
		       "delete them so they restart through the CNI chain (kubectl delete pod), "
		       "or run weft-agent with --evict-escaped",
	       "%s%s", n ? "running in meshed namespaces, never enrolled (started while "
			   "weft-cni was not chained): " : "",
	       n ? bad : "every running pod of a meshed namespace on this node is enrolled");
}

static void check_registries(struct checks *c, json_object *status)
{
	json_object *regs = out_path(status, "registries");
	char bad[CHECK_TEXT_MAX - 64] = "";
	size_t off = 0;

	for (size_t i = 0; regs && i < json_object_array_length(regs); i++) {
		json_object *r = json_object_array_get_idx(regs, i);
		const char *h = out_str(r, "health");

		if (h && strcmp(h, "synced"))
			off += (size_t)snprintf(bad + off, sizeof(bad) - off, "%s%s is %s: %s",
						off ? "; " : "", out_str(r, "name"), h,
						out_str(r, "message") ?: out_str(r, "last_error") ?: "");
		if (off >= sizeof(bad))
			break;
	}
	result(c, "registries", !off,
	       "fix the source named (see 'meshctl status'); the last "
	       "known catalogue stays in force meanwhile",
	       "%s", off ? bad : "every source is synced");
}

static void check_agent(struct checks *c, bool ready_only)
{
	struct json_object *status = NULL, *pods = NULL;
	char err[CLIENT_ERR_MAX];

	if (client_get(c->m->socket, "/v1/status", c->m->timeout_ms, &status, err, sizeof(err))) {
		result(c, "agent", false,
		       "start weft-agent, or pass --socket; 'meshctl check --pre' "
		       "checks only this machine",
		       "%s", err);
		return;
	}
	result(c, "agent", true, "", "weft-agent %s on %s, mode %s, up %llus",
	       out_str(status, "version"), c->m->socket, out_str(status, "mode"),
	       out_u64(status, "uptime_s"));
	/* Programs exist only in eBPF mode: in nft mode there is nothing to check. */
	if (!strcmp(out_str(status, "mode") ?: "", "ebpf"))
		check_links(c, status);
	if (!ready_only) {
		if (client_get(c->m->socket, "/v1/capture", c->m->timeout_ms, &pods, err,
			       sizeof(err)))
			result(c, "capture mode", false, "see the agent's log", "%s", err);
		else
			check_capture(c, pods);
		json_object_put(pods);
		pods = NULL;
	}
	/* Readiness leaves a broken pod to the full check: one pod must not
	 * hold up a rollout of every node.
	 */
	if (!ready_only) {
		if (client_get(c->m->socket, "/v1/pods", c->m->timeout_ms, &pods, err, sizeof(err)))
			result(c, "pods", false, "see the agent's log", "%s", err);
		else
			check_pods(c, pods);
		json_object_put(pods);
		pods = NULL;
		if (client_get(c->m->socket, "/v1/escaped", c->m->timeout_ms, &pods, err,
			       sizeof(err)))
			result(c, "unmeshed pods", false, "see the agent's log", "%s", err);
		else
			check_escaped(c, pods);
	}
	check_registries(c, status);
	json_object_put(pods);
	json_object_put(status);
}

int cmd_check(struct meshctl *m, int argc, char **argv)
{
	const char *bpffs = NULL;
	char agent_bpffs[4096] = "";
	bool pre = false, ready = false;
	const struct cmd_opt opts[] = { { "pre", NULL, &pre },
					{ "ready", NULL, &ready },
					{ "bpffs", &bpffs, NULL } };
	struct checks c = { .m = m, .arr = json_object_new_array() };
	json_object *o;
	int ret;

	ret = meshctl_opts_only(m, argc, argv, opts, 3);
	if (ret) {
		json_object_put(c.arr);
		return ret;
	}
	if (!pre && !bpffs) {
		/* Check the folder the running agent pins in, when there is one. */
		struct json_object *st = NULL;
		char err[CLIENT_ERR_MAX];

		if (!client_get(m->socket, "/v1/status", m->timeout_ms, &st, err, sizeof(err)) &&
		    out_str(st, "bpffs"))
			snprintf(agent_bpffs, sizeof(agent_bpffs), "%s", out_str(st, "bpffs"));
		json_object_put(st);
		if (agent_bpffs[0])
			bpffs = agent_bpffs;
	}
	if (!bpffs)
		bpffs = BPFREAD_DEFAULT_BPFFS;
	if (pre && ready) {
		json_object_put(c.arr);
		out_err(m->err, m->format, "check: --pre and --ready exclude each other");
		return MESHCTL_USAGE;
	}
	if (!ready) {
		check_kernel(&c);
		check_btf(&c);
		check_mounts(&c, bpffs);
		check_perms(&c);
		check_bpf_types(&c);
		check_netfilter(&c);
	}
	if (!pre)
		check_agent(&c, ready);
	if (m->format == OUT_JSON) {
		o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(!c.failed));
		json_object_object_add(o, "checks", c.arr);
		out_json(m->out, o);
		json_object_put(o);
	} else {
		fprintf(m->out, "\n%zu check(s) failed\n", c.failed);
		json_object_put(c.arr);
	}
	return c.failed ? MESHCTL_ERR : MESHCTL_OK;
}
