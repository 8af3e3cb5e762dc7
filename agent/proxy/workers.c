// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of proxy/workers.h: threads, their loops and proxies, the
 * isolation handshake (an eventfd per worker and one mutex + condition
 * variable, touched only by control-plane operations), pod captures, and the
 * merged view of per-worker service state for the admin API.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "model/catalogue.h"
#include "proxy/broker.h"
#include "proxy/conn.h"
#include "proxy/counters.h"
#include "proxy/sandbox.h"
#include "proxy/state.h"
#include "proxy/workers.h"
#include "sync.h"

struct worker {
	struct workers *ws;
	unsigned int idx;
	struct loop *loop;
	struct proxy *px;
	int efd;		/* the main thread's knock */
	/* The catalogue published for this worker and not yet taken (a
	 * reference), or NULL: the worker swaps it in at its next knock.
	 */
	_Atomic(struct catalogue *) next_cat;
	/* pub_seq as read before this worker's last bind: it holds no snapshot
	 * published before that one (seq < bound_seq) any more.
	 */
	_Atomic uint64_t bound_seq;
	uint64_t changes;	/* catalogue_changes() of the snapshot bound last */
	struct workers_publish_stats pub;	/* written by the worker only (ctr_*()) */
	pthread_t thread;
	bool started;
	uint64_t seen;		/* the last isolation round this worker joined */
};

struct workers {
	unsigned int n;
	bool threaded;
	bool sandbox;
	struct broker *broker;	/* with the sandbox: makes the workers' sockets */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t round;		/* isolation rounds, under mu */
	bool hold;		/* workers must stay parked, under mu */
	bool stopping;		/* under mu */
	unsigned int parked;	/* under mu */
	/* The number of the snapshot published last, stored once every worker
	 * can take it; retired: the snapshots the main thread holds a
	 * reference on until every worker has bound a later one, so that no
	 * worker drops the last reference of one and frees it (thousands of
	 * services) between two of its events. Main thread.
	 */
	_Atomic uint64_t pub_seq;
	struct retired {
		struct catalogue *cat;
		uint64_t seq;		/* its number */
	} *retired;
	size_t n_retired, cap_retired;
	/* workers_on_bound(): the last worker to bind a snapshot writes
	 * bound_efd, watched on bound_loop, if bound_wanted (armed by each
	 * publish, taken by that worker so that one write tells it).
	 */
	int bound_efd;
	struct loop *bound_loop;
	workers_bound_fn bound_fn;
	void *bound_ctx;
	atomic_bool bound_wanted;
	unsigned int ready;	/* workers through their start (sandbox entered), under mu */
	int start_err;		/* the first worker's failure to start, under mu */
	/* workers_service_at()'s view, until release (or workers_view_done()
	 * when kept): worker 0's own state (one worker) or merged[i], a copy
	 * made for the view.
	 */
	const struct svc_state **view;
	struct svc_state **merged;
	size_t n_merged;
	bool view_kept;		/* workers_view_keep(): release leaves the view */
	/* A kept view's snapshot (a reference): the ports no worker has used
	 * yet are made from it on demand, after the release.
	 */
	struct catalogue *view_cat;
	struct worker w[];
};

unsigned int workers_default(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > WORKERS_MAX ? WORKERS_MAX : (unsigned int)n;
}

/* Bind the catalogue published last, if this worker has not yet. Runs on
 * the worker, between two events: the old snapshot is dropped here, so it
 * is freed once every worker has passed this point (and the agent moved on).
 */
