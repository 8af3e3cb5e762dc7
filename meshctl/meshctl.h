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

/* For commands that take no arguments: MESHCTL_USAGE (with a message) when
 * @argc > 1, else MESHCTL_OK.
 */
int meshctl_no_args(struct meshctl *m, int argc, char **argv);

/* ---- commands */

/* `meshctl status`: GET /v1/status as key/value lines or JSON. */
int cmd_status(struct meshctl *m, int argc, char **argv);
/* Print a /v1/status answer as "key  value" lines. 0 or -errno. */
int cmd_status_render(FILE *out, struct json_object *status);

/* `meshctl pods`: GET /v1/pods as a table or JSON. */
int cmd_pods(struct meshctl *m, int argc, char **argv);
/* Print a /v1/pods answer as the pods table. 0, -EPROTO (no "pods" array)
 * or -ENOMEM.
 */
int cmd_pods_render(FILE *out, struct json_object *resp);

#endif /* WEFT_MESHCTL_H */
