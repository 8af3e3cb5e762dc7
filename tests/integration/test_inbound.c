// SPDX-License-Identifier: GPL-2.0-only
/* Inbound capture end to end, in the capture mode of the run (make
 * test-integration runs this suite once per mode): the backends' netns "s"
 * is enrolled as the meshed pod mesh/backends, so every connection to its
 * ports is accepted by the agent inside the pod and relayed to the server
 * from the client's own address. Plus what both modes must show alike:
 * exclusions that really bypass the agent, getpeername() naming the VIP, and
 * the kernel's capture state appearing and going exactly with enrolment.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include "abi.h"

#include "datapath/nft.h"
#include "datapath/retpath.h"
#include "fixture.h"
#include "netns.h"
#include "proc.h"
#include "servers.h"
#include "sock.h"
#include "tns.h"
#include "topo.h"

#define BACKENDS_POD "backends"
#define INBOUND_MARK 0xef71	/* the agent's default --inbound-mark */
#define RETURN_TABLE 15006	/* --return-table */
#define RETURN_PRIORITY 32000	/* CAPTURE_RETURN_PRIORITY */

static pid_t http404;

static void up(void)
{
	fixture_up();
	fixture_backends_start(true);
	/* A keep-alive HTTP server answering 404 beside the plain backends. */
	http404 = tsrv_start_http("s", "198.18.2.11", 8081, "notfound", 404, 0);
	cr_assert_gt(http404, 0, "the HTTP server did not start");
	fixture_enroll("s", "mesh", BACKENDS_POD, "198.18.2.11");
}

static void down(void)
{
	tsrv_stop(http404);
	fixture_backends_stop();
	fixture_down();
}

TestSuite(inbound, .init = up, .fini = down, .timeout = 120);

/* The pod @name's entry of /v1/pods (a new reference), or NULL. */
static json_object *pod_entry(const char *name)
{
	json_object *all = tenv_admin_get(&env, "/v1/pods"), *pods, *found = NULL;

	if (all && json_object_object_get_ex(all, "pods", &pods)) {
		for (size_t i = 0; i < json_object_array_length(pods); i++) {
			json_object *p = json_object_array_get_idx(pods, i), *n;

			if (json_object_object_get_ex(p, "name", &n) &&
			    !strcmp(json_object_get_string(n), name)) {
				found = json_object_get(p);
				break;
			}
		}
	}
	json_object_put(all);
	return found;
}

/* The inbound counter @key ("connections", "responses.4xx") of @port of pod
 * @name; 0 when the port has no entry yet, -1 when the pod has no
 * "inbound" array at all (no inbound capture).
 */
static long long inbound_counter(const char *name, int port, const char *key)
{
	json_object *p = pod_entry(name), *arr, *v;
	long long n = -1;
	char first[32];
	const char *dot = strchr(key, '.');

	if (!p)
		return -1;
	if (json_object_object_get_ex(p, "inbound", &arr)) {
		n = 0;
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i), *pt;

			if (!json_object_object_get_ex(e, "port", &pt) ||
			    json_object_get_int(pt) != port)
				continue;
			snprintf(first, sizeof(first), "%.*s", dot ? (int)(dot - key) : (int)strlen(key),
				 key);
			if (json_object_object_get_ex(e, first, &v) &&
			    (!dot || json_object_object_get_ex(v, dot + 1, &v)))
				n = json_object_get_int64(v);
		}
	}
	json_object_put(p);
	return n;
}

/* Wait until the counter reaches @want (the relay counts at close). */
static long long inbound_wait(const char *name, int port, const char *key, long long want)
{
	long long n = -1;

	for (int i = 0; i < 50; i++) {
		n = inbound_counter(name, port, key);
		if (n >= want)
			break;
		usleep(100000);
	}
	return n;
}

