// SPDX-License-Identifier: GPL-2.0-only
/* The capture mode of this agent and the per-pod verbs on top of the eBPF
 * datapath (dp.h), the nft table (nft.h) and the inbound return path
 * (retpath.h). The mode is decided once, here, so nothing else asks "which
 * mode?" on a hot path: the pods table calls capture_pod_apply() and the
 * right mechanism does the rest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "capture.h"
#include "cgroup.h"
#include "dp.h"
#include "log.h"
#include "nft.h"
#include "retpath.h"

#define CAPTURE_DNS_SEEN 64	/* a cluster has a handful of resolvers */

struct capture {
	enum capture_mode mode;
	char why[640];
	struct dp *dp;			/* eBPF mode only */
	uint64_t agent_cgroup_id;	/* both modes: the agent's sockets are its */
	uint32_t agent_cgroup_level;
	uint32_t fail_open_after_ms;	/* 0: no pod fails open */
	struct retpath ret;
	/* eBPF mode: slots of mesh_dns_up already read. A slot is written once
	 * (BPF_NOEXIST) and never emptied, so what was read stays true; a
	 * forwarded query then costs no map lookup (a system call).
	 */
	struct {
		uint32_t addr;			/* 127.53.X.Y or 127.54.X.Y, host order; 0: none */
		struct sockaddr_storage resolver;
	} dns_up_seen[CAPTURE_DNS_SEEN];
};

static const char *const mode_names[CAPTURE_MODES] = {
	[CAPTURE_EBPF] = "ebpf",
	[CAPTURE_NFT] = "nft",
};

const char *capture_mode_name(enum capture_mode m)
{
	return m < CAPTURE_MODES ? mode_names[m] : "?";
}

enum capture_mode capture_mode(const struct capture *c)
{
	return c->mode;
}

const char *capture_why(const struct capture *c)
{
	return c->why;
}

struct dp *capture_dp(const struct capture *c)
{
	return c->mode == CAPTURE_EBPF ? c->dp : NULL;
}

/* Whether the eBPF mode works here: every feature, then the programs loaded
 * as the datapath will run them (kept in c->dp for capture_open() to attach:
 * the probe's last check and the datapath's load are one load). 0; -EOPNOTSUPP
 * or -EPERM with *@unavailable set and @why saying what the kernel lacks or
 * refused; another -errno (logged) when the datapath could not be prepared.
 */
static int probe_ebpf(struct capture *c, const struct dp_opts *dpo, bool *unavailable, char *why,
		      size_t len)
{
	bool refused = false;
	int err;

	*unavailable = true;
	err = dp_probe_kernel(why, len);
	if (err)
		return err;
	err = dp_load(&c->dp, dpo, &refused);
	if (!err) {
		err = dp_inbound_try(c->dp);
		refused = err != 0;
		if (err) {
			dp_close(c->dp);
			c->dp = NULL;
		}
	}
	if (err && refused)
		return dp_probe_refused(err, why, len);
	*unavailable = false;
	if (err)
		snprintf(why, len, "cannot load the eBPF datapath: %s", strerror(-err));
	return err;
}

/* Decide the mode: what was asked for, or for "auto" the first mode whose
 * probe passes; in eBPF mode c->dp is loaded, not attached yet. @why says
 * why (or what is missing). 0 or -errno.
 */
