// SPDX-License-Identifier: GPL-2.0-only
/* The bottom of the ZooKeeper backend (registry/zk_session.h): the
 * completions and the watcher that the client library's threads run, and
 * the calls the worker thread makes through them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "registry/zk_session.h"
#include "sync.h"

/* ---- completions and watcher: the library's threads ---- */

static void complete(struct zk_req *r, int rc)
{
	r->rc = rc;
	r->done = true;
	pthread_cond_broadcast(&r->z->cond);
	pthread_mutex_unlock(&r->z->lock);
}

void zk_data_done(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
	struct zk_req *r = (struct zk_req *)data;

	pthread_mutex_lock(&r->z->lock);
	if (rc == ZOK && stat)
		r->stat = *stat;
	if (rc == ZOK) {
		r->len = len > 0 ? len : 0;
		r->data = malloc((size_t)r->len + 1);
		if (!r->data)
			rc = ZSYSTEMERROR;
		else {
			if (r->len)
				memcpy(r->data, value, (size_t)r->len);
			r->data[r->len] = '\0';
		}
	}
	complete(r, rc);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void zk_strings_done(int rc, const struct String_vector *names, const void *data)
{
	struct zk_req *r = (struct zk_req *)data;
	size_t n = rc == ZOK && names && names->count > 0 ? (size_t)names->count : 0;

	pthread_mutex_lock(&r->z->lock);
	if (n && !(r->names = calloc(n, sizeof(*r->names))))
		rc = ZSYSTEMERROR;
	for (size_t i = 0; i < n && rc == ZOK; i++) {
		r->names[i] = strdup(names->data[i]);
		if (!r->names[i])
			rc = ZSYSTEMERROR;
		r->n_names = i + 1;
	}
	if (rc == ZOK && n)
		qsort(r->names, n, sizeof(*r->names), name_cmp);
	complete(r, rc);
}

void zk_void_done(int rc, const void *data)
{
	struct zk_req *r = (struct zk_req *)data;

	pthread_mutex_lock(&r->z->lock);
	complete(r, rc);
}

void zk_stat_done(int rc, const struct Stat *stat, const void *data)
{
	struct zk_req *r = (struct zk_req *)data;

	pthread_mutex_lock(&r->z->lock);
	if (rc == ZOK && stat)
		r->stat = *stat;
	complete(r, rc);
}

void zk_string_done(int rc, const char *value, const void *data)
{
	(void)value;
	zk_void_done(rc, data);
}

void zk_on_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk *z = ctx;
	struct zk_event *ev = NULL;

	(void)zh;
	if (type != ZOO_SESSION_EVENT && path) {
		size_t n = strlen(path);

		ev = malloc(sizeof(*ev) + n + 1);
		if (ev) {
			ev->next = NULL;
			ev->type = type;
			memcpy(ev->path, path, n + 1);
		}
	}
	pthread_mutex_lock(&z->lock);
	if (type == ZOO_SESSION_EVENT) {
		z->session_state = state;
		z->session_changed = true;
	} else if (!ev || z->n_events == ZK_EVENTS_MAX) {
		/* An event lost is a change missed: list everything again. */
		z->events_lost = true;
		free(ev);
	} else if (type != ZOO_NOTWATCHING_EVENT) {
		*z->events_tail = ev;
		z->events_tail = &ev->next;
		z->n_events++;
	} else {
		free(ev);
	}
	pthread_cond_broadcast(&z->cond);
	pthread_mutex_unlock(&z->lock);
}

/* ---- helpers for the worker ---- */

#define ZK_DEAD_TRIES 4		/* addresses tried to cut a handle off (let_go()) */

void zk_req_issued(struct zk_req *r, int rc)
{
	if (rc == ZOK)
		return;
	r->rc = rc;
	r->done = true;
}

void zk_req_clear(struct zk_req *r)
{
	free(r->data);
	r->data = NULL;
	r->len = 0;
	for (size_t i = 0; i < r->n_names; i++)
		free(r->names[i]);
	free(r->names);
	r->names = NULL;
	r->n_names = 0;
}

static void on_zk_log(const char *message)
{
	size_t n = strlen(message);

	while (n && message[n - 1] == '\n')
		n--;
	log_debug("registry: zookeeper client: %.*s", (int)n, message);
}

