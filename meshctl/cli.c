// SPDX-License-Identifier: GPL-2.0-only
/* meshctl's grammar: `meshctl [OPTIONS] COMMAND [ARGS]`, global options
 * anywhere on the line, commands chosen from one table by unique prefix
 * (bpftool's cmd_select), help for the whole tool or for one command.
 * A future object with verbs of its own (`meshctl bpf map`) is a command whose
 * fn runs cmd_select() over its own table.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "client.h"
#include "meshctl.h"
#include "opt.h"

#ifndef WEFT_VERSION
#define WEFT_VERSION "0.0.0"
#endif

#define MESHCTL_ERR_MAX 256

static int cmd_version(struct meshctl *m, int argc, char **argv);

static const struct cmd commands[] = {
	{ "status", cmd_status, "", "the agent: version, mode, kernel, registries, counters",
	  "Show what the agent of this node is doing: version, capture mode, kernel,\n"
	  "uptime, pods, services, connections, each registry's health and staleness,\n"
	  "the BPF programs' attach state and decision counters, one \"key value\" line\n"
	  "each (the keys of GET /v1/status in docs/admin-api.md): meshctl status | grep bpf\n" },
	{ "check", cmd_check, "[--pre|--ready] [--bpffs DIR]", "preflight checks, each with its fix",
	  "Check this machine and the running agent; each line is PASS or FAIL with what\n"
	  "was seen, and a failure says how to fix it. Exit status 1 if any failed.\n"
	  "\n"
	  "  machine: kernel >= 5.15, BTF, cgroup v2 mounted, bpffs mounted, permissions,\n"
	  "           the BPF program and map types weft loads, nf_tables (nft fallback)\n"
	  "  agent:   reachable on --socket, its programs attached per the links pinned\n"
	  "           under its bpffs, every meshed pod's listeners and mesh_pods entry,\n"
	  "           every registry synced\n"
	  "\n"
	  "  --pre         the machine only: before installing, or with the agent down\n"
	  "  --ready       the agent only, without its pods: reachable, programs attached,\n"
	  "                registries synced (the DaemonSet's readiness probe)\n"
	  "  --bpffs DIR   where the agent pins (default /sys/fs/bpf/weft)\n" },
	{ "pods", cmd_pods, "[NAMESPACE/NAME]", "the pods the agent knows, meshed or not and why",
	  "List the pods the agent was told about by the CNI plugin or found at start:\n"
	  "namespace, name, whether their traffic is captured, their IPs, the agent's\n"
	  "listeners inside the pod, connections (active/total) and why the pod is or\n"
	  "is not meshed. With NAMESPACE/NAME, the same as 'meshctl pod'.\n" },
	{ "pod", cmd_pod, "NAMESPACE/NAME", "one pod: enrollment, listeners, exclusions, connections",
	  "Show one pod in detail: whether it is meshed and why, its netns and cookie,\n"
	  "IPs, the agent's listeners in it (and whether they still listen), whether\n"
	  "the kernel's mesh_pods map has it, its excluded ports and CIDRs, and its live\n"
	  "proxied connections.\n" },
	{ "services", cmd_services, "[NAMESPACE/NAME]", "service ports: VIP, endpoints, traffic",
	  "List every service port of the catalogue in force: VIP, ready/total endpoints,\n"
	  "endpoints ejected now, active and total connections, requests, 5xx answers,\n"
	  "the recent p99 latency (HTTP requests, or connects for TCP) and the balancer.\n"
	  "With NAMESPACE/NAME, the same as 'meshctl service'.\n" },
	{ "service", cmd_service, "NAMESPACE/NAME", "one service: policy, circuit, latency, endpoints",
	  "Show one service, port by port: VIP, policy in force, circuit-breaker state,\n"
	  "traffic counters, recent connect and request latency (p50/p90/p99 over the\n"
	  "last 10 to 20 s), and every endpoint with its readiness, health, how long it\n"
	  "stays ejected, failure streak, load and counters.\n" },
	{ "conns", cmd_conns, "[--pod NS/NAME] [--service NS/NAME] [--limit N]",
	  "live proxied connections",
	  "List the live proxied connections: pod, the application's address, the\n"
	  "original destination, the service and the endpoint the proxy chose, age,\n"
	  "bytes each way and state. At most --limit (default 1000, at most 10000);\n"
	  "when more match, a note on stderr says how many.\n" },
	{ "identities", cmd_identities, "", "this node's workload certificates (mTLS)",
	  "List the workload identities that have a meshed pod on this node, each with\n"
	  "its certificate: SPIFFE ID, subject, serial, expiry, when the agent renews it\n"
	  "(at half-life) and the issuer. Certificates and keys live in the agent's\n"
	  "memory only. See docs/mtls.md.\n" },
	{ "trace", cmd_trace, "NAMESPACE/POD DEST:PORT", "explain where a connection would go, and why",
	  "Explain what would happen to a TCP connection from the pod to DEST:PORT, step\n"
	  "by step: is the pod enrolled and meshed, is it in the kernel's pods map, do\n"
	  "the agent's cgroup, loopback, excluded ports or CIDRs leave it alone (computed\n"
	  "by the BPF programs' own decision code over the live maps); then is DEST a\n"
	  "service VIP, which endpoints are eligible and why the others are not (not\n"
	  "ready, ejected until when, other family), and which one the balancer would\n"
	  "pick now. IPv6 destinations are written [IP]:PORT.\n" },
	{ "resolve", cmd_resolve, "NAME [--type A|AAAA|SRV] [--namespace NS | --pod NS/NAME]",
	  "what the agent's DNS answers for a name, as a meshed pod would ask",
	  "Ask the agent's DNS rules about NAME against the catalogue in force: with\n"
	  "--namespace, a name not ending in '.' is tried along the search path of a\n"
	  "pod of NS (NAME.NS.svc.DOMAIN, NAME.svc.DOMAIN, NAME.DOMAIN), then as it is.\n"
	  "Each try says whether the agent owns the name and the records it answers\n"
	  "with (A/AAAA: the service's VIPs, SRV: its named ports); a name it does not\n"
	  "own is forwarded unchanged to the pod's resolver (docs/dns.md). With --pod,\n"
	  "the search path of that pod's namespace, and whether its queries reach the\n"
	  "agent at all (not meshed, or weft.io/dns-capture \"false\": its resolver\n"
	  "answers everything).\n" },
	{ "top", cmd_top, "[--once] [--interval DURATION]", "live rates, errors and latency per service",
	  "A live view of every service port, redrawn every interval (default 1s):\n"
	  "active connections, connections and HTTP requests per second, errors per\n"
	  "second and their share (5xx, no endpoint, circuit breaker, failed connects),\n"
	  "and p50/p99 latency over the interval (requests, or connects for TCP).\n"
	  "Rates come from two samples of GET /v1/services.\n"
	  "\n"
	  "  --once              print one frame and exit (with -o json: both samples)\n"
	  "  --interval DURATION time between samples: 500ms, 2s (100ms to 1h)\n" },
	{ "bpf", cmd_bpf, "maps|progs [--bpffs DIR] [--cgroup DIR]", "the pinned BPF state, without the agent",
	  "Read weft's pinned BPF objects directly, so it works when the agent is down.\n"
	  "\n"
	  "  bpf maps  [--bpffs DIR]                every pinned map (type, sizes, entries),\n"
	  "                                         the mesh_pods entries, the agent mark\n"
	  "                                         and the decision counters, decoded\n"
	  "  bpf progs [--bpffs DIR] [--cgroup DIR] the pinned links: program, hook, ids,\n"
	  "                                         tag, cgroup, attached or not; with\n"
	  "                                         --cgroup, also every program attached\n"
	  "                                         there for weft's hooks\n"
	  "\n"
	  "--bpffs defaults to /sys/fs/bpf/weft (the agent's --bpffs). Needs root.\n" },
	{ "version", cmd_version, "", "meshctl's version and admin API version",
	  "Print the version of meshctl and of the admin API it speaks. Needs no agent.\n" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: meshctl [OPTIONS] COMMAND [ARGS]\n"
		   "\n"
		   "Inspect the weft agent of this node through its admin socket.\n"
		   "\n"
		   "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"Options:\n"
		"  -o, --output FORMAT    table (default) or json\n"
		"  -j, --json             same as -o json\n"
		"      --socket PATH      the agent's admin socket [default %s]\n"
		"      --timeout DURATION give up on the agent after this: 500ms, 5s\n"
		"                         [default %us]\n"
		"  -h, --help             this help; after a command, that command's help\n"
		"\n"
		"A command may be shortened to a unique prefix: 'meshctl st' is 'meshctl status'.\n"
		"'meshctl COMMAND --help' describes a command and its options.\n"
		"Exit status: 0 success, 1 error (agent unreachable, API error, failed check), 2 usage\n"
		"error.\n",
		CLIENT_DEFAULT_SOCKET, CLIENT_DEFAULT_TIMEOUT_MS / 1000);
}

static void cmd_usage(FILE *f, const struct cmd *c)
{
	fprintf(f, "Usage: meshctl [OPTIONS] %s%s%s\n\n%s\nSee 'meshctl --help' for the options.\n",
		c->name, c->args[0] ? " " : "", c->args, c->help);
}

/* The value of option @name at argv[*i]: "--name=V", "--name V", "-xV" or
 * "-x V" for its short form @s (0 for none). NULL when argv[*i] is not this
 * option; @missing is set when it is but lacks its value.
 */
