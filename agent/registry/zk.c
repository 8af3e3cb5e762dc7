// SPDX-License-Identifier: GPL-2.0-only
/* The ZooKeeper registry backend (registry/zk.h): --registry
 * zookeeper:HOST:PORT[,HOST:PORT...][/ROOT]. One worker thread owns the
 * session: it lists the tree under ROOT into the sink with watches armed,
 * follows the watch events, lists everything again after a reconnect, opens
 * a new session when the old one expired, and keeps this node's ephemeral
 * EndpointSlices. The library reconnects across the hosts by itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "opt.h"
#include "registry/zk.h"
#include "registry/zk_register.h"
#include "registry/zk_session.h"
#include "registry/zk_tree.h"
#include "sync.h"

#define ZK_DEFAULT_ROOT "/weft/registry"
#define ZK_RETRY_MS 1000	/* after a failed listing or registration */

/* ---- the worker ---- */

static void health(struct zk *z, enum reg_health h, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void health(struct zk *z, enum reg_health h, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)reg_sink_health(z->sink, z->source, h, msg);
}

static void free_events(struct zk_event *ev)
{
	while (ev) {
		struct zk_event *next = ev->next;

		free(ev);
		ev = next;
	}
}

static void close_session(struct zk *z)
{
	if (z->zh)
		zookeeper_close(z->zh);
	z->zh = NULL;
	zk_tree_forget(z);
	zk_register_forget(z);
}

/* What woke the worker. */
struct wake {
	int state;
	struct zk_event *events;
	bool lost;
	bool stopping;
	bool held;
	bool resume;			/* resume() was called: resume_id */
	clientid_t resume_id;
	uint64_t resume_ms;		/* when */
};

/* Wait for a session event, a watch event, stop, resume(), @timeout_ms,
 * or — when @want_too and not held — new local endpoints to register.
 */
/* zk_wait() attached to the predecessor's session in the middle of a call
 * (-EAGAIN): what was listed or registered on our own session no longer
 * stands; list and register again on the resumed one.
 */
static void forget_own_session(struct zk *z, bool *synced, bool *need_sync)
{
	zk_tree_forget(z);
	zk_register_forget(z);
	*synced = false;
	*need_sync = true;
}

static void wait_for_work(struct zk *z, uint32_t timeout_ms, bool want_too, struct wake *w)
{
	struct timespec until;

	mono_deadline(&until, timeout_ms);
	pthread_mutex_lock(&z->lock);
	while (!z->stopping && !z->session_changed && !z->events && !z->events_lost &&
	       !z->resume_posted && (!want_too || z->held || z->want.gen == z->reg_want.gen)) {
		if (pthread_cond_timedwait(&z->cond, &z->lock, &until) == ETIMEDOUT)
			break;
	}
	w->stopping = z->stopping;
	w->state = z->session_state;
	w->events = z->events;
	w->lost = z->events_lost;
	w->held = z->held;
	w->resume = z->resume_posted;
	w->resume_id = z->resume_id;
	w->resume_ms = z->resume_posted_ms;
	z->resume_posted = false;
	z->session_changed = false;
	z->events = NULL;
	z->events_tail = &z->events;
	z->n_events = 0;
	z->events_lost = false;
	pthread_mutex_unlock(&z->lock);
}

