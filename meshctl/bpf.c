// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl bpf maps|progs`: the datapath as the kernel holds it, read from
 * the pins under --bpffs (default /sys/fs/bpf/weft) without the agent, so it
 * works while the agent is down — which is when it is needed most. Map
 * entries are decoded by the structs of bpf/abi.h, after checking that the
 * pinned maps have their sizes (a meshctl of another release would misread).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "abi.h"
#include "bpfread.h"
#include "fs.h"
#include "meshctl.h"

static const char *const reason_names[] = MESH_REASON_NAMES;

static const char *const map_headers[] = {
	"MAP", "TYPE", "ID", "KEY", "VALUE", "MAX", "ENTRIES",
};
static const char *const pod_headers[] = {
	"NETNS-COOKIE", "POD-ID", "PROXY-PORT", "CAPTURE", "EXCLUDED-PORTS", "EXCLUDED-CIDRS",
};
static const char *const link_headers[] = {
	"PROGRAM", "ATTACH", "LINK-ID", "PROG-ID", "TAG", "CGROUP-ID", "ATTACHED",
};

int bpfread_open(const char *bpffs, const char *kind, const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%.3000s/%s/%.255s", bpffs, kind, name);
	fd = bpf_obj_get(path);
	if (fd >= 0)
		return fd;
	fd = -errno;
	if (fd == -EPERM || fd == -EACCES)
		snprintf(err, errlen,
			 "permission denied on %s: reading pinned BPF objects needs "
			 "root (CAP_BPF and CAP_SYS_ADMIN)",
			 path);
	else if (fd == -ENOENT)
		snprintf(err, errlen,
			 "nothing pinned at %s: is %s the agent's --bpffs? "
			 "(weft-agent --cleanup removes the pins)",
			 path, bpffs);
	else
		snprintf(err, errlen, "open %s: %s", path, strerror(-fd));
	return fd;
}

/* ---------------------------------------------------------------- maps */

struct map_view {
	char name[256];
	struct bpf_map_info info;
	long long entries; /* -1: this map type cannot be walked */
};

static long long count_entries(int fd, const struct bpf_map_info *info)
{
	char key[256], next[256];
	long long n = 0;
	void *prev = NULL;

	if (info->key_size > sizeof(key) || info->type == BPF_MAP_TYPE_SK_STORAGE)
		return -1;
	if (info->type == BPF_MAP_TYPE_ARRAY || info->type == BPF_MAP_TYPE_PERCPU_ARRAY)
		return info->max_entries;
	while (n < info->max_entries && !bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, info->key_size);
		prev = key;
		n++;
	}
	return n;
}

static int check_sizes(const struct map_view *v, __u32 key, __u32 value, char *err, size_t len)
{
	if (v->info.key_size == key && v->info.value_size == value)
		return 0;
	snprintf(err, len,
		 "pinned map %s has key/value sizes %u/%u, this meshctl expects %u/%u: "
		 "use the meshctl of the agent's release",
		 v->name, v->info.key_size, v->info.value_size, key, value);
	return -EPROTO;
}

static void cidr_text(const struct mesh_cidr *c, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(c->family == MESH_AF_INET ? AF_INET : AF_INET6, c->addr.addr, ip, sizeof(ip));
	snprintf(buf, len, "%s/%u", ip, c->prefix_len);
}

static json_object *pod_entry(__u64 cookie, const struct mesh_pod *p)
{
	json_object *o = json_object_new_object(), *ports = json_object_new_array();
	json_object *cidrs = json_object_new_array();
	char buf[64];

	json_object_object_add(o, "netns_cookie", json_object_new_uint64(cookie));
	json_object_object_add(o, "pod_id", json_object_new_uint64(p->pod_id));
	json_object_object_add(o, "proxy_port", json_object_new_uint64(p->proxy_port));
	json_object_object_add(o, "capture",
			       json_object_new_boolean(p->flags & MESH_POD_F_CAPTURE));
	json_object_object_add(o, "deny_raw_sockets",
			       json_object_new_boolean(p->flags & MESH_POD_F_DENY_RAW));
	for (int i = 0; i < MESH_MAX_EXCL_PORTS; i++)
		if (p->excl_ports[i])
			json_object_array_add(ports, json_object_new_int(p->excl_ports[i]));
	for (int i = 0; i < MESH_MAX_EXCL_CIDRS; i++) {
		if (!p->excl_cidrs[i].family)
			continue;
		cidr_text(&p->excl_cidrs[i], buf, sizeof(buf));
		json_object_array_add(cidrs, json_object_new_string(buf));
	}
	json_object_object_add(o, "exclude_ports", ports);
	json_object_object_add(o, "exclude_cidrs", cidrs);
	return o;
}

