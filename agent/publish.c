// SPDX-License-Identifier: GPL-2.0-only
/* The agent's publish step (agent.h): a new catalogue from the model, handed
 * to the proxy workers and the pods, and this node's endpoints handed to
 * self-registration.
 */
#include <errno.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "model/catalogue.h"
#include "model/model.h"
#include "pods.h"
#include "proxy/workers.h"
#include "registry/registry.h"
#include "selfreg.h"

/* Whether every registry source has been SYNCED once (a file as soon as it
 * loaded, a network backend after its first full listing).
 */
static bool registries_synced(const struct agent *a)
{
	struct reg_source_status st[AGENT_MAX_REGISTRIES];
	size_t n = a->sink ? reg_sink_status(a->sink, st, AGENT_MAX_REGISTRIES) : 0;

	for (unsigned int i = 0; i < a->n_regs; i++) {
		bool synced = false;

		for (size_t j = 0; j < n && j < AGENT_MAX_REGISTRIES; j++)
			if (!strcmp(st[j].source, a->regs[i].spec))
				synced = st[j].synced_once;
		if (!synced)
			return false;
	}
	return true;
}

int agent_publish(struct agent *a)
{
	struct catalogue *c = model_build(a->model);

	if (!c)
		return log_errno(-errno, "build catalogue");
	catalogue_unref(a->cat);
	a->cat = c;
	if (!a->registries_synced && registries_synced(a)) {
		a->registries_synced = true;
		log_info("registry: every source has synced; meshing decisions follow the catalogue");
	}
	if (a->workers)
		workers_set_catalogue(a->workers, c);
	if (a->pods)
		pods_reconcile(a->pods);
	log_info("catalogue: generation=%llu services=%zu service_ports=%zu",
		 (unsigned long long)catalogue_generation(c), catalogue_n_services(c),
		 catalogue_n_svc_ports(c));
	agent_register_local(a);
	return 0;
}

void agent_register_local(struct agent *a)
{
	if (a->selfreg && a->pods && a->cat)
		selfreg_update(a->selfreg, pods_first(a->pods), a->cat);
}
