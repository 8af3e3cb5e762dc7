// SPDX-License-Identifier: GPL-2.0-only
/* Publishing a big batch in parts, each once the workers have bound the one
 * before (agent/registry/sink.c's gate, agent/proxy/workers.c's bound
 * notice): a worker binds only the newest snapshot when it wakes, so parts
 * published back to back would reach it as one bind of all their changes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "loop.h"
#include "model/catalogue.h"
#include "model/model.h"
#include "proxy/proxy.h"
#include "proxy/workers.h"
#include "registry/decode.h"
#include "registry/registry.h"

#define SRC "file:/t"
/* The sink's bound on a part (SINK_PUBLISH_MAX_CHANGES) and its wait for a
 * worker that does not bind (SINK_GATE_WAIT_US).
 */
#define PART 512
#define GATE_WAIT_MS 50

struct gate_fix {
	struct loop *loop;
	struct model *model;
	struct reg_sink *sink;
	struct workers *ws;
	/* With no workers: the gate says busy from a publish until the test
	 * says the part was bound.
	 */
	bool busy;
	unsigned int publishes;
	uint64_t changes_seen;		/* reg_sink_latency()->n at the last publish */
	uint64_t max_part;		/* the most changes one publish carried */
	struct catalogue *cat;		/* with workers: the last built */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_changed(void *ctx)
{
	struct gate_fix *f = ctx;
	struct catalogue *c = model_build(f->model);

