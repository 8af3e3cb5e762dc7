// SPDX-License-Identifier: GPL-2.0-only
/* The in-pod DNS responder (responder.h). A query is answered with
 * dns_answer() when it names a service of the catalogue; anything else goes
 * to the resolver the pod asked, as it was sent (UDP: only the id is
 * changed on the way, so one socket per pod serves every pending query, and
 * restored on the answer; TCP: the stream is relayed message by message),
 * and the resolver's answer comes back byte for byte: TTLs, TC bit and all.
 * A truncated UDP answer makes the client ask again over TCP, which capture
 * sends here as well.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "dns.h"
#include "log.h"
#include "loop.h"
#include "netns.h"
#include "responder.h"

#define DNS_HDR 12
#define UDP_BATCH 32		/* datagrams read per readiness event */
#define TCP_IDLE_MS 10000	/* a TCP client that sends nothing for this long is closed */
#define TCP_BUF (2 + DNS_TCP_MAX)	/* one framed message */
#define TCP_OUT_MAX (4 * TCP_BUF)	/* queued for a slow reader before the connection goes */

_Static_assert((DNSR_PENDING_POD & (DNSR_PENDING_POD - 1)) == 0 && DNSR_PENDING_POD <= 4096,
	       "a forwarded id carries the pending slot in its low bits");

#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

/* A pod-side address: a client, or the address its query arrived on. IPv4
 * (the responder's 0.0.0.0 sockets) or IPv6 (its [::1] ones).
 */
union pod_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* A UDP query forwarded and waiting for its answer. */
struct pending {
	struct dnsr_pod *rp;
	bool used;
	uint16_t client_id;	/* network order, as the client sent it */
	uint16_t up_id;		/* network order, as sent upstream */
	union pod_addr client, local;
	/* The resolver as the forwarding socket names it: IPv6, an IPv4
	 * resolver IPv4-mapped (the socket is dual-stack).
	 */
	struct sockaddr_in6 resolver;
	struct sockaddr_in resolver4;	/* the same, for an IPv4-only forwarding socket */
	struct loop_timer timer;
};

/* A growable byte queue, bounded by its user. */
struct bytes {
	uint8_t *d;
	size_t len, cap;
};

/* One TCP client and, once it asked something the agent does not own, its
 * connection to the resolver.
 */
struct tcp_conn {
	struct dnsr_pod *rp;
	struct tcp_conn *next;		/* in rp->conns */
	int fd, up_fd;
	bool up_connected, client_eof;
	struct loop_watch w, up_w;
	union pod_addr local, peer;
	struct bytes in, out, up_in, up_out;
	unsigned int up_waiting;	/* queries sent upstream not yet answered */
	struct loop_timer idle;
};

struct dnsr_pod {
	struct dnsr *r;
	struct dnsr_pod *next;		/* in r->pods */
	uint32_t pod_id;
	int netns_fd;			/* borrowed */
	int udp_fd, tcp_fd, ct_fd;
	int udp6_fd, tcp6_fd;		/* on [::1] (deps.listen6); -1: none */
	int fwd_fd;			/* AF_INET6, dual-stack: to IPv4 and IPv6 resolvers */
	bool fwd_v4;			/* AF_INET instead: the kernel has no IPv6 */
	size_t next_slot;		/* where the search for a free pending slot starts */
	unsigned int n_pending, n_conns;
	struct pending pending[DNSR_PENDING_POD];
	struct tcp_conn *conns;
};

/* Why a datagram of an outgoing batch is sent: what it counts once sent. */
enum out_kind {
	OUT_ANSWER,	/* the agent's own answer: answered */
	OUT_FORWARD,	/* a resolver's answer relayed: forwarded */
	OUT_SERVFAIL,	/* already counted failed */
};

/* One batch's scratch space, shared by every pod: the loop is one thread and
 * a batch is sent before its handler returns. Heap-allocated once (the
 * buffers are 2 MiB of address space, touched only as far as datagrams go).
 */
struct udp_batch {
	uint8_t buf[UDP_BATCH][DNS_TCP_MAX];
	struct mmsghdr in[UDP_BATCH];
	struct iovec in_iov[UDP_BATCH];
	union pod_addr in_from[UDP_BATCH];	/* the pod's clients, or the resolvers */
	char in_cbuf[UDP_BATCH][CMSG_SPACE(sizeof(struct in_pktinfo))];

	/* To the pod's clients, from the address each query arrived on (an
	 * IPv4 client's through udp_fd, an IPv6 one's through udp6_fd).
	 */
	unsigned int n_out;
	struct mmsghdr out[UDP_BATCH];
	struct iovec out_iov[UDP_BATCH];
	union pod_addr out_to[UDP_BATCH];
	char out_cbuf[UDP_BATCH][CMSG_SPACE(sizeof(struct in_pktinfo))];
	enum out_kind out_kind[UDP_BATCH];
	uint8_t *out_owned[UDP_BATCH];		/* dns_answer()'s, freed once sent */
	uint8_t servfail[UDP_BATCH][DNS_HDR];

