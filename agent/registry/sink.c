// SPDX-License-Identifier: GPL-2.0-only
/* The registry sink: a mutex-protected queue filled by backend threads and
 * drained on the agent's loop (eventfd wake-up), where events become model
 * calls. One drain applies a whole batch and publishes it in a few parts, so
 * a relist of ten thousand objects builds a few dozen catalogues, not ten
 * thousand, and no worker binds more than a part at once (the gate below).
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
#include "fnv.h"
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
/* ... and a part is published only once the workers have bound the one
 * before (reg_sink_set_gate()): a worker takes the newest snapshot when it
 * wakes, so parts published back to back would reach it as one bind of all
 * their changes. The rest of the batch waits, the loop serving everything
 * else meanwhile, until the last worker's bind calls reg_sink_resume(), or
 * this long after the publish: a worker that does not bind within it (stuck
 * in a long event, or starved of a core) must not stop the catalogue, and
 * it then binds two parts at once. A bind takes well under a millisecond of
 * CPU and, on a loaded two-core machine, at worst a few ms of wall time; at
 * 50 ms a stuck worker slows a 20,000-object reload (40 parts) by 2 s.
 */
#define SINK_GATE_WAIT_US 50000

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

/* A key of a relist, found by its hash. */
struct resync_slot {
	uint32_t at;		/* where the key starts in text, + 1; 0: a free slot */
	uint32_t hash;		/* packed_hash() of the key, compared first */
};

/* A relist in progress: the keys listed so far. Each is packed in @text as
 * its kind + 1 in one byte, the namespace, NUL, the name, NUL (about 20
 * bytes where a struct obj_key takes 324), and found through @slots, a set
 * on the packed key's hash: the listing's end asks it about every object
 * of the source, where sorting the keys and a binary search per object
 * took a sixth of the loop's instructions for a 10,000-Service sync.
 */
