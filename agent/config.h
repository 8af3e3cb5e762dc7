/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's configuration: one table of options (config.c) parsed from
 * defaults, environment (Kubernetes downward API) and flags, in that order.
 */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"

#define CFG_EXCL_MAX 8	/* per list; bpf/abi.h MESH_MAX_EXCL_* */

#include "model/policy.h"
#include "opt.h"

struct agent_config {
	struct opt_strings registries;	/* --registry, in rank order */
	const char *cgroup;		/* "" = the cgroup v2 mount's root */
	const char *bpffs;
	const char *run_dir;
	const char *log_level;
	const char *node_name;
	const char *kubeconfig;		/* --registry kubernetes; "" = in-cluster */
	const char *metrics_addr;	/* --metrics-addr IP:PORT; "" = no metrics listener */
	const char *mode;		/* --mode auto|ebpf|nft */
	uint32_t mark;
	uint32_t inbound_mark;		/* the inbound side's sockets */
	uint32_t return_table;		/* the inbound return path's table */
	uint16_t proxy_port;
	uint32_t inbound_port;		/* 0: no inbound capture */
	uint32_t dns_port;		/* the in-pod DNS responder; 0: DNS not captured */
	uint32_t max_conns;
	uint32_t pod_max_conns;		/* 0: a fair share of max_conns */
	uint32_t workers;		/* --workers; 0: one per online CPU */
	/* Resilience defaults of every service, one option per knob of the
	 * policy table (model/policy.h); a Service overrides each with a
	 * weft.io/ annotation (docs/resilience.md).
	 */
	struct policy policy;
	const char *etcd_prefix;	/* key prefix of etcd registries */
	uint32_t etcd_lease_ttl_s;	/* lease of this node's etcd registrations */
	uint32_t zk_session_timeout_ms;	/* asked of ZooKeeper; the server bounds it */
	const char *consul_token_file;	/* Consul registries (registry.h struct reg_opts) */
	const char *consul_ca;
	const char *consul_namespace;
	const char *consul_partition;
	const char *consul_agent;
	uint32_t consul_check_ttl_s;
	uint32_t consul_wait_s;
	const char *trust_domain;	/* --trust-domain: SPIFFE IDs' */
	const char *mtls_mode;		/* --mtls-mode permissive|strict */
	const char *ca_cert;		/* --ca-cert, --ca-key: standalone issuing; "" = none */
	const char *ca_key;
	const char *trust_bundle;	/* --trust-bundle: more CAs to trust; "" = none */
	const char *ca_url;		/* --ca-url: weft-ca issues; "" = not used */
	const char *ca_token_file;	/* --ca-token-file: the token weft-ca checks */
	uint32_t svid_ttl_s;		/* --svid-ttl */
	const char *excl_ports_text;	/* as given; parsed into excl_ports */
	const char *excl_cidrs_text;
	const char *vip_range_text;	/* --vip-range; parsed into vip_ranges */
	const char *cluster_domain;	/* --cluster-domain: names are <svc>.<ns>.svc.<it> */
	uint32_t pod_wait_ms;		/* --pod-wait: an ADD waits for its Pod object */
	bool evict_escaped;		/* --evict-escaped */
	const char *opaque_fastpath;	/* --opaque-fastpath splice|sockmap */
	bool no_sandbox;		/* --no-sandbox: workers keep their privileges (debugging) */
	uint32_t repair_period_ms;	/* --repair-period */
	bool takeover;			/* --takeover: a predecessor must hand over */
	bool no_pass_conns;		/* --no-pass-connections: they drain instead */
	uint32_t drain_s;		/* --drain-seconds */
	uint32_t fail_open_after_ms;	/* --fail-open-after: 0 = off */
	bool cleanup;
	bool version;
	/* Parsed by cfg_parse(): destinations no pod's capture touches. */
	uint16_t excl_ports[CFG_EXCL_MAX];
	size_t n_excl_ports;
	struct cidr excl_cidrs[CFG_EXCL_MAX];
	size_t n_excl_cidrs;
	struct cidr vip_ranges[2];	/* at most one per family */
	size_t n_vip_ranges;
};

/* Parse @argv over the defaults and the environment into @cfg. Returns 0,
 * 1 when --help was asked (usage printed to stdout), or -EINVAL with the
 * problem printed to stderr.
 */
int cfg_parse(struct agent_config *cfg, int argc, char **argv);

/* Print the option table (for --help and the docs). */
void cfg_usage(FILE *out);

#endif /* WEFT_CONFIG_H */
