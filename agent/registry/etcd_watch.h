/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/etcd*.c: the etcd watcher thread (etcd_watch.c),
 * started and stopped by etcd.c. Lists the prefix into the sink, then
 * watches it from the listed revision.
 */
#ifndef WEFT_REG_ETCD_WATCH_H
#define WEFT_REG_ETCD_WATCH_H

/* The watcher thread's body; @arg is the struct etcd (registry/etcd_core.h). */
void *etcd_watch_main(void *arg);

#endif /* WEFT_REG_ETCD_WATCH_H */
