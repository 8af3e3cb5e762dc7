// SPDX-License-Identifier: GPL-2.0-only
/* Mutual TLS between two meshed pods, in the capture mode of the run (in
 * MODE_SUITES): client pod a (mesh/client-a, service account frontend)
 * dials the VIP of Service "secure", whose one endpoint is the meshed pod
 * mesh/backends (netns s, 198.18.2.11, service account backend). The agent
 * opens TLS 1.3 from a's netns to 198.18.2.11:15008, captured in s like any
 * inbound connection, and delivers to the server from a's own address.
 *
 * Checked: a packet capture on s's interface sees the TLS handshake to
 * 15008 and never the request in the clear; the server sees 198.18.1.2;
 * the handshake counters on both sides; strict mode refusing a plaintext
 * client (and counting it) while mTLS still passes; weft.io/allow-from
 * refusing a wrong identity and admitting the right one; a certificate
 * renewal under an open connection that loses nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "fixture.h"
#include "proc.h"
#include "servers.h"
#include "sock.h"
#include "tns.h"
#include "topo.h"

static char cadir[] = "/tmp/weft-mtls-tr-XXXXXX";

#define SECURE_VIP "198.19.0.30:80"

static const char *pods_yaml =
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: backends, namespace: mesh}\n"
	"spec: {serviceAccountName: backend}\nstatus: {podIP: 198.18.2.11, phase: Running}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: client-a, namespace: mesh}\n"
	"spec: {serviceAccountName: frontend}\nstatus: {podIP: 198.18.1.2, phase: Running}\n";

/* Service secure, with @annotations ("" for none). */
static void registry(const char *ns_annotations, const char *svc_annotations)
{
	char yaml[16384];

	snprintf(yaml, sizeof(yaml),
		 "%s%s"
		 "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: secure\n  namespace: mesh\n"
		 "  annotations: {%s}\n"
		 "spec:\n  clusterIP: 198.19.0.30\n  ports:\n  - {name: tcp, port: 80, targetPort: 8080}\n"
		 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		 "  name: secure-1\n  namespace: mesh\n  labels: {kubernetes.io/service-name: secure}\n"
		 "addressType: IPv4\nendpoints:\n- addresses: [198.18.2.11]\n"
		 "ports:\n- {name: tcp, port: 8080}\n"
		 "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh\n"
		 "  labels: {weft.io/mesh: enabled}\n  annotations: {%s}\n",
		 /* The topology without its mesh Namespace, which ours replaces
		  * (the file registry rejects an object defined twice).
		  */
		 strstr(TOPO_REGISTRY, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: plain"),
		 pods_yaml, svc_annotations, ns_annotations);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
}

static void up(void)
{
	char args[1024], cmd[1024];

	cr_assert_not_null(mkdtemp(cadir));
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-days 2 -subj /O=weft-test/CN=ca -keyout ca.key -out ca.pem "
		 "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
		 ">/dev/null 2>&1", cadir);
	cr_assert_eq(system(cmd), 0, "openssl: no CA");
	snprintf(args, sizeof(args), "--ca-cert %s/ca.pem --ca-key %s/ca.key --svid-ttl 10",
		 cadir, cadir);
	fixture_up_with(args);
	fixture_backends_start(false);
	fixture_enroll("s", "mesh", "backends", "198.18.2.11");
	registry("", "");
}

