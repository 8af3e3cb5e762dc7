// SPDX-License-Identifier: GPL-2.0-only
/* Attempts: serving a connection (L4) or a request (HTTP) on an upstream.
 * Pick an endpoint, take a pooled connection or connect one within the
 * service's circuit-breaker limits and the connect timeout; record each
 * outcome for outlier detection; on failure retry on another endpoint after a
 * jittered backoff, within the retry count and budget, or fail the client
 * through its relay (c->ops).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "log.h"
#include "loop.h"
#include "proxy/balancer.h"
#include "proxy/conn.h"

void ep_outcome(struct proxy *px, struct ep_state *e, bool ok)
{
	struct svc_state *s = e->svc;
	uint64_t now = loop_now_ms(px->loop);
	bool may;

	if (ok) {
		outlier_success(&e->ol, &s->pol, now);
		return;
	}
	e->ctr.failures++;
	may = outlier_may_eject(svc_n_ejected(s, now), s->n_ready, s->pol.outlier_max_pct);
	if (!outlier_failure(&e->ol, &s->pol, now, may))
		return;
	e->ctr.ejections++;
	s->ctr.ejections++;
	ctr_inc(&px->stats.ejections);
	/* Rare by construction (at most one per endpoint per ejection time) and
	 * what an operator needs to see: info, not per-connection debug.
	 */
	char buf[ADDR_STRLEN];

	log_info("proxy: %s/%s: endpoint %s ejected for %llu ms (ejection %u)", s->ns, s->name,
		 addr_fmt(&e->addr, buf, sizeof(buf)),
		 (unsigned long long)(e->ol.until_ms - now), e->ol.ejections);
}

void attempt_local_fail(struct conn *c, enum local_fail why)
{
	struct svc_state *s = c->svc;
	struct proxy *px = c->px;

	switch (why) {
	case LOCAL_NO_ENDPOINT:
		ctr_inc(&px->stats.no_endpoint);
		if (s)
			s->ctr.no_endpoint++;
		break;
	case LOCAL_OVERFLOW_CONNECTIONS:
		ctr_inc(&px->stats.overflow_connections);
		s->ctr.overflow[OVF_CONNECTIONS]++;
		break;
	case LOCAL_OVERFLOW_PENDING:
		ctr_inc(&px->stats.overflow_pending);
		s->ctr.overflow[OVF_PENDING]++;
		break;
	case LOCAL_OVERFLOW_REQUESTS:
		ctr_inc(&px->stats.overflow_requests);
		s->ctr.overflow[OVF_REQUESTS]++;
		break;
	case LOCAL_ERROR:
		ctr_inc(&px->stats.local_errors);
		c->pod->local_errors++;
		if (s)
			s->ctr.local_errors++;
		break;
	}
	c->ops->fail_local(c, why);
}

bool attempt_may_retry(struct conn *c, enum fail_kind kind)
{
	struct svc_state *s = c->svc;

	if (!s || c->n_tried >= 1 + c->pol->retries)
		return false;
	if (!c->ops->may_retry(c, kind))
		return false;
	if (!budget_take(&s->budget, loop_now_ms(c->px->loop), c->pol->retry_budget_pct,
			 c->pol->retry_budget_min)) {
		s->ctr.budget_exhausted++;
		ctr_inc(&c->px->stats.retry_budget_exhausted);
		return false;
	}
	return true;
}

static void on_retry(struct loop_timer *n, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, t_retry));

	(void)now;
	attempt_start(c);
}

void attempt_retry(struct conn *c)
{
	struct proxy *px = c->px;
	uint32_t ms = retry_backoff_ms(c->pol->retry_backoff_ms, c->n_tried, &px->rng);

	c->svc->ctr.retries++;
	ctr_inc(&px->stats.retries);
	if (px_timer_set(px, &c->t_retry, ms, on_retry)) {
		conn_close(c, true);
		return;
	}
	c->ops->update(c);
}

