// SPDX-License-Identifier: GPL-2.0-only
/* agent/datapath against the real kernel: the mesh_redirect skeleton loads and
 * its maps match abi.h; dp_open pins and attaches, a second dp_open takes the
 * links over and keeps the maps, dp_cleanup leaves nothing; the pods map
 * round-trips. The programs' behaviour is test_redirect.c's.
 */
#include <arpa/inet.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>

#include "abi.h"
#include "addr.h"
#include "datapath/dp.h"
#include "inbound.skel.h"
#include "redirect.skel.h"

#include "../../agent/cgroup.h"
#include "../helpers/cgroup.h"
#include "../helpers/require.h"
#include "fixture.h"

static const char *const pinned_maps[] = {
	"mesh_pods", "mesh_config", "mesh_metrics", "mesh_sk_dst", "mesh_orig_dst", "mesh_inbound",
	"mesh_in_agent", "mesh_heartbeat", "mesh_dns_up", "mesh_dns_up6",
};
static const char *const pinned_links[] = {
	"mesh_sock_create",  "mesh_getsockopt", "mesh_sockops",	 "mesh_getpeername4",
	"mesh_getpeername6", "mesh_recvmsg4",	"mesh_recvmsg6", "mesh_sendmsg4",
	"mesh_sendmsg6",     "mesh_connect4",	"mesh_connect6",
};
static const enum bpf_attach_type attach_types[] = {
	BPF_CGROUP_INET_SOCK_CREATE,  BPF_CGROUP_GETSOCKOPT,	BPF_CGROUP_SOCK_OPS,
	BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME, BPF_CGROUP_UDP4_RECVMSG,
	BPF_CGROUP_UDP6_RECVMSG,      BPF_CGROUP_UDP4_SENDMSG,	    BPF_CGROUP_UDP6_SENDMSG,
	BPF_CGROUP_INET4_CONNECT,     BPF_CGROUP_INET6_CONNECT,
};
#define N_LINKS (sizeof(pinned_links) / sizeof(pinned_links[0]))

/* mkdir -p @dir (on the test's bpffs). 0 or -errno. */
static int mkdir_p(const char *dir)
{
	for (const char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			char part[PATH_MAX];

			snprintf(part, sizeof(part), "%.*s", (int)(p - dir), dir);
			if (mkdir(part, 0700) == -1 && errno != EEXIST)
				return -errno;
		}
	}
	return mkdir(dir, 0700) == -1 && errno != EEXIST ? -errno : 0;
}

static struct bpf_link_info link_info(const char *name)
{
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	char pin[PATH_MAX];
	int fd;

	snprintf(pin, sizeof(pin), "%s/links/%s", fx.pin_dir, name);
	fd = bpf_obj_get(pin);
	cr_assert_geq(fd, 0, "open pinned link '%s': %s", pin, strerror(errno));
	cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0, "link info '%s'", pin);
	close(fd);
	return info;
}

static bool exists(const char *dir, const char *sub, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	(void)snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	return stat(path, &st) == 0;
}

/* ---------------------------------------------------------------- skeleton */