static void down(void)
{
	char cmd[128];

	fixture_backends_stop();
	fixture_down();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cadir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(mtls_transport, .init = up, .fini = down, .timeout = 180);

/* IDENT through the secure VIP from pod a, retried for up to @ms while the
 * registry and certificates settle. 0 and @out, or the last -errno.
 */
static int ident_until(const char *ns, const char *dst, char *out, size_t len, uint64_t ms)
{
	uint64_t end = mono_ms() + ms;
	int err;

	do {
		err = tsock_ident(ns, dst, out, len);
		if (!err)
			return 0;
		usleep(100000);
	} while (mono_ms() < end);
	return err;
}

/* A sniffer on s's interface for @secs: writes to @path "tls=N clear=M"
 * where N counts TCP segments to port 15008 that start a TLS handshake
 * record (0x16 0x03) and M every frame holding "IDENT" or "web-1" in the
 * clear. Returns its pid.
 */
static pid_t sniff(const char *path, int secs)
{
	char s[64], cmd[2048];
	pid_t pid;

	tns_name("s", s, sizeof(s));
	snprintf(cmd, sizeof(cmd),
		 "import socket, time\n"
		 "p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))\n"
		 "p.bind(('s-r', 0)); p.settimeout(0.2)\n"
		 "tls = clear = 0; end = time.time() + %d\n"
		 "open('%s.ready', 'w').close()\n"
		 "while time.time() < end:\n"
		 "    try: f = p.recv(65535)\n"
		 "    except socket.timeout: continue\n"
		 "    if b'IDENT' in f or b'web-1' in f: clear += 1\n"
		 "    if len(f) < 34 or f[12:14] != b'\\x08\\x00' or f[23] != 6: continue\n"
		 "    ihl = (f[14] & 15) * 4; t = 14 + ihl\n"
		 "    dport = int.from_bytes(f[t+2:t+4], 'big'); doff = (f[t+12] >> 4) * 4\n"
		 "    pl = f[t+doff:]\n"
		 "    if dport == 15008 and pl[:2] == b'\\x16\\x03': tls += 1\n"
		 "open('%s', 'w').write('tls=%%d clear=%%d' %% (tls, clear))\n",
		 secs, path, path);
	pid = fork();
	if (pid == 0) {
		execlp("ip", "ip", "netns", "exec", s, TPROC_PYTHON, "-c", cmd, (char *)NULL);
		_exit(127);
	}
	cr_assert_gt(pid, 0);
	for (int i = 0; i < 50; i++) {
		char ready[512];

		snprintf(ready, sizeof(ready), "%s.ready", path);
		if (!access(ready, F_OK))
			return pid;
		usleep(100000);
	}
	cr_assert_fail("the sniffer did not start");
	return -1;
}

Test(mtls_transport, tls_on_the_wire_and_the_server_sees_the_client)
{
	long long out0 = tenv_status_counter(&env, "mtls.out");
	long long in0 = tenv_status_counter(&env, "mtls.in");
	char out[256], path[256], result[64] = "";
	int status;
	FILE *f;
	pid_t pid;

	cr_assert_eq(ident_until("a", SECURE_VIP, out, sizeof(out), 10000), 0,
		     "meshed a → secure VIP never answered");
	snprintf(path, sizeof(path), "%s/sniff", cadir);
	pid = sniff(path, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tsock_ident("a", SECURE_VIP, out, sizeof(out)), 0);
		/* The application sees pod a's own address, not an agent's. */
		cr_assert_str_eq(out, "web-1 198.18.1.2");
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "the sniffer wrote nothing");
	cr_assert_not_null(fgets(result, sizeof(result), f));
	fclose(f);
	{
		int tls = -1, clear = -1;

		cr_assert_eq(sscanf(result, "tls=%d clear=%d", &tls, &clear), 2, "%s", result);
		cr_assert_geq(tls, 3, "three TLS handshakes to :15008 on the wire: %s", result);
		cr_assert_eq(clear, 0, "request or answer in the clear on the wire: %s", result);
	}
	cr_assert_geq(tenv_status_counter(&env, "mtls.out"), out0 + 3);
	cr_assert_geq(tenv_status_counter(&env, "mtls.in"), in0 + 3);
}

