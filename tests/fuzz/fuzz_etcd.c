// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: an etcd watch stream as the JSON gateway sends it. The bytes
 * go through etcd_http.c's stream splitter (on_stream, libcurl's write
 * callback) into etcd_watch.c's message handler (on_watch_msg: headers,
 * cancel and compaction, PUT and DELETE events with base64 keys and values)
 * and on into a real sink and model. Both files are included to reach those
 * static functions; the first byte is the size of the pieces libcurl would
 * hand over.
 */
#include "fuzz.h"

#include "../../agent/registry/etcd_http.c"
#include "../../agent/registry/etcd_watch.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char url[] = "http://127.0.0.1:2379", prefix[] = "/weft/", source[] = "etcd";
	struct etcd e = { .source = source, .urls = { url }, .n_urls = 1, .prefix = prefix,
			  .prefix_len = sizeof(prefix) - 1 };
	struct watcher w = { .e = &e, .rev = 1 };
	struct xfer x = { .fn = on_watch_msg, .ctx = &w };
	struct fuzz_sink f;
	size_t piece, off;

	if (size < 1)
		return 0;
	piece = 1 + (size_t)data[0] * 16;
	data++;
	size--;
	fuzz_sink_new(&f);
	e.sink = f.sink;
	x.tok = json_tokener_new();
	if (!x.tok)
		abort();
	reg_backoff_init(&w.bo, ETCD_BACKOFF_MIN_MS, ETCD_BACKOFF_MAX_MS);
	for (off = 0; off < size; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		/* Short of the piece: the transfer ends, as libcurl would end it. */
		if (on_stream((char *)data + off, 1, n, &x) != n)
			break;
	}
	json_tokener_free(x.tok);
	fuzz_sink_free(&f);
	return 0;
}
