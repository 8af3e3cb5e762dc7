/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/zk*.c: this node's ephemeral EndpointSlices
 * (zk_register.c), kept by the worker thread of zk.c.
 */
#ifndef WEFT_REG_ZK_REGISTER_H
#define WEFT_REG_ZK_REGISTER_H

#include <stdbool.h>

struct zk;

/* Make the ephemeral znodes what z->want says; with @recheck, verify every
 * one on the server (after a reconnect or a new session). 0 or -errno.
 */
int zk_register_sync(struct zk *z, bool recheck);

/* The mirror read @rel (relative to the root), an ephemeral znode of this
 * session: take it in among those this session keeps, unless it is known
 * already, so that it is removed when not wanted (a resumed session's,
 * created by the predecessor). 0 or -ENOMEM.
 */
int zk_register_found(struct zk *z, const char *rel);

/* Forget what this session created (the session is gone) and free. */
void zk_register_forget(struct zk *z);

#endif /* WEFT_REG_ZK_REGISTER_H */
