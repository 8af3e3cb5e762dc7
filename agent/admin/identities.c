// SPDX-License-Identifier: GPL-2.0-only
/* GET /v1/identities: this node's workload certificates (docs/mtls.md) —
 * each identity's SPIFFE ID, subject, serial, validity, issuer and renewal
 * time, and the certificate itself in PEM — and the trust bundle in use.
 * Private keys never leave the agent's memory. Read-only, main thread.
 */
#include <json-c/json.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "agent.h"
#include "ca_client.h"
#include "cmds.h"
#include "config.h"
#include "http.h"
#include "identity/identity.h"
#include "proxy/proxy.h"
#include "proxy/workers.h"
#include "reply.h"

/* @x as PEM text (public: a certificate, never a key), or NULL. */
static json_object *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	json_object *o = NULL;
	char *data;
	long len;

	if (b && PEM_write_bio_X509(b, x) && (len = BIO_get_mem_data(b, &data)) > 0)
		o = json_object_new_string_len(data, (int)len);
	BIO_free(b);
	return o;
}

/* Merge one worker's refusals into @ctx, an array of {identity, count}. */
static void add_denial(const char *id, uint64_t n, void *ctx)
{
	json_object *arr = ctx, *e, *v;

	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(e, "identity", &v) &&
		    !strcmp(json_object_get_string(v), id)) {
			json_object_object_get_ex(e, "count", &v);
			json_object_object_add(e, "count",
					       json_object_new_uint64(json_object_get_uint64(v) + n));
			return;
		}
	}
	e = json_object_new_object();
	json_object_object_add(e, "identity", json_object_new_string(id));
	json_object_object_add(e, "count", json_object_new_uint64(n));
	json_object_array_add(arr, e);
}

/* The agent's view of weft-ca: its URL, what the requests gave, and
 * weft-ca's own GET /v1/status when it answered the last one.
 */
static json_object *weft_ca_view(const struct agent *a)
{
	struct ca_client_stats st;
	json_object *o = json_object_new_object();

	ca_client_stats(a->ca_client, &st);
	json_object_object_add(o, "url", json_object_new_string(ca_client_url(a->ca_client)));
	json_object_object_add(o, "requests", json_object_new_uint64(st.requests));
	json_object_object_add(o, "ok", json_object_new_uint64(st.ok));
	json_object_object_add(o, "refused", json_object_new_uint64(st.refused));
	json_object_object_add(o, "failed", json_object_new_uint64(st.failed));
	json_object_object_add(o, "last_ok", json_object_new_int64(st.last_ok));
	json_object_object_add(o, "last_error", json_object_new_string(st.last_error));
	json_object_object_add(o, "reachable", json_object_new_boolean(a->ca_status != NULL));
	if (a->ca_status) {
		json_object_object_add(o, "status", json_object_get(a->ca_status));
		json_object_object_add(o, "status_at", json_object_new_int64(a->ca_status_at));
	}
	return o;
}

int admin_identities(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { NULL };
	const struct agent *a = ctx;
	json_object *o, *arr;

	if (admin_bad_query(req, resp, known))
		return 0;
	o = json_object_new_object();
	arr = json_object_new_array();
	json_object_object_add(o, "enabled", json_object_new_boolean(a->ids != NULL));
	json_object_object_add(o, "trust_domain", json_object_new_string(a->cfg->trust_domain));
	json_object_object_add(o, "issuer",
			       json_object_new_string(a->ids ? idset_issuer_kind(a->ids) : "none"));
	if (a->ca_client)
		json_object_object_add(o, "weft_ca", weft_ca_view(a));
	if (a->ids) {
		json_object_object_add(o, "pending", json_object_new_uint64(idset_pending(a->ids)));
		json_object_object_add(o, "trust_anchors",
				       json_object_new_uint64(idset_trust(a->ids)->n_cas));
		for (size_t i = 0; i < idset_count(a->ids); i++) {
			const struct svid *s = idset_at(a->ids, i);
			json_object *e = json_object_new_object();

			json_object_object_add(e, "id", json_object_new_string(s->uri));
			json_object_object_add(e, "namespace", json_object_new_string(s->id.ns));
			json_object_object_add(e, "service_account", json_object_new_string(s->id.sa));
			json_object_object_add(e, "subject", json_object_new_string(s->subject));
			json_object_object_add(e, "serial", json_object_new_string(s->serial));
			json_object_object_add(e, "issuer", json_object_new_string(s->issuer_name));
			json_object_object_add(e, "issued_by",
					       json_object_new_string(idset_issuer_kind(a->ids)));
			json_object_object_add(e, "not_before", json_object_new_int64(s->not_before));
			json_object_object_add(e, "not_after", json_object_new_int64(s->not_after));
			json_object_object_add(e, "renew_at", json_object_new_int64(s->renew_at));
			json_object_object_add(e, "expires_in_s",
					       json_object_new_int64(s->not_after - time(NULL)));
			json_object_object_add(e, "certificate", cert_pem(s->cert));
			json_object_array_add(arr, e);
		}
	}
	json_object_object_add(o, "identities", arr);
	/* Callers refused by weft.io/allow-from on this node, summed over the
	 * workers (each keeps PROXY_DENIALS_MAX, then "other").
	 */
	arr = json_object_new_array();
	workers_isolate(a->workers);
	for (unsigned int i = 0; i < workers_count(a->workers); i++)
		proxy_mtls_denials(workers_proxy(a->workers, i), add_denial, arr);
	workers_release(a->workers);
	json_object_object_add(o, "denied", arr);
	return admin_json(resp, o);
}
