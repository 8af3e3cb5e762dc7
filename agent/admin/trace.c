// SPDX-License-Identifier: GPL-2.0-only
/* GET /v1/trace?pod=NS/NAME&dest=IP:PORT: what would happen to a TCP
 * connection from that pod to that destination, step by step. The capture
 * verdict is computed by the BPF programs' own decision function over the
 * entries the kernel holds (dp_explain_connect); the endpoint choice by the
 * proxy's own balancer on a copy of its state (proxy_preview_pick). Only the
 * words are written here, so the explanation cannot drift from behaviour.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <linux/types.h>

#include "abi.h"
#include "agent.h"
#include "model/catalogue.h"
#include "cmds.h"
#include "reply.h"
#include "config.h"
#include "datapath/capture.h"
#include "datapath/dp.h"
#include "http.h"
#include "loop.h"
#include "pods.h"
#include "proxy/mtls.h"
#include "proxy/proxy.h"
#include "proxy/state.h"
#include "proxy/workers.h"
#include "model/objects.h"

#define TRACE_TEXT_MAX 768

struct trace {
	json_object *steps;
	const struct agent *a;
	const struct pod *pod;
	struct addr dst;  /* as asked */
	struct addr dst4; /* IPv4-mapped unmapped: what the proxy resolves */
	struct dp_explain ex;
};

/* The proxy steps describe worker 0's view, read while the workers are
 * isolated: every worker binds the same snapshot and policy; breaker counts,
 * outlier state and the balancer cursor are per worker (docs/resilience.md),
 * and the kernel decides which worker a new connection reaches.
 */
static struct proxy *trace_px(const struct trace *t)
{
	return workers_proxy(t->a->workers, 0);
}

static void step(struct trace *t, const char *check, const char *result, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void step(struct trace *t, const char *check, const char *result, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char text[TRACE_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "check", json_object_new_string(check));
	json_object_object_add(o, "result", json_object_new_string(result));
	json_object_object_add(o, "detail", json_object_new_string(text));
	json_object_array_add(t->steps, o);
}

/* "pass" before the deciding check, "stop" at it, "skip" after. */
static const char *verdict_at(const struct trace *t, int order)
{
	static const int order_of[] = {
		/* The order of the checks in bpf/lib/decide.h. */
		[MESH_R_REDIRECTED] = 99, [MESH_R_NOT_TCP] = 0,	 [MESH_R_NOT_ENROLLED] = 1,
		[MESH_R_AGENT_CGROUP] = 2, [MESH_R_LOOPBACK] = 3, [MESH_R_EXCL_PORT] = 4,
		[MESH_R_EXCL_CIDR] = 5,
	};
	int at =
		t->ex.reason < sizeof(order_of) / sizeof(order_of[0]) ? order_of[t->ex.reason] : 99;

	return order < at ? "pass" : order == at ? "stop" : "skip";
}

static void capture_steps(struct trace *t)
{
	const struct dp_pod *d = &t->ex.pod;
	char list[160] = "", buf[ADDR_STRLEN];
	size_t off = 0;

	step(t, "enrollment", t->pod->meshed ? "pass" : "info", "%s: %s",
	     t->pod->meshed ? "meshed" : "not meshed", t->pod->reason);
	if (capture_mode(t->a->capture) == CAPTURE_NFT) {
		/* nft mode: the same decision, encoded by the pod's own table. */
		if (t->ex.enrolled)
			step(t, "datapath entry", verdict_at(t, 1),
			     "table inet weft in the pod's netns redirects its TCP to the proxy "
			     "port %u (nft mode)",
			     d->proxy_port);
		else
			step(t, "datapath entry", verdict_at(t, 1),
			     "the pod's netns has no table inet weft (the agent programs only "
			     "meshed pods): its connections go out untouched");
		step(t, "agent socket", verdict_at(t, 2),
		     "the output chain leaves alone only sockets of the agent's cgroup v2 (id %" PRIu64
		     ", level %u) and below; an application's socket is not one of them, whatever "
		     "SO_MARK it carries",
		     t->ex.agent_cgroup_id, t->ex.agent_cgroup_level);
	} else {
		if (!t->ex.enrolled && !t->pod->netns_cookie)
			step(t, "datapath entry", verdict_at(t, 1),
			     "the pod's netns is not in mesh_pods (the agent enrolls only meshed pods): "
			     "connect4/6 leave its sockets alone");
		else if (!t->ex.enrolled)
			step(t, "datapath entry", verdict_at(t, 1),
			     "netns cookie %" PRIu64 " has no entry in mesh_pods: connect4/6 leave the "
			     "pod's sockets alone",
			     t->pod->netns_cookie);
		else if (!d->capture || !d->proxy_port)
			step(t, "datapath entry", verdict_at(t, 1),
			     "mesh_pods has the pod (netns cookie %" PRIu64 ") with capture off",
			     t->pod->netns_cookie);
		else
			step(t, "datapath entry", verdict_at(t, 1),
			     "mesh_pods has the pod (netns cookie %" PRIu64
			     ", pod id %u) with capture on, proxy port %u",
			     t->pod->netns_cookie, d->pod_id, d->proxy_port);
		step(t, "agent socket", verdict_at(t, 2),
		     "connect4/6 leave alone only connects by tasks of the agent's cgroup v2 (id %" PRIu64
		     ", level %u) and below; an application's socket is not one of them, whatever "
		     "SO_MARK it carries",
		     t->ex.agent_cgroup_id, t->ex.agent_cgroup_level);
	}
	step(t, "loopback", verdict_at(t, 3), "%s %s a loopback address",
	     addr_fmt_ip(&t->dst, buf, sizeof(buf)), addr_is_loopback(&t->dst) ? "is" : "is not");
	for (size_t i = 0; i < DP_MAX_EXCL_PORTS && d->excl_ports[i]; i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%u", i ? "," : "",
					d->excl_ports[i]);
	step(t, "excluded port", verdict_at(t, 4), "port %u; the pod's excluded ports: %s",
	     t->dst.port, off ? list : "none");
	off = 0;
	list[0] = '\0';
	for (size_t i = 0; i < DP_MAX_EXCL_CIDRS && d->excl_cidrs[i].net.family; i++) {
		struct cidr c = { .net = d->excl_cidrs[i].net,
				  .prefix_len = d->excl_cidrs[i].prefix_len };

		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? "," : "",
					cidr_fmt(&c, buf, sizeof(buf)));
	}
	step(t, "excluded CIDR", verdict_at(t, 5), "the pod's excluded CIDRs: %s",
	     off ? list : "none");
}

