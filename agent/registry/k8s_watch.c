// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of registry/k8s_watch.h: list pages and watch events of the
 * Kubernetes API decoded by THE decoder (registry/decode.c, the same that
 * reads manifest files) and handed to the sink.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_help.h"
#include "log.h"
#include "registry/decode.h"
#include "registry/k8s_watch.h"
#include "registry/registry.h"

const struct k8s_kind k8s_kinds[OBJ_KIND_COUNT] = {
	[OBJ_NAMESPACE] = { OBJ_NAMESPACE, "namespaces", "/api/v1/namespaces", "Namespace", "v1",
			    "NamespaceList" },
	[OBJ_SERVICE] = { OBJ_SERVICE, "services", "/api/v1/services", "Service", "v1",
			  "ServiceList" },
	[OBJ_ENDPOINTSLICE] = { OBJ_ENDPOINTSLICE, "endpointslices",
				"/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice",
				"discovery.k8s.io/v1", "EndpointSliceList" },
	[OBJ_POD] = { OBJ_POD, "pods", "/api/v1/pods", "Pod", "v1", "PodList" },
};

void k8s_res_list_restart(struct k8s_res *r)
{
	free(r->cont);
	r->cont = NULL;
	r->n_listed = 0;
	r->n_rejected = 0;
	/* A resync begun and never ended is abandoned by the next begin. */
	r->resyncing = false;
}

void k8s_res_done(struct k8s_res *r)
{
	free(r->cont);
	r->cont = NULL;
}

const char *k8s_status_str(json_object *status, char *buf, size_t len)
{
	const char *kind = json_member_str(status, "kind"), *reason, *msg;
	json_object *code = json_member(status, "code");

	buf[0] = '\0';
	if (!kind || strcmp(kind, "Status"))
		return buf;
	reason = json_member_str(status, "reason");
	msg = json_member_str(status, "message");
	snprintf(buf, len, "%d %s%s%s", code ? json_object_get_int(code) : 0,
		 reason ? reason : "", msg ? ": " : "", msg ? msg : "");
	return buf;
}

/* metadata.resourceVersion of @o into @rv; -EPROTO when missing or too long. */
static int take_rv(json_object *o, char *rv, char *err, size_t errlen)
{
	const char *v = json_member_str(json_member(o, "metadata"), "resourceVersion");

	if (!v || !v[0] || strlen(v) >= OBJ_RV_MAX) {
		snprintf(err, errlen, "metadata.resourceVersion: %s",
			 v && v[0] ? "too long" : "missing");
		return -EPROTO;
	}
	strcpy(rv, v);
	return 0;
}

/* A decoded object of another kind than the resource (a confused proxy in
 * front of the API server) must not land in the model under this watch.
 */
static int check_kind(const struct k8s_res *r, struct obj **obj, char *msg, size_t len)
{
	char who[OBJ_NS_MAX + OBJ_NAME_MAX + 32];

	if ((*obj)->key.kind == r->k->kind)
		return 0;
	snprintf(msg, len, "%s: kind: expected %s in a watch of %s",
		 obj_key_fmt(&(*obj)->key, who, sizeof(who)), r->k->name, r->k->plural);
	obj_free(*obj);
	*obj = NULL;
	return -EINVAL;
}

/* Log, count and (in a listing) keep the previous version of one rejected
 * object. Only the sink's errors are returned: a bad object is data.
 */
static int reject(const struct k8s_res *r, const struct k8s_out *out, json_object *list,
		  json_object *o, const char *where, const char *msg)
{
	struct obj_key key;
	bool known = !reg_decode_key(list, o, &key) && key.kind == r->k->kind;
	int err;

	log_warn("registry: %s: %s: %s (its previous version, if any, stays in force), ignoring",
		 out->source, where, msg);
	err = reg_sink_rejected(out->sink, out->source);
	if (!err && known && r->resyncing)
		err = reg_sink_keep(out->sink, out->source, key.kind, key.ns, key.name);
	return err;
}

/* What must hold of a page before any of its items counts: it is a list of
 * @r's kind, and the last page (no continue token) carries the listing's
 * resourceVersion, which goes to @rv. Fills *@cont with the continue token
 * ("" on the last page). 0 or -EPROTO with @err filled.
 */
static int page_check(const struct k8s_res *r, json_object *list, const char **cont, char *rv,
		      char *err, size_t errlen)
{
	const char *kind = json_member_str(list, "kind");

	/* The server names the list; anything else (an HTML error page from a
	 * proxy, a Status) is not a listing.
	 */
	if (!kind || strcmp(kind, r->k->list_kind)) {
		snprintf(err, errlen, "expected a %s, got %s%.64s", r->k->list_kind,
			 kind ? "a " : "a value without kind", kind ? kind : "");
		return -EPROTO;
	}
	*cont = json_member_str(json_member(list, "metadata"), "continue");
	if (!*cont)
		*cont = "";
	return (*cont)[0] ? 0 : take_rv(list, rv, err, errlen);
}

/* The first page of a listing begins a resync of @r's kind in the sink. */
static int page_begin(struct k8s_res *r, const struct k8s_out *out)
{
	const enum obj_kind kinds[] = { r->k->kind };
	int rc;

	if (r->resyncing)
		return 0;
	rc = reg_sink_resync_begin(out->sink, out->source, kinds, 1);
	if (!rc)
		r->resyncing = true;
	return rc;
}

