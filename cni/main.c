// SPDX-License-Identifier: GPL-2.0-only
/* weft-cni: read the network config from stdin and the CNI_* environment,
 * hand both to cni_run() (cni.c) and exit with its status. No logic here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni.h"
#include "log.h"

/* Read all of stdin, up to one byte past CNI_MAX_STDIN so cni_run() can tell
 * an oversized config from a full one. Returns the length or -errno.
 */
static ssize_t read_stdin(char *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = read(STDIN_FILENO, buf + got, size - got);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int main(void)
{
	struct cni_env env = {
		.command = getenv("CNI_COMMAND"),
		.container_id = getenv("CNI_CONTAINERID"),
		.netns = getenv("CNI_NETNS"),
		.ifname = getenv("CNI_IFNAME"),
		.args = getenv("CNI_ARGS"),
		.path = getenv("CNI_PATH"),
	};
	char *buf = malloc(CNI_MAX_STDIN + 1);
	ssize_t len;
	int status;

	log_set_ident("weft-cni");
	/* stderr ends up in the runtime's log: quiet unless the config asks. */
	log_set_level(LOG_LEVEL_WARN);
	if (!buf) {
		printf("{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"out of memory\"}\n",
		       CNI_VERSION_LATEST, CNI_ERR_IO);
		return 1;
	}
	len = read_stdin(buf, CNI_MAX_STDIN + 1);
	if (len < 0) {
		printf("{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"cannot read stdin\","
		       "\"details\":\"%s\"}\n",
		       CNI_VERSION_LATEST, CNI_ERR_IO, strerror((int)-len));
		free(buf);
		return 1;
	}
	status = cni_run(&env, buf, (size_t)len, stdout);
	free(buf);
	if (fflush(stdout) == EOF)
		return 1;
	return status;
}
