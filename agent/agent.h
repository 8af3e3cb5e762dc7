/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent: the modules one node runs, wired together by main.c. Data flows
 * one way: registry → model → catalogue → (pods, proxy, datapath).
 */
#ifndef WEFT_AGENT_H
#define WEFT_AGENT_H

#include <limits.h>
#include <stdint.h>

struct agent_config;
struct loop;
struct model;
struct reg_file;
struct catalogue;
struct dp;
struct pods;
struct proxy;
struct cni_server;
struct http_server;

struct agent {
	const struct agent_config *cfg;
	struct loop *loop;
	struct model *model;
	struct reg_file *reg;
	struct catalogue *cat;		/* the current snapshot; one reference held */
	struct dp *dp;
	struct pods *pods;
	struct proxy *proxy;
	struct cni_server *cni;
	struct http_server *admin;
	int home_netns_fd;		/* the agent's own netns */
	int signal_fd;
	uint64_t start_ms;
	char cgroup[PATH_MAX];		/* resolved --cgroup */
};

/* Build a catalogue from the model, publish it to the proxy, and reconcile
 * pods against it. Returns 0 or -errno (the previous catalogue stays).
 */
int agent_publish(struct agent *a);

#endif /* WEFT_AGENT_H */
