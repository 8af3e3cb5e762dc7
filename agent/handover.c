// SPDX-License-Identifier: GPL-2.0-only
/* The hand-over protocol, both sides (handover.h). SOCK_SEQPACKET, so each
 * message arrives whole with its descriptors:
 *
 *   successor                         predecessor
 *   HELLO                      →
 *                              ←      SOCKETS (≤ HO_BATCH records + fds) …
 *                              ←      END
 *   (restore pods, adopting)
 *   ADOPTED                    →
 *                                     stop accepting, free cni.sock,
 *                                     admin.sock, metrics; registries
 *                                     stop without deregistering
 *                              ←      REGISTRIES (what they pass: only
 *                                     when the HELLO had HO_F_RESUME)
 *   registries resume at once
 *                              ←      CONNS (≤ PASS_BATCH established
 *                                     connections, their sockets and
 *                                     pipes) … only when the HELLO had
 *                                     HO_F_CONNS
 *   relay them at once
 *                              ←      RELEASED
 *   bind the control sockets          drain what was not passed, exit
 *
 * (Agents before this one sent CONNS first; a successor takes the two in
 * either order.)
 *
 * Version 1 throughout: REGISTRIES and CONNS came later, and a peer
 * announces that it takes them in the HELLO's flags, which earlier agents
 * send as zero and never read. An agent of either age with one of the
 * other therefore hands over as before: a ZooKeeper registration is then
 * re-created instead of kept, and established connections drain in the
 * old agent instead of moving (docs/lifecycle.md).
 *
 * The predecessor's side runs on its loop and never waits on the
 * successor except for the HELLO that follows a connect at once, so a
 * single-worker agent, whose proxy shares that loop, keeps serving.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "handover.h"
#include "log.h"
#include "loop.h"
#include "pods.h"
#include "proxy/adopt.h"
#include "proxy/workers.h"

#define HO_MAGIC 0x77656674u	/* "weft" */
#define HO_VERSION 1
#define HO_BATCH 64		/* fds per message, well under SCM_MAX_FD */
#define HO_F_RESUME 0x1u	/* HELLO: send REGISTRIES, the successor resumes them */
#define HO_F_CONNS 0x2u		/* HELLO: send CONNS, the successor relays them */
/* Descriptors one message may carry: listeners, or connections with theirs. */
#define HO_FDS_MAX 64
_Static_assert(HO_BATCH <= HO_FDS_MAX && PASS_BATCH * PASS_FDS_MAX <= HO_FDS_MAX,
	       "a message's descriptors fit its control buffer");
/* How long either side waits for the other's next word. */
#define HO_TIMEOUT_MS 10000

enum ho_type {
	HO_HELLO = 1,
	HO_SOCKETS,
	HO_END,
	HO_ADOPTED,
	HO_RELEASED,
	HO_REGISTRIES,
	HO_CONNS,
};

struct ho_sock {
	uint64_t ns_dev, ns_ino;	/* the pod netns (struct netns_id) */
	uint32_t family;
	uint16_t port;
	uint16_t pad;
};

struct ho_msg {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t n;			/* records: socks[] (one fd each) or regs[] */
	uint32_t flags;			/* HELLO: HO_F_*; zero elsewhere */
	union {
		struct ho_sock socks[HO_BATCH];
		struct handover_reg regs[AGENT_MAX_REGISTRIES];
		struct px_pass_rec conns[PASS_BATCH];
	};
};

#define HO_HDR_LEN offsetof(struct ho_msg, socks)

/* The size of one record of a message of @type. */
static size_t rec_len(uint16_t type)
{
	switch (type) {
	case HO_REGISTRIES:
		return sizeof(struct handover_reg);
	case HO_CONNS:
		return sizeof(struct px_pass_rec);
	default:
		return sizeof(struct ho_sock);
	}
}

