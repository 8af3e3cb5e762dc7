/* SPDX-License-Identifier: GPL-2.0-only */
/* The Consul registry backend: --registry consul:URL[,URL...]. Watches the
 * catalog's services and their passing instances with blocking queries and
 * registers this node's endpoints with the local Consul agent under TTL
 * checks. See docs/registry-consul.md.
 */
#ifndef WEFT_REG_CONSUL_H
#define WEFT_REG_CONSUL_H

#include "registry/registry.h"

extern const struct reg_backend_ops reg_consul_ops;

#endif /* WEFT_REG_CONSUL_H */
