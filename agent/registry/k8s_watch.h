/* SPDX-License-Identifier: GPL-2.0-only */
/* One watched Kubernetes resource (Namespaces, Services, EndpointSlices or
 * this node's Pods): where it is in the list-then-watch cycle, and what a
 * list page or a watch event from the API server means for the sink. The
 * transfers themselves are k8s.c's; nothing here does I/O or blocks.
 */
#ifndef WEFT_REG_K8S_WATCH_H
#define WEFT_REG_K8S_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "model/objects.h"

struct reg_sink;

/* A resource the API serves and what its objects are called. */
struct k8s_kind {
	enum obj_kind kind;
	const char *plural;		/* "endpointslices": URL and messages */
	const char *path;		/* "/apis/discovery.k8s.io/v1/endpointslices" */
	const char *name;		/* "EndpointSlice" */
	const char *api_version;	/* "discovery.k8s.io/v1" */
	const char *list_kind;		/* "EndpointSliceList" */
};

/* Indexed by enum obj_kind. */
extern const struct k8s_kind k8s_kinds[OBJ_KIND_COUNT];

/* The watch of one resource. Embedded in k8s.c's state; zero it, then set k. */
struct k8s_res {
	const struct k8s_kind *k;
	char rv[OBJ_RV_MAX];	/* where the watch resumes; "" = list first */
	char *cont;		/* continue token of the page to fetch next, or NULL */
	bool resyncing;		/* this listing began a resync in the sink */
	bool listed;		/* a listing completed at least once */
	size_t n_listed;	/* objects of the listing in progress */
	size_t n_rejected;	/* ... of which rejected */
	uint64_t events;	/* watch events applied */
};

/* Where events go: the sink and the source name of every call. */
struct k8s_out {
	struct reg_sink *sink;
	const char *source;
};

/* Start the next listing from its first page (forget a continue token). */
void k8s_res_list_restart(struct k8s_res *r);

/* Free what @r owns (the continue token). */
void k8s_res_done(struct k8s_res *r);

/* Apply one page of a listing (@list: the body of a 200 response, without
 * the items k8s_res_list_item() applied as they arrived). The first page
 * begins a resync of @r's kind; each item is decoded and upserted, or
 * rejected (logged with the object and field, counted, and its previous
 * version kept). On the last page the resync ends and r->rv is the list's
 * resourceVersion. Returns 1 when more pages follow (r->cont set), 0 when the
 * listing is complete, -EPROTO with @err filled when @list is not a list of
 * @r's kind, or the sink's -errno.
 */
int k8s_res_list_page(struct k8s_res *r, const struct k8s_out *out, json_object *list, char *err,
		      size_t errlen);

/* k8s_res_list_item(): @head does not say yet what the page is. */
#define K8S_LIST_ITEM_LATER 1

/* Apply one item of a page as it arrives (@head: the page's members read
 * before its items; @item borrowed), as k8s_res_list_page() would: the same
 * checks of the page first, the resync begun on the first item. Returns 0,
 * K8S_LIST_ITEM_LATER when @head lacks kind or metadata (the item is then
 * for k8s_res_list_page()), -EPROTO with @err filled, or the sink's -errno
 * (@err "").
 */
int k8s_res_list_item(struct k8s_res *r, const struct k8s_out *out, json_object *head,
		      json_object *item, char *err, size_t errlen);

/* Apply one watch event ({"type": ..., "object": ...}): ADDED and MODIFIED
 * upsert (or reject, as in a listing), DELETED deletes, BOOKMARK only moves
 * r->rv, which every event moves. Returns 0, 1 when the server says r->rv is
 * too old (an ERROR event with code 410: relist), -EPROTO with @err filled
 * for any other ERROR event or a malformed event, or the sink's -errno.
 */
int k8s_res_event(struct k8s_res *r, const struct k8s_out *out, json_object *ev, char *err,
		  size_t errlen);

/* A Kubernetes Status object's "code reason: message" in @buf (for errors in
 * responses and ERROR events); @buf is "" when @status is not a Status.
 * Returns @buf.
 */
const char *k8s_status_str(json_object *status, char *buf, size_t len);

#endif /* WEFT_REG_K8S_WATCH_H */
