// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: the cni.sock protocol (lib/cni_proto.c) from either end and
 * the agent's per-pod state file. The first byte picks what the rest is: a
 * request as the agent reads it, a state file as the agent reads it at
 * restart, a reply as the plugin reads it through lib/ or through cni/'s
 * wrapper. What decodes must encode again and decode to the same thing:
 * the agent writes state files with the encoder and reads them back.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "cni.h"
#include "cni_proto.h"
#include "fuzz.h"

static bool pod_equal(const struct cni_proto_pod *a, const struct cni_proto_pod *b)
{
	if (strcmp(a->container_id, b->container_id) || strcmp(a->netns, b->netns) ||
	    strcmp(a->ifname, b->ifname) || strcmp(a->ns, b->ns) || strcmp(a->name, b->name) ||
	    strcmp(a->uid, b->uid) || a->n_ips != b->n_ips || a->meshed_hint != b->meshed_hint)
		return false;
	for (unsigned int i = 0; i < a->n_ips; i++)
		if (!addr_equal(&a->ips[i], &b->ips[i]))
			return false;
	return true;
}

static void request(const char *text, bool want_cmd)
{
	static struct cni_proto_pod pod, again;
	enum cni_proto_cmd cmd = CNI_PROTO_NONE, cmd2 = CNI_PROTO_NONE;
	char err[256];
	size_t len;
	char *line;

	memset(&pod, 0, sizeof(pod));
	if (cni_proto_req_decode(text, want_cmd, &cmd, &pod, err, sizeof(err)))
		return;
	line = cni_proto_req_encode(want_cmd ? cmd : CNI_PROTO_NONE, &pod, &len);
	if (!line) {
		/* Only a pod too large for one line may fail to encode. */
		if (errno != EMSGSIZE)
			abort();
		return;
	}
	memset(&again, 0, sizeof(again));
	if (cni_proto_req_decode(line, want_cmd, &cmd2, &again, err, sizeof(err))) {
		fprintf(stderr, "re-decoding '%s' failed: %s\n", line, err);
		abort();
	}
	if (cmd != cmd2 || !pod_equal(&pod, &again)) {
		fprintf(stderr, "'%s' decodes to another pod\n", line);
		abort();
	}
	free(line);
}

static void reply(const char *text)
{
	struct cni_proto_reply r, again;
	size_t len;
	char *line;

	if (cni_proto_reply_decode(text, &r))
		return;
	line = cni_proto_reply_encode(&r, &len);
	if (!line)
		return;
	if (cni_proto_reply_decode(line, &again) || again.ok != r.ok ||
	    again.code != r.code || strcmp(again.msg, r.msg)) {
		fprintf(stderr, "reply '%s' does not decode to what it encodes\n", line);
		abort();
	}
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cni_reply rep;
	char *text;

	if (size < 1)
		return 0;
	text = fuzz_str(data + 1, size - 1);
	switch (data[0] & 3) {
	case 0:
		request(text, true);
		break;
	case 1:
		request(text, false);
		break;
	case 2:
		reply(text);
		break;
	case 3:
		(void)cni_reply_decode(text, &rep);
		break;
	}
	free(text);
	return 0;
}
