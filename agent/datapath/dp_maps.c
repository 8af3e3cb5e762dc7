// SPDX-License-Identifier: GPL-2.0-only
/* Typed verbs over the pinned maps: pods in (struct dp_pod <-> struct
 * mesh_pod of abi.h, outbound and inbound settings), decision counters out.
 * The agent's pod sync and admin API call these; nothing outside
 * agent/datapath sees a map.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi.h"
#include "dp.h"
#include "dp_internal.h"
#include "redirect.skel.h"

/* The programs' decision function, compiled here for the host (as
 * tests/unit/test_bpf_decide.c does): meshctl trace explains with the code
 * the kernel runs.
 */
#define bpf_htonl(x) htonl(x)
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "lib/decide.h"
#include "lib/heartbeat.h"

static const char *const dp_reason_names[] = MESH_REASON_NAMES;
_Static_assert(sizeof(dp_reason_names) / sizeof(dp_reason_names[0]) == MESH_R_MAX,
	       "MESH_REASON_NAMES must name every enum mesh_reason");

/* Clear the bits of @a past @prefix_len, as the programs compare masked. */
static void mask_addr(struct mesh_addr *a, unsigned int prefix_len)
{
	__u8 *b = (__u8 *)a->addr;

	for (unsigned int i = 0; i < sizeof(a->addr); i++) {
		unsigned int bit = i * 8;

		if (bit >= prefix_len)
			b[i] = 0;
		else if (prefix_len - bit < 8)
			b[i] &= (__u8)(0xff << (8 - (prefix_len - bit)));
	}
}

static int cidr_to_mesh(const struct dp_cidr *in, struct mesh_cidr *out)
{
	memset(out, 0, sizeof(*out));
	switch (in->net.family) {
	case 0:
		/* An unused slot; a prefix without a family is a caller bug. */
		return in->prefix_len ? -EINVAL : 0;
	case AF_INET:
		if (in->prefix_len > 32)
			return -EINVAL;
		out->family = MESH_AF_INET;
		memcpy(&out->addr.addr[0], &in->net.ip.v4, 4);
		break;
	case AF_INET6:
		if (in->prefix_len > 128)
			return -EINVAL;
		out->family = MESH_AF_INET6;
		memcpy(out->addr.addr, &in->net.ip.v6, 16);
		break;
	default:
		return -EAFNOSUPPORT;
	}
	out->prefix_len = (__u8)in->prefix_len;
	mask_addr(&out->addr, in->prefix_len);
	return 0;
}

static void cidr_from_mesh(const struct mesh_cidr *in, struct dp_cidr *out)
{
	memset(out, 0, sizeof(*out));
	if (in->family == MESH_AF_INET) {
		out->net.family = AF_INET;
		memcpy(&out->net.ip.v4, &in->addr.addr[0], 4);
	} else if (in->family == MESH_AF_INET6) {
		out->net.family = AF_INET6;
		memcpy(&out->net.ip.v6, in->addr.addr, 16);
	} else {
		return;
	}
	out->prefix_len = in->prefix_len;
}

static int pod_to_mesh(const struct dp_pod *in, struct mesh_pod *out)
{
	int err;

	/* Capturing to port 0 would send the pod's traffic nowhere; one port
	 * for both listeners would make every inbound connection the
	 * outbound proxy's.
	 */
	if (in->capture && !in->proxy_port)
		return -EINVAL;
	if (in->inbound_port && in->inbound_port == in->proxy_port)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->pod_id = in->pod_id;
	out->proxy_port = in->proxy_port;
	out->flags = (in->capture ? MESH_POD_F_CAPTURE : 0) |
		     (in->deny_raw ? MESH_POD_F_DENY_RAW : 0) |
		     (in->fail_open ? MESH_POD_F_FAIL_OPEN : 0);
	memcpy(out->excl_ports, in->excl_ports, sizeof(out->excl_ports));
	out->inbound_port = in->inbound_port;
	memcpy(out->excl_in_ports, in->excl_in_ports, sizeof(out->excl_in_ports));
	out->dns_port = in->dns_port;
	for (int i = 0; i < MESH_MAX_EXCL_CIDRS; i++) {
		err = cidr_to_mesh(&in->excl_cidrs[i], &out->excl_cidrs[i]);
		if (err)
			return err;
	}
	return 0;
}

static void pod_from_mesh(const struct mesh_pod *in, struct dp_pod *out)
{
	memset(out, 0, sizeof(*out));
	out->pod_id = in->pod_id;
	out->proxy_port = in->proxy_port;
	out->capture = in->flags & MESH_POD_F_CAPTURE;
	out->deny_raw = in->flags & MESH_POD_F_DENY_RAW;
	out->fail_open = in->flags & MESH_POD_F_FAIL_OPEN;
	memcpy(out->excl_ports, in->excl_ports, sizeof(out->excl_ports));
	out->inbound_port = in->inbound_port;
	memcpy(out->excl_in_ports, in->excl_in_ports, sizeof(out->excl_in_ports));
	out->dns_port = in->dns_port;
	for (int i = 0; i < MESH_MAX_EXCL_CIDRS; i++)
		cidr_from_mesh(&in->excl_cidrs[i], &out->excl_cidrs[i]);
}

