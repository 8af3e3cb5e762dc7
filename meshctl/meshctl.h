/* SPDX-License-Identifier: GPL-2.0-only */
/* meshctl's command line: global options, the command table and what every
 * command shares (bpftool's commands[]/cmd_select). One file per command
 * (status.c, pods.c) implements a cmd_*() entry and its table renderer.
 */
#ifndef WEFT_MESHCTL_H
#define WEFT_MESHCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "output.h"

struct json_object;

/* Process exit statuses. */
enum meshctl_exit {
	MESHCTL_OK = 0,
	MESHCTL_ERR = 1,	/* the agent is unreachable or answered with an error */
	MESHCTL_USAGE = 2,	/* the command line is wrong */
};

#define MESHCTL_MAX_ARGS 32	/* the command word and its arguments */
#define MESHCTL_MAX_TIMEOUT_MS 600000

struct meshctl {
	enum out_format format;
	const char *socket;		/* the agent's admin socket; borrowed */
	unsigned int timeout_ms;
	bool help;			/* -h/--help anywhere on the line */
	FILE *out, *err;
	int argc;			/* the command word and its arguments, options removed */
	char *argv[MESHCTL_MAX_ARGS];	/* borrowed from main()'s argv */
};

/* One command: `meshctl NAME ARGS`. @fn gets the command word in argv[0] and
 * returns an enum meshctl_exit.
 */
struct cmd {
	const char *name;
	int (*fn)(struct meshctl *m, int argc, char **argv);
	const char *args;	/* argument synopsis for the usage line, "" for none */
	const char *summary;	/* one line, for `meshctl --help` */
	const char *help;	/* a paragraph, for `meshctl NAME --help` */
};

/* Parse the global options out of @argv (anywhere on the line; "--" ends
 * them) into @m, keeping the rest in m->argv. Defaults: table output,
 * CLIENT_DEFAULT_SOCKET, CLIENT_DEFAULT_TIMEOUT_MS. Returns 0, or -EINVAL with
 * a message in @err. @m borrows strings from @argv.
 */
int meshctl_parse_args(struct meshctl *m, int argc, char **argv, char *err, size_t errlen);

/* The command of @cmds named @word, or the only one it is a prefix of.
 * NULL when none or several match, with a message in @err.
 */
const struct cmd *cmd_select(const struct cmd *cmds, size_t n, const char *word, char *err,
			     size_t errlen);

/* All of meshctl: parse, dispatch, print on @out and @err. Returns an enum
 * meshctl_exit. Blocks while a command waits for the agent (bounded by
 * --timeout).
 */
int meshctl_main(int argc, char **argv, FILE *out, FILE *err);

/* For commands: GET @path into @resp, printing the error and returning
 * MESHCTL_ERR when it fails; MESHCTL_OK otherwise.
 */
int meshctl_get(struct meshctl *m, const char *path, struct json_object **resp);

/* For commands: print agent answer @resp, as it is under -o json, else
 * through @render. A render failure is printed (for -EPROTO: "@path has no
 * @what") and returns MESHCTL_ERR; MESHCTL_OK otherwise.
 */
int meshctl_print(struct meshctl *m, struct json_object *resp,
		  int (*render)(FILE *out, struct json_object *resp), const char *path,
		  const char *what);

/* For commands: GET @path and meshctl_print() the answer. An enum meshctl_exit. */
int meshctl_show(struct meshctl *m, const char *path,
		 int (*render)(FILE *out, struct json_object *resp), const char *what);

/* For commands that take no arguments: MESHCTL_USAGE (with a message) when
 * @argc > 1, else MESHCTL_OK.
 */
int meshctl_no_args(struct meshctl *m, int argc, char **argv);

/* Append "?KEY=VALUE" (or "&..." when @url has a query) to @url, a buffer of
 * @len bytes, percent-encoding @value. 0 or -ENAMETOOLONG.
 */
int meshctl_query_add(char *url, size_t len, const char *key, const char *value);

/* For commands: meshctl_query_add() the @n pairs of @kv (KEY, VALUE, ...),
 * skipping NULL values. MESHCTL_OK, or MESHCTL_USAGE with "arguments too
 * long" printed when @url (@len bytes) cannot hold them.
 */