static uint64_t clock_us(clockid_t id)
{
	struct timespec ts = { 0 };	/* a failed read counts as 0 */

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Bind @c on @w, timing it: the time its other events wait, and the CPU
 * the bind itself took (the rest is the thread waiting for a core).
 */
static void bind_timed(struct worker *w, struct catalogue *c)
{
	uint64_t t0 = clock_us(CLOCK_MONOTONIC), c0 = clock_us(CLOCK_THREAD_CPUTIME_ID), d, cpu;
	uint64_t changes = catalogue_changes(c);

	proxy_set_catalogue(w->px, c);
	d = clock_us(CLOCK_MONOTONIC) - t0;
	cpu = clock_us(CLOCK_THREAD_CPUTIME_ID) - c0;
	/* The snapshots this bind skipped count too: it looked at their
	 * changes. A snapshot from another builder (the empty one) counts 0.
	 */
	if (changes > w->changes)
		ctr_max(&w->pub.max_changes, changes - w->changes);
	w->changes = changes;
	/* Read by the main thread while this worker runs (workers_publish_stats()). */
	ctr_inc(&w->pub.binds);
	ctr_add(&w->pub.total_us, d);
	ctr_max(&w->pub.max_us, d);
	ctr_max(&w->pub.max_cpu_us, cpu);
}

/* Whether every worker has bound snapshot @seq or a later one. Sequentially
 * consistent with the stores of bound_seq: of two workers finishing at once,
 * at least one sees the other's.
 */
static bool all_bound(struct workers *ws, uint64_t seq)
{
	for (unsigned int i = 0; i < ws->n; i++)
		if (atomic_load(&ws->w[i].bound_seq) < seq)
			return false;
	return true;
}

static void take_catalogue(struct worker *w)
{
	struct workers *ws = w->ws;
	/* Read before the swap: the snapshot taken is this one or a later one. */
	uint64_t seq = atomic_load_explicit(&ws->pub_seq, memory_order_acquire), one = 1;
	struct catalogue *c = atomic_exchange_explicit(&w->next_cat, NULL, memory_order_acquire);

	if (c) {
		bind_timed(w, c);
		catalogue_unref(c);
	} else if (atomic_load_explicit(&w->bound_seq, memory_order_relaxed) >= seq) {
		return;
	}
	/* Nothing to take: snapshot seq was put here before pub_seq named it,
	 * so this worker took and bound it at an earlier knock, when it read
	 * an older pub_seq.
	 */
	atomic_store(&w->bound_seq, seq);
	if (all_bound(ws, atomic_load(&ws->pub_seq)) &&
	    atomic_exchange(&ws->bound_wanted, false))
		(void)!write(ws->bound_efd, &one, sizeof(one));
}

static void on_knock(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct worker *w = ctx;
	struct workers *ws = w->ws;
	uint64_t v;

	(void)events;
	(void)!read(fd, &v, sizeof(v));
	take_catalogue(w);
	pthread_mutex_lock(&ws->mu);
	if (ws->stopping) {
		loop_stop(loop);
	} else {
		/* A release followed at once by a new isolation may find this
		 * worker still parked: it joins the new round from here.
		 */
		while (ws->hold && !ws->stopping) {
			if (w->seen != ws->round) {
				w->seen = ws->round;
				ws->parked++;
				pthread_cond_broadcast(&ws->cv);
			}
			pthread_cond_wait(&ws->cv, &ws->mu);
		}
	}
	pthread_mutex_unlock(&ws->mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct workers *ws = w->ws;
	char name[16];
	int err = 0;

	/* Named for ps, top and the sandbox test: "weft-worker-N". */
	snprintf(name, sizeof(name), "weft-worker-%u", w->idx);
	pthread_setname_np(pthread_self(), name);
	/* One way, before the first byte from a pod: no pod is captured until
	 * workers_new() has seen every worker through this.
	 */
	if (ws->sandbox)
		err = sandbox_enter_worker();
	pthread_mutex_lock(&ws->mu);
	ws->ready++;
	if (err && !ws->start_err)
		ws->start_err = err;
	pthread_cond_broadcast(&ws->cv);
	pthread_mutex_unlock(&ws->mu);
	if (err)
		return NULL;
	err = loop_run(w->loop);
	if (err)
		log_err("proxy: worker %u: loop failed: %s", w->idx, strerror(-err));
	return NULL;
}

static void knock(struct worker *w)
{
	uint64_t one = 1;

	(void)!write(w->efd, &one, sizeof(one));
}

struct workers *workers_new(struct loop *main_loop, unsigned int n, const struct proxy_opts *opts)
{
	struct workers *ws;
	struct proxy_opts po = *opts;
	int err;

	if (n < 1 || n > WORKERS_MAX) {
		errno = EINVAL;
		return NULL;
	}
	ws = calloc(1, sizeof(*ws) + n * sizeof(ws->w[0]));
	if (!ws)
		return NULL;
	ws->n = n;
	ws->bound_efd = -1;
	/* The sandbox is per thread: the main thread keeps its capabilities,
	 * so with it even one worker gets a thread of its own.
	 */
	ws->sandbox = opts->sandbox;
	ws->threaded = n > 1 || ws->sandbox;
	/* Even with one worker: a successor with more workers joins the group
	 * of the listeners it adopts (a hand-over, docs/lifecycle.md).
	 */
	po.reuseport = true;
	pthread_mutex_init(&ws->mu, NULL);
	pthread_cond_init(&ws->cv, NULL);
	if (ws->sandbox) {
		struct broker_opts bo = {
			.home_netns_fd = opts->home_netns_fd,
			.fastpath = opts->fastpath,
			.mark = opts->mark,
			.inbound_mark = opts->inbound_mark,
		};

		ws->broker = broker_new(&bo, n);
		if (!ws->broker)
			goto fail;
	}
	for (unsigned int i = 0; i < n; i++) {
		struct worker *w = &ws->w[i];

		w->ws = ws;
		w->idx = i;
		w->efd = -1;
		w->loop = ws->threaded ? loop_new() : main_loop;
		if (!w->loop)
			goto fail;
		/* The fast path's counter slots, split evenly: a worker
		 * allocates from its own range without a lock.
		 */
		if (po.fastpath) {
			po.fp_count = po.fastpath->slots / n;
			po.fp_first = i * po.fp_count;
		}
		w->px = proxy_new(w->loop, &po);
		if (!w->px)
			goto fail;
		if (ws->broker) {
			err = proxy_set_broker(w->px, broker_chan_fd(ws->broker, i));
			if (err) {
				errno = -err;
				goto fail;
			}
		}
		if (!ws->threaded)
			continue;
		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->efd == -1)
			goto fail;
		err = loop_add_fd(w->loop, w->efd, EPOLLIN, on_knock, w);
		if (err) {
			errno = -err;
			goto fail;
		}
	}
	/* Threads last, so a failure above has nothing to join. Signals are
	 * blocked by the caller already: they reach the main thread's signalfd.
	 */
	for (unsigned int i = 0; ws->threaded && i < n; i++) {
		err = pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]);
		if (err) {
			errno = err;
			goto fail;
		}
		ws->w[i].started = true;
	}
	if (ws->threaded) {
		pthread_mutex_lock(&ws->mu);
		while (ws->ready < n)
			pthread_cond_wait(&ws->cv, &ws->mu);
		err = ws->start_err;
		pthread_mutex_unlock(&ws->mu);
		if (err) {
			errno = -err;
			goto fail;
		}
		log_info("proxy: %u worker%s%s", n,
			 n > 1 ? "s, one listener each per pod (SO_REUSEPORT)" : "",
			 ws->sandbox ? ", sandboxed: no capability, seccomp" : "");
	}
	return ws;
