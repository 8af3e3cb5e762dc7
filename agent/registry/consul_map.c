// SPDX-License-Identifier: GPL-2.0-only
/* Consul service → Kubernetes-shaped Service and EndpointSlices → model
 * objects (registry/consul_map.h). Building the Kubernetes shape and handing
 * it to reg_decode() keeps one decoder for every registry: a weft.io/ tag is
 * read exactly as the annotation of the same name, with the same checks and
 * the same warnings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "json_help.h"
#include "log.h"
#include "registry/consul_map.h"
#include "registry/decode.h"

#define TAG_PREFIX "weft.io/"
#define TAG_VIP "weft.io/vip="
#define TAG_PORT "weft.io/port="

/* What the catalog's tags say. */
struct svc_tags {
	const char *vip;		/* "IP[,IP]" or NULL */
	char port_name[64];		/* "" = unnamed */
	uint16_t port;			/* 0 = from the instances */
	json_object *annotations;	/* weft.io/KEY → VALUE, owned */
};

/* Instances of one (family, port): one EndpointSlice's worth. */
struct group {
	int family;
	uint16_t port;
	json_object *endpoints;		/* owned until attached */
	size_t n;
};

static int parse_tags(json_object *tags, struct svc_tags *t, char *err, size_t errlen)
{
	size_t n = json_object_is_type(tags, json_type_array) ? json_object_array_length(tags) : 0;

	t->annotations = json_object_new_object();
	if (!t->annotations)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(tags, i);
		const char *s = json_object_get_string(v), *eq;

		if (!json_object_is_type(v, json_type_string) || strncmp(s, TAG_PREFIX, 8))
			continue;
		eq = strchr(s, '=');
		if (!eq)
			continue;
		if (!strncmp(s, TAG_VIP, strlen(TAG_VIP))) {
			t->vip = eq + 1;
		} else if (!strncmp(s, TAG_PORT, strlen(TAG_PORT))) {
			const char *p = eq + 1, *colon = strchr(p, ':');
			char *end;
			unsigned long v;

			if (colon) {
				snprintf(t->port_name, sizeof(t->port_name), "%.*s",
					 (int)(colon - p), p);
				p = colon + 1;
			}
			v = strtoul(p, &end, 10);
			if (!*p || *end || v == 0 || v > 65535) {
				snprintf(err, errlen, "tag '%s': the port must be 1..65535", s);
				return -EINVAL;
			}
			t->port = (uint16_t)v;
		} else {
			char key[256];

			snprintf(key, sizeof(key), "%.*s", (int)(eq - s), s);
			if (json_add_str(t->annotations, key, eq + 1))
				return -ENOMEM;
		}
	}
	return 0;
}

/* One instance: its address and port, or -EINVAL with why in @why. */
static int instance(json_object *e, struct addr *ip, uint16_t *port, const char **id,
		    char *why, size_t len)
{
	json_object *svc = json_member(e, "Service"), *p;
	const char *a;
	int64_t v;

	*id = json_member_str(svc, "ID");
	if (!json_object_is_type(e, json_type_object) || !svc || !*id) {
		snprintf(why, len, "not an entry with a Service.ID");
		return -EINVAL;
	}
	p = json_member(svc, "Port");
	v = json_object_is_type(p, json_type_int) ? json_object_get_int64(p) : -1;
	if (v < 1 || v > 65535) {
		snprintf(why, len, "Service.Port must be an integer in 1..65535");
		return -EINVAL;
	}
	*port = (uint16_t)v;
	/* An empty Service.Address means the node's (Consul's documented rule). */
	a = json_member_str(svc, "Address");
	if (!a || !a[0])
		a = json_member_str(json_member(e, "Node"), "Address");
	if (!a || addr_parse_ip(a, ip)) {
		snprintf(why, len, "address '%s' is not an IP address", a ? a : "");
		return -EINVAL;
	}
	return 0;
}

static struct group *group_of(struct group *g, size_t *n, int family, uint16_t port)
{
	for (size_t i = 0; i < *n; i++)
		if (g[i].family == family && g[i].port == port)
			return &g[i];
	if (*n == CONSUL_MAP_SLICES_MAX)
		return NULL;
	g[*n] = (struct group){ .family = family, .port = port,
				.endpoints = json_object_new_array() };
	return g[*n].endpoints ? &g[(*n)++] : NULL;
}

static int add_instance(struct group *g, const struct addr *ip)
{
	json_object *ep = json_object_new_object(), *addrs = json_object_new_array();
	json_object *cond = json_object_new_object();
	char buf[64];

	/* Passing instances only are asked for: every one is ready. */
	return json_add(ep, "addresses", addrs) | json_add(ep, "conditions", cond) |
	       json_append(addrs, json_object_new_string(addr_fmt_ip(ip, buf, sizeof(buf)))) |
	       json_add(cond, "ready", json_object_new_boolean(1)) | json_append(g->endpoints, ep);
}

static int decode(json_object *o, struct obj **out, char *err, size_t errlen)
{
	int ret;

	if (!o)
		return -ENOMEM;
	ret = reg_decode(o, out, err, errlen);
	json_object_put(o);
	return ret;
}

static json_object *meta(const char *ns, const char *name)
{
	json_object *m = json_object_new_object();

	if (json_add_str(m, "name", name) | json_add_str(m, "namespace", ns)) {
		json_object_put(m);
		return NULL;
	}
	return m;
}

