// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of meshctl/client.h: libcurl over CURLOPT_UNIX_SOCKET_PATH,
 * the body collected up to CLIENT_MAX_RESPONSE, parsed with json-c, and every
 * way this can fail turned into a sentence for the operator.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "client.h"
#include "growbuf.h"

#ifndef WEFT_VERSION
#define WEFT_VERSION "0.0.0"
#endif

struct body {
	struct growbuf buf;
	bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct body *b = ctx;
	size_t n = size * nmemb;
	int err = growbuf_add(&b->buf, ptr, n);

	if (err == -EFBIG)
		b->too_big = true;
	return err ? 0 : n;
}

/* Why curl could not get an answer, in words. Returns -errno. */
static int transport_error(CURLcode rc, long os_errno, const struct body *b, const char *sock,
			   unsigned int timeout_ms, const char *cerr, char *err, size_t errlen)
{
	if (rc == CURLE_COULDNT_CONNECT) {
		switch (os_errno) {
		case ENOENT:
		case ENOTDIR:
			snprintf(err, errlen, "agent not running: no socket at %s "
				 "(start weft-agent or pass --socket)", sock);
			return -ENOENT;
		case ECONNREFUSED:
			snprintf(err, errlen,
				 "agent not running: nothing listens on %s, a socket left by an "
				 "agent that stopped (start weft-agent or pass --socket)", sock);
			return -ECONNREFUSED;
		case EACCES:
		case EPERM:
			snprintf(err, errlen, "permission denied on %s: the admin socket is "
				 "for root (run meshctl as root)", sock);
			return -EACCES;
		default:
			break;
		}
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(err, errlen, "agent on %s did not answer within %u ms", sock, timeout_ms);
		return -ETIMEDOUT;
	}
	if (rc == CURLE_WRITE_ERROR && b->too_big) {
		snprintf(err, errlen, "answer of the agent on %s is larger than %u bytes", sock,
			 CLIENT_MAX_RESPONSE);
		return -EMSGSIZE;
	}
	if (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR) {
		snprintf(err, errlen, "agent on %s closed the connection without an answer", sock);
		return -ECONNRESET;
	}
	snprintf(err, errlen, "cannot talk to the agent on %s: %s", sock,
		 cerr[0] ? cerr : curl_easy_strerror(rc));
	return os_errno > 0 ? -(int)os_errno : -EIO;
}

static struct json_object *parse_body(const struct body *b)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (!b->buf.len)
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, b->buf.data, (int)b->buf.len);
	json_tokener_free(tok);
	return o;
}

/* Judge an answer: its status, its shape and its API version. */
static int check_answer(long status, struct json_object *o, const char *sock, const char *path,
			char *err, size_t errlen)
{
	struct json_object *v;
	int api;

	if (status != 200) {
		if (json_object_is_type(o, json_type_object) &&
		    json_object_object_get_ex(o, "error", &v) &&
		    json_object_is_type(v, json_type_string))
			snprintf(err, errlen, "agent: %s (HTTP %ld on %s)",
				 json_object_get_string(v), status, path);
		else
			snprintf(err, errlen, "agent on %s answered HTTP %ld on %s", sock, status,
				 path);
		return -EPROTO;
	}
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen,
			 "agent on %s sent a malformed answer to %s: not a JSON object", sock,
			 path);
		return -EPROTO;
	}
	if (!json_object_object_get_ex(o, "api", &v) || !json_object_is_type(v, json_type_int)) {
		snprintf(err, errlen, "agent on %s sent no \"api\" version with %s: is it a weft "
			 "agent?", sock, path);
		return -EPROTO;
	}
	api = json_object_get_int(v);
	if (api != CLIENT_API_VERSION) {
		snprintf(err, errlen, "agent speaks admin API v%d and this meshctl v%d: use the "
			 "meshctl of the agent's release", api, CLIENT_API_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int client_get(const char *sock, const char *path, unsigned int timeout_ms,
	       struct json_object **out, char *err, size_t errlen)
{
	char url[256], cerr[CURL_ERROR_SIZE] = "";
	struct json_object *o = NULL;
	struct body b = { .buf.max = CLIENT_MAX_RESPONSE };
	long status = 0, os_errno = 0;
	CURLcode rc;
	CURL *h;
	int ret;

	*out = NULL;
	if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "socket path '%s' is too long for a unix socket", sock);
		return -ENAMETOOLONG;
	}
	if ((size_t)snprintf(url, sizeof(url), "http://localhost%s", path) >= sizeof(url)) {
		snprintf(err, errlen, "request path too long");
		return -ENAMETOOLONG;
	}
	h = curl_easy_init();
	if (!h) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -ENOMEM;
	}
	/* NOSIGNAL: timeouts without SIGALRM; there is no name to resolve anyway. */
	if (curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock) ||
	    curl_easy_setopt(h, CURLOPT_URL, url) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b) ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms) ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr) ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "meshctl/" WEFT_VERSION)) {
		snprintf(err, errlen, "cannot set libcurl up for a unix socket (built without it?)");
		ret = -ENOTSUP;
		goto out_cleanup;
	}

	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		if (curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno))
			os_errno = 0;
		ret = transport_error(rc, os_errno, &b, sock, timeout_ms, cerr, err, errlen);
		goto out_cleanup;
	}
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status))
		status = 0;
	o = parse_body(&b);
	ret = check_answer(status, o, sock, path, err, errlen);
	if (ret)
		goto out_cleanup;
	*out = o;
	o = NULL;
out_cleanup:
	json_object_put(o);
	growbuf_free(&b.buf);
	curl_easy_cleanup(h);
	return ret;
}
