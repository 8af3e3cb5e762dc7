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
 * renewal under an open connection that loses nothing; HTTP keep-alive
 * requests, pipelined and one after the other, each answered at once; a
 * burst of small writes and single bytes, and a bulk transfer both ways,
 * arriving whole and in order.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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
/* The same Service's port to an HTTP/1.1 keep-alive server in pod s. */
#define SECURE_HTTP "198.19.0.30:81"

static pid_t keepalive_srv;

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
		 "  - {name: http, port: 81, targetPort: 8081}\n"
		 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		 "  name: secure-1\n  namespace: mesh\n  labels: {kubernetes.io/service-name: secure}\n"
		 "addressType: IPv4\nendpoints:\n- addresses: [198.18.2.11]\n"
		 "ports:\n- {name: tcp, port: 8080}\n- {name: http, port: 8081}\n"
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
	keepalive_srv = tsrv_start_http("s", "198.18.2.11", 8081, "keep-1", 200, 0);
	cr_assert_gt(keepalive_srv, 0, "the keep-alive server did not start");
	fixture_enroll("s", "mesh", "backends", "198.18.2.11");
	registry("", "");
}

static void down(void)
{
	char cmd[128];

	tsrv_stop(keepalive_srv);
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

/* Read from @fd until @n whole responses of the keep-alive server (a head,
 * then its Content-Length body) have come, for up to @ms. Each must be a
 * 200 whose body names the server and pod a. Returns how many came.
 */
static int responses(int fd, int n, int ms)
{
	static char buf[65536];
	size_t have = 0;
	uint64_t end = mono_ms() + (uint64_t)ms;
	int got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		const char *head_end, *cl;
		size_t head_len;
		long clen;
		ssize_t r;

		buf[have] = '\0';
		head_end = strstr(buf, "\r\n\r\n");
		if (head_end) {
			head_len = (size_t)(head_end - buf) + 4;
			cl = strcasestr(buf, "\r\nContent-Length: ");
			cr_assert(cl && cl < head_end, "no Content-Length: '%s'", buf);
			clen = strtol(cl + 18, NULL, 10);
			if (have >= head_len + (size_t)clen) {
				cr_assert(!strncmp(buf, "HTTP/1.1 200 ", 13), "response %d: '%.*s'", got,
					  (int)head_len, buf);
				cr_assert(!strncmp(buf + head_len, "keep-1 198.18.1.2\n", (size_t)clen),
					  "response %d's body: '%.*s'", got, (int)clen, buf + head_len);
				memmove(buf, buf + head_len + clen, have - head_len - (size_t)clen);
				have -= head_len + (size_t)clen;
				got++;
				continue;
			}
		}
		if (mono_ms() >= end || poll(&p, 1, 50) < 0)
			break;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		cr_assert_lt(have, sizeof(buf) - 1, "responses overflow the buffer");
		r = recv(fd, buf + have, sizeof(buf) - 1 - have, MSG_DONTWAIT);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	return got;
}

/* HTTP keep-alive over mTLS (the upstream connection is pooled): two
 * requests in one write, then one after the other on the same connection,
 * each answered at once. The SSL reads ahead: a read() takes a record and
 * whatever follows it, and one relay read takes every record that came
 * with it; nothing may be left inside the SSL, where epoll does not see
 * it, when the next request or answer is due.
 */
Test(mtls_transport, keep_alive_requests_pipelined_and_in_sequence_are_all_answered)
{
	static const char req[] = "GET /k HTTP/1.1\r\nHost: secure\r\n\r\n";
	long long out0;
	char two[2 * sizeof(req)];
	char out[256];
	int fd;

	cr_assert_eq(ident_until("a", SECURE_VIP, out, sizeof(out), 10000), 0);
	out0 = tenv_status_counter(&env, "mtls.out");
	fd = tsock_connect("a", SECURE_HTTP, 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	snprintf(two, sizeof(two), "%s%s", req, req);
	cr_assert_eq(send(fd, two, strlen(two), MSG_NOSIGNAL), (ssize_t)strlen(two));
	cr_assert_eq(responses(fd, 2, 3000), 2, "two pipelined requests, not two answers");
	for (int i = 0; i < 300; i++) {
		cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
		cr_assert_eq(responses(fd, 1, 2000), 1, "request %d of 300 not answered in 2 s", i);
	}
	close(fd);
	/* They went over TLS: one pooled connection (more only if it was
	 * replaced), not one per request.
	 */
	cr_expect_gt(tenv_status_counter(&env, "mtls.out"), out0);
	cr_expect_lt(tenv_status_counter(&env, "mtls.out"), out0 + 10);
}

/* Many small writes in a burst over one ECHO stream through mTLS, then
 * single bytes there and back: the burst's records reach the other side
 * several per read(), the single bytes one record each; every byte comes
 * back, in order, and none waits for the next one to be pushed out.
 */
Test(mtls_transport, a_burst_of_small_writes_then_single_bytes_all_come_back)
{
	enum { CHUNK = 25, CHUNKS = 400, PINGS = 50 };
	static char sent[CHUNK * CHUNKS], back[CHUNK * CHUNKS];
	char out[256];
	size_t got = 0;
	uint64_t end;
	int fd, one = 1;

	cr_assert_eq(ident_until("a", SECURE_VIP, out, sizeof(out), 10000), 0);
	fd = tsock_connect("a", SECURE_VIP, 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	for (size_t i = 0; i < sizeof(sent); i++)
		sent[i] = (char)tsrv_pattern(i);
	for (int i = 0; i < CHUNKS; i++)
		cr_assert_eq(send(fd, sent + i * CHUNK, CHUNK, 0), CHUNK);
	end = mono_ms() + 5000;
	while (got < sizeof(back) && mono_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) != 1)
			continue;
		n = recv(fd, back + got, sizeof(back) - got, 0);
		cr_assert_gt(n, 0, "the stream ended after %zu bytes of the burst", got);
		got += (size_t)n;
	}
	cr_assert_eq(got, sizeof(back), "%zu of %zu bytes of the burst came back in 5 s", got,
		     sizeof(back));
	cr_assert_eq(memcmp(sent, back, sizeof(back)), 0, "the burst came back changed");
	for (int i = 0; i < PINGS; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char c = (char)('a' + i % 26), r = 0;

		cr_assert_eq(send(fd, &c, 1, 0), 1);
		cr_assert_eq(poll(&p, 1, 2000), 1, "byte %d did not come back in 2 s", i);
		cr_assert_eq(recv(fd, &r, 1, 0), 1);
		cr_assert_eq(r, c, "byte %d came back as %d", i, r);
	}
	shutdown(fd, SHUT_WR);
	cr_assert_gt(tsock_request(fd, "", out, sizeof(out), 3000), 0);
	cr_assert_str_eq(out, "BYE 10050\n");
	close(fd);
}

/* A bulk transfer both ways at once over mTLS: full records, gathered four
 * to a send(), read ahead four to a read(); every byte arrives, in order.
 */
Test(mtls_transport, twenty_megabytes_arrive_byte_identical_both_ways)
{
	const size_t total = 20u << 20;
	char tail[64], why[128];
	int fd;

	cr_assert_eq(ident_until("a", SECURE_VIP, tail, sizeof(tail), 10000), 0);
	fd = tsock_connect("a", SECURE_VIP, 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	cr_assert_eq(tsock_echo_stream(fd, total, why, sizeof(why)), 0, "%s", why);
	cr_assert_gt(tsock_request(fd, "", tail, sizeof(tail), 5000), 0);
	cr_assert_str_eq(tail, "BYE 20971520\n");
	close(fd);
}
