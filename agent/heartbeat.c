// SPDX-License-Identifier: GPL-2.0-only
/* The agent's heartbeat (agent.h), part of the wiring: every
 * CAPTURE_HEARTBEAT_MS, tell the capture of fail-open pods that this agent
 * serves them (eBPF mode: one pinned map entry; nft mode: one set element
 * per fail-open pod, through the pods table). The capture checks it in the
 * kernel, without the agent, and stops capturing those pods once it is older
 * than --fail-open-after: a dead agent's pods then reach their peers
 * directly instead of being refused (docs/lifecycle.md, "Fail-open").
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "agent.h"
#include "datapath/capture.h"
#include "log.h"
#include "loop.h"
#include "pods.h"

static void beat(struct agent *a)
{
	int err = capture_heartbeat(a->capture);

	/* Logged each time: a map that cannot be written any more means
	 * fail-open pods will bypass the mesh although the agent runs.
	 */
	if (err)
		log_warn("heartbeat: cannot write it: %s; fail-open pods will count this agent as gone, ignoring",
			 strerror(-err));
	pods_heartbeat(a->pods);
}

static void on_beat(struct loop_timer *t, uint64_t now)
{
	struct agent *a = (struct agent *)((char *)t - offsetof(struct agent, heartbeat_timer));

	(void)now;
	beat(a);
	if (loop_timer_set(a->loop, t, CAPTURE_HEARTBEAT_MS, on_beat))
		log_warn("heartbeat: cannot arm its timer; fail-open pods will count this agent as gone, ignoring");
}

int agent_heartbeat_start(struct agent *a)
{
	if (a->beating)
		return 0;
	beat(a);
	a->beating = true;
	return loop_timer_set(a->loop, &a->heartbeat_timer, CAPTURE_HEARTBEAT_MS, on_beat);
}

void agent_heartbeat_stop(struct agent *a)
{
	if (!a->beating)
		return;
	loop_timer_del(a->loop, &a->heartbeat_timer);
	a->beating = false;
}
