// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/datapath/nft.h: table inet weft built as libnftnl
 * objects and sent as one nfnetlink batch (apply, remove, the probe). The
 * agent's cgroup, which the socket match names, is agent/cgroup.c's (cgroup_self_id()). The netlink
 * socket is nft_nl.c's, reading back is nft_read.c's; these three files are
 * the only ones of the agent that include libmnl or libnftnl.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <limits.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dp.h"
#include "nft_internal.h"

/* Room for the largest table (two chains, every exclusion) with the
 * MNL_SOCKET_BUFFER_SIZE tail mnl_nlmsg_batch keeps free. */
#define NFT_BATCH_BUF (128 * 1024)

/* ------------------------------------------------------------ expressions */

static int expr_add(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e)
		return -ENOMEM;
	nftnl_rule_add_expr(r, e);
	return 0;
}

static int add_meta(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	return expr_add(r, e);
}

static int add_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	return expr_add(r, e);
}

static int add_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	}
	return expr_add(r, e);
}

/* reg1 = reg1 & @mask (the xor operand zero): a prefix match. */
static int add_mask(struct nftnl_rule *r, const void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
	return expr_add(r, e);
}

static int add_return(struct nftnl_rule *r)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NFT_RETURN);
	}
	return expr_add(r, e);
}

/* reg1 = id of the socket's cgroup v2 ancestor at @level (the rule breaks
 * when the packet has no socket or the cgroup is shallower). */
static int add_socket_cgroup(struct nftnl_rule *r, uint32_t level)
{
	struct nftnl_expr *e = nftnl_expr_alloc("socket");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_CGROUPV2);
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_LEVEL, level);
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	}
	return expr_add(r, e);
}

/* Redirect to local port @port: the address is the incoming interface's
 * primary one (prerouting) or loopback (output). */
static int add_redirect(struct nftnl_rule *r, uint16_t port)
{
	uint16_t be = htons(port);
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	int err;

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &be, sizeof(be));
	}
	err = expr_add(r, e);
	if (err)
		return err;
	e = nftnl_expr_alloc("redir");
	if (e)
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, NFT_REG_1);
	return expr_add(r, e);
}

/* Match meta nfproto == @family (AF_INET / AF_INET6) in an inet table. */
static int add_nfproto(struct nftnl_rule *r, int family)
{
	uint8_t proto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;

	return add_meta(r, NFT_META_NFPROTO) ?: add_cmp(r, NFT_CMP_EQ, &proto, 1);
}

static void prefix_mask(uint8_t *mask, unsigned int len_bytes, unsigned int prefix)
{
	for (unsigned int i = 0; i < len_bytes; i++) {
		unsigned int bits = prefix > 8 * i ? prefix - 8 * i : 0;

		mask[i] = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);
	}
}

/* Match the destination against @c: nfproto, daddr, mask (unless the prefix
 * covers the whole address), compare. */
static int add_daddr_prefix(struct nftnl_rule *r, const struct cidr *c)
{
	bool v4 = c->net.family == AF_INET;
	uint32_t len = v4 ? 4 : 16, off = v4 ? 16 : 24;
	const void *net = v4 ? (const void *)&c->net.ip.v4 : &c->net.ip.v6;
	uint8_t mask[16], masked[16];
	int err;

	err = add_nfproto(r, c->net.family) ?: add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off, len);
	if (err)
		return err;
	if (c->prefix_len < 8 * len) {
		prefix_mask(mask, len, c->prefix_len);
		memcpy(masked, net, len);
		for (uint32_t i = 0; i < len; i++)
			masked[i] &= mask[i];
		return add_mask(r, mask, len) ?: add_cmp(r, NFT_CMP_EQ, masked, len);
	}
	return add_cmp(r, NFT_CMP_EQ, net, len);
}

static int add_dport(struct nftnl_rule *r, uint16_t port)
{
	uint16_t be = htons(port);

	return add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2) ?:
	       add_cmp(r, NFT_CMP_EQ, &be, sizeof(be));
}

static int add_not_tcp(struct nftnl_rule *r)
{
	uint8_t tcp = IPPROTO_TCP;

	return add_meta(r, NFT_META_L4PROTO) ?: add_cmp(r, NFT_CMP_NEQ, &tcp, 1);
}