static int choose(struct capture *c, const char *asked, const struct dp_opts *dpo, char *why,
		  size_t len)
{
	char ebpf_why[256], nft_why[256];
	bool unavailable;
	int err;

	if (!strcmp(asked, "ebpf") || !strcmp(asked, "auto")) {
		err = probe_ebpf(c, dpo, &unavailable, ebpf_why, sizeof(ebpf_why));
		if (!err) {
			c->mode = CAPTURE_EBPF;
			snprintf(why, len, "%s: every eBPF hook and helper is present",
				 !strcmp(asked, "auto") ? "auto" : "asked for with --mode ebpf");
			return 0;
		}
		if (!unavailable) {
			snprintf(why, len, "%s", ebpf_why);
			return err;
		}
		if (!strcmp(asked, "ebpf")) {
			snprintf(why, len, "eBPF mode needs what this kernel lacks: %s", ebpf_why);
			return err;
		}
	}
	if (strcmp(asked, "nft") && strcmp(asked, "auto")) {
		snprintf(why, len, "option --mode: '%s' is not auto, ebpf or nft", asked);
		return -EINVAL;
	}
	err = nft_probe(nft_why, sizeof(nft_why));
	if (err) {
		if (!strcmp(asked, "auto"))
			snprintf(why, len, "no capture mode works here: eBPF: %s; nft: %s", ebpf_why,
				 nft_why);
		else
			snprintf(why, len, "nft mode needs what this kernel lacks: %s", nft_why);
		return err;
	}
	c->mode = CAPTURE_NFT;
	if (!strcmp(asked, "auto"))
		snprintf(why, len, "auto: eBPF mode unavailable (%s)", ebpf_why);
	else
		snprintf(why, len, "asked for with --mode nft");
	return 0;
}

int capture_open(struct capture **out, const struct capture_opts *o, char *why, size_t len)
{
	struct dp_opts dpo = {
		.cgroup_path = o->cgroup_path,
		.bpffs_dir = o->bpffs_dir,
		.mark = o->mark,
		.inbound_mark = o->inbound_mark,
	};
	struct capture *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->ret = (struct retpath){
		.mark = o->inbound_mark,
		.table = o->return_table,
		.priority = o->return_priority,
	};
	c->fail_open_after_ms = o->fail_open_after_ms;
	/* Three beats at least: a control loop late by a second or two (a
	 * large registry update, a slow scrape) must never look like a dead
	 * agent, which would send fail-open pods around the mesh.
	 */
	if (c->fail_open_after_ms && c->fail_open_after_ms < 3 * CAPTURE_HEARTBEAT_MS) {
		snprintf(why, len, "option --fail-open-after: %u ms is below %u (three heartbeats)",
			 c->fail_open_after_ms, 3 * CAPTURE_HEARTBEAT_MS);
		err = -EINVAL;
		goto out_free;
	}
	err = choose(c, o->mode, &dpo, c->why, sizeof(c->why));
	if (err) {
		snprintf(why, len, "%s", c->why);
		goto out_free;
	}
	/* Both modes tell the agent's own sockets (its upstream connections,
	 * its connections to applications) from the pods' by the agent's
	 * cgroup: a pod cannot move into it, while it can set any SO_MARK.
	 */
	err = cgroup_self_id(&c->agent_cgroup_id, &c->agent_cgroup_level);
	if (!err && !c->agent_cgroup_level)
		err = -EPERM;
	if (err) {
		snprintf(why, len,
			 "the capture modes recognise the agent's sockets by their cgroup v2, and this process has none below the root: %s",
			 strerror(-err));
		goto out_free;
	}
	dpo.agent_cgroup_id = c->agent_cgroup_id;
	dpo.agent_cgroup_level = c->agent_cgroup_level;
	if (c->mode == CAPTURE_EBPF) {
		err = dp_attach(c->dp, &dpo);
		if (err) {
			snprintf(why, len, "cannot attach the eBPF datapath: %s", strerror(-err));
			goto out_free;
		}
	} else {
		/* An earlier agent may have run in eBPF mode: its programs would
		 * still steer pods' connections to listeners that now see them
		 * twice. Nothing of it may stay.
		 */
		err = dp_cleanup(&dpo);
		if (err)
			log_warn("capture: cannot remove the eBPF mode's pins under '%s': %s, ignoring",
				 o->bpffs_dir, strerror(-err));
	}
	snprintf(why, len, "%s", c->why);
	*out = c;
	return 0;
out_free:
	dp_close(c->dp);
	free(c);
	return err;
}

void capture_close(struct capture *c)
{
	if (!c)
		return;
	dp_close(c->dp);
	free(c);
}