	/* To the resolvers, from the pod's forwarding socket. */
	unsigned int n_up;
	struct mmsghdr up[UDP_BATCH];
	struct iovec up_iov[UDP_BATCH];
	struct pending *up_pending[UDP_BATCH];
};

struct dnsr {
	struct dnsr_deps deps;
	struct dnsr_pod *pods;
	struct dnsr_counters n;
	struct udp_batch *batch;	/* every pod's UDP scratch space */
	uint32_t rand;			/* the forwarded ids' generator, never 0 */
};

#define COUNTER(f, t, h) { #f, t, h, offsetof(struct dnsr_counters, f) }
const struct dnsr_counter_def dnsr_counter_defs[] = {
	COUNTER(answered, "counter", "DNS queries of meshed pods the agent answered."),
	COUNTER(forwarded, "counter",
		"Answers of the pods' resolvers the agent relayed (names it does not own)."),
	COUNTER(failed, "counter",
		"DNS queries neither answered nor relayed: no resolver known, a bound reached, "
		"the resolver silent or unreachable."),
	COUNTER(truncated, "counter", "UDP answers sent with TC set (the client asks over TCP)."),
	COUNTER(tcp, "counter", "TCP connections to the pods' DNS responders."),
	COUNTER(pending, "gauge", "UDP queries forwarded and waiting for their resolver."),
	COUNTER(pods, "gauge", "Pod network namespaces with a DNS responder."),
};
const size_t dnsr_n_counter_defs = sizeof(dnsr_counter_defs) / sizeof(dnsr_counter_defs[0]);

struct dnsr *dnsr_new(const struct dnsr_deps *deps)
{
	struct dnsr *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->deps = *deps;
	r->batch = malloc(sizeof(*r->batch));
	if (!r->batch) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->batch->n_out = r->batch->n_up = 0;
	/* The forwarded ids' high bits: unpredictable from outside the node. */
	if (getrandom(&r->rand, sizeof(r->rand), GRND_NONBLOCK) != sizeof(r->rand))
		r->rand = (uint32_t)mono_ms() ^ (uint32_t)getpid() << 16;
	r->rand |= 1;	/* xorshift stays at 0 once there */
	return r;
}

void dnsr_free(struct dnsr *r)
{
	if (!r)
		return;
	while (r->pods)
		dnsr_pod_close(r, r->pods);
	free(r->batch);
	free(r);
}

void dnsr_counters(const struct dnsr *r, struct dnsr_counters *out)
{
	*out = r->n;
}

static int bytes_put(struct bytes *b, const void *p, size_t n, size_t max)
{
	if (b->len + n > max)
		return -ENOBUFS;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		uint8_t *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->d, cap);
		if (!d)
			return -ENOMEM;
		b->d = d;
		b->cap = cap;
	}
	memcpy(b->d + b->len, p, n);
	b->len += n;
	return 0;
}

static void bytes_drop(struct bytes *b, size_t n)
{
	memmove(b->d, b->d + n, b->len - n);
	b->len -= n;
}

static void bytes_free(struct bytes *b)
{
	free(b->d);
	b->d = NULL;
	b->len = b->cap = 0;
}

/* The length of the first framed message in @b when it is complete, else 0. */
static size_t frame_ready(const struct bytes *b)
{
	size_t n;

	if (b->len < 2)
		return 0;
	n = (size_t)b->d[0] << 8 | b->d[1];
	return b->len >= 2 + n ? n : 0;
}

static bool is_loopback(const union pod_addr *a)
{
	if (a->sa.sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&a->in6.sin6_addr);
	return a->sa.sa_family == AF_INET && (ntohl(a->in.sin_addr.s_addr) >> 24) == 127;
}

static socklen_t pod_addr_len(const union pod_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);
}

/* @a as "ADDR:PORT" or "[ADDR]:PORT", for the log. */
static const char *pod_addr_text(const union pod_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	bool v6 = a->sa.sa_family == AF_INET6;

	inet_ntop(a->sa.sa_family, v6 ? (const void *)&a->in6.sin6_addr : &a->in.sin_addr, ip,
		  sizeof(ip));
	snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", ip,
		 ntohs(v6 ? a->in6.sin6_port : a->in.sin_port));
	return buf;
}

/* Header-only SERVFAIL for @q: the query could not be forwarded, and the
 * client should learn now rather than after its timeout. @q has at least a
 * header. Writes DNS_HDR bytes into @out.
 */
static void servfail(const uint8_t *q, uint8_t *out)
{
	memset(out, 0, DNS_HDR);
	out[0] = q[0];
	out[1] = q[1];
	out[2] = (uint8_t)(0x80 | (q[2] & 0x79));	/* QR, opcode and RD as asked */
	out[3] = 2;					/* RCODE SERVFAIL */
}

/* ---- UDP
 *
 * Datagrams go in and out in batches: one recvmmsg() reads what a socket
 * holds (up to UDP_BATCH), and the answers, SERVFAILs and forwarded queries
 * that batch makes leave in one sendmmsg() per socket. Under load a system
 * call then carries many queries, where it carried one (the kernel's share
 * of a forwarded query was most of its cost). At a trickle a batch is one
 * datagram, and nothing waits for a batch to fill.
 */