int dp_pod_upsert(struct dp *dp, uint64_t netns_cookie, const struct dp_pod *pod)
{
	struct mesh_pod value;
	__u64 key = netns_cookie;
	int err;

	err = pod_to_mesh(pod, &value);
	if (err)
		return err;
	return bpf_map__update_elem(dp->skel->maps.mesh_pods, &key, sizeof(key), &value,
				    sizeof(value), BPF_ANY);
}

int dp_pod_del(struct dp *dp, uint64_t netns_cookie)
{
	__u64 key = netns_cookie;
	int err;

	err = bpf_map__delete_elem(dp->skel->maps.mesh_pods, &key, sizeof(key), 0);
	return err == -ENOENT ? 0 : err;
}

int dp_pod_for_each(struct dp *dp, dp_pod_fn fn, void *ctx)
{
	const struct bpf_map *map = dp->skel->maps.mesh_pods;
	__u64 *keys, key, *prev = NULL;
	struct mesh_pod value;
	struct dp_pod pod;
	size_t n = 0;
	int err = 0;

	/* Snapshot the keys first: a hash map walk restarts from the top when
	 * the current key is deleted under it, and @fn may well delete.
	 */
	keys = calloc(MESH_MAX_PODS, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	while (n < MESH_MAX_PODS) {
		err = bpf_map__get_next_key(map, prev, &key, sizeof(key));
		if (err == -ENOENT) {
			err = 0;
			break;
		}
		if (err)
			goto out_free_keys;
		keys[n] = key;
		prev = &keys[n++];
	}
	for (size_t i = 0; i < n; i++) {
		err = bpf_map__lookup_elem(map, &keys[i], sizeof(keys[i]), &value, sizeof(value),
					   0);
		if (err == -ENOENT)
			continue;	/* deleted since the snapshot */
		if (err)
			goto out_free_keys;
		pod_from_mesh(&value, &pod);
		err = fn(keys[i], &pod, ctx);
		if (err)
			goto out_free_keys;
	}
	err = 0;
out_free_keys:
	free(keys);
	return err;
}

/* Keys of @map, walked with get_next_key; never more than its capacity (a
 * walk restarts from the first key when the key it stands on is deleted
 * meanwhile, so under churn a plain walk could count some twice).
 */
static int map_count(const struct bpf_map *map, uint32_t *out)
{
	uint32_t cap = bpf_map__max_entries(map), n = 0;
	size_t ksz = bpf_map__key_size(map);
	unsigned char key[64], next[64];
	int fd = bpf_map__fd(map);
	void *prev = NULL;

	if (ksz > sizeof(key) || fd < 0)
		return -EINVAL;
	while (n < cap && !bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, ksz);
		prev = key;
		n++;
	}
	if (n < cap && errno != ENOENT)
		return -errno;
	*out = n;
	return 0;
}

int dp_map_usage(struct dp *dp, struct dp_map_use *out, size_t n)
{
	const struct bpf_map *maps[] = {
		dp->skel->maps.mesh_pods, dp->skel->maps.mesh_inbound,
		dp->skel->maps.mesh_orig_dst, dp->skel->maps.mesh_in_agent,
	};
	size_t i;
	int err;

	for (i = 0; i < n && i < sizeof(maps) / sizeof(maps[0]); i++) {
		out[i].map = bpf_map__name(maps[i]);
		out[i].capacity = bpf_map__max_entries(maps[i]);
		out[i].lru = bpf_map__type(maps[i]) == BPF_MAP_TYPE_LRU_HASH;
		err = map_count(maps[i], &out[i].entries);
		if (err)
			return err;
	}
	return (int)i;
}

