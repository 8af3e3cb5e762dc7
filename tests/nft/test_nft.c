// SPDX-License-Identifier: GPL-2.0-only
/* The nft capture mode (agent/datapath/nft.c) on its own, in test-created
 * network namespaces: the table as the kernel reports it (read back here with
 * libnftnl, independently of the module's own reader), idempotence, other
 * tables left alone, and real connections redirected or left alone by the
 * output and prerouting chains, with SO_ORIGINAL_DST answered by conntrack.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter_ipv4.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "addr.h"
#include "datapath/nft.h"

#include "../../agent/cgroup.h"
#include "../helpers/cgroup.h"
#include "../helpers/require.h"
#include "../helpers/sock.h"
#include "../helpers/tns.h"

#define POD "n"			/* the pod netns */
#define PEER "c"		/* a client netns linked to it (inbound) */
#define REAL_V4 "198.18.0.10"
#define EXCL_V4 "198.18.6.6"	/* inside the excluded CIDR 198.18.6.0/24 */
#define REAL_V6 "fd57:6566:7400::10"	/* unique local, on the pod's lo only */
#define EXCL_V6 "fd57:6566:7400:6::6"	/* inside the excluded fd57:6566:7400:6::/64 */
#define POD_V4 "198.18.7.1"	/* the pod's address on the link to PEER */
#define PEER_V4 "198.18.7.2"
#define POD_V6 "fd57:6566:7400:7::1"
#define PEER_V6 "fd57:6566:7400:7::2"
#define EXCL_OUT_PORT 81
#define EXCL_IN_PORT 8081
#define WAIT_MS 2000

static char cg_path[256];
static int pod_fd = -1;

