// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: what the runtime hands weft-cni, through cni/conf.c and
 * cni/result.c as cni_run() takes it, short of calling the agent. The input
 * is four lines — CNI_ARGS, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME — then
 * the network config; the first byte picks the command. A request that
 * builds is encoded as the agent would receive it, and an ADD's prevResult
 * converted to the config's version, as the plugin prints it.
 */
#include <stdio.h>

#include <json-c/json.h>

#include "cni.h"
#include "fuzz.h"

/* The next '\n'-terminated line of [*p, end) as a string, or NULL. */
static char *next_line(char **p, char *end)
{
	char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));

	if (!nl)
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum cni_cmd cmds[] = { CNI_CMD_ADD, CNI_CMD_DEL, CNI_CMD_CHECK,
					     CNI_CMD_VERSION, CNI_CMD_GC, CNI_CMD_STATUS };
	struct cni_env env = { .path = "/opt/cni/bin" };
	struct cni_conf conf;
	struct cni_error e = { 0 };
	struct cni_req req;
	enum cni_cmd cmd;
	char *text, *p, *end, val[64];

	if (size < 1)
		return 0;
	cmd = cmds[data[0] % (sizeof(cmds) / sizeof(cmds[0]))];
	text = fuzz_str(data + 1, size - 1);
	p = text;
	end = text + size - 1;
	env.command = cni_cmd_name(cmd);
	env.args = next_line(&p, end);
	env.container_id = next_line(&p, end);
	env.netns = next_line(&p, end);
	env.ifname = next_line(&p, end);
	if (env.args)
		(void)cni_args_get(env.args, "K8S_POD_NAME", val, sizeof(val));
	if (cni_conf_parse(p, (size_t)(end - p), cmd, &conf, &e))
		goto out;
	if (cmd == CNI_CMD_ADD || cmd == CNI_CMD_DEL || cmd == CNI_CMD_CHECK) {
		memset(&req, 0, sizeof(req));
		if (!cni_req_build(&env, &conf, cmd, &req, &e)) {
			size_t len;
			char *line = cni_req_encode(&req, &len);

			free(line);
		}
	}
	if (cmd == CNI_CMD_ADD && conf.prev_result) {
		struct json_object *res = cni_result_for(conf.prev_result, conf.version, &e);

		if (res)
			(void)json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN);
		json_object_put(res);
	}
	cni_conf_done(&conf);
out:
	free(text);
	return 0;
}