static void *zk_main(void *arg)
{
	struct zk *z = arg;
	bool synced = false, need_sync = true, ever = false, recheck = true, again;
	uint32_t timeout_ms = 3600 * 1000;

	while (true) {
		struct wake w;
		int err = 0;

		if (!z->zh && zk_open(z, NULL)) {
			health(z, ever ? REG_HEALTH_STALE : REG_HEALTH_STARTING,
			       "cannot open a session to %s: %s", z->hosts, strerror(errno));
			timeout_ms = ZK_RETRY_MS;
		}
		wait_for_work(z, timeout_ms, synced && z->registers, &w);
		timeout_ms = 3600 * 1000;
		if (w.stopping) {
			free_events(w.events);
			if (w.resume && w.resume_id.client_id) {
				/* Not taken yet: seen again below. */
				pthread_mutex_lock(&z->lock);
				z->resume_posted = true;
				pthread_mutex_unlock(&z->lock);
			}
			break;
		}
		if (w.resume && w.resume_id.client_id) {
			/* The predecessor's session holds this node's ephemeral
			 * znodes: it replaces ours, which registered nothing (held)
			 * and only watched. Its watches were the predecessor's
			 * connection's: the tree is listed again on it.
			 */
			free_events(w.events);
			zk_tree_forget(z);
			zk_register_forget(z);
			zk_attach(z, &w.resume_id, w.resume_ms);
			synced = false;
			need_sync = true;
			continue;
		}
		if (!z->zh)
			continue;
		if (w.state == ZOO_EXPIRED_SESSION_STATE || w.state == ZOO_AUTH_FAILED_STATE) {
			/* The session and its ephemeral znodes are gone: a new
			 * session lists everything and registers again.
			 */
			if (z->resuming)
				log_warn("registry: %s: the previous agent's session 0x%" PRIx64 " %s; a "
					 "new session registers this node's endpoints again, ignoring",
					 z->source, (uint64_t)z->resuming,
					 w.state == ZOO_EXPIRED_SESSION_STATE ? "has expired"
									      : "failed to authenticate");
			z->resuming = 0;
			health(z, ever ? REG_HEALTH_STALE : REG_HEALTH_STARTING,
			       "session 0x%" PRIx64 " %s, opening a new one", (uint64_t)z->session_id,
			       w.state == ZOO_EXPIRED_SESSION_STATE ? "expired" : "failed to authenticate");
			free_events(w.events);
			close_session(z);
			synced = false;
			need_sync = true;
			continue;
		}
		if (w.state != ZOO_CONNECTED_STATE) {
			if (synced)
				health(z, REG_HEALTH_STALE, "disconnected from %s, reconnecting",
				       z->hosts);
			synced = false;
			need_sync = true;
			free_events(w.events);
			continue;
		}
		if (need_sync || w.lost) {
			/* A full listing covers every queued event. */
			free_events(w.events);
			w.events = NULL;
			z->session_id = zoo_client_id(z->zh)->client_id;
			if (z->resuming && z->session_id == z->resuming)
				log_info("registry: %s: resumed the previous agent's session 0x%" PRIx64
					 " in %" PRIu64 " ms: this node's ephemeral znodes stay",
					 z->source, (uint64_t)z->session_id, mono_ms() - z->resume_ms);
			else if (z->resuming)
				log_warn("registry: %s: asked for session 0x%" PRIx64 ", got 0x%" PRIx64
					 "; this node's endpoints are registered again, ignoring",
					 z->source, (uint64_t)z->resuming, (uint64_t)z->session_id);
			z->resuming = 0;
			err = zk_tree_resync(z);
			if (!err) {
				need_sync = false;
				synced = ever = recheck = true;
				health(z, REG_HEALTH_SYNCED, "watching %s at %s (session 0x%" PRIx64
				       ", timeout %d ms)", z->root[0] ? z->root : "/", z->hosts,
				       (uint64_t)z->session_id, zoo_recv_timeout(z->zh));
			}
		}
		for (struct zk_event *ev = w.events; ev && !err; ev = ev->next)
			err = zk_tree_event(z, ev->type, ev->path);
		free_events(w.events);
		if (err == -ECANCELED)
			break;
		if (err == -EAGAIN) {
			forget_own_session(z, &synced, &need_sync);
			continue;
		}
		if (err) {
			/* Mostly a connection lost mid-way, and the session event
			 * follows; else list everything again shortly.
			 */
			log_debug("registry: %s: %s, listing again", z->source, strerror(-err));
			need_sync = true;
			timeout_ms = ZK_RETRY_MS;
			continue;
		}
		if (!need_sync && z->registers && !w.held) {
			err = zk_register_sync(z, recheck);
			if (err == -ECANCELED)
				break;
			if (err == -EAGAIN) {
				forget_own_session(z, &synced, &need_sync);
				continue;
			}
			/* After a failure, verify every znode on the next try. */
			recheck = err != 0;
			if (err)
				timeout_ms = ZK_RETRY_MS;
		}
	}
	/* Handed over again before resuming the predecessor's session: it
	 * goes on to the next agent as it came. Ours registered nothing (held):
	 * closed (or, stopped inside a call, already let go: it lingers for its
	 * timeout, holding nothing).
	 */
	pthread_mutex_lock(&z->lock);
	again = z->passing && z->resume_posted && z->resume_id.client_id;
	if (again) {
		z->passed = z->resume_id;
		z->resume_posted = false;
	}
	pthread_mutex_unlock(&z->lock);
	if (again && z->zh) {
		zookeeper_close(z->zh);	/* joins the client's threads: not under z->lock */
		z->zh = NULL;
	}
	/* Closed, or let go for a successor (zk_pass()). */
	zk_end(z);
	zk_tree_forget(z);
	zk_register_forget(z);
	return NULL;
}