static void setup(void)
{
	char n[64], p[128];

	require_root();
	tns_del_all();
	cr_assert_eq(tns_add(POD), 0);
	cr_assert_eq(tns_add(PEER), 0);
	tns_name(POD, n, sizeof(n));
	/* The "real" servers' addresses live on the pod's lo (the test kernel
	 * may lack the dummy driver); the output hook sees them all the same. */
	cr_assert_eq(tns_sh("ip -n %s addr add " REAL_V4 "/32 dev lo && "
			    "ip -n %s addr add " EXCL_V4 "/32 dev lo && "
			    "ip -n %s addr add " REAL_V6 "/128 dev lo nodad && "
			    "ip -n %s addr add " EXCL_V6 "/128 dev lo nodad",
			    n, n, n, n),
		     0);
	cr_assert_eq(tns_link(POD, PEER), 0);
	cr_assert_eq(tns_sh("ip -n %s addr add " POD_V4 "/24 dev %s-%s && "
			    "ip -n %s addr add " POD_V6 "/64 dev %s-%s nodad",
			    n, POD, PEER, n, POD, PEER),
		     0);
	tns_name(PEER, n, sizeof(n));
	cr_assert_eq(tns_sh("ip -n %s addr add " PEER_V4 "/24 dev %s-%s && "
			    "ip -n %s addr add " PEER_V6 "/64 dev %s-%s nodad",
			    n, PEER, POD, n, PEER, POD),
		     0);
	pod_fd = open(tns_path(POD, p, sizeof(p)), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(pod_fd, 0);
	require(tcg_create(cg_path, sizeof(cg_path)) == 0, "cannot create a test cgroup v2: %s",
		strerror(errno));
}

static void teardown(void)
{
	if (pod_fd >= 0)
		close(pod_fd);
	if (cg_path[0])
		tcg_remove(cg_path);
	tns_del_all();
}

TestSuite(nft, .init = setup, .fini = teardown, .timeout = 60);

/* The rules of every test: the test cgroup plays the agent's. */
static struct nft_pod_rules pod_rules(void)
{
	struct nft_pod_rules r = {
		.outbound_port = 15001,
		.inbound_port = 15006,
		.n_excl_out_ports = 1,
		.excl_out_ports = { EXCL_OUT_PORT },
		.n_excl_out_cidrs = 2,
		.n_excl_in_ports = 1,
		.excl_in_ports = { EXCL_IN_PORT },
	};

	cr_assert_eq(cgroup_id_of(cg_path, &r.agent_cgroup_id, &r.agent_cgroup_level), 0);
	cr_assert_eq(addr_parse_ip("198.18.6.0", &r.excl_out_cidrs[0].net), 0);
	r.excl_out_cidrs[0].prefix_len = 24;
	cr_assert_eq(addr_parse_ip("fd57:6566:7400:6::", &r.excl_out_cidrs[1].net), 0);
	r.excl_out_cidrs[1].prefix_len = 64;
	return r;
}

/* ------------------------------------------------------------ netlink, test side */

static struct mnl_socket *nl_in(const char *ns)
{
	struct mnl_socket *nl;

	cr_assert_eq(tns_enter(ns), 0);
	nl = mnl_socket_open(NETLINK_NETFILTER);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_not_null(nl);
	cr_assert_geq(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
	return nl;
}

struct dump {
	char text[16384];	/* libnftnl's rendering, one object per line */
	size_t len;
	int n;
};

static int dump_chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;
	struct nftnl_chain *c = nftnl_chain_alloc();

	cr_assert_eq(nftnl_chain_nlmsg_parse(nlh, c), 0);
	d->len += (size_t)nftnl_chain_snprintf(d->text + d->len, sizeof(d->text) - d->len, c,
					       NFTNL_OUTPUT_DEFAULT, 0);
	d->len += (size_t)snprintf(d->text + d->len, sizeof(d->text) - d->len, "\n");
	d->n++;
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

/* libnftnl's text leaves out the socket expression's level: add it. */
static int socket_level_cb(struct nftnl_expr *e, void *data)
{
	struct dump *d = data;

	if (!strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "socket"))
		d->len += (size_t)snprintf(d->text + d->len, sizeof(d->text) - d->len,
					   "  [ socket level %u ]\n",
					   nftnl_expr_get_u32(e, NFTNL_EXPR_SOCKET_LEVEL));
	return 0;
}

static int dump_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump *d = data;
	struct nftnl_rule *r = nftnl_rule_alloc();

	cr_assert_eq(nftnl_rule_nlmsg_parse(nlh, r), 0);
	/* The rendering carries each rule's handle: a rewrite shows. */
	d->len += (size_t)nftnl_rule_snprintf(d->text + d->len, sizeof(d->text) - d->len, r,
					      NFTNL_OUTPUT_DEFAULT, 0);
	nftnl_expr_foreach(r, socket_level_cb, d);
	d->n++;
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

/* Dump every chain (@rules false) or rule (true) of family inet in @ns. */
static void dump(const char *ns, bool rules, struct dump *d)
{
	struct mnl_socket *nl = nl_in(ns);
	uint32_t seq = (uint32_t)time(NULL), portid = mnl_socket_get_portid(nl);
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int n;

	memset(d, 0, sizeof(*d));
	nlh = nftnl_nlmsg_build_hdr(buf, rules ? NFT_MSG_GETRULE : NFT_MSG_GETCHAIN, NFPROTO_INET,
				    NLM_F_DUMP, seq);
	cr_assert_geq(mnl_socket_sendto(nl, nlh, nlh->nlmsg_len), 0);
	do {
		n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
		cr_assert_gt(n, 0);
		n = mnl_cb_run(buf, (size_t)n, seq, portid, rules ? dump_rule_cb : dump_chain_cb, d);
		cr_assert_geq(n, 0, "dump: %s", strerror(errno));
	} while (n > 0);
	mnl_socket_close(nl);
}

/* Append a counter rule to chain @chain of table inet @table, creating both
 * first (a filter chain on the input hook) when @create: what another
 * program in the pod would do. */
static void add_rule(const char *table, const char *chain, bool create)
{
	struct mnl_socket *nl = nl_in(POD);
	char buf[MNL_SOCKET_BUFFER_SIZE * 2];
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr *e = nftnl_expr_alloc("counter");
	uint32_t seq = 1;
	int n;

	nftnl_batch_begin(mnl_nlmsg_batch_current(b), seq++);
	mnl_nlmsg_batch_next(b);
	if (create) {
		nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
		nftnl_table_nlmsg_build_payload(
			nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_NEWTABLE,
					      NFPROTO_INET, NLM_F_CREATE, seq++),
			t);
		mnl_nlmsg_batch_next(b);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_IN);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 0);
		nftnl_chain_nlmsg_build_payload(
			nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_NEWCHAIN,
					      NFPROTO_INET, NLM_F_CREATE, seq++),
			c);
		mnl_nlmsg_batch_next(b);
	}
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_add_expr(r, e);
	nftnl_rule_nlmsg_build_payload(
		nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_NEWRULE, NFPROTO_INET,
				      NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, seq++),
		r);
	mnl_nlmsg_batch_next(b);
	nftnl_batch_end(mnl_nlmsg_batch_current(b), seq++);
	mnl_nlmsg_batch_next(b);
	cr_assert_geq(mnl_socket_sendto(nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)), 0);
	n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_assert_geq(mnl_cb_run(buf, (size_t)n, 0, mnl_socket_get_portid(nl), NULL, NULL), 0,
		      "adding a rule to inet %s %s: %s", table, chain, strerror(errno));
	mnl_nlmsg_batch_stop(b);
	nftnl_rule_free(r);
	nftnl_chain_free(c);
	nftnl_table_free(t);
	mnl_socket_close(nl);
}

static bool has(const struct dump *d, const char *s)
{
	return strstr(d->text, s) != NULL;
}

