/* SPDX-License-Identifier: GPL-2.0-only */
/* The etcd v3 registry backend: --registry etcd:URL[,URL...]. Watches the
 * objects under --etcd-prefix through etcd's JSON gateway and registers this
 * node's endpoints under a lease. See docs/registry-etcd-zookeeper.md.
 */
#ifndef WEFT_REG_ETCD_H
#define WEFT_REG_ETCD_H

#include "registry/registry.h"

extern const struct reg_backend_ops reg_etcd_ops;

#endif /* WEFT_REG_ETCD_H */
