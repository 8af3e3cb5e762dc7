// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/datapath/retpath.h: rtnetlink requests (libmnl) on
 * a NETLINK_ROUTE socket opened inside the pod's netns, and the pod's
 * /proc/sys/net sysctls (tcp_fwmark_accept, fwmark_reflect) opened there too.
 *
 * Why it works without conntrack: the agent's SYN to the application carries
 * the inbound mark (SO_MARK) and, being addressed to a local address, loops
 * through lo, which keeps skb->mark. With tcp_fwmark_accept the request
 * socket takes that mark (inet_request_mark()), so the SYN-ACK's route lookup
 * and later the accepted socket's carry it; the fwmark rule sends them to a
 * table whose only route is `local default dev lo`, and the reply is
 * delivered to the agent's IP_TRANSPARENT socket bound to the client's
 * address. A looped-back packet keeps the dst of its output lookup, so no
 * input route lookup or reverse-path check sees the foreign source.
 */
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "netns.h"
#include "pod_sysctl.h"
#include "retpath.h"

#define RP_RECV_BUF (32 * 1024)	/* one dump datagram of a netns's routes */
#define RP_REQ_BUF 256		/* one request: a header and four u32 attributes */
#define RP_ACK_TIMEOUT_S 5	/* a kernel that never answers must not hang the loop */
#define RP_LO_IFINDEX 1		/* every netns's lo: the kernel's LOOPBACK_IFINDEX */
#define RP_FWMASK 0xffffffffu	/* the mark is matched whole */
#define RP_DEL_MAX 16		/* rule copies one remove deletes, at most */

/* Bit i of the "before" value retpath_apply() hands out is the value
 * pod_sysctls[i] (lib/pod_sysctl.h) had before.
 */
/* One conversation with a pod's netns. */
struct rp {
	struct mnl_socket *nl;
	int sysctl_fd[POD_SYSCTLS];	/* in the pod's netns; -1: absent */
	/* /proc/sys is read-only here (the agent in a container, as runtimes
	 * mount it): the sysctls are only read, weft-cni having set them.
	 */
	bool sysctl_ro;
	uint32_t seq;
	char *buf;		/* RP_RECV_BUF */
};

static bool retpath_valid(const struct retpath *r)
{
	return r->mark && r->table && (r->table < RT_TABLE_COMPAT || r->table > RT_TABLE_LOCAL) &&
	       r->priority >= 1 && r->priority <= 32765;
}

static void rp_close(struct rp *rp)
{
	if (rp->nl)
		mnl_socket_close(rp->nl);
	rp->nl = NULL;
	for (int i = 0; i < POD_SYSCTLS; i++) {
		if (rp->sysctl_fd[i] >= 0)
			close(rp->sysctl_fd[i]);
		rp->sysctl_fd[i] = -1;
	}
	free(rp->buf);
	rp->buf = NULL;
}

struct rp_opening {
	struct rp *rp;
	int fd;			/* the NETLINK_ROUTE socket */
};

/* In the pod's netns (netns_run()): the socket and the sysctl files. */
static int rp_open_in(void *ctx)
{
	struct rp_opening *o = ctx;
	struct rp *rp = o->rp;

	o->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (o->fd == -1)
		return -errno;
	for (int i = 0; i < POD_SYSCTLS; i++) {
		rp->sysctl_fd[i] = open(pod_sysctls[i].path, O_RDWR | O_CLOEXEC);
		if (rp->sysctl_fd[i] == -1 && (errno == EROFS || errno == EACCES)) {
			rp->sysctl_ro = true;
			rp->sysctl_fd[i] = open(pod_sysctls[i].path, O_RDONLY | O_CLOEXEC);
		}
		if (rp->sysctl_fd[i] == -1 && !(pod_sysctls[i].optional && errno == ENOENT))
			return -errno;
	}
	return 0;
}