static const char *opt_value(int argc, char **argv, int *i, const char *name, char s,
			     bool *missing)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (!strncmp(a, "--", 2) && !strncmp(a + 2, name, n) && a[2 + n] == '=')
		return a + 3 + n;
	if (!((!strncmp(a, "--", 2) && !strcmp(a + 2, name)) || (s && a[0] == '-' && a[1] == s)))
		return NULL;
	if (s && a[0] == '-' && a[1] == s && a[2])
		return a + 2;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static int parse_format(const char *v, enum out_format *f)
{
	if (!strcmp(v, "table"))
		*f = OUT_TABLE;
	else if (!strcmp(v, "json"))
		*f = OUT_JSON;
	else
		return -EINVAL;
	return 0;
}

int meshctl_parse_args(struct meshctl *m, int argc, char **argv, char *err, size_t errlen)
{
	bool opts_done = false;

	m->format = OUT_TABLE;
	m->socket = CLIENT_DEFAULT_SOCKET;
	m->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
	m->help = false;
	m->argc = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		bool missing = false;
		uint64_t ms;

		if (opts_done || a[0] != '-' || !a[1]) {
			if (m->argc == MESHCTL_MAX_ARGS) {
				snprintf(err, errlen, "too many arguments (at most %d)",
					 MESHCTL_MAX_ARGS);
				return -EINVAL;
			}
			m->argv[m->argc++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			opts_done = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			m->help = true;
		} else if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
			m->format = OUT_JSON;
		} else if (!strcmp(a, "--version")) {
			/* The habit of every other tool: same as the command. */
			if (m->argc == MESHCTL_MAX_ARGS) {
				snprintf(err, errlen, "too many arguments (at most %d)",
					 MESHCTL_MAX_ARGS);
				return -EINVAL;
			}
			m->argv[m->argc++] = "version";
		} else if ((v = opt_value(argc, argv, &i, "output", 'o', &missing))) {
			if (parse_format(v, &m->format)) {
				snprintf(err, errlen,
					 "unknown output format '%s' (table or json)", v);
				return -EINVAL;
			}
		} else if ((v = opt_value(argc, argv, &i, "socket", 0, &missing))) {
			if (!v[0]) {
				snprintf(err, errlen, "--socket needs a path");
				return -EINVAL;
			}
			m->socket = v;
		} else if ((v = opt_value(argc, argv, &i, "timeout", 0, &missing))) {
			if (opt_parse_duration_ms(v, &ms) || ms == 0 ||
			    ms > MESHCTL_MAX_TIMEOUT_MS) {
				snprintf(err, errlen,
					 "invalid --timeout '%s' (1ms to %us, e.g. 500ms or 5s)", v,
					 MESHCTL_MAX_TIMEOUT_MS / 1000);
				return -EINVAL;
			}
			m->timeout_ms = (unsigned int)ms;
		} else if (missing) {
			snprintf(err, errlen, "option '%s' needs a value", a);
			return -EINVAL;
		} else if (m->argc) {
			/* After the command word: the command's own option
			 * (`conns --pod x`), which it parses and judges.
			 */
			if (m->argc == MESHCTL_MAX_ARGS) {
				snprintf(err, errlen, "too many arguments (at most %d)",
					 MESHCTL_MAX_ARGS);
				return -EINVAL;
			}
			m->argv[m->argc++] = argv[i];
		} else {
			snprintf(err, errlen, "unknown option '%s'", a);
			return -EINVAL;
		}
	}
	return 0;
}