/* The most records a message of @type holds. */
static uint32_t rec_max(uint16_t type)
{
	switch (type) {
	case HO_REGISTRIES:
		return AGENT_MAX_REGISTRIES;
	case HO_CONNS:
		return PASS_BATCH;
	default:
		return HO_BATCH;
	}
}

/* Whether connection record @r is well formed: what the successor trusts
 * it for is bounded.
 */
static bool conn_rec_valid(const struct px_pass_rec *r)
{
	for (int d = 0; d < 2; d++) {
		if (r->pending[d] > PASS_PENDING_MAX || r->eof[d] > 1 || r->shut[d] > 1 ||
		    (r->shut[d] && !r->eof[d]))
			return false;
	}
	return memchr(r->svc_ns, '\0', sizeof(r->svc_ns)) &&
	       memchr(r->svc_name, '\0', sizeof(r->svc_name));
}

/* The descriptors a well-formed message @m must carry; SIZE_MAX when a
 * record is malformed.
 */
static size_t fds_expected(const struct ho_msg *m)
{
	size_t n = 0;

	if (m->type == HO_SOCKETS)
		return m->n;
	if (m->type != HO_CONNS)
		return 0;
	for (uint32_t i = 0; i < m->n; i++) {
		if (!conn_rec_valid(&m->conns[i]))
			return SIZE_MAX;
		n += pass_rec_fds(&m->conns[i]);
	}
	return n;
}

static int ho_path(const struct agent *a, struct sockaddr_un *sun)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s", a->cfg->run_dir,
		     HANDOVER_SOCK);
	return n < 0 || (size_t)n >= sizeof(sun->sun_path) ? -ENAMETOOLONG : 0;
}

static int set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = HO_TIMEOUT_MS / 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		return -errno;
	return 0;
}

/* Send a message of @type with @m->n records and @n_fds descriptors @fds. 0
 * or -errno.
 */
static int ho_send(int fd, struct ho_msg *m, uint16_t type, const int *fds, size_t n_fds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_FDS_MAX)];
	struct iovec iov = { .iov_base = m, .iov_len = HO_HDR_LEN + m->n * rec_len(type) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	m->magic = HO_MAGIC;
	m->version = HO_VERSION;
	m->type = type;
	if (n_fds > HO_FDS_MAX)
		return -E2BIG;
	if (n_fds) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
		return errno ? -errno : -EIO;
	return 0;
}

/* Receive one message into @m and its fds into @fds (HO_FDS_MAX room):
 * @m->n of them for SOCKETS, those of its records for CONNS, none for any
 * other, or the message is refused and every fd received closed; their
 * number in *@n_fds. 0, -ECONNRESET at EOF, -EPROTO for a malformed
 * message, or -errno.
 */
static int ho_recv(int fd, struct ho_msg *m, int *fds, size_t *n_fds_out)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_FDS_MAX)];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	size_t n_fds = 0;
	ssize_t n;

	*n_fds_out = 0;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < k; i++) {
			int v;

			memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n_fds < HO_FDS_MAX)
				fds[n_fds++] = v;
			else
				close(v);
		}
	}
	if ((size_t)n < HO_HDR_LEN || m->magic != HO_MAGIC || m->version != HO_VERSION ||
	    m->n > rec_max(m->type) || (size_t)n != HO_HDR_LEN + m->n * rec_len(m->type) ||
	    n_fds != fds_expected(m) || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		return -EPROTO;
	}
	*n_fds_out = n_fds;
	return 0;
}

/* Close the fds of a message received and refused. */
static void drop_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static int ho_word(int fd, uint16_t type, uint32_t flags)
{
	struct ho_msg m = { .n = 0, .flags = flags };

	return ho_send(fd, &m, type, NULL, 0);
}

/* CLOCK_MONOTONIC in microseconds: what the logs say passing took. */
static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- predecessor */

struct collect {
	int cfd;
	struct ho_msg m;
	int fds[HO_BATCH];
	size_t sent;
	int err;
};

