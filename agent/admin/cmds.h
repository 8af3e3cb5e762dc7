/* SPDX-License-Identifier: GPL-2.0-only */
/* The admin API's command table (haproxy's cli_kw_list idea): every path the
 * agent serves on RUN_DIR/admin.sock, in one place (cmds.c). The handlers
 * live in cmds.c (status, pods, services), conns.c and trace.c; what they
 * share is in reply.h. See docs/admin-api.md.
 */
#ifndef WEFT_ADMIN_CMDS_H
#define WEFT_ADMIN_CMDS_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "admin_proto.h"

struct http_route;
struct http_request;
struct http_response;
struct agent;
struct pod;
struct counter_table;

/* Entries of GET /v1/conns: the default and the most a client may ask for. */
#define ADMIN_CONNS_DEFAULT 1000
#define ADMIN_CONNS_MAX 10000

/* The route table; handlers take the struct agent * as context. */
const struct http_route *admin_routes(size_t *n);

/* Add to @o the counters of @ctr, a struct that table @t describes: each row
 * as its JSON key, under its group (objects made as needed), arrays as an
 * object of their elements. Allocation failures leave keys out.
 */
void admin_counters_json(json_object *o, const struct counter_table *t, const void *ctr);

/* GET /v1/conns (conns.c) and GET /v1/trace (trace.c). */
int admin_conns(const struct http_request *req, struct http_response *resp, void *ctx);
int admin_trace(const struct http_request *req, struct http_response *resp, void *ctx);
/* GET /v1/identities (identities.c): this node's workload certificates. */
int admin_identities(const struct http_request *req, struct http_response *resp, void *ctx);

/* GET /v1/resolve?name=NAME[&type=A][&namespace=NS] (resolve.c): whether the
 * agent answers the name for a pod (of NS, along its search path) and with what.
 */
int admin_resolve(const struct http_request *req, struct http_response *resp, void *ctx);

#endif /* WEFT_ADMIN_CMDS_H */
