// SPDX-License-Identifier: GPL-2.0-only
/* The Consul registry backend (agent/registry/consul*.c) against the fake
 * Consul (tests/consul/): the first listing, blocking-query updates, an
 * index that goes backwards, an outage and recovery, failover to the next
 * URL, a refused token, malformed instances, TLS, and self-registration
 * with TTL checks — kept passing, deregistered on a clean stop, critical
 * after a SIGKILL.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "consul_fake.h"
#include "proc.h"
#include "registry/consul.h"
#include "registry_fixture.h"

#define WEB_TAGS "[\"weft.io/vip=198.19.0.10\",\"weft.io/port=http:80\",\"weft.io/connect-timeout=2s\"]"

static struct cfake srv;
static struct rfix f;
static char token_file[PATH_MAX + 32];
static const enum reg_health synced = REG_HEALTH_SYNCED, stale = REG_HEALTH_STALE;

static void fixture_opts(struct rfix *fx)
{
	rfix_init(fx);
	fx->opts.consul_wait_s = 5;
	fx->opts.consul_check_ttl_s = 3;
	fx->opts.consul_ca = srv.tls ? srv.ca : NULL;
	fx->opts.consul_token_file = token_file[0] ? token_file : NULL;
}

static void start_srv(bool tls, const char *token)
{
	cr_assert_eq(cfake_start(&srv, tls, token), 0, "the fake Consul did not start");
	token_file[0] = '\0';
	fixture_opts(&f);
	f.opts.node_name = "";		/* no self-registration unless a test asks */
}

static void teardown(void)
{
	rfix_stop(&f);
	cfake_stop(&srv);
	if (token_file[0])
		unlink(token_file);
}

TestSuite(consul, .fini = teardown, .timeout = 60);

static void start_watching(void)
{
	char source[128];

	snprintf(source, sizeof(source), "consul:%s", srv.url);
	rfix_start(&f, &reg_consul_ops, source);
	cr_assert(rfix_until(&f, 10000, rfix_health_is, &synced), "not synced: %s",
		  rfix_status(&f).message);
}

static void reg(const char *id, const char *name, const char *ip, int port, const char *tags)
{
	cr_assert_eq(cfake_register(&srv, id, name, ip, port, tags), 0, "register %s", id);
}

Test(consul, listing_then_blocking_updates_follow_within_a_second)
{
	const struct obj *svc;
	uint64_t t0;

	start_srv(false, NULL);
	reg("web-1", "web", "198.18.1.1", 8080, WEB_TAGS);
	reg("web-2", "web", "198.18.1.2", 8080, WEB_TAGS);
	reg("novip-1", "novip", "198.18.1.3", 8080, "[]");
	start_watching();
	svc = rfix_find(&f, "Service default/web");
	cr_assert(svc, "Service default/web was not mapped");
	cr_expect_eq(svc->svc.n_ports, 1);
	cr_expect_eq(svc->svc.ports[0].port, 80);
	cr_expect_str_eq(svc->svc.ports[0].name, "http");
	cr_expect(rfix_has(&f, "EndpointSlice default/web-consul-8080"));
	/* No weft.io/vip tag: mapped without a cluster IP, for the catalogue
	 * to allocate one (docs/dns.md).
	 */
	svc = rfix_find(&f, "Service default/novip");
	cr_assert(svc, "Service default/novip was not mapped");
	cr_expect_eq(svc->svc.n_vips, 0);
	cr_expect_not(svc->svc.headless);

	/* A blocking query is waiting: a change shows within a second. */
	t0 = tproc_now_ms();
	cfake_deregister(&srv, "web-1");
	cfake_deregister(&srv, "web-2");
	reg("web-3", "web", "198.18.1.7", 8080, WEB_TAGS);
	cr_assert(rfix_until(&f, 1000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice default/web-consul-8080",
						   "198.18.1.7" }),
		  "the new instance did not show within a second");
	cr_log_info("change -> catalogue in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	/* A new port is a new slice; the old one goes with its last instance. */
	cfake_deregister(&srv, "web-3");
	reg("web-4", "web", "198.18.1.8", 9090, WEB_TAGS);
	cr_assert(rfix_until(&f, 2000, rfix_has, "EndpointSlice default/web-consul-9090"));
	cr_assert(rfix_until(&f, 2000, rfix_lacks, "EndpointSlice default/web-consul-8080"));
	cfake_deregister(&srv, "web-4");
	cr_assert(rfix_until(&f, 3000, rfix_lacks, "Service default/web"),
		  "a service gone from the catalog is removed");
	cr_expect_lt(cfake_stat(&srv, "catalog"), 40, "catalog queries are paced, not a tight loop");
}