Test(inbound, a_client_outside_the_mesh_reaches_the_server_which_sees_its_address)
{
	long long before = inbound_counter(BACKENDS_POD, 8080, "connections");
	char out[256];
	int err;

	cr_assert_geq(before, 0, "pod %s has no inbound capture in /v1/pods", BACKENDS_POD);
	err = tsock_ident("c", "198.18.2.11:8080", out, sizeof(out));
	cr_assert_eq(err, 0, "plain client → meshed server: %s", strerror(-err));
	/* The agent connected from the client's own address: the server
	 * cannot tell it is there.
	 */
	cr_assert_str_eq(out, "web-1 198.18.4.2");
	cr_assert_geq(inbound_wait(BACKENDS_POD, 8080, "connections", before + 1), before + 1,
		      "the agent did not count the inbound connection");
	cr_assert_gt(inbound_counter(BACKENDS_POD, 8080, "bytes_out"), 0);
}

Test(inbound, ipv6_clients_are_captured_and_keep_their_address)
{
	long long before = inbound_counter(BACKENDS_POD, 8080, "connections");
	char out[256];
	int err = tsock_ident("c", "[fd00:198:2::11]:8080", out, sizeof(out));

	cr_assert_eq(err, 0, "IPv6 plain client → meshed server: %s", strerror(-err));
	cr_assert_str_eq(out, "web-v6 fd00:198:4::2");
	cr_assert_geq(inbound_wait(BACKENDS_POD, 8080, "connections", before + 1), before + 1);
}

Test(inbound, a_pod_meshed_on_both_sides_goes_through_both_agents_halves)
{
	long long in_before = inbound_counter(BACKENDS_POD, 8080, "connections");
	long long out_before = tenv_status_counter(&env, "connections.to_service");
	char out[256];

	for (int i = 0; i < 6; i++) {
		int err = tsock_ident("a", "198.19.0.10:80", out, sizeof(out));

		cr_assert_eq(err, 0, "meshed client → VIP → meshed server: %s", strerror(-err));
		cr_assert(!strncmp(out, "web-", 4) && strstr(out, " 198.18.1.2"),
			  "answer '%s' is not a web backend seeing client-a's address", out);
	}
	cr_assert_geq(tenv_status_counter(&env, "connections.to_service"), out_before + 6);
	cr_assert_geq(inbound_wait(BACKENDS_POD, 8080, "connections", in_before + 1),
		      in_before + 1, "the server side never counted the meshed client");
}