static const char *ep_verdict(const struct ep_state *e, uint64_t now, bool panic, char *why,
			      size_t len)
{
	if (!e->ready) {
		snprintf(why, len, "not ready (its EndpointSlice says ready: false)");
		return NULL;
	}
	if (outlier_is_ejected(&e->ol, now)) {
		if (panic) {
			snprintf(why, len,
				 "ejected for %" PRIu64 " ms more, but so is every ready "
				 "endpoint: panic mode uses them all",
				 e->ol.until_ms - now);
			return "eligible";
		}
		snprintf(why, len,
			 "ejected for %" PRIu64 " ms more (outlier detection: %" PRIu64
			 " failures seen, ejection multiplier %u)",
			 e->ol.until_ms - now, e->ctr.failures, e->ol.ejections);
		return NULL;
	}
	if (e->ol.ejected) {
		snprintf(why, len,
			 "back from an ejection, on probation: one more failure ejects "
			 "it again (%u busy)",
			 e->active);
		return "eligible";
	}
	snprintf(why, len, "ready and healthy, %u busy connection(s), weight %u", e->active,
		 e->weight);
	return "eligible";
}

static json_object *endpoint(const char *addr, bool eligible, const char *why)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "address", json_object_new_string(addr));
	json_object_object_add(o, "eligible", json_object_new_boolean(eligible));
	json_object_object_add(o, "reason", json_object_new_string(why));
	return o;
}

/* Endpoints of the same Service port on a VIP of the other family: the
 * catalogue gives a VIP only endpoints of its own family, as kube-proxy does.
 */