int dp_counters(struct dp *dp, uint64_t *out, size_t n)
{
	const struct bpf_map *map = dp->skel->maps.mesh_metrics;
	int ncpus = libbpf_num_possible_cpus();
	size_t count = n < MESH_R_MAX ? n : MESH_R_MAX;
	__u64 *per_cpu;
	int err = 0;

	if (ncpus <= 0)
		return ncpus < 0 ? ncpus : -EINVAL;
	/* A per-CPU lookup returns one 8-byte-aligned slot per possible CPU. */
	per_cpu = calloc((size_t)ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	for (__u32 i = 0; i < count; i++) {
		err = bpf_map__lookup_elem(map, &i, sizeof(i), per_cpu,
					   (size_t)ncpus * sizeof(*per_cpu), 0);
		if (err)
			goto out_free;
		out[i] = 0;
		for (int c = 0; c < ncpus; c++)
			out[i] += per_cpu[c];
	}
	err = (int)count;
out_free:
	free(per_cpu);
	return err;
}

const char *dp_counter_name(size_t i)
{
	return i < MESH_R_MAX ? dp_reason_names[i] : NULL;
}

int dp_pod_lookup(struct dp *dp, uint64_t netns_cookie, struct dp_pod *out)
{
	struct mesh_pod value;
	__u64 key = netns_cookie;
	int err;

	err = bpf_map__lookup_elem(dp->skel->maps.mesh_pods, &key, sizeof(key), &value,
				   sizeof(value), 0);
	if (err)
		return err;
	pod_from_mesh(&value, out);
	return 0;
}

/* A connect() by one of the pod's applications: cgroup_at_agent_level stays
 * 0, never the agent's cgroup id.
 */
static void connect_req(const struct addr *dst, struct mesh_connect_req *req)
{
	memset(req, 0, sizeof(*req));
	req->port = dst->port;
	req->is_tcp = 1;
	if (dst->family == AF_INET) {
		req->family = MESH_AF_INET;
		memcpy(&req->dst.addr[0], &dst->ip.v4, 4);
	} else {
		req->family = MESH_AF_INET6;
		memcpy(req->dst.addr, &dst->ip.v6, 16);
	}
}

void dp_explain_entry(const struct dp_pod *pod, const struct addr *dst, bool heartbeat_stale,
		      struct dp_explain *out)
{
	struct mesh_connect_req req;
	struct mesh_pod value;

	memset(out, 0, sizeof(*out));
	out->enrolled = pod && !pod_to_mesh(pod, &value);
	if (out->enrolled)
		out->pod = *pod;
	out->heartbeat_stale = heartbeat_stale;
	connect_req(dst, &req);
	req.fails_open = heartbeat_stale;
	out->reason = mesh_decide_connect(&req, out->enrolled ? &value : NULL, NULL);
}

int dp_explain_connect(struct dp *dp, uint64_t netns_cookie, const struct addr *dst,
		       struct dp_explain *out)
{
	struct mesh_config cfg = { 0 };
	struct dp_heartbeat_state hb;
	struct mesh_connect_req req;
	struct mesh_pod value;
	__u64 key = netns_cookie;
	__u32 zero = 0;
	int err;

	memset(out, 0, sizeof(*out));
	err = bpf_map__lookup_elem(dp->skel->maps.mesh_config, &zero, sizeof(zero), &cfg,
				   sizeof(cfg), 0);
	if (err)
		return err;
	out->agent_cgroup_id = cfg.agent_cgroup_id;
	out->agent_cgroup_level = cfg.agent_cgroup_level;
	err = bpf_map__lookup_elem(dp->skel->maps.mesh_pods, &key, sizeof(key), &value,
				   sizeof(value), 0);
	if (err && err != -ENOENT)
		return err;
	out->enrolled = !err;
	if (out->enrolled)
		pod_from_mesh(&value, &out->pod);
	err = dp_heartbeat_read(dp, &hb);
	if (err)
		return err;
	out->heartbeat_stale = hb.stale;
	connect_req(dst, &req);
	req.fails_open = hb.stale;
	out->reason = mesh_decide_connect(&req, out->enrolled ? &value : NULL, &cfg);
	return 0;
}

/* CLOCK_MONOTONIC in ns: bpf_ktime_get_ns()'s clock. An agent in a time
 * namespace would see it shifted; the programs then read its beats as in
 * the future, which mesh_heartbeat_is_stale() takes as fresh (fail closed).
 */
static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int dp_heartbeat(struct dp *dp, uint64_t stale_after_ns)
{
	struct mesh_heartbeat hb = { .beat_ns = monotonic_ns(), .stale_after_ns = stale_after_ns };
	__u32 key = 0;

	return bpf_map__update_elem(dp->skel->maps.mesh_heartbeat, &key, sizeof(key), &hb,
				    sizeof(hb), BPF_ANY);
}

int dp_heartbeat_read(struct dp *dp, struct dp_heartbeat_state *out)
{
	struct mesh_heartbeat hb = { 0 };
	__u32 key = 0;
	uint64_t now;
	int err;

	memset(out, 0, sizeof(*out));
	err = bpf_map__lookup_elem(dp->skel->maps.mesh_heartbeat, &key, sizeof(key), &hb,
				   sizeof(hb), 0);
	if (err)
		return err;
	now = monotonic_ns();
	out->beat = hb.beat_ns != 0;
	out->age_ns = out->beat && now > hb.beat_ns ? now - hb.beat_ns : 0;
	out->stale_after_ns = hb.stale_after_ns;
	out->stale = mesh_heartbeat_is_stale(&hb, now);
	return 0;
}

int dp_dns_resolver6(struct dp *dp, uint32_t slot, struct in6_addr *out)
{
	__u32 key = slot;
	struct mesh_addr val;

	if (slot >= MESH_MAX_DNS_UP)
		return -ENOENT;
	if (bpf_map__lookup_elem(dp->skel->maps.mesh_dns_up6, &key, sizeof(key), &val,
				 sizeof(val), 0))
		return -errno;
	memcpy(out, &val, sizeof(*out));
	return 0;
}

int dp_dns_resolver(struct dp *dp, uint32_t slot, uint32_t *out)
{
	__u32 key = slot, val;

	if (slot >= MESH_MAX_DNS_UP)
		return -ENOENT;
	if (bpf_map__lookup_elem(dp->skel->maps.mesh_dns_up, &key, sizeof(key), &val,
				 sizeof(val), 0))
		return -errno;
	*out = val;
	return 0;
}
