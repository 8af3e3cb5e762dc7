// SPDX-License-Identifier: GPL-2.0-only
/* Strict HTTP/1.x end to end (proxy/framing.c, docs/resilience.md "HTTP
 * framing"): from meshed pod a through the api VIP (198.19.0.20:80, one
 * endpoint, 198.18.2.14:8080) to a scripted backend that logs every byte it
 * receives. Responses without a body by status or method end after their
 * head whatever their headers say, so the next request on the kept-alive
 * connection is answered; each smuggling shape is refused with 400 and
 * never reaches the backend; an ambiguous response becomes a 502, its
 * upstream is closed, and the endpoint's failure is counted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"
#include "servers.h"
#include "sock.h"

#define VIP "198.19.0.20:80"
#define WAIT_MS 5000

/* The backend's answers, by request path "/r/N". */
static const char *const script[] = {
	/* 0 */ "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n",
	/* 1 */ "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
	/* 2 */ "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",	/* for HEAD */
	/* 3 */ "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	/* 4 */ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
		"2\r\nok\r\n0\r\n\r\n",
	/* 5 */ "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
	/* 6 */ "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
	/* 7 */ "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
};

static pid_t srv;
static char backend_log[PATH_MAX + 32];

static void up(void)
{
	fixture_up();
	snprintf(backend_log, sizeof(backend_log), "%s/backend.log", env.tmp);
	srv = tsrv_start_script("s", "198.18.2.14", 8080, script,
				sizeof(script) / sizeof(script[0]), backend_log);
	cr_assert_gt(srv, 0);
}

static void down(void)
{
	tsrv_stop(srv);
	fixture_down();
}

TestSuite(http_strict, .init = up, .fini = down, .timeout = 120);

static void send_all(int fd, const char *buf, size_t len)
{
	cr_assert_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len, "send: %s", strerror(errno));
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* Read until @out holds a whole response head and @body more bytes: its
 * length, or 0 if the connection ended first. Asserts on a timeout.
 */
static size_t read_response(int fd, char *out, size_t len, size_t body)
{
	size_t have = 0;
	uint64_t end = mono_ms() + WAIT_MS;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char *head;
		ssize_t n;

		out[have] = '\0';
		head = strstr(out, "\r\n\r\n");
		if (head && have >= (size_t)(head + 4 - out) + body)
			return have;
		cr_assert_lt(mono_ms(), end, "no whole response in %d ms; got '%s'", WAIT_MS, out);
		if (poll(&pfd, 1, 200) != 1)
			continue;
		n = recv(fd, out + have, len - 1 - have, 0);
		if (n <= 0)
			return 0;
		have += (size_t)n;
	}
}

/* Whether the proxy closes @fd (EOF or reset) within WAIT_MS, nothing more sent. */
static bool closed_by_proxy(int fd)
{
	char b[256];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, WAIT_MS) != 1)
		return false;
	return recv(fd, b, sizeof(b), 0) <= 0;
}