int capture_cleanup(const struct capture_opts *o, const int *netns_fds, size_t n)
{
	const struct dp_opts dpo = {
		.cgroup_path = o->cgroup_path,
		.bpffs_dir = o->bpffs_dir,
		.mark = o->mark,
		.inbound_mark = o->inbound_mark,
	};
	const struct retpath ret = {
		.mark = o->inbound_mark,
		.table = o->return_table,
		.priority = o->return_priority,
	};
	int err = dp_cleanup(&dpo), e;

	for (size_t i = 0; i < n; i++) {
		e = nft_pod_remove(netns_fds[i]);
		err = err ?: e;
		e = retpath_remove(netns_fds[i], &ret, -1);
		err = err ?: e;
	}
	return err;
}

static void to_dp(const struct capture *c, const struct capture_pod *p, struct dp_pod *d)
{
	memset(d, 0, sizeof(*d));
	d->pod_id = p->pod_id;
	d->proxy_port = p->outbound_port;
	d->capture = true;
	d->inbound_port = p->inbound_port;
	for (size_t i = 0; i < p->n_excl_out_ports && i < DP_MAX_EXCL_PORTS; i++)
		d->excl_ports[i] = p->excl_out_ports[i];
	for (size_t i = 0; i < p->n_excl_out_cidrs && i < DP_MAX_EXCL_CIDRS; i++) {
		d->excl_cidrs[i].net = p->excl_out_cidrs[i].net;
		d->excl_cidrs[i].prefix_len = p->excl_out_cidrs[i].prefix_len;
	}
	for (size_t i = 0; i < p->n_excl_in_ports && i < DP_MAX_EXCL_PORTS; i++)
		d->excl_in_ports[i] = p->excl_in_ports[i];
	d->deny_raw = p->deny_raw;
	d->fail_open = p->fail_open && c->fail_open_after_ms;
	d->dns_port = p->dns_port;
}

static void to_nft(const struct capture *c, const struct capture_pod *p,
		   struct nft_pod_rules *r)
{
	memset(r, 0, sizeof(*r));
	r->outbound_port = p->outbound_port;
	r->inbound_port = p->inbound_port;
	r->agent_cgroup_id = c->agent_cgroup_id;
	r->agent_cgroup_level = c->agent_cgroup_level;
	for (size_t i = 0; i < p->n_excl_out_ports && i < NFT_EXCL_PORTS_MAX; i++)
		r->excl_out_ports[r->n_excl_out_ports++] = p->excl_out_ports[i];
	for (size_t i = 0; i < p->n_excl_out_cidrs && i < NFT_EXCL_CIDRS_MAX; i++)
		r->excl_out_cidrs[r->n_excl_out_cidrs++] = p->excl_out_cidrs[i];
	for (size_t i = 0; i < p->n_excl_in_ports && i < NFT_EXCL_PORTS_MAX; i++)
		r->excl_in_ports[r->n_excl_in_ports++] = p->excl_in_ports[i];
	r->fail_open = p->fail_open && c->fail_open_after_ms;
	r->fail_open_after_ms = c->fail_open_after_ms;
	r->dns_port = p->dns_port;
}