/* A line of @d starts with @head and contains @tail. */
static bool has_line(const struct dump *d, const char *head, const char *tail)
{
	for (const char *l = d->text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *end = strchr(l, '\n'), *t;

		if (strncmp(l, head, strlen(head)))
			continue;
		t = strstr(l, tail);
		if (t && (!end || t < end))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ the table */

Test(nft, apply_writes_the_layout)
{
	struct nft_pod_rules r = pod_rules();
	struct dump chains, rules;
	char want[160];

	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	dump(POD, false, &chains);
	cr_assert_eq(chains.n, 2, "chains:\n%s", chains.text);
	cr_assert(has_line(&chains, "inet weft output ",
			   " type nat hook output prio -100 policy accept"),
		  "%s", chains.text);
	cr_assert(has_line(&chains, "inet weft prerouting ",
			   " type nat hook prerouting prio -100 policy accept"),
		  "%s", chains.text);

	dump(POD, true, &rules);
	/* The agent's sockets by cgroup: the test cgroup's id at its level. */
	cr_assert(has(&rules, "[ socket load cgroupv2 => reg 1 ]"), "%s", rules.text);
	snprintf(want, sizeof(want), "[ socket level %u ]", r.agent_cgroup_level);
	cr_assert(has(&rules, want), "no cgroup level:\n%s", rules.text);
	cr_assert_eq(r.agent_cgroup_level, 1);
	snprintf(want, sizeof(want), "[ cmp eq reg 1 0x%08x 0x%08x ]",
		 (unsigned int)(r.agent_cgroup_id & 0xffffffff),
		 (unsigned int)(r.agent_cgroup_id >> 32));
	cr_assert(has(&rules, want), "no cgroup id %s:\n%s", want, rules.text);
	/* Redirect to 15001 and 15006 (big endian in a little-endian word). */
	cr_assert(has(&rules, "[ immediate reg 1 0x0000993a ]"), "%s", rules.text);
	cr_assert(has(&rules, "[ immediate reg 1 0x00009e3a ]"), "%s", rules.text);
	cr_assert(has(&rules, "[ redir proto_min reg 1 "), "%s", rules.text);
	/* Excluded ports: 81 out, 8081 in. */
	cr_assert(has(&rules, "[ cmp eq reg 1 0x00005100 ]"), "%s", rules.text);
	cr_assert(has(&rules, "[ cmp eq reg 1 0x0000911f ]"), "%s", rules.text);
	/* Excluded CIDRs: 198.18.6.0/24 and fd57:6566:7400:6::/64. */
	cr_assert(has(&rules, "[ cmp eq reg 1 0x000612c6 ]"), "%s", rules.text);
	cr_assert(has(&rules, "[ cmp eq reg 1 0x666557fd 0x06000074 0x00000000 0x00000000 ]"),
		  "%s", rules.text);
	/* Loopback destinations, and lo as an inbound interface. */
	cr_assert(has(&rules, "[ cmp eq reg 1 0x0000007f ]"), "%s", rules.text);
	cr_assert(has(&rules, "[ meta load iifname => reg 1 ]"), "%s", rules.text);
}

Test(nft, read_returns_what_was_applied)
{
	struct nft_pod_rules r = pod_rules();
	struct nft_pod_state st;
	char buf[ADDR_STRLEN];

	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert_not(st.table_present);
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert(st.table_present);
	cr_assert_eq(st.n_chains, 2);
	cr_assert(st.output.present && st.prerouting.present);
	cr_assert_eq(st.output.hooknum, NF_INET_LOCAL_OUT);
	cr_assert_eq(st.prerouting.hooknum, NF_INET_PRE_ROUTING);
	cr_assert_eq(st.output.prio, -100);
	cr_assert_str_eq(st.output.type, "nat");
	cr_assert_eq(st.rules.outbound_port, 15001);
	cr_assert_eq(st.rules.inbound_port, 15006);
	cr_assert_eq(st.rules.agent_cgroup_id, r.agent_cgroup_id);
	cr_assert_eq(st.rules.agent_cgroup_level, r.agent_cgroup_level);
	cr_assert_eq(st.rules.n_excl_out_ports, 1);
	cr_assert_eq(st.rules.excl_out_ports[0], EXCL_OUT_PORT);
	cr_assert_eq(st.rules.n_excl_in_ports, 1);
	cr_assert_eq(st.rules.excl_in_ports[0], EXCL_IN_PORT);
	cr_assert_eq(st.rules.n_excl_out_cidrs, 2);
	cr_assert_str_eq(cidr_fmt(&st.rules.excl_out_cidrs[0], buf, sizeof(buf)), "198.18.6.0/24");
	cr_assert_str_eq(cidr_fmt(&st.rules.excl_out_cidrs[1], buf, sizeof(buf)),
			 "fd57:6566:7400:6::/64");
}

Test(nft, apply_twice_is_identical)
{
	struct nft_pod_rules r = pod_rules();
	struct dump c1, c2, r1, r2;

	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	dump(POD, false, &c1);
	dump(POD, true, &r1);
	/* Already in place: nothing sent, the same rules with the same handles. */
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 0);
	dump(POD, false, &c2);
	dump(POD, true, &r2);
	cr_assert_str_eq(c1.text, c2.text);
	cr_assert_str_eq(r1.text, r2.text);
	cr_assert_eq(r1.n, 5 + 1 + 2 + 3 + 1);
	cr_assert_eq(r1.n, r2.n);
}

Test(nft, apply_repairs_a_changed_table)
{
	struct nft_pod_rules r = pod_rules();
	struct dump want, d;
	struct nft_pod_state st;

	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	dump(POD, true, &want);
	/* Someone appends a rule to weft's output chain. */
	add_rule("weft", "output", false);
	dump(POD, true, &d);
	cr_assert_eq(d.n, want.n + 1);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert_eq(st.output.n_rules, 5 + 1 + 2 + 1);
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	dump(POD, true, &d);
	cr_assert_eq(d.n, want.n, "%s", d.text);
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 0);
}

Test(nft, reapply_with_other_input_replaces_the_rules)
{
	struct nft_pod_rules r = pod_rules();
	struct nft_pod_state st;

	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	r.n_excl_out_ports = 0;
	r.n_excl_out_cidrs = 0;
	r.inbound_port = 0;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 0);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert_eq(st.n_chains, 1);
	cr_assert_not(st.prerouting.present);
	cr_assert_eq(st.rules.n_excl_out_ports, 0);
	cr_assert_eq(st.rules.n_excl_out_cidrs, 0);
	cr_assert_eq(st.rules.outbound_port, 15001);
}

