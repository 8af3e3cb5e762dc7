// SPDX-License-Identifier: GPL-2.0-only
/* Established opaque connections moving between agents at a hand-over
 * (proxy/pass.h, docs/lifecycle.md). Both sides run on the main thread while
 * the workers are parked (workers_isolate()): a parked worker reads nothing,
 * so a connection is quiesced by being looked at, and the workers' seccomp
 * filter never has to allow SCM_RIGHTS. Calls conn.c and upstream.c, and
 * the relay only through px->relays[].
 *
 * What is in flight travels as pipes: bytes a relay spliced are in its pipe
 * already, and bytes it holds in a buffer (read while detecting the
 * protocol, or before an HTTP upgrade) are written into a new pipe, so the
 * successor finds every direction's pending bytes in one place, ahead of
 * what is still queued on the sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "model/catalogue.h"
#include "proxy/conn.h"

struct pass_batch {
	pass_send_fn send;
	void *ctx;
	struct px_pass_rec recs[PASS_BATCH];
	struct conn *conns[PASS_BATCH];
	int fds[PASS_BATCH * PASS_FDS_MAX];
	size_t n, n_fds;
	int made[PASS_BATCH * 4];	/* pipes made for buffered bytes: ours to close */
	size_t n_made;
	long passed;
	int err;
};

struct pass_batch *pass_batch_new(pass_send_fn send, void *ctx)
{
	struct pass_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->send = send;
	b->ctx = ctx;
	return b;
}

static void close_made(struct pass_batch *b)
{
	while (b->n_made)
		close(b->made[--b->n_made]);
}

/* Send the batch; on success the connections are this agent's no more. */
static void flush(struct pass_batch *b)
{
	int err;

	if (!b->n)
		return;
	err = b->send(b->recs, b->n, b->fds, b->n_fds, b->ctx);
	if (err) {
		b->err = err;
	} else {
		for (size_t i = 0; i < b->n; i++) {
			ctr_inc(&b->conns[i]->px->stats.conns_passed_out);
			fp_handed_over(b->conns[i]);
			conn_forget(b->conns[i]);
		}
		b->passed += (long)b->n;
	}
	close_made(b);
	b->n = b->n_fds = 0;
}

/* Whether @c can be passed as it is: an opaque relay, outbound, connected,
 * plaintext (an mTLS upstream is a TLS session whose keys live in this
 * process's OpenSSL objects), not watched (inbound observation), and each
 * direction's pending bytes in one place.
 */
static bool passable(const struct conn *c)
{
	const struct half *hs[] = { &c->c2u, &c->u2c };

	if (c->ops != c->px->relays[RELAY_TCP] || c->in || c->obs || !c->up ||
	    c->up->connecting)
		return false;
	/* On the fast path the kernel may hold bytes of either direction in
	 * the sockets' BPF queues, which leaving the map would drop: the
	 * sockets go as they are, still in the pinned maps the successor
	 * opens too. Unpinned maps die with this agent: such a connection
	 * stays here and drains.
	 */
	if (c->up->tls || (c->fast && !c->px->opts.fastpath->pinned))
		return false;
	for (size_t d = 0; d < 2; d++) {
		if (hs[d]->copy || (hs[d]->len && hs[d]->piped) || hs[d]->len > PASS_PENDING_MAX ||
		    hs[d]->piped > PASS_PENDING_MAX)
			return false;
	}
	return true;
}

/* Put one direction's pending bytes of @h into the batch's descriptors and
 * @r. 0 or -errno (nothing added).
 */
static int add_pending(struct pass_batch *b, struct half *h, struct px_pass_rec *r, int d)
{
	int p[2];

	if (h->piped) {
		r->pending[d] = (uint32_t)h->piped;
		b->fds[b->n_fds++] = h->pipe[0];
		b->fds[b->n_fds++] = h->pipe[1];
		return 0;
	}
	if (!h->len)
		return 0;
	/* A new pipe holds a relay buffer whole (CONN_BUF_SIZE against its
	 * 64 KiB), so one write fills it.
	 */
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -errno;
	if (write(p[1], h->buf + h->off, h->len) != (ssize_t)h->len) {
		close(p[0]);
		close(p[1]);
		return -EIO;
	}
	b->made[b->n_made++] = p[0];
	b->made[b->n_made++] = p[1];
	r->pending[d] = (uint32_t)h->len;
	b->fds[b->n_fds++] = p[0];
	b->fds[b->n_fds++] = p[1];
	return 0;
}

/* Add @c, of the pod in netns @ns, to @b. False when it cannot go (it
 * stays, and drains).
 */