static size_t backend_received(char *out, size_t len)
{
	int fd = open(backend_log, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd == -1)
		return 0;
	n = read(fd, out, len - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

/* A bodyless response by status (@path answers with Content-Length: 5 and
 * no body), then a second request on the same connection answered.
 */
static void bodyless_then_next(const char *path, int status)
{
	char req[128], out[1024];
	int got = 0, fd = tsock_connect("a", VIP, 3000);

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: api\r\n\r\n", path);
	send_all(fd, req, strlen(req));
	cr_assert_gt(read_response(fd, out, sizeof(out), 0), 0, "connection ended");
	cr_assert_eq(sscanf(out, "HTTP/1.1 %d", &got), 1, "'%s'", out);
	cr_assert_eq(got, status, "'%s'", out);
	/* The kept-alive connection must serve the next request. */
	send_str(fd, "GET /next HTTP/1.1\r\nHost: api\r\n\r\n");
	cr_assert_gt(read_response(fd, out, sizeof(out), 2), 0, "connection ended");
	cr_assert(!strncmp(out, "HTTP/1.1 200", 12) && strstr(out, "\r\n\r\nok"),
		  "second request: '%s'", out);
	close(fd);
}

Test(http_strict, not_modified_with_content_length_keeps_the_connection_serving)
{
	bodyless_then_next("/r/0", 304);
}

Test(http_strict, no_content_with_content_length_keeps_the_connection_serving)
{
	bodyless_then_next("/r/1", 204);
}

Test(http_strict, head_with_content_length_keeps_the_connection_serving)
{
	char out[1024];
	int fd = tsock_connect("a", VIP, 3000);

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	send_str(fd, "HEAD /r/2 HTTP/1.1\r\nHost: api\r\n\r\n");
	cr_assert_gt(read_response(fd, out, sizeof(out), 0), 0);
	cr_assert(strstr(out, "Content-Length: 12\r\n"), "'%s'", out);
	cr_assert(!strncmp(strstr(out, "\r\n\r\n") + 4, "", 1), "a body after HEAD: '%s'", out);
	send_str(fd, "GET /next HTTP/1.1\r\nHost: api\r\n\r\n");
	cr_assert_gt(read_response(fd, out, sizeof(out), 2), 0);
	cr_assert(!strncmp(out, "HTTP/1.1 200", 12) && strstr(out, "\r\n\r\nok"), "'%s'", out);
	close(fd);
}

Test(http_strict, continue_with_content_length_is_interim_and_the_final_response_follows)
{
	static const char head[] = "POST /r/3 HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\n"
				   "Content-Length: 5\r\n\r\n";
	char out[1024];
	int fd = tsock_connect("a", VIP, 3000);

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	send_all(fd, head, sizeof(head) - 1);
	cr_assert_gt(read_response(fd, out, sizeof(out), 0), 0);
	cr_assert(!strncmp(out, "HTTP/1.1 100 Continue\r\n", 23), "'%s'", out);
	send_all(fd, "hello", 5);
	/* Whatever the interim's Content-Length says, no byte of it is body:
	 * the final response comes next, whole.
	 */
	for (int i = 0; i < 50 && !strstr(out, "\r\n\r\nok"); i++) {
		size_t have = strlen(out);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 100) != 1)
			continue;
		n = recv(fd, out + have, sizeof(out) - 1 - have, 0);
		cr_assert_gt(n, 0, "connection ended: '%s'", out);
		out[have + (size_t)n] = '\0';
	}
	/* It came before the body was all read: the connection ends after it,
	 * and the response says so.
	 */
	cr_assert(strstr(out, "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
			      "connection: close\r\n\r\nok"), "'%s'", out);
	close(fd);
}

struct shape {
	const char *name;
	const char *bytes;
	size_t len;
};

/* A shape from a string literal, NULs inside it included. */
#define SHAPE(name, lit) { name, lit, sizeof(lit) - 1 }

#define POST "POST /smuggled HTTP/1.1\r\nHost: api\r\n"
#define BODY "5\r\nhello\r\n0\r\n\r\n"
#define CHUNKED "Transfer-Encoding: chunked\r\n"

