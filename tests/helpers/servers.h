/* SPDX-License-Identifier: GPL-2.0-only */
/* Test backends: a server process inside a test netns, bound to one IP:port,
 * speaking a tiny line protocol so tests can see who answered and from where:
 *   "IDENT\n"  → "<name> <peer-ip>\n", then close
 *   "ECHO\n"   → echo every byte until EOF, then "BYE <count>\n" and close
 *   "DRIP <bytes> <ms>\n" → <bytes> bytes of tsrv_pattern() spread evenly
 *              over <ms>, whatever the client sends meanwhile (or its
 *              half-close), then close
 *   "GET ..."  → HTTP/1.1 200 with body "<name> <peer-ip>\n", then close
 * One thread per connection, so hundreds of concurrent clients are fine.
 * Other modes: an HTTP/1.1 keep-alive server with a chosen status and delay
 * (tsrv_start_http), and a server that speaks first (tsrv_start_banner).
 */
#ifndef WEFT_TEST_SERVERS_H
#define WEFT_TEST_SERVERS_H

#include <stdint.h>
#include <sys/types.h>

/* Byte @off of the stream DRIP sends, and what stream tests send: a
 * sequence whose period (251, prime) shares no factor with any chunk size,
 * so a byte lost, repeated or reordered shows.
 */
static inline unsigned char tsrv_pattern(uint64_t off)
{
	return (unsigned char)(off % 251);
}

/* Start a server named @name in netns @ns (short name) on @ip:@port; returns
 * once it listens. Returns the pid or -1.
 */
pid_t tsrv_start(const char *ns, const char *ip, uint16_t port, const char *name);

/* An HTTP/1.1 keep-alive server: every request (any method, bodies with
 * Content-Length are read) is answered with @status after @delay_ms, body
 * "<name> <peer-ip>\n". "GET /__stats" is answered 200 with
 * "requests N max_inflight M\n" and is not counted: N requests answered so
 * far, M the most ever in progress at once. Returns the pid or -1.
 */
pid_t tsrv_start_http(const char *ns, const char *ip, uint16_t port, const char *name, int status,
		      unsigned int delay_ms);

/* A server that speaks first: on accept it sends "BANNER <name>\n", then
 * answers each line "X" with "OK X\n" until EOF. Returns the pid or -1.
 */
pid_t tsrv_start_banner(const char *ns, const char *ip, uint16_t port, const char *name);

/* An HTTP/1.1 keep-alive server answering from a script: a request for
 * "/r/N" gets @responses[N] byte for byte (borrowed: the forked server
 * keeps its copy of the caller's memory), any other one a 200 "ok". It
 * answers as soon as a head has arrived, then drops the request's
 * Content-Length body, so a client waiting for 100 Continue is answered.
 * Every byte it receives is appended to @log, and "<eof>\n" when a
 * connection ends: what reached the backend. Returns the pid or -1.
 */
pid_t tsrv_start_script(const char *ns, const char *ip, uint16_t port,
			const char *const *responses, size_t n, const char *log);

/* Read the counters of the HTTP server at @ip:@port in netns @ns (directly,
 * not through the mesh). 0 or -1.
 */
int tsrv_http_stats(const char *ns, const char *ip, uint16_t port, long *requests,
		    long *max_inflight);

/* Stop one server (SIGKILL + reap). */
void tsrv_stop(pid_t pid);

#endif /* WEFT_TEST_SERVERS_H */