Test(mtls_transport, strict_namespace_refuses_plaintext_and_counts_it)
{
	char out[256];
	long long refused0;
	int err = -1;

	cr_assert_eq(ident_until("a", SECURE_VIP, out, sizeof(out), 10000), 0);
	/* Permissive (the default): the unmeshed client c gets through. */
	cr_assert_eq(tsock_ident("c", "198.18.2.11:8080", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "web-1 198.18.4.2");
	refused0 = tenv_status_counter(&env, "mtls.plaintext_refused");
	registry("weft.io/mtls-mode: strict", "");
	for (int i = 0; i < 50; i++) {
		err = tsock_ident("c", "198.18.2.11:8080", out, sizeof(out));
		if (err)
			break;
		usleep(100000);
	}
	cr_assert_neq(err, 0, "strict: a plaintext client still reached the server");
	cr_assert_gt(tenv_status_counter(&env, "mtls.plaintext_refused"), refused0);
	/* mTLS from the meshed pod still passes. */
	cr_assert_eq(tsock_ident("a", SECURE_VIP, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "web-1 198.18.1.2");
}

Test(mtls_transport, allow_from_refuses_a_wrong_identity)
{
	char out[256];
	long long denied0;
	int err = -1;

	cr_assert_eq(ident_until("a", SECURE_VIP, out, sizeof(out), 10000), 0);
	denied0 = tenv_status_counter(&env, "mtls.denied");
	registry("", "weft.io/allow-from: \"mesh/sa/admin, ops/*\"");
	for (int i = 0; i < 50; i++) {
		err = tsock_ident("a", SECURE_VIP, out, sizeof(out));
		if (err)
			break;
		usleep(100000);
	}
	cr_assert_neq(err, 0, "mesh/sa/frontend is not allowed, yet got through");
	cr_assert_gt(tenv_status_counter(&env, "mtls.denied"), denied0);
	/* Counted with the caller's identity. */
	{
		json_object *ids = tenv_admin_get(&env, "/v1/identities"), *arr, *v;
		long long n = 0;

		cr_assert(ids && json_object_object_get_ex(ids, "denied", &arr));
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);

			if (json_object_object_get_ex(e, "identity", &v) &&
			    !strcmp(json_object_get_string(v),
				    "spiffe://cluster.local/ns/mesh/sa/frontend") &&
			    json_object_object_get_ex(e, "count", &v))
				n = json_object_get_int64(v);
		}
		json_object_put(ids);
		cr_expect_gt(n, 0, "no refusal counted for mesh/sa/frontend");
	}
	/* meshctl trace's source says why, before anyone tries. */
	{
		json_object *tr = tenv_admin_get(&env, "/v1/trace?pod=mesh/client-a&dest=" SECURE_VIP);
		const char *text = tr ? json_object_to_json_string(tr) : "";

		cr_expect(strstr(text, "encrypted: TLS 1.3 to port 15008"), "%s", text);
		cr_expect(strstr(text, "spiffe:\\/\\/cluster.local\\/ns\\/mesh\\/sa\\/frontend would be refused") ||
			  strstr(text, "spiffe://cluster.local/ns/mesh/sa/frontend would be refused"),
			  "%s", text);
		json_object_put(tr);
	}
	registry("", "weft.io/allow-from: \"mesh/sa/frontend\"");
	cr_assert_eq(ident_until("a", SECURE_VIP, out, sizeof(out), 5000), 0,
		     "mesh/sa/frontend is allowed now");
	cr_assert_str_eq(out, "web-1 198.18.1.2");
}

/* The serial of @uri's certificate in /v1/identities, into @buf. */
static const char *serial_of(const char *uri, char *buf, size_t len)
{
	json_object *all = tenv_admin_get(&env, "/v1/identities"), *arr, *v;

	buf[0] = '\0';
	if (all && json_object_object_get_ex(all, "identities", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);

			if (json_object_object_get_ex(e, "id", &v) &&
			    !strcmp(json_object_get_string(v), uri) &&
			    json_object_object_get_ex(e, "serial", &v))
				snprintf(buf, len, "%s", json_object_get_string(v));
		}
	}
	json_object_put(all);
	return buf;
}

