// SPDX-License-Identifier: GPL-2.0-only
/* The Consul registrar thread: this node's EndpointSlices (from
 * agent/selfreg.c) as service instances of the local Consul agent, one per
 * endpoint address and port, each with a TTL check this thread passes every
 * third of the TTL. When the agent dies the passes stop, the checks go
 * critical, the health API's passing=1 answers drop the instances at once,
 * and Consul deregisters them after DEREGISTER_AFTER: a dead node's
 * endpoints need nobody to clean up. An instance the Consul agent forgot
 * (its restart without state) is registered again on the next pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "json_help.h"
#include "log.h"
#include "registry/consul_agent.h"

#define DEREGISTER_AFTER "1m"	/* Consul's minimum: its reaper runs every 30 s */
#define ID_MAX 512

/* One instance to register. */
struct inst {
	char id[ID_MAX];
	char *body;			/* the registration, JSON */
};

struct registrar {
	struct consul *c;
	uint64_t gen;			/* c->want.gen the wanted set reflects */
	bool complete;			/* and its c->want.complete */
	struct inst *want;
	size_t n_want;
	char **bodies;			/* what each c->have entry was registered with */
	uint64_t next_pass_ms;
	bool failing;			/* the current outage was logged */
	struct reg_backoff bo;
	struct consul_call call;
	char token[CONSUL_TOKEN_MAX];
	char msg[512];
};

static void free_want(struct registrar *r)
{
	for (size_t i = 0; i < r->n_want; i++)
		free(r->want[i].body);
	free(r->want);
	r->want = NULL;
	r->n_want = 0;
}

