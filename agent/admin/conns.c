// SPDX-License-Identifier: GPL-2.0-only
/* GET /v1/conns: the live proxied connections, each with its pod, the
 * application's address, where it wanted to go, the endpoint the proxy
 * chose, age, bytes each way and state. Bounded: at most ?limit= entries
 * (ADMIN_CONNS_DEFAULT, at most ADMIN_CONNS_MAX), with "truncated" saying
 * that more matched, so a node with 50,000 connections answers in bounded
 * time and size.
 */
#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "agent.h"
#include "cmds.h"
#include "reply.h"
#include "http.h"
#include "opt.h"
#include "pods.h"
#include "proxy/proxy.h"
#include "proxy/workers.h"
#include "proxy/state.h"
#include "model/objects.h"

struct conns_walk {
	const struct pod *pod;
	const char *svc_ns, *svc_name; /* filter; NULL = any */
	json_object *arr;
	uint32_t limit;
	uint64_t matched;
};

static json_object *addr_json(const struct addr *a)
{
	char buf[ADDR_STRLEN];

	return a->family ? json_object_new_string(addr_fmt(a, buf, sizeof(buf))) : NULL;
}

static int add_conn(const struct proxy_conn_info *ci, void *ctx)
{
	struct conns_walk *w = ctx;
	char ref[OBJ_NS_MAX + OBJ_NAME_MAX + 1];
	json_object *o;

	if (w->svc_ns &&
	    (!ci->svc || strcmp(ci->svc->ns, w->svc_ns) || strcmp(ci->svc->name, w->svc_name)))
		return 0;
	/* Count past the limit, so the answer can say how many were left out. */
	if (w->matched++ >= w->limit)
		return 0;
	o = json_object_new_object();
	snprintf(ref, sizeof(ref), "%s/%s", w->pod->spec.ns, w->pod->spec.name);
	json_object_object_add(o, "pod", json_object_new_string(ref));
	json_object_object_add(o, "client", addr_json(&ci->client));
	json_object_object_add(o, "destination", addr_json(&ci->dst));
	if (ci->svc) {
		snprintf(ref, sizeof(ref), "%s/%s", ci->svc->ns, ci->svc->name);
		json_object_object_add(o, "service", json_object_new_string(ref));
		json_object_object_add(o, "port_name", json_object_new_string(ci->svc->port_name));
	} else {
		json_object_object_add(o, "service", NULL);
	}
	json_object_object_add(o, "endpoint", addr_json(&ci->upstream));
	json_object_object_add(o, "source", addr_json(&ci->source));
	json_object_object_add(o, "age_ms", json_object_new_uint64(ci->age_ms));
	json_object_object_add(o, "bytes_out", json_object_new_uint64(ci->bytes_out));
	json_object_object_add(o, "bytes_in", json_object_new_uint64(ci->bytes_in));
	json_object_object_add(o, "protocol", json_object_new_string(ci->protocol));
	json_object_object_add(o, "state", json_object_new_string(ci->state));
	json_object_object_add(o, "attempts", json_object_new_uint64(ci->attempts));
	json_object_object_add(o, "requests", json_object_new_uint64(ci->requests));
	json_object_object_add(o, "mtls", ci->mtls ? json_object_new_string(ci->mtls) : NULL);
	json_object_object_add(o, "peer_identity",
			       ci->mtls ? json_object_new_string(ci->mtls_peer) : NULL);
	json_object_object_add(o, "mtls_resumed",
			       ci->mtls ? json_object_new_boolean(ci->mtls_resumed) : NULL);
	json_object_object_add(o, "handed_over", json_object_new_boolean(ci->handed_over));
	json_object_array_add(w->arr, o);
	return 0;
}

int admin_conns(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { "pod", "service", "limit", NULL };
	char ref[256], pod_ns[OBJ_NS_MAX], pod_name[OBJ_NAME_MAX];
	char svc_ns[OBJ_NS_MAX], svc_name[OBJ_NAME_MAX];
	struct agent *a = ctx;
	struct conns_walk w = { .limit = ADMIN_CONNS_DEFAULT };
	const struct pod *only = NULL;
	json_object *o;
	int rc;

	if (admin_bad_query(req, resp, known))
		return 0;
	rc = http_query_get(req->query, "limit", ref, sizeof(ref));
	if (rc && (rc < 0 || opt_parse_u32(ref, 1, ADMIN_CONNS_MAX, &w.limit)))
		return admin_error(resp, 400, "query parameter 'limit' must be an integer in 1..%u",
				   ADMIN_CONNS_MAX);
	rc = admin_query_ref(req, resp, "pod", pod_ns, pod_name);
	if (rc < 0)
		return 0;
	if (rc) {
		only = admin_find_pod(a, pod_ns, pod_name);
		if (!only)
			return admin_error(resp, 404,
					   "no pod %s/%s is known to the agent (see meshctl pods)",
					   pod_ns, pod_name);
	}
	rc = admin_query_ref(req, resp, "service", svc_ns, svc_name);
	if (rc < 0)
		return 0;
	if (rc) {
		w.svc_ns = svc_ns;
		w.svc_name = svc_name;
	}
	o = json_object_new_object();
	w.arr = json_object_new_array();
	/* Each worker's share of a pod in turn, newest first within a worker. */
	workers_isolate(a->workers);
	for (const struct pod *pod = pods_first(a->pods); pod; pod = pod->next) {
		if ((only && pod != only) || !pod->capture)
			continue;
		w.pod = pod;
		(void)workers_capture_conns(pod->capture, add_conn, &w);
	}
	workers_release(a->workers);
	json_object_object_add(o, "conns", w.arr);
	json_object_object_add(o, "matched", json_object_new_uint64(w.matched));
	json_object_object_add(o, "truncated", json_object_new_boolean(w.matched > w.limit));
	json_object_object_add(o, "limit", json_object_new_uint64(w.limit));
	return admin_json(resp, o);
}