Test(consul, an_index_going_backwards_means_a_full_listing)
{
	start_srv(false, NULL);
	reg("web-1", "web", "198.18.1.1", 8080, WEB_TAGS);
	start_watching();
	/* The reset must come after the first listing, however slow it is. */
	cr_assert(rfix_until(&f, 5000, rfix_health_is, &synced), "never synced");
	cr_assert_eq(cfake_test(&srv, "reset-index", "{\"index\":2}"), 0);
	cr_assert(rfix_until(&f, 10000, rfix_resynced_twice, NULL), "no second listing");
	cr_expect(rfix_has(&f, "Service default/web"));
}

Test(consul, an_outage_is_stale_with_the_catalogue_kept_then_recovers)
{
	start_srv(false, NULL);
	reg("web-1", "web", "198.18.1.1", 8080, WEB_TAGS);
	start_watching();
	cfake_kill(&srv);
	cr_assert(rfix_until(&f, 5000, rfix_health_is, &stale), "not stale");
	cr_expect(rfix_has(&f, "EndpointSlice default/web-consul-8080"), "the last state stays");
	rfix_run(&f, 500);
	cr_expect(rfix_has(&f, "Service default/web"));
	/* The server comes back empty, as a rebuilt cluster: a new listing. */
	cr_assert_eq(cfake_restart(&srv), 0);
	reg("web-9", "web", "198.18.1.9", 8080, WEB_TAGS);
	cr_assert(rfix_until(&f, 10000, rfix_health_is, &synced), "did not recover: %s",
		  rfix_status(&f).message);
	cr_assert(rfix_until(&f, 3000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice default/web-consul-8080",
						   "198.18.1.9" }));
}

static void write_token(const char *t)
{
	char tmp[PATH_MAX + 40];
	FILE *o;

	snprintf(tmp, sizeof(tmp), "%s.new", token_file);
	o = fopen(tmp, "w");
	cr_assert(o);
	fprintf(o, "%s\n", t);
	fclose(o);
	cr_assert_eq(rename(tmp, token_file), 0);
}

static bool message_has(struct rfix *fx, const void *text)
{
	return strstr(rfix_status(fx).message, text) != NULL;
}

Test(consul, a_refused_token_is_reported_and_a_rotated_file_is_read_again)
{
	char source[128];

	start_srv(false, "s3cret");
	snprintf(token_file, sizeof(token_file), "%s/token", srv.dir);
	write_token("wrong");
	fixture_opts(&f);
	f.opts.node_name = "";
	reg("web-1", "web", "198.18.1.1", 8080, WEB_TAGS);
	snprintf(source, sizeof(source), "consul:%s", srv.url);
	rfix_start(&f, &reg_consul_ops, source);
	cr_assert(rfix_until(&f, 5000, message_has, "ACL token was refused"), "got: %s",
		  rfix_status(&f).message);
	cr_expect_eq(rfix_status(&f).health, REG_HEALTH_STARTING);
	write_token("s3cret");
	cr_assert(rfix_until(&f, 10000, rfix_health_is, &synced), "not synced: %s",
		  rfix_status(&f).message);
	cr_expect(rfix_has(&f, "Service default/web"));
}

Test(consul, a_malformed_instance_is_rejected_alone)
{
	uint64_t one = 1;

	start_srv(false, NULL);
	reg("web-1", "web", "198.18.1.1", 8080, WEB_TAGS);
	cr_assert_eq(cfake_test(&srv, "raw", "{\"service\":\"web\",\"entry\":{\"Node\":"
			       "{\"Address\":\"198.18.200.1\"},\"Service\":{\"ID\":\"bad\","
			       "\"Service\":\"web\",\"Port\":\"http\",\"Address\":\"198.18.1.5\"}}}"),
		     0);
	start_watching();
	cr_assert(rfix_until(&f, 3000, rfix_rejected_at_least, &one));
	cr_expect(rfix_slice_ip_is(&f, &(struct rfix_ip_is){
					       "EndpointSlice default/web-consul-8080", "198.18.1.1" }),
		  "the good instance stays");
	/* A service whose name is no DNS-1035 label is rejected alone too. */
	reg("Bad_Name-1", "Bad_Name", "198.18.1.6", 8080, WEB_TAGS);
	reg("ok-1", "ok", "198.18.1.7", 8080, "[\"weft.io/vip=198.19.0.11\"]");
	cr_assert(rfix_until(&f, 3000, rfix_has, "Service default/ok"));
	cr_expect(rfix_has(&f, "Service default/web"));
}