Test(nft, foreign_table_survives_apply_and_remove)
{
	struct nft_pod_rules r = pod_rules();
	struct dump before, d;
	struct nft_pod_state st;

	add_rule("other", "input", true);
	dump(POD, true, &before);
	cr_assert_eq(before.n, 1);
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(nft_pod_remove(pod_fd), 0);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert_not(st.table_present);
	dump(POD, false, &d);
	cr_assert_eq(d.n, 1, "%s", d.text);
	cr_assert(has_line(&d, "inet other input ", " type filter hook input prio 0"), "%s", d.text);
	dump(POD, true, &d);
	cr_assert_str_eq(d.text, before.text);
	/* Removing again is not an error and still leaves "other" alone. */
	cr_assert_eq(nft_pod_remove(pod_fd), 0);
	dump(POD, false, &d);
	cr_assert_eq(d.n, 1, "%s", d.text);
}

/* A table inet weft owned by another netlink socket (NFT_TABLE_F_OWNER): the
 * kernel refuses every change from anyone else. Returns the owner's socket. */
static struct mnl_socket *own_weft_table(void)
{
	struct mnl_socket *nl = nl_in(POD);
	char buf[MNL_SOCKET_BUFFER_SIZE * 2];
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
	struct nftnl_table *t = nftnl_table_alloc();
	uint32_t seq = 1;
	int n;

	nftnl_batch_begin(mnl_nlmsg_batch_current(b), seq++);
	mnl_nlmsg_batch_next(b);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, "weft");
	nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, NFT_TABLE_F_OWNER);
	nftnl_table_nlmsg_build_payload(
		nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_NEWTABLE, NFPROTO_INET,
				      NLM_F_CREATE | NLM_F_ACK, seq++),
		t);
	mnl_nlmsg_batch_next(b);
	nftnl_batch_end(mnl_nlmsg_batch_current(b), seq++);
	mnl_nlmsg_batch_next(b);
	cr_assert_geq(mnl_socket_sendto(nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)), 0);
	n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_assert_geq(mnl_cb_run(buf, (size_t)n, 0, mnl_socket_get_portid(nl), NULL, NULL), 0,
		      "creating an owned table: %s", strerror(errno));
	mnl_nlmsg_batch_stop(b);
	nftnl_table_free(t);
	return nl;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

Test(nft, kernel_refusal_is_reported_at_once)
{
	struct nft_pod_rules r = pod_rules();
	struct mnl_socket *owner = own_weft_table();
	struct nft_pod_state st;
	struct timespec t0;
	struct dump d;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(nft_pod_apply(pod_fd, &r), -EPERM);
	cr_assert_eq(nft_pod_remove(pod_fd), -EPERM);
	/* The answers were read as they came, not waited for. */
	cr_assert_lt(ms_since(&t0), 1000);
	/* Nothing of the refused batches happened: the owner's empty table. */
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert(st.table_present);
	cr_assert_eq(st.n_chains, 0);
	dump(POD, true, &d);
	cr_assert_eq(d.n, 0, "%s", d.text);
	/* The owner gone, its table goes with it and weft's can be written. */
	mnl_socket_close(owner);
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
}

Test(nft, invalid_input_is_refused)
{
	struct nft_pod_rules r = pod_rules();

	r.agent_cgroup_level = 0;	/* would match every socket */
	cr_assert_eq(nft_pod_apply(pod_fd, &r), -EINVAL);
	r = pod_rules();
	r.n_excl_out_cidrs = 1;
	r.excl_out_cidrs[0].prefix_len = 33;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), -EINVAL);
	r = pod_rules();
	r.outbound_port = 0;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), -EINVAL);
}

static ino_t thread_netns(void)
{
	struct stat st;

	cr_assert_eq(stat("/proc/thread-self/ns/net", &st), 0);
	return st.st_ino;
}

