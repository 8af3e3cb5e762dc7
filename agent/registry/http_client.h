/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/: the libcurl plumbing the HTTP registry clients
 * (etcd_http.c, consul_http.c) share — how a transfer to a registry is set
 * up (no proxy, http/https only, keepalive that notices a dead peer, bounded
 * connect), how a curl error reads as an errno, and the jittered backoff
 * between attempts. Knows nothing of any registry's API.
 */
#ifndef WEFT_REG_HTTP_CLIENT_H
#define WEFT_REG_HTTP_CLIENT_H

#include <stdint.h>

#include <curl/curl.h>

/* Far above any answer a registry sends (etcd caps a request at 1.5 MiB and
 * listings are paged), low enough that a wrong URL cannot exhaust memory.
 */
#define REG_HTTP_BODY_MAX (64u << 20)
/* Longest single wait on a multi handle: a cancel between wakeups is seen
 * at least this often.
 */
#define REG_HTTP_POLL_MS 1000

/* Reset @easy and set what every registry transfer shares: @url, @headers
 * (borrowed, must outlive the transfer), @timeout_ms in all (0: none, for
 * streams), a 2 s connect bound, no proxy, http/https only, no signals, TCP
 * keepalive (a dead peer is noticed in ~20 s) and @errbuf
 * (CURL_ERROR_SIZE bytes) for curl's message. The caller adds the method,
 * the body and the write callbacks.
 */
void reg_curl_setup(CURL *easy, const char *url, struct curl_slist *headers, long timeout_ms,
		    char *errbuf);

/* A failed transfer's @rc as a negative errno: -ECONNREFUSED, -ETIMEDOUT,
 * -ENOMEM, -EKEYREJECTED (TLS verification), else -EIO.
 */
int reg_curl_errno(CURLcode rc);

/* Jittered exponential backoff: each delay is drawn in [d/2, d], d doubling
 * from @min_ms up to @max_ms; reset after a success.
 */
struct reg_backoff {
	uint32_t min_ms, max_ms, cur_ms;
	unsigned int seed;
};

/* Start at @min_ms, seeded so that agents restarted together spread out. */
void reg_backoff_init(struct reg_backoff *b, uint32_t min_ms, uint32_t max_ms);
/* The next delay in ms; doubles the base for the one after. */
uint32_t reg_backoff_next(struct reg_backoff *b);
/* Back to @min_ms (after a success). */
void reg_backoff_reset(struct reg_backoff *b);

#endif /* WEFT_REG_HTTP_CLIENT_H */