fail:
	err = errno;
	workers_free(ws);
	errno = err;
	return NULL;
}

/* Drop the retired snapshots every worker has moved past (@all: every one,
 * the workers being stopped).
 */
static void retired_release(struct workers *ws, bool all)
{
	uint64_t min = UINT64_MAX;
	size_t w = 0;

	for (unsigned int i = 0; i < ws->n; i++) {
		uint64_t b = atomic_load_explicit(&ws->w[i].bound_seq, memory_order_acquire);

		if (b < min)
			min = b;
	}
	for (size_t i = 0; i < ws->n_retired; i++) {
		if (all || ws->retired[i].seq < min)
			catalogue_unref(ws->retired[i].cat);
		else
			ws->retired[w++] = ws->retired[i];
	}
	ws->n_retired = w;
}

/* Hold a reference on @c until every worker has bound a later snapshot.
 * Without room, nothing is held: a worker may then free it, as before.
 */
static void retired_hold(struct workers *ws, struct catalogue *c, uint64_t seq)
{
	if (ws->n_retired == ws->cap_retired) {
		size_t cap = ws->cap_retired ? 2 * ws->cap_retired : 8;
		struct retired *r = realloc(ws->retired, cap * sizeof(*r));

		if (!r)
			return;
		ws->retired = r;
		ws->cap_retired = cap;
	}
	ws->retired[ws->n_retired++] = (struct retired){ catalogue_ref(c), seq };
}

static void merged_free(struct workers *ws)
{
	for (size_t i = 0; ws->merged && i < ws->n_merged; i++)
		state_blank_free(ws->merged[i]);
	free(ws->view);
	ws->view = NULL;
	free(ws->merged);
	ws->merged = NULL;
	ws->n_merged = 0;
	catalogue_unref(ws->view_cat);
	ws->view_cat = NULL;
}