static void other_family(struct trace *t, const struct svc_state *s, json_object *eps)
{
	const struct svc_state *o;
	char buf[ADDR_STRLEN], why[TRACE_TEXT_MAX];

	/* Every port of the snapshot, states or not (isolated by the caller). */
	for (size_t i = 0; (o = workers_service_at(t->a->workers, i)); i++) {
		if (o->vip.family == s->vip.family || strcmp(o->ns, s->ns) ||
		    strcmp(o->name, s->name) || strcmp(o->port_name, s->port_name))
			continue;
		for (size_t j = 0; j < o->n_eps; j++) {
			snprintf(why, sizeof(why), "other family: %s serves the %s VIP %s",
				 o->vip.family == AF_INET6 ? "IPv6 endpoint" : "IPv4 endpoint",
				 o->vip.family == AF_INET6 ? "IPv6" : "IPv4",
				 addr_fmt(&o->vip, buf, sizeof(buf)));
			json_object_array_add(
				eps,
				endpoint(addr_fmt(&o->eps[j]->addr, buf, sizeof(buf)), false, why));
		}
	}
}

static void circuit_step(struct trace *t, const struct svc_state *s)
{
	const struct policy *p = &s->pol;
	const char *open = s->conns >= p->max_connections   ? "max-connections"
			   : s->pending >= p->max_pending   ? "max-pending"
			   : s->requests >= p->max_requests ? "max-requests (HTTP)"
							    : NULL;

	step(t, "circuit breaker", open ? "stop" : "pass",
	     "%s: upstream connections %u/%u, connects in progress %u/%u, HTTP requests %u/%u",
	     open ? "open, new attempts fail fast" : "closed", s->conns, p->max_connections,
	     s->pending, p->max_pending, s->requests, p->max_requests);
}

/* Whether the connection to @pick would be mutual TLS, and whether the
 * destination's weft.io/allow-from (its Service's, else its namespace's)
 * admits this pod's identity (docs/mtls.md).
 */
static void mtls_step(struct trace *t, const struct ep_state *pick)
{
	const struct cat_svc_port *sp = catalogue_find_vip(t->a->cat, &t->dst4);
	struct spiffe_allow allow[SPIFFE_ALLOW_MAX];
	char me[SPIFFE_ID_MAX] = "", peer[SPIFFE_ID_MAX] = "", bad[8];
	const char *rule, *whose;
	struct spiffe_id id;
	int n;

	if (!t->a->ids) {
		step(t, "mtls", "info", "mutual TLS is off on this node (no --ca-cert): plaintext");
		return;
	}
	if (!pick->meshed) {
		step(t, "mtls", "info",
		     "plaintext: the endpoint is not a meshed pod the registry knows");
		return;
	}
	if (agent_pod_identity(t->a, t->pod->spec.ns, t->pod->spec.name, &id) ||
	    spiffe_id_fmt(me, sizeof(me), t->a->cfg->trust_domain, id.ns, id.sa) ||
	    spiffe_id_fmt(peer, sizeof(peer), t->a->cfg->trust_domain, pick->peer.ns,
			  pick->peer.sa)) {
		step(t, "mtls", "stop", "this pod or the endpoint has no valid identity");
		return;
	}
	step(t, "mtls", "pass",
	     "encrypted: TLS 1.3 to port %u of the endpoint, which must present %s; this pod "
	     "presents %s", MTLS_PORT, peer, me);
	rule = sp && sp->svc->allow_from[0] ? sp->svc->allow_from : NULL;
	whose = "its Service";
	if (!rule) {
		rule = catalogue_ns_allow_from(t->a->cat, pick->peer.ns);
		whose = "its namespace";
	}
	if (!rule || !rule[0]) {
		step(t, "authorization", "pass", "no weft.io/allow-from rule: any identity");
		return;
	}
	n = spiffe_allow_parse(rule, allow, SPIFFE_ALLOW_MAX, bad, sizeof(bad));
	if (n > 0 && spiffe_allowed(&id, allow, (size_t)n))
		step(t, "authorization", "pass", "%s allows \"%s\", which admits %s", whose, rule,
		     me);
	else
		step(t, "authorization", "stop",
		     "%s allows only \"%s\": %s would be refused at the server", whose, rule, me);
}

/* The proxy's part for @s, the service port's state (NULL: not a service):
 * service, endpoints, pick. Fills @o.
 */
