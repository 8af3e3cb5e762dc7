// SPDX-License-Identifier: GPL-2.0-only
/* The in-pod outbound listeners and the first decision on each accepted
 * connection: where did the application want to go (SO_ORIGINAL_DST,
 * answered by mesh_getsockopt in eBPF mode and by conntrack in nft mode: one
 * code path), and is that a service (pick an endpoint) or not (pass
 * through). The listening socket itself (px_listener()) serves inbound.c too.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "model/catalogue.h"
#include "log.h"
#include "loop.h"
#include "netns.h"
#include "proxy/adopt.h"
#include "proxy/conn.h"
#include "proxy/mtls.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80	/* <linux/netfilter_ipv4.h>, which clashes with netinet/in.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80	/* <linux/netfilter_ipv6/ip6_tables.h> */
#endif

/* Accepts per wake-up per listener: fairness between pods under a SYN flood. */
#define ACCEPT_BATCH 32
#define LISTEN_BACKLOG 4096

struct proxy *proxy_new(struct loop *loop, const struct proxy_opts *opts)
{
	struct proxy *px = calloc(1, sizeof(*px));
	struct timespec ts;

	if (!px)
		return NULL;
	px->loop = loop;
	px->relays[RELAY_TCP] = &relay_tcp;
	px->relays[RELAY_HTTP] = &relay_http;
	px->opts = *opts;
	px->brk_chan = -1;
	policy_init(&px->defaults, opts->defaults);
	/* Not a service: no endpoints to choose among, so nothing to retry on. */
	px->passthrough = px->defaults;
	px->passthrough.protocol = PROTO_TCP;
	px->passthrough.retries = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	px->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^ (uintptr_t)px;
	if (!px->rng)
		px->rng = 1;
	/* Workers start their inbound source ports apart (upstream.c). */
	px->in_src_cursor = (uint32_t)(px->rng >> 17);
	state_init(&px->st);
	pipe_pool_init(&px->pipes, 0);
	px->cat = catalogue_new_empty();
	if (!px->cat || fp_init(px)) {
		catalogue_unref(px->cat);
		free(px);
		return NULL;
	}
	return px;
}

void proxy_free(struct proxy *px)
{
	if (!px)
		return;
	pool_flush(px, NULL, true);
	pipe_pool_done(&px->pipes);
	fp_done(px);
	px_buf_flush(px);
	state_done(&px->st);
	catalogue_unref(px->cat);
	mtls_table_unref(px->mtls);
	free(px->denials);
	free(px);
}

void proxy_set_mtls(struct proxy *px, struct mtls_table *t)
{
	mtls_table_unref(px->mtls);
	px->mtls = mtls_table_ref(t);
}

void proxy_set_catalogue(struct proxy *px, struct catalogue *c)
{
	struct catalogue *old = px->cat;
	int err;

	if (c == old)
		return;
	/* Each changed service port gets its policy in force (defaults + its
	 * typed override); endpoint state carries over.
	 */
	err = state_bind(&px->st, old, c, &px->defaults);
	if (err) {
		log_warn("proxy: cannot bind catalogue generation %llu: %s; the previous one stays in force, ignoring",
			 (unsigned long long)catalogue_generation(c), strerror(-err));
		state_gc_touched(&px->st);
		return;
	}
	/* Pooled connections to endpoints that left hold their states: drop
	 * them, in the service ports the bind touched only.
	 */
	for (size_t i = 0; i < px->st.n_touched; i++)
		pool_flush_svc(px, px->st.touched[i], NULL, false);
	state_gc_touched(&px->st);
	/* Only now: the bind compared against the old snapshot's objects. */
	px->cat = catalogue_ref(c);
	catalogue_unref(old);
}

const struct proxy_stats *proxy_stats(const struct proxy *px)
{
	return &px->stats;
}

const struct svc_state *proxy_service_at(const struct proxy *px, size_t i)
{
	return px->cat ? state_svc_at(&px->st, px->cat, i) : NULL;
}

size_t proxy_n_service_ports(const struct proxy *px)
{
	return px->st.n_ports;
}

struct svc_state *proxy_service_blank(const struct proxy *px, size_t i)
{
	if (!px->cat || i >= catalogue_n_svc_ports(px->cat))
		return NULL;
	return state_blank(catalogue_svc_port_at(px->cat, i), &px->defaults);
}

uint64_t proxy_now_ms(const struct proxy *px)
{
	return loop_now_ms(px->loop);
}

int px_orig_dst(int fd, int family, struct addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int level = family == AF_INET ? SOL_IP : SOL_IPV6;
	int opt = family == AF_INET ? SO_ORIGINAL_DST : IP6T_SO_ORIGINAL_DST;

	if (getsockopt(fd, level, opt, &ss, &len) == -1)
		return -errno;
	return addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
}

static void accept_one(struct proxy *px, struct px_pod *pod, int cfd, int family)
{
	struct svc_state *svc;
	struct cat_svc_port *sp;
	struct addr dst;
	int err;

	err = px_orig_dst(cfd, family, &dst);
	if (err) {
		/* Someone connected to the listener directly, or the agent runs
		 * outside the cgroup mesh_getsockopt is attached to.
		 */
		log_debug("proxy: no original destination pod=%u: %s", pod->id, strerror(-err));
		ctr_inc(&px->stats.orig_dst_errors);
		sock_close_reset(cfd);
		return;
	}
	addr_unmap(&dst);
	sp = catalogue_find_vip(px->cat, &dst);
	if (!sp) {
		ctr_inc(&px->stats.passthrough);
		conn_start(px, pod, cfd, NULL, &dst);
		return;
	}
	/* The first connection to the port creates its state. */
	svc = state_svc_get(&px->st, px->cat, sp, &px->defaults);
	if (!sp->n_ready || !svc) {
		/* A service with no ready endpoint: refuse like a closed port would. */
		ctr_inc(&px->stats.no_endpoint);
		if (svc)
			svc->ctr.no_endpoint++;
		sock_close_reset(cfd);
		return;
	}
	ctr_inc(&px->stats.to_service);
	conn_start(px, pod, cfd, svc, NULL);
}