void workers_free(struct workers *ws)
{
	if (!ws)
		return;
	sync_raise(&ws->mu, &ws->cv, &ws->stopping);
	for (unsigned int i = 0; i < ws->n; i++) {
		if (ws->w[i].started) {
			knock(&ws->w[i]);
			pthread_join(ws->w[i].thread, NULL);
		}
	}
	merged_free(ws);
	retired_release(ws, true);
	free(ws->retired);
	if (ws->bound_efd != -1) {
		(void)loop_del_fd(ws->bound_loop, ws->bound_efd);
		close(ws->bound_efd);
	}
	for (unsigned int i = 0; i < ws->n; i++) {
		struct worker *w = &ws->w[i];

		catalogue_unref(atomic_exchange(&w->next_cat, NULL));
		proxy_free(w->px);
		if (w->efd != -1) {
			loop_forget_fd(w->loop, w->efd);
			close(w->efd);
		}
		if (ws->threaded)
			loop_free(w->loop);
	}
	broker_free(ws->broker);
	pthread_cond_destroy(&ws->cv);
	pthread_mutex_destroy(&ws->mu);
	free(ws);
}

unsigned int workers_count(const struct workers *ws)
{
	return ws->n;
}

bool workers_sandboxed(const struct workers *ws)
{
	return ws->sandbox;
}

struct proxy *workers_proxy(const struct workers *ws, unsigned int i)
{
	return i < ws->n ? ws->w[i].px : NULL;
}

void workers_isolate(struct workers *ws)
{
	/* A kept view would be read as this round's. */
	assert(!ws->view_kept);
	if (!ws->threaded)
		return;
	pthread_mutex_lock(&ws->mu);
	ws->round++;
	ws->hold = true;
	ws->parked = 0;
	pthread_mutex_unlock(&ws->mu);
	for (unsigned int i = 0; i < ws->n; i++)
		knock(&ws->w[i]);
	pthread_mutex_lock(&ws->mu);
	while (ws->parked < ws->n)
		pthread_cond_wait(&ws->cv, &ws->mu);
	pthread_mutex_unlock(&ws->mu);
}

void workers_release(struct workers *ws)
{
	if (!ws->view_kept)
		merged_free(ws);
	if (!ws->threaded)
		return;
	pthread_mutex_lock(&ws->mu);
	ws->hold = false;
	pthread_cond_broadcast(&ws->cv);
	pthread_mutex_unlock(&ws->mu);
}

void workers_set_catalogue(struct workers *ws, struct catalogue *c)
{
	uint64_t seq;

	if (!ws->threaded) {
		bind_timed(&ws->w[0], c);
		return;
	}
	/* pub_seq moves only once every worker can take @c: a worker that read
	 * seq takes @c or a later one, and holds nothing older after binding.
	 */
	seq = atomic_load_explicit(&ws->pub_seq, memory_order_relaxed) + 1;
	retired_hold(ws, c, seq);
	/* No isolation: each worker swaps the new snapshot in on its own loop
	 * and binds what changed; none waits for another. A snapshot a worker
	 * had not taken yet is replaced, not queued.
	 */
	for (unsigned int i = 0; i < ws->n; i++) {
		struct catalogue *was = atomic_exchange_explicit(
			&ws->w[i].next_cat, catalogue_ref(c), memory_order_acq_rel);

		catalogue_unref(was);
	}
	atomic_store(&ws->pub_seq, seq);
	/* After pub_seq moves, so that no worker finishing an older snapshot
	 * takes it. A worker may finish seq before this: the caller sees it in
	 * workers_binding(), which it reads before waiting for the call; one
	 * that finishes after this finds it set (both sequentially consistent).
	 */
	if (ws->bound_fn)
		atomic_store(&ws->bound_wanted, true);
	for (unsigned int i = 0; i < ws->n; i++)
		knock(&ws->w[i]);
	/* The workers have what is new: now the old may be freed. */
	retired_release(ws, false);
}

bool workers_binding(struct workers *ws)
{
	return ws->threaded && !all_bound(ws, atomic_load(&ws->pub_seq));
}

static void on_bound(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct workers *ws = ctx;
	uint64_t v;

	(void)loop;
	(void)events;
	(void)!read(fd, &v, sizeof(v));
	ws->bound_fn(ws->bound_ctx);
}

int workers_on_bound(struct workers *ws, struct loop *loop, workers_bound_fn fn, void *ctx)
{
	int err;

	/* Without worker threads a publish is bound before it returns. */
	if (!ws->threaded || ws->bound_efd != -1)
		return ws->bound_efd != -1 ? -EBUSY : 0;
	ws->bound_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ws->bound_efd == -1)
		return -errno;
	err = loop_add_fd(loop, ws->bound_efd, EPOLLIN, on_bound, ws);
	if (err) {
		close(ws->bound_efd);
		ws->bound_efd = -1;
		return err;
	}
	ws->bound_loop = loop;
	ws->bound_ctx = ctx;
	ws->bound_fn = fn;
	return 0;
}

