// SPDX-License-Identifier: GPL-2.0-only
/* agent/admin/http.c over a real unix socket: a loop (loop.h) runs the server
 * in a thread of its own (http_fixture.c); the test talks to it as a client would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "admin/http.h"
#include "http_fixture.h"
#include "loop.h"

#define RESP_MAX (HTTP_MAX_REQUEST + 1024)

static struct http_fixture fx;

static int h_hello(const struct http_request *req, struct http_response *resp, void *ctx)
{
	char buf[256];

	(void)ctx;
	snprintf(buf, sizeof(buf), "{\"hello\":\"world\",\"method\":\"%s\",\"query\":\"%s\"}",
		 req->method, req->query);
	resp->body = strdup(buf);
	resp->body_len = strlen(buf);
	return resp->body ? 0 : -ENOMEM;
}

static int h_echo(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)ctx;
	resp->status = 201;
	resp->content_type = "text/plain";
	resp->body = malloc(req->body_len + 1);
	if (!resp->body)
		return -ENOMEM;
	memcpy(resp->body, req->body, req->body_len + 1);
	resp->body_len = req->body_len;
	return 0;
}

static int h_fail(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)resp;
	(void)ctx;
	return -EIO;
}

#define BIG_BODY (4u << 20)	/* far more than a socket buffer holds */

static int h_big(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	resp->body = malloc(BIG_BODY);
	if (!resp->body)
		return -ENOMEM;
	memset(resp->body, 'x', BIG_BODY);
	resp->body_len = BIG_BODY;
	resp->content_type = "text/plain";
	return 0;
}

static const struct http_route routes[] = {
	{ "GET", "/v1/big", h_big },
	{ "GET", "/v1/hello", h_hello },
	{ "POST", "/v1/echo", h_echo },
	{ "GET", "/v1/fail", h_fail },
};

static void start(unsigned int timeout_ms)
{
	http_fixture_start(&fx, routes, sizeof(routes) / sizeof(routes[0]), NULL, timeout_ms);
}

static void start_default(void)
{
	start(0);
}

/* Criterion runs the suite's .init before a test's own: replace the server
 * it started rather than leaking it.
 */
static void start_short_timeout(void)
{
	http_fixture_stop(&fx);
	start(200);
}

static void stop(void)
{
	http_fixture_stop(&fx);
}

static int connect_sock(void)
{
	return http_fixture_connect(&fx);
}

static void send_str(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

		cr_assert_gt(n, 0, "send: %s", strerror(errno));
		off += (size_t)n;
	}
}

struct resp {
	int status;
	char head[2048];
	char body[RESP_MAX];
	size_t body_len;
};

/* Read one response (head, then Content-Length bytes). Returns 0, or -1 on
 * EOF before any byte.
 */
static int read_resp(int fd, struct resp *r)
{
	static char buf[RESP_MAX];
	size_t got = 0, head_len = 0, clen = 0;
	char *end = NULL, *cl;

	memset(r, 0, sizeof(*r));
	for (;;) {
		ssize_t n;

		if (!end) {
			buf[got] = '\0';
			end = strstr(buf, "\r\n\r\n");
			if (end) {
				head_len = (size_t)(end - buf) + 4;
				cr_assert_lt(head_len, sizeof(r->head));
				memcpy(r->head, buf, head_len);
				cl = strcasestr(r->head, "Content-Length: ");
				cr_assert_not_null(cl, "no Content-Length in:\n%s", r->head);
				clen = strtoul(cl + 16, NULL, 10);
			}
		}
		if (end && got >= head_len + clen)
			break;
		/* One byte at a time past the head, so a pipelined second response
		 * stays in the socket for the next call.
		 */
		n = recv(fd, buf + got, end ? head_len + clen - got : 1, 0);
		if (n == 0 && got == 0)
			return -1;
		cr_assert_gt(n, 0, "recv after %zu bytes: %s", got, n ? strerror(errno) : "EOF");
		got += (size_t)n;
		cr_assert_lt(got, sizeof(buf));
	}
	cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
	memcpy(r->body, buf + head_len, clen);
	r->body[clen] = '\0';
	r->body_len = clen;
	return 0;
}

static void expect_eof(int fd)
{
	char b;

	cr_expect_eq(recv(fd, &b, 1, 0), 0, "the server kept the connection open");
}

