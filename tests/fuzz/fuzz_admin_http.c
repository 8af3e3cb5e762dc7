// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: the admin API's HTTP server (admin/http.c over srv.c), run
 * whole in this process on a unix socket in a directory of its own. Each
 * input is sent as the bytes of one client connection (pipelined requests
 * and all), the write side is shut, and the loop runs until the server
 * closes the connection. The routes read the query and the body the way the
 * admin commands do (http_query_get(), http_query_unknown()).
 */
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "admin/http.h"
#include "fuzz.h"

static char dir[] = "/tmp/weft-fuzz-admin.XXXXXX";
static char sock_path[64];
static struct loop *loop;
static struct http_server *server;

static int on_query(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { "pod", "svc", NULL };
	char val[64], name[64];

	(void)ctx;
	if (http_query_get(req->query, "pod", val, sizeof(val)) < 0 ||
	    http_query_unknown(req->query, known, name, sizeof(name)))
		resp->status = 400;
	resp->body = strdup("{}");
	resp->body_len = 2;
	return resp->body ? 0 : -ENOMEM;
}

static int on_body(const struct http_request *req, struct http_response *resp, void *ctx)
{
	json_object *o = json_tokener_parse(req->body);

	(void)ctx;
	resp->status = o ? 200 : 400;
	json_object_put(o);
	resp->body = strndup(req->body, req->body_len);
	resp->body_len = resp->body ? strlen(resp->body) : 0;
	return resp->body ? 0 : -ENOMEM;
}

static const struct http_route routes[] = {
	{ "GET", "/v1/pods", on_query },
	{ "POST", "/v1/pods", on_body },
	{ "DELETE", "/v1/pods", on_body },
};

static void cleanup(void)
{
	http_server_free(server);
	loop_free(loop);
	rmdir(dir);
}

static void setup(void)
{
	if (!mkdtemp(dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/admin.sock", dir);
	loop = loop_new();
	server = loop ? http_server_new(loop, sock_path, 0600, routes,
					sizeof(routes) / sizeof(routes[0]), NULL) : NULL;
	if (!server)
		abort();
	atexit(cleanup);
}

/* The client's side: read the answers until the server hangs up. */
static void on_client(struct loop *l, int fd, uint32_t events, void *ctx)
{
	char buf[4096];
	ssize_t n;

	(void)events;
	(void)ctx;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
		return;
	loop_del_fd(l, fd);
	loop_stop(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	/* More than the socket buffer would block this single thread; the
	 * server refuses anything past HTTP_MAX_REQUEST anyway.
	 */
	if (size > HTTP_MAX_REQUEST + 1024)
		return 0;
	if (!server)
		setup();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (size && send(fd, data, size, MSG_NOSIGNAL) != (ssize_t)size) ||
	    shutdown(fd, SHUT_WR) || loop_add_fd(loop, fd, EPOLLIN, on_client, NULL))
		abort();
	if (loop_run(loop))
		abort();
	close(fd);
	return 0;
}
