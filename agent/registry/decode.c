// SPDX-License-Identifier: GPL-2.0-only
/* json-c object -> struct obj, for every registry backend: what each
 * kind means to the mesh. Validates as much as the API server would for the
 * fields the mesh reads, ignores the rest, and names the object and the
 * field in every error (through registry/decode_field.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model/policy.h"
#include "opt.h"
#include "registry/decode.h"
#include "spiffe.h"
#include "registry/decode_field.h"

#define LABEL_MESH "weft.io/mesh"
#define ANNOT_EXCL_PORTS "weft.io/exclude-outbound-ports"
#define ANNOT_EXCL_IN_PORTS "weft.io/exclude-inbound-ports"
#define ANNOT_EXCL_CIDRS "weft.io/exclude-outbound-cidrs"
#define ANNOT_REGISTER "weft.io/register"
#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define ANNOT_PREFIX "weft.io/"
#define MTLS_MODE "weft.io/mtls-mode"

/* weft.io/mtls-mode, a label or an annotation (the annotation wins when
 * both are set): "permissive" or "strict"; absent leaves the agent's
 * default. Anything else rejects the Namespace: a typo must not silently
 * turn strict into permissive.
 */
static int decode_mtls_mode(struct dec *d, json_object *meta, enum obj_mtls_mode *out)
{
	static const char *const maps[] = { "labels", "annotations" };
	char v[OBJ_ANNOT_VALUE_MAX];
	int err;

	*out = OBJ_MTLS_UNSET;
	for (size_t i = 0; i < 2; i++) {
		err = dec_get_meta_string(d, meta, maps[i], MTLS_MODE, DEC_ANY, v, sizeof(v));
		if (err)
			return err;
		if (!v[0])
			continue;
		if (!strcmp(v, "permissive")) {
			*out = OBJ_MTLS_PERMISSIVE;
		} else if (!strcmp(v, "strict")) {
			*out = OBJ_MTLS_STRICT;
		} else {
			size_t old = dec_path_key(d, "metadata");

			dec_path_key(d, maps[i]);
			dec_path_key(d, MTLS_MODE);
			err = dec_fail(d, "must be permissive or strict, got \"%s\"", v);
			dec_path_pop(d, old);
			return err;
		}
	}
	return 0;
}

/* weft.io/allow-from of @meta's annotations into @out (OBJ_ANNOT_VALUE_MAX),
 * each pattern checked: a bad one rejects the object, since an authorization
 * rule silently dropped would let everyone in.
 */
static int decode_allow_from(struct dec *d, json_object *meta, char *out)
{
	struct spiffe_allow allow[SPIFFE_ALLOW_MAX];
	char bad[OBJ_ANNOT_VALUE_MAX];
	size_t old;
	int n, err;

	err = dec_get_meta_string(d, meta, "annotations", OBJ_ALLOW_FROM, DEC_ANY, out,
				  OBJ_ANNOT_VALUE_MAX);
	if (err || !out[0])
		return err;
	n = spiffe_allow_parse(out, allow, SPIFFE_ALLOW_MAX, bad, sizeof(bad));
	if (n > 0)
		return 0;
	old = dec_path_key(d, "metadata");
	dec_path_key(d, "annotations");
	dec_path_key(d, OBJ_ALLOW_FROM);
	if (n == -E2BIG)
		err = dec_fail(d, "more than %d identities", SPIFFE_ALLOW_MAX);
	else if (n == 0)
		err = dec_fail(d, "names no identity (remove it to allow everyone)");
	else
		err = dec_fail(d, "\"%s\" is not NAMESPACE/sa/ACCOUNT or NAMESPACE/*", bad);
	dec_path_pop(d, old);
	return err;
}

/* A Service's weft.io/allow-from, stored only when it has one. */
static int decode_service_allow_from(struct dec *d, json_object *meta, struct obj_service *svc)
{
	char buf[OBJ_ANNOT_VALUE_MAX];
	int err = decode_allow_from(d, meta, buf);

	if (err || !buf[0])
		return err;
	svc->allow_from = strdup(buf);
	return svc->allow_from ? 0 : -ENOMEM;
}

/* The yes/no annotations of Namespaces and Pods (enum obj_switch), by name. */
static const char *const switch_annots[OBJ_SW_COUNT] = {
	[OBJ_SW_DENY_RAW] = "weft.io/deny-raw-sockets",
	[OBJ_SW_FAIL_OPEN] = "weft.io/fail-open",
	[OBJ_SW_DNS_CAPTURE] = "weft.io/dns-capture",
};