static void flush_batch(struct collect *c)
{
	int err;

	if (!c->m.n || c->err)
		return;
	err = ho_send(c->cfd, &c->m, HO_SOCKETS, c->fds, c->m.n);
	if (err)
		c->err = err;
	c->sent += c->m.n;
	c->m.n = 0;
}

static void collect_one(int fd, int netns_fd, void *ctx)
{
	struct collect *c = ctx;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct ho_sock *s = &c->m.socks[c->m.n];
	struct stat st;

	if (c->err)
		return;
	if (fstat(netns_fd, &st) == -1 || getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		c->err = -errno;
		return;
	}
	*s = (struct ho_sock){
		.ns_dev = (uint64_t)st.st_dev,
		.ns_ino = (uint64_t)st.st_ino,
		.family = ss.ss_family,
		.port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
						 : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port),
	};
	c->fds[c->m.n++] = fd;
	if (c->m.n == HO_BATCH)
		flush_batch(c);
}

static void collect_capture(struct px_capture *cap, void *ctx)
{
	workers_capture_listeners(cap, collect_one, ctx);
}

static void drop_conn(struct agent *a)
{
	if (a->ho_cfd == -1)
		return;
	(void)loop_del_fd(a->loop, a->ho_cfd);
	close(a->ho_cfd);
	a->ho_cfd = -1;
}

/* Pass every listener to the successor on @cfd, then END. 0 or -errno. */
static int pass_listeners(struct agent *a, int cfd)
{
	struct collect *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->cfd = cfd;
	/* Only the main thread changes listeners (under isolation), and this
	 * is the main thread: reading them needs no isolation.
	 */
	pods_each_capture(a->pods, collect_capture, c);
	flush_batch(c);
	err = c->err ?: ho_word(cfd, HO_END, 0);
	if (!err)
		log_info("handover: passed %zu listening socket(s) to a successor", c->sent);
	free(c);
	return err;
}

struct conn_pass {
	int cfd;
	struct pass_batch *b;
	int err;
	uint64_t in_flight;	/* bytes passed in pipes */
	struct ho_msg m;
};

static int send_conns(const struct px_pass_rec *recs, size_t n, const int *fds, size_t n_fds,
		      void *ctx)
{
	struct conn_pass *p = ctx;
	int err;

	p->m.n = (uint32_t)n;
	memcpy(p->m.conns, recs, n * sizeof(recs[0]));
	err = ho_send(p->cfd, &p->m, HO_CONNS, fds, n_fds);
	for (size_t i = 0; !err && i < n; i++)
		p->in_flight += recs[i].pending[PASS_C2U] + recs[i].pending[PASS_U2C];
	return err;
}

static void pass_capture(struct px_capture *cap, void *ctx)
{
	struct conn_pass *p = ctx;

	if (!p->err)
		p->err = workers_capture_pass(cap, p->b);
}

/* Pass the established opaque connections to the successor on @cfd, the
 * workers parked meanwhile; what cannot go (HTTP, mTLS, inbound, or all
 * after a failed send) drains here.
 */
static void pass_conns(struct agent *a, int cfd)
{
	struct conn_pass *p = calloc(1, sizeof(*p));
	uint64_t t0 = now_us();
	long n;

	if (!p) {
		log_warn("handover: cannot pass established connections: %s, they drain here",
			 strerror(ENOMEM));
		return;
	}
	p->cfd = cfd;
	p->b = workers_pass_begin(a->workers, send_conns, p);
	if (!p->b) {
		n = -errno;
	} else {
		pods_each_capture(a->pods, pass_capture, p);
		n = workers_pass_end(a->workers, p->b);
	}
	if (n < 0)
		log_warn("handover: passing established connections failed: %s; the rest drain here",
			 strerror((int)-n));
	else
		log_info("handover: passed %ld established connection(s) to the successor in %llu us (%llu bytes in flight with them)",
			 n, (unsigned long long)(now_us() - t0), (unsigned long long)p->in_flight);
	free(p);
}