void workers_publish_stats_reset(struct workers *ws)
{
	for (unsigned int i = 0; i < ws->n; i++)
		ws->w[i].pub = (struct workers_publish_stats){ 0 };
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void workers_publish_stats(const struct workers *ws, struct workers_publish_stats *out)
{
	*out = (struct workers_publish_stats){ 0 };
	/* Each field read whole while its worker may be binding: no parking. */
	for (unsigned int i = 0; i < ws->n; i++) {
		const struct workers_publish_stats *p = &ws->w[i].pub;

		out->binds += ctr_read(&p->binds);
		out->total_us += ctr_read(&p->total_us);
		out->max_us = max_u64(out->max_us, ctr_read(&p->max_us));
		out->max_cpu_us = max_u64(out->max_cpu_us, ctr_read(&p->max_cpu_us));
		out->max_changes = max_u64(out->max_changes, ctr_read(&p->max_changes));
	}
}

void workers_set_mtls(struct workers *ws, struct mtls_table *t)
{
	workers_isolate(ws);
	for (unsigned int i = 0; i < ws->n; i++)
		proxy_set_mtls(ws->w[i].px, t);
	workers_release(ws);
}

/* ---------------------------------------------------------------- captures */

struct px_capture {
	uint64_t key;		/* the pod's name to the broker */
	uint64_t netns_cookie;
	unsigned int n;		/* shares opened so far */
	unsigned int next_adopt;	/* the share the next passed connection joins */
	struct px_pod share[];	/* share[i] is served by worker i */
};

static void capture_close_locked(struct px_capture *cap)
{
	for (unsigned int i = 0; i < cap->n; i++) {
		px_pod_close(&cap->share[i]);
		px_pod_unlink(&cap->share[i]);
		cap->share[i].px->n_pods--;
	}
}

/* Keys name a capture to the broker: never reused, so a reply that arrives
 * after its pod left finds no pool and its sockets are closed.
 */
static uint64_t capture_keys;

struct px_capture *workers_capture_open(struct workers *ws, const struct px_pod_info *info)
{
	struct px_capture *cap = calloc(1, sizeof(*cap) + ws->n * sizeof(cap->share[0]));
	int err = 0;

	if (!cap)
		return NULL;
	cap->key = ++capture_keys;
	if (ws->broker) {
		err = broker_pod_add(ws->broker, cap->key, info->netns_fd);
		if (err) {
			free(cap);
			errno = -err;
			return NULL;
		}
	}
	workers_isolate(ws);
	for (unsigned int i = 0; !err && i < ws->n; i++) {
		struct px_pod *pp = &cap->share[i];

		pp->px = ws->w[i].px;
		pp->id = info->id;
		pp->netns_fd = info->netns_fd;
		pp->lfd4 = pp->lfd6 = -1;
		pp->ilfd4 = pp->ilfd6 = -1;
		pp->key = cap->key;
		px_pod_link(pp);
		cap->n++;
		pp->px->n_pods++;	/* the pods sharing --max-conns: px_pod_limit() */
		err = px_pod_listen(pp, i == 0 ? &cap->netns_cookie : NULL);
		if (!err && info->inbound)
			err = px_pod_listen_inbound(pp);
	}
	if (err)
		capture_close_locked(cap);
	workers_release(ws);
	if (err) {
		log_debug("proxy: capture %s/%s pod=%u: %s", info->ns, info->name, info->id,
			  strerror(-err));
		if (ws->broker)
			broker_pod_del(ws->broker, cap->key);
		free(cap);
		errno = -err;
		return NULL;
	}
	return cap;
}

void workers_capture_close(struct workers *ws, struct px_capture *cap)
{
	if (!cap)
		return;
	workers_isolate(ws);
	capture_close_locked(cap);
	workers_release(ws);
	if (ws->broker)
		broker_pod_del(ws->broker, cap->key);
	free(cap);
}

uint64_t workers_capture_netns_cookie(const struct px_capture *cap)
{
	return cap->netns_cookie;
}

bool workers_capture_has_listener(const struct px_capture *cap, int family)
{
	return (family == AF_INET ? cap->share[0].lfd4 : cap->share[0].lfd6) != -1;
}

static bool fd_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

bool workers_capture_listening(const struct px_capture *cap)
{
	for (unsigned int i = 0; i < cap->n; i++) {
		const struct px_pod *pp = &cap->share[i];

		if ((pp->lfd4 != -1 && !fd_listening(pp->lfd4)) ||
		    (pp->lfd6 != -1 && !fd_listening(pp->lfd6)) ||
		    (pp->ilfd4 != -1 && !fd_listening(pp->ilfd4)) ||
		    (pp->ilfd6 != -1 && !fd_listening(pp->ilfd6)))
			return false;
	}
	return true;
}

void workers_capture_counts(const struct px_capture *cap, uint64_t *active, uint64_t *total)
{
	*active = *total = 0;
	for (unsigned int i = 0; i < cap->n; i++) {
		*active += cap->share[i].conns_active;
		*total += cap->share[i].conns_total;
	}
}

void workers_capture_load(const struct px_capture *cap, struct px_pod_load *out)
{
	*out = (struct px_pod_load){ 0 };
	for (unsigned int i = 0; i < cap->n; i++) {
		const struct px_pod *pp = &cap->share[i];

		out->conns_out += pp->conns_out;
		out->limit += px_pod_limit(pp->px);
		out->refused += pp->refused;
		out->local_errors += pp->local_errors;
	}
}

int workers_capture_conns(const struct px_capture *cap, proxy_conn_fn fn, void *ctx)
{
	int err;

	for (unsigned int i = 0; i < cap->n; i++) {
		err = px_pod_conns(&cap->share[i], fn, ctx);
		if (err)
			return err;
	}
	return 0;
}

void workers_capture_listeners(const struct px_capture *cap, workers_listener_fn fn, void *ctx)
{
	for (unsigned int i = 0; i < cap->n; i++) {
		const struct px_pod *pp = &cap->share[i];
		const int fds[] = { pp->lfd4, pp->lfd6, pp->ilfd4, pp->ilfd6 };

		for (size_t k = 0; k < sizeof(fds) / sizeof(fds[0]); k++)
			if (fds[k] != -1)
				fn(fds[k], pp->netns_fd, ctx);
	}
}

void workers_capture_stop_accepting(struct workers *ws, struct px_capture *cap)
{
	workers_isolate(ws);
	for (unsigned int i = 0; i < cap->n; i++)
		px_pod_drain(&cap->share[i]);
	workers_release(ws);
}

struct pass_batch *workers_pass_begin(struct workers *ws, pass_send_fn send, void *ctx)
{
	struct pass_batch *b = pass_batch_new(send, ctx);

	if (b)
		workers_isolate(ws);
	return b;
}

int workers_capture_pass(struct px_capture *cap, struct pass_batch *b)
{
	int err = 0;

	for (unsigned int i = 0; !err && i < cap->n; i++)
		err = px_pod_pass(&cap->share[i], b);
	return err;
}

long workers_pass_end(struct workers *ws, struct pass_batch *b)
{
	long n = pass_batch_finish(b);

	workers_release(ws);
	return n;
}

int workers_capture_netns_id(const struct px_capture *cap, uint64_t *dev, uint64_t *ino)
{
	struct stat st;

	if (fstat(cap->share[0].netns_fd, &st) == -1)
		return -errno;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	return 0;
}

int workers_capture_adopt(struct px_capture *cap, const struct px_pass_rec *r, int *fds)
{
	struct px_pod *pp = &cap->share[cap->next_adopt++ % cap->n];

	return px_pod_adopt(pp, r, fds);
}

void workers_capture_inbound_fds(const struct px_capture *cap, int *lfd4, int *lfd6)
{
	*lfd4 = cap->share[0].ilfd4;
	*lfd6 = cap->share[0].ilfd6;
}

/* The entry of @port in @out[0..*@n), sorted by port, inserted if missing
 * and there is room; NULL when @out is full. *@total counts every port.
 */
static struct px_inbound_port *inbound_slot(struct px_inbound_port *out, size_t cap, size_t *n,
					    size_t *total, uint16_t port)
{
	size_t i = 0;

	while (i < *n && out[i].port < port)
		i++;
	if (i < *n && out[i].port == port)
		return &out[i];
	(*total)++;
	if (*n == cap)
		return NULL;
	memmove(&out[i + 1], &out[i], (*n - i) * sizeof(out[0]));
	out[i] = (struct px_inbound_port){ .port = port };
	(*n)++;
	return &out[i];
}

size_t workers_capture_inbound(const struct px_capture *cap, struct px_inbound_port *out, size_t n)
{
	size_t used = 0, total = 0;

	for (unsigned int w = 0; w < cap->n; w++) {
		const struct px_pod *pp = &cap->share[w];

		for (const struct in_port *ip = pp->in_ports; ip; ip = ip->next) {
			struct px_inbound_port *o = inbound_slot(out, n, &used, &total,
								 ip->ctr.port);

			if (!o)
				continue;
			o->conns_total += ip->ctr.conns_total;
			o->conns_active += ip->ctr.conns_active;
			o->bytes_in += ip->ctr.bytes_in;
			o->bytes_out += ip->ctr.bytes_out;
			o->requests += ip->ctr.requests;
			o->connect_errors += ip->ctr.connect_errors;
			for (size_t k = 0; k < PROXY_STATUS_CLASSES; k++)
				o->responses[k] += ip->ctr.responses[k];
		}
		/* Live connections' bytes are added to their port when they close. */
		for (const struct conn *c = pp->conns; c; c = c->next) {
			struct px_inbound_port *o;

			if (!c->in)
				continue;
			o = inbound_slot(out, n, &used, &total, c->in->ctr.port);
			if (!o)
				continue;
			o->bytes_in += c->c2u.bytes + fp_bytes(c, 0);
			o->bytes_out += c->u2c.bytes + fp_bytes(c, 1);
		}
	}
	return total;
}

/* ---------------------------------------------------------------- merged reads */

static void add_u64s(uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] += src[i];
}