static void count_reply(struct dnsr *r, const uint8_t *msg, size_t len)
{
	if (len > 2 && (msg[2] & 0x02))
		r->n.truncated++;
}

/* Queue @msg (@len bytes) for @to, sent from @from (of @to's family); the
 * batch frees @owned once sent. The batch has room: each received datagram
 * queues at most one.
 */
static void out_add(struct udp_batch *b, const uint8_t *msg, size_t len, uint8_t *owned,
		    enum out_kind kind, const union pod_addr *from, const union pod_addr *to)
{
	unsigned int k = b->n_out++;
	struct msghdr *mh = &b->out[k].msg_hdr;
	struct in_pktinfo pi = { .ipi_spec_dst = from->in.sin_addr };
	struct cmsghdr *c;

	b->out_iov[k] = (struct iovec){ .iov_base = (void *)msg, .iov_len = len };
	b->out_to[k] = *to;
	b->out_kind[k] = kind;
	b->out_owned[k] = owned;
	memset(b->out_cbuf[k], 0, sizeof(b->out_cbuf[k]));
	*mh = (struct msghdr){
		.msg_name = &b->out_to[k],
		.msg_namelen = pod_addr_len(to),
		.msg_iov = &b->out_iov[k],
		.msg_iovlen = 1,
		.msg_control = b->out_cbuf[k],
		.msg_controllen = sizeof(b->out_cbuf[k]),
	};
	if (to->sa.sa_family == AF_INET6) {
		/* udp6_fd is bound to ::1, the one address it answers from. */
		mh->msg_control = NULL;
		mh->msg_controllen = 0;
		return;
	}
	c = CMSG_FIRSTHDR(mh);
	c->cmsg_level = IPPROTO_IP;
	c->cmsg_type = IP_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(pi));
	memcpy(CMSG_DATA(c), &pi, sizeof(pi));
}

/* Queue a header-only SERVFAIL for query @q (at least a header). */
static void out_servfail(struct udp_batch *b, const uint8_t *q, const union pod_addr *from,
			 const union pod_addr *to)
{
	uint8_t *fail = b->servfail[b->n_out];

	servfail(q, fail);
	out_add(b, fail, DNS_HDR, NULL, OUT_SERVFAIL, from, to);
}

/* Send @n messages of @m on @fd: one sendmmsg() for the lot, then one by one
 * past the first it could not send, so a message that fails (a full socket
 * buffer, an unreachable resolver) fails alone. @sent[i] says which went.
 */
static void send_batch(int fd, struct mmsghdr *m, unsigned int n, bool *sent)
{
	int k = n ? sendmmsg(fd, m, n, MSG_DONTWAIT) : 0;
	unsigned int i = 0;

	for (; k > 0 && i < (unsigned int)k; i++)
		sent[i] = true;
	for (; i < n; i++)
		sent[i] = sendmsg(fd, &m[i].msg_hdr, MSG_DONTWAIT) != -1;
}

static void out_flush(struct dnsr_pod *rp, struct udp_batch *b)
{
	struct dnsr *r = rp->r;
	bool sent[UDP_BATCH];

	/* Each run of clients of one family through that family's socket
	 * (a batch of relayed answers may mix them).
	 */
	for (unsigned int i = 0, j; i < b->n_out; i = j) {
		sa_family_t family = b->out_to[i].sa.sa_family;

		for (j = i + 1; j < b->n_out && b->out_to[j].sa.sa_family == family; j++)
			;
		send_batch(family == AF_INET6 ? rp->udp6_fd : rp->udp_fd, &b->out[i], j - i,
			   &sent[i]);
	}
	for (unsigned int i = 0; i < b->n_out; i++) {
		const uint8_t *msg = b->out_iov[i].iov_base;

		if (b->out_kind[i] == OUT_SERVFAIL)
			;	/* counted failed when it was made */
		else if (!sent[i])
			r->n.failed++;
		else if (b->out_kind[i] == OUT_ANSWER)
			r->n.answered++;
		else
			r->n.forwarded++;
		if (sent[i] && b->out_kind[i] != OUT_SERVFAIL)
			count_reply(r, msg, b->out_iov[i].iov_len);
		free(b->out_owned[i]);
		b->out_owned[i] = NULL;
	}
	b->n_out = 0;
}

static void pending_free(struct dnsr_pod *rp, struct pending *p)
{
	loop_timer_del(rp->r->deps.loop, &p->timer);
	p->used = false;
	rp->n_pending--;
	rp->r->n.pending--;
}

static void on_pending_timeout(struct loop_timer *t, uint64_t now)
{
	struct pending *p = container_of(t, struct pending, timer);

	(void)now;
	/* No answer: the client's own timeout and retry take over. */
	p->rp->r->n.failed++;
	pending_free(p->rp, p);
}

/* The next value of the responder's id generator (xorshift32). */
static uint32_t next_random(struct dnsr *r)
{
	uint32_t x = r->rand;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	r->rand = x;
	return x;
}