/* Send what the registries passed at the release (a->ho_regs), if
 * anything, and free it. 0 or -errno: the sessions are then nobody's and
 * expire (docs/lifecycle.md).
 */
static int pass_registries(struct agent *a, int cfd)
{
	struct ho_msg *m;
	int err = 0;

	if (a->n_ho_regs) {
		m = calloc(1, sizeof(*m));
		if (!m) {
			err = -ENOMEM;
			goto out;
		}
		m->n = a->n_ho_regs;
		memcpy(m->regs, a->ho_regs, a->n_ho_regs * sizeof(m->regs[0]));
		err = ho_send(cfd, m, HO_REGISTRIES, NULL, 0);
		free(m);
		if (!err)
			log_info("handover: passed %u registry session(s) to the successor",
				 a->n_ho_regs);
	}
out:
	free(a->ho_regs);
	a->ho_regs = NULL;
	a->n_ho_regs = 0;
	return err;
}

/* The successor's HELLO (then the listeners go), or its ADOPTED (then this
 * agent releases everything and drains).
 */
static void on_successor(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct agent *a = ctx;
	struct ho_msg m;
	int fds[HO_FDS_MAX], err;
	size_t n_fds;

	(void)loop;
	(void)events;
	err = ho_recv(fd, &m, fds, &n_fds);
	if (err == -EAGAIN || err == -EINTR)
		return;
	if (!err && m.n) {
		drop_fds(fds, n_fds);
		err = -EPROTO;
	}
	if (!err && m.type == HO_HELLO && !a->ho_passed) {
		a->ho_resumes = m.flags & HO_F_RESUME;
		a->ho_conns = (m.flags & HO_F_CONNS) && !a->cfg->no_pass_conns;
		err = pass_listeners(a, fd);
		a->ho_passed = !err;
		if (!err)
			return;
	} else if (!err && m.type == HO_ADOPTED && a->ho_passed) {
		log_info("handover: the successor adopted every listener; this agent stops accepting and drains");
		a->ho_release(a);
		/* The sessions let go of run their timeouts from now: they go
		 * first, the connections after (a successor of this version
		 * takes both in either order).
		 */
		err = pass_registries(a, fd);
		if (!err && a->ho_conns)
			pass_conns(a, fd);
		if (!err)
			err = ho_word(fd, HO_RELEASED, 0);
		if (err)
			log_warn("handover: cannot tell the successor it may go on: %s", strerror(-err));
		drop_conn(a);
		return;
	} else if (!err) {
		err = -EPROTO;
	}
	log_warn("handover: the successor went away before adopting (%s); this agent carries on",
		 strerror(-err));
	drop_conn(a);
}

static bool peer_trusted(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return false;
	return cr.uid == 0 || cr.uid == geteuid();
}

static void on_handover(struct loop *loop, int lfd, uint32_t events, void *ctx)
{
	struct agent *a = ctx;
	int cfd, err;

	(void)events;
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd == -1)
		return;
	if (a->ho_cfd != -1 || !peer_trusted(cfd)) {
		log_warn("handover: refused a connection (%s)",
			 a->ho_cfd != -1 ? "a hand-over is under way" : "not root");
		close(cfd);
		return;
	}
	/* Blocking with timeouts: the successor reads as it goes, and this
	 * loop waits for its words through epoll, never in recv().
	 */
	err = set_timeouts(cfd);
	if (!err)
		err = loop_add_fd(loop, cfd, EPOLLIN, on_successor, a);
	if (err) {
		log_warn("handover: cannot serve a successor: %s", strerror(-err));
		close(cfd);
		return;
	}
	a->ho_cfd = cfd;
	a->ho_passed = false;
}