/* Open the netlink socket and the sysctl files inside @netns_fd. Both keep
 * the netns they were opened in for life (a /proc/sys/net file resolves to
 * the opener's netns's table at lookup), so the thread is in the pod only for
 * the opens (netns_run()).
 */
static int rp_open(int netns_fd, struct rp *rp)
{
	struct timeval tv = { .tv_sec = RP_ACK_TIMEOUT_S };
	struct rp_opening o = { .rp = rp, .fd = -1 };
	int err;

	*rp = (struct rp){ .sysctl_fd = { -1, -1, -1 }, .seq = (uint32_t)time(NULL) };
	rp->buf = malloc(RP_RECV_BUF);
	if (!rp->buf)
		return -ENOMEM;
	err = netns_run(netns_fd, rp_open_in, &o);
	if (err)
		goto out_close_fd;
	/* A kernel that never answers must not hang the control loop. */
	(void)setsockopt(o.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rp->nl = mnl_socket_fdopen(o.fd);
	if (!rp->nl) {
		err = -errno;
		goto out_close_fd;
	}
	if (mnl_socket_bind(rp->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out_close;
	}
	return 0;
out_close_fd:
	if (o.fd >= 0)
		close(o.fd);
out_close:
	rp_close(rp);
	return err;
}

/* Send @nlh (NLM_F_ACK or NLM_F_DUMP set by the caller) and feed the answers
 * to @cb(@data) until the ACK or the end of the dump. 0 or the kernel's
 * -errno.
 */
static int rp_talk(struct rp *rp, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	uint32_t portid = mnl_socket_get_portid(rp->nl);
	ssize_t n;

	nlh->nlmsg_seq = ++rp->seq;
	if (mnl_socket_sendto(rp->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(rp->nl, rp->buf, RP_RECV_BUF);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		n = mnl_cb_run(rp->buf, (size_t)n, nlh->nlmsg_seq, portid, cb, data);
		if (n < 0)
			return -errno;
		if (n == MNL_CB_STOP)
			return 0;
	}
}

/* ------------------------------------------------------------ requests */

/* fwmark @mark/~0 lookup @table pref @priority, for @family. */
static struct nlmsghdr *put_rule(char *buf, uint16_t type, uint16_t flags, int family,
				 const struct retpath *r)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct fib_rule_hdr *frh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = (uint8_t)family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_PRIORITY, r->priority);
	mnl_attr_put_u32(nlh, FRA_FWMARK, r->mark);
	mnl_attr_put_u32(nlh, FRA_FWMASK, RP_FWMASK);
	mnl_attr_put_u32(nlh, FRA_TABLE, r->table);
	return nlh;
}

/* local 0.0.0.0/0 (::/0) dev lo table @table, for @family. */
static struct nlmsghdr *put_route(char *buf, uint16_t type, uint16_t flags, int family,
				  const struct retpath *r)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	rtm->rtm_type = RTN_LOCAL;
	/* Deleting: any scope and protocol, the type (IPv4) and device pick it. */
	rtm->rtm_scope = type == RTM_NEWROUTE ? RT_SCOPE_HOST : RT_SCOPE_NOWHERE;
	rtm->rtm_protocol = type == RTM_NEWROUTE ? RTPROT_STATIC : RTPROT_UNSPEC;
	mnl_attr_put_u32(nlh, RTA_TABLE, r->table);
	mnl_attr_put_u32(nlh, RTA_OIF, RP_LO_IFINDEX);
	return nlh;
}

/* ------------------------------------------------------------ reading */

/* Both attribute sets (FRA_*, RTA_*) in one table. */
#define RP_ATTR_MAX (FRA_MAX > RTA_MAX ? FRA_MAX : RTA_MAX)
_Static_assert(RP_ATTR_MAX < 64, "attribute types fit the seen mask");
_Static_assert(offsetof(struct fib_rule_hdr, family) == 0 &&
		       offsetof(struct rtmsg, rtm_family) == 0,
	       "a dump request's family is its first byte");