static void proxy_steps_of(struct trace *t, json_object *o, const struct svc_state *s)
{
	uint64_t now = proxy_now_ms(trace_px(t));
	char buf[ADDR_STRLEN], why[TRACE_TEXT_MAX];
	json_object *svc, *eps;
	const struct ep_state *pick;
	size_t eligible = 0;
	bool panic = false;

	step(t, "original destination", "pass",
	     "the proxy's listener accepts it and getsockopt(SO_ORIGINAL_DST) returns %s, "
	     "recorded by mesh_sockops",
	     addr_fmt(&t->dst4, buf, sizeof(buf)));
	if (!s) {
		step(t, "service", "info",
		     "%s is not a service VIP:port in catalogue generation "
		     "%" PRIu64 ": the proxy passes the connection through to it from the pod's "
		     "address (no balancing, no retries)",
		     buf, catalogue_generation(t->a->cat));
		json_object_object_add(o, "service", NULL);
		json_object_object_add(o, "endpoints", json_object_new_array());
		json_object_object_add(o, "pick", NULL);
		json_object_object_add(
			o, "outcome",
			json_object_new_string(
				"captured; not a service: passed through to the original destination"));
		return;
	}
	svc = json_object_new_object();
	json_object_object_add(svc, "namespace", json_object_new_string(s->ns));
	json_object_object_add(svc, "name", json_object_new_string(s->name));
	json_object_object_add(svc, "port_name", json_object_new_string(s->port_name));
	json_object_object_add(svc, "vip", json_object_new_string(buf));
	json_object_object_add(svc, "lb", json_object_new_string(policy_lb_name(s->pol.lb)));
	json_object_object_add(svc, "protocol",
			       json_object_new_string(policy_proto_name(s->pol.protocol)));
	json_object_object_add(o, "service", svc);
	step(t, "service", "pass",
	     "%s is service %s/%s port '%s': %zu endpoint(s), %zu ready; "
	     "balancing %s, protocol %s",
	     buf, s->ns, s->name, s->port_name, s->n_eps, s->n_ready, policy_lb_name(s->pol.lb),
	     policy_proto_name(s->pol.protocol));
	circuit_step(t, s);
	pick = proxy_preview_pick(trace_px(t), s, &panic);
	eps = json_object_new_array();
	for (size_t i = 0; i < s->n_eps; i++) {
		bool ok = ep_verdict(s->eps[i], now, panic, why, sizeof(why)) != NULL;

		eligible += ok;
		json_object_array_add(
			eps, endpoint(addr_fmt(&s->eps[i]->addr, buf, sizeof(buf)), ok, why));
	}
	other_family(t, s, eps);
	json_object_object_add(o, "endpoints", eps);
	json_object_object_add(o, "panic", json_object_new_boolean(panic));
	step(t, "endpoints", eligible ? "pass" : "stop", "%zu of %zu eligible%s", eligible,
	     s->n_eps, panic ? " (panic mode: every ready endpoint is ejected)" : "");
	if (!pick) {
		step(t, "pick", "stop",
		     "no ready endpoint: the proxy resets the connection "
		     "(counted in no_endpoint)");
		json_object_object_add(o, "pick", NULL);
		json_object_object_add(
			o, "outcome",
			json_object_new_string(
				"captured; the service has no ready endpoint: reset"));
		return;
	}
	addr_fmt(&pick->addr, buf, sizeof(buf));
	step(t, "pick", "pass",
	     "the %s balancer would choose %s now (for HTTP, each request "
	     "is balanced again)",
	     policy_lb_name(s->pol.lb), buf);
	json_object_object_add(o, "pick", json_object_new_string(buf));
	mtls_step(t, pick);
	snprintf(why, sizeof(why), "captured; service %s/%s → endpoint %s", s->ns, s->name, buf);
	json_object_object_add(o, "outcome", json_object_new_string(why));
}

/* The proxy's part. A port no connection has used yet holds no state in
 * the worker: it is shown as a first connection would find it.
 */
static void proxy_steps(struct trace *t, json_object *o)
{
	const struct svc_state *s = proxy_service_for(trace_px(t), &t->dst4);
	struct svc_state *blank = s ? NULL : proxy_service_blank_for(trace_px(t), &t->dst4);

	proxy_steps_of(t, o, s ? s : blank);
	state_blank_free(blank);
}

