// SPDX-License-Identifier: GPL-2.0-only
/* GET /v1/resolve (docs/admin-api.md, `meshctl resolve`): what the agent's
 * DNS rules (agent/dns/) say about a name, against the catalogue in force.
 * With a namespace, a name that is not fully qualified is tried along the
 * search path a pod of that namespace has, as its stub resolver would; with
 * a pod (NS/NAME), along that pod's, and the answer says whether the pod's
 * queries reach the agent at all (DNS capture, weft.io/dns-capture).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent.h"
#include "cmds.h"
#include "config.h"
#include "dns/dns.h"
#include "http.h"
#include "model/objects.h"
#include "pods.h"
#include "reply.h"

#define RESOLVE_TRIES 4		/* the Kubernetes search path has three suffixes */

static void add_line(const char *line, void *ctx)
{
	json_object_array_add(ctx, json_object_new_string(line));
}

/* Ask the rules about @fqdn/@type; adds one "tries" entry to @tries. Returns
 * 1 when answered, 0 when it would be forwarded, or -errno.
 */
static int try_name(const struct agent *a, const char *fqdn, const char *type,
		    json_object *tries)
{
	json_object *t = json_object_new_object(), *recs = json_object_new_array();
	uint8_t *q = NULL, *r = NULL;
	size_t qlen, rlen;
	int rc = dns_query_new(fqdn, type, &q, &qlen);

	if (!rc)
		rc = dns_answer(a->cat, a->cfg->cluster_domain, q, qlen, true, &r, &rlen);
	if (rc == DNS_ANSWER && dns_records(r, rlen, add_line, recs) < 0)
		rc = -EBADMSG;
	json_object_object_add(t, "name", json_object_new_string(fqdn));
	json_object_object_add(t, "answered", json_object_new_boolean(rc == DNS_ANSWER));
	json_object_object_add(t, "records", recs);
	json_object_array_add(tries, t);
	free(q);
	free(r);
	return rc;
}

int admin_resolve(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { "name", "type", "namespace", "pod", NULL };
	char pod_arg[OBJ_NS_MAX + OBJ_NAME_MAX + 2] = "";
	const struct pod *pod = NULL;
	char name[DNS_DOMAIN_MAX], type[16] = "A", ns[OBJ_NS_MAX] = "";
	char fqdn[RESOLVE_TRIES][DNS_DOMAIN_MAX + OBJ_NS_MAX + 8];
	const struct agent *a = ctx;
	const char *domain = a->cfg->cluster_domain;
	json_object *o, *tries;
	size_t n = 0, len;
	int rc = 0;

	if (admin_bad_query(req, resp, known))
		return 0;
	if (http_query_get(req->query, "name", name, sizeof(name)) <= 0 || !name[0])
		return admin_error(resp, 400, "query parameter 'name' must be a DNS name");
	if (http_query_get(req->query, "type", type, sizeof(type)) < 0)
		return admin_error(resp, 400, "query parameter 'type' must be A, AAAA, SRV, ...");
	if (http_query_get(req->query, "namespace", ns, sizeof(ns)) < 0)
		return admin_error(resp, 400, "query parameter 'namespace' is not a namespace");
	if (http_query_get(req->query, "pod", pod_arg, sizeof(pod_arg)) < 0)
		return admin_error(resp, 400, "query parameter 'pod' must be NAMESPACE/NAME");
	if (pod_arg[0]) {
		char *slash = strchr(pod_arg, '/');

		if (!slash)
			return admin_error(resp, 400, "query parameter 'pod' must be NAMESPACE/NAME");
		*slash = '\0';
		for (pod = pods_first(a->pods); pod; pod = pod->next) {
			if (!strcmp(pod->spec.ns, pod_arg) && !strcmp(pod->spec.name, slash + 1))
				break;
		}
		if (!pod)
			return admin_error(resp, 404, "no pod %s/%s on this node", pod_arg,
					   slash + 1);
		snprintf(ns, sizeof(ns), "%s", pod->spec.ns);
	}
	len = strlen(name);
	/* The search path, then the name itself (ndots 5: any name of fewer
	 * than five dots tries the suffixes first).
	 */
	if (ns[0] && name[len - 1] != '.') {
		snprintf(fqdn[n++], sizeof(fqdn[0]), "%s.%s.svc.%s.", name, ns, domain);
		snprintf(fqdn[n++], sizeof(fqdn[0]), "%s.svc.%s.", name, domain);
		snprintf(fqdn[n++], sizeof(fqdn[0]), "%s.%s.", name, domain);
	}
	snprintf(fqdn[n++], sizeof(fqdn[0]), "%s%s", name, name[len - 1] == '.' ? "" : ".");
	o = json_object_new_object();
	tries = json_object_new_array();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "cluster_domain", json_object_new_string(domain));
	json_object_object_add(o, "tries", tries);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = try_name(a, fqdn[i], type, tries);
	if (rc < 0) {
		json_object_put(o);
		return rc == -EINVAL ? admin_error(resp, 400, "'%s' is not a DNS name, or '%s' not a record type",
						   name, type)
				     : rc;
	}
	if (pod) {
		json_object *po = json_object_new_object();

		json_object_object_add(po, "namespace", json_object_new_string(pod->spec.ns));
		json_object_object_add(po, "name", json_object_new_string(pod->spec.name));
		json_object_object_add(po, "dns_captured",
				       json_object_new_boolean(pods_dns_captured(pod)));
		json_object_object_add(o, "pod", po);
	}
	if (pod && !pods_dns_captured(pod)) {
		/* The rules would answer, but the pod's queries never come here. */
		json_object_object_add(o, "answered", json_object_new_boolean(false));
		json_object_object_add(o, "outcome", json_object_new_string(
			pod->meshed ? "not captured: the pod opts out (weft.io/dns-capture), its "
				      "resolver answers everything"
				    : "not captured: the pod is not meshed, its resolver answers "
				      "everything"));
		return admin_json(resp, o);
	}
	json_object_object_add(o, "answered", json_object_new_boolean(rc == DNS_ANSWER));
	json_object_object_add(o, "outcome",
			       json_object_new_string(rc == DNS_ANSWER ? "answered by the agent"
						      : "forwarded unchanged to the pod's resolver"));
	return admin_json(resp, o);
}
