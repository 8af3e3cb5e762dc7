/* SPDX-License-Identifier: GPL-2.0-only */
/* A libcurl write callback that collects a response body into one
 * NUL-terminated heap buffer, for the tests' HTTP clients (admin API,
 * metrics, etcd's JSON gateway, the fake Kubernetes API server).
 */
#ifndef WEFT_TEST_CURL_BODY_H
#define WEFT_TEST_CURL_BODY_H

#include <stddef.h>

struct tcurl_body {
	char *buf;		/* NUL-terminated; NULL until the first byte; caller frees */
	size_t len;		/* bytes, without the NUL */
};

/* CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA a zeroed struct tcurl_body:
 * appends @size * @n bytes of @data. Returns the bytes taken (0 when out of
 * memory, which makes curl fail the transfer).
 */
size_t tcurl_body_write(char *data, size_t size, size_t n, void *body);

#endif /* WEFT_TEST_CURL_BODY_H */
