/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/consul*.c: the Consul registrar thread
 * (consul_agent.c), started and stopped by consul.c when this node
 * self-registers: c->want kept registered with the local Consul agent as
 * service instances under TTL checks it keeps passing.
 */
#ifndef WEFT_REG_CONSUL_AGENT_H
#define WEFT_REG_CONSUL_AGENT_H

#include "registry/consul_core.h"

/* The registrar thread's body; @arg is the struct consul. */
void *consul_agent_main(void *arg);

/* Deregister every instance the registrar left registered (c->have), for at
 * most @budget_ms. Called by stop() after the thread ended. Blocks.
 */
void consul_agent_deregister_all(struct consul *c, uint32_t budget_ms);

#endif /* WEFT_REG_CONSUL_AGENT_H */