/* Every yes/no annotation of a Namespace or a Pod into @out: "true",
 * "false" or absent; anything else rejects the object (its previous
 * version, if any, stays in force), as a bad exclusion list does: a typo
 * must not silently pick a side.
 */
static int decode_switches(struct dec *d, json_object *meta, enum obj_tristate *out)
{
	char val[OBJ_ANNOT_VALUE_MAX];
	int err;

	for (size_t i = 0; i < OBJ_SW_COUNT; i++) {
		err = dec_get_meta_string(d, meta, "annotations", switch_annots[i], DEC_ANY, val,
					  sizeof(val));
		if (err)
			return err;
		if (!val[0])
			out[i] = OBJ_UNSET;
		else if (!strcmp(val, "true"))
			out[i] = OBJ_YES;
		else if (!strcmp(val, "false"))
			out[i] = OBJ_NO;
		else
			return dec_fail(d, "metadata.annotations[\"%s\"]: '%s' is neither \"true\" "
					"nor \"false\"", switch_annots[i], val);
	}
	return 0;
}

static int decode_namespace(struct dec *d, json_object *o, json_object *meta, struct obj *obj)
{
	char mesh[OBJ_ANNOT_VALUE_MAX];
	int err;

	(void)o;
	err = dec_get_meta_string(d, meta, "labels", LABEL_MESH, DEC_ANY, mesh, sizeof(mesh));
	if (err)
		return err;
	obj->nspace.meshed = !strcmp(mesh, "enabled");
	err = decode_mtls_mode(d, meta, &obj->nspace.mtls_mode);
	if (!err)
		err = decode_allow_from(d, meta, obj->nspace.allow_from);
	return err ? err : decode_switches(d, meta, obj->nspace.sw);
}

/* spec.clusterIPs (or spec.clusterIP alone): the VIPs; "None" or "" = headless. */
static int decode_cluster_ips(struct dec *d, json_object *spec, struct obj_service *svc)
{
	char single[ADDR_STRLEN];
	struct addr single_addr = { 0 };
	json_object *arr;
	size_t n, old;
	int err;

	err = dec_get_string(d, spec, "clusterIP", false, DEC_ANY, single, sizeof(single));
	if (err)
		return err;
	svc->headless = !strcmp(single, "None");
	if (single[0] && !svc->headless) {
		json_object *v = dec_member(spec, "clusterIP");

		old = dec_path_key(d, "clusterIP");
		err = dec_take_ip(d, v, 0, &single_addr);
		dec_path_pop(d, old);
		if (err)
			return err;
	}
	err = dec_get_array(d, spec, "clusterIPs", OBJ_SVC_IPS_MAX, &arr, &n);
	if (err)
		return err;
	if (n == 0) {
		if (single_addr.family)
			svc->vips[svc->n_vips++] = single_addr;
		return 0;
	}
	old = dec_path_key(d, "clusterIPs");
	for (size_t i = 0; i < n && !err; i++) {
		json_object *v = json_object_array_get_idx(arr, i);
		const char *s = json_object_get_string(v);
		size_t old_i = dec_path_idx(d, i);
		struct addr a;

		if (json_object_is_type(v, json_type_string) && (!strcmp(s, "None") || !s[0])) {
			if (n > 1)
				err = dec_fail(d, "\"None\" must be the only entry");
			svc->headless = !strcmp(s, "None");
		} else if (!(err = dec_take_ip(d, v, 0, &a))) {
			if (i == 1 && svc->n_vips == 1 && svc->vips[0].family == a.family)
				err = dec_fail(d, "must not repeat the family of clusterIPs[0]");
			else
				svc->vips[svc->n_vips++] = a;
		}
		/* The API server keeps clusterIP == clusterIPs[0]; a manifest that
		 * disagrees with itself is a mistake worth reporting.
		 */
		if (!err && i == 0 && single[0]) {
			bool headless = svc->n_vips == 0;
			bool same = headless ? !strcmp(single, "None")
					     : addr_ip_equal(&svc->vips[0], &single_addr);

			if (!same)
				err = dec_fail(d, "must equal spec.clusterIP \"%s\"", single);
		}
		dec_path_pop(d, old_i);
	}
	dec_path_pop(d, old);
	return err;
}

