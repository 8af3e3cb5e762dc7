// SPDX-License-Identifier: GPL-2.0-only
/* Outbound capture end to end: real BPF in a test cgroup, real namespaces,
 * the real agent and CNI plugin, clients connecting as unmodified apps would.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "tns.h"
#include "sock.h"

static void up(void)
{
	fixture_up();
	fixture_backends_start(true);
}

static void down(void)
{
	fixture_backends_stop();
	fixture_down();
}

TestSuite(capture, .init = up, .fini = down, .timeout = 120);

/* Round robin is per worker (docs/resilience.md): exact evenness node-wide
 * is a one-worker property; the agent otherwise runs one worker per CPU.
 */
static void restart_with_workers(const char *n)
{
	cr_assert_eq(tenv_agent_stop(&env), 0, "the agent did not exit cleanly, see %s",
		     env.agent_log);
	setenv("WEFT_WORKERS", n, 1);
	/* The enrolled pods come back from the agent's saved state. */
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
}

Test(capture, vip_is_load_balanced_over_every_endpoint_from_the_pod_address)
{
	int seen[3] = { 0 };
	char out[256];

	restart_with_workers("1");
	for (int i = 0; i < 30; i++) {
		int err = tsock_ident("a", "198.19.0.10:80", out, sizeof(out));

		cr_assert_eq(err, 0, "connect %d to the VIP: %s", i, strerror(-err));
		/* The backend saw the pod's own address: the upstream socket lives in
		 * the pod's netns.
		 */
		cr_assert(strstr(out, " 198.18.1.2") != NULL, "answer '%s' not from the pod address", out);
		cr_assert(!strncmp(out, "web-", 4), "answer '%s' is not from a web endpoint", out);
		seen[out[4] - '1']++;
	}
	/* Round robin over three ready endpoints: exactly even. */
	cr_expect_eq(seen[0], 10, "web-1 answered %d of 30", seen[0]);
	cr_expect_eq(seen[1], 10, "web-2 answered %d of 30", seen[1]);
	cr_expect_eq(seen[2], 10, "web-3 answered %d of 30", seen[2]);
	cr_expect_geq(tenv_status_counter(&env, "connections.to_service"), 30);
	/* eBPF mode's own account of it; nft mode keeps none (conntrack answers). */
	if (tenv_mode_is("ebpf")) {
		cr_expect_geq(tenv_status_counter(&env, "bpf.counters.redirected"), 30);
		cr_expect_geq(tenv_status_counter(&env, "bpf.counters.orig_answered"), 30);
	}
}

/* Two workers: the kernel spreads connections over both listeners, each
 * round-robins its share, so any run of k picks on a worker gives every
 * endpoint floor(k/3) or ceil(k/3): 19 to 21 of 60 node-wide. Counters are
 * summed over the workers.
 */
Test(capture, two_workers_serve_the_pod_and_their_counters_add_up)
{
	int seen[3] = { 0 };
	char out[256];

	restart_with_workers("2");
	cr_assert_eq(tenv_status_counter(&env, "workers"), 2);
	for (int i = 0; i < 60; i++) {
		int err = tsock_ident("a", "198.19.0.10:80", out, sizeof(out));

		cr_assert_eq(err, 0, "connect %d to the VIP: %s", i, strerror(-err));
		cr_assert(strstr(out, " 198.18.1.2") != NULL, "answer '%s' not from the pod address", out);
		cr_assert(!strncmp(out, "web-", 4), "answer '%s' is not from a web endpoint", out);
		seen[out[4] - '1']++;
	}
	for (int i = 0; i < 3; i++)
		cr_expect(seen[i] >= 19 && seen[i] <= 21, "web-%d answered %d of 60", i + 1, seen[i]);
	cr_expect_geq(tenv_status_counter(&env, "connections.to_service"), 60);
	if (tenv_mode_is("ebpf"))
		cr_expect_geq(tenv_status_counter(&env, "bpf.counters.redirected"), 60);
}

Test(capture, curl_reaches_the_service_unmodified)
{
	char out[512], netns[128];
	int rc;

	rc = tenv_capture(out, sizeof(out), "nsenter --net=%s curl -sS --max-time 5 http://198.19.0.10/",
			  tns_path("a", netns, sizeof(netns)));
	cr_assert_eq(rc, 0, "curl exited %d: %s", rc, out);
	cr_assert(!strncmp(out, "web-", 4), "curl got '%s'", out);
}

Test(capture, non_service_destination_passes_through_the_proxy)
{
	long long before = tenv_status_counter(&env, "connections.passthrough");
	char out[256];
	int err;

	err = tsock_ident("a", "198.18.2.14:8080", out, sizeof(out));
	cr_assert_eq(err, 0, "direct connect through the proxy: %s", strerror(-err));
	cr_assert(!strcmp(out, "api-1 198.18.1.2"), "got '%s'", out);
	cr_assert_eq(tenv_status_counter(&env, "connections.passthrough"), before + 1,
		     "the connection did not go through the proxy");
}