Test(skel, maps_match_abi)
{
	const struct {
		const char *name;
		enum bpf_map_type type;
		__u32 key, value, max_entries;
	} want[] = {
		{ "mesh_pods", BPF_MAP_TYPE_HASH, sizeof(__u64), sizeof(struct mesh_pod),
		  MESH_MAX_PODS },
		{ "mesh_config", BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct mesh_config), 1 },
		{ "mesh_heartbeat", BPF_MAP_TYPE_ARRAY, sizeof(__u32),
		  sizeof(struct mesh_heartbeat), 1 },
		{ "mesh_metrics", BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(__u64),
		  MESH_R_MAX },
		{ "mesh_sk_dst", BPF_MAP_TYPE_SK_STORAGE, sizeof(int), sizeof(struct mesh_orig_dst),
		  0 },
		{ "mesh_orig_dst", BPF_MAP_TYPE_LRU_HASH, sizeof(struct mesh_conn_key),
		  sizeof(struct mesh_orig_dst), MESH_MAX_ORIG_DST },
		{ "mesh_inbound", BPF_MAP_TYPE_SOCKHASH, sizeof(struct mesh_listener_key),
		  sizeof(__u64), MESH_MAX_LISTENERS },
		{ "mesh_in_agent", BPF_MAP_TYPE_LRU_HASH, sizeof(struct mesh_flow_key),
		  sizeof(__u8), MESH_MAX_IN_AGENT },
		{ "mesh_dns_up", BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(__u32), MESH_MAX_DNS_UP },
		{ "mesh_dns_up6", BPF_MAP_TYPE_HASH, sizeof(__u32), sizeof(struct mesh_addr),
		  MESH_MAX_DNS_UP },
	};
	size_t n_want = sizeof(want) / sizeof(want[0]), seen = 0;
	struct mesh_redirect *skel;
	struct mesh_inbound *inbound;
	struct bpf_map *map;

	require_root();
	skel = mesh_redirect__open_and_load();
	cr_assert_not_null(skel, "load mesh_redirect: %s (WEFT_TEST_DEBUG=1 shows the verifier)",
			   strerror(errno));
	/* The inbound object declares the same maps (dp_inbound.c shares them). */
	inbound = mesh_inbound__open_and_load();
	cr_assert_not_null(inbound, "load mesh_inbound: %s", strerror(errno));
	bpf_object__for_each_map(map, inbound->obj) {
		if (!bpf_map__is_internal(map))
			cr_expect_not_null(bpf_object__find_map_by_name(skel->obj,
									bpf_map__name(map)),
					   "mesh_inbound's map %s is not mesh_redirect's",
					   bpf_map__name(map));
	}
	mesh_inbound__destroy(inbound);
	bpf_object__for_each_map(map, skel->obj) {
		const char *name = bpf_map__name(map);
		size_t i;

		if (bpf_map__is_internal(map))
			continue;
		cr_expect_leq(strlen(name), 15, "%s: the kernel keeps 15 characters", name);
		for (i = 0; i < n_want && strcmp(want[i].name, name); i++)
			;
		if (i == n_want) {
			cr_expect_fail("map %s is not checked against abi.h here: add it", name);
			continue;
		}
		seen++;
		cr_expect_eq(bpf_map__type(map), want[i].type, "%s type", name);
		cr_expect_eq(bpf_map__key_size(map), want[i].key, "%s key size", name);
		cr_expect_eq(bpf_map__value_size(map), want[i].value, "%s value size", name);
		cr_expect_eq(bpf_map__max_entries(map), want[i].max_entries, "%s max_entries",
			     name);
	}
	cr_expect_eq(seen, n_want, "every map of abi.h exists in the object");
	cr_expect_eq(sizeof(pinned_maps) / sizeof(pinned_maps[0]), n_want);
	mesh_redirect__destroy(skel);
}

/* The number of CO-RE relocation records in the .BTF.ext section of the BPF
 * ELF object @elf (layout: the kernel's Documentation/bpf/btf.rst, ".BTF.ext
 * section"), or -1 when the object cannot be read.
 */
static long core_relocations(const unsigned char *elf, size_t size)
{
	const unsigned char *ext = NULL, *p, *end;
	__u32 ext_size = 0, hdr_len, off, len, rec_size;
	Elf64_Shdr sh, names;
	Elf64_Ehdr eh;
	long n = 0;

	/* The skeleton embeds the object as a string: unaligned, so copied out. */
	if (size < sizeof(eh))
		return -1;
	memcpy(&eh, elf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_shstrndx >= eh.e_shnum ||
	    eh.e_shoff + (size_t)eh.e_shnum * sizeof(sh) > size)
		return -1;
	memcpy(&names, elf + eh.e_shoff + eh.e_shstrndx * sizeof(sh), sizeof(names));
	for (int i = 0; i < eh.e_shnum; i++) {
		memcpy(&sh, elf + eh.e_shoff + i * sizeof(sh), sizeof(sh));
		if (names.sh_offset + sh.sh_name < size &&
		    !strcmp((const char *)elf + names.sh_offset + sh.sh_name, ".BTF.ext") &&
		    sh.sh_offset + sh.sh_size <= size) {
			ext = elf + sh.sh_offset;
			ext_size = (__u32)sh.sh_size;
		}
	}
	if (!ext || ext_size < 8)
		return -1;
	memcpy(&hdr_len, ext + 4, sizeof(hdr_len));
	/* core_relo_off and core_relo_len are the header's optional tail. */
	if (hdr_len < 32)
		return 0;
	memcpy(&off, ext + 24, sizeof(off));
	memcpy(&len, ext + 28, sizeof(len));
	if (!len)
		return 0;
	if ((size_t)hdr_len + off + len > ext_size || len < 4)
		return -1;
	p = ext + hdr_len + off;
	end = p + len;
	memcpy(&rec_size, p, sizeof(rec_size));
	/* Then per ELF section: its name's offset, its record count, records. */
	for (p += 4; p + 8 <= end;) {
		__u32 num;

		memcpy(&num, p + 4, sizeof(num));
		n += num;
		p += 8 + (size_t)num * rec_size;
	}
	return n;
}