static struct resp r;

TestSuite(http, .init = start_default, .fini = stop, .timeout = 30);

Test(http, route_hit)
{
	int fd = connect_sock();

	send_str(fd, "GET /v1/hello?x=1 HTTP/1.1\r\nHost: weft\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 200);
	cr_expect_not_null(strstr(r.head, "Content-Type: application/json\r\n"));
	cr_expect_str_eq(r.body, "{\"hello\":\"world\",\"method\":\"GET\",\"query\":\"x=1\"}");
	close(fd);
}

Test(http, socket_mode_is_exact)
{
	struct stat st;

	cr_assert_eq(stat(fx.sock, &st), 0);
	cr_expect(S_ISSOCK(st.st_mode));
	cr_expect_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
}

Test(http, unknown_path_is_404)
{
	int fd = connect_sock();

	send_str(fd, "GET /v1/nope HTTP/1.1\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 404);
	cr_expect_str_eq(r.body, "{\"error\":\"no such path '/v1/nope'\"}");
	close(fd);
}

Test(http, wrong_method_is_405)
{
	int fd = connect_sock();

	send_str(fd, "DELETE /v1/hello HTTP/1.1\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 405);
	cr_expect_not_null(strstr(r.head, "Allow: GET\r\n"), "%s", r.head);
	cr_expect_not_null(strstr(r.body, "\"error\":"));
	close(fd);
}

Test(http, head_is_get_without_body)
{
	int fd = connect_sock();

	send_str(fd, "HEAD /v1/hello HTTP/1.1\r\n\r\n");
	/* Content-Length describes the GET body, so read the head only. */
	char buf[1024] = "";
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	cr_assert_gt(n, 0);
	cr_expect(!strncmp(buf, "HTTP/1.1 200 ", 13), "%s", buf);
	cr_expect_not_null(strstr(buf, "\r\n\r\n"));
	cr_expect_eq(strstr(buf, "\r\n\r\n")[4], '\0', "HEAD response carries a body");
	close(fd);
}

Test(http, malformed_is_400_and_closes)
{
	int fd = connect_sock();

	send_str(fd, "THIS IS NOT HTTP\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 400);
	cr_expect_not_null(strstr(r.body, "malformed request"), "%s", r.body);
	cr_expect_not_null(strstr(r.head, "Connection: close\r\n"));
	expect_eof(fd);
	close(fd);
}

Test(http, declared_oversized_body_is_413)
{
	int fd = connect_sock();

	send_str(fd, "POST /v1/echo HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 413);
	expect_eof(fd);
	close(fd);
}

Test(http, oversized_head_is_413)
{
	static char big[HTTP_MAX_REQUEST + 100];
	int fd = connect_sock();

	/* A header that never ends and fills the whole buffer. */
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET /v1/hello HTTP/1.1\r\nX-Pad: ", 31);
	send_str(fd, big);
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 413);
	close(fd);
}

Test(http, handler_error_is_500)
{
	int fd = connect_sock();

	send_str(fd, "GET /v1/fail HTTP/1.1\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 500);
	cr_expect_str_eq(r.body, "{\"error\":\"internal error: Input/output error\"}");
	close(fd);
}

Test(http, body_reaches_handler)
{
	int fd = connect_sock();

	send_str(fd, "POST /v1/echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 201);
	cr_expect_str_eq(r.body, "hello");
	cr_expect_not_null(strstr(r.head, "Content-Type: text/plain\r\n"));
	/* Chunked: the pieces are joined for the handler. */
	send_str(fd, "POST /v1/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_str_eq(r.body, "abcde");
	close(fd);
}

Test(http, keep_alive_two_requests)
{
	int fd = connect_sock();

	send_str(fd, "GET /v1/hello HTTP/1.1\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 200);
	cr_expect_not_null(strstr(r.head, "Connection: keep-alive\r\n"));
	send_str(fd, "GET /v1/hello?second HTTP/1.1\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 200);
	cr_expect_not_null(strstr(r.body, "\"query\":\"second\""));
	close(fd);
}

Test(http, pipelined_requests_answered_in_order)
{
	int fd = connect_sock();

	send_str(fd, "GET /v1/hello?1 HTTP/1.1\r\n\r\nGET /v1/nope HTTP/1.1\r\n\r\n"
		     "GET /v1/hello?3 HTTP/1.1\r\nConnection: close\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_not_null(strstr(r.body, "\"query\":\"1\""));
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 404);
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_not_null(strstr(r.body, "\"query\":\"3\""));
	cr_expect_not_null(strstr(r.head, "Connection: close\r\n"));
	expect_eof(fd);
	close(fd);
}

Test(http, too_many_clients_get_503)
{
	int fds[HTTP_MAX_CLIENTS], extra;

	/* A request on each proves the server holds every one of them. */
	for (int i = 0; i < HTTP_MAX_CLIENTS; i++) {
		fds[i] = connect_sock();
		send_str(fds[i], "GET /v1/hello HTTP/1.1\r\n\r\n");
		cr_assert_eq(read_resp(fds[i], &r), 0);
		cr_assert_eq(r.status, 200);
	}
	extra = connect_sock();
	cr_assert_eq(read_resp(extra, &r), 0);
	cr_expect_eq(r.status, 503);
	cr_expect_str_eq(r.body, "{\"error\":\"too many admin clients\"}");
	expect_eof(extra);
	close(extra);

	/* A freed slot is usable again once the server has seen the close. */
	close(fds[0]);
	for (int tries = 0;; tries++) {
		extra = connect_sock();
		send_str(extra, "GET /v1/hello HTTP/1.1\r\n\r\n");
		cr_assert_eq(read_resp(extra, &r), 0);
		close(extra);
		if (r.status == 200)
			break;
		cr_assert_lt(tries, 100, "slot never freed");
		usleep(10000);
	}
	for (int i = 1; i < HTTP_MAX_CLIENTS; i++)
		close(fds[i]);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(http, slowloris_closed_at_deadline, .init = start_short_timeout)
{
	int fd = connect_sock();
	double t0 = now_s(), dt;

	send_str(fd, "GET /v1/hello HTTP/1.1\r\nX-Slow: ");
	usleep(50000);
	send_str(fd, "a");
	expect_eof(fd);
	dt = now_s() - t0;
	cr_expect_geq(dt, 0.15, "closed after %.3f s, before the 200 ms deadline", dt);
	cr_expect_lt(dt, 2.0, "closed after %.3f s", dt);
	close(fd);
}

Test(http, idle_keep_alive_closed_at_deadline, .init = start_short_timeout)
{
	int fd = connect_sock();

	send_str(fd, "GET /v1/hello HTTP/1.1\r\n\r\n");
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 200);
	expect_eof(fd);
	close(fd);
}

Test(http, new_fails_on_a_non_socket_file)
{
	char path[192];
	struct loop *loop = loop_new();
	FILE *f;

	cr_assert_not_null(loop);
	snprintf(path, sizeof(path), "%s/plain", fx.dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	cr_expect_null(http_server_new(loop, path, 0600, routes, 1, NULL));
	cr_expect_eq(errno, EEXIST);
	unlink(path);
	loop_free(loop);
}

Test(http, large_response_survives_a_full_socket)
{
	int fd = connect_sock();
	char buf[65536];
	size_t total = 0, head_len = 0;
	char *end;

	send_str(fd, "GET /v1/big HTTP/1.1\r\n\r\nGET /v1/hello HTTP/1.1\r\n\r\n");
	/* Let the server hit EAGAIN before reading anything. */
	usleep(100000);
	while (!head_len) {
		ssize_t n = recv(fd, buf + total, sizeof(buf) - 1 - total, 0);

		cr_assert_gt(n, 0);
		total += (size_t)n;
		buf[total] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end)
			head_len = (size_t)(end - buf) + 4;
	}
	cr_expect_not_null(strstr(buf, "Content-Length: 4194304\r\n"));
	total -= head_len;
	while (total < BIG_BODY) {
		ssize_t n = recv(fd, buf, sizeof(buf) < BIG_BODY - total ? sizeof(buf) :
									BIG_BODY - total, 0);

		cr_assert_gt(n, 0, "after %zu bytes", total);
		total += (size_t)n;
	}
	/* The pipelined request behind it is answered once the body is out. */
	cr_assert_eq(read_resp(fd, &r), 0);
	cr_expect_eq(r.status, 200);
	close(fd);
}
