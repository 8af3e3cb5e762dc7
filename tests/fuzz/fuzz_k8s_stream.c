// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: a Kubernetes response body as the watcher receives it.
 * The first byte picks the resource and the size of the pieces libcurl would
 * hand over; the rest goes through registry/k8s_stream.c piece by piece, and
 * each value it completes through k8s_watch.c into a real sink and model:
 * a value with "items" as a listing page, anything else as a watch event.
 * Objects are split as list bodies are: their items go through
 * k8s_res_list_item() as they complete.
 */
#include <errno.h>

#include "fuzz.h"
#include "registry/k8s_stream.h"
#include "registry/k8s_watch.h"

struct ctx {
	struct k8s_res res;
	struct k8s_out out;
};

static int on_value(json_object *v, void *arg)
{
	struct ctx *c = arg;
	char err[256];
	int rc;

	if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "items", NULL))
		rc = k8s_res_list_page(&c->res, &c->out, v, err, sizeof(err));
	else
		rc = k8s_res_event(&c->res, &c->out, v, err, sizeof(err));
	/* The watcher ends the stream on a protocol error; so does this. */
	return rc < 0 ? rc : 0;
}

static int on_item(json_object *head, json_object *item, void *arg)
{
	struct ctx *c = arg;
	char err[256];
	int rc = k8s_res_list_item(&c->res, &c->out, head, item, err, sizeof(err));

	return rc == K8S_LIST_ITEM_LATER ? K8S_STREAM_KEEP : rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_sink f;
	struct k8s_stream s;
	struct ctx c = { 0 };
	size_t piece, off;

	if (size < 1)
		return 0;
	c.res.k = &k8s_kinds[data[0] % OBJ_KIND_COUNT];
	piece = 1 + (data[0] >> 2) * 64;	/* 1 .. 4033 bytes */
	data++;
	size--;
	fuzz_sink_new(&f);
	c.out.sink = f.sink;
	c.out.source = "kubernetes";
	if (k8s_stream_init(&s, 1 << 20, on_value, &c))
		abort();
	k8s_stream_split(&s, on_item);
	for (off = 0; off < size; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		if (k8s_stream_feed(&s, (const char *)data + off, n))
			break;
	}
	(void)k8s_stream_partial(&s);
	k8s_stream_done(&s);
	k8s_res_done(&c.res);
	fuzz_sink_free(&f);
	return 0;
}
