/* SPDX-License-Identifier: GPL-2.0-only */
/* The admin API contract shared by the agent (agent/admin/) and meshctl:
 * its version and default socket. docs/admin-api.md describes the endpoints.
 */
#ifndef WEFT_ADMIN_PROTO_H
#define WEFT_ADMIN_PROTO_H

/* Bumped on any incompatible change of a response; both ends refuse a mismatch. */
#define ADMIN_API_VERSION 1
#define ADMIN_DEFAULT_SOCKET "/run/weft/admin.sock"

#endif /* WEFT_ADMIN_PROTO_H */
