// SPDX-License-Identifier: GPL-2.0-only
/* The file registry (see file.h): loads the file once at start on the
 * caller's thread, then runs a thread of its own that waits on inotify
 * (registry/file_watch.c says when the file may have changed) and reloads
 * it (registry/file_load.c), as the network backends run their watches.
 * The thread owns the watch and what is in force; the statistics are
 * shared with the admin API under a lock. See docs/registry-format.md.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "registry/file.h"
#include "registry/file_load.h"
#include "registry/file_watch.h"
#include "registry/registry.h"
#include "registry/yaml.h"

/* After a reload the sink refused half-way (out of memory, its queue full),
 * how long until the file is sent again as a full listing, whether or not
 * it changed: the model is out of step with the file until then.
 */
#define RETRY_MS 1000

/* The thread reloads at nice 19 (see background() below). A reload that
 * took longer than STARVED_MS of wall time and more than STARVED_RATIO times
 * its CPU time waited for a core most of it: the agent's cores are all busy,
 * and a nice-19 thread gets little of its process' share of them. The thread
 * then reloads at nice 0 for STARVED_HOLD_MS, so the catalogue never lags the
 * file by much more than a reload's wait on a busy node.
 */
#define STARVED_MS 2000
#define STARVED_RATIO 10
#define STARVED_HOLD_MS 60000

/* Room for "'PATH': reason". */
#define LOAD_ERR_MAX (PATH_MAX + REG_PARSE_ERR_MAX)

struct reg_file {
	char *path;
	char *source;		/* the sink's source name ("file:" + path) */
	struct reg_sink *sink;	/* borrowed */
	/* The thread's once it runs (before: the starting caller's). */
	struct file_watch *watch;
	struct file_applied applied;
	char applied_error[sizeof(((struct reg_file_stats *)0)->last_error)];
	/* Stopping: the flag for the load in progress, the eventfd for poll(). */
	atomic_bool stop;
	int stop_fd;
	pthread_t thread;
	bool running;
	/* The thread's: whether it runs at nice 19, and until when it stays at
	 * nice 0 after a starved reload (CLOCK_MONOTONIC ms).
	 */
	bool niced, nice_refused, unnice_refused;
	uint64_t normal_until_ms;
	pthread_mutex_t lock;
	struct reg_file_stats stats;	/* under lock */
};

static void set_error(char *dst, size_t cap, const char *msg)
{
	size_t n = strnlen(msg, cap - 1);

	memcpy(dst, msg, n);
	dst[n] = '\0';
}

/* Load the file and account for it. Returns what file_load() does; the
 * whole-file reason, "'PATH': reason", in @err.
 */