const struct cmd *cmd_select(const struct cmd *cmds, size_t n, const char *word, char *err,
			     size_t errlen)
{
	const struct cmd *found = NULL;
	size_t len = strlen(word), n_found = 0;

	for (size_t i = 0; i < n; i++) {
		if (!strcmp(cmds[i].name, word))
			return &cmds[i];
		if (len && !strncmp(cmds[i].name, word, len)) {
			found = &cmds[i];
			n_found++;
		}
	}
	if (n_found == 1)
		return found;
	if (n_found == 0) {
		snprintf(err, errlen, "unknown command '%s'", word);
	} else {
		size_t off = (size_t)snprintf(err, errlen, "ambiguous command '%s':", word);

		for (size_t i = 0; i < n && off < errlen; i++) {
			if (!strncmp(cmds[i].name, word, len))
				off += (size_t)snprintf(err + off, errlen - off, " %s",
							cmds[i].name);
		}
	}
	return NULL;
}

int meshctl_get(struct meshctl *m, const char *path, struct json_object **resp)
{
	char err[CLIENT_ERR_MAX];

	if (client_get(m->socket, path, m->timeout_ms, resp, err, sizeof(err))) {
		out_err(m->err, m->format, "%s", err);
		return MESHCTL_ERR;
	}
	return MESHCTL_OK;
}

