// SPDX-License-Identifier: GPL-2.0-only
/* The Consul registry backend (registry/consul.h): parses --registry
 * consul:URL[,URL...] and the --consul-* options, starts the watcher and
 * registrar threads, hands them this node's endpoints, and stops them —
 * deregistering this node's instances on a clean stop, so they vanish at
 * once instead of after their checks' TTL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "registry/consul.h"
#include "registry/consul_agent.h"
#include "registry/consul_core.h"
#include "registry/consul_watch.h"
#include "sync.h"

#define CONSUL_DEREGISTER_BUDGET_MS 2000
#define CONSUL_WAIT_DEFAULT_S 300	/* Consul's own default */
#define CONSUL_WAIT_MAX_S 600		/* Consul's limit */

/* "http://a:8500,https://b:8501" into @c->urls. 0 or -EINVAL (logged). */
static int parse_urls(struct consul *c, const char *arg)
{
	const char *p = arg;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		size_t scheme;

		while (n && p[n - 1] == '/')
			n--;
		if (c->n_urls == CONSUL_URLS_MAX) {
			log_err("option --registry: '%s': more than %d URLs", c->source,
				CONSUL_URLS_MAX);
			return -EINVAL;
		}
		scheme = !strncmp(p, "http://", 7) ? 7 : !strncmp(p, "https://", 8) ? 8 : 0;
		if (!scheme || n <= scheme) {
			log_err("option --registry: '%s': '%.*s' is not an http:// or https:// URL",
				c->source, (int)n, p);
			return -EINVAL;
		}
		c->urls[c->n_urls] = strndup(p, n);
		if (!c->urls[c->n_urls])
			return -ENOMEM;
		c->n_urls++;
		p = end ? end + 1 : p + n;
	}
	if (!c->n_urls) {
		log_err("option --registry: 'consul:' needs at least one URL "
			"(consul:http://127.0.0.1:8500)");
		return -EINVAL;
	}
	return 0;
}

static char *dup_opt(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

/* The options into @c. 0 or -errno (logged). */
static int set_opts(struct consul *c, const struct reg_opts *o)
{
	const char *env = getenv("CONSUL_HTTP_TOKEN");
	char q[512];
	int n;

	c->token_file = dup_opt(o->consul_token_file);
	c->env_token = dup_opt(env);
	c->ca_file = dup_opt(o->consul_ca);
	c->agent_url = strdup(o->consul_agent && o->consul_agent[0] ? o->consul_agent
								       : c->urls[0]);
	/* The Consul namespace, or "default", is the Kubernetes namespace. */
	c->k8s_ns = strdup(o->consul_namespace && o->consul_namespace[0] ? o->consul_namespace
									 : "default");
	n = snprintf(q, sizeof(q), "%s%s%s%s%s",
		     o->consul_namespace && o->consul_namespace[0] ? "ns=" : "",
		     o->consul_namespace ? o->consul_namespace : "",
		     o->consul_namespace && o->consul_namespace[0] && o->consul_partition &&
				     o->consul_partition[0] ? "&" : "",
		     o->consul_partition && o->consul_partition[0] ? "partition=" : "",
		     o->consul_partition ? o->consul_partition : "");
	c->query = n < (int)sizeof(q) ? strdup(q) : NULL;
	c->node = strdup(o->node_name ? o->node_name : "");
	if ((o->consul_token_file && o->consul_token_file[0] && !c->token_file) ||
	    (env && env[0] && !c->env_token) || !c->agent_url || !c->k8s_ns || !c->query ||
	    !c->node)
		return -ENOMEM;
	if (strncmp(c->agent_url, "http://", 7) && strncmp(c->agent_url, "https://", 8)) {
		log_err("option --consul-agent: '%s' is not an http:// or https:// URL",
			c->agent_url);
		return -EINVAL;
	}
	c->check_ttl_s = o->consul_check_ttl_s ? o->consul_check_ttl_s : 15;
	c->wait_s = o->consul_wait_s ? o->consul_wait_s : CONSUL_WAIT_DEFAULT_S;
	if (c->wait_s > CONSUL_WAIT_MAX_S)
		c->wait_s = CONSUL_WAIT_MAX_S;
	return 0;
}

static void consul_free(struct consul *c)
{
	consul_http_free(c->watch_http);
	consul_http_free(c->reg_http);
	reg_local_want_free(&c->want);
	for (size_t i = 0; i < c->n_have; i++)
		free(c->have[i]);
	free(c->have);
	for (size_t i = 0; i < c->n_urls; i++)
		free(c->urls[i]);
	free(c->agent_url);
	free(c->token_file);
	free(c->env_token);
	free(c->ca_file);
	free(c->query);
	free(c->k8s_ns);
	free(c->node);
	free(c->source);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void consul_stop(void *state, bool deregister)
{
	struct consul *c = state;

	if (!c)
		return;
	sync_raise(&c->lock, &c->cond, &c->stopping);
	consul_http_cancel(c->watch_http);
	consul_http_cancel(c->reg_http);
	if (c->watch_started)
		pthread_join(c->watch_thread, NULL);
	if (c->reg_started)
		pthread_join(c->reg_thread, NULL);
	if (deregister)
		consul_agent_deregister_all(c, CONSUL_DEREGISTER_BUDGET_MS);
	consul_free(c);
	curl_global_cleanup();
}

static int consul_start(const char *source, const char *arg, const struct reg_opts *opts,
			struct reg_sink *sink, void **state)
{
	struct consul *c = calloc(1, sizeof(*c));
	char msg[256];
	int err;

	if (!c)
		return -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(c);
		return log_errno(-ENOMEM, "registry '%s': initialise libcurl", source);
	}
	sync_init_mono(&c->lock, &c->cond);
	c->sink = sink;
	c->source = strdup(source);
	err = c->source ? parse_urls(c, arg) : -ENOMEM;
	if (!err)
		err = set_opts(c, opts);
	if (err)
		goto out_free;
	c->registers = reg_local_registers(source, c->node);
	c->watch_http = consul_http_new(c->ca_file);
	c->reg_http = consul_http_new(c->ca_file);
	if (!c->watch_http || !c->reg_http) {
		err = -ENOMEM;
		goto out_free;
	}
	snprintf(msg, sizeof(msg), "connecting to %s", c->urls[0]);
	(void)reg_sink_health(sink, source, REG_HEALTH_STARTING, msg);
	err = -pthread_create(&c->watch_thread, NULL, consul_watch_main, c);
	if (err)
		goto out_stop;
	c->watch_started = true;
	if (c->registers) {
		err = -pthread_create(&c->reg_thread, NULL, consul_agent_main, c);
		if (err)
			goto out_stop;
		c->reg_started = true;
	}
	log_info("registry: %s: watching the catalog as namespace '%s'%s", source, c->k8s_ns,
		 c->registers ? ", registering this node's endpoints with the local agent" : "");
	*state = c;
	return 0;
out_stop:
	log_errno(err, "registry '%s': start a thread", source);
	consul_stop(c, false);
	return err;
out_free:
	consul_free(c);
	curl_global_cleanup();
	return err == -ENOMEM ? log_errno(err, "registry '%s'", source) : err;
}

static void consul_register_local(void *state, const struct reg_local_slice *slices, size_t n,
				  bool complete)
{
	struct consul *c = state;

	if (c->registers)
		reg_local_want_post(&c->want, &c->lock, &c->cond, c->source, slices, n,
				    complete);
}

const struct reg_backend_ops reg_consul_ops = {
	.scheme = "consul",
	.start = consul_start,
	.stop = consul_stop,
	.register_local = consul_register_local,
};
