// SPDX-License-Identifier: GPL-2.0-only
/* Repair of pods that escaped the mesh (agent.h): pods of this node in a
 * meshed namespace that were never enrolled (they started before weft-cni
 * was chained, or while the cluster's CNI had un-chained it). The pods
 * table finds them from the catalogue (pods_escaped()); this file, part of
 * the wiring, logs them and, with --evict-escaped, asks the registry that
 * can (Kubernetes) to evict one per period, so the workload controller
 * recreates it through the CNI chain, captured this time.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "model/catalogue.h"
#include "pods.h"
#include "registry/registry.h"

struct look {
	struct agent *a;
	const struct cat_pod *first;	/* the one to evict this period */
};

static void on_escaped(const struct cat_pod *cp, void *ctx)
{
	struct look *l = ctx;

	if (!l->first)
		l->first = cp;
	log_debug("repair: pod %s/%s runs on this node unmeshed: never enrolled", cp->ns,
		  cp->name);
}

/* The first registry that can evict pods, or NULL. */
static const struct agent_registry *evictor(const struct agent *a)
{
	for (unsigned int i = 0; i < a->n_regs; i++)
		if (a->regs[i].ops->evict_pod)
			return &a->regs[i];
	return NULL;
}

static void on_tick(struct loop_timer *t, uint64_t now)
{
	struct agent *a = (struct agent *)((char *)t - offsetof(struct agent, repair_timer));
	struct look l = { .a = a };
	const struct agent_registry *r;
	size_t n;
	int err;

	(void)now;
	n = pods_escaped(a->pods, on_escaped, &l);
	if (n != a->escaped)
		log_warn("repair: %zu pod(s) of meshed namespaces run on this node unmeshed "
			 "(started while weft-cni was not chained; see meshctl check)%s",
			 n,
			 n && !a->cfg->evict_escaped ? "; --evict-escaped would restart them" : "");
	a->escaped = n;
	if (l.first && a->cfg->evict_escaped) {
		r = evictor(a);
		if (!r) {
			log_warn("repair: --evict-escaped: no registry can evict pods (only "
				 "--registry kubernetes can), ignoring");
		} else {
			err = r->ops->evict_pod(r->state, l.first->ns, l.first->name, l.first->uid);
			if (err) {
				log_warn("repair: evict %s/%s: %s, trying again later", l.first->ns,
					 l.first->name, strerror(-err));
			} else {
				log_info("repair: evicting pod %s/%s (uid %s), which escaped the "
					 "mesh", l.first->ns, l.first->name, l.first->uid);
			}
		}
	}
	err = loop_timer_set(a->loop, &a->repair_timer, a->cfg->repair_period_ms, on_tick);
	if (err)
		log_warn("repair: re-arm: %s; no more looks for escaped pods", strerror(-err));
}

int agent_repair_start(struct agent *a)
{
	return loop_timer_set(a->loop, &a->repair_timer, a->cfg->repair_period_ms, on_tick);
}

void agent_repair_stop(struct agent *a)
{
	if (a->loop)
		loop_timer_del(a->loop, &a->repair_timer);
}

void agent_evict_stats(const struct agent *a, struct reg_evict_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < a->n_regs; i++) {
		struct reg_evict_stats s;

		if (!a->regs[i].ops->evict_stats)
			continue;
		a->regs[i].ops->evict_stats(a->regs[i].state, &s);
		out->requested += s.requested;
		out->evicted += s.evicted;
		out->refused += s.refused;
		out->failed += s.failed;
	}
}