/* nftables' datatype of `meta l4proto` (TYPE_INET_PROTOCOL in nft's
 * datatype.h), so that `nft list table` shows the set as it would its own.
 */
#define NFT_TYPE_INET_PROTOCOL 12
/* The set's id within a batch that creates it and a rule using it. */
#define NFT_ALIVE_SET_ID 1

/* TCP not in NFT_ALIVE_SET (its element expired: no agent refreshes it):
 * counted, and returned uncaptured. The chain's first rule returned every
 * other protocol already, so l4proto is TCP here.
 */
static int add_not_alive_key(struct nftnl_rule *r, bool any_proto)
{
	static const uint8_t tcp = IPPROTO_TCP;
	struct nftnl_expr *e;
	int err;

	if (any_proto) {
		/* The set's one element names TCP; a UDP query asks by it. */
		e = nftnl_expr_alloc("immediate");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
			nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &tcp, sizeof(tcp));
		}
		err = expr_add(r, e);
	} else {
		err = add_meta(r, NFT_META_L4PROTO);
	}
	if (err)
		return err;
	e = nftnl_expr_alloc("lookup");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, NFT_ALIVE_SET);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, NFT_ALIVE_SET_ID);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
	}
	err = expr_add(r, e);
	if (err)
		return err;
	return expr_add(r, nftnl_expr_alloc("counter")) ?: add_return(r);
}

static int add_not_alive(struct nftnl_rule *r)
{
	return add_not_alive_key(r, false);
}

/* ------------------------------------------------------------ batch */

struct batch {
	char *buf;
	struct mnl_nlmsg_batch *b;
	uint32_t seq;
	uint32_t n_acks;	/* messages sent with NLM_F_ACK */
	int err;
};

static int batch_init(struct batch *bt)
{
	memset(bt, 0, sizeof(*bt));
	bt->buf = malloc(NFT_BATCH_BUF);
	if (!bt->buf)
		return -ENOMEM;
	bt->b = mnl_nlmsg_batch_start(bt->buf, NFT_BATCH_BUF);
	if (!bt->b) {
		free(bt->buf);
		return -ENOMEM;
	}
	bt->seq = (uint32_t)time(NULL);
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), bt->seq++);
	mnl_nlmsg_batch_next(bt->b);
	return 0;
}

static void batch_free(struct batch *bt)
{
	if (bt->b)
		mnl_nlmsg_batch_stop(bt->b);
	free(bt->buf);
}

static struct nlmsghdr *batch_hdr(struct batch *bt, uint16_t type, uint16_t flags)
{
	bt->n_acks++;
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type, NFPROTO_INET,
				     flags | NLM_F_ACK, bt->seq++);
}

static void batch_next(struct batch *bt)
{
	if (!mnl_nlmsg_batch_next(bt->b) && !bt->err)
		bt->err = -E2BIG;
}

static void batch_table(struct batch *bt, uint16_t type, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t) {
		bt->err = bt->err ?: -ENOMEM;
		return;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE_NAME);
	nftnl_table_nlmsg_build_payload(batch_hdr(bt, type, flags), t);
	nftnl_table_free(t);
	batch_next(bt);
}

static void batch_chain(struct batch *bt, const char *name, uint32_t hooknum)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c) {
		bt->err = bt->err ?: -ENOMEM;
		return;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE_NAME);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hooknum);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, NFT_CHAIN_PRIO);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nftnl_chain_nlmsg_build_payload(batch_hdr(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE), c);
	nftnl_chain_free(c);
	batch_next(bt);
}

static struct nftnl_set *alive_set_new(void)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (s) {
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
		nftnl_set_set_str(s, NFTNL_SET_NAME, NFT_ALIVE_SET);
		nftnl_set_set_u32(s, NFTNL_SET_ID, NFT_ALIVE_SET_ID);
	}
	return s;
}

/* The set of a fail-open pod: `set agent_alive { type inet_proto; flags
 * timeout; }`.
 */
static void batch_alive_set(struct batch *bt)
{
	struct nftnl_set *s = alive_set_new();

	if (!s) {
		bt->err = bt->err ?: -ENOMEM;
		return;
	}
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_TYPE_INET_PROTOCOL);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 1);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_TIMEOUT);
	nftnl_set_nlmsg_build_payload(batch_hdr(bt, NFT_MSG_NEWSET, NLM_F_CREATE), s);
	nftnl_set_free(s);
	batch_next(bt);
}