/* ---- backend ops: the loop thread ---- */

/* "h1:2181,h2:2181/weft/registry" into hosts and root. 0 or -EINVAL (logged). */
static int parse_arg(struct zk *z, const char *arg)
{
	const char *slash = strchr(arg, '/');
	size_t n = slash ? (size_t)(slash - arg) : strlen(arg);
	const char *root = slash ? slash : ZK_DEFAULT_ROOT;
	size_t rn = strlen(root);

	if (!n) {
		log_err("option --registry: '%s': needs HOST:PORT[,HOST:PORT...][/ROOT]", z->source);
		return -EINVAL;
	}
	/* HOST:PORT[,HOST:PORT...]: the client library would only say "invalid
	 * argument", and only once the worker runs.
	 */
	for (const char *h = arg;;) {
		const char *end = memchr(h, ',', (size_t)(arg + n - h));
		size_t hn = end ? (size_t)(end - h) : (size_t)(arg + n - h);
		const char *colon = hn ? memrchr(h, ':', hn) : NULL;
		char port[8] = "";
		uint16_t p16;

		if (colon && (size_t)(h + hn - colon - 1) < sizeof(port))
			memcpy(port, colon + 1, (size_t)(h + hn - colon - 1));
		if (!colon || colon == h || opt_parse_u16(port, &p16)) {
			log_err("option --registry: '%s': '%.*s' is not HOST:PORT", z->source,
				(int)hn, h);
			return -EINVAL;
		}
		if (!end)
			break;
		h = end + 1;
	}
	while (rn && root[rn - 1] == '/')
		rn--;
	if (strstr(root, "//") || rn >= 1024) {
		log_err("option --registry: '%s': '%s' is not a znode path", z->source, root);
		return -EINVAL;
	}
	z->hosts = strndup(arg, n);
	z->root = strndup(root, rn);
	return z->hosts && z->root ? 0 : -ENOMEM;
}

static void zk_free(struct zk *z)
{
	/* Watch events the session delivered after the worker's last look
	 * (zookeeper_close() may deliver one); nothing adds to them now.
	 */
	free_events(z->events);
	reg_local_want_free(&z->want);
	reg_local_want_free(&z->reg_want);
	free(z->hosts);
	free(z->root);
	free(z->source);
	pthread_cond_destroy(&z->cond);
	pthread_mutex_destroy(&z->lock);
	free(z);
}

static void zk_stop(void *state, bool deregister)
{
	struct zk *z = state;

	/* Closing the session deletes its ephemeral znodes: ZooKeeper cannot
	 * leave a session to expire on its own, so @deregister changes nothing
	 * (zk_pass() is how a hand-over keeps them).
	 */
	(void)deregister;
	if (!z)
		return;
	sync_raise(&z->lock, &z->cond, &z->stopping);
	if (z->started)
		pthread_join(z->thread, NULL);
	zk_free(z);
}

/* What a successor needs to resume the session: reg_pass.data. */
#define ZK_PASS_VERSION 1
struct zk_pass_data {
	uint8_t version;
	uint8_t pad[7];
	int64_t client_id;
	char passwd[16];
};
_Static_assert(sizeof(struct zk_pass_data) <= REG_PASS_MAX, "reg_pass too small");
_Static_assert(sizeof(((clientid_t *)0)->passwd) == 16, "clientid_t changed");

