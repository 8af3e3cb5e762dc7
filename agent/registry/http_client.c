// SPDX-License-Identifier: GPL-2.0-only
/* The libcurl plumbing shared by the HTTP registry clients
 * (registry/http_client.h): transfer set-up, curl errors as errnos, and the
 * retry backoff. Calls nothing of etcd's or Consul's.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "registry/http_client.h"

#define REG_HTTP_CONNECT_TIMEOUT_MS 2000L

/* A dead peer (a node gone, not a restarted server: that one resets the
 * connection) is noticed by keepalive: 5 s idle, then 3 probes 5 s apart.
 */
static int on_socket(void *ctx, curl_socket_t fd, curlsocktype purpose)
{
	int cnt = 3;

	(void)ctx;
	if (purpose == CURLSOCKTYPE_IPCXN)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	return CURL_SOCKOPT_OK;
}

void reg_curl_setup(CURL *easy, const char *url, struct curl_slist *headers, long timeout_ms,
		    char *errbuf)
{
	errbuf[0] = '\0';
	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	/* Never through a proxy from the environment: the registry is talked
	 * to directly or not at all.
	 */
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, REG_HTTP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 5L);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, on_socket);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
}

int reg_curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
		return -EKEYREJECTED;
	default:
		return -EIO;
	}
}

void reg_backoff_init(struct reg_backoff *b, uint32_t min_ms, uint32_t max_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	b->min_ms = min_ms;
	b->max_ms = max_ms;
	b->cur_ms = min_ms;
	/* Agents restarted together must not retry in step. */
	b->seed = (unsigned int)ts.tv_nsec ^ (unsigned int)getpid() ^ (unsigned int)(uintptr_t)b;
}

uint32_t reg_backoff_next(struct reg_backoff *b)
{
	uint32_t d = b->cur_ms;

	b->cur_ms = b->cur_ms > b->max_ms / 2 ? b->max_ms : b->cur_ms * 2;
	return d / 2 + (uint32_t)rand_r(&b->seed) % (d / 2 + 1);
}

void reg_backoff_reset(struct reg_backoff *b)
{
	b->cur_ms = b->min_ms;
}
