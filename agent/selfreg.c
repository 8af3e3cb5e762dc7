// SPDX-License-Identifier: GPL-2.0-only
/* Self-registration (selfreg.h): enrolled pods + catalogue → endpoints →
 * EndpointSlice manifests → the backends that register them. The manifests
 * go through the same decoder as every other registry object when the
 * backends read them back, so a registered endpoint is an EndpointSlice like
 * any other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "array.h"
#include "json_help.h"
#include "log.h"
#include "model/catalogue.h"
#include "pods.h"
#include "selfreg.h"

struct selfreg_backend {
	const struct reg_backend_ops *ops;
	void *state;
};

struct selfreg {
	char *node;
	bool enabled;			/* a node name that fits slice names */
	struct selfreg_backend backends[SELFREG_BACKENDS_MAX];
	size_t n_backends;
	bool handed;			/* @last was handed to the backends */
	bool last_complete;		/* and whether it was complete */
	struct reg_local_slice *last;
	size_t n_last;
};

/* Family, then port, then address: a slice is one family and port. */
static int slice_addr_cmp(const struct addr *a, const struct addr *b)
{
	size_t len = a->family == AF_INET ? sizeof(a->ip.v4) : sizeof(a->ip.v6);
	int d;

	if (a->family != b->family)
		return a->family == AF_INET ? -1 : 1;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	d = memcmp(&a->ip, &b->ip, len);
	return d;
}

/* The order slices are cut in: namespace, service, then family and port
 * (both inside slice_addr_cmp), then address, then pod.
 */
static int ep_cmp(const void *pa, const void *pb)
{
	const struct selfreg_ep *a = pa, *b = pb;
	int d = strcmp(a->ns, b->ns);

	if (!d)
		d = strcmp(a->service, b->service);
	if (!d)
		d = slice_addr_cmp(&a->addr, &b->addr);
	if (!d)
		d = strcmp(a->pod, b->pod);
	return d;
}

/* Same slice: namespace, service, family and port. */
static bool same_slice(const struct selfreg_ep *a, const struct selfreg_ep *b)
{
	return !strcmp(a->ns, b->ns) && !strcmp(a->service, b->service) &&
	       a->addr.family == b->addr.family && a->addr.port == b->addr.port;
}

int selfreg_endpoints(const struct pod *pods, const struct catalogue *cat, const char *node,
		      struct selfreg_ep **out)
{
	struct selfreg_ep *eps = NULL;
	size_t n = 0, cap = 0, kept = 0;

	*out = NULL;
	for (const struct pod *p = pods; p; p = p->next) {
		const struct cat_pod *cp;

		if (!p->meshed)
			continue;
		cp = catalogue_find_pod(cat, p->spec.ns, p->spec.name);
		if (!cp)
			continue;
		for (size_t r = 0; r < cp->n_registers; r++) {
			for (unsigned int i = 0; i < p->spec.n_ips; i++) {
				struct selfreg_ep *e;

				if (array_reserve(&eps, &cap, n, sizeof(*eps), 16)) {
					free(eps);
					return -ENOMEM;
				}
				e = &eps[n++];
				memset(e, 0, sizeof(*e));
				snprintf(e->ns, sizeof(e->ns), "%s", p->spec.ns);
				snprintf(e->service, sizeof(e->service), "%s", cp->registers[r].service);
				snprintf(e->pod, sizeof(e->pod), "%s", p->spec.name);
				snprintf(e->node, sizeof(e->node), "%s", node);
				e->addr = p->spec.ips[i];
				e->addr.port = cp->registers[r].port;
			}
		}
	}
	if (!n)
		return 0;
	qsort(eps, n, sizeof(*eps), ep_cmp);
	/* One address:port registered twice for a service (two entries of one
	 * annotation, a pod enrolled under two container ids) is one endpoint.
	 */
	for (size_t i = 0; i < n; i++) {
		if (kept && !strcmp(eps[i].ns, eps[kept - 1].ns) &&
		    !strcmp(eps[i].service, eps[kept - 1].service) &&
		    addr_equal(&eps[i].addr, &eps[kept - 1].addr))
			continue;
		eps[kept++] = eps[i];
	}
	*out = eps;
	return (int)kept;
}