/* The heartbeat: the set's elements flushed, then `tcp` added again,
 * expiring in @timeout_ms. A flush (DELSETELEM naming no element) never
 * fails on an empty set or an element that expired meanwhile, where a
 * delete of that element would.
 */
static void batch_alive_beat(struct batch *bt, uint32_t timeout_ms, bool flush)
{
	struct nftnl_set *s = alive_set_new();
	struct nftnl_set_elem *e;
	uint8_t tcp = IPPROTO_TCP;

	if (!s) {
		bt->err = bt->err ?: -ENOMEM;
		return;
	}
	if (flush) {
		nftnl_set_elems_nlmsg_build_payload(batch_hdr(bt, NFT_MSG_DELSETELEM, 0), s);
		batch_next(bt);
	}
	e = nftnl_set_elem_alloc();
	if (!e) {
		nftnl_set_free(s);
		bt->err = bt->err ?: -ENOMEM;
		return;
	}
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &tcp, sizeof(tcp));
	nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
	nftnl_set_elem_add(s, e);
	nftnl_set_elems_nlmsg_build_payload(batch_hdr(bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE), s);
	nftnl_set_free(s);
	batch_next(bt);
}

static struct nftnl_rule *rule_new(const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (r) {
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	}
	return r;
}

/* Append @r (built with @err so far) to the batch and free it. */
static void batch_rule(struct batch *bt, struct nftnl_rule *r, int err)
{
	if (!r)
		err = -ENOMEM;
	if (!err)
		nftnl_rule_nlmsg_build_payload(
			batch_hdr(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND), r);
	nftnl_rule_free(r);
	if (err)
		bt->err = bt->err ?: err;
	else
		batch_next(bt);
}

/* The agent's own sockets are left alone: a return rule of their own. */
static int add_agent_return(struct nftnl_rule *r, const struct nft_pod_rules *p)
{
	return add_socket_cgroup(r, p->agent_cgroup_level) ?:
	       add_cmp(r, NFT_CMP_EQ, &p->agent_cgroup_id, sizeof(p->agent_cgroup_id)) ?:
	       add_return(r);
}

/* DNS capture, ahead of the TCP rules: the agent's sockets return (its
 * forwarding sockets in the pod), then UDP and TCP to port 53 go to the
 * responder, IPv4 and IPv6 alike (no nfproto match: the inet table's redirect
 * sends an IPv4 query to 127.0.0.1 and an IPv6 one to ::1, where the
 * responder listens too). conntrack undoes the rewrite on the reply, so the
 * answer reads as the resolver's; the responder finds the resolver asked
 * from the connection's original tuple (UDP: a ctnetlink lookup; TCP:
 * SO_ORIGINAL_DST or IP6T_SO_ORIGINAL_DST). The agent's return comes again
 * further down for TCP: two rules rather than a layout that moves the TCP
 * rules.
 */
static void rules_dns(struct batch *bt, const struct nft_pod_rules *p)
{
	const uint8_t protos[2] = { IPPROTO_UDP, IPPROTO_TCP };
	struct nftnl_rule *r;

	r = rule_new(NFT_CHAIN_OUTPUT);
	batch_rule(bt, r, r ? add_agent_return(r, p) : 0);
	/* A fail-open pod's queries go to its resolver while no agent beats,
	 * as its connections go to their destination.
	 */
	if (p->fail_open) {
		r = rule_new(NFT_CHAIN_OUTPUT);
		batch_rule(bt, r, r ? add_not_alive_key(r, true) : 0);
	}
	for (int i = 0; i < 2; i++) {
		r = rule_new(NFT_CHAIN_OUTPUT);
		batch_rule(bt, r,
			   r ? add_meta(r, NFT_META_L4PROTO) ?:
				       add_cmp(r, NFT_CMP_EQ, &protos[i], 1) ?:
				       add_dport(r, NFT_DNS_PORT) ?: add_redirect(r, p->dns_port) :
			       0);
	}
}

