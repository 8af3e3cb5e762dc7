/* SPDX-License-Identifier: GPL-2.0-only */
/* THE decoder of Kubernetes objects: one json-c object (from a manifest file
 * or a watch event) into one validated struct obj. Used by every registry
 * backend; knows nothing about files, sockets or the model.
 */
#ifndef WEFT_REG_DECODE_H
#define WEFT_REG_DECODE_H

#include <stddef.h>

#include <json-c/json.h>

#include "model/objects.h"

/* Room for any message reg_decode() writes. */
#define REG_DECODE_ERR_MAX 512

/* Decode one object (v1 Namespace, v1 Service, discovery.k8s.io/v1
 * EndpointSlice, v1 Pod). Borrows @o. On success returns 0 and stores a new
 * object in @out (the caller owns it). On failure returns -EINVAL (bad or
 * unsupported object, message in @err naming the object and the field, e.g.
 * `Service default/web: spec.ports[1].port: must be an integer in 1..65535,
 * got "http"`) or -ENOMEM. A missing metadata.namespace means "default".
 * Does not block.
 */
int reg_decode(json_object *o, struct obj **out, char *err, size_t errlen);

/* Whether @o is a list ("List", or any kind ending in "List" such as
 * "ServiceList" from `kubectl get -o json` or the API server). Returns 1 and
 * sets @items to the (borrowed) items array, or to NULL when items is null or
 * absent (an empty list); 0 if @o is not a list; -EINVAL with @err filled if
 * it is a list whose items are not an array.
 */
int reg_list_items(json_object *o, json_object **items, char *err, size_t errlen);

/* reg_decode() for an item of @list. Items of a typed list read from the API
 * server carry no kind/apiVersion; they default to the list's ("ServiceList",
 * "v1" gives "Service", "v1"). Same returns as reg_decode().
 */
int reg_decode_list_item(json_object *list, json_object *item, struct obj **out, char *err,
			 size_t errlen);

/* Best effort: the kind, namespace and name of @o (an item of @list, or NULL
 * for a lone object) without validating the rest, so a caller can tell which
 * object a rejected one was. 0, or -EINVAL when they cannot be told.
 */
int reg_decode_key(json_object *list, json_object *o, struct obj_key *key);

#endif /* WEFT_REG_DECODE_H */