int meshctl_query(struct meshctl *m, char *url, size_t len, const char *const *kv, size_t n);

/* A command's own option: "--name VALUE"/"--name=VALUE" into *@value, or a
 * flag ("--name") into *@flag (@value NULL).
 */
struct cmd_opt {
	const char *name;
	const char **value;
	bool *flag;
};

/* Take the options @opts[0..@n) out of @argv[1..*@argc) (argv[0] is the
 * command word), keeping the positional arguments in order and updating
 * *@argc. Values are borrowed from @argv. MESHCTL_OK, or MESHCTL_USAGE with
 * the problem printed.
 */
int meshctl_cmd_opts(struct meshctl *m, int *argc, char **argv, const struct cmd_opt *opts,
		     size_t n);

/* For commands naming an object: MESHCTL_OK when @ref is NAMESPACE/@what
 * ("NAME", "POD"), else MESHCTL_USAGE with a message pointing at
 * `meshctl @list`, the command that lists them.
 */
int meshctl_ns_ref(struct meshctl *m, const char *ref, const char *what, const char *list);

/* For commands taking options but no positional argument:
 * meshctl_cmd_opts(), then meshctl_no_args(). MESHCTL_OK or MESHCTL_USAGE.
 */
int meshctl_opts_only(struct meshctl *m, int argc, char **argv, const struct cmd_opt *opts,
		      size_t n);

/* For commands taking exactly @want positional arguments, described by
 * @synopsis ("NAMESPACE/NAME") in the message: MESHCTL_OK or MESHCTL_USAGE.
 */
int meshctl_args(struct meshctl *m, int argc, char **argv, int want, const char *synopsis);

/* ---- commands: one file per object, bpftool style. Each cmd_X() is the
 * entry of `meshctl X`; each cmd_X_render() prints an agent answer as the
 * table, for the unit tests too (0, -EPROTO for an answer without the
 * expected shape, or -ENOMEM).
 */

/* status.c: GET /v1/status. */
int cmd_status(struct meshctl *m, int argc, char **argv);
int cmd_status_render(FILE *out, struct json_object *status);

/* pods.c: GET /v1/pods, one pod with its live connections. */
int cmd_pods(struct meshctl *m, int argc, char **argv);
int cmd_pod(struct meshctl *m, int argc, char **argv);
int cmd_pods_render(FILE *out, struct json_object *resp);
int cmd_pod_render(FILE *out, struct json_object *pod);

/* services.c: GET /v1/services, one service in detail. */
int cmd_services(struct meshctl *m, int argc, char **argv);
int cmd_service(struct meshctl *m, int argc, char **argv);
int cmd_services_render(FILE *out, struct json_object *resp);
int cmd_service_render(FILE *out, struct json_object *resp);

/* conns.c: GET /v1/conns. */
int cmd_conns(struct meshctl *m, int argc, char **argv);
int cmd_conns_render(FILE *out, struct json_object *resp);

/* trace.c: GET /v1/trace. */
int cmd_identities(struct meshctl *m, int argc, char **argv);
int cmd_identities_render(FILE *out, struct json_object *resp);

int cmd_trace(struct meshctl *m, int argc, char **argv);
int cmd_trace_render(FILE *out, struct json_object *resp);

/* resolve.c: GET /v1/resolve. */
int cmd_resolve(struct meshctl *m, int argc, char **argv);
int cmd_resolve_render(FILE *out, struct json_object *resp);

/* top.c: rates from two GET /v1/services samples. */
int cmd_top(struct meshctl *m, int argc, char **argv);
/* One frame from samples @a then @b taken @secs apart. */
int cmd_top_render(FILE *out, struct json_object *a, struct json_object *b, double secs);

/* check.c: preflight checks, with or without a running agent. */
int cmd_check(struct meshctl *m, int argc, char **argv);

/* bpf.c: the pinned maps and attached programs, read directly. */
int cmd_bpf(struct meshctl *m, int argc, char **argv);

#endif /* WEFT_MESHCTL_H */