#define ADD_STRUCT(dst, src)                                                             \
	do {                                                                             \
		_Static_assert(sizeof(*(dst)) % sizeof(uint64_t) == 0, "u64 fields only"); \
		add_u64s((uint64_t *)(dst), (const uint64_t *)(src),                     \
			 sizeof(*(dst)) / sizeof(uint64_t));                             \
	} while (0)

void workers_stats(const struct workers *ws, struct proxy_stats *out)
{
	memset(out, 0, sizeof(*out));
	/* No parking: counters_add() reads each field whole (counter_get()). */
	for (unsigned int i = 0; i < ws->n; i++)
		counters_add(&counters_proxy, out, proxy_stats(ws->w[i].px));
}

static void lat_add(struct lat *dst, const struct lat *src)
{
	ADD_STRUCT(&dst->total, &src->total);
	ADD_STRUCT(&dst->win[0], &src->win[0]);
	ADD_STRUCT(&dst->win[1], &src->win[1]);
}

static void ep_merge(struct ep_state *dst, const struct ep_state *src)
{
	counters_add(&counters_ep, &dst->ctr, &src->ctr);
	/* Live state: open connections sum, outlier state takes the worst. */
	dst->active += src->active;
	dst->conns += src->conns;
	dst->n_idle += src->n_idle;
	if (src->ol.consecutive > dst->ol.consecutive)
		dst->ol.consecutive = src->ol.consecutive;
	if (src->ol.ejections > dst->ol.ejections)
		dst->ol.ejections = src->ol.ejections;
	if (src->ol.ejected && (!dst->ol.ejected || src->ol.until_ms > dst->ol.until_ms)) {
		dst->ol.ejected = true;
		dst->ol.until_ms = src->ol.until_ms;
	}
}

