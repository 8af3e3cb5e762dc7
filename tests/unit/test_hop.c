// SPDX-License-Identifier: GPL-2.0-only
/* Hop-by-hop fields (agent/proxy/hop.c): what a head keeps, what it loses,
 * what a Connection field cannot take away, and the bytes after the head
 * moving with it.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proxy/conn.h"
#include "proxy/hop.h"

/* Rewrite @in (a head, then @tail) with @add into a buffer of @cap bytes;
 * asserts the result is @want followed by @tail.
 */
static void check(const char *in, const char *tail, const char *add, size_t cap,
		  const char *want)
{
	static char buf[2 * CONN_BUF_SIZE];
	size_t hl = strlen(in), len = hl + strlen(tail);

	cr_assert_lt(len, sizeof(buf));
	memcpy(buf, in, hl);
	memcpy(buf + hl, tail, strlen(tail));
	cr_assert_eq(hop_head_len(buf, len), hl);
	cr_assert_eq(hop_rewrite(buf, hl, &len, cap, add), 0, "'%s'", in);
	cr_assert_eq(len, strlen(want) + strlen(tail), "length %zu for '%s'", len, in);
	buf[len] = '\0';
	cr_assert_eq(hop_head_len(buf, len), strlen(want));
	cr_assert(!strncmp(buf, want, strlen(want)), "got '%s', want '%s'", buf, want);
	cr_assert_str_eq(buf + strlen(want), tail);
}

Test(hop, connection_and_the_fields_it_names_go)
{
	check("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n"
	      "X-Other: 2\r\n\r\n",
	      "", NULL, 1024, "GET / HTTP/1.1\r\nHost: a\r\nX-Other: 2\r\n\r\n");
	/* Names are case-insensitive, lists may spread over several fields. */
	check("GET / HTTP/1.1\r\ncOnNeCtIoN: x-a\r\nX-A: 1\r\nx-b: 2\r\nConnection:x-B ,\t\r\n"
	      "Keep-Alive: timeout=5\r\n\r\n",
	      "", NULL, 1024, "GET / HTTP/1.1\r\n\r\n");
}

Test(hop, the_fixed_hop_by_hop_fields_go_without_being_named)
{
	check("GET / HTTP/1.1\r\nTE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\n"
	      "Proxy-Connection: keep-alive\r\nKeep-Alive: 1\r\nAccept: */*\r\n\r\n",
	      "", NULL, 1024, "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n");
}

Test(hop, framing_fields_and_host_stay_even_when_named)
{
	check("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	      "Connection: content-length, host, transfer-encoding\r\n\r\n",
	      "abc", NULL, 1024, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
}

Test(hop, a_line_is_added_and_the_body_moves_with_the_head)
{
	check("GET / HTTP/1.0\r\nConnection: close\r\nX: y\r\n\r\n", "GET /next HTTP/1.0\r\n",
	      HOP_KEEP_ALIVE, 1024, "GET / HTTP/1.0\r\nX: y\r\nconnection: keep-alive\r\n\r\n");
	check("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "ok", HOP_CLOSE, 1024,
	      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nconnection: close\r\n\r\n");
	/* A head with nothing to drop or add is left as it is. */
	check("GET / HTTP/1.1\r\n\r\n", "", NULL, 1024, "GET / HTTP/1.1\r\n\r\n");
}

Test(hop, no_room_for_the_added_line_leaves_the_buffer_untouched)
{
	const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	char buf[sizeof(head)];
	size_t len = sizeof(head) - 1;

	memcpy(buf, head, sizeof(head));
	cr_assert_eq(hop_rewrite(buf, sizeof(head) - 3, &len, sizeof(buf), HOP_CLOSE), -ENOSPC);
	cr_assert_str_eq(buf, head);
	cr_assert_eq(len, sizeof(head) - 1);
	/* Dropping lines makes the room. */
	check("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=1000\r\n\r\n", "", HOP_CLOSE,
	      sizeof("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=1000\r\n\r\n") - 1,
	      "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
}

Test(hop, an_incomplete_head_has_no_length)
{
	cr_assert_eq(hop_head_len("GET / HTTP/1.1\r\nHost: a\r\n", 25), 0);
}

Test(hop, many_connection_fields_are_all_read)
{
	/* Six Connection fields: what each names goes, whichever line comes
	 * first.
	 */
	check("GET / HTTP/1.1\r\nX-E: 5\r\nConnection: x-a\r\nConnection: x-b\r\n"
	      "Connection: x-c\r\nConnection: x-d\r\nConnection: x-e\r\nConnection: x-f\r\n"
	      "X-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\nX-F: 6\r\nX-G: 7\r\n\r\n",
	      "", NULL, 1024, "GET / HTTP/1.1\r\nX-G: 7\r\n\r\n");
	/* Several tokens per line. */
	check("GET / HTTP/1.1\r\nX-D: 4\r\nConnection: x-a, x-b\r\nConnection: x-c\r\n"
	      "Connection: x-d\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-G: 7\r\n\r\n",
	      "", NULL, 1024, "GET / HTTP/1.1\r\nX-G: 7\r\n\r\n");
}

Test(hop, a_head_naming_hundreds_of_fields_keeps_only_the_unnamed)
{
	/* More tokens than the rewrite keeps on its stack (they go to the
	 * heap), spread over many Connection lines, in a head the size of the
	 * relay's buffer: every named field goes, every other stays, in order.
	 */
	static char in[CONN_BUF_SIZE], want[CONN_BUF_SIZE];
	size_t il = 0, wl = 0;

	il += (size_t)snprintf(in + il, sizeof(in) - il, "GET / HTTP/1.1\r\n");
	wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 300; i++) {
		il += (size_t)snprintf(in + il, sizeof(in) - il, "X-Kept-%d: k\r\nX-Gone-%d: g\r\n", i, i);
		wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "X-Kept-%d: k\r\n", i);
		if (i % 3 == 2)
			il += (size_t)snprintf(in + il, sizeof(in) - il,
					       "Connection: x-gone-%d,X-GONE-%d , x-gone-%d\r\n", i - 2,
					       i - 1, i);
	}
	il += (size_t)snprintf(in + il, sizeof(in) - il, "\r\n");
	wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "\r\n");
	cr_assert_lt(il, sizeof(in) - 1, "the head fits the relay's buffer");
	check(in, "", NULL, sizeof(in), want);
}
