// SPDX-License-Identifier: GPL-2.0-only
/* agent/curl_lazy.c: the variadic setters pass each option's argument on as
 * the type libcurl reads (long, pointer, function pointer, curl_off_t), and
 * getinfo its pointer. Checked through what libcurl does with them on a
 * file:// URL: no server, nothing leaves the process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>

struct sink {
	char buf[64];
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct sink *s = ctx;
	size_t len = size * n;

	if (len > sizeof(s->buf) - 1 - s->len)
		return 0;
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	return len;
}

Test(curl_lazy, each_argument_type_reaches_libcurl)
{
	char path[] = "/tmp/weft-curl-lazy-XXXXXX", url[64], *effective = NULL;
	struct sink s = { 0 };
	int fd = mkstemp(path);
	CURL *h;

	cr_assert_neq(fd, -1);
	cr_assert_eq(write(fd, "0123456789", 10), 10);
	close(fd);
	snprintf(url, sizeof(url), "file://%s", path);
	cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	h = curl_easy_init();
	cr_assert_not_null(h);
	/* A string, a function pointer, a data pointer and a curl_off_t: the
	 * body comes from offset 4 to the callback.
	 */
	cr_assert_eq(curl_easy_setopt(h, CURLOPT_URL, url), CURLE_OK);
	cr_assert_eq(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data), CURLE_OK);
	cr_assert_eq(curl_easy_setopt(h, CURLOPT_WRITEDATA, &s), CURLE_OK);
	cr_assert_eq(curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)4), CURLE_OK);
	cr_assert_eq(curl_easy_perform(h), CURLE_OK);
	cr_expect_str_eq(s.buf, "456789");
	cr_assert_eq(curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective), CURLE_OK);
	cr_expect_str_eq(effective, url);
	/* A long: no body at all. */
	curl_easy_reset(h);
	s.len = 0;
	cr_assert_eq(curl_easy_setopt(h, CURLOPT_URL, url), CURLE_OK);
	cr_assert_eq(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data), CURLE_OK);
	cr_assert_eq(curl_easy_setopt(h, CURLOPT_WRITEDATA, &s), CURLE_OK);
	cr_assert_eq(curl_easy_setopt(h, CURLOPT_NOBODY, 1L), CURLE_OK);
	cr_assert_eq(curl_easy_perform(h), CURLE_OK);
	cr_expect_eq(s.len, 0, "a body of %zu bytes", s.len);
	/* An option libcurl does not know is refused by libcurl itself. */
	cr_expect_eq(curl_easy_setopt(h, (CURLoption)9999, 1L), CURLE_UNKNOWN_OPTION);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	unlink(path);
}