/* A service ID safe in a URL path: weft-<node>-<ns>-<svc>-<ip>-<port>. */
static void make_id(char *id, const char *node, const char *ns, const char *svc,
		    const char *ip, int port)
{
	snprintf(id, ID_MAX, "weft-%s-%s-%s-%s-%d", node, ns, svc, ip, port);
	for (char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			*p = '-';
}

static char *reg_body(struct consul *c, const char *id, const char *svc, const char *ns,
		      const char *pod, const char *ip, int port)
{
	json_object *o = json_object_new_object(), *meta = json_object_new_object();
	json_object *check = json_object_new_object();
	char ttl[16], check_id[ID_MAX + 16], *text = NULL;

	snprintf(ttl, sizeof(ttl), "%us", c->check_ttl_s);
	snprintf(check_id, sizeof(check_id), "service:%s", id);
	if (!(json_add_str(o, "ID", id) | json_add_str(o, "Name", svc) |
	      json_add_str(o, "Address", ip) | json_add(o, "Port", json_object_new_int(port)) |
	      json_add(o, "Meta", meta) | json_add(o, "Check", check) |
	      json_add_str(meta, "k8s-namespace", ns) | json_add_str(meta, "k8s-pod", pod) |
	      json_add_str(meta, "weft-node", c->node) | json_add_str(check, "CheckID", check_id) |
	      json_add_str(check, "Name", "weft-agent keepalive") |
	      json_add_str(check, "TTL", ttl) | json_add_str(check, "Status", "passing") |
	      json_add_str(check, "DeregisterCriticalServiceAfter", DEREGISTER_AFTER)))
		text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

/* The instances of one slice manifest appended to @out. 0 or -ENOMEM;
 * a manifest that does not parse (it is ours: a bug) is logged and skipped.
 */
static int slice_instances(struct registrar *r, const struct reg_local_slice *s,
			   struct inst **out, size_t *n)
{
	json_object *o = json_tokener_parse(s->manifest), *eps, *ports;
	const char *svc = json_member_str(json_member(json_member(o, "metadata"), "labels"),
					  "kubernetes.io/service-name");
	size_t ne, np;
	int ret = 0;

	eps = json_member(o, "endpoints");
	ports = json_member(o, "ports");
	if (!svc || !json_object_is_type(eps, json_type_array) ||
	    !json_object_is_type(ports, json_type_array)) {
		log_warn("registry: %s: EndpointSlice %s/%s: not a slice, not registered",
			 r->c->source, s->ns, s->name);
		json_object_put(o);
		return 0;
	}
	ne = json_object_array_length(eps);
	np = json_object_array_length(ports);
	for (size_t i = 0; i < ne && !ret; i++) {
		json_object *ep = json_object_array_get_idx(eps, i);
		json_object *addrs = json_member(ep, "addresses");
		const char *ip = json_object_get_string(json_object_array_get_idx(addrs, 0));
		const char *pod = json_member_str(json_member(ep, "targetRef"), "name");

		for (size_t j = 0; j < np && ip && !ret; j++) {
			int port = json_object_get_int(
				json_member(json_object_array_get_idx(ports, j), "port"));
			struct inst *grown = realloc(*out, (*n + 1) * sizeof(**out));

			if (!grown) {
				ret = -ENOMEM;
				break;
			}
			*out = grown;
			make_id(grown[*n].id, r->c->node, s->ns, svc, ip, port);
			grown[*n].body = reg_body(r->c, grown[*n].id, svc, s->ns, pod ? pod : "",
						  ip, port);
			if (!grown[*n].body)
				ret = -ENOMEM;
			else
				(*n)++;
		}
	}
	json_object_put(o);
	return ret;
}

/* Rebuild the wanted instances if c->want changed. 0 or -ENOMEM. */
static int take_want(struct registrar *r)
{
	struct consul *c = r->c;
	struct inst *want = NULL;
	size_t n = 0;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (r->gen == c->want.gen) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	for (size_t i = 0; i < c->want.n && !ret; i++)
		ret = slice_instances(r, &c->want.slices[i], &want, &n);
	if (!ret) {
		r->gen = c->want.gen;
		r->complete = c->want.complete;
	}
	pthread_mutex_unlock(&c->lock);
	if (ret) {
		for (size_t i = 0; i < n; i++)
			free(want[i].body);
		free(want);
		return ret;
	}
	free_want(r);
	r->want = want;
	r->n_want = n;
	return 0;
}

/* PUT @path (with @body) to the local agent. 0, -ENOENT on 404, -EACCES
 * on 401/403, else -errno; the reason in r->msg.
 */
static int put(struct registrar *r, const char *path, const char *body)
{
	struct consul *c = r->c;
	char url[2048];
	int ret = consul_url(c, c->agent_url, path, "", url, sizeof(url));

	if (!ret)
		ret = consul_http_do(c->reg_http, &r->call, "PUT", url, r->token, body,
				     CONSUL_CALL_TIMEOUT_MS);
	if (ret)
		return ret;
	if (r->call.result) {
		snprintf(r->msg, sizeof(r->msg), "%s: %s", c->agent_url, r->call.err);
		return r->call.result;
	}
	if (r->call.status == 200)
		return 0;
	snprintf(r->msg, sizeof(r->msg), "%s%s: HTTP %ld: %.100s", c->agent_url, path,
		 r->call.status, r->call.body ? r->call.body : "");
	return r->call.status == 404   ? -ENOENT
	       : r->call.status == 403 ? -EACCES
	       : r->call.status == 401 ? -EACCES
				       : -EREMOTEIO;
}

static ssize_t have_idx(struct consul *c, const char *id)
{
	for (size_t i = 0; i < c->n_have; i++)
		if (!strcmp(c->have[i], id))
			return (ssize_t)i;
	return -1;
}

static void drop_have(struct registrar *r, size_t i)
{
	struct consul *c = r->c;

	free(c->have[i]);
	free(r->bodies[i]);
	c->have[i] = c->have[--c->n_have];
	r->bodies[i] = r->bodies[c->n_have];
}

static int add_have(struct registrar *r, const struct inst *in)
{
	struct consul *c = r->c;
	char **h = realloc(c->have, (c->n_have + 1) * sizeof(*h));
	char **b;

	if (h)
		c->have = h;
	b = h ? realloc(r->bodies, (c->n_have + 1) * sizeof(*b)) : NULL;
	if (b)
		r->bodies = b;
	if (!h || !b)
		return -ENOMEM;
	c->have[c->n_have] = strdup(in->id);
	r->bodies[c->n_have] = strdup(in->body);
	if (!c->have[c->n_have] || !r->bodies[c->n_have]) {
		free(c->have[c->n_have]);
		free(r->bodies[c->n_have]);
		return -ENOMEM;
	}
	c->n_have++;
	return 0;
}

/* Make the agent's instances what is wanted. 0 or -errno (r->msg). */
static int reconcile(struct registrar *r)
{
	struct consul *c = r->c;
	char path[ID_MAX + 64];
	int ret = 0;

	for (size_t i = 0; i < r->n_want && !ret; i++) {
		ssize_t h = have_idx(c, r->want[i].id);

		if (h >= 0 && !strcmp(r->bodies[h], r->want[i].body))
			continue;
		ret = put(r, "/v1/agent/service/register", r->want[i].body);
		if (!ret && h < 0)
			ret = add_have(r, &r->want[i]);
		else if (!ret) {
			free(r->bodies[h]);
			r->bodies[h] = strdup(r->want[i].body);
			if (!r->bodies[h]) {
				drop_have(r, (size_t)h);
				ret = -ENOMEM;
			}
		}
	}
	/* A partial set removes nothing (struct reg_local_want). */
	for (size_t i = 0; i < c->n_have && !ret && r->complete;) {
		bool wanted = false;

		for (size_t j = 0; j < r->n_want; j++)
			wanted |= !strcmp(r->want[j].id, c->have[i]);
		if (wanted) {
			i++;
			continue;
		}
		snprintf(path, sizeof(path), "/v1/agent/service/deregister/%s", c->have[i]);
		ret = put(r, path, NULL);
		if (ret == -ENOENT)
			ret = 0;
		if (!ret)
			drop_have(r, i);
	}
	return ret;
}

/* Pass every instance's TTL check; one the agent forgot is registered again. */
static int pass_all(struct registrar *r)
{
	struct consul *c = r->c;
	char path[ID_MAX + 64];
	int ret = 0;

	for (size_t i = 0; i < c->n_have && !ret;) {
		snprintf(path, sizeof(path), "/v1/agent/check/pass/service:%s", c->have[i]);
		ret = put(r, path, NULL);
		if (ret == -ENOENT) {
			log_info("registry: %s: the Consul agent forgot %s: registering it again",
				 c->source, c->have[i]);
			drop_have(r, i);
			ret = 0;
			continue;
		}
		i++;
	}
	return ret ? ret : reconcile(r);
}

void *consul_agent_main(void *arg)
{
	struct registrar r = { .c = arg };
	struct consul *c = r.c;
	uint32_t period_ms = c->check_ttl_s * 1000 / 3;

	reg_backoff_init(&r.bo, CONSUL_BACKOFF_MIN_MS, CONSUL_BACKOFF_MAX_MS);
	while (!consul_stopping(c)) {
		uint64_t now;
		uint32_t sleep_ms;
		int ret;

		r.msg[0] = '\0';
		ret = consul_token(c, r.token, sizeof(r.token));
		if (!ret)
			ret = take_want(&r);
		if (!ret)
			ret = reconcile(&r);
		now = mono_ms();
		if (!ret && now >= r.next_pass_ms) {
			ret = pass_all(&r);
			if (!ret)
				r.next_pass_ms = now + period_ms;
		}
		if (ret == -ECANCELED)
			break;
		if (ret) {
			if (!r.failing)
				log_warn("registry: %s: registering this node's endpoints: %s; "
					 "retrying",
					 c->source, r.msg[0] ? r.msg : strerror(-ret));
			r.failing = true;
			sleep_ms = reg_backoff_next(&r.bo);
		} else {
			if (r.failing)
				log_info("registry: %s: this node's endpoints are registered again",
					 c->source);
			r.failing = false;
			reg_backoff_reset(&r.bo);
			now = mono_ms();
			sleep_ms = r.next_pass_ms > now ? (uint32_t)(r.next_pass_ms - now) : 0;
		}
		if (consul_wait(c, sleep_ms, ret ? NULL : &r.gen))
			break;
	}
	free_want(&r);
	for (size_t i = 0; i < c->n_have; i++)
		free(r.bodies[i]);
	free(r.bodies);
	consul_call_free(c->reg_http, &r.call);
	return NULL;
}

void consul_agent_deregister_all(struct consul *c, uint32_t budget_ms)
{
	struct consul_http *h = consul_http_new(c->ca_file);
	struct consul_call call = { 0 };
	uint64_t until = mono_ms() + budget_ms;
	char token[CONSUL_TOKEN_MAX], path[ID_MAX + 64], url[2048];
	size_t done = 0;

	if (!h || consul_token(c, token, sizeof(token)))
		token[0] = '\0';
	for (size_t i = 0; h && i < c->n_have && mono_ms() < until; i++) {
		snprintf(path, sizeof(path), "/v1/agent/service/deregister/%s", c->have[i]);
		if (consul_url(c, c->agent_url, path, "", url, sizeof(url)))
			continue;
		if (!consul_http_do(h, &call, "PUT", url, token, NULL, 1000) && !call.result &&
		    (call.status == 200 || call.status == 404))
			done++;
	}
	if (c->n_have)
		log_info("registry: %s: deregistered %zu of %zu instance(s) of this node%s",
			 c->source, done, c->n_have,
			 done < c->n_have ? "; the rest go critical within the check TTL" : "");
	if (h)
		consul_call_free(h, &call);
	consul_http_free(h);
}
