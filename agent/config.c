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

#define OPT(n, e, t, f, d, lo, hi, m, h)                                                           \
	{ .name = n, .env = e, .type = t, .offset = offsetof(struct agent_config, f), .def = d,    \
	  .min = lo, .max = hi, .metavar = m, .help = h }

static const struct opt_def cfg_opts[] = {
	OPT("registry", "WEFT_REGISTRY", OPT_STRINGS, registries, "file:/etc/weft/registry.yaml", 0,
	    0, "SOURCE",
	    "where services, endpoints and namespaces come from: file:PATH (repeat the option to merge sources; the first listed wins a conflict)"),
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
	OPT("connect-timeout", "WEFT_CONNECT_TIMEOUT_MS", OPT_U32, connect_timeout_ms, "5000", 1,
	    600000, "MS", "give up an upstream connect after this many milliseconds"),
	OPT("max-conns", "WEFT_MAX_CONNS", OPT_U32, max_conns, "65536", 1, 1048576, "N",
	    "proxied connections at once; more are reset"),
	OPT("exclude-outbound-ports", "WEFT_EXCLUDE_OUTBOUND_PORTS", OPT_STRING, excl_ports_text, "",
	    0, 0, "PORTS",
	    "destination ports no pod's capture touches, e.g. \"53,6443\" (pods add their own with the annotation weft.io/exclude-outbound-ports)"),
	OPT("exclude-outbound-cidrs", "WEFT_EXCLUDE_OUTBOUND_CIDRS", OPT_STRING, excl_cidrs_text, "",
	    0, 0, "CIDRS",
	    "destination prefixes no pod's capture touches (annotation weft.io/exclude-outbound-cidrs per pod)"),
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