int meshctl_ns_ref(struct meshctl *m, const char *ref, const char *what, const char *list)
{
	if (strchr(ref, '/'))
		return MESHCTL_OK;
	out_err(m->err, m->format, "'%s' is not NAMESPACE/%s (see 'meshctl %s')", ref, what, list);
	return MESHCTL_USAGE;
}

int meshctl_print(struct meshctl *m, struct json_object *resp,
		  int (*render)(FILE *out, struct json_object *resp), const char *path,
		  const char *what)
{
	int err;

	if (m->format == OUT_JSON) {
		out_json(m->out, resp);
		return MESHCTL_OK;
	}
	err = render(m->out, resp);
	if (!err)
		return MESHCTL_OK;
	if (err == -EPROTO)
		out_err(m->err, m->format, "malformed answer from the agent on %s: %s has no %s",
			m->socket, path, what);
	else
		out_err(m->err, m->format, "out of memory");
	return MESHCTL_ERR;
}

int meshctl_show(struct meshctl *m, const char *path,
		 int (*render)(FILE *out, struct json_object *resp), const char *what)
{
	struct json_object *resp;
	int ret = meshctl_get(m, path, &resp);

	if (ret)
		return ret;
	ret = meshctl_print(m, resp, render, path, what);
	json_object_put(resp);
	return ret;
}

int meshctl_cmd_opts(struct meshctl *m, int *argc, char **argv, const struct cmd_opt *opts,
		     size_t n)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		const struct cmd_opt *o = NULL;
		const char *eq;
		size_t len;

		if (a[0] != '-' || !a[1] || a[1] != '-') {
			if (a[0] == '-' && a[1]) {
				out_err(m->err, m->format, "unknown option '%s' for %s (see 'meshctl "
					"%s --help')", a, argv[0], argv[0]);
				return MESHCTL_USAGE;
			}
			argv[out++] = argv[i];
			continue;
		}
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		for (size_t k = 0; k < n && !o; k++)
			if (strlen(opts[k].name) == len && !strncmp(opts[k].name, a + 2, len))
				o = &opts[k];
		if (!o) {
			out_err(m->err, m->format, "unknown option '%s' for %s (see 'meshctl %s "
				"--help')", a, argv[0], argv[0]);
			return MESHCTL_USAGE;
		}
		if (!o->value) {
			if (eq) {
				out_err(m->err, m->format, "option '--%s' takes no value", o->name);
				return MESHCTL_USAGE;
			}
			*o->flag = true;
			continue;
		}
		if (eq) {
			*o->value = eq + 1;
		} else if (i + 1 < *argc) {
			*o->value = argv[++i];
		} else {
			out_err(m->err, m->format, "option '--%s' needs a value", o->name);
			return MESHCTL_USAGE;
		}
		if (!(*o->value)[0]) {
			out_err(m->err, m->format, "option '--%s' needs a value", o->name);
			return MESHCTL_USAGE;
		}
	}
	*argc = out;
	return MESHCTL_OK;
}

