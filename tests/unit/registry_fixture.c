// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/unit/registry_fixture.h. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "model/model.h"
#include "registry_fixture.h"

void rfix_init(struct rfix *f)
{
	memset(f, 0, sizeof(*f));
	/* WEFT_TEST_DEBUG=1 shows the backends' (and their libraries') debug log. */
	if (getenv("WEFT_TEST_DEBUG"))
		log_set_level(LOG_LEVEL_DEBUG);
	f->opts.node_name = "node-a";
	f->opts.etcd_prefix = "/t/";
	f->opts.etcd_lease_ttl_s = 2;
	f->opts.zk_session_timeout_ms = 2000;
}

static void on_changed(void *ctx)
{
	struct rfix *f = ctx;

	f->publishes++;
}

void rfix_start_backend(struct rfix *f)
{
	const char *colon = strchr(f->source, ':');
	int err = f->ops->start(f->source, colon ? colon + 1 : "", &f->opts, f->sink, &f->state);

	cr_assert_eq(err, 0, "start '%s': %s", f->source, strerror(-err));
}

void rfix_start(struct rfix *f, const struct reg_backend_ops *ops, const char *source)
{
	snprintf(f->source, sizeof(f->source), "%s", source);
	f->ops = ops;
	f->loop = loop_new();
	f->model = model_new();
	cr_assert(f->loop && f->model);
	cr_assert_eq(model_declare_source(f->model, f->source), 0);
	f->sink = reg_sink_new(f->loop, f->model, on_changed, f);
	cr_assert_not_null(f->sink);
	rfix_start_backend(f);
}

void rfix_stop_backend(struct rfix *f)
{
	if (f->ops && f->state)
		f->ops->stop(f->state, true);
	f->state = NULL;
}

void rfix_stop(struct rfix *f)
{
	rfix_stop_backend(f);
	reg_sink_free(f->sink);
	f->sink = NULL;
	model_free(f->model);
	f->model = NULL;
	if (f->loop)
		loop_timer_del(f->loop, &f->timer);
	loop_free(f->loop);
	f->loop = NULL;
}

void rfix_register_local_as(struct rfix *f, const struct selfreg_ep *eps, size_t n,
			    bool complete)
{
	struct reg_local_slice *slices = NULL;
	int ns = selfreg_slices(eps, n, &slices);

	cr_assert_geq(ns, 0, "selfreg_slices: %s", strerror(-ns));
	f->ops->register_local(f->state, slices, (size_t)ns, complete);
	reg_local_slices_free(slices, (size_t)ns);
}

void rfix_register_local(struct rfix *f, const struct selfreg_ep *eps, size_t n)
{
	rfix_register_local_as(f, eps, n, true);
}

static void on_timer(struct loop_timer *t, uint64_t now)
{
	struct rfix *f = (struct rfix *)((char *)t - offsetof(struct rfix, timer));

	(void)now;
	loop_stop(f->loop);
}

void rfix_run(struct rfix *f, uint32_t ms)
{
	cr_assert_eq(loop_timer_set(f->loop, &f->timer, ms, on_timer), 0);
	cr_assert_eq(loop_run(f->loop), 0);
}

bool rfix_until(struct rfix *f, uint32_t ms, rfix_cond_fn cond, const void *ctx)
{
	for (uint32_t waited = 0; waited <= ms; waited += 20) {
		if (cond(f, ctx))
			return true;
		rfix_run(f, 20);
	}
	return cond(f, ctx);
}

struct reg_source_status rfix_status(struct rfix *f)
{
	struct reg_source_status st[4];
	size_t n = reg_sink_status(f->sink, st, 4);

	for (size_t i = 0; i < n && i < 4; i++)
		if (!strcmp(st[i].source, f->source))
			return st[i];
	return (struct reg_source_status){ .health = REG_HEALTH_STARTING };
}

bool rfix_health_is(struct rfix *f, const void *health)
{
	return rfix_status(f).health == *(const enum reg_health *)health;
}

const struct obj *rfix_find(struct rfix *f, const char *key)
{
	static const char *const kinds[] = { "Namespace", "Service", "EndpointSlice", "Pod" };
	char kind[32] = "", ns[OBJ_NS_MAX] = "", name[OBJ_NAME_MAX] = "";
	const char *sp = strchr(key, ' '), *slash;

	cr_assert(sp && (size_t)(sp - key) < sizeof(kind), "bad key '%s'", key);
	memcpy(kind, key, (size_t)(sp - key));
	slash = strchr(sp + 1, '/');
	if (slash) {
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - sp - 1), sp + 1);
		snprintf(name, sizeof(name), "%s", slash + 1);
	} else {
		snprintf(name, sizeof(name), "%s", sp + 1);
	}
	for (int k = 0; k < 4; k++)
		if (!strcmp(kind, kinds[k]))
			return model_find(f->model, f->source, (enum obj_kind)k, ns, name);
	cr_assert_fail("bad kind in '%s'", key);
	return NULL;
}

bool rfix_has(struct rfix *f, const void *key)
{
	return rfix_find(f, key) != NULL;
}

bool rfix_lacks(struct rfix *f, const void *key)
{
	return rfix_find(f, key) == NULL;
}

const char *rfix_slice_ip(struct rfix *f, const char *key, char *buf, size_t len)
{
	const struct obj *o = rfix_find(f, key);

	buf[0] = '\0';
	if (o && o->key.kind == OBJ_ENDPOINTSLICE && o->slice.n_endpoints &&
	    o->slice.endpoints[0].n_addrs)
		addr_fmt_ip(&o->slice.endpoints[0].addrs[0], buf, len);
	return buf;
}

bool rfix_slice_ip_is(struct rfix *f, const void *ip_is)
{
	const struct rfix_ip_is *c = ip_is;
	char ip[ADDR_STRLEN];

	return !strcmp(rfix_slice_ip(f, c->key, ip, sizeof(ip)), c->ip);
}

bool rfix_rejected_at_least(struct rfix *f, const void *count)
{
	return rfix_status(f).rejected >= *(const uint64_t *)count;
}

bool rfix_resynced_twice(struct rfix *f, const void *unused)
{
	(void)unused;
	return rfix_status(f).resyncs >= 2 && rfix_status(f).health == REG_HEALTH_SYNCED;
}