static int read_pods(int fd, const struct map_view *v, json_object *arr, char *err, size_t len)
{
	__u64 key, prev;
	struct mesh_pod val;
	void *pk = NULL;

	if (check_sizes(v, sizeof(key), sizeof(val), err, len))
		return -EPROTO;
	for (__u32 n = 0; n < v->info.max_entries && !bpf_map_get_next_key(fd, pk, &key); n++) {
		prev = key;
		pk = &prev;
		if (bpf_map_lookup_elem(fd, &key, &val))
			continue; /* removed meanwhile */
		json_object_array_add(arr, pod_entry(key, &val));
	}
	return 0;
}

static int read_counters(int fd, const struct map_view *v, json_object *o, char *err, size_t len)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *per_cpu;

	if (check_sizes(v, sizeof(__u32), sizeof(__u64), err, len))
		return -EPROTO;
	if (ncpus <= 0)
		return -EINVAL;
	per_cpu = calloc((size_t)ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	for (__u32 i = 0; i < MESH_R_MAX && i < v->info.max_entries; i++) {
		__u64 sum = 0;

		if (bpf_map_lookup_elem(fd, &i, per_cpu))
			continue;
		for (int c = 0; c < ncpus; c++)
			sum += per_cpu[c];
		json_object_object_add(o, reason_names[i], json_object_new_uint64(sum));
	}
	free(per_cpu);
	return 0;
}

/* Every pinned map under @bpffs/maps, decoded into one JSON document. */
/* Open the folder @bpffs/@kind ("maps", "links") of weft's pins, its path in
 * @dir (@dirlen bytes). NULL with -errno in *@ret and why in @err.
 */
static DIR *open_pins(const char *bpffs, const char *kind, char *dir, size_t dirlen, char *err,
		      size_t len, int *ret)
{
	DIR *d;

	snprintf(dir, dirlen, "%s/%s", bpffs, kind);
	d = opendir(dir);
	if (d)
		return d;
	*ret = -errno;
	if (*ret == -ENOENT)
		snprintf(err, len,
			 "no pinned weft %s: %s does not exist (is %s the agent's --bpffs? "
			 "pass --bpffs DIR)",
			 kind, dir, bpffs);
	else
		snprintf(err, len, "cannot read %s: %s", dir, strerror(-*ret));
	return NULL;
}

static int read_maps(const char *bpffs, json_object **out, char *err, size_t len)
{
	char dir[PATH_MAX];
	json_object *o = json_object_new_object(), *maps = json_object_new_array();
	json_object *pods = json_object_new_array(), *counters = json_object_new_object();
	struct dirent *de;
	int ret = 0;
	DIR *d;

	json_object_object_add(o, "bpffs", json_object_new_string(bpffs));
	json_object_object_add(o, "maps", maps);
	json_object_object_add(o, "pods", pods);
	json_object_object_add(o, "counters", counters);
	d = open_pins(bpffs, "maps", dir, sizeof(dir), err, len, &ret);
	if (!d)
		goto out;
	while ((de = readdir(d)) && !ret) {
		struct map_view v = { 0 };
		__u32 ilen = sizeof(v.info);
		json_object *m;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = bpfread_open(bpffs, "maps", de->d_name, err, len);
		if (fd < 0) {
			ret = fd;
			break;
		}
		if (bpf_obj_get_info_by_fd(fd, &v.info, &ilen)) {
			ret = -errno;
			snprintf(err, len, "%.200s/%.100s is not a BPF map", dir, de->d_name);
			close(fd);
			break;
		}
		snprintf(v.name, sizeof(v.name), "%s", de->d_name);
		v.entries = count_entries(fd, &v.info);
		m = json_object_new_object();
		json_object_object_add(m, "name", json_object_new_string(v.name));
		json_object_object_add(
			m, "type",
			json_object_new_string(libbpf_bpf_map_type_str(v.info.type) ?: "unknown"));
		json_object_object_add(m, "id", json_object_new_uint64(v.info.id));
		json_object_object_add(m, "key_size", json_object_new_uint64(v.info.key_size));
		json_object_object_add(m, "value_size", json_object_new_uint64(v.info.value_size));
		json_object_object_add(m, "max_entries",
				       json_object_new_uint64(v.info.max_entries));
		json_object_object_add(m, "entries",
				       v.entries < 0 ? NULL : json_object_new_int64(v.entries));
		json_object_array_add(maps, m);
		if (!strcmp(v.name, "mesh_pods")) {
			ret = read_pods(fd, &v, pods, err, len);
		} else if (!strcmp(v.name, "mesh_metrics")) {
			ret = read_counters(fd, &v, counters, err, len);
		} else if (!strcmp(v.name, "mesh_config")) {
			struct mesh_config cfg;
			__u32 zero = 0;

			ret = check_sizes(&v, sizeof(zero), sizeof(cfg), err, len);
			if (!ret && !bpf_map_lookup_elem(fd, &zero, &cfg)) {
				json_object_object_add(o, "agent_mark",
						       json_object_new_uint64(cfg.mark));
				json_object_object_add(o, "agent_cgroup_id",
						       json_object_new_uint64(cfg.agent_cgroup_id));
				json_object_object_add(
					o, "agent_cgroup_level",
					json_object_new_uint64(cfg.agent_cgroup_level));
			}
		}
		close(fd);
	}
	closedir(d);
out:
	if (ret) {
		json_object_put(o);
		return ret;
	}
	*out = o;
	return 0;
}

