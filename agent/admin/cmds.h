/* SPDX-License-Identifier: GPL-2.0-only */
/* The admin API's command table (haproxy's cli_kw_list idea): every path the
 * agent serves on RUN_DIR/admin.sock, in one place. See docs/admin-api.md.
 */
#ifndef WEFT_ADMIN_CMDS_H
#define WEFT_ADMIN_CMDS_H

#include <stddef.h>

#include "admin_proto.h"

struct http_route;



/* The route table; handlers take the struct agent * as context. */
const struct http_route *admin_routes(size_t *n);

#endif /* WEFT_ADMIN_CMDS_H */