/* What a rule that carries only our selectors may hold besides them: the
 * kernel reports the suppress_* values and the originator on every rule. */
#define RULE_ATTRS_OK                                                                              \
	(1ull << FRA_PRIORITY | 1ull << FRA_FWMARK | 1ull << FRA_FWMASK | 1ull << FRA_TABLE |      \
	 1ull << FRA_SUPPRESS_PREFIXLEN | 1ull << FRA_SUPPRESS_IFGROUP | 1ull << FRA_PROTOCOL |    \
	 1ull << FRA_PAD)

struct rp_attrs {
	const struct nlattr *u32[RP_ATTR_MAX + 1];	/* the u32 ones */
	uint64_t seen;					/* every type present */
};

struct rp_match {
	const struct retpath *r;
	bool found;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	struct rp_attrs *at = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type > RP_ATTR_MAX)
		return MNL_CB_OK;
	at->seen |= 1ull << type;
	if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		at->u32[type] = a;
	return MNL_CB_OK;
}

static uint32_t attr_u32(const struct nlattr *a, uint32_t dflt)
{
	return a ? mnl_attr_get_u32(a) : dflt;
}

/* Ours: fwmark @mark/~0 lookup @table pref @priority and no other selector
 * (a rule that also matches an interface, a port or a uid is someone else's).
 */
static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	struct rp_attrs at = { 0 };
	struct rp_match *m = data;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*frh))
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*frh), attr_cb, &at);
	if (frh->action == FR_ACT_TO_TBL && !frh->src_len && !frh->dst_len && !frh->tos &&
	    !(frh->flags & FIB_RULE_INVERT) && !(at.seen & ~RULE_ATTRS_OK) &&
	    attr_u32(at.u32[FRA_PRIORITY], 0) == m->r->priority &&
	    attr_u32(at.u32[FRA_FWMARK], 0) == m->r->mark &&
	    attr_u32(at.u32[FRA_FWMASK], 0) == RP_FWMASK &&
	    attr_u32(at.u32[FRA_TABLE], frh->table) == m->r->table &&
	    attr_u32(at.u32[FRA_SUPPRESS_PREFIXLEN], UINT32_MAX) == UINT32_MAX &&
	    attr_u32(at.u32[FRA_SUPPRESS_IFGROUP], UINT32_MAX) == UINT32_MAX)
		m->found = true;
	return MNL_CB_OK;
}

/* Ours: local 0.0.0.0/0 (::/0) dev lo in @table, whatever its metric (the
 * kernel gives IPv6 routes 1024 when none is asked for). */
static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct rp_attrs at = { 0 };
	struct rp_match *m = data;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*rtm), attr_cb, &at);
	if (rtm->rtm_type == RTN_LOCAL && !rtm->rtm_dst_len && !rtm->rtm_src_len &&
	    attr_u32(at.u32[RTA_TABLE], rtm->rtm_table) == m->r->table &&
	    attr_u32(at.u32[RTA_OIF], 0) == RP_LO_IFINDEX)
		m->found = true;
	return MNL_CB_OK;
}

/* Whether the rule (@rule) or the route of @r for @family is there. A family
 * the kernel does not know (IPv6 off at boot) has neither.
 */
static int rp_has(struct rp *rp, const struct retpath *r, int family, bool rule, bool *out)
{
	char req[RP_REQ_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct rp_match m = { .r = r };
	uint8_t *family_byte;
	int err;

	nlh->nlmsg_type = rule ? RTM_GETRULE : RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	/* fib_rule_hdr and rtmsg both start with the family byte. */
	family_byte = mnl_nlmsg_put_extra_header(nlh, rule ? sizeof(struct fib_rule_hdr)
							   : sizeof(struct rtmsg));
	*family_byte = (uint8_t)family;
	err = rp_talk(rp, nlh, rule ? rule_cb : route_cb, &m);
	if (err == -EAFNOSUPPORT)
		err = 0;
	*out = m.found;
	return err;
}

static int sysctl_get(int fd, int *out)
{
	char buf[16] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n == -1)
		return -errno;
	if (n < 1 || (buf[0] != '0' && buf[0] != '1') || (n > 1 && buf[1] != '\n'))
		return -EPROTO;
	*out = buf[0] - '0';
	return 0;
}