static int map_row(struct out_table *t, json_object *m, void *ctx)
{
	json_object *e = out_path(m, "entries");
	char id[24], k[24], v[24], max[24], n[24];

	(void)ctx;
	snprintf(id, sizeof(id), "%llu", out_u64(m, "id"));
	snprintf(k, sizeof(k), "%llu", out_u64(m, "key_size"));
	snprintf(v, sizeof(v), "%llu", out_u64(m, "value_size"));
	snprintf(max, sizeof(max), "%llu", out_u64(m, "max_entries"));
	snprintf(n, sizeof(n), "%lld", e ? (long long)json_object_get_int64(e) : -1LL);
	return out_table_add(t, (const char *const[]){ out_str(m, "name"), out_str(m, "type"), id,
						       k, v, max, e ? n : "-" });
}

static int pod_row(struct out_table *t, json_object *p, void *ctx)
{
	char c[24], id[24], port[24];
	const char *ports, *cidrs;

	(void)ctx;
	snprintf(c, sizeof(c), "%llu", out_u64(p, "netns_cookie"));
	snprintf(id, sizeof(id), "%llu", out_u64(p, "pod_id"));
	snprintf(port, sizeof(port), "%llu", out_u64(p, "proxy_port"));
	ports = json_object_array_length(out_path(p, "exclude_ports"))
			? json_object_to_json_string_ext(out_path(p, "exclude_ports"),
							 JSON_C_TO_STRING_PLAIN)
			: "-";
	cidrs = json_object_array_length(out_path(p, "exclude_cidrs"))
			? json_object_to_json_string_ext(out_path(p, "exclude_cidrs"),
							 JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE)
			: "-";
	return out_table_add(t, (const char *const[]){ c, id, port,
						       out_bool(p, "capture") ? "yes" : "no", ports,
						       cidrs });
}

static int render_maps(FILE *out, json_object *o)
{
	json_object *pods = out_path(o, "pods");
	int err = out_table_rows(out, 7, map_headers, out_path(o, "maps"), map_row, NULL);

	if (err)
		return err;
	fprintf(out, "\nmesh_pods (%zu):\n", json_object_array_length(pods));
	err = out_table_rows(out, 6, pod_headers, pods, pod_row, NULL);
	if (err)
		return err;
	if (out_path(o, "agent_mark"))
		fprintf(out,
			"\nmesh_config: the agent's sockets are those of cgroup id %llu (level %llu) "
			"and below; agent mark 0x%llx (routing only)\n",
			out_u64(o, "agent_cgroup_id"), out_u64(o, "agent_cgroup_level"),
			out_u64(o, "agent_mark"));
	fprintf(out, "\nmesh_metrics:\n");
	return out_kv(out, out_path(o, "counters"));
}

/* ---------------------------------------------------------------- links */