int capture_pod_apply(struct capture *c, const struct capture_target *t,
		      const struct capture_pod *p, int *sysctls_before)
{
	struct dp_pod d;
	struct nft_pod_rules r;
	int err, before = -1;

	/* The return path first: from the moment inbound connections are
	 * captured, the application's replies must find their way back.
	 */
	if (p->inbound_port) {
		err = retpath_apply(t->netns_fd, &c->ret, &before);
		if (err)
			return log_errno(err, "capture: inbound return path of pod=%u", p->pod_id);
		if (sysctls_before)
			*sysctls_before = before;
	}
	if (c->mode == CAPTURE_NFT) {
		if (p->deny_raw)
			log_warn("capture: pod=%u asks to refuse raw sockets "
				 "(weft.io/deny-raw-sockets), which nft mode cannot do: "
				 "drop NET_RAW from its containers instead", p->pod_id);
		to_nft(c, p, &r);
		err = nft_pod_apply(t->netns_fd, &r);
		return err < 0 ? log_errno(err, "capture: nft table of pod=%u", p->pod_id) : 0;
	}
	if (t->adopted) {
		/* nft mode's table would redirect what the programs redirect. */
		err = nft_pod_remove(t->netns_fd);
		if (err)
			log_warn("capture: cannot remove an earlier nft mode's table of pod=%u: %s, ignoring",
				 p->pod_id, strerror(-err));
	}
	to_dp(c, p, &d);
	err = dp_pod_upsert(c->dp, t->netns_cookie, &d);
	if (err)
		return log_errno(err, "capture: pods map entry of pod=%u", p->pod_id);
	if (p->inbound_port) {
		err = dp_inbound_attach(c->dp, t->netns_fd, t->netns_cookie, t->lfd4, t->lfd6);
		if (err)
			return log_errno(err, "capture: sk_lookup of pod=%u", p->pod_id);
	} else {
		(void)dp_inbound_detach(c->dp, t->netns_cookie);
	}
	return 0;
}

int capture_pod_remove(struct capture *c, const struct capture_target *t,
		       int sysctls_before)
{
	int err = 0, e;

	if (c->mode == CAPTURE_NFT) {
		err = nft_pod_remove(t->netns_fd);
	} else if (t->netns_cookie) {
		err = dp_inbound_detach(c->dp, t->netns_cookie);
		e = dp_pod_del(c->dp, t->netns_cookie);
		err = err ?: e;
	}
	e = retpath_remove(t->netns_fd, &c->ret, sysctls_before);
	return err ?: e;
}

static bool ports_equal(const uint16_t *a, const uint16_t *b, size_t n)
{
	return !memcmp(a, b, n * sizeof(*a));
}

int capture_pod_verify(struct capture *c, const struct capture_target *t,
		       const struct capture_pod *p, char *msg, size_t len)
{
	struct retpath_state rs;
	int err;

	if (c->mode == CAPTURE_NFT) {
		struct nft_pod_state st;
		struct nft_pod_rules want;

		err = nft_pod_read(t->netns_fd, &st);
		if (err)
			return err;
		to_nft(c, p, &want);
		if (!st.table_present || !nft_pod_state_matches(&st, &want)) {
			snprintf(msg, len, "table inet %s in the pod's netns is %s", NFT_TABLE_NAME,
				 st.table_present ? "not what weft wrote" : "missing");
			return -EIO;
		}
	} else {
		struct dp_pod have, want;
		unsigned int n_listeners = 0;
		bool attached = false;

		err = dp_pod_lookup(c->dp, t->netns_cookie, &have);
		if (err == -ENOENT) {
			snprintf(msg, len, "the pods map has no entry for the pod's netns");
			return -EIO;
		}
		if (err)
			return err;
		to_dp(c, p, &want);
		if (have.proxy_port != want.proxy_port || have.inbound_port != want.inbound_port ||
		    have.deny_raw != want.deny_raw || have.fail_open != want.fail_open ||
		    !ports_equal(have.excl_ports, want.excl_ports, DP_MAX_EXCL_PORTS) ||
		    !ports_equal(have.excl_in_ports, want.excl_in_ports, DP_MAX_EXCL_PORTS)) {
			snprintf(msg, len, "the pods map entry differs from the pod's capture");
			return -EIO;
		}
		if (p->inbound_port) {
			err = dp_inbound_state(c->dp, t->netns_cookie, &attached, &n_listeners);
			if (err)
				return err;
			if (!attached || !n_listeners) {
				snprintf(msg, len, "inbound capture (sk_lookup) is %s",
					 attached ? "attached with no listener" : "not attached");
				return -EIO;
			}
		}
	}
	if (!p->inbound_port)
		return 0;
	err = retpath_read(t->netns_fd, &c->ret, &rs);
	if (err)
		return err;
	if (!rs.rule4 || !rs.route4 || rs.fwmark_accept != 1) {
		snprintf(msg, len, "the inbound return path (rule, route, tcp_fwmark_accept) is incomplete");
		return -EIO;
	}
	return 0;
}

