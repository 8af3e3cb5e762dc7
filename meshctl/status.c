// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl status`: the agent's GET /v1/status, printed as one "key value"
 * line per leaf so that fields the agent adds later show up without a change
 * here, and so that `meshctl status | grep counters` works.
 */
#include <json-c/json.h>

#include "meshctl.h"

int cmd_status_render(FILE *out, struct json_object *status)
{
	return out_kv(out, status);
}

int cmd_status(struct meshctl *m, int argc, char **argv)
{
	int ret = meshctl_no_args(m, argc, argv);

	return ret ? ret : meshctl_show(m, "/v1/status", cmd_status_render, "status");
}