int bpfread_links(const char *bpffs, json_object **out, char *err, size_t len)
{
	char dir[PATH_MAX];
	json_object *arr = json_object_new_array();
	struct dirent *de;
	int ret = 0;
	DIR *d;

	d = open_pins(bpffs, "links", dir, sizeof(dir), err, len, &ret);
	if (!d) {
		json_object_put(arr);
		return ret;
	}
	while ((de = readdir(d))) {
		struct bpf_link_info li = { 0 };
		struct bpf_prog_info pi = { 0 };
		__u32 l = sizeof(li), pl = sizeof(pi);
		json_object *o;
		char tag[2 * BPF_TAG_SIZE + 1] = "";
		int fd, pfd;

		if (de->d_name[0] == '.')
			continue;
		fd = bpfread_open(bpffs, "links", de->d_name, err, len);
		if (fd < 0) {
			ret = fd;
			break;
		}
		if (bpf_obj_get_info_by_fd(fd, &li, &l)) {
			ret = -errno;
			snprintf(err, len, "%.200s/%.100s is not a BPF link", dir, de->d_name);
			close(fd);
			break;
		}
		close(fd);
		pfd = li.prog_id ? bpf_prog_get_fd_by_id(li.prog_id) : -1;
		if (pfd >= 0 && !bpf_obj_get_info_by_fd(pfd, &pi, &pl))
			for (int i = 0; i < BPF_TAG_SIZE; i++)
				snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
		if (pfd >= 0)
			close(pfd);
		o = json_object_new_object();
		json_object_object_add(o, "pin", json_object_new_string(de->d_name));
		json_object_object_add(o, "program",
				       json_object_new_string(pi.name[0] ? pi.name : de->d_name));
		json_object_object_add(o, "link_id", json_object_new_uint64(li.id));
		json_object_object_add(o, "prog_id", json_object_new_uint64(li.prog_id));
		json_object_object_add(o, "tag", json_object_new_string(tag));
		if (li.type == BPF_LINK_TYPE_CGROUP) {
			json_object_object_add(o, "attach_type",
					       json_object_new_string(libbpf_bpf_attach_type_str(
									      li.cgroup.attach_type)
									      ?: "unknown"));
			json_object_object_add(o, "cgroup_id",
					       json_object_new_uint64(li.cgroup.cgroup_id));
		}
		/* A removed cgroup detaches its links; the pinned link lives on, empty. */
		json_object_object_add(o, "attached",
				       json_object_new_boolean(li.type == BPF_LINK_TYPE_CGROUP &&
							       li.cgroup.cgroup_id));
		json_object_array_add(arr, o);
	}
	closedir(d);
	if (ret) {
		json_object_put(arr);
		return ret;
	}
	*out = arr;
	return 0;
}

/* Programs attached to @cgroup for weft's hooks, pinned or not. */
static json_object *cgroup_progs(const char *cgroup, char *err, size_t len, int *ret)
{
	static const enum bpf_attach_type types[] = {
		BPF_CGROUP_INET4_CONNECT,
		BPF_CGROUP_INET6_CONNECT,
		BPF_CGROUP_SOCK_OPS,
		BPF_CGROUP_GETSOCKOPT,
	};
	json_object *arr = json_object_new_array();
	int cg = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*ret = 0;
	if (cg == -1) {
		*ret = -errno;
		snprintf(err, len, "cannot open cgroup %s: %s", cgroup, strerror(errno));
		json_object_put(arr);
		return NULL;
	}
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		__u32 ids[64], n = 64, flags = 0;

		if (bpf_prog_query(cg, types[t], 0, &flags, ids, &n))
			continue;
		for (__u32 i = 0; i < n; i++) {
			struct bpf_prog_info pi = { 0 };
			__u32 pl = sizeof(pi);
			int pfd = bpf_prog_get_fd_by_id(ids[i]);
			json_object *o = json_object_new_object();

			if (pfd >= 0) {
				(void)bpf_obj_get_info_by_fd(pfd, &pi, &pl);
				close(pfd);
			}
			json_object_object_add(
				o, "attach_type",
				json_object_new_string(libbpf_bpf_attach_type_str(types[t])
							       ?: "unknown"));
			json_object_object_add(o, "prog_id", json_object_new_uint64(ids[i]));
			json_object_object_add(o, "program", json_object_new_string(pi.name));
			json_object_array_add(arr, o);
		}
	}
	close(cg);
	return arr;
}

static int link_row(struct out_table *t, json_object *l, void *ctx)
{
	char lid[24], pid[24], cid[24];

	(void)ctx;
	snprintf(lid, sizeof(lid), "%llu", out_u64(l, "link_id"));
	snprintf(pid, sizeof(pid), "%llu", out_u64(l, "prog_id"));
	snprintf(cid, sizeof(cid), "%llu", out_u64(l, "cgroup_id"));
	return out_table_add(t, (const char *const[]){
					out_str(l, "program"), out_str(l, "attach_type"), lid, pid,
					out_str(l, "tag"), cid,
					out_bool(l, "attached") ? "yes" : "NO (cgroup gone)" });
}