static bool add(struct pass_batch *b, struct conn *c, const struct stat *ns)
{
	struct px_pass_rec *r = &b->recs[b->n];
	uint64_t now = loop_now_ms(c->px->loop);
	size_t fds0 = b->n_fds, made0 = b->n_made;
	struct half *hs[] = { &c->c2u, &c->u2c };

	memset(r, 0, sizeof(*r));
	r->ns_dev = (uint64_t)ns->st_dev;
	r->ns_ino = (uint64_t)ns->st_ino;
	if (c->svc) {
		snprintf(r->svc_ns, sizeof(r->svc_ns), "%s", c->svc->ns);
		snprintf(r->svc_name, sizeof(r->svc_name), "%s", c->svc->name);
		r->vip = c->svc->vip;
	}
	r->upstream = c->up->ep ? c->up->ep->addr : c->target;
	r->age_ms = now - c->start_ms;
	r->idle_ms = now > c->last_io_ms ? now - c->last_io_ms : 0;
	b->fds[b->n_fds++] = c->cfd;
	b->fds[b->n_fds++] = c->up->fd;
	if (c->fast) {
		if (fp_hand_over(c)) {
			b->n_fds = fds0;
			return false;
		}
		r->flags |= PASS_F_FAST;
	}
	for (int d = 0; d < 2; d++) {
		r->bytes[d] = hs[d]->bytes + fp_bytes(c, d);
		r->eof[d] = hs[d]->eof;
		r->shut[d] = hs[d]->shut;
		if (add_pending(b, hs[d], r, d)) {
			while (b->n_made > made0)
				close(b->made[--b->n_made]);
			b->n_fds = fds0;
			return false;
		}
	}
	b->conns[b->n++] = c;
	return true;
}

int px_pod_pass(struct px_pod *pod, struct pass_batch *b)
{
	struct conn *c, *next;
	struct stat ns;

	if (!pod->conns || b->err)
		return b->err;
	if (fstat(pod->netns_fd, &ns) == -1)
		return -errno;
	for (c = pod->conns; c && !b->err; c = next) {
		next = c->next;
		if (!passable(c) || !add(b, c, &ns))
			continue;
		/* Sent now, @c is freed; @next is not in the batch. */
		if (b->n == PASS_BATCH)
			flush(b);
	}
	return b->err;
}

long pass_batch_finish(struct pass_batch *b)
{
	long ret;

	if (!b->err)
		flush(b);
	close_made(b);
	ret = b->err ? b->err : b->passed;
	free(b);
	return ret;
}

/* ---------------------------------------------------------------- adopting */

/* The adopted connection's service port in this proxy's snapshot: its
 * state, created if no connection here used it yet.
 */
static struct svc_state *find_svc(struct proxy *px, const struct px_pass_rec *r)
{
	const struct cat_svc_port *sp;

	if (!r->svc_ns[0] || !px->cat)
		return NULL;
	sp = catalogue_find_vip(px->cat, &r->vip);
	if (!sp || strcmp(sp->svc->ns, r->svc_ns) || strcmp(sp->svc->name, r->svc_name))
		return NULL;
	return state_svc_get(&px->st, px->cat, sp, &px->defaults);
}

static struct ep_state *find_ep(struct svc_state *s, const struct addr *a)
{
	for (struct ep_state *e = s ? s->all : NULL; e; e = e->next) {
		if (addr_equal(&e->addr, a))
			return e;
	}
	return NULL;
}

int px_pod_adopt(struct px_pod *pod, const struct px_pass_rec *r, int *fds)
{
	struct proxy *px = pod->px;
	struct svc_state *svc = find_svc(px, r);
	struct half *hs[2];
	uint64_t now = loop_now_ms(px->loop);
	size_t k = 2;
	struct conn *c;
	int err;

	c = conn_new(px, pod, fds[0], svc, NULL);
	if (!c) {
		err = -ENOMEM;
		goto out_reset;
	}
	c->adopted = true;
	c->target = r->upstream;
	c->start_ms = now > r->age_ms ? now - r->age_ms : 0;
	c->last_io_ms = now > r->idle_ms ? now - r->idle_ms : 0;
	c->ops = px->relays[RELAY_TCP];
	hs[PASS_C2U] = &c->c2u;
	hs[PASS_U2C] = &c->u2c;
	/* The pipes go to the connection first: conn_close() drops them. */
	for (int d = 0; d < 2; d++) {
		struct half *h = hs[d];

		h->bytes = r->bytes[d];
		h->eof = r->eof[d];
		h->shut = r->shut[d];
		if (!r->pending[d])
			continue;
		h->pipe[0] = fds[k++];
		h->pipe[1] = fds[k++];
		h->piped = r->pending[d];
		pipe_adopt(&px->pipes);
	}
	err = up_adopt(c, find_ep(svc, &r->upstream), fds[1]);
	if (err) {
		sock_close_reset(fds[1]);
		conn_close(c, true);
		return err;
	}
	if (r->flags & PASS_F_FAST)
		fp_adopt(c);
	ctr_inc(&px->stats.conns_passed_in);
	/* Both directions at once: the bytes in flight go first, then what
	 * waits on either socket, and a FIN that had not gone on yet goes now.
	 * Level-triggered epoll takes over from there. May close @c.
	 */
	c->ops->on_client(c, EPOLLIN | EPOLLOUT);
	return 0;
out_reset:
	/* conn_new() reset the client already. */
	sock_close_reset(fds[1]);
	for (; k < pass_rec_fds(r); k++)
		close(fds[k]);
	return err;
}
