/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/consul*.c: one Consul service — the tags the catalog
 * lists for it and the health API's answer for its passing instances — into
 * model objects, by way of the Kubernetes-shaped JSON a Kubernetes registry
 * would hold (a Service and EndpointSlices), decoded by registry/decode.h so
 * that validation and every weft.io/ policy setting are read in one place.
 * The mapping is documented in docs/registry-consul.md. No I/O.
 */
#ifndef WEFT_REG_CONSUL_MAP_H
#define WEFT_REG_CONSUL_MAP_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "model/objects.h"

#define CONSUL_MAP_SLICES_MAX 64	/* EndpointSlices of one service */

/* What one service maps to. */
struct consul_objs {
	struct obj *svc;			/* owned */
	struct obj *slices[CONSUL_MAP_SLICES_MAX];	/* owned */
	size_t n_slices;
	size_t rejected;			/* instances left out, each logged */
};

/* Map service @name of Kubernetes namespace @ns from the catalog's @tags (an
 * array of strings, borrowed) and the health answer @health (the array of
 * /v1/health/service/NAME?passing=1, borrowed; NULL when not known yet,
 * which maps no EndpointSlice). *@last_port is the service port used when
 * neither a weft.io/port tag nor an instance tells it, and is updated.
 * Malformed instances are logged (naming @source) and left out alone.
 * Returns 0 with @out filled (free with consul_objs_free()); -ENOENT when
 * the service has no VIP tag or no port (reason in @err: skipped, not
 * malformed); -EINVAL when the result does not decode (reason in @err);
 * -ENOMEM.
 */
int consul_map_service(const char *source, const char *ns, const char *name, json_object *tags,
		       json_object *health, uint16_t *last_port, struct consul_objs *out,
		       char *err, size_t errlen);

/* Free what @o holds and zero it. */
void consul_objs_free(struct consul_objs *o);

#endif /* WEFT_REG_CONSUL_MAP_H */