Test(inbound, http_responses_are_counted_by_status_class_per_port)
{
	long long before = inbound_counter(BACKENDS_POD, 8081, "responses.4xx");
	char out[512];
	int fd;

	if (before < 0)
		before = 0;
	fd = tsock_connect("c", "198.18.2.11:8081", 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_gt(tsock_request(fd,
				   "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
				   "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				   out, sizeof(out), 3000),
		     0);
	close(fd);
	cr_assert(strstr(out, "404") != NULL, "no 404 in '%s'", out);
	cr_assert_geq(inbound_wait(BACKENDS_POD, 8081, "responses.4xx", before + 2), before + 2,
		      "two 404s on one keep-alive connection were not both counted");
	cr_assert_geq(inbound_counter(BACKENDS_POD, 8081, "requests"), 2);
}

Test(inbound, a_server_that_speaks_first_is_not_held_back)
{
	pid_t banner = tsrv_start_banner("s", "198.18.2.12", 8082, "hello");
	struct timeval tv = { .tv_sec = 1 };
	char out[256];
	ssize_t n;
	int fd;

	cr_assert_gt(banner, 0);
	fd = tsock_connect("c", "198.18.2.12:8082", 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	/* Nothing sent: the banner must arrive on its own, well within the
	 * outbound side's protocol-detection window.
	 */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, out, sizeof(out) - 1, 0);
	cr_assert_gt(n, 0, "the server's banner did not come through without a client byte");
	out[n] = '\0';
	cr_assert(!strncmp(out, "BANNER hello", 12), "got '%s'", out);
	close(fd);
	tsrv_stop(banner);
}

Test(inbound, dialling_the_inbound_listener_itself_is_refused_not_looped)
{
	char out[64];
	int fd = tsock_connect("c", "198.18.2.11:15006", 2000);

	/* Either never accepted or reset at once: never relayed to itself. */
	if (fd >= 0) {
		cr_assert_leq(tsock_request(fd, "IDENT\n", out, sizeof(out), 2000), 0,
			      "the inbound port answered: '%s'", out);
		close(fd);
	}
	cr_assert_eq(tsock_ident("c", "198.18.2.11:8080", out, sizeof(out)), 0,
		     "the agent is not serving after a direct dial of its port");
}

/* TOPO_REGISTRY plus Pod objects carrying @annotations: mesh/backends's and
 * mesh/client-a's. Waits until /v1/pods shows @expect.
 */
static void registry_with_pods(const char *backends_ann, const char *client_ann,
			       const char *expect)
{
	char yaml[8192];

	snprintf(yaml, sizeof(yaml),
		 "%s---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: " BACKENDS_POD "\n"
		 "  namespace: mesh\n  annotations:\n%s"
		 "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: client-a\n"
		 "  namespace: mesh\n  annotations:\n%s",
		 TOPO_REGISTRY, backends_ann, client_ann);
	fixture_registry_until(yaml, expect);
}

Test(inbound, excluded_inbound_and_outbound_ports_bypass_the_agent)
{
	long long total, in8080;
	char out[256];

	registry_with_pods("    weft.io/exclude-inbound-ports: \"8080\"\n",
			   "    weft.io/exclude-outbound-ports: \"8080\"\n",
			   "\"exclude_inbound_ports\":[8080]");
	/* Capture in place, read back from the kernel, says the same. */
	{
		json_object *p = pod_entry(BACKENDS_POD), *ok;

		cr_assert(p && json_object_object_get_ex(p, "capture_in_place", &ok) &&
				  json_object_get_boolean(ok),
			  "capture of %s is not in place after the annotation changed",
			  BACKENDS_POD);
		json_object_put(p);
	}
	total = tenv_status_counter(&env, "connections.total");
	in8080 = inbound_counter(BACKENDS_POD, 8080, "connections");
	/* Outbound: client-a's port 8080 is excluded; inbound: the backends'. */
	cr_assert_eq(tsock_ident("a", "198.18.2.13:8080", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "web-3 198.18.1.2");
	cr_assert_eq(tsock_ident("c", "198.18.2.11:8080", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "web-1 198.18.4.2");
	usleep(300000);
	cr_assert_eq(tenv_status_counter(&env, "connections.total"), total,
		     "an excluded outbound port went through the proxy");
	cr_assert_eq(inbound_counter(BACKENDS_POD, 8080, "connections"), in8080,
		     "an excluded inbound port went through the agent");
	/* Other ports keep being captured. */
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert_eq(tenv_status_counter(&env, "connections.total"), total + 1);
	registry_with_pods("    weft.io/none: \"\"\n", "    weft.io/none: \"\"\n",
			   "\"exclude_inbound_ports\":[]");
}

/* What the kernel holds for netns @ns: table inet weft (nft mode) and the
 * return path's rules, read over netlink as the agent reads them.
 */
struct kernel_view {
	bool table;
	bool prerouting;
	struct retpath_state ret;
};

static void read_kernel(const char *ns, struct kernel_view *kv)
{
	const struct retpath r = {
		.mark = INBOUND_MARK, .table = RETURN_TABLE, .priority = RETURN_PRIORITY,
	};
	char path[128];
	struct nft_pod_state st;
	int fd;

	fd = netns_open(tns_path(ns, path, sizeof(path)));
	cr_assert_geq(fd, 0, "open netns %s", ns);
	memset(kv, 0, sizeof(*kv));
	cr_assert_eq(nft_pod_read(fd, &st), 0, "read table inet weft of %s", ns);
	kv->table = st.table_present;
	kv->prerouting = st.prerouting.present;
	cr_assert_eq(retpath_read(fd, &r, &kv->ret), 0, "read the return path of %s", ns);
	close(fd);
}

Test(inbound, kernel_state_appears_and_goes_exactly_with_enrolment)
{
	struct kernel_view kv;
	bool nft = tenv_mode_is("nft");
	char out[4096];

	read_kernel("s", &kv);
	cr_assert(kv.ret.rule4 && kv.ret.route4 && kv.ret.fwmark_accept == 1,
		  "enrolled: the return path is missing (rule %d route %d fwmark_accept %d)",
		  kv.ret.rule4, kv.ret.route4, kv.ret.fwmark_accept);
	cr_assert_eq(kv.table, nft, "enrolled in %s mode: table inet weft %s", tenv_mode(),
		     kv.table ? "present" : "absent");
	cr_assert_eq(kv.prerouting, nft);

	cr_assert_eq(tenv_cni(&env, "DEL", "s", "mesh", BACKENDS_POD, "198.18.2.11", out,
			      sizeof(out)),
		     0, "DEL: %s", out);
	read_kernel("s", &kv);
	cr_assert(!kv.table && !kv.ret.rule4 && !kv.ret.rule6 && !kv.ret.route4 &&
			  !kv.ret.route6,
		  "after DEL something stayed: table %d rules %d/%d routes %d/%d", kv.table,
		  kv.ret.rule4, kv.ret.rule6, kv.ret.route4, kv.ret.route6);
	/* Unmeshed, the server answers directly again. */
	cr_assert_eq(tsock_ident("c", "198.18.2.11:8080", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "web-1 198.18.4.2");

	fixture_enroll("s", "mesh", BACKENDS_POD, "198.18.2.11");
	read_kernel("s", &kv);
	cr_assert(kv.ret.rule4 && kv.ret.route4, "re-enrolled: no return path");
	cr_assert_eq(kv.table, nft);
}

Test(inbound, a_table_of_someone_else_survives_enrolment_and_release)
{
	char out[4096], path[128];

	tns_path("b", path, sizeof(path));
	/* The nft tool is the test's, in the test's own netns: weft itself
	 * speaks netlink.
	 */
	cr_assert_eq(tenv_capture(out, sizeof(out),
				  "nsenter --net=%s nft add table inet someone_else 2>&1 && "
				  "nsenter --net=%s nft add chain inet someone_else keep 2>&1",
				  path, path),
		     0, "could not create a foreign table: %s", out);
	cr_assert_eq(tenv_cni(&env, "DEL", "b", "mesh", "client-b", "198.18.3.2", out, sizeof(out)),
		     0, "DEL: %s", out);
	fixture_enroll("b", "mesh", "client-b", "198.18.3.2");
	cr_assert_eq(tenv_capture(out, sizeof(out), "nsenter --net=%s nft list tables 2>&1", path),
		     0);
	cr_assert(strstr(out, "table inet someone_else") != NULL,
		  "the foreign table is gone after release and enrolment: %s", out);
	/* Enrolled again: capture works beside it. */
	cr_assert_eq(tsock_ident("b", "198.19.0.20:80", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "api-1 198.18.3.2");
}

/* getpeername() on a captured socket: what the application dialled. */
static void peer_is(const char *dst, const char *want)
{
	char out[256], path[128];
	int rc = tenv_capture(
		out, sizeof(out),
		"nsenter --net=%s " TPROC_PYTHON " -c 'import socket,sys\n"
		"h,p=sys.argv[1].rsplit(\":\",1); h=h.strip(\"[]\")\n"
		"s=socket.create_connection((h,int(p)),timeout=3)\n"
		"print(s.getpeername()[0], s.getpeername()[1])' '%s' 2>&1",
		tns_path("a", path, sizeof(path)), dst);

	cr_assert_eq(rc, 0, "python client to %s: %s", dst, out);
	cr_assert(!strncmp(out, want, strlen(want)), "getpeername() said '%s', want '%s'", out,
		  want);
}

Test(inbound, getpeername_names_the_vip_not_the_listener)
{
	peer_is("198.19.0.10:80", "198.19.0.10 80");
	peer_is("[fd00:198:19::10]:80", "fd00:198:19::10 80");
}

/* Records of mesh_in_agent (eBPF mode) for connections from @src to @dst:
 * how many, and the source port of the last one in *@sport.
 */
static int in_agent_records(const char *src, const char *dst, uint16_t *sport)
{
	struct mesh_flow_key key, next;
	struct addr s, d;
	char pin[PATH_MAX + 32];
	void *prev = NULL;
	int fd, n = 0;

	cr_assert(addr_parse_ip(src, &s) == 0 && addr_parse_ip_port(dst, &d) == 0);
	snprintf(pin, sizeof(pin), "%s/maps/mesh_in_agent", env.bpffs);
	fd = bpf_obj_get(pin);
	cr_assert_geq(fd, 0, "open '%s': %s", pin, strerror(errno));
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (key.family != MESH_AF_INET || key.src.addr[0] != s.ip.v4.s_addr ||
		    key.dst.addr[0] != d.ip.v4.s_addr || key.dport != d.port)
			continue;
		*sport = key.sport;
		n++;
	}
	close(fd);
	return n;
}

/* The source port of the agent's connection from client @src to the
 * application at @dst, as the pod's netns holds it; 0 when there is none.
 */
static uint16_t agent_source_port(const char *src, const char *dst)
{
	char out[1024], s[64];
	const char *colon;

	cr_assert_eq(tenv_capture(out, sizeof(out), "ip netns exec %s ss -Htn state established "
						    "src %s dst %s",
				  tns_name("s", s, sizeof(s)), src, dst),
		     0);
	/* "0 0 198.18.4.2:61003 198.18.2.11:8080": the first address's port. */
	colon = strstr(out, src);
	if (!colon || colon[strlen(src)] != ':')
		return 0;
	return (uint16_t)atoi(colon + strlen(src) + 1);
}

/* A client that later picks the source address and port of one of the
 * agent's closed connections to an application is captured as any other:
 * in eBPF mode the agent's record of its connection (mesh_in_agent, which
 * lets it past sk_lookup) went when the connection closed; in nft mode
 * nothing is recorded. Before records were deleted this client reached the
 * application directly, unseen by the agent.
 */
Test(inbound, a_client_on_the_source_port_of_a_closed_agent_connection_is_captured)
{
	bool ebpf = tenv_mode_is("ebpf");
	long long before;
	char out[256], src[64];
	uint16_t port = 0, rec_port = 0;
	int fd;

	/* A held connection: the agent's connection to the server stays up. */
	fd = tsock_connect("c", "198.18.2.11:8080", 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\nhi", 7, MSG_NOSIGNAL), 7);
	cr_assert_eq(recv(fd, out, 2, MSG_WAITALL), 2, "no echo through the agent");
	port = agent_source_port("198.18.4.2", "198.18.2.11:8080");
	cr_assert_geq(port, 61000, "the agent's connection leaves from port %u", port);
	if (ebpf) {
		cr_assert_eq(in_agent_records("198.18.4.2", "198.18.2.11:8080", &rec_port), 1,
			     "the agent's open connection has no record");
		cr_assert_eq(rec_port, port);
	}
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	cr_assert_gt(tsock_request(fd, "", out, sizeof(out), 3000), 0);
	close(fd);
	if (ebpf) {
		int n = 1;

		for (int i = 0; i < 50 && n; i++) {
			n = in_agent_records("198.18.4.2",
					     "198.18.2.11:8080", &rec_port);
			if (n)
				usleep(100000);
		}
		cr_assert_eq(n, 0, "the record of the closed connection is still there");
	}

	/* The client on that very address and port. */
	before = inbound_counter(BACKENDS_POD, 8080, "connections");
	snprintf(src, sizeof(src), "198.18.4.2:%u", port);
	fd = tsock_connect_from("c", src, "198.18.2.11:8080", 5000);
	cr_assert_geq(fd, 0, "connect from %s: %s", src, strerror(-fd));
	cr_assert_gt(tsock_request(fd, "IDENT\n", out, sizeof(out), 3000), 0);
	close(fd);
	cr_assert_eq(strncmp(out, "web-1 198.18.4.2", 16), 0, "%s", out);
	cr_assert_geq(inbound_wait(BACKENDS_POD, 8080, "connections", before + 1), before + 1,
		      "a client on port %u reached the server past the agent", port);
}