static struct svc_state *svc_merge(const struct workers *ws, size_t i)
{
	const struct svc_state *s0 = NULL;
	struct svc_state *m;
	unsigned int first;

	/* States are created on first use: the first worker holding one is
	 * the base; a port no worker used yet is shown from the catalogue.
	 */
	for (first = 0; first < ws->n && !s0; first++)
		s0 = proxy_service_at(ws->w[first].px, i);
	if (!s0)
		return proxy_service_blank(ws->w[0].px, i);
	m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	*m = *s0;
	m->next = NULL;
	m->all = NULL;
	m->by_pod = NULL;	/* worker 0's: not merged, not to be freed twice */
	m->n_by_pod = m->cap_by_pod = 0;
	m->eps = calloc(s0->n_eps ? s0->n_eps : 1, sizeof(*m->eps));
	if (!m->eps) {
		free(m);
		return NULL;
	}
	for (size_t j = 0; j < s0->n_eps; j++) {
		m->eps[j] = malloc(sizeof(*m->eps[j]));
		if (!m->eps[j]) {
			m->n_eps = j;
			goto fail;
		}
		*m->eps[j] = *s0->eps[j];
		m->eps[j]->svc = m;
		m->eps[j]->next = NULL;
		m->eps[j]->idle = NULL;
	}
	for (unsigned int k = first; k < ws->n; k++) {
		const struct svc_state *s = proxy_service_at(ws->w[k].px, i);

		/* Every worker binds the same snapshot in the same order; a
		 * worker whose bind failed (ENOMEM) is left out.
		 */
		if (!s || s->n_eps != s0->n_eps || !addr_equal(&s->vip, &s0->vip))
			continue;
		counters_add(&counters_svc, &m->ctr, &s->ctr);
		m->conns += s->conns;
		m->pending += s->pending;
		m->requests += s->requests;
		m->clients += s->clients;
		lat_add(&m->lat_connect, &s->lat_connect);
		lat_add(&m->lat_request, &s->lat_request);
		for (size_t j = 0; j < s->n_eps; j++)
			if (addr_equal(&s->eps[j]->addr, &m->eps[j]->addr))
				ep_merge(m->eps[j], s->eps[j]);
	}
	return m;
fail:
	for (size_t j = 0; j < m->n_eps; j++)
		free(m->eps[j]);
	free(m->eps);
	free(m);
	return NULL;
}