Test(consul, tls_with_the_test_ca)
{
	char source[128];

	start_srv(true, NULL);
	reg("web-1", "web", "198.18.1.1", 8080, WEB_TAGS);
	start_watching();
	cr_expect(rfix_has(&f, "Service default/web"));
	rfix_stop(&f);

	/* Without the CA the server is not trusted. */
	fixture_opts(&f);
	f.opts.node_name = "";
	f.opts.consul_ca = NULL;
	snprintf(source, sizeof(source), "consul:%s", srv.url);
	rfix_start(&f, &reg_consul_ops, source);
	rfix_run(&f, 1500);
	cr_expect_neq(rfix_status(&f).health, REG_HEALTH_SYNCED);
}

/* This node's endpoints: default/web on 198.18.1.@n:8080. */
static void set_local(struct rfix *fx, int n)
{
	struct selfreg_ep eps[2] = {
		{ .ns = "default", .service = "web", .pod = "web-1", .node = "node-a" },
		{ .ns = "default", .service = "web", .pod = "web-2", .node = "node-a" },
	};

	cr_assert_eq(addr_parse_ip_port("198.18.1.1:8080", &eps[0].addr), 0);
	cr_assert_eq(addr_parse_ip_port("198.18.1.2:8080", &eps[1].addr), 0);
	rfix_register_local(fx, eps, (size_t)n);
}

/* Passing instances of web at the fake, -1 on error. */
static int passing(void)
{
	json_object *o = cfake_get(&srv, "/v1/health/service/web?passing=1");
	int n = o && json_object_is_type(o, json_type_array) ? (int)json_object_array_length(o)
							      : -1;

	json_object_put(o);
	return n;
}

static bool passing_is(struct rfix *fx, const void *n)
{
	(void)fx;
	return passing() == *(const int *)n;
}

Test(consul, self_registration_is_kept_passing_and_deregistered_on_stop)
{
	static const int zero = 0, one = 1, two = 2;
	char source[128];

	start_srv(false, NULL);
	fixture_opts(&f);
	snprintf(source, sizeof(source), "consul:%s", srv.url);
	rfix_start(&f, &reg_consul_ops, source);
	set_local(&f, 1);
	cr_assert(rfix_until(&f, 5000, passing_is, &one), "not registered");
	set_local(&f, 2);
	cr_assert(rfix_until(&f, 5000, passing_is, &two));
	/* Twice the check's TTL (3 s): kept passing. */
	rfix_run(&f, 6000);
	cr_expect_eq(passing(), 2, "the TTL checks were not kept passing");
	cr_expect_geq(cfake_stat(&srv, "pass"), 4);
	set_local(&f, 1);
	cr_assert(rfix_until(&f, 5000, passing_is, &one), "not deregistered when gone");
	rfix_stop_backend(&f);
	cr_expect_eq(passing(), 0, "a clean stop deregisters");
	cr_expect(passing_is(&f, &zero));
}

Test(consul, a_killed_agents_instances_go_critical)
{
	uint64_t t0, gone;
	bool registered;
	pid_t child;

	start_srv(false, NULL);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		struct rfix a;
		char source[128];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fixture_opts(&a);
		snprintf(source, sizeof(source), "consul:%s", srv.url);
		rfix_start(&a, &reg_consul_ops, source);
		set_local(&a, 1);
		for (;;)
			rfix_run(&a, 1000);
	}
	t0 = tproc_now_ms();
	while (tproc_now_ms() - t0 < 10000 && passing() != 1)
		usleep(20000);
	registered = passing() == 1;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	cr_assert(registered, "the child never registered");
	t0 = tproc_now_ms();
	while (tproc_now_ms() - t0 < 10000 && passing() != 0)
		usleep(50000);
	gone = tproc_now_ms() - t0;
	cr_assert_eq(passing(), 0, "still passing after 10 s");
	cr_log_info("SIGKILL -> critical in %llu ms (TTL 3 s)", (unsigned long long)gone);
	cr_expect_leq(gone, 4500);
}

Test(consul, a_dead_first_url_fails_over_to_the_next)
{
	char source[256];
	uint16_t dead = tproc_free_port();

	start_srv(false, NULL);
	reg("web-1", "web", "198.18.1.1", 8080, WEB_TAGS);
	cr_assert_neq(dead, 0);
	snprintf(source, sizeof(source), "consul:http://127.0.0.1:%u,%s", dead, srv.url);
	rfix_start(&f, &reg_consul_ops, source);
	cr_assert(rfix_until(&f, 5000, rfix_health_is, &synced), "did not fail over: %s",
		  rfix_status(&f).message);
	cr_expect(strstr(rfix_status(&f).message, srv.url), "%s", rfix_status(&f).message);
	cr_expect(rfix_has(&f, "Service default/web"));
}
