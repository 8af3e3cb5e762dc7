// SPDX-License-Identifier: GPL-2.0-only
/* Reading table inet weft back: GET dumps of its chains and rules, the rules
 * decoded into the nft_pod_rules they carry, and the comparison with what
 * nft_pod_apply() would write (nft.h, nft_internal.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <string.h>

#include "nft_internal.h"

static void table_payload(struct nlmsghdr *nlh, void *obj)
{
	nftnl_table_nlmsg_build_payload(nlh, obj);
}

static void rule_payload(struct nlmsghdr *nlh, void *obj)
{
	nftnl_rule_nlmsg_build_payload(nlh, obj);
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	((struct nft_pod_state *)data)->table_present = true;
	return MNL_CB_OK;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nft_pod_state *st = data;
	struct nft_chain_state *cs = NULL;
	struct nftnl_chain *c = nftnl_chain_alloc();
	const char *name;

	if (!c)
		return MNL_CB_ERROR;
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0)
		goto out;
	if (strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE) ?: "", NFT_TABLE_NAME))
		goto out;
	st->n_chains++;
	name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME) ?: "";
	if (!strcmp(name, NFT_CHAIN_OUTPUT))
		cs = &st->output;
	else if (!strcmp(name, NFT_CHAIN_PREROUTING))
		cs = &st->prerouting;
	if (!cs || !nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM))
		goto out;
	cs->present = true;
	cs->hooknum = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
	cs->prio = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
	snprintf(cs->type, sizeof(cs->type), "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE) ?: "");
out:
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

/* One rule, flattened: the expressions of the shapes this file writes. */
struct rule_view {
	bool out;		/* output chain, else prerouting */
	int socket_level;	/* -1: none */
	int payload_base, payload_off;	/* -1: none */
	uint32_t payload_len;
	const void *mask;
	const void *cmp;	/* data of the last cmp */
	uint32_t cmp_len;
	int cmp_op;
	const void *imm;	/* immediate data (the redirect port) */
	uint32_t imm_len;
	bool redir;
	bool nfproto;		/* loads meta nfproto (matches one family) */
	bool not_alive;		/* a lookup of NFT_ALIVE_SET, inverted: fail-open */
	uint64_t packets;	/* its counter */
};

static int expr_cb(struct nftnl_expr *e, void *data)
{
	struct rule_view *v = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
	uint32_t len;

	if (!strcmp(name, "socket") &&
	    nftnl_expr_get_u32(e, NFTNL_EXPR_SOCKET_KEY) == NFT_SOCKET_CGROUPV2) {
		v->socket_level = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_SOCKET_LEVEL);
	} else if (!strcmp(name, "payload")) {
		v->payload_base = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE);
		v->payload_off = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
		v->payload_len = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);
	} else if (!strcmp(name, "bitwise")) {
		v->mask = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len);
	} else if (!strcmp(name, "cmp")) {
		v->cmp = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &v->cmp_len);
		v->cmp_op = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP);
	} else if (!strcmp(name, "immediate") && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_DATA)) {
		v->imm = nftnl_expr_get(e, NFTNL_EXPR_IMM_DATA, &v->imm_len);
	} else if (!strcmp(name, "meta") &&
		   nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_NFPROTO) {
		v->nfproto = true;
	} else if (!strcmp(name, "redir")) {
		v->redir = true;
	} else if (!strcmp(name, "lookup")) {
		v->not_alive = !strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET) ?: "",
				       NFT_ALIVE_SET) &&
			       (nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_FLAGS) & NFT_LOOKUP_F_INV);
	} else if (!strcmp(name, "counter")) {
		v->packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
	}
	return 0;
}

static unsigned int mask_prefix(const uint8_t *mask, uint32_t len)
{
	unsigned int n = 0;

	for (uint32_t i = 0; i < len; i++)
		n += (unsigned int)__builtin_popcount(mask[i]);
	return n;
}