int capture_explain_connect(struct capture *c, const struct capture_target *t,
			    const struct capture_pod *p, const struct addr *dst,
			    struct dp_explain *out)
{
	struct capture_beat beat = { 0 };
	struct dp_pod d;
	int err;

	if (c->mode == CAPTURE_EBPF)
		return dp_explain_connect(c->dp, t->netns_cookie, dst, out);
	if (p) {
		to_dp(c, p, &d);
		err = capture_pod_beat(c, t, p, &beat);
		if (err)
			return err;
	}
	dp_explain_entry(p ? &d : NULL, dst, beat.stale, out);
	out->agent_cgroup_id = c->agent_cgroup_id;
	out->agent_cgroup_level = c->agent_cgroup_level;
	return 0;
}

uint32_t capture_fail_open_after_ms(const struct capture *c)
{
	return c->fail_open_after_ms;
}

int capture_heartbeat(struct capture *c)
{
	/* Written with a threshold of 0 too ("never stale"), so that an
	 * earlier agent's stale beat stops counting once this one runs.
	 */
	if (c->mode != CAPTURE_EBPF)
		return 0;
	return dp_heartbeat(c->dp, (uint64_t)c->fail_open_after_ms * 1000000);
}

int capture_pod_heartbeat(struct capture *c, const struct capture_target *t,
			  const struct capture_pod *p)
{
	if (c->mode != CAPTURE_NFT || !p->fail_open || !c->fail_open_after_ms)
		return 0;
	return nft_pod_heartbeat(t->netns_fd, c->fail_open_after_ms);
}

int capture_pod_beat(struct capture *c, const struct capture_target *t,
		     const struct capture_pod *p, struct capture_beat *out)
{
	uint64_t after_ms = c->fail_open_after_ms, expires_ms = 0;
	struct dp_heartbeat_state hb;
	struct nft_pod_state st;
	bool alive = false;
	int err;

	memset(out, 0, sizeof(*out));
	out->fail_open = p->fail_open && after_ms;
	if (c->mode == CAPTURE_EBPF) {
		err = dp_heartbeat_read(c->dp, &hb);
		if (err)
			return err;
		out->stale = hb.stale;
		out->age_ms = hb.age_ns / 1000000;
		out->left_ms = hb.stale || !hb.stale_after_ns ? 0
				: (hb.stale_after_ns - hb.age_ns) / 1000000;
		return 0;
	}
	if (!out->fail_open)
		return 0;	/* no set: the pod's capture never asks */
	err = nft_pod_alive(t->netns_fd, &alive, &expires_ms);
	if (err && err != -ENOENT)
		return err;
	out->stale = !alive;
	out->left_ms = expires_ms;
	out->age_ms = alive && after_ms > expires_ms ? after_ms - expires_ms : 0;
	err = nft_pod_read(t->netns_fd, &st);
	if (err)
		return err;
	out->failed_open = st.failed_open_out + st.failed_open_in;
	return 0;
}

struct cookie_walk {
	int (*fn)(uint64_t cookie, void *ctx);
	void *ctx;
};

static int each_dp_pod(uint64_t cookie, const struct dp_pod *d, void *ctx)
{
	struct cookie_walk *w = ctx;

	(void)d;
	return w->fn(cookie, w->ctx);
}

int capture_for_each_cookie(struct capture *c, int (*fn)(uint64_t cookie, void *ctx), void *ctx)
{
	struct cookie_walk w = { fn, ctx };

	if (c->mode != CAPTURE_EBPF)
		return 0;
	return dp_pod_for_each(c->dp, each_dp_pod, &w);
}

int capture_drop_cookie(struct capture *c, uint64_t cookie)
{
	int err, e;

	if (c->mode != CAPTURE_EBPF)
		return 0;
	err = dp_inbound_detach(c->dp, cookie);
	e = dp_pod_del(c->dp, cookie);
	return err ?: e;
}

