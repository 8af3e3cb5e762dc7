/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/etcd*.c: the etcd registrar thread (etcd_lease.c),
 * started and stopped by etcd.c when this node self-registers. Keeps
 * e->want written under a lease it keeps alive.
 */
#ifndef WEFT_REG_ETCD_LEASE_H
#define WEFT_REG_ETCD_LEASE_H

/* The registrar thread's body; @arg is the struct etcd (registry/etcd_core.h). */
void *etcd_lease_main(void *arg);

#endif /* WEFT_REG_ETCD_LEASE_H */
