// SPDX-License-Identifier: GPL-2.0-only
/* libcurl, loaded on first use. weft-agent is not linked against libcurl:
 * Debian's libcurl brings 26 more libraries (GnuTLS, Kerberos, LDAP, SSH,
 * RTMP, ...) that the dynamic loader would map, relocate and partly
 * initialise at every start, several MiB of resident memory, while only the
 * HTTP clients use it (the kubernetes, etcd and Consul registries, weft-ca,
 * --ca-url). This file defines the libcurl functions weft calls: the first
 * call opens libcurl with dlopen(), and each call then goes on to libcurl's
 * own function. Callers include <curl/curl.h> and call curl_global_init()
 * first, as libcurl asks of them. docs/benchmarks.md ("Idle RSS") has the
 * figures, docs/dependencies.md the rule for the image.
 */
#define CURL_DISABLE_TYPECHECK	/* the functions are defined here, not wrapped */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "log.h"

/* The soname of Debian's libcurl4 (OpenSSL flavour), the package the build
 * compiles against (docs/dependencies.md).
 */
#define CURL_SONAME "libcurl.so.4"

/* Every libcurl function weft calls, once: the table below takes its
 * types from curl/curl.h's own prototypes.
 */
#define CURL_FUNCS(X)                                                                              \
	X(curl_global_init) X(curl_global_cleanup) X(curl_easy_init) X(curl_easy_cleanup)          \
	X(curl_easy_reset) X(curl_easy_perform) X(curl_easy_setopt) X(curl_easy_getinfo)           \
	X(curl_easy_strerror) X(curl_easy_escape) X(curl_free) X(curl_slist_append)                \
	X(curl_slist_free_all) X(curl_multi_init) X(curl_multi_cleanup) X(curl_multi_setopt)       \
	X(curl_multi_add_handle) X(curl_multi_remove_handle) X(curl_multi_assign)                  \
	X(curl_multi_info_read) X(curl_multi_perform) X(curl_multi_poll)                           \
	X(curl_multi_socket_action) X(curl_multi_wakeup)

/* libcurl's entry points, filled once by load(). Process state by nature,
 * as libcurl's own global initialisation is: one libcurl per process.
 */
static struct {
#define FIELD(name) __typeof__(name) *name;
	CURL_FUNCS(FIELD)
#undef FIELD
} fn;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bool loaded;
static char load_error[256];