static int cgroup_prog_row(struct out_table *t, json_object *p, void *ctx)
{
	char pid[24];

	(void)ctx;
	snprintf(pid, sizeof(pid), "%llu", out_u64(p, "prog_id"));
	return out_table_add(t, (const char *const[]){ out_str(p, "attach_type"), pid,
						       out_str(p, "program") });
}

static int render_links(FILE *out, json_object *o)
{
	json_object *cg = out_path(o, "cgroup_programs");
	int err = out_table_rows(out, 7, link_headers, out_path(o, "links"), link_row, NULL);

	if (err || !cg)
		return err;
	fprintf(out, "\nAttached to %s (id %llu):\n", out_str(o, "cgroup"),
		out_u64(o, "cgroup_id"));
	return out_table_rows(out, 3, (const char *const[]){ "ATTACH", "PROG-ID", "PROGRAM" }, cg,
			      cgroup_prog_row, NULL);
}

/* ---------------------------------------------------------------- commands */

static int bpf_maps(struct meshctl *m, int argc, char **argv)
{
	const char *bpffs = BPFREAD_DEFAULT_BPFFS;
	const struct cmd_opt opts[] = { { "bpffs", &bpffs, NULL } };
	char err[512];
	json_object *o;
	int ret;

	ret = meshctl_opts_only(m, argc, argv, opts, 1);
	if (ret)
		return ret;
	if (read_maps(bpffs, &o, err, sizeof(err))) {
		out_err(m->err, m->format, "%s", err);
		return MESHCTL_ERR;
	}
	if (m->format == OUT_JSON)
		out_json(m->out, o);
	else if (render_maps(m->out, o))
		ret = MESHCTL_ERR;
	json_object_put(o);
	return ret;
}

static int bpf_progs(struct meshctl *m, int argc, char **argv)
{
	const char *bpffs = BPFREAD_DEFAULT_BPFFS, *cgroup = NULL;
	const struct cmd_opt opts[] = { { "bpffs", &bpffs, NULL }, { "cgroup", &cgroup, NULL } };
	char err[512];
	json_object *o, *links, *cg;
	unsigned long long cg_id = 0;
	int ret;

	ret = meshctl_opts_only(m, argc, argv, opts, 2);
	if (ret)
		return ret;
	if (bpfread_links(bpffs, &links, err, sizeof(err))) {
		out_err(m->err, m->format, "%s", err);
		return MESHCTL_ERR;
	}
	o = json_object_new_object();
	json_object_object_add(o, "bpffs", json_object_new_string(bpffs));
	json_object_object_add(o, "links", links);
	if (cgroup) {
		cg = cgroup_progs(cgroup, err, sizeof(err), &ret);
		if (!cg || fs_cgroup_id(cgroup, &cg_id)) {
			out_err(m->err, m->format, "%s", cg ? "cannot read the cgroup's id" : err);
			json_object_put(cg);
			json_object_put(o);
			return MESHCTL_ERR;
		}
		json_object_object_add(o, "cgroup", json_object_new_string(cgroup));
		json_object_object_add(o, "cgroup_id", json_object_new_uint64(cg_id));
		json_object_object_add(o, "cgroup_programs", cg);
	}
	if (m->format == OUT_JSON)
		out_json(m->out, o);
	else if (render_links(m->out, o))
		ret = MESHCTL_ERR;
	json_object_put(o);
	return ret;
}

static const struct cmd bpf_cmds[] = {
	{ "maps", bpf_maps, "[--bpffs DIR]", "the pinned maps, decoded", "" },
	{ "progs", bpf_progs, "[--bpffs DIR] [--cgroup DIR]", "the pinned links and programs", "" },
};

int cmd_bpf(struct meshctl *m, int argc, char **argv)
{
	const struct cmd *c;
	char err[128];

	if (argc < 2) {
		out_err(m->err, m->format,
			"bpf needs a command: maps or progs (see 'meshctl bpf "
			"--help')");
		return MESHCTL_USAGE;
	}
	c = cmd_select(bpf_cmds, sizeof(bpf_cmds) / sizeof(bpf_cmds[0]), argv[1], err, sizeof(err));
	if (!c) {
		out_err(m->err, m->format, "bpf: %s (maps or progs)", err);
		return MESHCTL_USAGE;
	}
	return c->fn(m, argc - 1, argv + 1);
}