static void rules_output(struct batch *bt, const struct nft_pod_rules *p)
{
	struct cidr lo4 = { .prefix_len = 8 }, lo6 = { .prefix_len = 128 };
	struct nftnl_rule *r;
	size_t i;

	lo4.net.family = AF_INET;
	lo4.net.ip.v4.s_addr = htonl(INADDR_LOOPBACK & 0xff000000);
	lo6.net.family = AF_INET6;
	lo6.net.ip.v6 = in6addr_loopback;

	if (p->dns_port)
		rules_dns(bt, p);
	r = rule_new(NFT_CHAIN_OUTPUT);
	batch_rule(bt, r, r ? add_not_tcp(r) ?: add_return(r) : 0);
	/* The agent's own sockets (upstream connections made inside the pod):
	 * a socket's cgroup is its creator's, and only whoever may write the
	 * node's cgroup tree moves processes into the agent's; SO_MARK is set
	 * by anything with CAP_NET_RAW in the pod. */
	r = rule_new(NFT_CHAIN_OUTPUT);
	batch_rule(bt, r,
		   r ? add_socket_cgroup(r, p->agent_cgroup_level) ?:
			       add_cmp(r, NFT_CMP_EQ, &p->agent_cgroup_id,
				       sizeof(p->agent_cgroup_id)) ?:
			       add_return(r) :
		       0);
	r = rule_new(NFT_CHAIN_OUTPUT);
	batch_rule(bt, r, r ? add_daddr_prefix(r, &lo4) ?: add_return(r) : 0);
	r = rule_new(NFT_CHAIN_OUTPUT);
	batch_rule(bt, r, r ? add_daddr_prefix(r, &lo6) ?: add_return(r) : 0);
	for (i = 0; i < p->n_excl_out_ports; i++) {
		r = rule_new(NFT_CHAIN_OUTPUT);
		batch_rule(bt, r, r ? add_dport(r, p->excl_out_ports[i]) ?: add_return(r) : 0);
	}
	for (i = 0; i < p->n_excl_out_cidrs; i++) {
		r = rule_new(NFT_CHAIN_OUTPUT);
		batch_rule(bt, r,
			   r ? add_daddr_prefix(r, &p->excl_out_cidrs[i]) ?: add_return(r) : 0);
	}
	if (p->fail_open) {
		r = rule_new(NFT_CHAIN_OUTPUT);
		batch_rule(bt, r, r ? add_not_alive(r) : 0);
	}
	r = rule_new(NFT_CHAIN_OUTPUT);
	batch_rule(bt, r, r ? add_redirect(r, p->outbound_port) : 0);
}

static void rules_prerouting(struct batch *bt, const struct nft_pod_rules *p)
{
	char lo[IFNAMSIZ] = "lo";
	struct nftnl_rule *r;
	size_t i;

	r = rule_new(NFT_CHAIN_PREROUTING);
	batch_rule(bt, r, r ? add_not_tcp(r) ?: add_return(r) : 0);
	r = rule_new(NFT_CHAIN_PREROUTING);
	batch_rule(bt, r,
		   r ? add_meta(r, NFT_META_IIFNAME) ?: add_cmp(r, NFT_CMP_EQ, lo, sizeof(lo)) ?:
			       add_return(r) :
		       0);
	for (i = 0; i < p->n_excl_in_ports; i++) {
		r = rule_new(NFT_CHAIN_PREROUTING);
		batch_rule(bt, r, r ? add_dport(r, p->excl_in_ports[i]) ?: add_return(r) : 0);
	}
	if (p->fail_open) {
		r = rule_new(NFT_CHAIN_PREROUTING);
		batch_rule(bt, r, r ? add_not_alive(r) : 0);
	}
	r = rule_new(NFT_CHAIN_PREROUTING);
	batch_rule(bt, r, r ? add_redirect(r, p->inbound_port) : 0);
}

/* Send the batch and collect one answer per message. Returns the first
 * error the kernel reported (the batch then changed nothing) or 0.
 * nfnetlink processes a batch inside sendmsg() and queues every answer
 * before it returns; after an error, answers may be fewer than messages (an
 * error about the batch as a whole comes alone), so from then on only what is
 * already queued is read.
 */
