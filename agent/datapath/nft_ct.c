// SPDX-License-Identifier: GPL-2.0-only
/* nft mode's DNS capture: which resolver a redirected UDP query was sent to.
 * The output chain's redirect rewrote its destination to the responder
 * (127.0.0.1 or ::1); conntrack holds the original tuple, found here from
 * the reply tuple the responder knows (its own address and port, the
 * client's) with one ctnetlink GET on a NETLINK_NETFILTER socket made in the
 * pod's netns. IPv4 and IPv6 alike: a tuple is of one family.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"
#include "nft.h"

/* A conntrack lookup is answered from memory: a short bound keeps the
 * control loop responsive if it never is.
 */
#define CT_TIMEOUT_MS 200

static int ct_open_in(void *ctx)
{
	int *fd = ctx;

	*fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	return *fd == -1 ? -errno : 0;
}

int nft_ct_open(int netns_fd)
{
	struct timeval tv = { .tv_usec = CT_TIMEOUT_MS * 1000 };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd = -1, err;

	err = netns_run(netns_fd, ct_open_in, &fd);
	if (err)
		return err;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* The tuple @src -> @dst (both of one family, checked by the caller). */
static void put_tuple(struct nlmsghdr *nlh, uint16_t type, const struct sockaddr *src,
		      const struct sockaddr *dst, uint8_t proto)
{
	struct nlattr *tuple = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	struct nlattr *l4;
	uint16_t sport, dport;

	if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
		const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;

		mnl_attr_put(nlh, CTA_IP_V6_SRC, sizeof(s6->sin6_addr), &s6->sin6_addr);
		mnl_attr_put(nlh, CTA_IP_V6_DST, sizeof(d6->sin6_addr), &d6->sin6_addr);
		sport = s6->sin6_port;
		dport = d6->sin6_port;
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
		const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;

		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, s4->sin_addr.s_addr);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, d4->sin_addr.s_addr);
		sport = s4->sin_port;
		dport = d4->sin_port;
	}
	mnl_attr_nest_end(nlh, ip);
	l4 = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, sport);
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, dport);
	mnl_attr_nest_end(nlh, l4);
	mnl_attr_nest_end(nlh, tuple);
}

/* The attribute of type @type directly inside @nest, or NULL. */
static const struct nlattr *nested(const struct nlattr *nest, uint16_t type)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, nest) {
		if (mnl_attr_get_type(a) == type)
			return a;
	}
	return NULL;
}

struct ct_answer {
	struct sockaddr_storage *out;
	bool found;
};

static int ct_attr(const struct nlattr *a, void *data)
{
	struct ct_answer *ans = data;
	const struct nlattr *ip, *l4, *dst4, *dst6, *port;

	if (mnl_attr_get_type(a) != CTA_TUPLE_ORIG)
		return MNL_CB_OK;
	ip = nested(a, CTA_TUPLE_IP);
	l4 = nested(a, CTA_TUPLE_PROTO);
	dst4 = ip ? nested(ip, CTA_IP_V4_DST) : NULL;
	dst6 = ip ? nested(ip, CTA_IP_V6_DST) : NULL;
	port = l4 ? nested(l4, CTA_PROTO_DST_PORT) : NULL;
	if (!port || mnl_attr_get_payload_len(port) != 2)
		return MNL_CB_OK;
	memset(ans->out, 0, sizeof(*ans->out));
	if (dst4 && mnl_attr_get_payload_len(dst4) == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)ans->out;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = mnl_attr_get_u32(dst4);
		in->sin_port = mnl_attr_get_u16(port);
	} else if (dst6 && mnl_attr_get_payload_len(dst6) == 16) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ans->out;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, mnl_attr_get_payload(dst6), 16);
		in6->sin6_port = mnl_attr_get_u16(port);
	} else {
		return MNL_CB_OK;
	}
	ans->found = true;
	return MNL_CB_OK;
}

static int ct_msg(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct nfgenmsg), ct_attr, data);
}

int nft_ct_orig_dst(int ct_fd, uint8_t proto, const struct sockaddr *local,
		    const struct sockaddr *peer, struct sockaddr_storage *out)
{
	/* A sequence number per request, not per second: a reply to an
	 * earlier request that timed out must not be taken for this one's.
	 */
	static _Atomic uint32_t next_seq;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ct_answer ans = { .out = out };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	uint32_t seq = ++next_seq ^ (uint32_t)time(NULL) << 20;
	ssize_t n;
	int ret;

	if (local->sa_family != peer->sa_family ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	/* No NLM_F_ACK: the entry found is the answer, and a lookup that fails
	 * is answered with an error message anyway; an acknowledgement after
	 * the entry would cost a third system call per forwarded query.
	 */
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)local->sa_family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	/* The reply direction runs from the responder back to the client. */
	put_tuple(nlh, CTA_TUPLE_REPLY, local, peer, proto);
	if (send(ct_fd, nlh, nlh->nlmsg_len, 0) == -1)
		return -errno;
	do {
		n = recv(ct_fd, buf, sizeof(buf), 0);
		if (n == -1)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		errno = 0;
		ret = mnl_cb_run(buf, (size_t)n, seq, 0, ct_msg, &ans);
		/* A late reply to an earlier, timed-out request: skip it. */
		if (ret == MNL_CB_ERROR && errno == EPROTO)
			ret = MNL_CB_OK;
	} while (ret == MNL_CB_OK && !ans.found);
	if (ret == MNL_CB_ERROR && !ans.found)
		return errno ? -errno : -EIO;
	return ans.found ? 0 : -ENOENT;
}