size_t capture_needs(struct capture_need *out, size_t n)
{
	struct dp_feature f[32];
	char why[256];
	size_t k = 0;
	int nf = dp_probe_features(f, sizeof(f) / sizeof(f[0]));

	for (int i = 0; i < nf && k < n; i++, k++) {
		out[k] = (struct capture_need){ .mode = CAPTURE_EBPF, .present = f[i].present };
		snprintf(out[k].name, sizeof(out[k].name), "%s", f[i].name);
		snprintf(out[k].what, sizeof(out[k].what), "%s (Linux %s)", f[i].what,
			 f[i].min_kernel);
	}
	if (k < n) {
		int err = nft_probe(why, sizeof(why));

		out[k] = (struct capture_need){ .mode = CAPTURE_NFT, .present = !err };
		snprintf(out[k].name, sizeof(out[k].name), "%s",
			 err ? "nf_tables" : "nf_tables with nat chains, socket cgroupv2, redirect");
		snprintf(out[k].what, sizeof(out[k].what), "%.150s", why);
		k++;
	}
	return k;
}

int capture_dns_open(struct capture *c, int netns_fd, int *ct_fd)
{
	int fd;

	*ct_fd = -1;
	if (c->mode != CAPTURE_NFT)
		return 0;
	fd = nft_ct_open(netns_fd);
	if (fd < 0)
		return fd;
	*ct_fd = fd;
	return 0;
}

/* eBPF mode: the resolver of slot address @host (127.53.X.Y: an IPv4
 * resolver in mesh_dns_up; 127.54.X.Y: an IPv6 one in mesh_dns_up6).
 */
static int dns_slot_resolver(struct capture *c, uint32_t host, struct sockaddr_storage *out)
{
	uint32_t net = host & MESH_DNS_NET_MASK, slot = host & ~MESH_DNS_NET_MASK;
	typeof(c->dns_up_seen[0]) *seen = &c->dns_up_seen[slot % CAPTURE_DNS_SEEN];
	int err;

	if (net != MESH_DNS_NET && net != MESH_DNS_NET6)
		return -ENOENT;
	if (seen->addr == host) {
		*out = seen->resolver;
		return 0;
	}
	memset(out, 0, sizeof(*out));
	if (net == MESH_DNS_NET) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;
		uint32_t resolver;

		err = dp_dns_resolver(c->dp, slot, &resolver);
		if (err)
			return err;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = resolver;
		in->sin_port = htons(MESH_DNS_PORT);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

		err = dp_dns_resolver6(c->dp, slot, &in6->sin6_addr);
		if (err)
			return err;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(MESH_DNS_PORT);
	}
	seen->addr = host;
	seen->resolver = *out;
	return 0;
}

/* IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h, whose other
 * headers clash with glibc's): the same number as SO_ORIGINAL_DST, at
 * level SOL_IPV6.
 */
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

int capture_dns_resolver(struct capture *c, int ct_fd, bool tcp, int fd,
			 const struct sockaddr *local, const struct sockaddr *peer,
			 struct sockaddr_storage *out)
{
	socklen_t len;

	if (c->mode == CAPTURE_EBPF) {
		/* Every query reaches the responder over IPv4 (127.53/127.54). */
		if (local->sa_family != AF_INET)
			return -ENOENT;
		return dns_slot_resolver(
			c, ntohl(((const struct sockaddr_in *)local)->sin_addr.s_addr), out);
	}
	memset(out, 0, sizeof(*out));
	if (tcp && local->sa_family == AF_INET6) {
		len = sizeof(struct sockaddr_in6);
		return getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &len) == -1 ? -errno
											: 0;
	}
	if (tcp) {
		len = sizeof(struct sockaddr_in);
		return getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &len) == -1 ? -errno : 0;
	}
	if (ct_fd < 0)
		return -EBADF;
	return nft_ct_orig_dst(ct_fd, IPPROTO_UDP, local, peer, out);
}