static int decode_svc_port(struct dec *d, json_object *p, size_t n_ports, struct obj_svc_port *out)
{
	char shown[DEC_SHOW_BUF];
	json_object *tp;
	size_t old;
	int err;

	if (!json_object_is_type(p, json_type_object))
		return dec_fail(d, "must be an object, got %s", dec_show(p, shown, sizeof(shown)));
	err = dec_get_string(d, p, "name", false, DEC_LABEL, out->name, sizeof(out->name));
	if (!err && !out->name[0] && n_ports > 1) {
		old = dec_path_key(d, "name");
		err = dec_fail(d, "required when the Service has more than one port");
		dec_path_pop(d, old);
	}
	if (!err)
		err = dec_get_proto(d, p, &out->proto);
	if (!err)
		err = dec_get_port(d, p, "port", true, &out->port);
	if (err)
		return err;
	tp = dec_member(p, "targetPort");
	out->target_port = out->port;	/* the API default */
	if (!tp)
		return 0;
	old = dec_path_key(d, "targetPort");
	if (json_object_is_type(tp, json_type_string)) {
		out->target_port = 0;
		err = dec_take_string(d, tp, DEC_IANA, out->target_port_name,
				  sizeof(out->target_port_name));
	} else if (!json_object_is_type(tp, json_type_int)) {
		err = dec_fail(d, "must be an integer in 1..65535 or a port name, got %s",
			   dec_show(tp, shown, sizeof(shown)));
	} else {
		err = dec_take_port(d, tp, &out->target_port);
	}
	dec_path_pop(d, old);
	return err;
}

static int decode_svc_ports(struct dec *d, json_object *spec, struct obj_service *svc)
{
	json_object *arr;
	size_t n, old;
	int err;

	err = dec_get_array(d, spec, "ports", OBJ_SVC_PORTS_MAX, &arr, &n);
	if (err || n == 0)
		return err;
	svc->ports = calloc(n, sizeof(*svc->ports));
	if (!svc->ports)
		return -ENOMEM;
	old = dec_path_key(d, "ports");
	for (size_t i = 0; i < n && !err; i++) {
		struct obj_svc_port *p = &svc->ports[i];
		size_t old_i = dec_path_idx(d, i);

		err = decode_svc_port(d, json_object_array_get_idx(arr, i), n, p);
		for (size_t j = 0; j < i && !err; j++) {
			const struct obj_svc_port *q = &svc->ports[j];

			if (p->name[0] && !strcmp(p->name, q->name))
				err = dec_fail(d, "duplicate port name '%s'", p->name);
			else if (p->port == q->port && p->proto == q->proto)
				err = dec_fail(d, "duplicate port %u/%s", p->port,
					   obj_proto_name(p->proto));
		}
		svc->n_ports = i + 1;
		dec_path_pop(d, old_i);
	}
	dec_path_pop(d, old);
	return err;
}

/* The weft.io/ annotations of a Service: its resilience settings, decoded
 * here once into a typed override. An unknown key or an invalid value is
 * logged (naming the Service, the annotation and the value) and left out, so
 * that setting keeps the default; the Service itself is accepted.
 */
static int decode_svc_annotations(struct dec *d, json_object *meta, const struct obj_key *key,
				  struct obj_service *svc)
{
	size_t old = dec_path_key(d, "metadata");
	size_t prefix = strlen(ANNOT_PREFIX);
	struct policy_override o = { 0 };
	char why[OBJ_ANNOT_VALUE_MAX + 160];
	json_object *m;
	int err;

	err = dec_get_object(d, meta, "annotations", false, &m);
	if (err || !m)
		goto out;
	dec_path_key(d, "annotations");
	/* Twice: a value that is no string rejects the Service before any
	 * warning about the others is logged.
	 */
	for (int pass = 0; pass < 2; pass++) {
		json_object_object_foreach(m, k, val) {
			char value[OBJ_ANNOT_VALUE_MAX];
			size_t old_k;

			if (strncmp(k, ANNOT_PREFIX, prefix) || !strcmp(k, OBJ_ALLOW_FROM))
				continue;
			old_k = dec_path_key(d, k);
			err = dec_take_string(d, val, DEC_ANY, value, sizeof(value));
			dec_path_pop(d, old_k);
			if (err)
				goto out;
			/* A bad setting must not cost the Service: it keeps the
			 * default, and the reason is said once, here, whatever
			 * the number of workers that will use the policy.
			 */
			if (pass && policy_override_annotation(&o, k, value, why, sizeof(why)))
				log_warn("registry: service %s/%s: %s, ignoring", key->ns, key->name,
					 why);
		}
	}
	if (o.set) {
		svc->policy = malloc(sizeof(*svc->policy));
		if (!svc->policy)
			err = -ENOMEM;
		else
			*svc->policy = o;
	}
out:
	dec_path_pop(d, old);
	return err;
}