/* Decode one item of @list and upsert it, or reject it. The sink's -errno. */
static int list_item(struct k8s_res *r, const struct k8s_out *out, json_object *list,
		     json_object *item)
{
	char msg[REG_DECODE_ERR_MAX], where[64];
	struct obj *obj = NULL;
	int rc;

	r->n_listed++;
	rc = reg_decode_list_item(list, item, &obj, msg, sizeof(msg));
	if (!rc)
		rc = check_kind(r, &obj, msg, sizeof(msg));
	if (rc == -EINVAL) {
		r->n_rejected++;
		snprintf(where, sizeof(where), "list %s", r->k->plural);
		return reject(r, out, list, item, where, msg);
	}
	return rc ? rc : reg_sink_upsert(out->sink, out->source, obj);
}

int k8s_res_list_item(struct k8s_res *r, const struct k8s_out *out, json_object *head,
		      json_object *item, char *err, size_t errlen)
{
	char rv[OBJ_RV_MAX];
	const char *cont;
	int rc;

	err[0] = '\0';
	/* The API server writes kind and metadata before items; a page that
	 * does not is read whole, then checked as it always was.
	 */
	if (!json_member(head, "kind") || !json_member(head, "metadata"))
		return K8S_LIST_ITEM_LATER;
	rc = page_check(r, head, &cont, rv, err, errlen);
	if (!rc)
		rc = page_begin(r, out);
	return rc ? rc : list_item(r, out, head, item);
}

int k8s_res_list_page(struct k8s_res *r, const struct k8s_out *out, json_object *list, char *err,
		      size_t errlen)
{
	char msg[REG_DECODE_ERR_MAX], rv[OBJ_RV_MAX];
	json_object *items;
	const char *cont;
	size_t n;
	int rc;

	rc = page_check(r, list, &cont, rv, err, errlen);
	if (rc)
		return rc;
	rc = reg_list_items(list, &items, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "%s", msg);
		return -EPROTO;
	}
	rc = page_begin(r, out);
	if (rc)
		return rc;
	n = items ? json_object_array_length(items) : 0;
	for (size_t i = 0; i < n; i++) {
		rc = list_item(r, out, list, json_object_array_get_idx(items, i));
		if (rc)
			return rc;
	}
	if (cont[0]) {
		char *c = strdup(cont);

		if (!c)
			return -ENOMEM;
		free(r->cont);
		r->cont = c;
		return 1;
	}
	rc = reg_sink_resync_end(out->sink, out->source);
	if (rc)
		return rc;
	log_info("registry: %s: listed %zu %s (%zu rejected) at resourceVersion %s", out->source,
		 r->n_listed, r->k->plural, r->n_rejected, rv);
	strcpy(r->rv, rv);
	free(r->cont);
	r->cont = NULL;
	r->resyncing = false;
	r->listed = true;
	return 0;
}

/* Watch events carry kind and apiVersion; fill them in if a server leaves
 * them out, so the decoder knows what it reads (as for list items).
 */
static int default_kind(const struct k8s_res *r, json_object *o)
{
	if (!json_member(o, "kind") &&
	    json_object_object_add(o, "kind", json_object_new_string(r->k->name)))
		return -ENOMEM;
	if (!json_member(o, "apiVersion") &&
	    json_object_object_add(o, "apiVersion", json_object_new_string(r->k->api_version)))
		return -ENOMEM;
	return 0;
}

static int apply_upsert(struct k8s_res *r, const struct k8s_out *out, json_object *o,
			const char *where)
{
	char msg[REG_DECODE_ERR_MAX];
	struct obj *obj = NULL;
	int rc;

	rc = reg_decode(o, &obj, msg, sizeof(msg));
	if (!rc)
		rc = check_kind(r, &obj, msg, sizeof(msg));
	if (rc == -EINVAL)
		return reject(r, out, NULL, o, where, msg);
	if (rc)
		return rc;
	return reg_sink_upsert(out->sink, out->source, obj);
}

static int apply_delete(struct k8s_res *r, const struct k8s_out *out, json_object *o,
			const char *where)
{
	struct obj_key key;

	if (reg_decode_key(NULL, o, &key) || key.kind != r->k->kind)
		return reject(r, out, NULL, o, where, "metadata.name: cannot tell which object");
	return reg_sink_delete(out->sink, out->source, key.kind, key.ns, key.name);
}

int k8s_res_event(struct k8s_res *r, const struct k8s_out *out, json_object *ev, char *err,
		  size_t errlen)
{
	const char *type = json_member_str(ev, "type");
	json_object *o = json_member(ev, "object"), *code;
	char where[64], rv[OBJ_RV_MAX], status[256];
	int rc;

	if (!type || !o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "watch event without type or object");
		return -EPROTO;
	}
	if (!strcmp(type, "ERROR")) {
		code = json_member(o, "code");
		/* "410 Gone": the resourceVersion was compacted away; only a new
		 * listing can tell what changed meanwhile.
		 */
		if (code && json_object_get_int(code) == 410)
			return 1;
		snprintf(err, errlen, "ERROR event: %s", k8s_status_str(o, status, sizeof(status)));
		return -EPROTO;
	}
	rc = take_rv(o, rv, err, errlen);
	if (rc)
		return rc;
	rc = default_kind(r, o);
	if (rc)
		return rc;
	snprintf(where, sizeof(where), "watch %s %s", r->k->plural, type);
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		rc = apply_upsert(r, out, o, where);
	} else if (!strcmp(type, "DELETED")) {
		rc = apply_delete(r, out, o, where);
	} else if (strcmp(type, "BOOKMARK")) {
		snprintf(err, errlen, "unknown watch event type '%.32s'", type);
		return -EPROTO;
	}
	if (rc)
		return rc;
	/* Only an event that was applied moves the position: after a failure
	 * the watch resumes before it.
	 */
	strcpy(r->rv, rv);
	r->events++;
	return 0;
}