static int load(struct reg_file *r, char *err, size_t errlen)
{
	struct file_load_report rep = { 0 };
	char why[REG_PARSE_ERR_MAX];
	int ret;

	ret = file_load(&r->applied, r->path, r->source, r->sink, &r->stop, &rep, why,
			sizeof(why));
	if (ret == -ECANCELED)
		return ret;
	if (ret < 0)
		snprintf(err, errlen, "'%s': %s", r->path, why);
	if (ret == 1) {
		set_error(r->applied_error, sizeof(r->applied_error), rep.first_rejection);
		log_info("registry: loaded '%s': %zu objects, %zu rejected, %zu changes sent",
			 r->path, rep.n_objs, rep.n_rejected, rep.n_changes);
	}
	pthread_mutex_lock(&r->lock);
	if (ret < 0) {
		r->stats.load_errors++;
		set_error(r->stats.last_error, sizeof(r->stats.last_error), err);
	} else {
		/* Unchanged content: the message of the load in force again. */
		memcpy(r->stats.last_error, r->applied_error, sizeof(r->applied_error));
	}
	if (ret == 1) {
		r->stats.loads++;
		r->stats.objects_rejected += rep.n_rejected;
		r->stats.docs_parsed += rep.n_docs_parsed;
		r->stats.docs_reused += rep.n_docs_reused;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static uint64_t clock_ms(clockid_t c)
{
	struct timespec t;

	clock_gettime(c, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Run the calling thread (the reload thread) at nice 19, or back at 0. A
 * reload is background work: among the agent's own threads a proxy worker
 * that wakes takes the core from a nice-19 parse at once.
 *
 * Not SCHED_IDLE, which it was: the idle class is idle only among the
 * threads of the agent's own scheduling group (its cgroup, or its session's
 * autogroup). The kernel's wake-up placement counts a CPU that runs nothing
 * but idle-class threads as idle, so it sent other processes' wake-ups (the
 * application's server, its client) to the CPU the parse ran on, even with
 * the other CPU idle; the wake-up preemption check then compares the two
 * groups, not the threads, found the agent's group entitled to its slice,
 * and the woken task waited for the next tick (4 ms at 250 Hz). Measured in
 * docs/benchmarks.md ("Why a request waited while a vCPU was idle"): a busy
 * idle-class thread gave another process' request/response ten times as
 * many round trips over 1 ms as the same thread at nice 0 or 19. Nice is
 * honoured within the agent's group and leaves placement alone.
 *
 * Only this thread (on Linux a nice value is a thread's own, and
 * setpriority() with a thread id sets just that one): the loop, which
 * applies the changes and answers the admin API and the CNI plugin, stays
 * at nice 0. Refusals are logged once and change nothing else.
 */
static void background(struct reg_file *r, bool niced)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);

	if (r->niced == niced || (niced && r->nice_refused) || (!niced && r->unnice_refused))
		return;
	if (!setpriority(PRIO_PROCESS, (id_t)tid, niced ? 19 : 0)) {
		r->niced = niced;
		return;
	}
	if (niced) {
		r->nice_refused = true;
		log_warn("registry: '%s': cannot reload at nice 19: %s; reloads compete with the "
			 "proxy for the CPU, ignoring",
			 r->path, strerror(errno));
	} else {
		/* Back to nice 0 needs CAP_SYS_NICE (or RLIMIT_NICE): stay at 19. */
		r->unnice_refused = true;
		log_warn("registry: '%s': reloads run at nice 19 and cannot be given more: %s, "
			 "ignoring",
			 r->path, strerror(errno));
	}
}

/* Reload, and give the heap back after a parse (the sink does the same after
 * a listing, for the same reason): the parsed tree of a big file, freed
 * between the objects that stay, is mostly whole free pages that glibc
 * would otherwise keep in this thread's arena.
 */
static void reload(struct reg_file *r)
{
	uint64_t wall = clock_ms(CLOCK_MONOTONIC), cpu = clock_ms(CLOCK_THREAD_CPUTIME_ID);
	char err[LOAD_ERR_MAX];
	int ret;

	background(r, wall >= r->normal_until_ms);
	ret = load(r, err, sizeof(err));
	cpu = clock_ms(CLOCK_THREAD_CPUTIME_ID) - cpu;
	wall = clock_ms(CLOCK_MONOTONIC) - wall;
	if (r->niced && wall > STARVED_MS && wall > STARVED_RATIO * cpu) {
		log_warn("registry: '%s': a reload waited %llu ms for a core (%llu ms of CPU); "
			 "reloading at nice 0 for %u s",
			 r->path, (unsigned long long)(wall - cpu), (unsigned long long)cpu,
			 STARVED_HOLD_MS / 1000);
		r->normal_until_ms = clock_ms(CLOCK_MONOTONIC) + STARVED_HOLD_MS;
		background(r, false);
	}

	if (ret == -ECANCELED)
		return;
	if (ret < 0 && r->applied.in_sync)
		log_warn("registry: cannot reload %s; the previous content stays in force, "
			 "ignoring",
			 err);
	else if (ret < 0)
		log_warn("registry: cannot reload %s; the catalogue may hold part of it until "
			 "it is sent again in %u ms, ignoring",
			 err, RETRY_MS);
	if (ret == 1)
		(void)malloc_trim(0);
}

static void *run(void *arg)
{
	struct reg_file *r = arg;
	struct pollfd p[2] = {
		{ .fd = file_watch_fd(r->watch), .events = POLLIN },
		{ .fd = r->stop_fd, .events = POLLIN },
	};

	while (!atomic_load(&r->stop)) {
		/* The model is out of step after a refused send: retry on a timer. */
		int n = poll(p, 2, r->applied.in_sync ? -1 : RETRY_MS), ret;

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_err("registry: '%s': poll: %s; no longer watching", r->path,
				strerror(errno));
			break;
		}
		if (atomic_load(&r->stop))
			break;
		if (n > 0) {
			/* A burst of events (an editor's save, a ConfigMap swap)
			 * is drained whole: one reload for all of it.
			 */
			ret = file_watch_drain(r->watch);
			if (ret < 0)
				log_warn("registry: '%s': read inotify: %s, ignoring", r->path,
					 strerror(-ret));
			if (ret <= 0 && r->applied.in_sync)
				continue;
		}
		reload(r);
	}
	return NULL;
}