/* mesh_inbound is loaded once per meshed pod; with no CO-RE relocation
 * libbpf loads it without parsing the kernel's BTF (bpf/inbound.bpf.c says
 * why none is needed). mesh_redirect reads kernel-internal socket fields and
 * must have them.
 */
Test(skel, inbound_needs_no_kernel_btf)
{
	size_t size = 0;
	const void *elf;

	elf = mesh_redirect__elf_bytes(&size);
	cr_assert_gt(core_relocations(elf, size), 0,
		     "mesh_redirect has CO-RE relocations (the reader of .BTF.ext works)");
	elf = mesh_inbound__elf_bytes(&size);
	cr_assert_eq(core_relocations(elf, size), 0,
		     "mesh_inbound has no CO-RE relocation: each one would make every per-pod "
		     "load parse the kernel's BTF");
}

/* ---------------------------------------------------------------- dp_* */

Test(dp, probe_finds_every_feature)
{
	char why[256] = "";
	int err;

	require_root();
	err = dp_probe(why, sizeof(why));
	cr_assert_eq(err, 0, "dp_probe: %s (%s)", why, strerror(-err));
}

Test(dp, probe_lists_every_feature_present)
{
	struct dp_feature f[64];
	int n;

	require_root();
	n = dp_probe_features(NULL, 0);
	cr_assert(n > 0 && n <= 64, "%d features", n);
	cr_assert_eq(dp_probe_features(f, (size_t)n), n);
	for (int i = 0; i < n; i++) {
		cr_expect(f[i].present, "%s (%s, Linux %s) is missing on this kernel", f[i].name,
			  f[i].what, f[i].min_kernel);
		cr_expect_not(f[i].hidden);
	}
}

static const struct dp_feature *feature(const struct dp_feature *f, int n, const char *name)
{
	for (int i = 0; i < n; i++) {
		if (!strcmp(f[i].name, name))
			return &f[i];
	}
	cr_assert_fail("no feature %s", name);
	return NULL;
}

Test(dp, probe_hides_what_weft_probe_hide_names)
{
	struct dp_feature f[64];
	char why[256] = "";
	int n;

	require_root();
	cr_assert_eq(setenv("WEFT_PROBE_HIDE", "map_lru_hash,prog_sk_lookup", 1), 0);
	n = dp_probe_features(f, 64);
	cr_assert(n > 0 && n <= 64);
	cr_expect_not(feature(f, n, "prog_sk_lookup")->present);
	cr_expect(feature(f, n, "prog_sk_lookup")->hidden);
	cr_expect_not(feature(f, n, "map_lru_hash")->present);
	cr_expect(feature(f, n, "btf")->present);
	cr_expect(feature(f, n, "map_sockhash")->present, "only the named ones are hidden");
	cr_expect_eq(dp_probe(why, sizeof(why)), -EOPNOTSUPP);
	cr_expect(strstr(why, "prog_sk_lookup") && strstr(why, "WEFT_PROBE_HIDE"),
		  "dp_probe names the first hidden feature: %s", why);

	cr_assert_eq(setenv("WEFT_PROBE_HIDE", "ebpf", 1), 0);
	cr_assert_eq(dp_probe_features(f, 64), n);
	for (int i = 0; i < n; i++)
		cr_expect(f[i].hidden && !f[i].present, "%s not hidden by 'ebpf'", f[i].name);
	cr_expect_eq(dp_probe(why, sizeof(why)), -EOPNOTSUPP);
	cr_expect(strstr(why, "btf"), "the first feature: %s", why);

	cr_assert_eq(setenv("WEFT_PROBE_HIDE", "", 1), 0);
	cr_expect_eq(dp_probe(why, sizeof(why)), 0, "%s", why);
}