static int decode_service(struct dec *d, json_object *o, json_object *meta, struct obj *obj)
{
	json_object *spec;
	size_t old;
	int err;

	err = dec_get_object(d, o, "spec", true, &spec);
	if (err)
		return err;
	old = dec_path_key(d, "spec");
	err = decode_cluster_ips(d, spec, &obj->svc);
	if (!err)
		err = decode_svc_ports(d, spec, &obj->svc);
	dec_path_pop(d, old);
	if (!err)
		err = decode_svc_annotations(d, meta, &obj->key, &obj->svc);
	if (!err)
		err = decode_service_allow_from(d, meta, &obj->svc);
	return err;
}

/* An endpoint's node and zone point into @e until the slice packs them
 * (obj_slice_pack(), before @e is freed).
 */
static int decode_endpoint(struct dec *d, json_object *e, int family, struct obj_endpoint *out)
{
	char shown[DEC_SHOW_BUF];
	json_object *arr, *cond, *ready;
	size_t n, old;
	int err;

	if (!json_object_is_type(e, json_type_object))
		return dec_fail(d, "must be an object, got %s", dec_show(e, shown, sizeof(shown)));
	out->ready = true;
	err = dec_get_array(d, e, "addresses", OBJ_EP_ADDRS_MAX, &arr, &n);
	if (err)
		return err;
	old = dec_path_key(d, "addresses");
	if (n == 0)
		err = dec_fail(d, "must have at least one address");
	if (!err) {
		out->addrs = calloc(n, sizeof(*out->addrs));
		if (!out->addrs)
			err = -ENOMEM;
	}
	for (size_t i = 0; i < n && !err; i++) {
		size_t old_i = dec_path_idx(d, i);

		err = dec_take_ip(d, json_object_array_get_idx(arr, i), family, &out->addrs[i]);
		out->n_addrs = i + 1;
		dec_path_pop(d, old_i);
	}
	dec_path_pop(d, old);
	if (!err)
		err = dec_get_object(d, e, "conditions", false, &cond);
	if (err)
		return err;
	/* The API documents a nil ready as "unknown", to be treated as ready. */
	ready = dec_member(cond, "ready");
	if (ready) {
		old = dec_path_key(d, "conditions");
		dec_path_key(d, "ready");
		if (!json_object_is_type(ready, json_type_boolean))
			err = dec_fail(d, "must be true or false, got %s",
				   dec_show(ready, shown, sizeof(shown)));
		else
			out->ready = json_object_get_boolean(ready);
		dec_path_pop(d, old);
	}
	if (!err)
		err = dec_get_string_ref(d, e, "nodeName", DEC_SUBDOMAIN, OBJ_NAME_MAX, &out->node);
	if (!err)
		err = dec_get_string_ref(d, e, "zone", DEC_ANY, OBJ_ZONE_MAX, &out->zone);
	return err;
}

static int decode_slice_endpoints(struct dec *d, json_object *o, struct obj_slice *s)
{
	json_object *arr;
	size_t n, old;
	int err;

	err = dec_get_array(d, o, "endpoints", OBJ_SLICE_ENDPOINTS_MAX, &arr, &n);
	if (err || n == 0)
		return err;
	s->endpoints = calloc(n, sizeof(*s->endpoints));
	if (!s->endpoints)
		return -ENOMEM;
	old = dec_path_key(d, "endpoints");
	for (size_t i = 0; i < n && !err; i++) {
		size_t old_i = dec_path_idx(d, i);

		s->endpoints[i].node = s->endpoints[i].zone = "";
		err = decode_endpoint(d, json_object_array_get_idx(arr, i), s->family,
				      &s->endpoints[i]);
		s->n_endpoints = i + 1;
		dec_path_pop(d, old_i);
	}
	dec_path_pop(d, old);
	if (!err)
		err = obj_slice_pack(s);
	/* A failed slice is freed, never read: no endpoint may point into @o. */
	for (size_t i = 0; err && i < s->n_endpoints; i++)
		s->endpoints[i].node = s->endpoints[i].zone = "";
	return err;
}