Test(nft, probe_passes_and_leaves_nothing)
{
	struct dump d;
	char why[256];
	ino_t pod;

	/* Probe from inside the pod netns: the probe's own netns is a new one,
	 * and the thread comes back to where it was. */
	cr_assert_eq(tns_enter(POD), 0);
	pod = thread_netns();
	cr_assert_eq(nft_probe(why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(thread_netns(), pod);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert(strstr(why, "socket cgroupv2"), "%s", why);
	dump(POD, false, &d);
	cr_assert_eq(d.n, 0, "%s", d.text);
}

Test(nft, calls_leave_the_thread_in_its_netns)
{
	struct nft_pod_rules r = pod_rules();
	struct nft_pod_state st;
	ino_t home = thread_netns();

	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(thread_netns(), home);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert_eq(thread_netns(), home);
	cr_assert_eq(nft_pod_remove(pod_fd), 0);
	cr_assert_eq(thread_netns(), home);
}

/* ------------------------------------------------------------ real traffic */

enum {
	L_PROXY4, L_PROXY6, L_IN, L_IN6, L_POD_IN6, L_REAL4, L_REAL4_EXCL, L_EXCL4, L_EXCL6,
	L_REAL6, L_LO4, L_POD_IN, L_POD_EXCL_IN, L_COUNT
};
static const char *const listen_on[L_COUNT] = {
	[L_PROXY4] = "127.0.0.1:15001",
	[L_PROXY6] = "[::1]:15001",
	[L_IN] = "0.0.0.0:15006",
	[L_IN6] = "[::]:15006",
	[L_POD_IN6] = "[" POD_V6 "]:8080",
	[L_REAL4] = REAL_V4 ":80",
	[L_REAL4_EXCL] = REAL_V4 ":81",
	[L_EXCL4] = EXCL_V4 ":80",
	[L_EXCL6] = "[" EXCL_V6 "]:80",
	[L_REAL6] = "[" REAL_V6 "]:80",
	[L_LO4] = "127.0.0.1:80",
	[L_POD_IN] = POD_V4 ":8080",
	[L_POD_EXCL_IN] = POD_V4 ":8081",
};

static int listeners[L_COUNT];

static void listen_all(void)
{
	int one = 1;

	cr_assert_eq(tns_enter(POD), 0);
	for (int i = 0; i < L_COUNT; i++) {
		struct sockaddr_storage ss;
		struct addr a;
		socklen_t len;

		cr_assert_eq(addr_parse_ip_port(listen_on[i], &a), 0, "%s", listen_on[i]);
		len = addr_to_sockaddr(&a, &ss);
		listeners[i] = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		cr_assert_geq(listeners[i], 0);
		setsockopt(listeners[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* [::]:15006 beside 0.0.0.0:15006. */
		if (a.family == AF_INET6)
			setsockopt(listeners[i], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		cr_assert_eq(bind(listeners[i], (struct sockaddr *)&ss, len), 0, "bind %s: %s",
			     listen_on[i], strerror(errno));
		cr_assert_eq(listen(listeners[i], 16), 0);
	}
	cr_assert_eq(tns_enter(NULL), 0);
}

/* Which listener got the connection; its accepted socket in *@fd. */
static int accepted_by(int *fd)
{
	struct pollfd pfd[L_COUNT];

	for (int i = 0; i < L_COUNT; i++)
		pfd[i] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
	if (poll(pfd, L_COUNT, WAIT_MS) <= 0)
		return -1;
	for (int i = 0; i < L_COUNT; i++) {
		if (pfd[i].revents & POLLIN) {
			*fd = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC);
			cr_assert_geq(*fd, 0);
			return i;
		}
	}
	return -1;
}

/* Connect from @ns to @dst as this process (not in the agent's cgroup) and
 * return the listener that accepted; the original destination in @orig. */
static int connect_as_pod(const char *ns, const char *dst, char *orig, size_t len)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl = sizeof(ss);
	int c, s = -1, who, level;

	c = tsock_connect(ns, dst, WAIT_MS);
	cr_assert_geq(c, 0, "connect %s: %s", dst, strerror(-c));
	who = accepted_by(&s);
	cr_assert_geq(who, 0, "nobody accepted %s", dst);
	orig[0] = '\0';
	/* SO_ORIGINAL_DST == IP6T_SO_ORIGINAL_DST, at the accepted socket's
	 * own level (a v4-mapped client arrives on the IPv4 listener). */
	cr_assert_eq(getsockname(s, (struct sockaddr *)&ss, &sl), 0);
	level = ss.ss_family == AF_INET6 ? SOL_IPV6 : SOL_IP;
	sl = sizeof(ss);
	if (getsockopt(s, level, SO_ORIGINAL_DST, &ss, &sl) == 0) {
		struct addr a;

		addr_from_sockaddr(&a, (struct sockaddr *)&ss, sl);
		addr_fmt(&a, orig, len);
	}
	close(s);
	close(c);
	return who;
}

/* Connect to @dst from a child that joined the agent's (the test) cgroup. */
static int connect_as_agent(const char *dst)
{
	int status, s = -1, who;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int c;

		if (tcg_join(cg_path, 0))
			_exit(2);
		c = tsock_connect(POD, dst, WAIT_MS);
		_exit(c < 0 ? 3 : 0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "agent child: status %d", status);
	who = accepted_by(&s);
	if (s >= 0)
		close(s);
	return who;
}

Test(nft, outbound_is_redirected_with_original_destination)
{
	struct nft_pod_rules r = pod_rules();
	char orig[ADDR_STRLEN];

	listen_all();
	/* Before: straight to the real server. */
	cr_assert_eq(connect_as_pod(POD, REAL_V4 ":80", orig, sizeof(orig)), L_REAL4);
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);

	cr_assert_eq(connect_as_pod(POD, REAL_V4 ":80", orig, sizeof(orig)), L_PROXY4);
	cr_assert_str_eq(orig, REAL_V4 ":80");
	cr_assert_eq(connect_as_pod(POD, "[" REAL_V6 "]:80", orig, sizeof(orig)), L_PROXY6);
	cr_assert_str_eq(orig, "[" REAL_V6 "]:80");
	/* A dual-stack socket dialling a v4-mapped address sends IPv4. */
	cr_assert_eq(connect_as_pod(POD, "[::ffff:" REAL_V4 "]:80", orig, sizeof(orig)), L_PROXY4);
	cr_assert_str_eq(orig, REAL_V4 ":80");
	/* Left alone: excluded port, excluded CIDR, loopback. */
	cr_assert_eq(connect_as_pod(POD, REAL_V4 ":81", orig, sizeof(orig)), L_REAL4_EXCL);
	cr_assert_eq(connect_as_pod(POD, EXCL_V4 ":80", orig, sizeof(orig)), L_EXCL4);
	cr_assert_eq(connect_as_pod(POD, "[" EXCL_V6 "]:80", orig, sizeof(orig)), L_EXCL6);
	cr_assert_eq(connect_as_pod(POD, "127.0.0.1:80", orig, sizeof(orig)), L_LO4);

	cr_assert_eq(nft_pod_remove(pod_fd), 0);
	cr_assert_eq(connect_as_pod(POD, REAL_V4 ":80", orig, sizeof(orig)), L_REAL4);
}

Test(nft, agent_cgroup_is_not_redirected)
{
	struct nft_pod_rules r = pod_rules();

	listen_all();
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(connect_as_agent(REAL_V4 ":80"), L_REAL4);
	cr_assert_eq(connect_as_agent("[" REAL_V6 "]:80"), L_REAL6);
}

Test(nft, inbound_is_redirected_except_excluded_ports)
{
	struct nft_pod_rules r = pod_rules();
	char orig[ADDR_STRLEN];

	listen_all();
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(connect_as_pod(PEER, POD_V4 ":8080", orig, sizeof(orig)), L_IN);
	cr_assert_str_eq(orig, POD_V4 ":8080");
	cr_assert_eq(connect_as_pod(PEER, POD_V4 ":8081", orig, sizeof(orig)), L_POD_EXCL_IN);
	cr_assert_eq(connect_as_pod(PEER, "[" POD_V6 "]:8080", orig, sizeof(orig)), L_IN6);
	cr_assert_str_eq(orig, "[" POD_V6 "]:8080");
	/* Arriving on lo is not inbound: the agent's own connection to the
	 * pod's address (left alone by the output chain) reaches the app. */
	cr_assert_eq(connect_as_agent(POD_V4 ":8080"), L_POD_IN);
	cr_assert_eq(connect_as_agent("[" POD_V6 "]:8080"), L_POD_IN6);

	cr_assert_eq(nft_pod_remove(pod_fd), 0);
	cr_assert_eq(connect_as_pod(PEER, POD_V4 ":8080", orig, sizeof(orig)), L_POD_IN);
}

/* A fail-open table (weft.io/fail-open): read back as such, the same on a
 * second apply, its set element alive; once the element expires the pod's
 * TCP goes straight to the server and is counted, and a heartbeat captures
 * it again.
 */
Test(nft, fail_open_table_lets_tcp_through_once_the_heartbeat_expires)
{
	struct nft_pod_rules r = pod_rules();
	struct nft_pod_state st;
	char orig[ADDR_STRLEN];
	uint64_t expires_ms;
	bool alive;

	listen_all();
	r.fail_open = true;
	r.fail_open_after_ms = 1000;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert(st.rules.fail_open);
	cr_assert(nft_pod_state_matches(&st, &r));
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 0, "a second apply sends nothing");
	r.fail_open = false;
	cr_assert_not(nft_pod_state_matches(&st, &r), "fail-open is part of the layout");
	r.fail_open = true;
	cr_assert_eq(nft_pod_alive(pod_fd, &alive, &expires_ms), 0);
	cr_assert(alive && expires_ms > 0 && expires_ms <= 1000, "expires in %llu ms",
		  (unsigned long long)expires_ms);
	cr_assert_eq(connect_as_pod(POD, REAL_V4 ":80", orig, sizeof(orig)), L_PROXY4);
	/* No heartbeat for longer than the timeout: captured no more. */
	usleep(1500000);
	cr_assert_eq(nft_pod_alive(pod_fd, &alive, &expires_ms), 0);
	cr_assert_not(alive);
	cr_assert_eq(connect_as_pod(POD, REAL_V4 ":80", orig, sizeof(orig)), L_REAL4);
	cr_assert_eq(connect_as_pod(POD, REAL_V4 ":81", orig, sizeof(orig)), L_REAL4_EXCL,
		     "an exclusion is still an exclusion");
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_assert_eq(st.failed_open_out, 1, "counted once, the excluded port not");
	/* A heartbeat, even after expiry, brings capture back at once. */
	cr_assert_eq(nft_pod_heartbeat(pod_fd, 1000), 0);
	cr_assert_eq(nft_pod_alive(pod_fd, &alive, &expires_ms), 0);
	cr_assert(alive);
	cr_assert_eq(connect_as_pod(POD, REAL_V4 ":80", orig, sizeof(orig)), L_PROXY4);
	cr_assert_eq(nft_pod_heartbeat(pod_fd, 1000), 0, "renewing a live element works too");
	r.fail_open = false;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(nft_pod_heartbeat(pod_fd, 1000), -ENOENT, "no set without fail-open");
}

/* ------------------------------------------------------------ DNS capture */

/* A socket of @type made in the pod netns, bound to 0.0.0.0:@port or
 * @ip:@port (NULL: the wildcard).
 */
static int pod_socket(int type, const char *ip, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, one = 1;

	if (ip)
		cr_assert_eq(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
	cr_assert_eq(tns_enter(POD), 0);
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (type == SOCK_DGRAM)
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s:%u: %s",
		     ip ? ip : "0.0.0.0", port, strerror(errno));
	if (type == SOCK_STREAM)
		cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

/* The DNS rules: with dns_port, IPv4 UDP and TCP to port 53 from the pod go
 * to the responder on 127.0.0.1 and conntrack keeps the resolver asked, which
 * nft_ct_orig_dst() reads back for UDP (SO_ORIGINAL_DST for TCP); the
 * responder's answer from 127.0.0.1 reaches the client as the resolver's.
 */
Test(nft, dns_goes_to_the_responder_and_conntrack_names_the_resolver)
{
	struct nft_pod_rules r = pod_rules();
	struct sockaddr_in res = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct sockaddr_in peer, local = { .sin_family = AF_INET, .sin_port = htons(15053) };
	struct sockaddr_in orig, from;
	struct sockaddr_storage ct_orig;
	struct nft_pod_state st;
	struct pollfd p;
	socklen_t len;
	int udp, tcp, real, c, a, ct;
	char buf[8], cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_name = &peer, .msg_namelen = sizeof(peer), .msg_iov = &iov,
			     .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct in_pktinfo pi = { 0 };

	cr_assert_eq(inet_pton(AF_INET, REAL_V4, &res.sin_addr), 1);
	r.dns_port = 15053;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_expect_eq(st.rules.dns_port, 15053);
	cr_expect_eq(st.rules.outbound_port, 15001, "the DNS rules read as the TCP redirect");
	cr_expect(nft_pod_state_matches(&st, &r));
	cr_expect_eq(nft_pod_apply(pod_fd, &r), 0, "a second apply changes nothing");

	udp = pod_socket(SOCK_DGRAM, NULL, 15053);
	tcp = pod_socket(SOCK_STREAM, NULL, 15053);
	real = pod_socket(SOCK_DGRAM, REAL_V4, 53);
	ct = nft_ct_open(pod_fd);
	cr_assert_geq(ct, 0, "conntrack socket: %s", strerror(-ct));

	/* UDP: the query arrives at the responder on 127.0.0.1. */
	cr_assert_eq(tns_enter(POD), 0);
	c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_eq(sendto(c, "q", 1, 0, (struct sockaddr *)&res, sizeof(res)), 1);
	p = (struct pollfd){ .fd = udp, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "the responder got nothing");
	cr_assert_eq(recvmsg(udp, &mh, 0), 1);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
	cr_expect_eq(ntohl(pi.ipi_addr.s_addr), INADDR_LOOPBACK);
	local.sin_addr = pi.ipi_addr;
	cr_assert_eq(nft_ct_orig_dst(ct, IPPROTO_UDP, (struct sockaddr *)&local,
				     (struct sockaddr *)&peer, &ct_orig),
		     0);
	cr_assert_eq(ct_orig.ss_family, AF_INET);
	memcpy(&orig, &ct_orig, sizeof(orig));
	cr_expect_eq(orig.sin_addr.s_addr, res.sin_addr.s_addr, "conntrack says %s",
		     inet_ntoa(orig.sin_addr));
	cr_expect_eq(ntohs(orig.sin_port), 53);
	/* The answer from 127.0.0.1 reads as the resolver's. */
	pi.ipi_spec_dst = pi.ipi_addr;
	pi.ipi_ifindex = 0;
	mh.msg_controllen = CMSG_SPACE(sizeof(pi));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &pi, sizeof(pi));
	iov.iov_len = 1;
	cr_assert_eq(sendmsg(udp, &mh, 0), 1);
	len = sizeof(from);
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "no answer");
	cr_assert_eq(recvfrom(c, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len), 1);
	cr_expect_eq(from.sin_addr.s_addr, res.sin_addr.s_addr);
	cr_expect_eq(ntohs(from.sin_port), 53);
	p = (struct pollfd){ .fd = real, .events = POLLIN };
	cr_expect_eq(poll(&p, 1, 0), 0, "the resolver itself got the query");
	close(c);

	/* TCP: the responder's listener, SO_ORIGINAL_DST the resolver. */
	c = tsock_connect(POD, REAL_V4 ":53", WAIT_MS);
	cr_assert_geq(c, 0);
	p = (struct pollfd){ .fd = tcp, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "the responder's listener got nothing");
	a = accept4(tcp, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(a, 0);
	len = sizeof(orig);
	cr_assert_eq(getsockopt(a, SOL_IP, SO_ORIGINAL_DST, &orig, &len), 0);
	cr_expect_eq(orig.sin_addr.s_addr, res.sin_addr.s_addr);
	close(a);
	close(c);

	/* A fail-open pod's table carries the heartbeat rule for DNS too, and
	 * reads back as written.
	 */
	r.fail_open = true;
	r.fail_open_after_ms = 3000;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_expect(st.rules.fail_open && st.rules.dns_port == 15053);
	cr_expect(nft_pod_state_matches(&st, &r));
	close(ct);
	close(real);
	close(tcp);
	close(udp);
}

/* A table whose DNS UDP rule matches IPv4 only (as agents wrote it before
 * IPv6 queries were captured; made here with the nft tool) reads back as
 * such and does not match the rules: apply rewrites it, after which it does.
 */
Test(nft, an_ipv4_only_dns_rule_is_rewritten)
{
	struct nft_pod_rules r = pod_rules();
	struct nft_pod_state st;
	char n[64];

	r.dns_port = 15053;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_expect(!st.dns_v4_only);
	tns_name(POD, n, sizeof(n));
	cr_assert_eq(tns_sh("h=$(ip netns exec %s nft -a list chain inet weft output | "
			    "awk '/udp dport 53/ { print $NF }') && [ -n \"$h\" ] && "
			    "ip netns exec %s nft replace rule inet weft output handle $h "
			    "meta nfproto ipv4 udp dport 53 redirect to :15053",
			    n, n),
		     0, "could not replace the DNS rule with nft");
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_expect(st.dns_v4_only, "the IPv4-only DNS rule was not recognised");
	cr_expect_eq(st.rules.dns_port, 15053);
	cr_expect(!nft_pod_state_matches(&st, &r));
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1, "the old rule was kept");
	cr_assert_eq(nft_pod_read(pod_fd, &st), 0);
	cr_expect(!st.dns_v4_only);
	cr_expect(nft_pod_state_matches(&st, &r));
}