/* @sa (the resolver capture found) as the dual-stack forwarding socket
 * names it: an IPv4 address IPv4-mapped. 0 or -EAFNOSUPPORT.
 */
static int as_in6(const struct sockaddr_storage *sa, struct sockaddr_in6 *out)
{
	memset(out, 0, sizeof(*out));
	out->sin6_family = AF_INET6;
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		out->sin6_addr = in6->sin6_addr;
		out->sin6_port = in6->sin6_port;
		return 0;
	}
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		out->sin6_addr.s6_addr[10] = 0xff;
		out->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&out->sin6_addr.s6_addr[12], &in->sin_addr, 4);
		out->sin6_port = in->sin_port;
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* Take a pending slot for @q (@len bytes, from @client to @local) and queue
 * it for its resolver, its id replaced by the slot's: the low bits are the
 * slot's index, so an answer finds its query at once, and the high bits are
 * random, so a stale or forged answer rarely matches. 0 or -errno (counted as
 * failed by the caller, @q untouched).
 */
static int udp_forward(struct dnsr_pod *rp, struct udp_batch *b, uint8_t *q, size_t len,
		       const union pod_addr *client, const union pod_addr *local)
{
	struct dnsr *r = rp->r;
	struct sockaddr_storage found;
	struct sockaddr_in6 resolver;
	struct pending *p = NULL;
	unsigned int k;
	uint16_t id;
	int err;

	err = r->deps.resolver(r->deps.ctx, rp->ct_fd, false,
			       local->sa.sa_family == AF_INET6 ? rp->udp6_fd : rp->udp_fd,
			       &local->sa, &client->sa, &found);
	if (err)
		return err;
	err = as_in6(&found, &resolver);
	if (err)
		return err;
	if (rp->fwd_v4 && !IN6_IS_ADDR_V4MAPPED(&resolver.sin6_addr))
		return -EAFNOSUPPORT;
	if (rp->n_pending >= DNSR_PENDING_POD || r->n.pending >= DNSR_PENDING_MAX)
		return -ENOBUFS;
	for (size_t i = 0; i < DNSR_PENDING_POD && !p; i++) {
		size_t at = (rp->next_slot + i) % DNSR_PENDING_POD;

		if (!rp->pending[at].used)
			p = &rp->pending[at];
	}
	if (!p)
		return -ENOBUFS;
	err = loop_timer_set(r->deps.loop, &p->timer, DNSR_TIMEOUT_MS, on_pending_timeout);
	if (err)
		return err;
	rp->next_slot = (size_t)(p - rp->pending) + 1;
	id = htons((uint16_t)((next_random(r) & ~(uint32_t)(DNSR_PENDING_POD - 1)) |
			      (uint32_t)(p - rp->pending)));
	p->rp = rp;
	p->used = true;
	p->up_id = id;
	memcpy(&p->client_id, q, 2);
	memcpy(q, &id, 2);
	p->client = *client;
	p->local = *local;
	p->resolver = resolver;
	rp->n_pending++;
	r->n.pending++;

	p->resolver4 = (struct sockaddr_in){
		.sin_family = AF_INET,
		.sin_port = resolver.sin6_port,
	};
	memcpy(&p->resolver4.sin_addr, &resolver.sin6_addr.s6_addr[12], 4);

	k = b->n_up++;
	b->up_iov[k] = (struct iovec){ .iov_base = q, .iov_len = len };
	b->up[k].msg_hdr = (struct msghdr){
		.msg_name = rp->fwd_v4 ? (void *)&p->resolver4 : (void *)&p->resolver,
		.msg_namelen = rp->fwd_v4 ? sizeof(p->resolver4) : sizeof(p->resolver),
		.msg_iov = &b->up_iov[k],
		.msg_iovlen = 1,
	};
	b->up_pending[k] = p;
	return 0;
}

/* Send the batch's forwarded queries; one that cannot go is answered
 * SERVFAIL at once (queued with the batch's answers).
 */
static void up_flush(struct dnsr_pod *rp, struct udp_batch *b)
{
	bool sent[UDP_BATCH];

	send_batch(rp->fwd_fd, b->up, b->n_up, sent);
	for (unsigned int i = 0; i < b->n_up; i++) {
		struct pending *p = b->up_pending[i];
		uint8_t *q = b->up_iov[i].iov_base;

		if (sent[i])
			continue;
		memcpy(q, &p->client_id, 2);	/* the SERVFAIL echoes the client's id */
		rp->r->n.failed++;
		out_servfail(b, q, &p->local, &p->client);
		pending_free(rp, p);
	}
	b->n_up = 0;
}

static void udp_query(struct dnsr_pod *rp, struct udp_batch *b, uint8_t *q, size_t len,
		      const union pod_addr *client, const union pod_addr *local)
{
	struct dnsr *r = rp->r;
	char text[INET6_ADDRSTRLEN + 8];
	uint8_t *out = NULL;
	size_t out_len;
	int rc;

	if (len < DNS_HDR)
		return;	/* not even a header: nothing to answer or forward */
	rc = dns_answer(r->deps.catalogue(r->deps.ctx), r->deps.domain, q, len, false, &out,
			&out_len);
	if (rc == DNS_ANSWER) {
		out_add(b, out, out_len, out, OUT_ANSWER, local, client);
		return;
	}
	rc = rc < 0 ? rc : udp_forward(rp, b, q, len, client, local);
	if (!rc)
		return;
	r->n.failed++;
	log_debug("dns: pod=%u: query from %s not forwarded: %s", rp->pod_id,
		  pod_addr_text(client, text, sizeof(text)), strerror(-rc));
	out_servfail(b, q, local, client);
}

