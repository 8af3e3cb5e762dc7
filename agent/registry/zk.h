/* SPDX-License-Identifier: GPL-2.0-only */
/* The ZooKeeper registry backend: --registry zookeeper:HOST:PORT[,...][/ROOT].
 * Watches the objects under ROOT (child and data watches, re-armed after
 * each event) and registers this node's endpoints as ephemeral znodes of its
 * session. See docs/registry-etcd-zookeeper.md.
 */
#ifndef WEFT_REG_ZK_H
#define WEFT_REG_ZK_H

#include "registry/registry.h"

extern const struct reg_backend_ops reg_zk_ops;

#endif /* WEFT_REG_ZK_H */