Test(capture, pod_of_a_plain_namespace_is_left_alone)
{
	long long before = tenv_status_counter(&env, "connections.total");
	char out[256];
	int err;

	/* Not captured: the VIP exists nowhere on the wire, so it fails. */
	err = tsock_ident("c", "198.19.0.10:80", out, sizeof(out));
	cr_assert_neq(err, 0, "a plain pod reached the VIP: '%s'", out);
	/* Its direct traffic works and never touches the proxy. */
	err = tsock_ident("c", "198.18.2.14:8080", out, sizeof(out));
	cr_assert_eq(err, 0, "plain pod direct connect: %s", strerror(-err));
	cr_assert(!strcmp(out, "api-1 198.18.4.2"), "got '%s'", out);
	cr_assert_eq(tenv_status_counter(&env, "connections.total"), before);
}

struct hammer {
	const char *ns, *vip, *want_prefix, *want_peer;
	int ok, crossed, failed;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	char out[256];

	for (int i = 0; i < 200; i++) {
		if (tsock_ident(h->ns, h->vip, out, sizeof(out))) {
			h->failed++;
			continue;
		}
		if (strncmp(out, h->want_prefix, strlen(h->want_prefix)) ||
		    !strstr(out, h->want_peer))
			h->crossed++;
		else
			h->ok++;
	}
	return NULL;
}

Test(capture, two_pods_to_two_services_concurrently_never_cross)
{
	struct hammer h[4] = {
		{ .ns = "a", .vip = "198.19.0.10:80", .want_prefix = "web-", .want_peer = " 198.18.1.2" },
		{ .ns = "b", .vip = "198.19.0.20:80", .want_prefix = "api-", .want_peer = " 198.18.3.2" },
		{ .ns = "a", .vip = "198.19.0.20:80", .want_prefix = "api-", .want_peer = " 198.18.1.2" },
		{ .ns = "b", .vip = "198.19.0.10:80", .want_prefix = "web-", .want_peer = " 198.18.3.2" },
	};
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++) {
		cr_expect_eq(h[i].crossed, 0, "%s→%s: %d answers from the wrong service or pod",
			     h[i].ns, h[i].vip, h[i].crossed);
		cr_expect_eq(h[i].failed, 0, "%s→%s: %d connections failed", h[i].ns, h[i].vip,
			     h[i].failed);
		cr_expect_eq(h[i].ok, 200);
	}
}

Test(capture, ipv6_vip_is_captured)
{
	char out[256];
	int err = tsock_ident("a", "[fd00:198:19::10]:80", out, sizeof(out));

	cr_assert_eq(err, 0, "IPv6 VIP: %s", strerror(-err));
	cr_assert(!strcmp(out, "web-v6 fd00:198:1::2"), "got '%s'", out);
}

Test(capture, ipv4_mapped_vip_from_a_dual_stack_socket_is_captured)
{
	char out[256];
	int err = tsock_ident("a", "[::ffff:198.19.0.10]:80", out, sizeof(out));

	cr_assert_eq(err, 0, "v4-mapped VIP: %s", strerror(-err));
	cr_assert(!strncmp(out, "web-", 4) && strstr(out, " 198.18.1.2"), "got '%s'", out);
}

Test(capture, loopback_destinations_stay_in_the_pod)
{
	long long before = tenv_status_counter(&env, "bpf.counters.loopback");
	long long total = tenv_status_counter(&env, "connections.total");
	int fd = tsock_connect("a", "127.0.0.1:9", 2000);

	/* Nothing listens on port 9 inside the pod: refused by the pod's own lo. */
	cr_assert_eq(fd, -ECONNREFUSED, "127.0.0.1:9 gave %d", fd);
	cr_assert_eq(tenv_status_counter(&env, "connections.total"), total,
		     "a loopback connect reached the proxy");
	if (tenv_mode_is("ebpf"))
		cr_assert_gt(tenv_status_counter(&env, "bpf.counters.loopback"), before);
}

Test(capture, service_without_ready_endpoints_is_refused_promptly)
{
	char out[256];
	int err;

	tenv_write_registry(&env, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh\n"
				  "  labels:\n    weft.io/mesh: enabled\n---\n"
				  "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
				  "  namespace: mesh\nspec:\n  clusterIP: 198.19.0.10\n  ports:\n"
				  "  - port: 80\n");
	for (int i = 0; i < 50; i++) {
		if (tenv_status_counter(&env, "catalogue_generation") >= 2)
			break;
		usleep(100000);
	}
	err = tsock_ident("a", "198.19.0.10:80", out, sizeof(out));
	cr_assert(err == -ECONNRESET || err == -EPIPE || err == -ECONNREFUSED, "got %d '%s'", err,
		  out);
	cr_assert_geq(tenv_status_counter(&env, "connections.no_endpoint"), 1);
}