static void zk_pass_begin(void *state)
{
	struct zk *z = state;

	pthread_mutex_lock(&z->lock);
	z->passing = true;
	pthread_mutex_unlock(&z->lock);
	sync_raise(&z->lock, &z->cond, &z->stopping);
}

static void zk_pass(void *state, struct reg_pass *out)
{
	struct zk *z = state;
	struct zk_pass_data d = { .version = ZK_PASS_VERSION };

	out->len = 0;
	zk_pass_begin(z);
	if (z->started)
		pthread_join(z->thread, NULL);
	if (z->passed.client_id) {
		d.client_id = z->passed.client_id;
		memcpy(d.passwd, z->passed.passwd, sizeof(d.passwd));
		memcpy(out->data, &d, sizeof(d));
		out->len = sizeof(d);
	}
	zk_free(z);
}

static void zk_hold(void *state)
{
	struct zk *z = state;

	sync_raise(&z->lock, &z->cond, &z->held);
}

static void zk_resume(void *state, const struct reg_pass *p)
{
	struct zk *z = state;
	struct zk_pass_data d = { 0 };

	if (p && p->len == sizeof(d))
		memcpy(&d, p->data, sizeof(d));
	if (p && (p->len != sizeof(d) || d.version != ZK_PASS_VERSION)) {
		/* A later version's: registering anew is always safe. */
		log_warn("registry: %s: the previous agent passed a session this version cannot "
			 "read; registering anew, ignoring",
			 z->source);
		d.client_id = 0;
	}
	pthread_mutex_lock(&z->lock);
	z->held = false;
	z->resume_posted = true;
	z->resume_posted_ms = mono_ms();
	z->resume_id.client_id = d.client_id;
	memcpy(z->resume_id.passwd, d.passwd, sizeof(d.passwd));
	pthread_cond_broadcast(&z->cond);
	pthread_mutex_unlock(&z->lock);
}

static int zk_start(const char *source, const char *arg, const struct reg_opts *opts,
		    struct reg_sink *sink, void **state)
{
	struct zk *z = calloc(1, sizeof(*z));
	int err;

	if (!z)
		return -ENOMEM;
	sync_init_mono(&z->lock, &z->cond);
	z->events_tail = &z->events;
	z->sink = sink;
	z->session_timeout_ms = opts->zk_session_timeout_ms;
	z->source = strdup(source);
	err = z->source ? parse_arg(z, arg) : -ENOMEM;
	if (err) {
		zk_free(z);
		return err == -ENOMEM ? log_errno(err, "registry '%s'", source) : err;
	}
	z->registers = reg_local_registers(source, opts->node_name);
	/* The library's log goes to our debug level; it is chatty at INFO. */
	zoo_set_debug_level(log_get_level() >= LOG_LEVEL_DEBUG ? ZOO_LOG_LEVEL_INFO
							      : ZOO_LOG_LEVEL_ERROR);
	(void)reg_sink_health(sink, source, REG_HEALTH_STARTING, "connecting");
	err = -pthread_create(&z->thread, NULL, zk_main, z);
	if (err) {
		zk_free(z);
		return log_errno(err, "registry '%s': start a thread", source);
	}
	z->started = true;
	log_info("registry: %s: watching '%s' at %s%s", source, z->root[0] ? z->root : "/",
		 z->hosts, z->registers ? ", registering this node's endpoints as ephemeral znodes"
				       : "");
	*state = z;
	return 0;
}

static void zk_register_local(void *state, const struct reg_local_slice *slices, size_t n,
				  bool complete)
{
	struct zk *z = state;

	if (z->registers)
		reg_local_want_post(&z->want, &z->lock, &z->cond, z->source, slices, n,
				    complete);
}

const struct reg_backend_ops reg_zk_ops = {
	.scheme = "zookeeper",
	.start = zk_start,
	.stop = zk_stop,
	.register_local = zk_register_local,
	.pass = zk_pass,
	.pass_begin = zk_pass_begin,
	.hold = zk_hold,
	.resume = zk_resume,
};
