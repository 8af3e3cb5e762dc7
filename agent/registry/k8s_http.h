/* SPDX-License-Identifier: GPL-2.0-only */
/* The requests the Kubernetes watcher (k8s.c) makes: the URL of a list page
 * or a watch, and a libcurl easy handle set up for the API server of a
 * struct k8s_conn_cfg (TLS, client certificate, bearer token, timeouts).
 * Nothing here performs a transfer.
 */
#ifndef WEFT_REG_K8S_HTTP_H
#define WEFT_REG_K8S_HTTP_H

#include <curl/curl.h>

#include "registry/k8s_config.h"
#include "registry/k8s_watch.h"

/* Objects per list page. A page is parsed whole (a JSON tree of every
 * object on it) before it is decoded: at client-go's 500, a page of
 * EndpointSlices takes ~10 MB of short-lived allocations that stay in the
 * heap as fragments once the decoded objects are interleaved with them
 * (10,000 Services synced: 64 MiB RSS at 500, 54 MiB at 100, the same CPU;
 * docs/benchmarks.md).
 */
#define K8S_PAGE_LIMIT 100

/* The URL of a list page of @k: the first when @cont is NULL, else the page
 * of that continue token. @field_selector ("spec.nodeName=x") may be NULL.
 * A new string (caller frees), or NULL with errno set.
 */
char *k8s_url_list(const struct k8s_conn_cfg *c, const struct k8s_kind *k,
		   const char *field_selector, const char *cont);

/* The URL of a watch of @k from resourceVersion @rv with bookmarks, which the
 * server ends after @timeout_s seconds. A new string or NULL with errno set.
 */
char *k8s_url_watch(const struct k8s_conn_cfg *c, const struct k8s_kind *k,
		    const char *field_selector, const char *rv, unsigned int timeout_s);

/* What an eviction needs of RBAC: this verb on this subresource of the core
 * group (manifests/ grants it; tests/unit/test_shipped_manifests.c checks).
 */
#define K8S_EVICTION_RESOURCE "pods/eviction"
#define K8S_EVICTION_VERB "create"

/* The URL of Pod @ns/@name's eviction subresource (POST a policy/v1
 * Eviction there), and that Eviction, with a uid precondition when @uid is
 * not "" (so a pod recreated under the name is not evicted in its place).
 * New strings (caller frees), or NULL with errno set.
 */
char *k8s_url_eviction(const struct k8s_conn_cfg *c, const char *ns, const char *name);
char *k8s_eviction_body(const char *ns, const char *name, const char *uid);

/* Set @easy up for a GET of @url from the server of @c: TLS checks (or not,
 * with insecure-skip-tls-verify), CA and client certificate from files or
 * memory, "Authorization: Bearer @token" when @token is not NULL (the header
 * list is stored in *@headers; the caller frees it with
 * curl_slist_free_all() after the transfer), connect and total timeouts
 * (@timeout_ms 0: none), TCP keepalive, no signals (threads). @c must outlive
 * the transfer (in-memory PEM is not copied). 0 or -ENOMEM/-EINVAL.
 */
int k8s_http_setup(CURL *easy, const struct k8s_conn_cfg *c, const char *url, const char *token,
		   long timeout_ms, struct curl_slist **headers);

#endif /* WEFT_REG_K8S_HTTP_H */
