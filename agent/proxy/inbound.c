// SPDX-License-Identifier: GPL-2.0-only
/* The inbound side's listeners and accept (docs/inbound.md): connections from
 * outside a meshed pod to its application arrive on 0.0.0.0 / [::] at the
 * inbound port inside the pod, redirected there by nft's prerouting chain
 * (nft mode) or assigned by the sk_lookup program (eBPF mode). Here: where
 * the client was going (the port counted), refusing what would loop, and
 * handing the connection to conn.c, which relays it to the application from
 * the client's own address (upstream.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "loop.h"
#include "proxy/conn.h"
#include "proxy/mtls.h"

/* Accepts per wake-up per listener, as on the outbound side. */
#define ACCEPT_BATCH 32

/* Where the client was going. nft mode's REDIRECT rewrote the destination
 * and conntrack remembers the original; with sk_lookup nothing was
 * rewritten, conntrack may not even track the connection, and the accepted
 * socket's own address is the destination.
 */
static int inbound_dst(int fd, int family, struct addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (!px_orig_dst(fd, family, out))
		return 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -errno;
	return addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
}

/* Whether accepted socket @fd is the proxy's own connection to an
 * application, captured again (an sk_lookup program that does not leave
 * connections on lo alone would do that). With tcp_fwmark_accept, which the
 * return path sets, an accepted socket carries the mark of the SYN that
 * made it; a mark never crosses into the pod from outside (veth clears it).
 */
static bool from_us(const struct proxy *px, int fd)
{
	uint32_t mark = 0;
	socklen_t len = sizeof(mark);

	return px->opts.inbound_mark &&
	       getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len) == 0 &&
	       mark == px->opts.inbound_mark;
}

/* The counters of @port in @pod's share, made on first use; port 0 (the
 * catch-all) once the share counts INBOUND_PORTS_MAX ports. NULL when out of
 * memory.
 */
static struct in_port *in_port_get(struct px_pod *pod, uint16_t port)
{
	struct in_port *ip;

	if (pod->n_in_ports >= INBOUND_PORTS_MAX)
		port = 0;
	for (ip = pod->in_ports; ip; ip = ip->next)
		if (ip->ctr.port == port)
			return ip;
	ip = calloc(1, sizeof(*ip));
	if (!ip)
		return NULL;
	ip->ctr.port = port;
	ip->next = pod->in_ports;
	pod->in_ports = ip;
	pod->n_in_ports++;
	return ip;
}

/* Hand accepted (or, from tls_relay.c, authenticated: @tls) socket @cfd to
 * the application at @dst from @peer, counted under @dst's port.
 */
static void inbound_deliver(struct proxy *px, struct px_pod *pod, int cfd, struct tls_link *tls,
			    const struct addr *dst, const struct addr *peer)
{
	struct in_port *ip;

	/* Someone dialled a listener itself: relaying to it would come back
	 * here (or to the outbound side) for ever.
	 */
	if (dst->port == px->opts.inbound_port || dst->port == px->opts.port ||
	    (px->mtls && dst->port == MTLS_PORT)) {
		log_debug("proxy: inbound pod=%u: destination port %u is a listener's, refusing",
			  pod->id, dst->port);
		ctr_inc(&px->stats.inbound_loops);
		if (tls)
			tls_abandon(tls);
		tls_free(tls);
		sock_close_reset(cfd);
		return;
	}
	ip = in_port_get(pod, dst->port);
	if (!ip) {
		if (tls)
			tls_abandon(tls);
		tls_free(tls);
		sock_close_reset(cfd);
		ctr_inc(&px->stats.resets);
		return;
	}
	conn_start_inbound(px, pod, cfd, tls, ip, dst, peer);
}

static void inbound_one(struct proxy *px, struct px_pod *pod, int cfd, int family,
			const struct addr *peer)
{
	const struct mtls_pod *mp;
	struct addr dst;
	int err;

	if (from_us(px, cfd)) {
		log_debug("proxy: inbound pod=%u: a connection of the proxy's own came back, refusing",
			  pod->id);
		ctr_inc(&px->stats.inbound_loops);
		sock_close_reset(cfd);
		return;
	}
	err = inbound_dst(cfd, family, &dst);
	if (err) {
		log_debug("proxy: inbound pod=%u: no destination: %s", pod->id, strerror(-err));
		ctr_inc(&px->stats.inbound_orig_dst_errors);
		sock_close_reset(cfd);
		return;
	}
	addr_unmap(&dst);
	/* Another meshed pod's agent, with mTLS (docs/mtls.md). */
	if (px->mtls && dst.port == MTLS_PORT) {
		tls_accept(pod, cfd, &dst, peer, inbound_deliver);
		return;
	}
	/* Plaintext: refused when the pod's namespace is strict. */
	mp = mtls_table_pod(px->mtls, pod->id);
	if (mp && mp->strict) {
		char buf[ADDR_STRLEN];

		log_debug("proxy: inbound pod=%u: plaintext from %s refused (mtls-mode strict)",
			  pod->id, addr_fmt(peer, buf, sizeof(buf)));
		ctr_inc(&px->stats.mtls_plaintext_refused);
		sock_close_reset(cfd);
		return;
	}
	inbound_deliver(px, pod, cfd, NULL, &dst, peer);
}

static void on_inbound_accept(struct loop *loop, int lfd, uint32_t events, void *ctx)
{
	struct px_pod *pod = ctx;
	struct proxy *px = pod->px;
	int family = lfd == pod->ilfd4 ? AF_INET : AF_INET6;

	(void)loop;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct addr peer;
		int cfd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_debug("proxy: inbound accept pod=%u: %m", pod->id);
			return;
		}
		ctr_inc(&px->stats.total);
		ctr_inc(&px->stats.inbound_accepted);
		if (px->stats.active >= px->opts.max_conns) {
			ctr_inc(&px->stats.over_limit);
			sock_close_reset(cfd);
			continue;
		}
		if (addr_from_sockaddr(&peer, (struct sockaddr *)&ss, len)) {
			sock_close_reset(cfd);
			ctr_inc(&px->stats.resets);
			continue;
		}
		addr_unmap(&peer);
		inbound_one(px, pod, cfd, family, &peer);
	}
}

int px_pod_listen_inbound(struct px_pod *pod)
{
	struct addr a = { .family = AF_INET, .port = pod->px->opts.inbound_port };
	int fd;

	if (!a.port || pod->ilfd4 != -1)
		return 0;
	/* Wildcards: nft's REDIRECT sends to the incoming interface's primary
	 * address, and sk_lookup may assign any listener whatever its address.
	 */
	a.ip.v4.s_addr = htonl(INADDR_ANY);
	fd = px_listener(pod, &a, on_inbound_accept);
	if (fd < 0)
		return fd;
	pod->ilfd4 = fd;
	a.family = AF_INET6;
	a.ip.v6 = in6addr_any;
	fd = px_listener(pod, &a, on_inbound_accept);
	if (fd < 0)
		/* No IPv6 in this pod: its IPv4 side is served all the same. */
		log_debug("proxy: no IPv6 inbound listener in pod=%u: %s", pod->id,
			  strerror(-fd));
	else
		pod->ilfd6 = fd;
	return 0;
}