int admin_trace(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { "pod", "dest", NULL };
	char ref[OBJ_NS_MAX + OBJ_NAME_MAX + 128], ns[OBJ_NS_MAX], name[OBJ_NAME_MAX];
	char buf[ADDR_STRLEN];
	struct trace t = { .a = ctx };
	struct capture_target target;
	struct capture_pod entry;
	json_object *o;
	int rc, err;

	if (admin_bad_query(req, resp, known))
		return 0;
	rc = http_query_get(req->query, "pod", ref, sizeof(ref));
	if (rc <= 0 || admin_split_ref(ref, ns, sizeof(ns), name, sizeof(name)))
		return admin_error(resp, 400, "query parameter 'pod' must be NAMESPACE/NAME");
	rc = http_query_get(req->query, "dest", ref, sizeof(ref));
	if (rc <= 0 || addr_parse_ip_port(ref, &t.dst) || !t.dst.port)
		return admin_error(
			resp, 400,
			"query parameter 'dest' must be IP:PORT or [IPv6]:PORT, port 1..65535");
	t.pod = admin_find_pod(t.a, ns, name);
	if (!t.pod)
		return admin_error(resp, 404,
				   "no pod %s/%s is known to the agent (see meshctl pods)", ns,
				   name);
	target = (struct capture_target){
		.netns_fd = t.pod->netns_fd, .netns_cookie = t.pod->netns_cookie,
		.lfd4 = -1, .lfd6 = -1,
	};
	pods_capture_entry(t.a->pods, t.pod, &entry);
	err = capture_explain_connect(t.a->capture, &target, t.pod->meshed ? &entry : NULL,
				      &t.dst, &t.ex);
	if (err)
		return err;
	t.dst4 = t.dst;
	addr_unmap(&t.dst4);
	o = json_object_new_object();
	t.steps = json_object_new_array();
	snprintf(ref, sizeof(ref), "%s/%s", ns, name);
	json_object_object_add(o, "pod", json_object_new_string(ref));
	json_object_object_add(o, "destination",
			       json_object_new_string(addr_fmt(&t.dst, buf, sizeof(buf))));
	json_object_object_add(o, "captured",
			       json_object_new_boolean(t.ex.reason == DP_REASON_REDIRECTED));
	json_object_object_add(o, "decision", json_object_new_string(dp_counter_name(t.ex.reason)));
	json_object_object_add(o, "fail_open",
			       json_object_new_boolean(t.ex.enrolled && t.ex.pod.fail_open));
	json_object_object_add(o, "heartbeat_stale", json_object_new_boolean(t.ex.heartbeat_stale));
	capture_steps(&t);
	if (t.ex.reason == DP_REASON_REDIRECTED) {
		step(&t, "capture", "pass",
		     "%s to %s:%u, the agent's listener inside the pod",
		     capture_mode(t.a->capture) == CAPTURE_NFT ? "the SYN is redirected" :
								  "connect() is rewritten",
		     t.dst.family == AF_INET ? "127.0.0.1" : "[::1]", t.ex.pod.proxy_port);
		workers_isolate(t.a->workers);
		proxy_steps(&t, o);
		workers_release(t.a->workers);
	} else if (!strcmp(dp_counter_name(t.ex.reason), "fail_open")) {
		step(&t, "capture", "stop",
		     "not captured (fail_open): the pod is fail-open (weft.io/fail-open) and the "
		     "agent's heartbeat is stale: the connection goes straight to %s, past the "
		     "mesh (no mTLS, no policy)",
		     buf);
	} else {
		step(&t, "capture", "stop",
		     "not captured (%s): the connection goes straight to %s; "
		     "the proxy never sees it",
		     dp_counter_name(t.ex.reason), buf);
	}
	if (t.ex.reason != DP_REASON_REDIRECTED) {
		json_object_object_add(o, "service", NULL);
		json_object_object_add(o, "endpoints", json_object_new_array());
		json_object_object_add(o, "pick", NULL);
		snprintf(ref, sizeof(ref), "not captured (%s): direct to %s",
			 dp_counter_name(t.ex.reason), buf);
		json_object_object_add(o, "outcome", json_object_new_string(ref));
	}
	json_object_object_add(o, "steps", t.steps);
	return admin_json(resp, o);
}