/* Record what one rule says in @st. */
static void rule_decode(const struct rule_view *v, struct nft_pod_state *st)
{
	struct nft_pod_rules *p = &st->rules;
	uint16_t port;

	if (v->not_alive) {
		/* Both chains carry it; either says the pod is fail-open. */
		p->fail_open = true;
		/* The DNS rule's (a constant key: v->imm) counts datagrams,
		 * not connections.
		 */
		if (!v->imm)
			*(v->out ? &st->failed_open_out : &st->failed_open_in) = v->packets;
	} else if (v->redir && v->imm && v->imm_len == 2 && v->out && v->cmp && v->cmp_len == 2 &&
		   !memcmp(v->cmp, &(uint16_t){ htons(NFT_DNS_PORT) }, 2)) {
		/* Only the DNS rules match a port before redirecting. */
		memcpy(&port, v->imm, 2);
		p->dns_port = ntohs(port);
		st->dns_v4_only |= v->nfproto;
	} else if (v->redir && v->imm && v->imm_len == 2) {
		memcpy(&port, v->imm, 2);
		*(v->out ? &p->outbound_port : &p->inbound_port) = ntohs(port);
	} else if (v->socket_level >= 0 && v->cmp && v->cmp_len == 8) {
		p->agent_cgroup_level = (uint32_t)v->socket_level;
		memcpy(&p->agent_cgroup_id, v->cmp, 8);
	} else if (v->payload_base == NFT_PAYLOAD_TRANSPORT_HEADER && v->payload_off == 2 &&
		   v->cmp && v->cmp_len == 2) {
		memcpy(&port, v->cmp, 2);
		if (v->out && p->n_excl_out_ports < NFT_EXCL_PORTS_MAX)
			p->excl_out_ports[p->n_excl_out_ports++] = ntohs(port);
		else if (!v->out && p->n_excl_in_ports < NFT_EXCL_PORTS_MAX)
			p->excl_in_ports[p->n_excl_in_ports++] = ntohs(port);
	} else if (v->out && v->payload_base == NFT_PAYLOAD_NETWORK_HEADER && v->cmp &&
		   (v->cmp_len == 4 || v->cmp_len == 16) && v->cmp_len == v->payload_len) {
		struct cidr c = { 0 };

		c.prefix_len = v->mask ? mask_prefix(v->mask, v->cmp_len) : 8 * v->cmp_len;
		if (v->cmp_len == 4) {
			c.net.family = AF_INET;
			memcpy(&c.net.ip.v4, v->cmp, 4);
			/* The loopback rules are part of the layout, not exclusions. */
			if (c.prefix_len == 8 && c.net.ip.v4.s_addr == htonl(0x7f000000))
				return;
		} else {
			c.net.family = AF_INET6;
			memcpy(&c.net.ip.v6, v->cmp, 16);
			if (c.prefix_len == 128 && IN6_IS_ADDR_LOOPBACK(&c.net.ip.v6))
				return;
		}
		if (p->n_excl_out_cidrs < NFT_EXCL_CIDRS_MAX)
			p->excl_out_cidrs[p->n_excl_out_cidrs++] = c;
	}
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nft_pod_state *st = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct rule_view v = { .socket_level = -1, .payload_base = -1, .payload_off = -1 };
	const char *chain;

	if (!r)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0 ||
	    strcmp(nftnl_rule_get_str(r, NFTNL_RULE_TABLE) ?: "", NFT_TABLE_NAME))
		goto out;
	chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN) ?: "";
	if (!strcmp(chain, NFT_CHAIN_OUTPUT)) {
		v.out = true;
		st->output.n_rules++;
	} else if (!strcmp(chain, NFT_CHAIN_PREROUTING)) {
		st->prerouting.n_rules++;
	} else {
		goto out;
	}
	nftnl_expr_foreach(r, expr_cb, &v);
	rule_decode(&v, st);
out:
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

int nft_read_on(struct mnl_socket *nl, struct nft_pod_state *out)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftnl_rule *r = nftnl_rule_alloc();
	int err = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (!t || !r)
		goto out;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE_NAME);
	err = nft_nl_get(nl, NFT_MSG_GETTABLE, NLM_F_ACK, table_payload, t, table_cb, out);
	if (err == -ENOENT) {
		err = 0;
		goto out;
	}
	if (err)
		goto out;
	err = nft_nl_get(nl, NFT_MSG_GETCHAIN, NLM_F_DUMP, NULL, NULL, chain_cb, out);
	if (err)
		goto out;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE_NAME);
	err = nft_nl_get(nl, NFT_MSG_GETRULE, NLM_F_DUMP, rule_payload, r, rule_cb, out);
out:
	nftnl_table_free(t);
	nftnl_rule_free(r);
	return err;
}