static int sysctl_set(int fd, int v)
{
	char buf[2] = { v ? '1' : '0', '\n' };

	if (pwrite(fd, buf, sizeof(buf), 0) == -1)
		return -errno;
	return 0;
}

static const struct retpath_state state_unknown = {
	.fwmark_accept = -1, .fwmark_reflect4 = -1, .fwmark_reflect6 = -1,
};

static int read_on(struct rp *rp, const struct retpath *r, struct retpath_state *out)
{
	int *vals[POD_SYSCTLS] = { &out->fwmark_accept, &out->fwmark_reflect4,
				  &out->fwmark_reflect6 };
	int err;

	*out = state_unknown;
	if ((err = rp_has(rp, r, AF_INET, true, &out->rule4)) ||
	    (err = rp_has(rp, r, AF_INET6, true, &out->rule6)) ||
	    (err = rp_has(rp, r, AF_INET, false, &out->route4)) ||
	    (err = rp_has(rp, r, AF_INET6, false, &out->route6)))
		return err;
	for (int i = 0; i < POD_SYSCTLS && !err; i++) {
		if (rp->sysctl_fd[i] >= 0)
			err = sysctl_get(rp->sysctl_fd[i], vals[i]);
	}
	return err;
}

/* The sysctls' values as one "before" value: bit i is sysctl i's. */
static int sysctls_pack(const struct retpath_state *st)
{
	return (st->fwmark_accept == 1) << POD_SYSCTL_FWMARK_ACCEPT |
	       (st->fwmark_reflect4 == 1) << POD_SYSCTL_REFLECT4 |
	       (st->fwmark_reflect6 == 1) << POD_SYSCTL_REFLECT6;
}

int retpath_read(int netns_fd, const struct retpath *r, struct retpath_state *out)
{
	struct rp rp;
	int err;

	*out = state_unknown;
	err = rp_open(netns_fd, &rp);
	if (err)
		return err;
	err = read_on(&rp, r, out);
	rp_close(&rp);
	return err;
}

/* ------------------------------------------------------------ writing */

/* The route first, then the rule: a rule never points at an empty table.
 * Without IPv6 (-EAFNOSUPPORT: off at boot; -EACCES: disabled on lo by
 * sysctl) the family is skipped.
 */
static int add_family(struct rp *rp, const struct retpath *r, int family, bool has_route,
		      bool has_rule, const char **step)
{
	char req[RP_REQ_BUF];
	int err;

	if (!has_route) {
		*step = family == AF_INET ? "add route local 0.0.0.0/0" : "add route local ::/0";
		/* REPLACE: the table is weft's, whatever default route it held. */
		err = rp_talk(rp,
			      put_route(req, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, family, r),
			      NULL, NULL);
		if (family == AF_INET6 && (err == -EAFNOSUPPORT || err == -EACCES)) {
			log_debug("retpath: no IPv6 in the pod (%s), IPv4 only", strerror(-err));
			return 0;
		}
		if (err)
			return err;
	}
	if (!has_rule) {
		*step = family == AF_INET ? "add IPv4 fwmark rule" : "add IPv6 fwmark rule";
		/* EXCL: the kernel compares every selector; never a second copy. */
		err = rp_talk(rp, put_rule(req, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family, r),
			      NULL, NULL);
		if (err && err != -EEXIST)
			return err;
	}
	return 0;
}