static int decode_slice_ports(struct dec *d, json_object *o, struct obj_slice *s)
{
	char shown[DEC_SHOW_BUF];
	json_object *arr;
	size_t n, old;
	int err;

	err = dec_get_array(d, o, "ports", OBJ_SLICE_PORTS_MAX, &arr, &n);
	if (err || n == 0)
		return err;
	s->ports = calloc(n, sizeof(*s->ports));
	if (!s->ports)
		return -ENOMEM;
	old = dec_path_key(d, "ports");
	for (size_t i = 0; i < n && !err; i++) {
		json_object *p = json_object_array_get_idx(arr, i);
		struct obj_slice_port *sp = &s->ports[i];
		size_t old_i = dec_path_idx(d, i);

		if (!json_object_is_type(p, json_type_object))
			err = dec_fail(d, "must be an object, got %s",
				       dec_show(p, shown, sizeof(shown)));
		if (!err)
			err = dec_get_string(d, p, "name", false, DEC_LABEL, sp->name,
					 sizeof(sp->name));
		if (!err)
			err = dec_get_proto(d, p, &sp->proto);
		/* An unset port means "not restricted": the consumer decides. */
		if (!err)
			err = dec_get_port(d, p, "port", false, &sp->port);
		s->n_ports = i + 1;
		dec_path_pop(d, old_i);
	}
	dec_path_pop(d, old);
	return err;
}

static int decode_slice(struct dec *d, json_object *o, json_object *meta, struct obj *obj)
{
	struct obj_slice *s = &obj->slice;
	char type[16];
	size_t old;
	int err;

	err = dec_get_meta_string(d, meta, "labels", LABEL_SERVICE_NAME, DEC_DNS1035, s->service,
			      sizeof(s->service));
	if (err)
		return err;
	if (!s->service[0]) {
		old = dec_path_key(d, "metadata");
		dec_path_key(d, "labels");
		dec_path_key(d, LABEL_SERVICE_NAME);
		err = dec_fail(d, "required (the name of the Service this slice belongs to)");
		dec_path_pop(d, old);
		return err;
	}
	err = dec_get_string(d, o, "addressType", true, DEC_ANY, type, sizeof(type));
	if (err)
		return err;
	old = dec_path_key(d, "addressType");
	if (!strcmp(type, "IPv4"))
		s->family = AF_INET;
	else if (!strcmp(type, "IPv6"))
		s->family = AF_INET6;
	else if (!strcmp(type, "FQDN"))
		err = dec_fail(d, "FQDN slices are not supported (only IPv4 and IPv6)");
	else
		err = dec_fail(d, "must be IPv4 or IPv6, got \"%s\"", type);
	dec_path_pop(d, old);
	if (!err)
		err = decode_slice_endpoints(d, o, s);
	if (!err)
		err = decode_slice_ports(d, o, s);
	return err;
}

static int decode_pod_ips(struct dec *d, json_object *status, struct obj_pod *pod)
{
	json_object *arr, *single;
	size_t n, old;
	int err;

	err = dec_get_array(d, status, "podIPs", OBJ_POD_IPS_MAX, &arr, &n);
	if (err)
		return err;
	old = dec_path_key(d, "podIPs");
	for (size_t i = 0; i < n && !err; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		json_object *ip = dec_member(e, "ip");
		size_t old_i = dec_path_idx(d, i);

		dec_path_key(d, "ip");
		if (!ip)
			err = dec_fail(d, "required");
		else
			err = dec_take_ip(d, ip, 0, &pod->ips[i]);
		pod->n_ips = i + 1;
		dec_path_pop(d, old_i);
	}
	dec_path_pop(d, old);
	single = dec_member(status, "podIP");
	if (err || n || !single)
		return err;
	old = dec_path_key(d, "podIP");
	err = dec_take_ip(d, single, 0, &pod->ips[0]);
	pod->n_ips = err ? 0 : 1;
	dec_path_pop(d, old);
	return err;
}

/* Port list annotation @key ("5432,6379", at most OBJ_EXCL_PORTS_MAX) into
 * @ports / *@n.
 */
static int decode_port_list(struct dec *d, json_object *meta, const char *key, uint16_t *ports,
			    size_t *n_out)
{
	char val[OBJ_ANNOT_VALUE_MAX], bad[64];
	int err, n;

	err = dec_get_meta_string(d, meta, "annotations", key, DEC_ANY, val, sizeof(val));
	if (err)
		return err;
	n = addr_parse_port_list(val, ports, OBJ_EXCL_PORTS_MAX, bad, sizeof(bad));
	if (n == -E2BIG)
		return dec_fail(d, "metadata.annotations[\"%s\"]: more than %d ports", key,
				OBJ_EXCL_PORTS_MAX);
	if (n < 0)
		return dec_fail(d, "metadata.annotations[\"%s\"]: '%s' is not a port (1..65535)",
				key, bad);
	*n_out = (size_t)n;
	return 0;
}

