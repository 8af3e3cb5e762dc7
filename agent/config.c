// SPDX-License-Identifier: GPL-2.0-only
/* The agent's option table: every option once, with its env var, default and
 * help. --help and docs/agent-options.md are rendered from it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "opt.h"
#include "proxy/policy.h"

#define STR(x) #x
#define XSTR(x) STR(x)

#define OPT(n, e, t, f, d, lo, hi, m, h)                                                           \
	{ .name = n, .env = e, .type = t, .offset = offsetof(struct agent_config, f), .def = d,    \
	  .min = lo, .max = hi, .metavar = m, .help = h }

static const struct opt_def cfg_opts[] = {
	OPT("registry", "WEFT_REGISTRY", OPT_STRINGS, registries, "file:/etc/weft/registry.yaml", 0,
	    0, "SOURCE",
	    "where services, endpoints and namespaces come from: file:PATH, kubernetes, etcd:URL[,URL] or zookeeper:HOST:PORT[,...][/ROOT]; repeat the option to merge sources (the first listed wins a conflict)"),
	OPT("cgroup", "WEFT_CGROUP", OPT_STRING, cgroup, "", 0, 0, "DIR",
	    "cgroup v2 folder the programs attach to (empty: the cgroup v2 mount's root); the agent must run inside it"),
	OPT("bpffs", "WEFT_BPFFS", OPT_STRING, bpffs, "/sys/fs/bpf/weft", 0, 0, "DIR",
	    "bpffs folder where maps and links are pinned"),
	OPT("run-dir", "WEFT_RUN_DIR", OPT_STRING, run_dir, "/run/weft", 0, 0, "DIR",
	    "holds cni.sock, admin.sock and the enrolled pods' state"),
	OPT("log-level", "WEFT_LOG_LEVEL", OPT_STRING, log_level, "info", 0, 0, "LEVEL",
	    "err, warn, info or debug"),
	OPT("node-name", "NODE_NAME", OPT_STRING, node_name, "", 0, 0, "NAME",
	    "this node's name (Kubernetes downward API spec.nodeName)"),
	OPT("mark", "WEFT_MARK", OPT_U32, mark, "0xef70", 1, UINT32_MAX, "MARK",
	    "SO_MARK of the agent's upstream sockets, which capture leaves alone"),
	OPT("proxy-port", "WEFT_PROXY_PORT", OPT_PORT, proxy_port, "15001", 0, 0, "PORT",
	    "port of the outbound listeners inside each meshed pod (127.0.0.1 and ::1)"),
	OPT("connect-timeout", "WEFT_CONNECT_TIMEOUT_MS", OPT_U32, connect_timeout_ms,
	    XSTR(POLICY_DEF_CONNECT_MS), 1, 600000, "MS",
	    "give up an upstream connect after this many milliseconds (annotation weft.io/connect-timeout)"),
	OPT("max-conns", "WEFT_MAX_CONNS", OPT_U32, max_conns, "65536", 1, 1048576, "N",
	    "proxied connections at once; more are reset"),
	OPT("lb", "WEFT_LB", OPT_STRING, lb, POLICY_DEF_LB, 0, 0, "ALGO",
	    "endpoint choice: least-request (the less loaded of two choices), round-robin or random, all weighted (weft.io/lb)"),
	OPT("protocol", "WEFT_PROTOCOL", OPT_STRING, protocol, POLICY_DEF_PROTOCOL, 0, 0, "PROTO",
	    "auto (HTTP/1.x when the client's first bytes are a request), tcp or http (weft.io/protocol)"),
	OPT("protocol-detect-timeout", "WEFT_PROTOCOL_DETECT_TIMEOUT_MS", OPT_U32, detect_timeout_ms,
	    XSTR(POLICY_DEF_DETECT_MS), 1, 10000, "MS",
	    "with auto, wait this long for the client's first bytes before relaying as tcp, for protocols where the server speaks first (weft.io/protocol-detect-timeout)"),
	OPT("idle-timeout", "WEFT_IDLE_TIMEOUT_MS", OPT_U32, idle_timeout_ms,
	    XSTR(POLICY_DEF_IDLE_MS), 0, 86400000, "MS",
	    "close a connection with no bytes either way for this long; 0: never (weft.io/idle-timeout)"),
	OPT("request-timeout", "WEFT_REQUEST_TIMEOUT_MS", OPT_U32, request_timeout_ms,
	    XSTR(POLICY_DEF_REQUEST_MS), 0, 3600000, "MS",
	    "HTTP: answer 504 when a response has not started this long after the request, retries included; 0: none (weft.io/request-timeout)"),
	OPT("retries", "WEFT_RETRIES", OPT_U32, retries, XSTR(POLICY_DEF_RETRIES), 0,
	    POLICY_RETRIES_MAX, "N",
	    "extra attempts on another endpoint after a failed connect, or an idempotent HTTP request's reset or 502/503/504 (weft.io/retries)"),
	OPT("retry-budget", "WEFT_RETRY_BUDGET_PERCENT", OPT_U32, retry_budget_pct,
	    XSTR(POLICY_DEF_BUDGET_PCT), 0, 100, "PCT",
	    "retries may add at most this % to a service's requests over 10 s (weft.io/retry-budget)"),
	OPT("retry-budget-min", "WEFT_RETRY_BUDGET_MIN", OPT_U32, retry_budget_min,
	    XSTR(POLICY_DEF_BUDGET_MIN), 0, 1000, "N",
	    "retries per second a service may make whatever its traffic (weft.io/retry-budget-min)"),
	OPT("retry-backoff", "WEFT_RETRY_BACKOFF_MS", OPT_U32, retry_backoff_ms,
	    XSTR(POLICY_DEF_BACKOFF_MS), 1, 10000, "MS",
	    "base of the jittered exponential backoff between attempts, capped at 10 times (weft.io/retry-backoff)"),
	OPT("service-max-connections", "WEFT_SERVICE_MAX_CONNECTIONS", OPT_U32, svc_max_connections,
	    XSTR(POLICY_DEF_MAX_CONNECTIONS), 1, POLICY_LIMIT_MAX, "N",
	    "circuit breaker: upstream connections per service port; more fail fast (weft.io/max-connections)"),
	OPT("service-max-pending", "WEFT_SERVICE_MAX_PENDING", OPT_U32, svc_max_pending,
	    XSTR(POLICY_DEF_MAX_PENDING), 1, POLICY_LIMIT_MAX, "N",
	    "circuit breaker: upstream connects in progress per service port (weft.io/max-pending)"),
	OPT("service-max-requests", "WEFT_SERVICE_MAX_REQUESTS", OPT_U32, svc_max_requests,
	    XSTR(POLICY_DEF_MAX_REQUESTS), 1, POLICY_LIMIT_MAX, "N",
	    "circuit breaker: HTTP requests in flight per service port (weft.io/max-requests)"),
	OPT("outlier-consecutive-failures", "WEFT_OUTLIER_CONSECUTIVE_FAILURES", OPT_U32,
	    outlier_failures, XSTR(POLICY_DEF_OUTLIER_FAILURES), 0, 1000, "N",
	    "eject an endpoint after this many failures in a row (connect failures, HTTP 5xx); 0: never (weft.io/outlier-consecutive-failures)"),
	OPT("outlier-base-ejection", "WEFT_OUTLIER_BASE_EJECTION_MS", OPT_U32, outlier_base_ms,
	    XSTR(POLICY_DEF_OUTLIER_BASE_MS), 10, 3600000, "MS",
	    "an ejection lasts this long times the endpoint's ejection count (weft.io/outlier-base-ejection)"),
	OPT("outlier-max-ejection", "WEFT_OUTLIER_MAX_EJECTION_MS", OPT_U32, outlier_max_ms,
	    XSTR(POLICY_DEF_OUTLIER_MAX_MS), 10, 86400000, "MS",
	    "and at most this long (weft.io/outlier-max-ejection)"),
	OPT("outlier-max-ejected-percent", "WEFT_OUTLIER_MAX_EJECTED_PERCENT", OPT_U32,
	    outlier_max_pct, XSTR(POLICY_DEF_OUTLIER_MAX_PCT), 0, 100, "PCT",
	    "share of a service's endpoints ejected at once; one always may be (weft.io/outlier-max-ejected-percent)"),
	OPT("exclude-outbound-ports", "WEFT_EXCLUDE_OUTBOUND_PORTS", OPT_STRING, excl_ports_text, "",
	    0, 0, "PORTS",
	    "destination ports no pod's capture touches, e.g. \"53,6443\" (pods add their own with the annotation weft.io/exclude-outbound-ports)"),
	OPT("exclude-outbound-cidrs", "WEFT_EXCLUDE_OUTBOUND_CIDRS", OPT_STRING, excl_cidrs_text, "",
	    0, 0, "CIDRS",
	    "destination prefixes no pod's capture touches (annotation weft.io/exclude-outbound-cidrs per pod)"),
	OPT("etcd-prefix", "WEFT_ETCD_PREFIX", OPT_STRING, etcd_prefix, "/weft/registry/", 0, 0,
	    "PREFIX",
	    "etcd registries: the objects live under PREFIX<kind-plural>/<namespace>/<name> (docs/registry-etcd-zookeeper.md)"),
	OPT("etcd-lease-ttl", "WEFT_ETCD_LEASE_TTL", OPT_U32, etcd_lease_ttl_s, "10", 2, 3600, "S",
	    "etcd registries: this node's endpoints are registered under a lease of this many seconds, kept alive; they vanish this long after the agent dies"),
	OPT("zk-session-timeout", "WEFT_ZK_SESSION_TIMEOUT_MS", OPT_U32, zk_session_timeout_ms,
	    "10000", 1000, 600000, "MS",
	    "ZooKeeper registries: session timeout asked for (the server bounds it); this node's endpoints are ephemeral znodes that vanish this long after the agent dies"),
	OPT("kubeconfig", "KUBECONFIG", OPT_STRING, kubeconfig, "", 0, 0, "PATH",
	    "kubeconfig for --registry kubernetes (several, ':'-separated, merge as in kubectl); empty: the in-cluster service account"),
	OPT("metrics-addr", "WEFT_METRICS_ADDR", OPT_STRING, metrics_addr, "", 0, 0, "IP:PORT",
	    "serve Prometheus metrics (GET /metrics) on this TCP address, e.g. 127.0.0.1:9464 or [::]:9464 (port 0: any); empty: off"),
	OPT("workers", "WEFT_WORKERS", OPT_U32, workers, "0", 0, CFG_WORKERS_MAX, "N",
	    "proxy worker threads, each with its own loop and listeners (SO_REUSEPORT); a connection stays on one; 0: one per online CPU"),
	OPT("cleanup", NULL, OPT_FLAG, cleanup, NULL, 0, 0, NULL,
	    "detach and unpin everything the agent made with these options, remove its sockets and state, and exit"),
	OPT("version", NULL, OPT_FLAG, version, NULL, 0, 0, NULL, "print the version and exit"),
};

void cfg_usage(FILE *out)
{
	fprintf(out, "Usage: weft-agent [OPTION]...\n"
		     "The weft node agent: captures meshed pods' outbound TCP with eBPF and proxies it.\n\n");
	opt_usage(out, cfg_opts, sizeof(cfg_opts) / sizeof(cfg_opts[0]));
}

int cfg_parse(struct agent_config *cfg, int argc, char **argv)
{
	char err[256] = "";
	enum log_level level;
	int rc;

	rc = opt_parse(cfg_opts, sizeof(cfg_opts) / sizeof(cfg_opts[0]), cfg, argc, argv, err,
		       sizeof(err));
	if (rc == 1) {
		cfg_usage(stdout);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "weft-agent: %s\n", err);
		return rc;
	}
	if (log_parse_level(cfg->log_level, &level)) {
		fprintf(stderr, "weft-agent: option --log-level: '%s' is not one of err, warn, info, debug\n",
			cfg->log_level);
		return -EINVAL;
	}
	log_set_level(level);
	if (policy_lb_parse(cfg->lb, &(enum lb_algo){ 0 })) {
		fprintf(stderr, "weft-agent: option --lb: '%s' is not one of least-request, round-robin, random\n",
			cfg->lb);
		return -EINVAL;
	}
	if (policy_proto_parse(cfg->protocol, &(enum px_proto){ 0 })) {
		fprintf(stderr, "weft-agent: option --protocol: '%s' is not one of auto, tcp, http\n",
			cfg->protocol);
		return -EINVAL;
	}
	rc = addr_parse_port_list(cfg->excl_ports_text, cfg->excl_ports, CFG_EXCL_MAX, err,
				  sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "weft-agent: option --exclude-outbound-ports: %s%s%s\n",
			rc == -E2BIG ? "more than 8 ports" : "'", rc == -E2BIG ? "" : err,
			rc == -E2BIG ? "" : "' is not a port (1..65535)");
		return -EINVAL;
	}
	cfg->n_excl_ports = (size_t)rc;
	rc = addr_parse_cidr_list(cfg->excl_cidrs_text, cfg->excl_cidrs, CFG_EXCL_MAX, err,
				  sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "weft-agent: option --exclude-outbound-cidrs: %s%s%s\n",
			rc == -E2BIG ? "more than 8 CIDRs" : "'", rc == -E2BIG ? "" : err,
			rc == -E2BIG ? "" : "' is not a CIDR (IP/LEN)");
		return -EINVAL;
	}
	cfg->n_excl_cidrs = (size_t)rc;
	return 0;
}