/* Read up to UDP_BATCH datagrams of @fd into the batch's buffers; with
 * @pktinfo, room for IP_PKTINFO. Returns how many (0: none waiting).
 */
static unsigned int batch_read(struct udp_batch *b, int fd, bool pktinfo)
{
	int n;

	for (int i = 0; i < UDP_BATCH; i++) {
		b->in_iov[i] = (struct iovec){ .iov_base = b->buf[i], .iov_len = sizeof(b->buf[i]) };
		b->in[i].msg_hdr = (struct msghdr){
			.msg_name = &b->in_from[i],
			.msg_namelen = sizeof(b->in_from[i]),
			.msg_iov = &b->in_iov[i],
			.msg_iovlen = 1,
			.msg_control = pktinfo ? b->in_cbuf[i] : NULL,
			.msg_controllen = pktinfo ? sizeof(b->in_cbuf[i]) : 0,
		};
	}
	n = recvmmsg(fd, b->in, UDP_BATCH, MSG_DONTWAIT, NULL);
	/* -1: EAGAIN, or an ICMP error of a reply: nothing to do. */
	return n > 0 ? (unsigned int)n : 0;
}

static void on_udp(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct dnsr_pod *rp = ctx;
	struct udp_batch *b = rp->r->batch;
	unsigned int n = batch_read(b, fd, true);

	(void)loop;
	(void)events;
	for (unsigned int i = 0; i < n; i++) {
		struct msghdr *mh = &b->in[i].msg_hdr;
		union pod_addr local = { .in = { .sin_family = AF_INET } };
		bool have_local = false;

		for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;

				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				local.in.sin_addr = pi.ipi_addr;
				have_local = true;
			}
		}
		local.in.sin_port = htons(rp->r->deps.port);
		/* Capture sends queries to a loopback address only; anything
		 * else reached the port from outside the pod.
		 */
		if (!have_local || !is_loopback(&local) ||
		    mh->msg_namelen != sizeof(b->in_from[i].in))
			continue;
		udp_query(rp, b, b->buf[i], b->in[i].msg_len, &b->in_from[i], &local);
	}
	up_flush(rp, b);
	out_flush(rp, b);
}

/* Queries on [::1] (nft mode's redirect of those to an IPv6 resolver): the
 * socket is bound there, so every one arrived on ::1 and is answered from it.
 */
static void on_udp6(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct dnsr_pod *rp = ctx;
	struct udp_batch *b = rp->r->batch;
	unsigned int n = batch_read(b, fd, false);
	const union pod_addr local = { .in6 = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(rp->r->deps.port),
		.sin6_addr = IN6ADDR_LOOPBACK_INIT,
	} };

	(void)loop;
	(void)events;
	for (unsigned int i = 0; i < n; i++) {
		if (b->in[i].msg_hdr.msg_namelen != sizeof(b->in_from[i].in6) ||
		    b->in_from[i].sa.sa_family != AF_INET6)
			continue;
		udp_query(rp, b, b->buf[i], b->in[i].msg_len, &b->in_from[i], &local);
	}
	up_flush(rp, b);
	out_flush(rp, b);
}

static void on_fwd(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct dnsr_pod *rp = ctx;
	struct udp_batch *b = rp->r->batch;
	unsigned int n = batch_read(b, fd, false);

	(void)loop;
	(void)events;
	for (unsigned int i = 0; i < n; i++) {
		struct sockaddr_storage got;
		struct sockaddr_in6 from6;
		const struct sockaddr_in6 *from = &from6;
		uint8_t *a = b->buf[i];
		struct pending *p;
		uint16_t id;

		if (b->in[i].msg_len < DNS_HDR ||
		    b->in[i].msg_hdr.msg_namelen > sizeof(b->in_from[i]))
			continue;
		memset(&got, 0, sizeof(got));
		memcpy(&got, &b->in_from[i], b->in[i].msg_hdr.msg_namelen);
		if (as_in6(&got, &from6))
			continue;
		/* The answer must come from the resolver asked, with our id. */
		memcpy(&id, a, 2);
		p = &rp->pending[ntohs(id) % DNSR_PENDING_POD];
		if (!p->used || p->up_id != id ||
		    memcmp(&p->resolver.sin6_addr, &from->sin6_addr, sizeof(from->sin6_addr)) ||
		    p->resolver.sin6_port != from->sin6_port)
			continue;
		memcpy(a, &p->client_id, 2);
		out_add(b, a, b->in[i].msg_len, NULL, OUT_FORWARD, &p->local, &p->client);
		pending_free(rp, p);
	}
	out_flush(rp, b);
}