/* A socket of @type made in the pod netns, IPv6 only, bound to [@ip]:@port. */
static int pod_socket6(int type, const char *ip, uint16_t port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int fd, one = 1;

	cr_assert_eq(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
	cr_assert_eq(tns_enter(POD), 0);
	fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind [%s]:%u: %s", ip, port,
		     strerror(errno));
	if (type == SOCK_STREAM)
		cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

/* IP6T_SO_ORIGINAL_DST, as agent/datapath/capture.c names it. */
#define ORIGINAL_DST6 80

/* The same rules take IPv6: UDP and TCP to [RESOLVER6]:53 go to the responder
 * on [::1], conntrack names the resolver (an IPv6 tuple), the answer from ::1
 * reads as the resolver's, and the TCP connection's original destination is
 * the resolver. The resolver itself sees nothing.
 */
Test(nft, dns_to_an_ipv6_resolver_goes_to_the_responder_on_ipv6_loopback)
{
	struct nft_pod_rules r = pod_rules();
	struct sockaddr_in6 res = { .sin6_family = AF_INET6, .sin6_port = htons(53) };
	struct sockaddr_in6 peer, from, orig;
	struct sockaddr_in6 local = { .sin6_family = AF_INET6, .sin6_port = htons(15053),
				      .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_storage ct_orig;
	char buf[8], text[INET6_ADDRSTRLEN];
	struct pollfd p;
	socklen_t len;
	int udp, tcp, real, real_tcp, c, a, ct;

	cr_assert_eq(inet_pton(AF_INET6, REAL_V6, &res.sin6_addr), 1);
	r.dns_port = 15053;
	cr_assert_eq(nft_pod_apply(pod_fd, &r), 1);
	udp = pod_socket6(SOCK_DGRAM, "::1", 15053);
	tcp = pod_socket6(SOCK_STREAM, "::1", 15053);
	real = pod_socket6(SOCK_DGRAM, REAL_V6, 53);
	real_tcp = pod_socket6(SOCK_STREAM, REAL_V6, 53);
	ct = nft_ct_open(pod_fd);
	cr_assert_geq(ct, 0, "conntrack socket: %s", strerror(-ct));

	/* UDP: a connected socket, as glibc's stub resolver asks. */
	cr_assert_eq(tns_enter(POD), 0);
	c = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&res, sizeof(res)), 0);
	cr_assert_eq(send(c, "q", 1, 0), 1);
	p = (struct pollfd){ .fd = udp, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "the responder on ::1 got nothing");
	len = sizeof(peer);
	cr_assert_eq(recvfrom(udp, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &len), 1);
	cr_assert_eq(peer.sin6_family, AF_INET6);
	cr_assert_eq(nft_ct_orig_dst(ct, IPPROTO_UDP, (struct sockaddr *)&local,
				     (struct sockaddr *)&peer, &ct_orig),
		     0);
	cr_assert_eq(ct_orig.ss_family, AF_INET6);
	memcpy(&orig, &ct_orig, sizeof(orig));
	cr_expect(!memcmp(&orig.sin6_addr, &res.sin6_addr, 16), "conntrack says %s",
		  inet_ntop(AF_INET6, &orig.sin6_addr, text, sizeof(text)));
	cr_expect_eq(ntohs(orig.sin6_port), 53);
	/* A tuple of two families is refused, not asked. */
	cr_expect_eq(nft_ct_orig_dst(ct, IPPROTO_UDP, (struct sockaddr *)&local,
				     (struct sockaddr *)&(struct sockaddr_in){ .sin_family = AF_INET },
				     &ct_orig),
		     -EAFNOSUPPORT);
	/* The answer from ::1 reaches the connected client as the resolver's. */
	cr_assert_eq(sendto(udp, "a", 1, 0, (struct sockaddr *)&peer, sizeof(peer)), 1);
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "no answer");
	len = sizeof(from);
	cr_assert_eq(recvfrom(c, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len), 1);
	cr_expect(!memcmp(&from.sin6_addr, &res.sin6_addr, 16));
	cr_expect_eq(ntohs(from.sin6_port), 53);
	p = (struct pollfd){ .fd = real, .events = POLLIN };
	cr_expect_eq(poll(&p, 1, 0), 0, "the resolver itself got the query");
	close(c);

	/* TCP: the listener on [::1], the original destination the resolver. */
	c = tsock_connect(POD, "[" REAL_V6 "]:53", WAIT_MS);
	cr_assert_geq(c, 0);
	p = (struct pollfd){ .fd = tcp, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "the responder's listener on ::1 got nothing");
	a = accept4(tcp, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(a, 0);
	len = sizeof(orig);
	cr_assert_eq(getsockopt(a, SOL_IPV6, ORIGINAL_DST6, &orig, &len), 0, "%s",
		     strerror(errno));
	cr_expect(!memcmp(&orig.sin6_addr, &res.sin6_addr, 16));
	cr_expect_eq(ntohs(orig.sin6_port), 53);
	p = (struct pollfd){ .fd = real_tcp, .events = POLLIN };
	cr_expect_eq(poll(&p, 1, 0), 0, "the resolver itself got the connection");
	close(a);
	close(c);
	close(ct);
	close(real_tcp);
	close(real);
	close(tcp);
	close(udp);
}