static void retry_or_fail(struct conn *c, enum fail_kind kind)
{
	if (attempt_may_retry(c, kind))
		attempt_retry(c);
	else
		c->ops->fail(c, kind);
}

static void record_failure(struct conn *c, struct ep_state *e, enum fail_kind kind)
{
	if (kind == FAIL_CONNECT || kind == FAIL_TIMEOUT)
		e->ctr.connect_failures++;
	/* A pooled connection the server had closed says nothing about the
	 * server; a response already judged was recorded then.
	 */
	if (kind != FAIL_STALE && !c->judged)
		ep_outcome(c->px, e, false);
}

void attempt_failed(struct conn *c, enum fail_kind kind)
{
	struct up *u = c->up;

	if (u && u->ep)
		record_failure(c, u->ep, kind);
	if (u)
		up_release(c, false);
	if (kind == FAIL_STALE && !c->stale_retried) {
		/* The server closed a pooled connection as the request went out:
		 * that says nothing about the endpoint, and the relay judged the
		 * request safe to send again. Once per request, at once, on a new
		 * connection (the pool may hold more of the same age), outside the
		 * retry count and budget.
		 */
		c->stale_retried = true;
		if (c->n_tried)
			c->n_tried--;
		attempt_start(c);
		return;
	}
	retry_or_fail(c, kind);
}

static void on_connect_timeout(struct loop_timer *n, uint64_t now)
{
	struct up *u = (struct up *)((char *)n - offsetof(struct up, t_conn));
	struct conn *c = u->c;

	(void)now;
	log_debug("proxy: upstream connect timed out pod=%u", c->pod->id);
	ctr_inc(&c->px->stats.connect_timeouts);
	if (c->svc)
		c->svc->ctr.connect_timeouts++;
	if (c->in)
		c->in->ctr.connect_errors++;	/* the application never answered */
	attempt_failed(c, FAIL_TIMEOUT);
}

/* A new upstream for @c to @target (@e NULL: a passthrough), attached and
 * connecting under the connect timeout. -errno on failure, @c->up then set
 * if only the timer failed.
 */
static int connect_one(struct conn *c, struct ep_state *e, const struct addr *target)
{
	int err = up_connect(c, e, target);

	if (err)
		return err;
	return px_timer_set(c->px, &c->up->t_conn, c->pol->connect_timeout_ms, on_connect_timeout);
}

void attempt_connected(struct conn *c, uint32_t events)
{
	struct up *u = c->up;
	int so_err = 0;
	socklen_t len = sizeof(so_err);

	/* A connect that failed reports EPOLLERR (and EPOLLHUP); writable
	 * alone, it succeeded, and asking SO_ERROR would cost a syscall per
	 * connection to learn nothing.
	 */
	if ((events & (EPOLLERR | EPOLLHUP)) &&
	    getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &so_err, &len) == -1)
		so_err = errno;
	if ((events & (EPOLLERR | EPOLLHUP)) && !so_err)
		so_err = ECONNRESET;	/* hung up without saying why */
	if (so_err) {
		log_debug("proxy: upstream connect failed pod=%u: %s", c->pod->id,
			  strerror(so_err));
		ctr_inc(&c->px->stats.connect_errors);
		if (c->in)
			c->in->ctr.connect_errors++;
		if (u->tls)
			tls_connect_failed(u->tls);
		attempt_failed(c, FAIL_CONNECT);
		return;
	}
	u->connecting = false;
	px_timer_del(c->px, &u->t_conn);
	/* mTLS: the ClientHello goes now, whatever the relay does first. */
	if (u->tls)
		tls_service(u->tls);
	if (u->ep) {
		u->ep->svc->pending--;
		lat_record(&u->ep->svc->lat_connect, lat_now_us() - u->connect_us,
			   loop_now_ms(c->px->loop));
	}
	c->ops->ready(c);
}

/* The connection of @pod most worth closing to make room at @s: one using
 * @s, the longest without a byte either way. NULL if none.
 */
static struct conn *most_idle(struct px_pod *pod, const struct svc_state *s)
{
	struct conn *best = NULL;