Test(dp, counter_names_cover_every_reason)
{
	cr_expect_str_eq(dp_counter_name(MESH_R_REDIRECTED), "redirected");
	cr_expect_str_eq(dp_counter_name(MESH_R_ORIG_MISS), "orig_miss");
	cr_expect_str_eq(dp_counter_name(MESH_R_IN_CAPTURED), "inbound_captured");
	cr_expect_str_eq(dp_counter_name(MESH_R_IN_ASSIGN_FAIL), "inbound_assign_fail");
	for (size_t i = 0; i < MESH_R_MAX; i++)
		cr_expect_not_null(dp_counter_name(i), "reason %zu has no name", i);
	cr_expect_null(dp_counter_name(MESH_R_MAX));
}

Test(dp, open_pins_maps_and_links, .init = fx_setup_dp, .fini = fx_teardown)
{
	struct mesh_config cfg = { 0 };
	char pin[PATH_MAX];
	__u32 key = 0, ids[4];
	int fd;

	for (size_t i = 0; i < sizeof(pinned_maps) / sizeof(pinned_maps[0]); i++)
		cr_expect(exists(fx.pin_dir, "maps", pinned_maps[i]), "map pin %s", pinned_maps[i]);
	for (size_t i = 0; i < N_LINKS; i++) {
		cr_expect(exists(fx.pin_dir, "links", pinned_links[i]), "link pin %s",
			  pinned_links[i]);
		cr_expect_eq(fx_query(fx.cgroup, attach_types[i], ids, 4), 1, "%s attached once",
			     pinned_links[i]);
		cr_expect_eq(link_info(pinned_links[i]).prog_id, ids[0],
			     "the pinned link of %s is the attached program", pinned_links[i]);
	}

	snprintf(pin, sizeof(pin), "%s/maps/mesh_config", fx.pin_dir);
	fd = bpf_obj_get(pin);
	cr_assert_geq(fd, 0, "open '%s'", pin);
	cr_assert_eq(bpf_map_lookup_elem(fd, &key, &cfg), 0);
	close(fd);
	cr_expect_eq(cfg.mark, FX_MARK, "dp_open writes the agent mark");
	cr_expect_eq(cfg.inbound_mark, FX_INBOUND_MARK, "and the inbound-side mark");
	cr_expect_eq(cfg.agent_cgroup_id, fx.opts.agent_cgroup_id, "and the agent's cgroup");
	cr_expect_eq(cfg.agent_cgroup_level, fx.opts.agent_cgroup_level);
	cr_expect_neq(cfg.agent_cgroup_id, 0);
	cr_expect_geq(cfg.agent_cgroup_level, 2, "a child of the test cgroup");
}

struct pods_seen {
	size_t n;
	uint64_t cookies[4];
	struct dp_pod pods[4];
};

static int collect(uint64_t cookie, const struct dp_pod *pod, void *ctx)
{
	struct pods_seen *s = ctx;

	cr_assert_lt(s->n, 4);
	s->cookies[s->n] = cookie;
	s->pods[s->n++] = *pod;
	return 0;
}

static int stop_at_first(uint64_t cookie, const struct dp_pod *pod, void *ctx)
{
	(void)cookie;
	(void)pod;
	(void)ctx;
	return 5;
}

static const struct dp_pod *find(const struct pods_seen *s, uint64_t cookie)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->cookies[i] == cookie)
			return &s->pods[i];
	}
	return NULL;
}

