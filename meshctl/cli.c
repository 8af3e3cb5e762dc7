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
	{ "status", cmd_status, "", "the agent's state and counters",
	  "Show what the agent of this node is doing: mode, uptime, pods, services,\n"
	  "connections, registries and the BPF datapath counters, one \"key value\"\n"
	  "line each (the keys are those of GET /v1/status in docs/admin-api.md).\n" },
	{ "pods", cmd_pods, "", "the pods the agent knows, and whether they are meshed",
	  "List the pods the agent was told about by the CNI plugin or found at start:\n"
	  "namespace, name, whether their traffic is captured, their IPs, the agent's\n"
	  "listeners inside the pod, connections (active/total) and why the pod is or\n"
	  "is not meshed.\n" },
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
		"A command may be shortened to a unique prefix: 'meshctl po' is 'meshctl pods'.\n"
		"Exit status: 0 success, 1 error (agent unreachable, API error), 2 usage error.\n",
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
