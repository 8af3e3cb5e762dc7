/* SPDX-License-Identifier: GPL-2.0-only */
/* For unit tests: an agent/admin/http.c server on a fresh unix socket under
 * /tmp, run by a loop (loop.h) in a thread of its own, as the agent runs it.
 * Used by test_http.c and by test_meshctl.c, whose client it answers.
 */
#ifndef WEFT_TEST_HTTP_FIXTURE_H
#define WEFT_TEST_HTTP_FIXTURE_H

#include <pthread.h>
#include <stddef.h>

struct http_route;

struct http_fixture {
	char dir[64];			/* a private directory, removed by _stop() */
	char sock[96];			/* dir/admin.sock */
	const struct http_route *routes;
	size_t n_routes;
	void *ctx;
	unsigned int timeout_ms;	/* 0 = the server's default */
	pthread_t thread;
	int ready[2];			/* thread -> test: one int, 0 or -errno */
	int stop[2];			/* test -> thread: any byte stops the loop */
};

/* Serve @routes (borrowed) with handler context @ctx; asserts on failure. */
void http_fixture_start(struct http_fixture *f, const struct http_route *routes, size_t n,
			void *ctx, unsigned int timeout_ms);

/* Stop the loop, free the server, remove the directory. */
void http_fixture_stop(struct http_fixture *f);

/* A connected blocking client socket with a 5 s receive timeout; asserts. */
int http_fixture_connect(const struct http_fixture *f);

#endif /* WEFT_TEST_HTTP_FIXTURE_H */