Test(mtls_transport, renewal_keeps_an_open_connection)
{
	const char *uri = "spiffe://cluster.local/ns/mesh/sa/frontend";
	char out[256], before[64], after[64], buf[512];
	size_t got = 0;
	int fd;

	cr_assert_eq(ident_until("a", SECURE_VIP, out, sizeof(out), 10000), 0);
	serial_of(uri, before, sizeof(before));
	cr_assert_neq(before[0], '\0', "no certificate for %s", uri);
	fd = tsock_connect("a", SECURE_VIP, 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(write(fd, "ECHO\nbefore-", 12), 12);
	/* --svid-ttl 10: renewed at about 5 s; both ends' certificates change. */
	for (int i = 0; i < 90 && !strcmp(serial_of(uri, after, sizeof(after)), before); i++)
		usleep(100000);
	cr_assert_str_neq(after, before, "not renewed within 9 s");
	/* The admin API names both ends of the open connection. */
	{
		json_object *all = tenv_admin_get(&env, "/v1/conns"), *arr, *v;
		bool client = false, server = false;

		cr_assert(all && json_object_object_get_ex(all, "conns", &arr));
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *c = json_object_array_get_idx(arr, i);
			const char *side = json_object_object_get_ex(c, "mtls", &v) && v
						   ? json_object_get_string(v) : "";
			const char *peer = json_object_object_get_ex(c, "peer_identity", &v) && v
						   ? json_object_get_string(v) : "";

			client |= !strcmp(side, "client") &&
				  !strcmp(peer, "spiffe://cluster.local/ns/mesh/sa/backend");
			server |= !strcmp(side, "server") &&
				  !strcmp(peer, "spiffe://cluster.local/ns/mesh/sa/frontend");
		}
		json_object_put(all);
		cr_expect(client, "no conn shown as mTLS to mesh/sa/backend");
		cr_expect(server, "no conn shown as mTLS from mesh/sa/frontend");
	}
	usleep(500000);
	cr_assert_eq(write(fd, "after", 5), 5);
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	cr_assert_str_eq(buf, "before-afterBYE 12\n", "the connection lost bytes: '%s'", buf);
	/* And new connections use the new certificates. */
	cr_assert_eq(tsock_ident("a", SECURE_VIP, out, sizeof(out)), 0);
}

/* A hand-over passes no mTLS connection (its TLS session lives in the old
 * agent's OpenSSL objects): both ends of an open stream, the client side
 * to the meshed endpoint and the server side to the application, stay with
 * the old agent, which relays them to their end while it drains.
 */
Test(mtls_transport, a_hand_over_leaves_mtls_streams_to_drain)
{
	char out[256];
	json_object *all, *arr, *v;
	pid_t old = env.agent;
	uint64_t until;
	int fd, status, passed = 0;

	cr_assert_eq(ident_until("a", SECURE_VIP, out, sizeof(out), 10000), 0);
	fd = tsock_connect("a", SECURE_VIP, 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(write(fd, "ECHO\nabc", 8), 8);
	cr_assert_eq(tsock_request(fd, "", out, 4, 3000), 3);
	env.agent = 0;
	cr_assert_lt(strlen(env.extra_args) + 12, sizeof(env.extra_args));
	strcat(env.extra_args, " --takeover");
	cr_assert_eq(tenv_agent_start(&env), 0, "successor, see %s", env.agent_log);
	until = mono_ms() + 15000;
	while (tenv_admin_pid(&env) != env.agent) {
		cr_assert_lt(mono_ms(), until, "the successor never took over, see %s",
			     env.agent_log);
		usleep(20000);
	}
	all = tenv_admin_get(&env, "/v1/conns");
	cr_assert(all && json_object_object_get_ex(all, "conns", &arr));
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *c = json_object_array_get_idx(arr, i);

		passed += json_object_object_get_ex(c, "handed_over", &v) &&
			  json_object_get_boolean(v);
	}
	json_object_put(all);
	cr_expect_eq(passed, 0, "%d connection(s) passed", passed);
	cr_assert_eq(kill(old, 0), 0, "the old agent did not wait for the stream");
	cr_assert_eq(tsock_request(fd, "def", out, 4, 3000), 3, "the stream broke");
	cr_expect_eq(memcmp(out, "def", 3), 0);
	shutdown(fd, SHUT_WR);
	cr_assert_gt(tsock_request(fd, "", out, sizeof(out), 3000), 0);
	cr_expect(!strncmp(out, "BYE 6", 5), "got '%s'", out);
	close(fd);
	/* Its last connection ended: the old agent exits cleanly, before the deadline. */
	cr_assert_eq(waitpid(old, &status, 0), old);
	cr_expect(WIFEXITED(status) && !WEXITSTATUS(status), "old agent: %#x, see %s", status,
		  env.agent_log);
}