struct reg_file *reg_file_new(const char *source, const char *path, struct reg_sink *sink)
{
	char err[LOAD_ERR_MAX];
	struct reg_file *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->stop_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	atomic_init(&r->stop, false);
	r->sink = sink;
	r->path = strdup(path);
	r->source = strdup(source);
	if (!r->path || !r->source) {
		ret = -ENOMEM;
		goto out_free;
	}
	r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->stop_fd == -1) {
		ret = log_errno(-errno, "registry: '%s': eventfd", path);
		goto out_free;
	}
	/* Watch before the first read, so a change during it is not missed:
	 * the thread finds its events waiting.
	 */
	r->watch = file_watch_new(path);
	if (!r->watch) {
		ret = log_errno(-errno, "registry: cannot watch '%s'", path);
		goto out_free;
	}
	ret = load(r, err, sizeof(err));
	if (ret < 0) {
		log_err("registry: cannot load %s", err);
		goto out_free;
	}
	/* Complete as soon as loaded: a file has nothing more to list. */
	(void)reg_sink_health(sink, source, REG_HEALTH_SYNCED, "");
	ret = -pthread_create(&r->thread, NULL, run, r);
	if (ret) {
		log_errno(ret, "registry: '%s': start its thread", path);
		goto out_free;
	}
	r->running = true;
	pthread_setname_np(r->thread, "weft-file");
	return r;
out_free:
	reg_file_free(r);
	errno = -ret;
	return NULL;
}

void reg_file_free(struct reg_file *r)
{
	uint64_t one = 1;

	if (!r)
		return;
	if (r->running) {
		atomic_store(&r->stop, true);
		/* Cannot fail short of a counter overflow, and one write is enough. */
		(void)!write(r->stop_fd, &one, sizeof(one));
		pthread_join(r->thread, NULL);
	}
	file_watch_free(r->watch);
	file_applied_done(&r->applied);
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	pthread_mutex_destroy(&r->lock);
	free(r->source);
	free(r->path);
	free(r);
}

void reg_file_stats(struct reg_file *r, struct reg_file_stats *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
}

const char *reg_file_path(const struct reg_file *r)
{
	return r->path;
}

/* ---- the backend: --registry file:PATH ---- */

static int file_start(const char *source, const char *arg, const struct reg_opts *opts,
		      struct reg_sink *sink, void **state)
{
	struct reg_file *r;

	(void)opts;
	r = reg_file_new(source, arg, sink);
	if (!r)
		return -errno;
	*state = r;
	return 0;
}

static void file_stop(void *state, bool deregister)
{
	(void)deregister;
	reg_file_free(state);
}

const struct reg_backend_ops reg_file_ops = {
	.scheme = "file",
	.start = file_start,
	.stop = file_stop,
};

bool reg_file_backend_stats(const struct reg_backend_ops *ops, void *state,
			    struct reg_file_stats *out)
{
	if (ops != &reg_file_ops || !state)
		return false;
	reg_file_stats(state, out);
	return true;
}