int nft_pod_read(int netns_fd, struct nft_pod_state *out)
{
	struct mnl_socket *nl;
	int err;

	memset(out, 0, sizeof(*out));
	err = nft_nl_open(netns_fd, &nl);
	if (err)
		return err;
	err = nft_read_on(nl, out);
	mnl_socket_close(nl);
	return err;
}

static bool ports_equal(const uint16_t *a, size_t na, const uint16_t *b, size_t nb)
{
	return na == nb && !memcmp(a, b, na * sizeof(*a));
}

bool nft_pod_state_matches(const struct nft_pod_state *st, const struct nft_pod_rules *r)
{
	const struct nft_pod_rules *k = &st->rules;
	bool in = r->inbound_port != 0;
	uint32_t fo = r->fail_open ? 1 : 0;

	if (!st->table_present || st->n_chains != (in ? 2u : 1u))
		return false;
	if (!st->output.present || st->output.hooknum != NF_INET_LOCAL_OUT ||
	    st->output.prio != NFT_CHAIN_PRIO || strcmp(st->output.type, "nat") ||
	    st->output.n_rules != 5 + fo + (r->dns_port ? 3 + fo : 0) + r->n_excl_out_ports +
					  r->n_excl_out_cidrs)
		return false;
	if (in && (!st->prerouting.present || st->prerouting.hooknum != NF_INET_PRE_ROUTING ||
		   st->prerouting.prio != NFT_CHAIN_PRIO || strcmp(st->prerouting.type, "nat") ||
		   st->prerouting.n_rules != 3 + fo + r->n_excl_in_ports))
		return false;
	if (k->fail_open != r->fail_open || st->dns_v4_only)
		return false;
	if (k->outbound_port != r->outbound_port || k->inbound_port != r->inbound_port ||
	    k->dns_port != r->dns_port ||
	    k->agent_cgroup_id != r->agent_cgroup_id ||
	    k->agent_cgroup_level != r->agent_cgroup_level)
		return false;
	if (!ports_equal(k->excl_out_ports, k->n_excl_out_ports, r->excl_out_ports,
			 r->n_excl_out_ports) ||
	    (in && !ports_equal(k->excl_in_ports, k->n_excl_in_ports, r->excl_in_ports,
				r->n_excl_in_ports)) ||
	    k->n_excl_out_cidrs != r->n_excl_out_cidrs)
		return false;
	for (size_t i = 0; i < r->n_excl_out_cidrs; i++)
		if (k->excl_out_cidrs[i].prefix_len != r->excl_out_cidrs[i].prefix_len ||
		    !addr_ip_equal(&k->excl_out_cidrs[i].net, &r->excl_out_cidrs[i].net))
			return false;
	return true;
}

struct alive_read {
	bool alive;
	uint64_t expires_ms;
};

static int alive_elem(struct nftnl_set_elem *e, void *data)
{
	struct alive_read *ar = data;
	uint32_t len = 0;
	const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);

	/* An element past its expiry that the kernel still lists (its garbage
	 * collection runs later) no longer matches: it does not count.
	 */
	if (key && len >= 1 && key[0] == IPPROTO_TCP &&
	    nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION) &&
	    nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION) > 0) {
		ar->alive = true;
		ar->expires_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
	}
	return 0;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) >= 0)
		nftnl_set_elem_foreach(s, alive_elem, data);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static void elems_payload(struct nlmsghdr *nlh, void *obj)
{
	nftnl_set_elems_nlmsg_build_payload(nlh, obj);
}

int nft_pod_alive(int netns_fd, bool *alive, uint64_t *expires_ms)
{
	struct alive_read ar = { 0 };
	struct mnl_socket *nl;
	struct nftnl_set *s;
	int err;

	*alive = false;
	*expires_ms = 0;
	s = nftnl_set_alloc();
	if (!s)
		return -ENOMEM;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE_NAME);
	nftnl_set_set_str(s, NFTNL_SET_NAME, NFT_ALIVE_SET);
	err = nft_nl_open(netns_fd, &nl);
	if (!err) {
		err = nft_nl_get(nl, NFT_MSG_GETSETELEM, NLM_F_DUMP, elems_payload, s, elems_cb,
				 &ar);
		mnl_socket_close(nl);
	}
	nftnl_set_free(s);
	if (err)
		return err;
	*alive = ar.alive;
	*expires_ms = ar.expires_ms;
	return 0;
}