/* The pod's capture exclusions; a bad list rejects the Pod (its previous
 * version, if any, stays in force).
 */
static int decode_pod_exclusions(struct dec *d, json_object *meta, struct obj_pod *pod)
{
	char val[OBJ_ANNOT_VALUE_MAX], bad[64];
	int err, n;

	err = decode_port_list(d, meta, ANNOT_EXCL_PORTS, pod->excl_ports, &pod->n_excl_ports);
	if (err)
		return err;
	err = decode_port_list(d, meta, ANNOT_EXCL_IN_PORTS, pod->excl_in_ports,
			       &pod->n_excl_in_ports);
	if (err)
		return err;
	err = dec_get_meta_string(d, meta, "annotations", ANNOT_EXCL_CIDRS, DEC_ANY, val,
				  sizeof(val));
	if (err)
		return err;
	n = addr_parse_cidr_list(val, pod->excl_cidrs, OBJ_EXCL_CIDRS_MAX, bad, sizeof(bad));
	if (n == -E2BIG)
		return dec_fail(d, "metadata.annotations[\"%s\"]: more than %d CIDRs",
				ANNOT_EXCL_CIDRS, OBJ_EXCL_CIDRS_MAX);
	if (n < 0)
		return dec_fail(d, "metadata.annotations[\"%s\"]: '%s' is not a CIDR (IP/LEN)",
				ANNOT_EXCL_CIDRS, bad);
	pod->n_excl_cidrs = (size_t)n;
	return 0;
}

/* weft.io/register: "SERVICE:PORT[,SERVICE:PORT...]" (commas and/or spaces),
 * what this node's agent registers the pod as (agent/selfreg.c). A bad
 * entry rejects the Pod, as a bad exclusion list does.
 */
static int decode_pod_register(struct dec *d, json_object *meta, struct obj_pod *pod)
{
	char val[OBJ_ANNOT_VALUE_MAX], *item, *save = NULL;
	int err;

	err = dec_get_meta_string(d, meta, "annotations", ANNOT_REGISTER, DEC_ANY, val,
				  sizeof(val));
	if (err)
		return err;
	for (item = strtok_r(val, ", \t", &save); item; item = strtok_r(NULL, ", \t", &save)) {
		struct obj_pod_register *r = &pod->registers[pod->n_registers];
		char *colon = strrchr(item, ':');
		size_t n = colon ? (size_t)(colon - item) : 0;

		if (pod->n_registers == OBJ_REGISTER_MAX)
			return dec_fail(d, "metadata.annotations[\"%s\"]: more than %d entries",
					ANNOT_REGISTER, OBJ_REGISTER_MAX);
		if (!colon || n >= sizeof(r->service) || !dec_str_ok(item, n, DEC_DNS1035) ||
		    opt_parse_u16(colon + 1, &r->port))
			return dec_fail(d, "metadata.annotations[\"%s\"]: '%s' is not SERVICE:PORT",
					ANNOT_REGISTER, item);
		memcpy(r->service, item, n);
		r->service[n] = '\0';
		pod->n_registers++;
	}
	return 0;
}

/* spec.hostNetwork: such a pod shares the node's netns and is never meshed. */
static int decode_host_network(struct dec *d, json_object *spec, struct obj_pod *pod)
{
	json_object *v = dec_member(spec, "hostNetwork");
	char shown[64];
	size_t old;
	int err = 0;

	if (!v)
		return 0;
	old = dec_path_key(d, "hostNetwork");
	if (!json_object_is_type(v, json_type_boolean))
		err = dec_fail(d, "must be true or false, got %s",
			       dec_show(v, shown, sizeof(shown)));
	else
		pod->host_network = json_object_get_boolean(v);
	dec_path_pop(d, old);
	return err;
}

/* status.phase; an unknown value is kept as UNKNOWN rather than rejecting
 * the Pod, whose annotations still count (a newer API server may add one).
 */
static int decode_pod_phase(struct dec *d, json_object *status, struct obj_pod *pod)
{
	static const char *const names[] = {
		[OBJ_POD_PENDING] = "Pending",
		[OBJ_POD_RUNNING] = "Running",
		[OBJ_POD_SUCCEEDED] = "Succeeded",
		[OBJ_POD_FAILED] = "Failed",
	};
	json_object *v = dec_member(status, "phase");
	const char *phase = "";

	if (v && json_object_is_type(v, json_type_string))
		phase = json_object_get_string(v);

	(void)d;
	pod->phase = OBJ_POD_PHASE_UNKNOWN;
	for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(phase, names[i]))
			pod->phase = (enum obj_pod_phase)i;
	return 0;
}