	for (struct conn *h = pod->conns; h; h = h->next)
		if (h->up && h->up->ep && h->up->ep->svc == s &&
		    (!best || h->last_io_ms < best->last_io_ms))
			best = h;
	return best;
}

/* @s is at max-connections with nothing idle in its pool. If @c's pod is
 * under its fair share of the limit and another pod is over its own, that
 * pod's most idle connection to @s is reset to make room: a pod over its
 * share is refused first, and cannot keep the pods under theirs out by
 * holding connections it does not use. False when @c must be refused.
 */
static bool make_room(struct conn *c, struct svc_state *s)
{
	uint32_t share = svc_pod_share(s, c->pod);
	struct px_pod *hog = svc_pod_hog(s);
	struct conn *victim;

	if (svc_pod_conns(s, c->pod) >= share || !hog || hog == c->pod ||
	    svc_pod_conns(s, hog) <= share)
		return false;
	victim = most_idle(hog, s);
	if (!victim)
		return false;
	log_debug("proxy: %s/%s at max-connections: pod=%u over its share %u, closing one of its "
		  "connections for pod=%u", s->ns, s->name, hog->id, share, c->pod->id);
	s->ctr.preempted++;
	ctr_inc(&c->px->stats.preempted);
	conn_close(victim, true);
	return true;
}

void attempt_start(struct conn *c)
{
	struct proxy *px = c->px;
	struct svc_state *s = c->svc;
	struct ep_state *e;
	struct up *u;
	bool panic;
	int err;

	if (!s) {
		/* Not a service: one try to where the application was going. */
		err = connect_one(c, NULL, &c->target);
		if (err && err_is_local(-err)) {
			if (c->up)
				up_release(c, false);
			attempt_local_fail(c, LOCAL_ERROR);
			return;
		}
		if (err) {
			ctr_inc(&px->stats.connect_errors);
			if (c->in)
				c->in->ctr.connect_errors++;
			conn_close(c, true);
			return;
		}
		c->ops->update(c);
		return;
	}
	e = balancer_pick(s, loop_now_ms(px->loop), c->tried, c->n_tried, &px->rng, &panic);
	if (!e) {
		attempt_local_fail(c, LOCAL_NO_ENDPOINT);
		return;
	}
	if (panic) {
		s->ctr.panic++;
		ctr_inc(&px->stats.panic);
	}
	if (c->n_tried < CONN_MAX_TRIES)
		c->tried[c->n_tried++] = e;
	if (c->ops->may_reuse(c) && !c->stale_retried) {
		u = pool_take(c, e);
		if (u) {
			e->ctr.reused++;
			ctr_inc(&px->stats.upstream_reused);
			c->ops->ready(c);
			return;
		}
	}
	if (s->conns >= c->pol->max_connections && !pool_evict(s) && !make_room(c, s)) {
		attempt_local_fail(c, LOCAL_OVERFLOW_CONNECTIONS);
		return;
	}
	if (s->pending >= c->pol->max_pending) {
		attempt_local_fail(c, LOCAL_OVERFLOW_PENDING);
		return;
	}
	err = connect_one(c, e, &e->addr);
	if (err) {
		char buf[ADDR_STRLEN];

		log_debug("proxy: connect pod=%u to %s: %s", c->pod->id,
			  addr_fmt(&e->addr, buf, sizeof(buf)), strerror(-err));
		if (err_is_local(-err)) {
			/* Out of descriptors, memory or local ports: the agent's
			 * trouble, not the endpoint's. No outlier failure, no
			 * retry (it would fail alike); the client is told.
			 */
			if (c->up)
				up_release(c, false);
			attempt_local_fail(c, LOCAL_ERROR);
			return;
		}
		ctr_inc(&px->stats.connect_errors);
		if (c->up) {
			attempt_failed(c, FAIL_CONNECT);
			return;
		}
		record_failure(c, e, FAIL_CONNECT);
		retry_or_fail(c, FAIL_CONNECT);
		return;
	}
	c->ops->update(c);
}