static const struct shape shapes[] = {
	SHAPE("cl-te", POST "Content-Length: 5\r\n" CHUNKED "\r\n" BODY),
	SHAPE("te-cl", POST CHUNKED "Content-Length: 5\r\n\r\n" BODY),
	SHAPE("cl-dup-differ", POST "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
	SHAPE("cl-list", POST "Content-Length: 5, 6\r\n\r\nhello!"),
	SHAPE("cl-sign", POST "Content-Length: +5\r\n\r\nhello"),
	SHAPE("cl-inner-space", POST "Content-Length: 1 2\r\n\r\nhello"),
	SHAPE("cl-overflow", POST "Content-Length: 99999999999999999999999\r\n\r\nhello"),
	SHAPE("te-gzip", POST "Transfer-Encoding: gzip\r\n\r\nhello"),
	SHAPE("te-chunked-gzip", POST "Transfer-Encoding: chunked, gzip\r\n\r\n" BODY),
	SHAPE("te-dup", POST CHUNKED CHUNKED "\r\n" BODY),
	SHAPE("ws-before-colon", POST "Content-Length : 5\r\n\r\nhello"),
	SHAPE("obs-fold", POST "X-A: a\r\n b\r\nContent-Length: 5\r\n\r\nhello"),
	SHAPE("bare-cr", POST "X-A: a\rb\r\nContent-Length: 5\r\n\r\nhello"),
	SHAPE("bare-lf-header", POST "X-A: a\nContent-Length: 5\r\n\r\nhello"),
	SHAPE("bare-lf-request-line", "GET /smuggled HTTP/1.1\nHost: api\r\n\r\n"),
	SHAPE("nul-value", POST "X-A: a\0b\r\n\r\n"),
	SHAPE("nul-name", POST "X\0A: b\r\n\r\n"),
	SHAPE("ctl-value", POST "X-A: a\x01" "b\r\n\r\n"),
	SHAPE("chunk-size-invalid", POST CHUNKED "\r\nz\r\nhello\r\n0\r\n\r\n"),
	SHAPE("chunk-size-overflow", POST CHUNKED "\r\nfffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
	SHAPE("chunk-ext-invalid", POST CHUNKED "\r\n5;\"x\"\r\nhello\r\n0\r\n\r\n"),
	SHAPE("chunk-data-overrun", POST CHUNKED "\r\n5\r\nhelloX\r\n0\r\n\r\n"),
	SHAPE("te-http10", "POST /smuggled HTTP/1.0\r\n" CHUNKED "\r\n" BODY),
};

Test(http_strict, each_smuggling_shape_is_refused_with_400_and_never_reaches_the_backend)
{
	long long before = tenv_status_counter(&env, "http.invalid_requests");
	size_t n = sizeof(shapes) / sizeof(shapes[0]);
	char out[1024], got[4096];

	for (size_t i = 0; i < n; i++) {
		const struct shape *s = &shapes[i];
		int fd = tsock_connect("a", VIP, 3000);

		cr_assert_geq(fd, 0, "%s: connect: %s", s->name, strerror(-fd));
		send_all(fd, s->bytes, s->len);
		cr_assert_gt(read_response(fd, out, sizeof(out), 0), 0, "%s: no response",
			     s->name);
		cr_assert(!strncmp(out, "HTTP/1.1 400 ", 13), "%s: '%s'", s->name, out);
		cr_assert(strcasestr(out, "\r\nconnection: close\r\n"), "%s: '%s'", s->name, out);
		cr_assert(closed_by_proxy(fd), "%s: the connection stayed open", s->name);
		close(fd);
	}
	cr_assert_eq(tenv_status_counter(&env, "http.invalid_requests"), before + (long long)n);
	/* Not one byte of them reached the backend: no connection was made. */
	cr_assert_eq(backend_received(got, sizeof(got)), 0, "the backend received '%s'", got);
}

/* The failures counted for the api endpoint (/v1/services). */
static long long api_failures(void)
{
	json_object *root = tenv_admin_get(&env, "/v1/services"), *svcs, *eps, *e;
	long long v = -1;

	cr_assert(root && json_object_object_get_ex(root, "services", &svcs));
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		json_object *s = json_object_array_get_idx(svcs, i);

		if (strcmp(json_object_get_string(json_object_object_get(s, "name")), "api"))
			continue;
		eps = json_object_object_get(s, "endpoints");
		e = json_object_array_get_idx(eps, 0);
		v = json_object_get_int64(json_object_object_get(
			json_object_object_get(e, "total"), "failures"));
	}
	json_object_put(root);
	cr_assert_geq(v, 0, "no api endpoint in /v1/services");
	return v;
}

Test(http_strict, an_ambiguous_response_is_a_502_its_upstream_closed_and_counted)
{
	static const char *const paths[] = { "/r/4", "/r/5", "/r/6", "/r/7" };
	long long invalid = tenv_status_counter(&env, "http.invalid_responses");
	long long failures = api_failures();
	char req[128], out[1024], got[4096];

	for (size_t i = 0; i < 4; i++) {
		int fd = tsock_connect("a", VIP, 3000), eofs = 0;

		cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: api\r\n\r\n", paths[i]);
		send_all(fd, req, strlen(req));
		cr_assert_gt(read_response(fd, out, sizeof(out), 0), 0, "%s: no response",
			     paths[i]);
		cr_assert(!strncmp(out, "HTTP/1.1 502 ", 13), "%s: '%s'", paths[i], out);
		cr_assert(strstr(out, "x-weft-error: upstream-invalid"), "%s: '%s'", paths[i], out);
		cr_assert(closed_by_proxy(fd), "%s: the client connection stayed open", paths[i]);
		close(fd);
		/* The upstream connection was closed, not pooled: the backend saw
		 * its end (one per request so far).
		 */
		for (int t = 0; t < 50; t++) {
			eofs = 0;
			backend_received(got, sizeof(got));
			for (const char *p = got; (p = strstr(p, "<eof>")); p++)
				eofs++;
			if (eofs == (int)i + 1)
				break;
			usleep(100000);
		}
		cr_assert_eq(eofs, (int)i + 1, "%s: the upstream connection was kept", paths[i]);
	}
	cr_assert_eq(tenv_status_counter(&env, "http.invalid_responses"), invalid + 4);
	cr_assert_geq(api_failures(), failures + 4, "the endpoint's failures were not counted");
}