	cr_assert_not_null(c);
	f->publishes++;
	catalogue_unref(f->cat);
	f->cat = c;
	if (f->ws)
		workers_set_catalogue(f->ws, c);
	else
		f->busy = true;
}

/* Services in the catalogue published last. */
static size_t published(const struct gate_fix *f)
{
	return f->cat ? catalogue_n_services(f->cat) : 0;
}

/* The changes the last publish carried: the sink's histogram counts them
 * as the publish ends.
 */
static uint64_t take_part(struct gate_fix *f)
{
	uint64_t n = reg_sink_latency(f->sink)->n, d = n - f->changes_seen;

	f->changes_seen = n;
	if (d > f->max_part)
		f->max_part = d;
	return d;
}

static bool fake_busy(void *ctx)
{
	return ((struct gate_fix *)ctx)->busy;
}

static bool workers_busy(void *ctx)
{
	return workers_binding(((struct gate_fix *)ctx)->ws);
}

static void on_bound(void *ctx)
{
	reg_sink_resume(((struct gate_fix *)ctx)->sink);
}

static void push_services(struct gate_fix *f, unsigned int n)
{
	char json[512], err[REG_DECODE_ERR_MAX];

	for (unsigned int i = 0; i < n; i++) {
		json_object *o;
		struct obj *ob;

		snprintf(json, sizeof(json),
			 "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
			 "{\"name\": \"svc-%05u\", \"namespace\": \"t\"}, \"spec\": "
			 "{\"clusterIP\": \"198.19.%u.%u\", \"ports\": [{\"name\": \"http\", "
			 "\"port\": 80}]}}",
			 i, 64 + i / 250, 1 + i % 250);
		o = json_tokener_parse(json);
		cr_assert_not_null(o);
		cr_assert_eq(reg_decode(o, &ob, err, sizeof(err)), 0, "%s", err);
		json_object_put(o);
		cr_assert_eq(reg_sink_upsert(f->sink, SRC, ob), 0);
	}
}

/* Whether the model holds Service @i, the last pushed of a batch. */
static bool applied(struct gate_fix *f, unsigned int i)
{
	char name[16];

	snprintf(name, sizeof(name), "svc-%05u", i);
	return model_find(f->model, SRC, OBJ_SERVICE, "t", name) != NULL;
}

static void start(struct gate_fix *f, unsigned int workers)
{
	memset(f, 0, sizeof(*f));
	f->loop = loop_new();
	f->model = model_new();
	cr_assert(f->loop && f->model);
	cr_assert_eq(model_declare_source(f->model, SRC), 0);
	f->sink = reg_sink_new(f->loop, f->model, on_changed, f);
	cr_assert_not_null(f->sink);
	if (!workers) {
		reg_sink_set_gate(f->sink, fake_busy, f);
		return;
	}
	f->ws = workers_new(f->loop, workers, &(struct proxy_opts){ .home_netns_fd = -1 });
	cr_assert_not_null(f->ws, "workers_new: %s", strerror(errno));
	cr_assert_eq(workers_on_bound(f->ws, f->loop, on_bound, f), 0);
	reg_sink_set_gate(f->sink, workers_busy, f);
}

static void stop(struct gate_fix *f)
{
	workers_free(f->ws);
	reg_sink_free(f->sink);
	catalogue_unref(f->cat);
	model_free(f->model);
	loop_free(f->loop);
}

struct run_until {
	struct loop_timer t;
	struct loop *loop;
	bool (*done)(struct gate_fix *f);
	struct gate_fix *f;
	uint64_t deadline_ms;
};

static void on_tick(struct loop_timer *t, uint64_t now_ms)
{
	struct run_until *r = (struct run_until *)t;

	(void)now_ms;
	if ((r->done && r->done(r->f)) || mono_ms() >= r->deadline_ms)
		loop_stop(r->loop);
	else
		cr_assert_eq(loop_timer_set(r->loop, &r->t, 1, on_tick), 0);
}

/* Run @f's loop until @done (checked every millisecond) or @max_ms. */
static void run(struct gate_fix *f, bool (*done)(struct gate_fix *f), uint64_t max_ms)
{
	struct run_until r = { .loop = f->loop, .done = done, .f = f,
			       .deadline_ms = mono_ms() + max_ms };

	cr_assert_eq(loop_timer_set(f->loop, &r.t, 1, on_tick), 0);
	cr_assert_eq(loop_run(f->loop), 0);
	loop_timer_del(f->loop, &r.t);
}

/* Only a test thread stalled past the bounded wait (50 ms) inside the
 * loop lets a part go without its bind: nothing to tell then.
 */
static void skip_if_stalled(struct gate_fix *f)
{
	if (reg_sink_gate_stats(f->sink)->expired) {
		stop(f);
		cr_skip_test("the test thread stalled past the bounded wait");
	}
}

Test(sink_gate, a_big_batch_is_published_one_part_per_bind)
{
	struct gate_fix f;
	const unsigned int n = 5 * PART + 100;

	start(&f, 0);
	push_services(&f, n);
	/* The first part goes at once; the next waits for its bind, however
	 * long the loop runs within the bounded wait.
	 */
	run(&f, NULL, GATE_WAIT_MS / 2);
	skip_if_stalled(&f);
	cr_assert_eq(f.publishes, 1);
	cr_assert_eq(take_part(&f), PART);
	cr_assert_eq(published(&f), PART);
	cr_assert_eq(reg_sink_gate_stats(f.sink)->expired, 0);
	/* Each bind lets exactly one more part out. */
	for (unsigned int k = 2; k <= 6; k++) {
		f.busy = false;
		reg_sink_resume(f.sink);
		cr_assert_eq(f.publishes, k, "after bind %u: %u publishes", k - 1, f.publishes);
		cr_assert_eq(take_part(&f), k < 6 ? PART : 100);
		cr_assert_eq(published(&f), k < 6 ? k * PART : n);
	}
	/* Nothing waits any more: a resume publishes nothing. */
	f.busy = false;
	reg_sink_resume(f.sink);
	cr_assert_eq(f.publishes, 6);
	cr_assert_eq(reg_sink_gate_stats(f.sink)->waits, 5);
	cr_assert_eq(reg_sink_gate_stats(f.sink)->expired, 0);
	cr_assert(applied(&f, n - 1));
	stop(&f);
}

static bool all_published(struct gate_fix *f)
{
	return f->publishes >= 3;
}

Test(sink_gate, a_worker_that_never_binds_holds_a_part_for_the_bounded_wait_only)
{
	struct gate_fix f;
	uint64_t t0;

	start(&f, 0);
	push_services(&f, 2 * PART + 1);
	t0 = mono_ms();
	/* busy stays true: each part after the first goes when the wait ends. */
	run(&f, all_published, 20 * GATE_WAIT_MS);
	cr_assert_eq(f.publishes, 3);
	cr_assert_geq(mono_ms() - t0, 2 * GATE_WAIT_MS - 2);
	cr_assert_eq(reg_sink_gate_stats(f.sink)->expired, 2);
	cr_assert(applied(&f, 2 * PART));
	stop(&f);
}

Test(sink_gate, a_forced_drain_does_not_wait)
{
	struct gate_fix f;

	start(&f, 0);
	push_services(&f, 3 * PART);
	f.busy = true;
	reg_sink_drain(f.sink);
	cr_assert_eq(f.publishes, 3);
	cr_assert(applied(&f, 3 * PART - 1));
	stop(&f);
}

/* A listing's end removes what it did not list in parts too: a registry
 * file emptied of thousands of Services is a single event.
 */
Test(sink_gate, a_listing_that_removes_thousands_removes_them_one_part_per_bind)
{
	const enum obj_kind kinds[] = { OBJ_SERVICE };
	const unsigned int n = 2 * PART + 276;
	struct gate_fix f;
	unsigned int p0;

	start(&f, 0);
	cr_assert_eq(reg_sink_resync_begin(f.sink, SRC, kinds, 1), 0);
	push_services(&f, n);
	cr_assert_eq(reg_sink_resync_end(f.sink, SRC), 0);
	reg_sink_drain(f.sink);
	cr_assert(applied(&f, n - 1));
	p0 = f.publishes;
	/* The next listing has none of them. */
	f.busy = false;
	cr_assert_eq(reg_sink_resync_begin(f.sink, SRC, kinds, 1), 0);
	cr_assert_eq(reg_sink_resync_end(f.sink, SRC), 0);
	run(&f, NULL, GATE_WAIT_MS / 2);
	skip_if_stalled(&f);
	cr_assert_eq(f.publishes, p0 + 1);
	cr_assert_eq(published(&f), n - PART);
	for (unsigned int k = 2; k <= 3; k++) {
		f.busy = false;
		reg_sink_resume(f.sink);
		cr_assert_eq(f.publishes, p0 + k);
		cr_assert_eq(published(&f), k == 2 ? n - 2 * PART : 0);
	}
	f.busy = false;
	reg_sink_resume(f.sink);
	cr_assert_eq(f.publishes, p0 + 3);
	cr_assert_eq(reg_sink_gate_stats(f.sink)->waits, 2);
	cr_assert_eq(reg_sink_gate_stats(f.sink)->expired, 0);
	stop(&f);
}

static bool workers_idle(struct gate_fix *f)
{
	return !workers_binding(f->ws);
}

static bool workers_have_all(struct gate_fix *f)
{
	return published(f) == 4 * PART + 7 && !workers_binding(f->ws);
}

/* The real thing: two worker threads, the agent's wiring (main.c). Each
 * bind takes up one part's Services, never two parts'.
 */
Test(sink_gate, workers_bind_each_part_of_a_big_batch_on_its_own)
{
	struct gate_fix f;
	struct workers_publish_stats st;
	uint64_t expired;

	start(&f, 2);
	/* The first (empty) snapshot, as the agent publishes before registries
	 * change anything.
	 */
	on_changed(&f);
	run(&f, workers_idle, 10000);
	cr_assert(workers_idle(&f));
	push_services(&f, 4 * PART + 7);
	run(&f, workers_have_all, 10000);
	cr_assert(workers_have_all(&f), "%u publishes, %zu services", f.publishes, published(&f));
	cr_assert_eq(f.publishes, 1 + 5);
	workers_isolate(f.ws);
	workers_publish_stats(f.ws, &st);
	workers_release(f.ws);
	expired = reg_sink_gate_stats(f.sink)->expired;
	/* Every snapshot bound by both workers, the first and five parts, each
	 * on its own: 512 Services. Only on a machine too loaded for a worker to
	 * bind within the bounded wait (50 ms) may a part go without, and join
	 * the one before in a bind.
	 */
	cr_assert_leq(st.max_changes, PART * (1 + expired), "max changes per bind %llu",
		      (unsigned long long)st.max_changes);
	cr_assert_geq(st.binds, 2 * (6 - expired), "binds %llu", (unsigned long long)st.binds);
	if (!expired) {
		cr_assert_eq(st.binds, 2 * 6);
		cr_assert_eq(st.max_changes, PART);
	}
	stop(&f);
}

static bool published_once(struct gate_fix *f)
{
	return f->publishes > 0;
}

/* The loop takes nothing of an open batch: ending it publishes its @n
 * Services at once.
 */
static void held_until_the_batch_ends(struct gate_fix *f, size_t n)
{
	run(f, published_once, 50);
	cr_expect_eq(f->publishes, 0, "a batch half sent was published");
	cr_expect(!applied(f, 0), "a batch half sent was applied");
	reg_sink_batch_end(f->sink);
	run(f, published_once, 2000);
	cr_expect_eq(f->publishes, 1);
	cr_expect_eq(published(f), n);
}

/* A file reload's change (a Service and its endpoints written together)
 * is sent as a batch: the loop takes none of it before the end, then all
 * of it in one publish.
 */
Test(sink_gate, a_batch_is_taken_whole_at_its_end)
{
	struct gate_fix f;

	start(&f, 0);
	reg_sink_batch_begin(f.sink);
	push_services(&f, 3);
	held_until_the_batch_ends(&f, 3);
	cr_expect_eq(take_part(&f), 3);
	stop(&f);
}

/* Two file registries reload on threads of their own: their batches may
 * overlap, and the first to end must not let the loop take the other's
 * half sent.
 */
Test(sink_gate, overlapping_batches_are_taken_once_both_ended)
{
	struct gate_fix f;

	start(&f, 0);
	reg_sink_batch_begin(f.sink);	/* one source's */
	reg_sink_batch_begin(f.sink);	/* another's */
	push_services(&f, 3);
	reg_sink_batch_end(f.sink);	/* the first ends: the second is half sent */
	held_until_the_batch_ends(&f, 3);
	stop(&f);
}
