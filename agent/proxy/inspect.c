// SPDX-License-Identifier: GPL-2.0-only
/* Read-only views of the proxy for the admin API: live connections and the
 * balancer's next pick. Kept apart from the hot path's files so that what
 * the operator sees is computed here, from the same structures and the same
 * functions the proxy runs, without adding anything to a connection's path.
 */
#include <sys/socket.h>

#include "model/catalogue.h"
#include "loop.h"
#include "proxy/balancer.h"
#include "proxy/conn.h"

static const char *conn_state(const struct conn *c)
{
	if (!c->ops)
		return "detecting";
	if (c->up && c->up->connecting)
		return "connecting";
	if (c->up) {
		if (c->c2u.shut || c->u2c.shut)
			return "half-closed";
		return "established";
	}
	return c->ops->idle_state(c);
}

static void conn_info(const struct px_pod *pod, const struct conn *c,
		      struct proxy_conn_info *ci)
{
	const struct proxy *px = pod->px;
	const struct tls_link *l = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	*ci = (struct proxy_conn_info){ 0 };
	/* The peer of the accepted socket is the application's socket. */
	if (getpeername(c->cfd, (struct sockaddr *)&ss, &len) == 0 &&
	    !addr_from_sockaddr(&ci->client, (struct sockaddr *)&ss, len))
		addr_unmap(&ci->client);
	if (ci->client.family != AF_INET && ci->client.family != AF_INET6 && c->in)
		ci->client = c->peer;
	l = c->tls ? c->tls : c->up ? c->up->tls : NULL;
	if (l) {
		ci->mtls = tls_link_server(l) ? "server" : "client";
		tls_link_peer(l, ci->mtls_peer, sizeof(ci->mtls_peer));
		ci->mtls_resumed = tls_link_resumed(l);
	}
	ci->svc = c->svc;
	ci->dst = c->svc ? c->svc->vip : c->target;
	if (c->up) {
		ci->upstream = c->up->ep ? c->up->ep->addr : c->target;
		len = sizeof(ss);
		if (getsockname(c->up->fd, (struct sockaddr *)&ss, &len) == 0)
			(void)addr_from_sockaddr(&ci->source, (struct sockaddr *)&ss, len);
	}
	ci->age_ms = loop_now_ms(px->loop) - c->start_ms;
	ci->bytes_out = c->c2u.bytes + fp_bytes(c, 0);
	ci->bytes_in = c->u2c.bytes + fp_bytes(c, 1);
	ci->protocol = c->ops ? c->ops->name : "detecting";
	ci->state = conn_state(c);
	ci->attempts = c->n_tried;
	ci->requests = c->h.n_requests;
	ci->handed_over = c->adopted;
}

int px_pod_conns(const struct px_pod *pod, proxy_conn_fn fn, void *ctx)
{
	struct proxy_conn_info ci;
	int err;

	for (const struct conn *c = pod->conns; c; c = c->next) {
		conn_info(pod, c, &ci);
		err = fn(&ci, ctx);
		if (err)
			return err;
	}
	return 0;
}

const struct svc_state *proxy_service_for(const struct proxy *px, const struct addr *dst)
{
	const struct cat_svc_port *sp = catalogue_find_vip(px->cat, dst);

	return sp ? state_svc(&px->st, px->cat, sp) : NULL;
}

struct svc_state *proxy_service_blank_for(const struct proxy *px, const struct addr *dst)
{
	const struct cat_svc_port *sp = px->cat ? catalogue_find_vip(px->cat, dst) : NULL;

	return sp ? state_blank(sp, &px->defaults) : NULL;
}

const struct ep_state *proxy_preview_pick(const struct proxy *px, const struct svc_state *s,
					  bool *panic)
{
	/* balancer_pick() advances the cursor and the random state: run it on
	 * copies. The endpoint states it reads are shared and left untouched.
	 */
	struct svc_state copy = *s;
	uint64_t rng = px->rng;

	return balancer_pick(&copy, loop_now_ms(px->loop), NULL, 0, &rng, panic);
}
