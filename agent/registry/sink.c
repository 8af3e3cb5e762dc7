// SPDX-License-Identifier: GPL-2.0-only
/* The registry sink: a mutex-protected queue filled by backend threads and
 * drained on the agent's loop (eventfd wake-up), where events become model
 * calls. One drain applies a whole batch and publishes once, so a relist of
 * ten thousand objects builds one catalogue, not ten thousand.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "log.h"
#include "loop.h"
#include "model/model.h"
#include "registry/registry.h"

#define SINK_SOURCES_MAX 16
#define SINK_QUEUE_MAX 1000000	/* events; a backend beyond it is told -ENOBUFS */
/* While a source lists (a resync in progress), publishing (the changed
 * callback: a catalogue build and its hand-over) takes at most 1 / (1 +
 * SINK_PACE_FACTOR) of the loop: after a publish that took d, the next
 * waits until d * SINK_PACE_FACTOR has passed, and at least
 * SINK_PACE_MIN_US: a build is O(services) and so is each worker's bind of
 * it, and hundreds of them during the first listing of a big cluster cost
 * more than decoding the listing. A listing of 10,000 objects drained in
 * hundreds of small batches then costs a few builds, and a change still
 * shows within SINK_PACE_MIN_US while the listing goes on; a watch event
 * outside a listing is published at once.
 */
#define SINK_PACE_FACTOR 3
#define SINK_PACE_MIN_US 100000
/* ... unless this many changes are waiting: a worker binds a publish in
 * about a microsecond of CPU per Service it changed, and a bind holds up
 * the worker's requests (bench/registry.c measures it).
 */
#define SINK_PUBLISH_MAX_CHANGES 512

const uint64_t reg_lat_bounds_us[REG_LAT_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 1000000, UINT64_MAX,
};

enum ev_op { EV_UPSERT, EV_DELETE, EV_KEEP, EV_BEGIN, EV_END, EV_HEALTH, EV_REJECTED };

struct event {
	struct event *next;
	enum ev_op op;
	char source[128];
	struct obj *obj;		/* EV_UPSERT */
	struct obj_key key;		/* EV_DELETE, EV_KEEP */
	bool kinds[OBJ_POD + 1];	/* EV_BEGIN */
	enum reg_health health;		/* EV_HEALTH */
	char msg[256];
	uint64_t received_us;
};

/* A relist in progress: the keys listed so far, sorted at the end. Each is
 * packed in @text as its kind + 1 in one byte, the namespace, NUL, the name,
 * NUL (about 20 bytes where a struct obj_key takes 324), @keys holding where
 * each starts.
 */
struct resync {
	bool active;
	bool kinds[OBJ_POD + 1];
	char *text;
	size_t len, cap_text;
	uint32_t *keys;
	size_t n, cap;
};

/* The longest packed key: kind, namespace, name and their NULs. */
#define PACKED_KEY_MAX (1 + OBJ_NS_MAX + OBJ_NAME_MAX)

struct source_state {
	struct reg_source_status st;
	struct resync rs;
};

