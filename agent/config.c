// SPDX-License-Identifier: GPL-2.0-only
/* The agent's option table: every option once, with its env var, default and
 * help. --help and the README's copy of it are rendered from it. The
 * resilience options come from the policy table (model/policy.c), in the
 * middle of the rows below.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "dns/dns.h"
#include "proxy/workers.h"
#include "log.h"
#include "opt.h"
#include "spiffe.h"
#include "model/policy.h"

#define OPT(n, e, t, f, d, lo, hi, m, h)                                                           \
	{ .name = n, .env = e, .type = t, .offset = offsetof(struct agent_config, f), .def = d,    \
	  .min = lo, .max = hi, .metavar = m, .help = h }

static const struct opt_def cfg_head[] = {
	OPT("registry", "WEFT_REGISTRY", OPT_STRINGS, registries, "file:/etc/weft/registry.yaml", 0,
	    0, "SOURCE",
	    "where services, endpoints and namespaces come from: file:PATH, kubernetes, etcd:URL[,URL], zookeeper:HOST:PORT[,...][/ROOT] or consul:URL[,URL]; repeat the option to merge sources (the first listed wins a conflict)"),
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
	OPT("mode", "WEFT_MODE", OPT_STRING, mode, "auto", 0, 0, "MODE",
	    "capture mode: ebpf (cgroup programs and sk_lookup), nft (nftables REDIRECT in each pod's netns) or auto (ebpf when the kernel has every hook it needs, nft otherwise; the log and /v1/status say which and why)"),
	OPT("mark", "WEFT_MARK", OPT_U32, mark, "0xef70", 1, UINT32_MAX, "MARK",
	    "SO_MARK of the agent's upstream sockets, for the node's own routing or firewall rules; capture never trusts a mark (any process with CAP_NET_RAW sets one) and recognises the agent's sockets by its cgroup"),
	OPT("inbound-mark", "WEFT_INBOUND_MARK", OPT_U32, inbound_mark, "0xef71", 1, UINT32_MAX,
	    "MARK",
	    "SO_MARK of the agent's connections to applications (inbound side): a rule in each meshed pod's netns routes packets carrying it back to the agent, so the application sees the real client address"),
	OPT("return-table", "WEFT_RETURN_TABLE", OPT_U32, return_table, "15006", 1, 0xfffffeff,
	    "TABLE",
	    "routing table of that rule in each meshed pod's netns (it holds only local default routes)"),
	OPT("proxy-port", "WEFT_PROXY_PORT", OPT_PORT, proxy_port, "15001", 0, 0, "PORT",
	    "port of the outbound listeners inside each meshed pod (127.0.0.1 and ::1)"),
	OPT("inbound-port", "WEFT_INBOUND_PORT", OPT_U32, inbound_port, "15006", 0, 65535, "PORT",
	    "port of the inbound listeners inside each meshed pod (0.0.0.0 and ::), which capture hands connections to the pod's own ports; 0: no inbound capture"),
	OPT("dns-port", "WEFT_DNS_PORT", OPT_U32, dns_port, "15053", 0, 65535, "PORT",
	    "port of the DNS responder inside each meshed pod (UDP and TCP, all addresses), which capture sends the pod's DNS queries to: the agent answers the names of the services it knows and forwards the rest to the resolver the pod asked (docs/dns.md); 0: DNS is not captured"),
	OPT("max-conns", "WEFT_MAX_CONNS", OPT_U32, max_conns, "65536", 1, 1048576, "N",
	    "proxied connections at once; more are reset"),
	OPT("pod-max-conns", "WEFT_POD_MAX_CONNS", OPT_U32, pod_max_conns, "0", 0, 1048576, "N",
	    "outbound connections one pod may hold at once, so that no pod can take what the others need; more are reset (0: a fair share, --max-conns divided by the meshed pods, at least 16)"),
};

/* After the policy rows. */
static const struct opt_def cfg_tail[] = {
	OPT("exclude-outbound-ports", "WEFT_EXCLUDE_OUTBOUND_PORTS", OPT_STRING, excl_ports_text, "",
	    0, 0, "PORTS",
	    "destination ports no pod's capture touches, e.g. \"53,6443\" (pods add their own with the annotation weft.io/exclude-outbound-ports)"),
	OPT("exclude-outbound-cidrs", "WEFT_EXCLUDE_OUTBOUND_CIDRS", OPT_STRING, excl_cidrs_text, "",
	    0, 0, "CIDRS",
	    "destination prefixes no pod's capture touches (annotation weft.io/exclude-outbound-cidrs per pod)"),
	OPT("vip-range", "WEFT_VIP_RANGE", OPT_STRING, vip_range_text,
	    "240.241.0.0/16,fd77:6566:7400::/64", 0, 0, "CIDRS",
	    "one IPv4 and/or one IPv6 prefix that services without a cluster IP (etcd, ZooKeeper, Consul, file registries) get a VIP from, chosen from namespace/name so every node agrees (docs/dns.md); empty: none is allocated"),
	OPT("cluster-domain", "WEFT_CLUSTER_DOMAIN", OPT_STRING, cluster_domain, "cluster.local", 0,
	    0, "DOMAIN",
	    "the cluster's DNS domain: the agent's DNS rules own <service>.<namespace>.svc.DOMAIN for the services it knows (docs/dns.md)"),
	OPT("etcd-prefix", "WEFT_ETCD_PREFIX", OPT_STRING, etcd_prefix, "/weft/registry/", 0, 0,
	    "PREFIX",
	    "etcd registries: the objects live under PREFIX<kind-plural>/<namespace>/<name> (docs/registry-etcd-zookeeper.md)"),
	OPT("etcd-lease-ttl", "WEFT_ETCD_LEASE_TTL", OPT_U32, etcd_lease_ttl_s, "10", 2, 3600, "S",
	    "etcd registries: this node's endpoints are registered under a lease of this many seconds, kept alive; they vanish this long after the agent dies"),
	OPT("zk-session-timeout", "WEFT_ZK_SESSION_TIMEOUT_MS", OPT_U32, zk_session_timeout_ms,
	    "10000", 1000, 600000, "MS",
	    "ZooKeeper registries: session timeout asked for (the server bounds it); this node's endpoints are ephemeral znodes that vanish this long after the agent dies"),
	OPT("consul-token-file", "WEFT_CONSUL_TOKEN_FILE", OPT_STRING, consul_token_file, "", 0, 0,
	    "PATH",
	    "Consul registries: file holding the ACL token, read again for every call (empty: the CONSUL_HTTP_TOKEN environment variable, or no token)"),
	OPT("consul-ca", "WEFT_CONSUL_CA", OPT_STRING, consul_ca, "", 0, 0, "PATH",
	    "Consul registries: CA certificates for https:// URLs (empty: the system's)"),
	OPT("consul-namespace", "WEFT_CONSUL_NAMESPACE", OPT_STRING, consul_namespace, "", 0, 0,
	    "NS",
	    "Consul registries: Enterprise namespace to read and register in, also the Kubernetes namespace of its services (empty: none, services land in 'default')"),
	OPT("consul-partition", "WEFT_CONSUL_PARTITION", OPT_STRING, consul_partition, "", 0, 0,
	    "NAME", "Consul registries: Enterprise admin partition (empty: none)"),
	OPT("consul-agent", "WEFT_CONSUL_AGENT", OPT_STRING, consul_agent, "", 0, 0, "URL",
	    "Consul registries: the local Consul agent this node registers its endpoints with (empty: the first --registry URL)"),
	OPT("consul-check-ttl", "WEFT_CONSUL_CHECK_TTL", OPT_U32, consul_check_ttl_s, "15", 3, 3600,
	    "S",
	    "Consul registries: TTL of the check of each endpoint this node registers, passed every third of it; critical, and out of the mesh, this long after the agent dies"),
	OPT("consul-wait", "WEFT_CONSUL_WAIT", OPT_U32, consul_wait_s, "300", 1, 600, "S",
	    "Consul registries: longest wait of a blocking query (Consul caps it at 600)"),
	OPT("trust-domain", "WEFT_TRUST_DOMAIN", OPT_STRING, trust_domain, "cluster.local", 0, 0,
	    "NAME",
	    "SPIFFE trust domain of the workload identities, spiffe://NAME/ns/NS/sa/SA (docs/mtls.md)"),
	OPT("mtls-mode", "WEFT_MTLS_MODE", OPT_STRING, mtls_mode, "permissive", 0, 0, "MODE",
	    "inbound plaintext policy of namespaces without the weft.io/mtls-mode label or annotation: permissive (mTLS and plaintext accepted) or strict (plaintext refused)"),
	OPT("ca-cert", "WEFT_CA_CERT", OPT_STRING, ca_cert, "", 0, 0, "PATH",
	    "standalone and development issuing: the CA certificate (PEM) that signs this node's workload certificates; with --ca-key. Empty: no mTLS"),
	OPT("ca-key", "WEFT_CA_KEY", OPT_STRING, ca_key, "", 0, 0, "PATH",
	    "the private key of --ca-cert (PEM). It puts the CA key on the node: for standalone and development setups only (docs/mtls.md)"),
	OPT("trust-bundle", "WEFT_TRUST_BUNDLE", OPT_STRING, trust_bundle, "", 0, 0, "PATH",
	    "more CA certificates (PEM) peers' certificates may chain to, beside --ca-cert: the old or next CA during a CA rotation"),
	OPT("ca-url", "WEFT_CA_URL", OPT_STRING, ca_url, "", 0, 0, "URL",
	    "production issuing: weft-ca's HTTPS URL (e.g. https://weft-ca.weft-system.svc); the agent makes each key itself and sends weft-ca a signing request with --ca-token-file; needs --trust-bundle (the weft-ca-bundle ConfigMap), excludes --ca-cert. Empty: not used"),
	OPT("ca-token-file", "WEFT_CA_TOKEN_FILE", OPT_STRING, ca_token_file,
	    "/var/run/secrets/weft-ca/token", 0, 0, "PATH",
	    "with --ca-url: the agent pod's projected ServiceAccount token of audience weft-ca, read again for every request"),
	OPT("svid-ttl", "WEFT_SVID_TTL", OPT_U32, svid_ttl_s, "86400", 10, 2592000, "S",
	    "lifetime of the workload certificates the standalone CA (--ca-cert) issues; each is renewed at half of it. With --ca-url, weft-ca's own --svid-ttl decides and the agent renews at half of what it got"),
	OPT("kubeconfig", "KUBECONFIG", OPT_STRING, kubeconfig, "", 0, 0, "PATH",
	    "kubeconfig for --registry kubernetes (several, ':'-separated, merge as in kubectl); empty: the in-cluster service account"),
	OPT("metrics-addr", "WEFT_METRICS_ADDR", OPT_STRING, metrics_addr, "", 0, 0, "IP:PORT",
	    "serve Prometheus metrics (GET /metrics) on this TCP address, e.g. 127.0.0.1:9464 or [::]:9464 (port 0: any); empty: off"),
	OPT("workers", "WEFT_WORKERS", OPT_U32, workers, "0", 0, WORKERS_MAX, "N",
	    "proxy worker threads, each with its own loop and listeners (SO_REUSEPORT); a connection stays on one; 0: one per online CPU"),
	OPT("opaque-fastpath", "WEFT_OPAQUE_FASTPATH", OPT_STRING, opaque_fastpath, "splice", 0, 0,
	    "KIND",
	    "how opaque TCP bytes cross the proxy: splice (through a pipe, zero-copy) or sockmap (a BPF stream verdict moves them between the two sockets in the kernel, counted; see docs/datapath.md and docs/benchmarks.md for what it gains and costs; experimental: not for production, docs/datapath.md \"Known defect\")"),
	OPT("no-sandbox", NULL, OPT_FLAG, no_sandbox, NULL, 0, 0, NULL,
	    "for debugging only: the proxy workers keep the agent's capabilities and run without their seccomp filter (by default they drop every capability and take their sockets from a privileged broker thread)"),
	OPT("pod-wait", "WEFT_POD_WAIT_MS", OPT_U32, pod_wait_ms, "5000", 0, 9000, "MS",
	    "--registry kubernetes: a CNI ADD in a meshed namespace waits this long for its Pod object (annotations: opt-out, exclusions), then fails with \"try again later\"; 0: decide without it. Below the plugin's 10 s"),
	OPT("evict-escaped", NULL, OPT_FLAG, evict_escaped, NULL, 0, 0, NULL,
	    "evict (Kubernetes Eviction API) this node's running pods of meshed namespaces that were never enrolled, one per --repair-period, so they restart captured"),
	OPT("repair-period", "WEFT_REPAIR_PERIOD_MS", OPT_U32, repair_period_ms, "10000", 100,
	    3600000, "MS",
	    "how often to look for pods that escaped the mesh (logged, weft_pods_unmeshed); with --evict-escaped, at most one eviction each time"),
	OPT("takeover", NULL, OPT_FLAG, takeover, NULL, 0, 0, NULL,
	    "take over from the agent running with the same --run-dir (its hand-over socket): adopt its in-pod listeners, so no new connection is refused, and let it drain; without this flag an agent that finds a live predecessor takes over too, and with it an agent that finds none refuses to start (docs/lifecycle.md)"),
	OPT("no-pass-connections", NULL, OPT_FLAG, no_pass_conns, NULL, 0, 0, NULL,
	    "at a hand-over, keep established opaque TCP connections in the old agent until they end or --drain-seconds pass, as agents before this option did, instead of passing them to the successor with their bytes in flight; either side turns passing off (docs/lifecycle.md)"),
	OPT("fail-open-after", "WEFT_FAIL_OPEN_AFTER_MS", OPT_U32, fail_open_after_ms, "5000", 0,
	    3600000, "MS",
	    "pods of namespaces annotated weft.io/fail-open: \"true\" (or pods so annotated) are not captured while the agent's heartbeat, renewed every second, is older than this: their traffic then bypasses the mesh (no mTLS, no policy) instead of failing; at least 3000; 0: no pod ever fails open (docs/lifecycle.md)"),
	OPT("drain-seconds", "WEFT_DRAIN_SECONDS", OPT_U32, drain_s, "30", 0, 3600, "S",
	    "on SIGTERM or after a hand-over, stop accepting and let established connections finish for at most this long, then reset the rest and exit; 0: at once"),
	OPT("cleanup", NULL, OPT_FLAG, cleanup, NULL, 0, 0, NULL,
	    "detach and unpin everything the agent made with these options, remove its sockets and state, and exit"),
	OPT("version", NULL, OPT_FLAG, version, NULL, 0, 0, NULL, "print the version and exit"),
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define CFG_OPTS_MAX (N_OF(cfg_head) + POLICY_KNOBS + N_OF(cfg_tail))

/* The whole option table into @out (CFG_OPTS_MAX rows); returns its length. */
static size_t cfg_opts(struct opt_def *out)
{
	size_t n = N_OF(cfg_head);

	memcpy(out, cfg_head, sizeof(cfg_head));
	n += policy_opt_defs(out + n, offsetof(struct agent_config, policy));
	memcpy(out + n, cfg_tail, sizeof(cfg_tail));
	return n + N_OF(cfg_tail);
}

void cfg_usage(FILE *out)
{
	struct opt_def opts[CFG_OPTS_MAX];

	fprintf(out, "Usage: weft-agent [OPTION]...\n"
		     "The weft node agent: captures meshed pods' outbound TCP with eBPF and proxies it.\n\n");
	opt_usage(out, opts, cfg_opts(opts));
}

/* Say why option --@opt's list was refused (@rc from addr_parse_*_list():
 * -E2BIG for more than @many, else @bad is not @what). Returns -EINVAL.
 */
static int list_refused(const char *opt, int rc, const char *many, const char *bad,
			const char *what)
{
	if (rc == -E2BIG)
		fprintf(stderr, "weft-agent: option --%s: more than %s\n", opt, many);
	else
		fprintf(stderr, "weft-agent: option --%s: '%s' is not %s\n", opt, bad, what);
	return -EINVAL;
}

int cfg_parse(struct agent_config *cfg, int argc, char **argv)
{
	struct opt_def opts[CFG_OPTS_MAX];
	char err[256] = "";
	enum log_level level;
	int rc;

	rc = opt_parse(opts, cfg_opts(opts), cfg, argc, argv, err, sizeof(err));
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
	if (strcmp(cfg->mode, "auto") && strcmp(cfg->mode, "ebpf") && strcmp(cfg->mode, "nft")) {
		fprintf(stderr, "weft-agent: option --mode: '%s' is not one of auto, ebpf, nft\n",
			cfg->mode);
		return -EINVAL;
	}
	if (cfg->inbound_port == cfg->proxy_port) {
		fprintf(stderr, "weft-agent: option --inbound-port: %u is also --proxy-port; the two listeners need their own ports\n",
			cfg->inbound_port);
		return -EINVAL;
	}
	if (cfg->dns_port && (cfg->dns_port == cfg->proxy_port || cfg->dns_port == cfg->inbound_port)) {
		fprintf(stderr, "weft-agent: option --dns-port: %u is also --proxy-port or --inbound-port; the DNS responder needs its own port\n",
			cfg->dns_port);
		return -EINVAL;
	}
	if (!spiffe_td_valid(cfg->trust_domain)) {
		fprintf(stderr, "weft-agent: option --trust-domain: '%s' is not a trust domain (lowercase letters, digits, '.', '-', '_')\n",
			cfg->trust_domain);
		return -EINVAL;
	}
	if (strcmp(cfg->opaque_fastpath, "splice") && strcmp(cfg->opaque_fastpath, "sockmap")) {
		fprintf(stderr,
			"weft-agent: option --opaque-fastpath: '%s' is not one of splice, sockmap\n",
			cfg->opaque_fastpath);
		return -EINVAL;
	}
	if (strcmp(cfg->mtls_mode, "permissive") && strcmp(cfg->mtls_mode, "strict")) {
		fprintf(stderr, "weft-agent: option --mtls-mode: '%s' is not one of permissive, strict\n",
			cfg->mtls_mode);
		return -EINVAL;
	}
	if (!cfg->ca_cert[0] != !cfg->ca_key[0]) {
		fprintf(stderr, "weft-agent: options --ca-cert and --ca-key go together\n");
		return -EINVAL;
	}
	if (cfg->ca_url[0] && cfg->ca_cert[0]) {
		fprintf(stderr, "weft-agent: options --ca-url and --ca-cert exclude each other: weft-ca or a standalone CA, not both\n");
		return -EINVAL;
	}
	if (cfg->ca_url[0] && (strncmp(cfg->ca_url, "https://", 8) || !cfg->trust_bundle[0])) {
		fprintf(stderr, "weft-agent: option --ca-url: '%s' must be an https:// URL, with --trust-bundle naming the CAs its certificate chains to\n",
			cfg->ca_url);
		return -EINVAL;
	}
	if (cfg->inbound_mark == cfg->mark) {
		fprintf(stderr, "weft-agent: option --inbound-mark: 0x%x is also --mark; the return path routes only the inbound side's sockets back, so the two marks must differ\n",
			cfg->inbound_mark);
		return -EINVAL;
	}
	rc = addr_parse_port_list(cfg->excl_ports_text, cfg->excl_ports, CFG_EXCL_MAX, err,
				  sizeof(err));
	if (rc < 0)
		return list_refused("exclude-outbound-ports", rc, "8 ports", err,
				    "a port (1..65535)");
	cfg->n_excl_ports = (size_t)rc;
	rc = addr_parse_cidr_list(cfg->excl_cidrs_text, cfg->excl_cidrs, CFG_EXCL_MAX, err,
				  sizeof(err));
	if (rc < 0)
		return list_refused("exclude-outbound-cidrs", rc, "8 CIDRs", err, "a CIDR (IP/LEN)");
	cfg->n_excl_cidrs = (size_t)rc;
	if (!dns_domain_valid(cfg->cluster_domain)) {
		fprintf(stderr, "weft-agent: option --cluster-domain: '%s' is not a DNS name (labels of letters, digits and '-', no trailing dot)\n",
			cfg->cluster_domain);
		return -EINVAL;
	}
	rc = addr_parse_cidr_list(cfg->vip_range_text, cfg->vip_ranges, 2, err, sizeof(err));
	if (rc < 0)
		return list_refused("vip-range", rc, "one IPv4 and one IPv6 prefix", err,
				    "a CIDR (IP/LEN)");
	cfg->n_vip_ranges = (size_t)rc;
	if (rc == 2 && cfg->vip_ranges[0].net.family == cfg->vip_ranges[1].net.family) {
		fprintf(stderr, "weft-agent: option --vip-range: two prefixes of one family; give at most one IPv4 and one IPv6\n");
		return -EINVAL;
	}
	return 0;
}