int retpath_apply(int netns_fd, const struct retpath *r, int *sysctls_before)
{
	const char *step = "open the pod's netns";
	struct retpath_state st;
	struct rp rp;
	int err;

	if (!retpath_valid(r))
		return log_errno(-EINVAL, "retpath: mark 0x%x table %u priority %u", r->mark,
				 r->table, r->priority);
	err = rp_open(netns_fd, &rp);
	if (err)
		goto out;
	step = "read back";
	err = read_on(&rp, r, &st);
	if (err)
		goto out_close;
	*sysctls_before = sysctls_pack(&st);
	err = add_family(&rp, r, AF_INET, st.route4, st.rule4, &step);
	if (!err)
		err = add_family(&rp, r, AF_INET6, st.route6, st.rule6, &step);
	for (int i = 0; i < POD_SYSCTLS && !err; i++) {
		if (rp.sysctl_fd[i] < 0 || (*sysctls_before >> i & 1))
			continue;
		step = pod_sysctls[i].path;
		/* Read-only to the agent and not set by weft-cni at ADD: the
		 * application's replies would leave the pod. Say so, never
		 * half-apply.
		 */
		err = rp.sysctl_ro ? -EROFS : sysctl_set(rp.sysctl_fd[i], 1);
	}
out_close:
	rp_close(&rp);
out:
	if (err == -EROFS)
		return log_errno(err, "retpath: %s is 0 in the pod and /proc/sys is read-only to the agent; weft-cni sets it at ADD (is weft-cni chained?)",
				 step);
	if (err)
		return log_errno(err, "retpath: %s (mark 0x%x table %u)", step, r->mark, r->table);
	return 0;
}

/* Delete one piece; one that is not there is not an error. */
static int del(struct rp *rp, struct nlmsghdr *nlh)
{
	int err = rp_talk(rp, nlh, NULL, NULL);

	/* -ESRCH: IPv4's "no such route"; -EAFNOSUPPORT: no IPv6 at all. */
	if (err == -ENOENT || err == -ESRCH || err == -EAFNOSUPPORT)
		return 1;
	return err;
}

int retpath_remove(int netns_fd, const struct retpath *r, int sysctls_before)
{
	static const int families[] = { AF_INET, AF_INET6 };
	const char *step = "open the pod's netns";
	char req[RP_REQ_BUF];
	struct rp rp;
	int err, i, n;

	if (!retpath_valid(r))
		return log_errno(-EINVAL, "retpath: mark 0x%x table %u priority %u", r->mark,
				 r->table, r->priority);
	err = rp_open(netns_fd, &rp);
	if (err)
		goto out;
	/* Rules first: no moment with a rule pointing at an empty table. */
	for (i = 0; i < 2 && !err; i++) {
		step = families[i] == AF_INET ? "delete IPv4 fwmark rule"
					      : "delete IPv6 fwmark rule";
		/* Copies another program made with our exact selectors go too. */
		for (n = 0; n < RP_DEL_MAX && !err; n++)
			err = del(&rp, put_rule(req, RTM_DELRULE, 0, families[i], r));
		err = err == 1 ? 0 : err;
	}
	for (i = 0; i < 2 && !err; i++) {
		step = families[i] == AF_INET ? "delete route local 0.0.0.0/0"
					      : "delete route local ::/0";
		err = del(&rp, put_route(req, RTM_DELROUTE, 0, families[i], r));
		err = err == 1 ? 0 : err;
	}
	for (int i = 0; i < POD_SYSCTLS && !err && sysctls_before >= 0 && !rp.sysctl_ro; i++) {
		if (rp.sysctl_fd[i] < 0)
			continue;
		step = pod_sysctls[i].path;
		err = sysctl_set(rp.sysctl_fd[i], sysctls_before >> i & 1);
	}
	rp_close(&rp);
out:
	if (err)
		return log_errno(err, "retpath: %s (mark 0x%x table %u)", step, r->mark, r->table);
	return 0;
}