int handover_listen(struct agent *a, handover_release_fn release)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old_mask;
	int fd, err;

	err = ho_path(a, &sun);
	if (err)
		return err;
	if (lstat(sun.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		if (unlink(sun.sun_path) == -1)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	old_mask = umask(0177);	/* root only, from the first instant */
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ? -errno : 0;
	umask(old_mask);
	if (!err && listen(fd, 4) == -1)
		err = -errno;
	if (!err)
		err = loop_add_fd(a->loop, fd, EPOLLIN, on_handover, a);
	if (err) {
		close(fd);
		(void)unlink(sun.sun_path);
		return err;
	}
	a->ho_lfd = fd;
	a->ho_release = release;
	return 0;
}

void handover_close(struct agent *a, bool unlink_path)
{
	struct sockaddr_un sun;

	if (a->ho_lfd == -1)
		return;
	(void)loop_del_fd(a->loop, a->ho_lfd);
	close(a->ho_lfd);
	a->ho_lfd = -1;
	if (unlink_path && !ho_path(a, &sun))
		(void)unlink(sun.sun_path);
}

/* ---- successor */

int handover_begin(struct agent *a)
{
	struct sockaddr_un sun;
	struct ho_msg m;
	int fds[HO_FDS_MAX], fd, err;
	size_t got = 0, n_fds;

	err = ho_path(a, &sun);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		err = -errno;
		close(fd);
		if (err != -ENOENT && err != -ECONNREFUSED)
			return err;
		if (a->cfg->takeover) {
			log_err("handover: --takeover, but no agent answers on '%s'", sun.sun_path);
			return -ESRCH;
		}
		return 0;
	}
	err = set_timeouts(fd);
	if (!err)
		err = ho_word(fd, HO_HELLO,
			      HO_F_RESUME | (a->cfg->no_pass_conns ? 0 : HO_F_CONNS));
	while (!err) {
		err = ho_recv(fd, &m, fds, &n_fds);
		if (err)
			break;
		if (m.type == HO_END)
			break;
		if (m.type != HO_SOCKETS) {
			drop_fds(fds, n_fds);
			err = -EPROTO;
			break;
		}
		for (uint32_t i = 0; i < m.n; i++) {
			const struct ho_sock *s = &m.socks[i];
			const struct px_adopted ad = {
				.fd = fds[i],
				.ns = { .dev = s->ns_dev, .ino = s->ns_ino },
				.family = (int)s->family,
				.port = s->port,
			};
			int e = px_adopt_offer(&ad);

			err = err ?: e;
		}
		got += m.n;
	}
	if (err) {
		close(fd);
		px_adopt_close_rest();
		return log_errno(err, "handover: receive the running agent's listeners");
	}
	log_info("handover: the running agent passed %zu listening socket(s)", got);
	a->ho_cfd = fd;
	return 1;
}

/* Keep the records of a REGISTRIES message in a->ho_regs. 0 or -errno. */
static int take_registries(struct agent *a, const struct ho_msg *m)
{
	a->ho_regs = calloc(AGENT_MAX_REGISTRIES, sizeof(*a->ho_regs));
	if (!a->ho_regs)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n; i++) {
		const struct handover_reg *r = &m->regs[i];

		if (!memchr(r->spec, '\0', sizeof(r->spec)) || r->pass.len > REG_PASS_MAX)
			continue;
		a->ho_regs[a->n_ho_regs++] = *r;
	}
	log_info("handover: the running agent passed %u registry session(s)", a->n_ho_regs);
	return 0;
}

/* The captures of the restored pods by netns identity: where passed
 * connections go.
 */
struct cap_index {
	struct cap_ns {
		uint64_t dev, ino;
		struct px_capture *cap;
	} *v;
	size_t n, max;
	bool built;
};