/* ---- TCP */

static void conn_close(struct tcp_conn *c)
{
	struct dnsr_pod *rp = c->rp;
	struct loop *loop = rp->r->deps.loop;

	for (struct tcp_conn **pp = &rp->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	loop_timer_del(loop, &c->idle);
	if (c->up_waiting)
		rp->r->n.failed += c->up_waiting;
	if (c->up_fd != -1) {
		loop_forget_fd(loop, c->up_fd);
		close(c->up_fd);
	}
	loop_forget_fd(loop, c->fd);
	close(c->fd);
	bytes_free(&c->in);
	bytes_free(&c->out);
	bytes_free(&c->up_in);
	bytes_free(&c->up_out);
	rp->n_conns--;
	free(c);
}

static void on_conn(struct loop *loop, int fd, uint32_t events, void *ctx);
static void on_up(struct loop *loop, int fd, uint32_t events, void *ctx);

/* Say what @c waits for on both sockets; closes it when it is done. Returns
 * false when @c is gone.
 */
static bool conn_arm(struct tcp_conn *c)
{
	struct loop *loop = c->rp->r->deps.loop;
	uint32_t ev = 0, up_ev = 0;

	if (c->client_eof && !c->out.len && (!c->up_waiting || c->up_fd == -1)) {
		conn_close(c);
		return false;
	}
	if (!c->client_eof)
		ev |= EPOLLIN;
	if (c->out.len)
		ev |= EPOLLOUT;
	if (c->up_fd != -1) {
		up_ev = EPOLLIN;
		if (!c->up_connected || c->up_out.len)
			up_ev |= EPOLLOUT;
	}
	if (loop_watch(loop, &c->w, c->fd, ev, on_conn, c) ||
	    (c->up_fd != -1 && loop_watch(loop, &c->up_w, c->up_fd, up_ev, on_up, c))) {
		conn_close(c);
		return false;
	}
	return true;
}

/* Connect @c to the resolver its client asked, from the pod's netns. */
static int conn_upstream(struct tcp_conn *c)
{
	struct dnsr *r = c->rp->r;
	struct sockaddr_storage resolver;
	socklen_t len;
	int home, fd, err;

	err = r->deps.resolver(r->deps.ctx, c->rp->ct_fd, true, c->fd, &c->local.sa,
			       &c->peer.sa, &resolver);
	if (err)
		return err;
	len = resolver.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					     : sizeof(struct sockaddr_in);
	home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home == -1)
		return -errno;
	fd = netns_socket(c->rp->netns_fd, home, resolver.ss_family, SOCK_STREAM | SOCK_NONBLOCK);
	close(home);
	if (fd < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&resolver, len) == -1 &&
	    errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	c->up_fd = fd;
	c->up_w = (struct loop_watch){ 0 };
	return 0;
}

/* Every complete query the client sent: answered here, or queued for the
 * resolver. 0 or -errno (the connection goes).
 */
static int conn_queries(struct tcp_conn *c)
{
	struct dnsr *r = c->rp->r;
	size_t n;
	int err;

	while ((n = frame_ready(&c->in))) {
		uint8_t *out = NULL;
		size_t out_len;
		int rc = dns_answer(r->deps.catalogue(r->deps.ctx), r->deps.domain, c->in.d + 2,
				    n, true, &out, &out_len);

		if (rc < 0)
			return rc;
		if (rc == DNS_ANSWER) {
			uint8_t len[2] = { (uint8_t)(out_len >> 8), (uint8_t)out_len };

			err = bytes_put(&c->out, len, 2, TCP_OUT_MAX) ?:
			      bytes_put(&c->out, out, out_len, TCP_OUT_MAX);
			free(out);
			if (err)
				return err;
			r->n.answered++;
		} else {
			if (c->up_fd == -1) {
				err = conn_upstream(c);
				if (err) {
					r->n.failed++;
					return err;
				}
			}
			err = bytes_put(&c->up_out, c->in.d, 2 + n, TCP_OUT_MAX);
			if (err)
				return err;
			c->up_waiting++;
		}
		bytes_drop(&c->in, 2 + n);
	}
	return 0;
}

static int flush(int fd, struct bytes *b)
{
	while (b->len) {
		ssize_t n = send(fd, b->d, b->len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n == -1)
			return errno == EAGAIN ? 0 : -errno;
		bytes_drop(b, (size_t)n);
	}
	return 0;
}

/* Read what @fd has into @b (at most one framed message beyond what @b
 * holds). Returns 1 at EOF, 0, or -errno.
 */
static int fill(int fd, struct bytes *b)
{
	uint8_t buf[16384];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0)
		return 1;
	if (n == -1)
		return errno == EAGAIN ? 0 : -errno;
	return bytes_put(b, buf, (size_t)n, 2 * TCP_BUF);
}

static void on_idle(struct loop_timer *t, uint64_t now)
{
	(void)now;
	conn_close(container_of(t, struct tcp_conn, idle));
}