struct reg_sink {
	struct loop *loop;
	struct model *model;
	reg_sink_changed_fn changed;
	void *ctx;
	int efd;
	pthread_mutex_t lock;
	struct event *head, **tail;	/* under lock */
	size_t queued;			/* under lock */
	bool closed;			/* under lock */
	struct source_state sources[SINK_SOURCES_MAX];	/* loop thread only */
	size_t n_sources;
	struct reg_latency lat;
	bool first_sync;		/* a source synced for the first time in this batch */
	/* Pacing: a publish is due (pending) at next_publish_us at the earliest;
	 * pending_us holds when each change it will carry was received.
	 */
	bool pending;
	uint64_t next_publish_us;
	uint64_t *pending_us;
	size_t n_pending, cap_pending;
	struct loop_timer pace;
	/* A listing ended: once it is published, hand the heap it left free back
	 * to the system (maybe_trim()).
	 */
	bool trim_due;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void event_free(struct event *e)
{
	obj_free(e->obj);
	free(e);
}

static int push(struct reg_sink *s, struct event *e)
{
	uint64_t one = 1;
	bool wake = false;
	int err = 0;

	e->received_us = now_us();
	pthread_mutex_lock(&s->lock);
	if (s->closed)
		err = -EPIPE;
	else if (s->queued >= SINK_QUEUE_MAX)
		err = -ENOBUFS;
	if (!err) {
		/* A drain takes the whole queue after clearing the eventfd: only
		 * the event that finds the queue empty needs to wake the loop
		 * (a listing pushes thousands; a write and a wake-up each cost
		 * more than the push itself).
		 */
		wake = !s->head;
		*s->tail = e;
		s->tail = &e->next;
		s->queued++;
	}
	pthread_mutex_unlock(&s->lock);
	if (err) {
		event_free(e);
		return err;
	}
	/* Only fails when the counter would overflow: a wake-up is pending anyway. */
	if (wake)
		(void)!write(s->efd, &one, sizeof(one));
	return 0;
}

static struct event *event_new(enum ev_op op, const char *source)
{
	struct event *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->op = op;
	snprintf(e->source, sizeof(e->source), "%s", source);
	return e;
}

int reg_sink_upsert(struct reg_sink *s, const char *source, struct obj *obj)
{
	struct event *e = event_new(EV_UPSERT, source);

	if (!e) {
		obj_free(obj);
		return -ENOMEM;
	}
	e->obj = obj;
	return push(s, e);
}

static int push_key(struct reg_sink *s, enum ev_op op, const char *source, enum obj_kind kind,
		    const char *ns, const char *name)
{
	struct event *e = event_new(op, source);

	if (!e)
		return -ENOMEM;
	e->key.kind = kind;
	snprintf(e->key.ns, sizeof(e->key.ns), "%s", ns);
	snprintf(e->key.name, sizeof(e->key.name), "%s", name);
	return push(s, e);
}

int reg_sink_delete(struct reg_sink *s, const char *source, enum obj_kind kind, const char *ns,
		    const char *name)
{
	return push_key(s, EV_DELETE, source, kind, ns, name);
}

int reg_sink_keep(struct reg_sink *s, const char *source, enum obj_kind kind, const char *ns,
		  const char *name)
{
	return push_key(s, EV_KEEP, source, kind, ns, name);
}

int reg_sink_resync_begin(struct reg_sink *s, const char *source, const enum obj_kind *kinds,
			  size_t n_kinds)
{
	struct event *e = event_new(EV_BEGIN, source);

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < n_kinds; i++)
		if ((unsigned int)kinds[i] <= OBJ_POD)
			e->kinds[kinds[i]] = true;
	return push(s, e);
}

int reg_sink_resync_end(struct reg_sink *s, const char *source)
{
	struct event *e = event_new(EV_END, source);

	return e ? push(s, e) : -ENOMEM;
}

int reg_sink_health(struct reg_sink *s, const char *source, enum reg_health h, const char *msg)
{
	struct event *e = event_new(EV_HEALTH, source);

	if (!e)
		return -ENOMEM;
	e->health = h;
	snprintf(e->msg, sizeof(e->msg), "%s", msg ? msg : "");
	return push(s, e);
}

int reg_sink_rejected(struct reg_sink *s, const char *source)
{
	struct event *e = event_new(EV_REJECTED, source);

	return e ? push(s, e) : -ENOMEM;
}

static struct source_state *source_get(struct reg_sink *s, const char *name)
{
	for (size_t i = 0; i < s->n_sources; i++)
		if (!strcmp(s->sources[i].st.source, name))
			return &s->sources[i];
	if (s->n_sources == SINK_SOURCES_MAX)
		return NULL;
	struct source_state *ss = &s->sources[s->n_sources++];