int zk_open(struct zk *z, const clientid_t *id)
{
	struct zk_event *stale;

	pthread_mutex_lock(&z->lock);
	z->session_state = 0;
	z->session_changed = false;
	/* What a closed handle queued is the mirror's business no more: the
	 * new session lists everything.
	 */
	stale = z->events;
	z->events = NULL;
	z->events_tail = &z->events;
	z->n_events = 0;
	z->events_lost = false;
	pthread_mutex_unlock(&z->lock);
	while (stale) {
		struct zk_event *next = stale->next;

		free(stale);
		stale = next;
	}
	z->zh = zookeeper_init2(z->hosts, zk_on_watch, (int)z->session_timeout_ms, id, z, 0,
				on_zk_log);
	return z->zh ? 0 : -errno;
}

void zk_attach(struct zk *z, const clientid_t *id, uint64_t posted_ms)
{
	zhandle_t *own = z->zh;

	z->zh = NULL;
	z->resuming = z->session_id = id->client_id;
	z->resume_ms = posted_ms;
	/* The client library connects in its own thread from here on: the
	 * server takes the session over as soon as it reads the request,
	 * whatever this thread does meanwhile.
	 */
	if (zk_open(z, id)) {
		log_warn("registry: %s: cannot resume session 0x%" PRIx64 ": %s; opening a new one, "
			 "ignoring",
			 z->source, (uint64_t)z->resuming, strerror(errno));
		z->resuming = 0;
	}
	if (!own)
		return;
	zookeeper_close(own);
	/* Until its threads were joined, the old handle may have recorded a
	 * session event of its own: the state is the new handle's again (its
	 * later events follow in order).
	 */
	pthread_mutex_lock(&z->lock);
	z->session_state = z->zh ? zoo_state(z->zh) : 0;
	z->session_changed = true;
	pthread_cond_broadcast(&z->cond);
	pthread_mutex_unlock(&z->lock);
}

int zk_wait(struct zk *z, struct zk_req *reqs, size_t n)
{
	bool all = false, stopping, resume;
	uint64_t posted_ms = 0;
	clientid_t id = { 0 };

	pthread_mutex_lock(&z->lock);
	for (;;) {
		all = true;
		for (size_t i = 0; i < n && all; i++)
			all = reqs[i].done;
		stopping = z->stopping;
		/* A passed session's timeout runs: take it now, not once
		 * these calls (a listing of the tree, maybe) are done.
		 */
		resume = z->resume_posted && z->resume_id.client_id;
		if (all || stopping || resume)
			break;
		pthread_cond_wait(&z->cond, &z->lock);
	}
	if (!all && !stopping && resume) {
		id = z->resume_id;
		posted_ms = z->resume_posted_ms;
		z->resume_posted = false;
	}
	pthread_mutex_unlock(&z->lock);
	if (all)
		return 0;
	/* Ending the handle ends the calls still pending: after it returns, no
	 * callback touches @reqs any more.
	 */
	if (stopping) {
		zk_end(z);
		return -ECANCELED;
	}
	zk_attach(z, &id, posted_ms);
	return -EAGAIN;
}

/* Wait for @r alone, whether or not the backend is stopping, up to @ms.
 * Whether it is done.
 */
static bool wait_one(struct zk *z, struct zk_req *r, uint32_t ms)
{
	struct timespec until;
	bool done;

	mono_deadline(&until, ms);
	pthread_mutex_lock(&z->lock);
	while (!r->done && pthread_cond_timedwait(&z->cond, &z->lock, &until) != ETIMEDOUT)
		;
	done = r->done;
	pthread_mutex_unlock(&z->lock);
	return done;
}

/* A TCP address on loopback that refuses every connection: a port of
 * 127.255.255.@last bound and never listened on. While @fd stays open no
 * other socket can listen on it, so nothing ever answers there. 0 or
 * -errno.
 */
static int dead_address(unsigned int last, char *buf, size_t len, int *fd)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(IN_LOOPBACKNET << IN_CLASSA_NSHIFT | 0x00ffff00u | last),
	};
	socklen_t sl = sizeof(sin);
	char ip[INET_ADDRSTRLEN];
	int err;

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd == -1)
		return -errno;
	if (bind(*fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(*fd, (struct sockaddr *)&sin, &sl) == -1) {
		err = -errno;
		close(*fd);
		*fd = -1;
		return err;
	}
	inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u", ip, ntohs(sin.sin_port));
	return 0;
}

static bool is_connected(zhandle_t *zh)
{
	int state = zoo_state(zh);

	return state == ZOO_CONNECTED_STATE || state == ZOO_READONLY_STATE;
}