static void on_conn(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct tcp_conn *c = ctx;
	int err = 0, rc;

	(void)fd;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		rc = fill(c->fd, &c->in);
		if (rc == 1)
			c->client_eof = true;
		err = rc < 0 ? rc : conn_queries(c);
		if (!err && c->up_fd != -1 && c->up_connected)
			err = flush(c->up_fd, &c->up_out);
	}
	if (!err && (events & EPOLLOUT))
		err = flush(c->fd, &c->out);
	if (err) {
		conn_close(c);
		return;
	}
	(void)loop_timer_set(loop, &c->idle, TCP_IDLE_MS, on_idle);
	(void)conn_arm(c);
}

static void on_up(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct tcp_conn *c = ctx;
	struct dnsr *r = c->rp->r;
	size_t n;
	int err = 0, rc;

	(void)loop;
	if (!c->up_connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 || soerr) {
			conn_close(c);
			return;
		}
		c->up_connected = true;
	}
	if (c->up_connected)
		err = flush(fd, &c->up_out);
	if (!err && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		rc = fill(fd, &c->up_in);
		/* Relay every complete answer as it came. */
		while (rc >= 0 && (n = frame_ready(&c->up_in))) {
			err = bytes_put(&c->out, c->up_in.d, 2 + n, TCP_OUT_MAX);
			if (err)
				break;
			bytes_drop(&c->up_in, 2 + n);
			r->n.forwarded++;
			if (c->up_waiting)
				c->up_waiting--;
		}
		if (rc < 0)
			err = rc;
		else if (rc == 1 && !err)
			err = -ECONNRESET;	/* the resolver closed: so does the client */
	}
	if (!err)
		err = flush(c->fd, &c->out);
	if (err) {
		(void)flush(c->fd, &c->out);
		conn_close(c);
		return;
	}
	(void)conn_arm(c);
}