	snprintf(ss->st.source, sizeof(ss->st.source), "%s", name);
	return ss;
}

/* @k packed into @buf (PACKED_KEY_MAX bytes); returns its length. */
static size_t key_pack(const struct obj_key *k, char *buf)
{
	size_t ns = strlen(k->ns) + 1, name = strlen(k->name) + 1;

	buf[0] = (char)(k->kind + 1);
	memcpy(buf + 1, k->ns, ns);
	memcpy(buf + 1 + ns, k->name, name);
	return 1 + ns + name;
}

static int packed_cmp(const char *a, const char *b)
{
	int c;

	if (a[0] != b[0])
		return (unsigned char)a[0] < (unsigned char)b[0] ? -1 : 1;
	c = strcmp(a + 1, b + 1);
	if (c)
		return c;
	return strcmp(a + 2 + strlen(a + 1), b + 2 + strlen(b + 1));
}

static int offset_cmp(const void *a, const void *b, void *text)
{
	return packed_cmp((const char *)text + *(const uint32_t *)a,
			  (const char *)text + *(const uint32_t *)b);
}

static bool listed(const struct obj *o, void *ctx)
{
	const struct resync *rs = ctx;
	char want[PACKED_KEY_MAX];
	size_t lo = 0, hi = rs->n;

	key_pack(&o->key, want);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = packed_cmp(rs->text + rs->keys[mid], want);

		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int resync_note(struct resync *rs, const struct obj_key *k)
{
	if (!rs->active || !rs->kinds[k->kind])
		return 0;
	if (rs->len + PACKED_KEY_MAX > UINT32_MAX ||
	    array_reserve(&rs->text, &rs->cap_text, rs->len + PACKED_KEY_MAX, 1, 1 << 16) ||
	    array_reserve(&rs->keys, &rs->cap, rs->n, sizeof(*rs->keys), 1024))
		return -ENOMEM;
	rs->keys[rs->n++] = (uint32_t)rs->len;
	rs->len += key_pack(k, rs->text + rs->len);
	return 0;
}

/* A listing's keys are not worth keeping until the next one. */
static void resync_free(struct resync *rs)
{
	free(rs->keys);
	free(rs->text);
	rs->keys = NULL;
	rs->text = NULL;
	rs->n = rs->cap = rs->len = rs->cap_text = 0;
}

/* Apply one event; returns true if the model changed. */
static bool apply(struct reg_sink *s, struct event *e)
{
	struct source_state *ss = source_get(s, e->source);
	bool changed = false;
	int err = 0, n;

	if (!ss) {
		log_warn("registry: too many sources, dropping an event of '%s', ignoring", e->source);
		return false;
	}
	switch (e->op) {
	case EV_UPSERT: {
		struct obj_key key = e->obj->key;

		err = resync_note(&ss->rs, &key);
		if (!err) {
			err = model_upsert(s->model, e->source, e->obj);
			e->obj = NULL;	/* the model owns it, even on failure */
		}
		changed = !err;
		ss->st.events++;
		break;
	}
	case EV_DELETE:
		err = model_remove(s->model, e->source, e->key.kind, e->key.ns, e->key.name);
		changed = !err;
		ss->st.events++;
		break;
	case EV_KEEP:
		err = resync_note(&ss->rs, &e->key);
		break;
	case EV_BEGIN:
		ss->rs.active = true;
		ss->rs.n = ss->rs.len = 0;
		memcpy(ss->rs.kinds, e->kinds, sizeof(ss->rs.kinds));
		break;
	case EV_END:
		if (!ss->rs.active)
			break;
		if (ss->rs.n)
			qsort_r(ss->rs.keys, ss->rs.n, sizeof(*ss->rs.keys), offset_cmp,
				ss->rs.text);
		for (int k = 0; k <= OBJ_POD; k++) {
			if (!ss->rs.kinds[k])
				continue;
			n = model_retain(s->model, e->source, (enum obj_kind)k, listed, &ss->rs);
			if (n > 0)
				changed = true;
		}
		ss->rs.active = false;
		ss->st.resyncs++;
		resync_free(&ss->rs);
		s->trim_due = true;
		break;
	case EV_HEALTH:
		if (ss->st.health != e->health || strcmp(ss->st.message, e->msg))
			log_info("registry: %s is %s%s%s", e->source,
				 e->health == REG_HEALTH_SYNCED ? "synced"
				 : e->health == REG_HEALTH_STALE ? "stale (last known state in force)"
								  : "starting",
				 e->msg[0] ? ": " : "", e->msg);
		ss->st.health = e->health;
		snprintf(ss->st.message, sizeof(ss->st.message), "%s", e->msg);
		if (e->health == REG_HEALTH_SYNCED && !ss->st.synced_once) {
			ss->st.synced_once = true;
			s->first_sync = true;
		}
		break;
	case EV_REJECTED:
		ss->st.rejected++;
		break;
	}
	if (err)
		log_warn("registry: apply an event of '%s': %s, ignoring", e->source, strerror(-err));
	if (changed)
		ss->st.last_change_ms = now_us() / 1000;
	return changed;
}

static void record_latency(struct reg_sink *s, uint64_t received_us, uint64_t done_us)
{
	uint64_t d = done_us > received_us ? done_us - received_us : 0;
	size_t b = 0;

	while (b < REG_LAT_BUCKETS - 1 && d > reg_lat_bounds_us[b])
		b++;
	s->lat.count[b]++;
	s->lat.sum_us += d;
	s->lat.n++;
}

/* Whether a source is in the middle of a listing. */
static bool listing(const struct reg_sink *s)
{
	for (size_t i = 0; i < s->n_sources; i++)
		if (s->sources[i].rs.active)
			return true;
	return false;
}

/* After a listing is applied and published, give glibc's free heap back to
 * the system. A listing leaves much of it free between the objects that
 * stay: the list pages' JSON trees, the queued events (about 750 bytes
 * each, thousands at a time), the listing's keys and the catalogues built
 * while it ran. glibc returns only the top of a heap by itself; malloc_trim
 * also releases the free pages inside it (10,000 Services: about 5 MiB, a
 * few ms once per listing). Nothing is trimmed while a listing or a publish
 * is still under way.
 */
static void maybe_trim(struct reg_sink *s)
{
	uint64_t t0;

	if (!s->trim_due || s->pending || listing(s))
		return;
	s->trim_due = false;
	t0 = now_us();
	(void)malloc_trim(0);
	log_debug("registry: heap trimmed after a listing in %llu us",
		  (unsigned long long)(now_us() - t0));
}

/* Call the changed callback for what is pending, timing it for pacing and
 * the latency histogram.
 */
static void publish(struct reg_sink *s)
{
	uint64_t start = now_us(), done;

	if (loop_timer_armed(&s->pace))
		loop_timer_del(s->loop, &s->pace);
	s->pending = false;
	if (s->changed)
		s->changed(s->ctx);
	s->first_sync = false;
	done = now_us();
	s->next_publish_us = done + (done - start) * SINK_PACE_FACTOR;
	if (s->next_publish_us < done + SINK_PACE_MIN_US)
		s->next_publish_us = done + SINK_PACE_MIN_US;
	for (size_t i = 0; i < s->n_pending; i++)
		record_latency(s, s->pending_us[i], done);
	s->n_pending = 0;
	maybe_trim(s);
}

static void on_pace(struct loop_timer *t, uint64_t now_ms)
{
	struct reg_sink *s = (struct reg_sink *)((char *)t - offsetof(struct reg_sink, pace));

	(void)now_ms;
	if (s->pending)
		publish(s);
}

/* Publish now, or when pacing allows (@force: now). */
static void publish_paced(struct reg_sink *s, bool force)
{
	uint64_t now = now_us(), wait_ms;

	s->pending = true;
	if (force || now >= s->next_publish_us) {
		publish(s);
		return;
	}
	if (loop_timer_armed(&s->pace))
		return;
	wait_ms = (s->next_publish_us - now + 999) / 1000;
	/* Cannot arm: publish now rather than sit on the change. */
	if (loop_timer_set(s->loop, &s->pace, wait_ms, on_pace))
		publish(s);
}

/* Note when the changes of @e, about to be published, were received;
 * without room the histogram misses them (never the publish).
 */
static void note_pending(struct reg_sink *s, const struct event *e)
{
	if (e->op != EV_UPSERT && e->op != EV_DELETE)
		return;
	if (array_reserve(&s->pending_us, &s->cap_pending, s->n_pending, sizeof(*s->pending_us),
			  64))
		return;
	s->pending_us[s->n_pending++] = e->received_us;
}

static void drain(struct reg_sink *s, bool force)
{
	struct event *batch, *e, *next;
	uint64_t v;
	bool changed = false;

	(void)!read(s->efd, &v, sizeof(v));
	pthread_mutex_lock(&s->lock);
	batch = s->head;
	s->head = NULL;
	s->tail = &s->head;
	s->queued = 0;
	pthread_mutex_unlock(&s->lock);
	for (e = batch; e; e = next) {
		next = e->next;
		if (apply(s, e)) {
			changed = true;
			note_pending(s, e);
		}
		event_free(e);
		/* A batch (a listing drains thousands of objects at once) is
		 * published in parts: a worker's bind costs in proportion to
		 * the Services a publish changed.
		 */
		if (changed && s->n_pending >= SINK_PUBLISH_MAX_CHANGES) {
			publish(s);
			changed = false;
		}
	}
	/* Publish while a relist is half done would be fine (nothing is removed
	 * before its end), and keeps changes flowing during long listings.
	 */
	if (changed || s->first_sync)
		publish_paced(s, force || !listing(s));
	else if (force && s->pending)
		publish(s);
	maybe_trim(s);
}

void reg_sink_drain(struct reg_sink *s)
{
	drain(s, true);
}

static void on_events(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	drain(ctx, false);
}

struct reg_sink *reg_sink_new(struct loop *loop, struct model *m, reg_sink_changed_fn changed,
			      void *ctx)
{
	struct reg_sink *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->loop = loop;
	s->model = m;
	s->changed = changed;
	s->ctx = ctx;
	s->tail = &s->head;
	pthread_mutex_init(&s->lock, NULL);
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd == -1) {
		err = -errno;
		goto out_free;
	}
	err = loop_add_fd(loop, s->efd, EPOLLIN, on_events, s);
	if (err)
		goto out_close;
	return s;
out_close:
	close(s->efd);
out_free:
	pthread_mutex_destroy(&s->lock);
	free(s);
	errno = -err;
	return NULL;
}

void reg_sink_free(struct reg_sink *s)
{
	struct event *e, *next;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->closed = true;
	e = s->head;
	s->head = NULL;
	pthread_mutex_unlock(&s->lock);
	for (; e; e = next) {
		next = e->next;
		event_free(e);
	}
	if (loop_timer_armed(&s->pace))
		loop_timer_del(s->loop, &s->pace);
	free(s->pending_us);
	(void)loop_del_fd(s->loop, s->efd);
	close(s->efd);
	for (size_t i = 0; i < s->n_sources; i++)
		resync_free(&s->sources[i].rs);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

size_t reg_sink_status(const struct reg_sink *s, struct reg_source_status *out, size_t max)
{
	for (size_t i = 0; i < s->n_sources && i < max; i++)
		out[i] = s->sources[i].st;
	return s->n_sources;
}

const struct reg_latency *reg_sink_latency(const struct reg_sink *s)
{
	return &s->lat;
}
