// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: a kubeconfig file (registry/k8s_config.c) as the agent reads
 * it with --kubeconfig: the input is written to a file in a directory of
 * its own and read back through k8s_conn_from_kubeconfig(); the input also
 * goes through the base64 decoder its *-data fields use. Files it names are
 * read too (bounded by K8S_FILE_MAX); run with stdin closed or from
 * /dev/null, as tests/fuzz/run.sh does, so a path like /dev/stdin cannot
 * block.
 */
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "registry/k8s_config.h"

static char dir[] = "/tmp/weft-fuzz-kubeconfig.XXXXXX";
static char path[64];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static void setup(void)
{
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/config", dir);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[K8S_CFG_ERR_MAX], *text;
	struct k8s_conn_cfg c;
	struct k8s_blob b;
	FILE *f;

	if (!path[0])
		setup();
	f = fopen(path, "w");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f))
		abort();
	if (!k8s_conn_from_kubeconfig(path, &c, err, sizeof(err)))
		k8s_conn_done(&c);
	text = fuzz_str(data, size);
	if (!k8s_base64_decode(text, &b))
		free(b.data);
	free(text);
	return 0;
}