static int map_service(const char *ns, const char *name, struct svc_tags *t, uint16_t port,
		       uint16_t target, struct obj **out, char *err, size_t errlen)
{
	json_object *o = json_object_new_object(), *m = meta(ns, name);
	json_object *spec = json_object_new_object(), *ips = json_object_new_array();
	json_object *ports = json_object_new_array(), *p = json_object_new_object();
	char vips[128], *save = NULL;
	int ret;

	ret = json_add_str(o, "apiVersion", "v1") | json_add_str(o, "kind", "Service") |
	      json_add(o, "metadata", m) | json_add(o, "spec", spec);
	if (!ret) {
		ret = json_add(m, "annotations", t->annotations);
		t->annotations = NULL;
	}
	snprintf(vips, sizeof(vips), "%s", t->vip ? t->vip : "");
	for (char *v = strtok_r(vips, ",", &save); v && !ret; v = strtok_r(NULL, ",", &save))
		ret = json_append(ips, json_object_new_string(v));
	if (!ret && json_object_array_length(ips))
		ret = json_add(spec, "clusterIP", json_object_get(json_object_array_get_idx(ips, 0)));
	ret |= json_add(spec, "clusterIPs", ips) | json_add(spec, "ports", ports) |
	       json_add(p, "port", json_object_new_int(port)) |
	       json_add(p, "targetPort", json_object_new_int(target)) |
	       (t->port_name[0] ? json_add_str(p, "name", t->port_name) : 0) | json_append(ports, p);
	if (ret) {
		json_object_put(o);
		return -ENOMEM;
	}
	return decode(o, out, err, errlen);
}

static int map_slice(const char *ns, const char *name, const struct svc_tags *t,
		     struct group *g, struct obj **out, char *err, size_t errlen)
{
	char sname[OBJ_NAME_MAX];
	json_object *o = json_object_new_object(), *m, *labels = json_object_new_object();
	json_object *ports = json_object_new_array(), *p = json_object_new_object();
	int ret;

	/* Named for what groups its instances, so the same instances keep the
	 * same object across answers.
	 */
	snprintf(sname, sizeof(sname), "%s-consul-%u%s", name, g->port,
		 g->family == AF_INET6 ? "-v6" : "");
	m = meta(ns, sname);
	ret = json_add_str(o, "apiVersion", "discovery.k8s.io/v1") |
	      json_add_str(o, "kind", "EndpointSlice") | json_add(o, "metadata", m) |
	      json_add_str(o, "addressType", g->family == AF_INET6 ? "IPv6" : "IPv4") |
	      json_add(o, "endpoints", g->endpoints) | json_add(o, "ports", ports) |
	      json_add(m, "labels", labels) |
	      json_add_str(labels, "kubernetes.io/service-name", name) |
	      json_add(p, "port", json_object_new_int(g->port)) |
	      (t->port_name[0] ? json_add_str(p, "name", t->port_name) : 0) | json_append(ports, p);
	g->endpoints = NULL;
	if (ret) {
		json_object_put(o);
		return -ENOMEM;
	}
	return decode(o, out, err, errlen);
}

int consul_map_service(const char *source, const char *ns, const char *name, json_object *tags,
		       json_object *health, uint16_t *last_port, struct consul_objs *out,
		       char *err, size_t errlen)
{
	struct svc_tags t = { 0 };
	struct group g[CONSUL_MAP_SLICES_MAX];
	size_t n_g = 0, n = 0;
	uint16_t lowest = 0, port;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_tags(tags, &t, err, errlen);
	if (ret)
		goto out;
	/* Without a weft.io/vip tag the Service has no cluster IP and the
	 * catalogue allocates one from --vip-range (docs/dns.md).
	 */
	if (health)
		n = json_object_array_length(health);
	for (size_t i = 0; i < n && !ret; i++) {
		json_object *e = json_object_array_get_idx(health, i);
		struct addr ip;
		const char *id;
		char why[128];
		uint16_t p = 0;
		struct group *gr;

		if (instance(e, &ip, &p, &id, why, sizeof(why))) {
			log_warn("registry: %s: service %s: instance %s: %s, left out", source, name,
				 id ? id : "?", why);
			out->rejected++;
			continue;
		}
		gr = group_of(g, &n_g, ip.family, p);
		if (!gr) {
			log_warn("registry: %s: service %s: instance %s: more than %d distinct "
				 "ports, left out",
				 source, name, id, CONSUL_MAP_SLICES_MAX);
			out->rejected++;
			continue;
		}
		if (gr->n == OBJ_SLICE_ENDPOINTS_MAX) {
			log_warn("registry: %s: service %s: instance %s: more than %d instances on "
				 "port %u, left out",
				 source, name, id, OBJ_SLICE_ENDPOINTS_MAX, p);
			out->rejected++;
			continue;
		}
		ret = add_instance(gr, &ip);
		gr->n++;
		if (!lowest || p < lowest)
			lowest = p;
	}
	if (ret)
		goto out;
	port = t.port ? t.port : lowest ? lowest : *last_port;
	if (!port) {
		snprintf(err, errlen, "no weft.io/port=PORT tag and no healthy instance to take "
			 "the port from");
		ret = -ENOENT;
		goto out;
	}
	*last_port = port;
	ret = map_service(ns, name, &t, port, lowest ? lowest : port, &out->svc, err, errlen);
	for (size_t i = 0; i < n_g && !ret; i++) {
		ret = map_slice(ns, name, &t, &g[i], &out->slices[i], err, errlen);
		if (!ret)
			out->n_slices++;
	}
out:
	for (size_t i = 0; i < n_g; i++)
		json_object_put(g[i].endpoints);
	json_object_put(t.annotations);
	if (ret)
		consul_objs_free(out);
	return ret;
}

void consul_objs_free(struct consul_objs *o)
{
	obj_free(o->svc);
	for (size_t i = 0; i < o->n_slices; i++)
		obj_free(o->slices[i]);
	o->svc = NULL;
	o->n_slices = 0;
}