bool selfreg_endpoints_equal(const struct selfreg_ep *a, const struct selfreg_ep *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ep_cmp(&a[i], &b[i]) || strcmp(a[i].node, b[i].node))
			return false;
	}
	return true;
}

static int slice_meta(json_object *meta, const struct reg_local_slice *s,
		      const struct selfreg_ep *e)
{
	json_object *labels = json_object_new_object();
	int err = json_add(meta, "labels", labels);

	if (err)
		return err;
	return json_add_str(meta, "name", s->name) | json_add_str(meta, "namespace", s->ns) |
	       json_add_str(labels, "kubernetes.io/service-name", e->service) |
	       json_add_str(labels, "endpointslice.kubernetes.io/managed-by", "weft-agent") |
	       json_add_str(labels, "weft.io/node", e->node);
}

static json_object *slice_endpoint(const struct selfreg_ep *e)
{
	json_object *ep = json_object_new_object();
	json_object *addrs = json_object_new_array(), *cond = json_object_new_object();
	json_object *ref = json_object_new_object();
	char ip[ADDR_STRLEN];
	int err;

	if (!ep) {
		json_object_put(addrs);
		json_object_put(cond);
		json_object_put(ref);
		return NULL;
	}
	/* From here on @ep owns the containers; they stay usable while it lives. */
	err = json_add(ep, "addresses", addrs) | json_add(ep, "conditions", cond) |
	      json_add_str(ep, "nodeName", e->node) | json_add(ep, "targetRef", ref);
	if (!err)
		err = json_append(addrs,
				  json_object_new_string(addr_fmt_ip(&e->addr, ip, sizeof(ip)))) |
		      json_add(cond, "ready", json_object_new_boolean(1)) |
		      json_add_str(ref, "kind", "Pod") | json_add_str(ref, "namespace", e->ns) |
		      json_add_str(ref, "name", e->pod);
	if (err) {
		json_object_put(ep);
		return NULL;
	}
	return ep;
}

/* The manifest of slice @s from endpoints @eps[0..n) (one slice's worth). */
static int slice_manifest(struct reg_local_slice *s, const struct selfreg_ep *eps, size_t n)
{
	json_object *o = json_object_new_object();
	json_object *meta = json_object_new_object(), *arr = json_object_new_array();
	json_object *ports = json_object_new_array(), *port = json_object_new_object();
	int err = -ENOMEM;

	if (!o) {
		json_object_put(meta);
		json_object_put(arr);
		json_object_put(ports);
		json_object_put(port);
		return -ENOMEM;
	}
	err = json_add_str(o, "apiVersion", "discovery.k8s.io/v1") |
	      json_add_str(o, "kind", "EndpointSlice") | json_add(o, "metadata", meta) |
	      json_add_str(o, "addressType", eps[0].addr.family == AF_INET ? "IPv4" : "IPv6") |
	      json_add(o, "endpoints", arr) | json_add(o, "ports", ports);
	if (err) {
		json_object_put(port);
		goto out;
	}
	/* Unnamed: it serves the Service's unnamed port; a named Service port
	 * falls back to its numeric targetPort (docs/registry-format.md).
	 */
	err = json_append(ports, port);
	if (!err)
		err = slice_meta(meta, s, eps) | json_add_str(port, "name", "") |
		      json_add(port, "port", json_object_new_int(eps[0].addr.port)) |
		      json_add_str(port, "protocol", "TCP");
	for (size_t i = 0; i < n && !err; i++)
		err = json_append(arr, slice_endpoint(&eps[i]));
	if (err)
		goto out;
	s->manifest = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	err = s->manifest ? 0 : -ENOMEM;
out:
	json_object_put(o);
	return err ? -ENOMEM : 0;
}