static void load(void)
{
	/* Lazy binding, as when the loader maps a library the program names. */
	void *h = dlopen(CURL_SONAME, RTLD_LAZY | RTLD_LOCAL);

	if (!h) {
		snprintf(load_error, sizeof(load_error), "%s", dlerror());
		return;
	}
	/* Never dlclose()d: libcurl's global state lives as long as the process. */
#define RESOLVE(name)                                                                      \
	fn.name = (__typeof__(fn.name))dlsym(h, #name);                                    \
	if (!fn.name) {                                                                    \
		snprintf(load_error, sizeof(load_error), "%s: no %s", CURL_SONAME, #name); \
		return;                                                                    \
	}
	CURL_FUNCS(RESOLVE)
#undef RESOLVE
	loaded = true;
}

/* Whether libcurl is there to call, loading it on the first call. */
static bool have_curl(void)
{
	(void)pthread_once(&load_once, load);
	return loaded;
}

/* libcurl is loaded on the first call. Failing that, this logs why (the
 * one place that knows) and returns CURLE_FAILED_INIT, as libcurl itself
 * does when it cannot initialise; the caller stops there.
 */
CURLcode curl_global_init(long flags)
{
	if (!have_curl()) {
		log_err("libcurl: %s (the kubernetes, etcd and Consul registries and weft-ca need it)",
			load_error);
		return CURLE_FAILED_INIT;
	}
	return fn.curl_global_init(flags);
}

/* The rest are reached only after a curl_global_init() that succeeded;
 * without libcurl they do nothing and fail as libcurl would.
 */
void curl_global_cleanup(void)
{
	if (have_curl())
		fn.curl_global_cleanup();
}

CURL *curl_easy_init(void)
{
	return have_curl() ? fn.curl_easy_init() : NULL;
}

void curl_easy_cleanup(CURL *h)
{
	if (have_curl())
		fn.curl_easy_cleanup(h);
}

void curl_easy_reset(CURL *h)
{
	if (have_curl())
		fn.curl_easy_reset(h);
}

CURLcode curl_easy_perform(CURL *h)
{
	return have_curl() ? fn.curl_easy_perform(h) : CURLE_FAILED_INIT;
}

/* The option's number says the type of its one argument (CURLOPTTYPE_*,
 * curl/curl.h); it is read as that type and passed on as that type, which
 * is what libcurl's own curl_easy_setopt() reads. Function pointers travel
 * as a generic function pointer: every function pointer has one
 * representation on the platforms weft builds for (POSIX requires it).
 */
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	CURLcode rc;
	va_list ap;

	if (!have_curl())
		return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = fn.curl_easy_setopt(h, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = fn.curl_easy_setopt(h, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = fn.curl_easy_setopt(h, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = fn.curl_easy_setopt(h, opt, va_arg(ap, curl_off_t));
	else
		rc = fn.curl_easy_setopt(h, opt, va_arg(ap, struct curl_blob *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	CURLcode rc;
	va_list ap;

	if (!have_curl())
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = fn.curl_easy_getinfo(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

const char *curl_easy_strerror(CURLcode code)
{
	return have_curl() ? fn.curl_easy_strerror(code) : "libcurl could not be loaded";
}

char *curl_easy_escape(CURL *h, const char *s, int len)
{
	return have_curl() ? fn.curl_easy_escape(h, s, len) : NULL;
}

void curl_free(void *p)
{
	if (have_curl())
		fn.curl_free(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	return have_curl() ? fn.curl_slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (have_curl())
		fn.curl_slist_free_all(list);
}

CURLM *curl_multi_init(void)
{
	return have_curl() ? fn.curl_multi_init() : NULL;
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
	return have_curl() ? fn.curl_multi_cleanup(m) : CURLM_INTERNAL_ERROR;
}

/* As curl_easy_setopt(): CURLMOPT_* numbers carry their argument's type. */
CURLMcode curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
	CURLMcode rc;
	va_list ap;

	if (!have_curl())
		return CURLM_INTERNAL_ERROR;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = fn.curl_multi_setopt(m, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = fn.curl_multi_setopt(m, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = fn.curl_multi_setopt(m, opt, va_arg(ap, void (*)(void)));
	else
		rc = fn.curl_multi_setopt(m, opt, va_arg(ap, curl_off_t));
	va_end(ap);
	return rc;
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
	return have_curl() ? fn.curl_multi_add_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
	return have_curl() ? fn.curl_multi_remove_handle(m, h) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_assign(CURLM *m, curl_socket_t s, void *p)
{
	return have_curl() ? fn.curl_multi_assign(m, s, p) : CURLM_INTERNAL_ERROR;
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
	return have_curl() ? fn.curl_multi_info_read(m, left) : NULL;
}

CURLMcode curl_multi_perform(CURLM *m, int *running)
{
	return have_curl() ? fn.curl_multi_perform(m, running) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_poll(CURLM *m, struct curl_waitfd *fds, unsigned int n, int timeout_ms,
			  int *ret)
{
	return have_curl() ? fn.curl_multi_poll(m, fds, n, timeout_ms, ret) : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t s, int ev_bitmask, int *running)
{
	return have_curl() ? fn.curl_multi_socket_action(m, s, ev_bitmask, running)
			   : CURLM_INTERNAL_ERROR;
}

CURLMcode curl_multi_wakeup(CURLM *m)
{
	return have_curl() ? fn.curl_multi_wakeup(m) : CURLM_INTERNAL_ERROR;
}
