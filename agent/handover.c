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
 *                              ←      RELEASED
 *   bind the control sockets;         drain, exit
 *   registries resume
 *
 * Version 1 throughout: REGISTRIES came later, and a peer announces that
 * it takes it in the HELLO's flags, which earlier agents send as zero and
 * never read. An agent of either age with one of the other therefore
 * hands over as before, and a ZooKeeper registration is then re-created
 * instead of kept (docs/lifecycle.md).
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
/* How long either side waits for the other's next word. */
#define HO_TIMEOUT_MS 10000

enum ho_type {
	HO_HELLO = 1,
	HO_SOCKETS,
	HO_END,
	HO_ADOPTED,
	HO_RELEASED,
	HO_REGISTRIES,
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
	};
};

#define HO_HDR_LEN offsetof(struct ho_msg, socks)

/* The size of one record of a message of @type. */
static size_t rec_len(uint16_t type)
{
	return type == HO_REGISTRIES ? sizeof(struct handover_reg) : sizeof(struct ho_sock);
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

/* Send a message of @type with @m->n records and @fds. 0 or -errno. */
static int ho_send(int fd, struct ho_msg *m, uint16_t type, const int *fds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_BATCH)];
	struct iovec iov = { .iov_base = m, .iov_len = HO_HDR_LEN + m->n * rec_len(type) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	m->magic = HO_MAGIC;
	m->version = HO_VERSION;
	m->type = type;
	if (m->n && type == HO_SOCKETS) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * m->n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * m->n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * m->n);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
		return errno ? -errno : -EIO;
	return 0;
}

/* Receive one message into @m and its fds into @fds (@m->n of them for
 * SOCKETS, none for any other, or the message is refused and every fd
 * received closed). 0, -ECONNRESET at EOF, -EPROTO for a malformed
 * message, or -errno.
 */
static int ho_recv(int fd, struct ho_msg *m, int *fds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_BATCH)];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	size_t n_fds = 0;
	ssize_t n;

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
			if (n_fds < HO_BATCH)
				fds[n_fds++] = v;
			else
				close(v);
		}
	}
	if ((size_t)n < HO_HDR_LEN || m->magic != HO_MAGIC || m->version != HO_VERSION ||
	    m->n > (m->type == HO_REGISTRIES ? AGENT_MAX_REGISTRIES : HO_BATCH) ||
	    (size_t)n != HO_HDR_LEN + m->n * rec_len(m->type) ||
	    n_fds != (m->type == HO_SOCKETS ? m->n : 0) ||
	    (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		return -EPROTO;
	}
	return 0;
}

/* Close the fds of a message received and refused. */
static void drop_fds(const struct ho_msg *m, int *fds)
{
	for (uint32_t i = 0; m->type == HO_SOCKETS && i < m->n; i++)
		close(fds[i]);
}

static int ho_word(int fd, uint16_t type, uint32_t flags)
{
	struct ho_msg m = { .n = 0, .flags = flags };

	return ho_send(fd, &m, type, NULL);
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
	err = ho_send(c->cfd, &c->m, HO_SOCKETS, c->fds);
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
		err = ho_send(cfd, m, HO_REGISTRIES, NULL);
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
	int fds[HO_BATCH], err;

	(void)loop;
	(void)events;
	err = ho_recv(fd, &m, fds);
	if (err == -EAGAIN || err == -EINTR)
		return;
	if (!err && m.n) {
		drop_fds(&m, fds);
		err = -EPROTO;
	}
	if (!err && m.type == HO_HELLO && !a->ho_passed) {
		a->ho_resumes = m.flags & HO_F_RESUME;
		err = pass_listeners(a, fd);
		a->ho_passed = !err;
		if (!err)
			return;
	} else if (!err && m.type == HO_ADOPTED && a->ho_passed) {
		log_info("handover: the successor adopted every listener; this agent stops accepting and drains");
		a->ho_release(a);
		err = pass_registries(a, fd);
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
	int fds[HO_BATCH], fd, err;
	size_t got = 0;

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
		err = ho_word(fd, HO_HELLO, HO_F_RESUME);
	while (!err) {
		err = ho_recv(fd, &m, fds);
		if (err)
			break;
		if (m.type == HO_END)
			break;
		if (m.type != HO_SOCKETS) {
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

int handover_finish(struct agent *a)
{
	struct ho_msg m;
	int fds[HO_BATCH], err;
	size_t left;

	if (a->ho_cfd == -1)
		return 0;
	left = px_adopt_close_rest();
	if (left)
		log_info("handover: closed %zu listening socket(s) no worker of this agent took (their queues move to the ones kept)",
			 left);
	err = ho_word(a->ho_cfd, HO_ADOPTED, 0);
	while (!err) {
		err = ho_recv(a->ho_cfd, &m, fds);
		if (!err && m.type == HO_REGISTRIES && !a->ho_regs) {
			err = take_registries(a, &m);
			continue;
		}
		if (!err && (m.type != HO_RELEASED || m.n)) {
			drop_fds(&m, fds);
			err = -EPROTO;
		}
		break;
	}
	close(a->ho_cfd);
	a->ho_cfd = -1;
	if (err)
		return log_errno(err, "handover: wait for the running agent to release its sockets");
	log_info("handover: the previous agent stopped accepting; it drains its connections");
	return 0;
}