Test(dp, pods_round_trip, .init = fx_setup_dp, .fini = fx_teardown)
{
	struct dp_pod a = { .pod_id = 1, .proxy_port = FX_PROXY_PORT, .capture = true,
			    .excl_ports = { 22, 443 }, .inbound_port = 15006,
			    .excl_in_ports = { [0] = 9090, [DP_MAX_EXCL_PORTS - 1] = 22 } };
	struct dp_pod b = { .pod_id = 2, .proxy_port = 15002 };
	struct dp_pod bad;
	struct pods_seen seen = { 0 };
	const struct dp_pod *got;
	struct dp_cidr host_bits;

	a.excl_cidrs[0] = fx_cidr("198.18.0.0/24");
	a.excl_cidrs[1] = fx_cidr("fd57:6566:7400::/48");
	/* Host bits are cleared on the way in, as the programs compare masked. */
	host_bits = fx_cidr("198.19.0.0/16");
	host_bits.net.ip.v4.s_addr = inet_addr("198.19.7.7");
	a.excl_cidrs[DP_MAX_EXCL_CIDRS - 1] = host_bits;

	cr_assert_eq(dp_pod_upsert(fx.dp, 101, &a), 0);
	cr_assert_eq(dp_pod_upsert(fx.dp, 102, &b), 0);
	cr_assert_eq(dp_pod_for_each(fx.dp, collect, &seen), 0);
	cr_assert_eq(seen.n, 2);
	got = find(&seen, 101);
	cr_assert_not_null(got);
	cr_expect_eq(got->pod_id, 1);
	cr_expect_eq(got->proxy_port, FX_PROXY_PORT);
	cr_expect(got->capture);
	cr_expect_eq(got->excl_ports[0], 22);
	cr_expect_eq(got->excl_ports[1], 443);
	cr_expect_eq(got->excl_ports[2], 0);
	cr_expect_eq(got->inbound_port, 15006);
	cr_expect_eq(got->excl_in_ports[0], 9090);
	cr_expect_eq(got->excl_in_ports[1], 0);
	cr_expect_eq(got->excl_in_ports[DP_MAX_EXCL_PORTS - 1], 22);
	cr_expect(addr_ip_equal(&got->excl_cidrs[0].net, &a.excl_cidrs[0].net));
	cr_expect_eq(got->excl_cidrs[0].prefix_len, 24);
	cr_expect(addr_ip_equal(&got->excl_cidrs[1].net, &a.excl_cidrs[1].net));
	cr_expect_eq(got->excl_cidrs[1].prefix_len, 48);
	cr_expect_eq(got->excl_cidrs[2].net.family, 0, "unused slot stays unused");
	cr_expect_eq(got->excl_cidrs[DP_MAX_EXCL_CIDRS - 1].net.ip.v4.s_addr,
		     inet_addr("198.19.0.0"));
	got = find(&seen, 102);
	cr_assert_not_null(got);
	cr_expect_not(got->capture);
	cr_expect_eq(got->proxy_port, 15002);
	cr_expect_eq(got->inbound_port, 0, "no inbound capture");

	/* Upsert replaces; del removes; a missing pod is not an error. */
	b.capture = true;
	cr_assert_eq(dp_pod_upsert(fx.dp, 102, &b), 0);
	cr_assert_eq(dp_pod_del(fx.dp, 101), 0);
	cr_assert_eq(dp_pod_del(fx.dp, 101), 0);
	memset(&seen, 0, sizeof(seen));
	cr_assert_eq(dp_pod_for_each(fx.dp, collect, &seen), 0);
	cr_assert_eq(seen.n, 1);
	cr_expect_eq(seen.cookies[0], 102);
	cr_expect(seen.pods[0].capture);
	cr_expect_eq(dp_pod_for_each(fx.dp, stop_at_first, NULL), 5, "a non-zero stop is returned");

	/* What the programs could not honour is refused, not stored. */
	bad = (struct dp_pod){ .pod_id = 3, .capture = true };
	cr_expect_eq(dp_pod_upsert(fx.dp, 103, &bad), -EINVAL, "capture to port 0");
	bad = a;
	bad.inbound_port = bad.proxy_port;
	cr_expect_eq(dp_pod_upsert(fx.dp, 103, &bad), -EINVAL, "one port for both listeners");
	bad = a;
	bad.excl_cidrs[0].prefix_len = 33;
	cr_expect_eq(dp_pod_upsert(fx.dp, 103, &bad), -EINVAL, "IPv4 /33");
	bad = a;
	bad.excl_cidrs[2].prefix_len = 8;
	cr_expect_eq(dp_pod_upsert(fx.dp, 103, &bad), -EINVAL, "prefix without family");
	memset(&seen, 0, sizeof(seen));
	cr_assert_eq(dp_pod_for_each(fx.dp, collect, &seen), 0);
	cr_expect_eq(seen.n, 1);
}