static int batch_send(struct mnl_socket *nl, struct batch *bt)
{
	uint32_t portid = mnl_socket_get_portid(nl), answers = 0;
	char *buf;
	int err = 0;

	if (bt->err)
		return bt->err;
	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), bt->seq++);
	batch_next(bt);
	if (bt->err)
		return bt->err;
	if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(bt->b), mnl_nlmsg_batch_size(bt->b)) < 0)
		return -errno;
	buf = malloc(NFT_RECV_BUF);
	if (!buf)
		return -ENOMEM;
	while (answers < bt->n_acks) {
		ssize_t n = recv(mnl_socket_get_fd(nl), buf, NFT_RECV_BUF, err ? MSG_DONTWAIT : 0);
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;

		if (n < 0) {
			if (!err)
				err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		for (int left = (int)n; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;

			if (nlh->nlmsg_pid != portid || nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			answers++;
			if (e->error && !err)
				err = e->error;
		}
	}
	free(buf);
	return err;
}

static int rules_check(const struct nft_pod_rules *r)
{
	if (!r->outbound_port || !r->agent_cgroup_level || r->agent_cgroup_level > 255)
		return -EINVAL;
	if (r->n_excl_out_ports > NFT_EXCL_PORTS_MAX || r->n_excl_in_ports > NFT_EXCL_PORTS_MAX ||
	    r->n_excl_out_cidrs > NFT_EXCL_CIDRS_MAX)
		return -EINVAL;
	if (r->fail_open && !r->fail_open_after_ms)
		return -EINVAL;
	for (size_t i = 0; i < r->n_excl_out_cidrs; i++) {
		const struct cidr *c = &r->excl_out_cidrs[i];

		if (c->net.family != AF_INET && c->net.family != AF_INET6)
			return -EINVAL;
		if (c->prefix_len > (c->net.family == AF_INET ? 32u : 128u))
			return -EINVAL;
	}
	return 0;
}

/* Fill @bt with: table created if missing, deleted, created again with the
 * chains and rules of @p. Deleting inside the batch drops any earlier layout
 * (a chain of an older version, a hand-added rule) and the batch commits as
 * one transaction, so the pod never runs without the table.
 */
static void batch_pod(struct batch *bt, const struct nft_pod_rules *p)
{
	batch_table(bt, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	batch_table(bt, NFT_MSG_DELTABLE, 0);
	batch_table(bt, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL);
	/* With its element from the start: between this batch and the first
	 * heartbeat the pod must not count as one whose agent is gone.
	 */
	if (p->fail_open) {
		batch_alive_set(bt);
		batch_alive_beat(bt, p->fail_open_after_ms, false);
	}
	batch_chain(bt, NFT_CHAIN_OUTPUT, NF_INET_LOCAL_OUT);
	rules_output(bt, p);
	if (p->inbound_port) {
		batch_chain(bt, NFT_CHAIN_PREROUTING, NF_INET_PRE_ROUTING);
		rules_prerouting(bt, p);
	}
}
static int apply_on(struct mnl_socket *nl, const struct nft_pod_rules *r)
{
	struct nft_pod_state st;
	struct batch bt;
	int err;

	/* Already in place (a second apply, a restarted agent adopting the
	 * pod): send nothing, so rule handles and counters stay. */
	if (nft_read_on(nl, &st) == 0 && nft_pod_state_matches(&st, r))
		return 0;
	err = batch_init(&bt);
	if (err)
		return err;
	batch_pod(&bt, r);
	err = batch_send(nl, &bt);
	batch_free(&bt);
	return err ?: 1;
}

int nft_pod_apply(int netns_fd, const struct nft_pod_rules *r)
{
	struct mnl_socket *nl;
	int err;

	err = rules_check(r);
	if (err)
		return err;
	err = nft_nl_open(netns_fd, &nl);
	if (err)
		return err;
	err = apply_on(nl, r);
	mnl_socket_close(nl);
	return err;
}

int nft_pod_remove(int netns_fd)
{
	struct mnl_socket *nl;
	struct batch bt;
	int err;

	err = nft_nl_open(netns_fd, &nl);
	if (err)
		return err;
	err = batch_init(&bt);
	if (!err) {
		/* Created first so that the delete never fails on a missing
		 * table; both in one transaction: nothing is visible. */
		batch_table(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE);
		batch_table(&bt, NFT_MSG_DELTABLE, 0);
		err = batch_send(nl, &bt);
		batch_free(&bt);
	}
	mnl_socket_close(nl);
	return err;
}
int nft_pod_heartbeat(int netns_fd, uint32_t timeout_ms)
{
	struct mnl_socket *nl;
	struct batch bt;
	int err;

	if (!timeout_ms)
		return -EINVAL;
	err = nft_nl_open(netns_fd, &nl);
	if (err)
		return err;
	err = batch_init(&bt);
	if (!err) {
		batch_alive_beat(&bt, timeout_ms, true);
		err = batch_send(nl, &bt);
		batch_free(&bt);
	}
	mnl_socket_close(nl);
	return err;
}

/* ------------------------------------------------------------ probe */

/* The probe's steps, each its own batch in the throwaway netns, each adding
 * one feature to what the steps before proved: the first one the kernel
 * refuses names what this node lacks. */
enum probe_step { PROBE_TABLE, PROBE_NAT, PROBE_SOCKET, PROBE_REDIR, PROBE_N };

static const char *const probe_what[PROBE_N] = {
	[PROBE_TABLE] = "nf_tables (CONFIG_NF_TABLES, CONFIG_NF_TABLES_INET)",
	[PROBE_NAT] = "nat chains in an inet table (CONFIG_NFT_NAT, nf_nat)",
	[PROBE_SOCKET] = "the socket cgroupv2 match in the output hook (CONFIG_NFT_SOCKET)",
	[PROBE_REDIR] = "redirect (CONFIG_NFT_REDIR)",
};

static int probe_step(struct mnl_socket *nl, enum probe_step step)
{
	struct nftnl_rule *r;
	struct batch bt;
	int err;

	err = batch_init(&bt);
	if (err)
		return err;
	batch_table(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	if (step >= PROBE_NAT)
		batch_chain(&bt, NFT_CHAIN_OUTPUT, NF_INET_LOCAL_OUT);
	if (step == PROBE_SOCKET) {
		uint64_t id = 1;

		r = rule_new(NFT_CHAIN_OUTPUT);
		batch_rule(&bt, r,
			   r ? add_socket_cgroup(r, 1) ?: add_cmp(r, NFT_CMP_EQ, &id, sizeof(id)) ?:
				       add_return(r) :
			       0);
	} else if (step == PROBE_REDIR) {
		r = rule_new(NFT_CHAIN_OUTPUT);
		batch_rule(&bt, r, r ? add_redirect(r, 15001) : 0);
	}
	err = batch_send(nl, &bt);
	batch_free(&bt);
	return err;
}

int nft_probe(char *why, size_t len)
{
	struct nft_pod_rules r = {
		.outbound_port = 15001,
		.inbound_port = 15006,
		.agent_cgroup_id = 1,
		.agent_cgroup_level = 1,
		.n_excl_out_ports = 1,
		.excl_out_ports = { 1 },
		.n_excl_out_cidrs = 1,
		.excl_out_cidrs = { { .net = { .family = AF_INET }, .prefix_len = 8 } },
		.n_excl_in_ports = 1,
		.excl_in_ports = { 1 },
		.fail_open = true,
		.fail_open_after_ms = 1000,
	};
	struct nft_pod_state st;
	struct mnl_socket *nl;
	int err;

	/* A netns of its own: nothing of the node's is touched, and the netns
	 * (with the probe's table) goes away with the socket. */
	err = nft_nl_open(-1, &nl);
	if (err) {
		snprintf(why, len, "cannot open a netfilter netlink socket in a new netns: %s",
			 strerror(-err));
		return err;
	}
	for (int step = 0; step < PROBE_N; step++) {
		err = probe_step(nl, step);
		if (err) {
			snprintf(why, len, "missing %s: %s", probe_what[step], strerror(-err));
			goto out;
		}
	}
	/* The whole layout, as nft_pod_apply() writes it, and read back. */
	err = apply_on(nl, &r);
	if (err < 0) {
		snprintf(why, len, "nf_tables refused weft's table: %s", strerror(-err));
		goto out;
	}
	err = nft_read_on(nl, &st);
	if (!err && !nft_pod_state_matches(&st, &r))
		err = -EOPNOTSUPP;
	if (err)
		snprintf(why, len, "nf_tables does not read back what was written: %s",
			 strerror(-err));
	else
		snprintf(why, len, "nf_tables with nat chains, socket cgroupv2 and redirect");
out:
	mnl_socket_close(nl);
	return err;
}