int meshctl_args(struct meshctl *m, int argc, char **argv, int want, const char *synopsis)
{
	if (argc - 1 == want)
		return MESHCTL_OK;
	if (argc - 1 < want)
		out_err(m->err, m->format, "%s needs %s (see 'meshctl %s --help')", argv[0],
			synopsis, argv[0]);
	else
		out_err(m->err, m->format, "%s takes %s, got an extra '%s' (see 'meshctl %s "
			"--help')", argv[0], synopsis, argv[want + 1], argv[0]);
	return MESHCTL_USAGE;
}

int meshctl_opts_only(struct meshctl *m, int argc, char **argv, const struct cmd_opt *opts,
		      size_t n)
{
	int ret = meshctl_cmd_opts(m, &argc, argv, opts, n);

	return ret ? ret : meshctl_no_args(m, argc, argv);
}

int meshctl_query(struct meshctl *m, char *url, size_t len, const char *const *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (kv[2 * i + 1] && meshctl_query_add(url, len, kv[2 * i], kv[2 * i + 1])) {
			out_err(m->err, m->format, "arguments too long");
			return MESHCTL_USAGE;
		}
	}
	return MESHCTL_OK;
}

int meshctl_query_add(char *url, size_t len, const char *key, const char *value)
{
	size_t o = strlen(url);
	int n = snprintf(url + o, len - o, "%c%s=", strchr(url, '?') ? '&' : '?', key);

	if (n < 0 || (size_t)n >= len - o)
		return -ENAMETOOLONG;
	o += (size_t)n;
	for (const unsigned char *v = (const unsigned char *)value; *v; v++) {
		/* RFC 3986 unreserved characters, and '/' and ':' which a query may carry. */
		bool plain = (*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
			     (*v >= '0' && *v <= '9') || strchr("-._~/:", *v);

		if (o + (plain ? 1 : 3) >= len)
			return -ENAMETOOLONG;
		if (plain)
			url[o++] = (char)*v;
		else
			o += (size_t)snprintf(url + o, len - o, "%%%02X", *v);
	}
	url[o] = '\0';
	return 0;
}

int meshctl_no_args(struct meshctl *m, int argc, char **argv)
{
	if (argc <= 1)
		return MESHCTL_OK;
	out_err(m->err, m->format, "%s takes no arguments, got '%s' (see 'meshctl %s --help')",
		argv[0], argv[1], argv[0]);
	return MESHCTL_USAGE;
}

static int cmd_version(struct meshctl *m, int argc, char **argv)
{
	struct json_object *o;
	int ret = meshctl_no_args(m, argc, argv);

	if (ret)
		return ret;
	if (m->format == OUT_TABLE) {
		fprintf(m->out, "meshctl %s (admin API v%d)\n", WEFT_VERSION, CLIENT_API_VERSION);
		return MESHCTL_OK;
	}
	o = json_object_new_object();
	if (!o) {
		out_err(m->err, m->format, "out of memory");
		return MESHCTL_ERR;
	}
	json_object_object_add(o, "meshctl", json_object_new_string(WEFT_VERSION));
	json_object_object_add(o, "api", json_object_new_int(CLIENT_API_VERSION));
	out_json(m->out, o);
	json_object_put(o);
	return MESHCTL_OK;
}

int meshctl_main(int argc, char **argv, FILE *out, FILE *err)
{
	struct meshctl m = { .out = out, .err = err };
	char msg[MESHCTL_ERR_MAX];
	const struct cmd *c;

	if (meshctl_parse_args(&m, argc, argv, msg, sizeof(msg))) {
		out_err(err, m.format, "%s (see 'meshctl --help')", msg);
		return MESHCTL_USAGE;
	}
	if (m.argc == 0) {
		usage(m.help ? out : err);
		return m.help ? MESHCTL_OK : MESHCTL_USAGE;
	}
	c = cmd_select(commands, N_COMMANDS, m.argv[0], msg, sizeof(msg));
	if (!c) {
		out_err(err, m.format, "%s (see 'meshctl --help')", msg);
		return MESHCTL_USAGE;
	}
	if (m.help) {
		cmd_usage(out, c);
		return MESHCTL_OK;
	}
	return c->fn(&m, m.argc, m.argv);
}