int selfreg_slices(const struct selfreg_ep *eps, size_t n, struct reg_local_slice **out)
{
	struct reg_local_slice *slices = NULL;
	size_t n_slices = 0;
	int err = 0;

	*out = NULL;
	if (!n)
		return 0;
	/* At most one slice per endpoint. */
	slices = calloc(n, sizeof(*slices));
	if (!slices)
		return -ENOMEM;
	for (size_t i = 0, j; i < n; i = j) {
		struct reg_local_slice *s = &slices[n_slices++];
		const struct selfreg_ep *e = &eps[i];
		bool first_port = !i || strcmp(e->ns, eps[i - 1].ns) ||
				  strcmp(e->service, eps[i - 1].service) ||
				  e->addr.family != eps[i - 1].addr.family;
		char port[8] = "";
		int len;

		for (j = i + 1; j < n && same_slice(&eps[j], e); j++)
			;
		if (!first_port)
			snprintf(port, sizeof(port), "-%u", e->addr.port);
		len = snprintf(s->name, sizeof(s->name), "%s-%s%s%s", e->service, e->node, port,
			       e->addr.family == AF_INET6 ? "-ipv6" : "");
		if (len < 0 || (size_t)len >= sizeof(s->name)) {
			err = -ENAMETOOLONG;
			goto out_free;
		}
		snprintf(s->ns, sizeof(s->ns), "%s", e->ns);
		err = slice_manifest(s, e, j - i);
		if (err)
			goto out_free;
	}
	*out = slices;
	return (int)n_slices;
out_free:
	reg_local_slices_free(slices, n_slices);
	return err;
}

struct selfreg *selfreg_new(const char *node)
{
	struct selfreg *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->node = strdup(node ? node : "");
	if (!s->node) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->enabled = s->node[0] && strlen(s->node) <= REG_LOCAL_NODE_MAX;
	return s;
}

void selfreg_free(struct selfreg *s)
{
	if (!s)
		return;
	reg_local_slices_free(s->last, s->n_last);
	free(s->node);
	free(s);
}

int selfreg_add_backend(struct selfreg *s, const struct reg_backend_ops *ops, void *state)
{
	if (!ops->register_local)
		return 0;
	if (s->n_backends == SELFREG_BACKENDS_MAX)
		return -ENOSPC;
	s->backends[s->n_backends++] = (struct selfreg_backend){ .ops = ops, .state = state };
	return 0;
}

bool selfreg_wanted(const struct selfreg *s)
{
	return s->enabled && s->n_backends;
}

void selfreg_update(struct selfreg *s, const struct pod *pods, const struct catalogue *cat,
		    bool complete)
{
	struct reg_local_slice *slices = NULL;
	struct selfreg_ep *eps;
	int n, ns;

	if (!selfreg_wanted(s))
		return;
	n = selfreg_endpoints(pods, cat, s->node, &eps);
	if (n < 0) {
		log_warn("registry: compute this node's endpoints: %s, ignoring", strerror(-n));
		return;
	}
	ns = selfreg_slices(eps, (size_t)n, &slices);
	free(eps);
	if (ns < 0) {
		log_warn("registry: cannot describe this node's endpoints: %s, ignoring",
			 strerror(-ns));
		return;
	}
	if (s->handed && s->last_complete == complete &&
	    reg_local_slices_equal(s->last, s->n_last, slices, (size_t)ns)) {
		reg_local_slices_free(slices, (size_t)ns);
		return;
	}
	for (size_t i = 0; i < s->n_backends; i++)
		s->backends[i].ops->register_local(s->backends[i].state, slices, (size_t)ns,
						   complete);
	reg_local_slices_free(s->last, s->n_last);
	s->last = slices;
	s->n_last = (size_t)ns;
	s->handed = true;
	s->last_complete = complete;
}