Test(dp, reopen_takes_over_links_and_keeps_maps, .init = fx_setup_dp, .fini = fx_teardown)
{
	struct dp_pod pod = { .pod_id = 9, .proxy_port = FX_PROXY_PORT, .capture = true };
	struct bpf_link_info before[N_LINKS], after;
	struct pods_seen seen = { 0 };
	struct dp *second = NULL;
	__u32 ids[4];

	cr_assert_eq(dp_pod_upsert(fx.dp, 4242, &pod), 0);
	for (size_t i = 0; i < N_LINKS; i++)
		before[i] = link_info(pinned_links[i]);

	/* A rolling restart: the new agent starts while the old one still runs. */
	cr_assert_eq(dp_open(&second, &fx.opts), 0, "second dp_open over the same pins");
	dp_close(fx.dp);
	fx.dp = second;

	cr_assert_eq(dp_pod_for_each(fx.dp, collect, &seen), 0);
	cr_expect_eq(seen.n, 1, "the pods map was reused, not recreated");
	cr_expect_eq(seen.cookies[0], 4242);
	for (size_t i = 0; i < N_LINKS; i++) {
		after = link_info(pinned_links[i]);
		cr_expect_eq(after.id, before[i].id, "%s: the same link, updated in place",
			     pinned_links[i]);
		cr_expect_neq(after.prog_id, before[i].prog_id, "%s: runs the new program",
			      pinned_links[i]);
		cr_expect_eq(fx_query(fx.cgroup, attach_types[i], ids, 4), 1,
			     "%s: one program attached, not two", pinned_links[i]);
		cr_expect_eq(ids[0], after.prog_id);
	}
}

/* Decision counters pinned by an agent that knew fewer reasons (an upgrade
 * that added one) do not make the load fail: they start afresh, sized for
 * this agent's reasons, and the other maps are kept.
 */
Test(dp, counters_of_another_size_start_afresh, .init = fx_setup_env, .fini = fx_teardown)
{
	char dir[PATH_MAX], pin[PATH_MAX + 32];
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int fd, err;

	snprintf(dir, sizeof(dir), "%s/maps", fx.pin_dir);
	cr_assert_eq(mkdir_p(dir), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "mesh_metrics", sizeof(__u32),
			    sizeof(__u64), MESH_R_MAX - 1, NULL);
	cr_assert_geq(fd, 0, "create: %s", strerror(errno));
	snprintf(pin, sizeof(pin), "%s/mesh_metrics", dir);
	cr_assert_eq(bpf_obj_pin(fd, pin), 0, "pin: %s", strerror(errno));
	close(fd);

	err = dp_open(&fx.dp, &fx.opts);
	cr_assert_eq(err, 0, "dp_open over older counters: %s", strerror(-err));
	fd = bpf_obj_get(pin);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	cr_expect_eq(info.max_entries, MESH_R_MAX, "the pinned counters have %u slots",
		     info.max_entries);
}

Test(dp, cleanup_leaves_nothing, .init = fx_setup_dp, .fini = fx_teardown)
{
	struct dp_pod pod = { .pod_id = 9, .proxy_port = FX_PROXY_PORT, .capture = true };
	struct stat st;
	__u32 ids[4];

	cr_assert_eq(dp_pod_upsert(fx.dp, 4242, &pod), 0);
	cr_assert_eq(dp_cleanup(&fx.opts), 0);
	for (size_t i = 0; i < N_LINKS; i++)
		cr_expect_eq(fx_query(fx.cgroup, attach_types[i], ids, 4), 0, "%s still attached",
			     pinned_links[i]);
	cr_expect_eq(stat(fx.pin_dir, &st), -1, "'%s' is gone", fx.pin_dir);
	cr_expect_eq(errno, ENOENT);
	cr_expect_eq(dp_cleanup(&fx.opts), 0, "cleaning twice is fine");
	/* The in-memory dp outlives its pins; closing it must not bring anything back. */
	dp_close(fx.dp);
	fx.dp = NULL;
	for (size_t i = 0; i < N_LINKS; i++)
		cr_expect_eq(fx_query(fx.cgroup, attach_types[i], ids, 4), 0);
}