/* Let go of the session of z->zh for a successor (zk_end()). The client
 * library has no call for it, but two of its calls make one (read in the
 * 3.8.0 source, zookeeper-client-c/src/zookeeper.c and addrvec.c):
 *
 * - zoo_set_servers() → update_addrs(): when the address of the server the
 *   handle is connected to is not in the new list, it closes the socket
 *   and sets the state to ZOO_NOTCONNECTED_STATE, there and then, in the
 *   caller's thread. The list we give is one address that refuses every
 *   connection, so the I/O thread can never connect, and so never present
 *   the session to a server again: once the successor holds the session,
 *   nothing can take it back. addrvec_contains() compares addresses
 *   without their ports, so that address must be an IP no server has:
 *   one high in 127/8, and the next one down in the unlikely case the state
 *   says the connection stayed.
 * - zookeeper_close() sends ZOO_CLOSE_OP (which ends the session and
 *   deletes its ephemeral znodes) only when is_connected() — CONNECTED or
 *   READONLY — once the client's threads are joined; otherwise it just
 *   frees the handle.
 *
 * Before that, one round trip: the server then counts the session's
 * timeout from now (every request touches the session), so the successor
 * has all of it to attach, and the calls in flight before it are answered
 * first (a session's requests are answered in order).
 *
 * One race is left inside the client: had the connection just broken, the
 * I/O thread may already have picked the old server (zoo_cycle_next_server)
 * and be about to connect to it, out of the new list's reach. Then the
 * close may end the session after all; the successor finds it expired and
 * registers anew (docs/lifecycle.md). It is never worse than closing.
 */
static void let_go(struct zk *z)
{
	struct zk_req ping = { .z = z };
	clientid_t id = *zoo_client_id(z->zh);
	int fds[ZK_DEAD_TRIES], n_fds = 0, err = 0;
	const char *why = "still connected";
	char dead[32];

	z->passed.client_id = 0;
	if (!id.client_id)
		goto close;	/* never connected: no session, nothing registered */
	if (zoo_state(z->zh) == ZOO_CONNECTED_STATE) {
		zk_req_issued(&ping, zoo_aexists(z->zh, "/", 0, zk_stat_done, &ping));
		if (!wait_one(z, &ping, ZK_LET_GO_PING_MS) || ping.rc != ZOK)
			log_debug("registry: %s: no answer before letting go of session 0x%" PRIx64
				  "; passing it anyway", z->source, (uint64_t)id.client_id);
	}
	for (unsigned int i = 0; i < ZK_DEAD_TRIES; i++) {
		err = dead_address(254 - i, dead, sizeof(dead), &fds[n_fds]);
		if (err)
			break;
		n_fds++;
		err = zoo_set_servers(z->zh, dead);
		if (err != ZOK) {
			why = zerror(err);
			err = -EIO;
			break;
		}
		if (!is_connected(z->zh))
			break;
	}
	if (!err && !is_connected(z->zh)) {
		zookeeper_close(z->zh);	/* not connected: no ZOO_CLOSE_OP */
		z->zh = NULL;
		z->passed = id;
		log_info("registry: %s: let go of session 0x%" PRIx64 " for the successor",
			 z->source, (uint64_t)id.client_id);
	} else {
		log_warn("registry: %s: cannot let go of session 0x%" PRIx64 " (%s): closing it, "
			 "the successor registers anew, ignoring",
			 z->source, (uint64_t)id.client_id, err < 0 && err != -EIO ? strerror(-err) : why);
	}
	/* The handle is gone (or closing): the addresses may be reused. */
	for (int i = 0; i < n_fds; i++)
		close(fds[i]);
close:
	if (z->zh)
		zookeeper_close(z->zh);
	z->zh = NULL;
}

void zk_end(struct zk *z)
{
	if (!z->zh)
		return;
	if (sync_flag(&z->lock, &z->passing)) {
		let_go(z);
		return;
	}
	zookeeper_close(z->zh);
	z->zh = NULL;
}

int zk_abs(const struct zk *z, const char *rel, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", z->root, rel);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int zk_errno(int rc)
{
	switch (rc) {
	case ZOK:
		return 0;
	case ZNONODE:
		return -ENOENT;
	case ZNODEEXISTS:
		return -EEXIST;
	case ZNOTEMPTY:
		return -ENOTEMPTY;
	case ZCLOSING:
		return -ECANCELED;
	case ZSESSIONEXPIRED:
		return -ESTALE;
	case ZNOAUTH:
	case ZAUTHFAILED:
		return -EACCES;
	case ZSYSTEMERROR:
		return -ENOMEM;
	default:
		return -ECONNRESET;	/* connection loss, timeouts: the session will say */
	}
}