/* The view's tables, one slot per service port of the bound snapshot. */
static int view_alloc(struct workers *ws)
{
	size_t n = proxy_n_service_ports(ws->w[0].px);

	if (ws->view)
		return 0;
	ws->view = calloc(n ? n : 1, sizeof(*ws->view));
	ws->merged = calloc(n ? n : 1, sizeof(*ws->merged));
	if (!ws->view || !ws->merged) {
		merged_free(ws);
		return -ENOMEM;
	}
	ws->n_merged = n;
	return 0;
}

/* A kept view's port @i that no worker had used: its blank state, made
 * from the snapshot the view holds (the catalogue is immutable, the
 * defaults never change after workers_new()): no worker is read.
 */
static const struct svc_state *view_blank(struct workers *ws, size_t i)
{
	const struct catalogue *c = ws->view_cat;

	if (!c || i >= catalogue_n_svc_ports(c))
		return NULL;
	ws->merged[i] = state_blank(catalogue_svc_port_at(c, i), &ws->w[0].px->defaults);
	ws->view[i] = ws->merged[i];
	return ws->view[i];
}

const struct svc_state *workers_service_at(struct workers *ws, size_t i)
{
	/* Kept past the release: the workers run, nothing more is merged. */
	if (ws->view_kept) {
		if (!ws->view || i >= ws->n_merged)
			return NULL;
		return ws->view[i] ? ws->view[i] : view_blank(ws, i);
	}
	if (view_alloc(ws))
		return NULL;
	if (i >= ws->n_merged)
		return NULL;
	if (ws->view[i])
		return ws->view[i];
	/* One worker: its own state, no copy. */
	ws->view[i] = ws->threaded ? NULL : proxy_service_at(ws->w[0].px, i);
	if (!ws->view[i])
		ws->view[i] = ws->merged[i] = svc_merge(ws, i);
	return ws->view[i];
}

/* Whether a worker holds state for port @i (a connection used it). A
 * worker that holds none at all is not searched.
 */
static bool any_state(const struct workers *ws, size_t i)
{
	for (unsigned int k = 0; k < ws->n; k++)
		if (ws->w[k].px->st.svcs && proxy_service_at(ws->w[k].px, i))
			return true;
	return false;
}

int workers_view_keep(struct workers *ws)
{
	bool used = false;
	int err = view_alloc(ws);

	/* States are made on first use: with no connection yet, nothing
	 * needs the workers parked but the tables.
	 */
	for (unsigned int k = 0; k < ws->n; k++)
		used = used || ws->w[k].px->st.svcs;
	for (size_t i = 0; !err && used && i < ws->n_merged; i++) {
		if (ws->view[i])
			continue;
		if (!ws->threaded) {
			ws->view[i] = proxy_service_at(ws->w[0].px, i);
		} else if (any_state(ws, i)) {
			ws->view[i] = ws->merged[i] = svc_merge(ws, i);
			if (!ws->view[i])
				err = -ENOMEM;
		}
	}
	if (err) {
		merged_free(ws);
		return err;
	}
	ws->view_cat = catalogue_ref(ws->w[0].px->cat);
	ws->view_kept = true;
	return 0;
}

void workers_view_done(struct workers *ws)
{
	ws->view_kept = false;
	merged_free(ws);
}