Test(dp, refuses_a_folder_outside_bpffs, .init = fx_setup_env, .fini = fx_teardown)
{
	char dir[PATH_MAX];
	struct dp_opts opts = fx.opts;
	struct dp *dp = NULL;
	struct stat st;
	__u32 ids[4];

	snprintf(dir, sizeof(dir), "/tmp/weft-not-bpffs-%d/pins", (int)getpid());
	opts.bpffs_dir = dir;
	cr_expect_eq(dp_open(&dp, &opts), -ENOTSUP);
	cr_expect_null(dp);
	cr_expect_eq(stat(dir, &st), -1, "nothing created outside a bpffs");
	for (size_t i = 0; i < N_LINKS; i++)
		cr_expect_eq(fx_query(fx.cgroup, attach_types[i], ids, 4), 0);
}

/* An agent cgroup every socket below the attach cgroup descends from would
 * make every socket the agent's: none, the root, the attach cgroup itself.
 * Nothing is attached.
 */
Test(dp, refuses_an_agent_cgroup_that_would_exempt_every_socket, .init = fx_setup_env,
     .fini = fx_teardown)
{
	struct dp_opts opts = fx.opts;
	struct dp *dp = NULL;
	__u32 ids[4];

	opts.agent_cgroup_id = 0;
	cr_expect_eq(dp_open(&dp, &opts), -EINVAL, "no agent cgroup");
	opts = fx.opts;
	opts.agent_cgroup_level = 0;
	cr_expect_eq(dp_open(&dp, &opts), -EINVAL, "the root");
	opts = fx.opts;
	cr_assert_eq(cgroup_id_of(fx.cgroup, &opts.agent_cgroup_id, &opts.agent_cgroup_level), 0);
	cr_expect_eq(dp_open(&dp, &opts), -EINVAL, "the attach cgroup itself");
	cr_expect_null(dp);
	for (size_t i = 0; i < N_LINKS; i++)
		cr_expect_eq(fx_query(fx.cgroup, attach_types[i], ids, 4), 0);
}

Test(dp, refuses_links_of_another_cgroup, .init = fx_setup_dp, .fini = fx_teardown)
{
	struct dp_opts opts = fx.opts;
	struct dp *dp = NULL;
	__u32 ids[4];
	int err;

	err = tcg_create(fx.cgroup2, sizeof(fx.cgroup2));
	cr_assert_eq(err, 0, "second cgroup: %s", strerror(-err));
	opts.cgroup_path = fx.cgroup2;
	cr_expect_eq(dp_open(&dp, &opts), -EEXIST, "one bpffs folder, one cgroup");
	for (size_t i = 0; i < N_LINKS; i++) {
		cr_expect_eq(fx_query(fx.cgroup2, attach_types[i], ids, 4), 0);
		cr_expect_eq(fx_query(fx.cgroup, attach_types[i], ids, 4), 1);
	}
}

Test(dp, replaces_links_whose_cgroup_is_gone, .init = fx_setup_dp, .fini = fx_teardown)
{
	__u32 ids[4];
	int err;

	dp_close(fx.dp);
	fx.dp = NULL;
	err = tcg_remove(fx.agent_cgroup);
	cr_assert_eq(err, 0, "remove the agent's cgroup: %s", strerror(-err));
	fx.agent_cgroup[0] = '\0';
	err = tcg_remove(fx.cgroup);
	cr_assert_eq(err, 0, "remove the first cgroup: %s", strerror(-err));
	fx.cgroup[0] = '\0';
	err = tcg_create(fx.cgroup2, sizeof(fx.cgroup2));
	cr_assert_eq(err, 0, "second cgroup: %s", strerror(-err));
	fx.opts.cgroup_path = fx.cgroup2;
	/* The agent's cgroup moves with it, below the new attach cgroup. */
	snprintf(fx.agent_cgroup, sizeof(fx.agent_cgroup), "%.*s/agent", FX_PATH_MAX - 8,
		 fx.cgroup2);
	cr_assert_eq(mkdir(fx.agent_cgroup, 0755), 0, "mkdir %s: %s", fx.agent_cgroup,
		     strerror(errno));
	cr_assert_eq(cgroup_id_of(fx.agent_cgroup, &fx.opts.agent_cgroup_id,
				  &fx.opts.agent_cgroup_level), 0);
	cr_assert_eq(dp_open(&fx.dp, &fx.opts), 0, "stale links are replaced");
	for (size_t i = 0; i < N_LINKS; i++)
		cr_expect_eq(fx_query(fx.cgroup2, attach_types[i], ids, 4), 1, "%s",
			     pinned_links[i]);
}