static int decode_pod(struct dec *d, json_object *o, json_object *meta, struct obj *obj)
{
	struct obj_pod *pod = &obj->pod;
	char mesh[OBJ_ANNOT_VALUE_MAX];
	json_object *spec, *status;
	size_t old;
	int err;

	err = dec_get_meta_string(d, meta, "annotations", LABEL_MESH, DEC_ANY, mesh, sizeof(mesh));
	if (err)
		return err;
	pod->opted_out = !strcmp(mesh, "disabled");
	/* Its value (a time) does not matter: the pod is on its way out. */
	pod->terminating = dec_member(meta, "deletionTimestamp") != NULL;
	err = decode_pod_exclusions(d, meta, pod);
	if (!err)
		err = decode_pod_register(d, meta, pod);
	if (!err)
		err = decode_switches(d, meta, pod->sw);
	if (err)
		return err;
	err = dec_get_object(d, o, "spec", false, &spec);
	if (!err && spec) {
		old = dec_path_key(d, "spec");
		err = dec_get_string(d, spec, "nodeName", false, DEC_SUBDOMAIN, pod->node,
				 sizeof(pod->node));
		if (!err)
			err = dec_get_string(d, spec, "serviceAccountName", false, DEC_SUBDOMAIN,
					     pod->service_account, sizeof(pod->service_account));
		if (!err)
			err = decode_host_network(d, spec, pod);
		dec_path_pop(d, old);
	}
	/* The API server fills in "default"; manifests and other registries
	 * may leave it out and mean the same.
	 */
	if (!err && !pod->service_account[0])
		snprintf(pod->service_account, sizeof(pod->service_account), "%s",
			 OBJ_DEFAULT_SERVICE_ACCOUNT);
	if (!err)
		err = dec_get_object(d, o, "status", false, &status);
	if (!err && status) {
		old = dec_path_key(d, "status");
		err = decode_pod_ips(d, status, pod);
		if (!err)
			err = decode_pod_phase(d, status, pod);
		dec_path_pop(d, old);
	}
	return err;
}

typedef int (*decode_fn)(struct dec *d, json_object *o, json_object *meta, struct obj *obj);

static const struct kind_desc {
	const char *kind;
	const char *api_version;
	enum obj_kind obj_kind;
	bool namespaced;
	enum dec_check name_check;
	decode_fn decode;
} kinds[] = {
	{ "Namespace", "v1", OBJ_NAMESPACE, false, DEC_LABEL, decode_namespace },
	{ "Service", "v1", OBJ_SERVICE, true, DEC_DNS1035, decode_service },
	{ "EndpointSlice", "discovery.k8s.io/v1", OBJ_ENDPOINTSLICE, true, DEC_SUBDOMAIN,
	  decode_slice },
	{ "Pod", "v1", OBJ_POD, true, DEC_SUBDOMAIN, decode_pod },
};

static const struct kind_desc *find_kind(const char *kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i].kind, kind))
			return &kinds[i];
	return NULL;
}