static void index_capture(struct px_capture *cap, void *ctx)
{
	struct cap_index *ix = ctx;
	struct cap_ns *e;

	if (ix->n == ix->max) {
		size_t max = ix->max ? 2 * ix->max : 64;
		struct cap_ns *v = realloc(ix->v, max * sizeof(*v));

		if (!v)
			return;
		ix->v = v;
		ix->max = max;
	}
	e = &ix->v[ix->n];
	if (!workers_capture_netns_id(cap, &e->dev, &e->ino)) {
		e->cap = cap;
		ix->n++;
	}
}

static struct px_capture *capture_of(const struct cap_index *ix, const struct px_pass_rec *r)
{
	for (size_t i = 0; i < ix->n; i++) {
		if (ix->v[i].dev == r->ns_dev && ix->v[i].ino == r->ns_ino)
			return ix->v[i].cap;
	}
	return NULL;
}

/* Close socket @fd with a reset: its bytes in flight are lost. */
static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Relay the connections of CONNS message @m from now on, with its @fds;
 * a connection of a pod this agent does not serve is reset. Adds to
 * *@adopted and *@lost.
 */
static void adopt_conns(struct agent *a, struct cap_index *ix, const struct ho_msg *m, int *fds,
			size_t *adopted, size_t *lost)
{
	size_t k = 0;

	if (!ix->built) {
		pods_each_capture(a->pods, index_capture, ix);
		ix->built = true;
	}
	workers_isolate(a->workers);
	for (uint32_t i = 0; i < m->n; i++) {
		const struct px_pass_rec *r = &m->conns[i];
		struct px_capture *cap = capture_of(ix, r);
		size_t nf = pass_rec_fds(r);

		if (cap && !workers_capture_adopt(cap, r, fds + k)) {
			(*adopted)++;
		} else {
			if (!cap) {
				reset_close(fds[k]);
				reset_close(fds[k + 1]);
				drop_fds(fds + k + 2, nf - 2);
			}
			(*lost)++;
		}
		k += nf;
	}
	workers_release(a->workers);
}

int handover_finish(struct agent *a, handover_resume_fn resume)
{
	struct cap_index ix = { 0 };
	struct ho_msg m;
	int fds[HO_FDS_MAX], err;
	size_t left, n_fds, adopted = 0, lost = 0;
	uint64_t t0 = 0;
	bool took = false, resumed = false;

	if (a->ho_cfd == -1) {
		resume(a);
		return 0;
	}
	left = px_adopt_close_rest();
	if (left)
		log_info("handover: closed %zu listening socket(s) no worker of this agent took (their queues move to the ones kept)",
			 left);
	err = ho_word(a->ho_cfd, HO_ADOPTED, 0);
	while (!err) {
		err = ho_recv(a->ho_cfd, &m, fds, &n_fds);
		if (!err && m.type == HO_CONNS) {
			if (!t0)
				t0 = now_us();
			adopt_conns(a, &ix, &m, fds, &adopted, &lost);
			continue;
		}
		if (!err && m.type == HO_REGISTRIES && !took) {
			/* The sessions were let go before they were sent: resume
			 * them at once, not after the connections.
			 */
			err = take_registries(a, &m);
			took = true;
			if (!err) {
				resume(a);
				resumed = true;
			}
			continue;
		}
		if (!err && (m.type != HO_RELEASED || m.n)) {
			drop_fds(fds, n_fds);
			err = -EPROTO;
		}
		break;
	}
	free(ix.v);
	if (!resumed)
		resume(a);	/* nothing passed (or not whole): register as usual */
	if (t0)
		log_info("handover: relaying %zu established connection(s) the running agent passed (%zu lost: pod gone or no memory), taken in %llu us",
			 adopted, lost, (unsigned long long)(now_us() - t0));
	close(a->ho_cfd);
	a->ho_cfd = -1;
	if (err)
		return log_errno(err, "handover: wait for the running agent to release its sockets");
	log_info("handover: the previous agent stopped accepting; it drains its connections");
	return 0;
}