struct resync {
	bool active;
	bool kinds[OBJ_POD + 1];
	char *text;
	size_t len, cap_text;
	struct resync_slot *slots;	/* open addressing, linear probing, at most half
					 * full; NULL until the first key */
	size_t mask;			/* slots - 1 */
	size_t n;			/* keys in the set */
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
	/* Batches being sent (reg_sink_batch_begin()), under lock: a count,
	 * as two file registries reload on threads of their own and one's
	 * end must not hand the loop the other's half sent.
	 */
	unsigned int batching;
	/* Events taken from the queue, not applied yet: the rest of a batch
	 * waiting for the gate. Loop thread only, as everything below.
	 */
	struct event *held, **held_tail;
	struct source_state sources[SINK_SOURCES_MAX];
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
	size_t n_removed;		/* and objects a listing's end removed */
	struct loop_timer pace;
	/* The gate (reg_sink_set_gate()): busy() says whether the last publish
	 * is still being taken up; due: a publish held back until it is.
	 */
	reg_sink_busy_fn busy;
	void *busy_ctx;
	bool due;
	uint64_t published_us;		/* when the last publish ended; 0: none */
	struct loop_timer gate;
	struct reg_sink_gate_stats gate_stats;
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
		wake = !s->head && !s->batching;
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

void reg_sink_batch_begin(struct reg_sink *s)
{
	pthread_mutex_lock(&s->lock);
	s->batching++;
	pthread_mutex_unlock(&s->lock);
}

void reg_sink_batch_end(struct reg_sink *s)
{
	uint64_t one = 1;
	bool wake;

	pthread_mutex_lock(&s->lock);
	if (s->batching)
		s->batching--;
	wake = !s->batching && s->head != NULL;
	pthread_mutex_unlock(&s->lock);
	if (wake)
		(void)!write(s->efd, &one, sizeof(one));
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

/* The hash of the @len bytes of a packed key, folded for a slot. */
static uint32_t packed_hash(const char *p, size_t len)
{
	return (uint32_t)fnv_fold(fnv1a64(FNV1A64_OFFSET, p, len));
}

static bool packed_equal(const char *a, const char *b)
{
	size_t ns = strlen(a + 1) + 1;

	return a[0] == b[0] && !strcmp(a + 1, b + 1) && !strcmp(a + 1 + ns, b + 1 + ns);
}

/* The slot of packed key @key: its own, or the free one it would take. */
static struct resync_slot *resync_slot(const struct resync *rs, const char *key, uint32_t hash)
{
	size_t i = hash & rs->mask;

	for (; rs->slots[i].at; i = (i + 1) & rs->mask)
		if (rs->slots[i].hash == hash && packed_equal(rs->text + rs->slots[i].at - 1, key))
			break;
	return &rs->slots[i];
}

/* Room for one more key in the set. 0 or -ENOMEM. */
static int resync_reserve(struct resync *rs)
{
	size_t old_size = rs->slots ? rs->mask + 1 : 0, size = old_size ? 2 * old_size : 1024;
	struct resync_slot *old = rs->slots;

	if (2 * (rs->n + 1) <= old_size)
		return 0;
	rs->slots = calloc(size, sizeof(*rs->slots));
	if (!rs->slots) {
		rs->slots = old;
		return -ENOMEM;
	}
	rs->mask = size - 1;
	for (size_t i = 0; i < old_size; i++) {
		size_t j = old[i].hash & rs->mask;

		if (!old[i].at)
			continue;
		while (rs->slots[j].at)
			j = (j + 1) & rs->mask;
		rs->slots[j] = old[i];
	}
	free(old);
	return 0;
}

/* The keep function of a listing's end (@ctx its resync): listed objects stay. */
static bool listed(const struct obj *o, void *ctx)
{
	const struct resync *rs = ctx;
	char want[PACKED_KEY_MAX];
	size_t len = key_pack(&o->key, want);

	return rs->slots && resync_slot(rs, want, packed_hash(want, len))->at;
}

static int resync_note(struct resync *rs, const struct obj_key *k)
{
	struct resync_slot *slot;
	size_t len;
	uint32_t h;

	if (!rs->active || !rs->kinds[k->kind])
		return 0;
	if (rs->len + PACKED_KEY_MAX > UINT32_MAX ||
	    array_reserve(&rs->text, &rs->cap_text, rs->len + PACKED_KEY_MAX, 1, 1 << 16) ||
	    resync_reserve(rs))
		return -ENOMEM;
	len = key_pack(k, rs->text + rs->len);
	h = packed_hash(rs->text + rs->len, len);
	slot = resync_slot(rs, rs->text + rs->len, h);
	if (slot->at)
		return 0;	/* listed twice */
	*slot = (struct resync_slot){ .at = (uint32_t)rs->len + 1, .hash = h };
	rs->len += len;
	rs->n++;
	return 0;
}

/* A listing begins: nothing listed yet. */
static void resync_clear(struct resync *rs)
{
	if (rs->slots)
		memset(rs->slots, 0, (rs->mask + 1) * sizeof(*rs->slots));
	rs->n = rs->len = 0;
}

/* A listing's keys are not worth keeping until the next one. */
static void resync_free(struct resync *rs)
{
	free(rs->slots);
	free(rs->text);
	rs->slots = NULL;
	rs->text = NULL;
	rs->n = rs->mask = rs->len = rs->cap_text = 0;
}

/* Apply one event; returns how many objects of the model it changed, at
 * most @room for a listing's end (its removals, at least 1 room): *@done
 * false when more are left to remove, the event to be applied again.
 */
static size_t apply(struct reg_sink *s, struct event *e, size_t room, bool *done)
{
	struct source_state *ss = source_get(s, e->source);
	bool changed = false;
	size_t removed = 0;
	int err = 0, n;

	*done = true;
	if (!ss) {
		log_warn("registry: too many sources, dropping an event of '%s', ignoring", e->source);
		return 0;
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
		resync_clear(&ss->rs);
		memcpy(ss->rs.kinds, e->kinds, sizeof(ss->rs.kinds));
		break;
	case EV_END:
		if (!ss->rs.active)
			break;
		/* What the listing no longer has goes in parts, as a batch's
		 * changes do: a file emptied of 10,000 Services is one event.
		 */
		for (int k = 0; k <= OBJ_POD && removed < room; k++) {
			if (!ss->rs.kinds[k])
				continue;
			n = model_retain(s->model, e->source, (enum obj_kind)k, listed, &ss->rs,
					 room - removed);
			if (n > 0)
				removed += (size_t)n;
		}
		changed = removed > 0;
		if (removed == room) {
			*done = false;	/* maybe more: the next pass tells */
			break;
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
	if (!changed)
		return 0;
	return e->op == EV_END ? removed : 1;
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

static void on_gate(struct loop_timer *t, uint64_t now_ms);

/* Whether the workers are still taking up the last publish, within
 * SINK_GATE_WAIT_US of it: the next must wait (a timer bounds the wait).
 */
static bool gate_closed(struct reg_sink *s)
{
	uint64_t waited;

	if (!s->busy || !s->published_us || !s->busy(s->busy_ctx))
		return false;
	waited = now_us() - s->published_us;
	if (waited >= SINK_GATE_WAIT_US) {
		s->gate_stats.expired++;
		log_debug("registry: the workers have not bound the last publish after %llu us; "
			  "publishing the next anyway", (unsigned long long)waited);
		return false;
	}
	/* Cannot arm: publish now rather than sit on the changes. */
	if (!loop_timer_armed(&s->gate) &&
	    loop_timer_set(s->loop, &s->gate, (SINK_GATE_WAIT_US - waited + 999) / 1000, on_gate))
		return false;
	return true;
}

/* Call the changed callback for what is pending, timing it for pacing and
 * the latency histogram.
 */
static void publish(struct reg_sink *s)
{
	uint64_t start = now_us(), done;

	if (loop_timer_armed(&s->pace))
		loop_timer_del(s->loop, &s->pace);
	if (loop_timer_armed(&s->gate))
		loop_timer_del(s->loop, &s->gate);
	s->pending = false;
	if (s->due)
		s->gate_stats.waits++;
	s->due = false;
	if (s->changed)
		s->changed(s->ctx);
	s->first_sync = false;
	done = now_us();
	s->published_us = done;
	s->next_publish_us = done + (done - start) * SINK_PACE_FACTOR;
	if (s->next_publish_us < done + SINK_PACE_MIN_US)
		s->next_publish_us = done + SINK_PACE_MIN_US;
	for (size_t i = 0; i < s->n_pending; i++)
		record_latency(s, s->pending_us[i], done);
	s->n_pending = 0;
	s->n_removed = 0;
	maybe_trim(s);
}

/* Publish now unless the gate holds it (then it is due: the gate's opening
 * publishes it).
 */
static void publish_gated(struct reg_sink *s)
{
	s->pending = true;
	if (gate_closed(s))
		s->due = true;
	else
		publish(s);
}

static void on_pace(struct loop_timer *t, uint64_t now_ms)
{
	struct reg_sink *s = (struct reg_sink *)((char *)t - offsetof(struct reg_sink, pace));

	(void)now_ms;
	if (s->pending)
		publish_gated(s);
}

/* Publish when pacing allows, or now (@now); through the gate unless
 * @force.
 */
static void publish_paced(struct reg_sink *s, bool now_wanted, bool force)
{
	uint64_t now = now_us(), wait_ms;

	s->pending = true;
	if (force) {
		publish(s);
		return;
	}
	if (now_wanted || now >= s->next_publish_us) {
		publish_gated(s);
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

/* Apply what is held and queued; @force: all of it, publishing without
 * waiting for pacing or the gate.
 */
static void drain(struct reg_sink *s, bool force)
{
	struct event *batch, *e;
	uint64_t v;
	bool changed = false;

	(void)!read(s->efd, &v, sizeof(v));
	pthread_mutex_lock(&s->lock);
	/* A batch being sent is taken whole at its end (which wakes us), unless
	 * everything must go now.
	 */
	batch = s->batching && !force ? NULL : s->head;
	if (batch) {
		s->head = NULL;
		s->tail = &s->head;
		s->queued = 0;
	}
	pthread_mutex_unlock(&s->lock);
	if (batch) {
		*s->held_tail = batch;
		while (batch->next)
			batch = batch->next;
		s->held_tail = &batch->next;
	}
	/* A part held back by the gate goes first; while it waits, so does
	 * the rest.
	 */
	if (s->due) {
		if (!force && gate_closed(s))
			return;
		publish(s);
	}
	while ((e = s->held)) {
		size_t part = s->n_pending + s->n_removed, n;
		bool done;

		n = apply(s, e, part < SINK_PUBLISH_MAX_CHANGES ? SINK_PUBLISH_MAX_CHANGES - part : 1,
			  &done);
		if (n) {
			changed = true;
			if (e->op == EV_END)
				s->n_removed += n;
			else
				note_pending(s, e);
		}
		if (done) {
			s->held = e->next;
			if (!s->held)
				s->held_tail = &s->held;
			event_free(e);
		}
		/* A batch (a listing drains thousands of objects at once) is
		 * published in parts: a worker's bind costs in proportion to
		 * the Services a publish changed.
		 */
		if (changed && s->n_pending + s->n_removed >= SINK_PUBLISH_MAX_CHANGES) {
			changed = false;
			if (force) {
				publish(s);
				continue;
			}
			publish_gated(s);
			if (s->due)
				return;
		}
	}
	/* Publish while a relist is half done would be fine (nothing is removed
	 * before its end), and keeps changes flowing during long listings.
	 */
	if (changed || s->first_sync)
		publish_paced(s, !listing(s), force);
	else if (force && s->pending)
		publish(s);
	maybe_trim(s);
}

static void on_gate(struct loop_timer *t, uint64_t now_ms)
{
	struct reg_sink *s = (struct reg_sink *)((char *)t - offsetof(struct reg_sink, gate));

	(void)now_ms;
	drain(s, false);
}

void reg_sink_set_gate(struct reg_sink *s, reg_sink_busy_fn busy, void *ctx)
{
	s->busy = busy;
	s->busy_ctx = ctx;
}

void reg_sink_resume(struct reg_sink *s)
{
	if (s->due || s->held)
		drain(s, false);
}

const struct reg_sink_gate_stats *reg_sink_gate_stats(const struct reg_sink *s)
{
	return &s->gate_stats;
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
	s->held_tail = &s->held;
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
	for (e = s->held; e; e = next) {
		next = e->next;
		event_free(e);
	}
	if (loop_timer_armed(&s->pace))
		loop_timer_del(s->loop, &s->pace);
	if (loop_timer_armed(&s->gate))
		loop_timer_del(s->loop, &s->gate);
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