/* The string member @key of @o, else @def (may be NULL). */
static const char *string_or(json_object *o, const char *key, const char *def)
{
	json_object *v = dec_member(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : def;
}

/* "ServiceList" -> "Service" into @buf; "" for a plain "List". */
static const char *list_item_kind(json_object *list, char *buf, size_t len)
{
	const char *k = string_or(list, "kind", "");
	size_t n = strlen(k);

	buf[0] = '\0';
	if (n > 4 && n - 4 < len) {
		memcpy(buf, k, n - 4);
		buf[n - 4] = '\0';
	}
	return buf;
}

/* kind, namespace, name of @o: the shared head of reg_decode() and
 * reg_decode_key(). Fills @key and, via @d, who the object is.
 */
static int decode_head(struct dec *d, json_object *o, const char *def_kind, const char *def_api,
		       const struct kind_desc **desc, struct obj_key *key, json_object **meta)
{
	char shown[DEC_SHOW_BUF];
	const char *kind, *api;
	int err;

	if (!json_object_is_type(o, json_type_object))
		return dec_fail(d, "must be an object, got %s", dec_show(o, shown, sizeof(shown)));
	kind = string_or(o, "kind", def_kind);
	api = string_or(o, "apiVersion", def_api);
	if (!kind || !kind[0])
		return dec_fail(d, "kind: required");
	*desc = find_kind(kind);
	if (!*desc || !api || strcmp(api, (*desc)->api_version)) {
		snprintf(d->err, d->errlen, "unsupported kind '%.64s' (apiVersion '%.64s')", kind,
			 api ? api : "");
		return -EINVAL;
	}
	*key = (struct obj_key){ .kind = (*desc)->obj_kind };
	snprintf(d->who, sizeof(d->who), "%s", kind);
	err = dec_get_object(d, o, "metadata", true, meta);
	if (err)
		return err;
	dec_path_key(d, "metadata");
	err = dec_get_string(d, *meta, "name", true, (*desc)->name_check, key->name,
			 sizeof(key->name));
	if (!err && (*desc)->namespaced) {
		err = dec_get_string(d, *meta, "namespace", false, DEC_LABEL, key->ns,
				 sizeof(key->ns));
		/* What kubectl does with the default context. */
		if (!err && !key->ns[0])
			strcpy(key->ns, "default");
	}
	dec_path_pop(d, 0);
	if (!err)
		obj_key_fmt(key, d->who, sizeof(d->who));
	return err;
}

static int decode_with(json_object *o, const char *def_kind, const char *def_api,
		       struct obj **out, char *errbuf, size_t errlen)
{
	struct dec d = { .err = errbuf, .errlen = errlen, .who = "object" };
	const struct kind_desc *desc = NULL;
	struct obj *obj = NULL;
	struct obj_key key;
	json_object *meta;
	int err;

	*out = NULL;
	err = decode_head(&d, o, def_kind, def_api, &desc, &key, &meta);
	if (err)
		return err;
	obj = obj_new(desc->obj_kind);
	if (!obj)
		return -ENOMEM;
	obj->key = key;
	dec_path_key(&d, "metadata");
	if (desc->obj_kind == OBJ_POD)
		err = dec_get_string(&d, meta, "uid", false, DEC_ANY, obj->pod.uid,
				     sizeof(obj->pod.uid));
	dec_path_pop(&d, 0);
	if (!err)
		err = desc->decode(&d, o, meta, obj);
	if (err) {
		if (err == -ENOMEM)
			snprintf(errbuf, errlen, "%s: out of memory", d.who);
		obj_free(obj);
		return err;
	}
	*out = obj;
	return 0;
}

int reg_decode(json_object *o, struct obj **out, char *err, size_t errlen)
{
	return decode_with(o, NULL, NULL, out, err, errlen);
}

int reg_list_items(json_object *o, json_object **items, char *err, size_t errlen)
{
	const char *kind = string_or(o, "kind", "");
	size_t n = strlen(kind);
	char shown[DEC_SHOW_BUF];
	json_object *v;

	*items = NULL;
	if (n < 4 || strcmp(kind + n - 4, "List"))
		return 0;
	v = dec_member(o, "items");
	if (v && !json_object_is_type(v, json_type_array)) {
		snprintf(err, errlen, "%s: items: must be an array, got %s", kind,
			 dec_show(v, shown, sizeof(shown)));
		return -EINVAL;
	}
	*items = v;
	return 1;
}

int reg_decode_list_item(json_object *list, json_object *item, struct obj **out, char *err,
			 size_t errlen)
{
	char kind[64];

	list_item_kind(list, kind, sizeof(kind));
	return decode_with(item, kind[0] ? kind : NULL, string_or(list, "apiVersion", NULL), out,
			   err, errlen);
}

int reg_decode_key(json_object *list, json_object *o, struct obj_key *key)
{
	const struct kind_desc *desc;
	const char *name, *ns = "";
	char kind[64] = "";
	json_object *meta;

	/* Deliberately lenient (no apiVersion check, no name syntax): a
	 * rejected object is still worth naming in the message.
	 */
	if (list)
		list_item_kind(list, kind, sizeof(kind));
	desc = find_kind(string_or(o, "kind", kind));
	if (!desc)
		return -EINVAL;
	meta = dec_member(o, "metadata");
	name = string_or(meta, "name", "");
	if (desc->namespaced) {
		ns = string_or(meta, "namespace", "");
		if (!ns[0])
			ns = "default";
	}
	if (!name[0] || strlen(name) >= sizeof(key->name) || strlen(ns) >= sizeof(key->ns) ||
	    !dec_str_ok(name, strlen(name), DEC_ANY) || !dec_str_ok(ns, strlen(ns), DEC_ANY))
		return -EINVAL;
	*key = (struct obj_key){ .kind = desc->obj_kind };
	strcpy(key->name, name);
	strcpy(key->ns, ns);
	return 0;
}