static void on_accept(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct dnsr_pod *rp = ctx;

	(void)events;
	for (int i = 0; i < UDP_BATCH; i++) {
		union pod_addr peer, local;
		socklen_t plen = sizeof(peer), llen = sizeof(local);
		struct tcp_conn *c;
		int cfd = accept4(fd, &peer.sa, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd == -1)
			return;
		if (rp->n_conns >= DNSR_TCP_POD || plen != pod_addr_len(&peer) ||
		    getsockname(cfd, &local.sa, &llen) == -1 ||
		    local.sa.sa_family != peer.sa.sa_family || !is_loopback(&local)) {
			if (rp->n_conns >= DNSR_TCP_POD)
				rp->r->n.failed++;
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->rp = rp;
		c->fd = cfd;
		c->up_fd = -1;
		c->peer = peer;
		c->local = local;
		c->next = rp->conns;
		rp->conns = c;
		rp->n_conns++;
		rp->r->n.tcp++;
		if (conn_arm(c))
			(void)loop_timer_set(loop, &c->idle, TCP_IDLE_MS, on_idle);
	}
}

/* ---- pods */

static int sock_opts(struct dnsr_pod *rp)
{
	struct sockaddr_in any = {
		.sin_family = AF_INET,
		.sin_port = htons(rp->r->deps.port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	int one = 1, zero = 0;

	/* The wildcard: capture sends to 127.53.X.Y or 127.54.X.Y (eBPF) or
	 * 127.0.0.1 (nft; ::1 for an IPv6 resolver, open6()), and the address
	 * a query arrived on says which resolver it was for. SO_REUSEPORT: during a hand-over the successor
	 * opens its own responder while this agent's still serves. The
	 * forwarding socket is dual-stack whatever net.ipv6.bindv6only says in
	 * the pod.
	 */
	if ((!rp->fwd_v4 &&
	     setsockopt(rp->fwd_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) == -1) ||
	    setsockopt(rp->udp_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == -1 ||
	    setsockopt(rp->udp_fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    setsockopt(rp->tcp_fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    setsockopt(rp->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(rp->udp_fd, (struct sockaddr *)&any, sizeof(any)) == -1 ||
	    bind(rp->tcp_fd, (struct sockaddr *)&any, sizeof(any)) == -1 ||
	    listen(rp->tcp_fd, 64) == -1)
		return -errno;
	return 0;
}

/* The [::1] listeners (deps.listen6): a UDP socket and a TCP listener on
 * [::1]:port, IPv6 only (the 0.0.0.0 ones hold the port for IPv4). A pod netns
 * without IPv6 (no ::1, or no IPv6 in the kernel) has no IPv6 resolver to
 * capture: 0 with none. 0 or -errno.
 */
static int open6(struct dnsr_pod *rp, int home)
{
	struct sockaddr_in6 lo = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(rp->r->deps.port),
		.sin6_addr = IN6ADDR_LOOPBACK_INIT,
	};
	int fds[2], one = 1, err = 0;

	fds[0] = netns_socket(rp->netns_fd, home, AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK);
	if (fds[0] < 0)
		return fds[0] == -EAFNOSUPPORT ? 0 : fds[0];
	fds[1] = netns_socket(rp->netns_fd, home, AF_INET6, SOCK_STREAM | SOCK_NONBLOCK);
	if (fds[1] < 0) {
		close(fds[0]);
		return fds[1];
	}
	for (int i = 0; i < 2 && !err; i++) {
		if (setsockopt(fds[i], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1 ||
		    setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
		    setsockopt(fds[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
		    bind(fds[i], (struct sockaddr *)&lo, sizeof(lo)) == -1)
			err = -errno;
	}
	if (!err && listen(fds[1], 64) == -1)
		err = -errno;
	if (err) {
		close(fds[0]);
		close(fds[1]);
		/* EADDRNOTAVAIL: IPv6 is off in the pod (no ::1). */
		return err == -EADDRNOTAVAIL ? 0 : err;
	}
	rp->udp6_fd = fds[0];
	rp->tcp6_fd = fds[1];
	return 0;
}

static void close_fds(struct dnsr_pod *rp)
{
	int *fds[] = { &rp->udp_fd, &rp->tcp_fd, &rp->fwd_fd, &rp->ct_fd, &rp->udp6_fd,
		       &rp->tcp6_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

struct dnsr_pod *dnsr_pod_open(struct dnsr *r, int netns_fd, uint32_t pod_id)
{
	struct dnsr_pod *rp = calloc(1, sizeof(*rp));
	int fds[3], home = -1, err, n;

	if (!rp)
		return NULL;
	rp->r = r;
	rp->pod_id = pod_id;
	rp->netns_fd = netns_fd;
	rp->udp_fd = rp->tcp_fd = rp->fwd_fd = rp->ct_fd = rp->udp6_fd = rp->tcp6_fd = -1;
	home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home == -1) {
		err = -errno;
		goto out_free;
	}
	n = netns_sockets(netns_fd, home, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, fds, 1);
	if (n < 0) {
		err = n;
		goto out_close_home;
	}
	rp->udp_fd = fds[0];
	rp->fwd_fd = netns_socket(netns_fd, home, AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK);
	if (rp->fwd_fd == -EAFNOSUPPORT) {
		rp->fwd_v4 = true;
		rp->fwd_fd = netns_socket(netns_fd, home, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK);
	}
	rp->tcp_fd = netns_socket(netns_fd, home, AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	if (rp->fwd_fd < 0 || rp->tcp_fd < 0) {
		err = rp->fwd_fd < 0 ? rp->fwd_fd : rp->tcp_fd;
		goto out_close;
	}
	err = sock_opts(rp) ?: (r->deps.listen6 ? open6(rp, home) : 0);
	if (err)
		goto out_close;
	err = r->deps.open_ns(r->deps.ctx, netns_fd, &rp->ct_fd);
	if (err)
		goto out_close;
	err = loop_add_fd(r->deps.loop, rp->udp_fd, EPOLLIN, on_udp, rp);
	if (err)
		goto out_close;
	err = loop_add_fd(r->deps.loop, rp->fwd_fd, EPOLLIN, on_fwd, rp);
	if (err)
		goto out_del_udp;
	err = loop_add_fd(r->deps.loop, rp->tcp_fd, EPOLLIN, on_accept, rp);
	if (err)
		goto out_del_fwd;
	if (rp->udp6_fd >= 0) {
		err = loop_add_fd(r->deps.loop, rp->udp6_fd, EPOLLIN, on_udp6, rp);
		if (err)
			goto out_del_tcp;
		err = loop_add_fd(r->deps.loop, rp->tcp6_fd, EPOLLIN, on_accept, rp);
		if (err) {
			(void)loop_del_fd(r->deps.loop, rp->udp6_fd);
			goto out_del_tcp;
		}
	}
	close(home);
	rp->next = r->pods;
	r->pods = rp;
	r->n.pods++;
	return rp;

out_del_tcp:
	(void)loop_del_fd(r->deps.loop, rp->tcp_fd);
out_del_fwd:
	(void)loop_del_fd(r->deps.loop, rp->fwd_fd);
out_del_udp:
	(void)loop_del_fd(r->deps.loop, rp->udp_fd);
out_close:
	close_fds(rp);
out_close_home:
	close(home);
out_free:
	free(rp);
	errno = -err;
	return NULL;
}

void dnsr_pod_close(struct dnsr *r, struct dnsr_pod *rp)
{
	if (!rp)
		return;
	for (struct dnsr_pod **pp = &r->pods; *pp; pp = &(*pp)->next) {
		if (*pp == rp) {
			*pp = rp->next;
			break;
		}
	}
	while (rp->conns)
		conn_close(rp->conns);
	for (size_t i = 0; i < DNSR_PENDING_POD; i++) {
		if (rp->pending[i].used)
			pending_free(rp, &rp->pending[i]);
	}
	loop_forget_fd(r->deps.loop, rp->udp_fd);
	loop_forget_fd(r->deps.loop, rp->fwd_fd);
	loop_forget_fd(r->deps.loop, rp->tcp_fd);
	if (rp->udp6_fd >= 0)
		loop_forget_fd(r->deps.loop, rp->udp6_fd);
	if (rp->tcp6_fd >= 0)
		loop_forget_fd(r->deps.loop, rp->tcp6_fd);
	close_fds(rp);
	r->n.pods--;
	free(rp);
}