static void on_accept(struct loop *loop, int lfd, uint32_t events, void *ctx)
{
	struct px_pod *pod = ctx;
	struct proxy *px = pod->px;
	int family = lfd == pod->lfd4 ? AF_INET : AF_INET6;

	(void)loop;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_debug("proxy: accept pod=%u: %m", pod->id);
			return;
		}
		ctr_inc(&px->stats.total);
		if (!conn_admit(px, pod)) {
			sock_close_reset(cfd);
			continue;
		}
		accept_one(px, pod, cfd, family);
	}
}

int px_listener(struct px_pod *pod, const struct addr *a, loop_fd_fn fn)
{
	struct proxy *px = pod->px;
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(a, &ss);
	int one = 1, fd, err;

	/* A predecessor's socket when it handed this one over: its accept
	 * queue comes with it (docs/lifecycle.md).
	 */
	fd = px_adopt_take(pod->netns_fd, a->family, a->port);
	if (fd >= 0)
		goto watch;
	fd = netns_socket(pod->netns_fd, px->opts.home_netns_fd, a->family,
			  SOCK_STREAM | SOCK_NONBLOCK);
	if (fd < 0)
		return fd;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto out_errno;
	/* Accepted sockets inherit it: one setsockopt() per listener rather
	 * than per connection. Responses and relayed bytes go out as they are
	 * written, not held back for an ACK.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		goto out_errno;
	/* One listener per worker on the same port: the kernel spreads new
	 * connections across them by a hash of the 4-tuple (proxy/workers.h).
	 */
	if (px->opts.reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto out_errno;
	if (a->family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto out_errno;
	if (bind(fd, (struct sockaddr *)&ss, len) == -1)
		goto out_errno;
	if (listen(fd, LISTEN_BACKLOG) == -1)
		goto out_errno;
watch:
	err = loop_add_fd(px->loop, fd, EPOLLIN, fn, pod);
	if (err)
		goto out_close;
	return fd;
out_errno:
	err = -errno;
out_close:
	close(fd);
	return err;
}

static int make_listener(struct px_pod *pod, int family)
{
	struct addr a = { .family = family, .port = pod->px->opts.port };

	if (family == AF_INET)
		a.ip.v4.s_addr = htonl(INADDR_LOOPBACK);
	else
		a.ip.v6 = in6addr_loopback;
	return px_listener(pod, &a, on_accept);
}

int px_pod_listen(struct px_pod *pod, uint64_t *cookie)
{
	int fd, err;

	if (pod->lfd4 != -1)
		return 0;
	fd = make_listener(pod, AF_INET);
	if (fd < 0)
		return fd;
	pod->lfd4 = fd;
	if (cookie) {
		err = netns_cookie_of(fd, cookie);
		if (err) {
			px_pod_close(pod);
			return err;
		}
	}
	fd = make_listener(pod, AF_INET6);
	if (fd < 0)
		/* No ::1 in this pod (IPv6 disabled): IPv4 capture still works. */
		log_debug("proxy: no IPv6 listener in pod=%u: %s", pod->id, strerror(-fd));
	else
		pod->lfd6 = fd;
	return 0;
}

/* A listener may be shared with another agent (handed over, or being
 * handed over): the epoll entry must go explicitly, since closing this fd
 * then does not release the file.
 */
static void close_listener(struct proxy *px, int *fd)
{
	if (*fd == -1)
		return;
	(void)loop_del_fd(px->loop, *fd);
	close(*fd);
	*fd = -1;
}

void px_pod_stop_accepting(struct px_pod *pod)
{
	close_listener(pod->px, &pod->lfd4);
	close_listener(pod->px, &pod->lfd6);
	close_listener(pod->px, &pod->ilfd4);
	close_listener(pod->px, &pod->ilfd6);
}

void px_pod_drain(struct px_pod *pod)
{
	struct conn *c = pod->conns, *next;

	px_pod_stop_accepting(pod);
	pod->draining = true;
	for (; c; c = next) {
		next = c->next;
		/* HTTP between two requests: nothing in flight, nothing buffered
		 * (a client's request crossing this close is what every HTTP/1.1
		 * server's idle close risks; clients retry idempotent ones).
		 */
		if (c->ops == &relay_http && !c->up && !c->h.dispatched && !c->c2u.len &&
		    !c->u2c.len)
			conn_close(c, false);
	}
}

void px_pod_close(struct px_pod *pod)
{
	struct proxy *px = pod->px;

	while (pod->conns)
		conn_close(pod->conns, true);
	tls_links_close(pod);
	/* Their sockets live in the pod's netns, with its address. */
	pool_flush(px, pod, false);
	sock_pools_flush(pod);
	px_pod_stop_accepting(pod);
	while (pod->in_ports) {
		struct in_port *ip = pod->in_ports;

		pod->in_ports = ip->next;
		free(ip);
	}
	pod->n_in_ports = 0;
}
