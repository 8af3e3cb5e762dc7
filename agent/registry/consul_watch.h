/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/consul*.c: the Consul watcher thread
 * (consul_watch.c), started and stopped by consul.c. Keeps the sink in step
 * with the catalog's services and their passing instances.
 */
#ifndef WEFT_REG_CONSUL_WATCH_H
#define WEFT_REG_CONSUL_WATCH_H

/* The watcher thread's body; @arg is the struct consul (registry/consul_core.h). */
void *consul_watch_main(void *arg);

#endif /* WEFT_REG_CONSUL_WATCH_H */
