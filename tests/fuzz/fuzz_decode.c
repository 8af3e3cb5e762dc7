// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: JSON text (a manifest file, an API server listing or a watch
 * object) through reg_json_parse() and THE decoder, registry/decode.c, as the
 * file backend and the Kubernetes watcher use them: lists item by item,
 * everything else as one object, and reg_decode_key() on whatever was
 * rejected.
 */
#include "fuzz.h"
#include "decode_docs.h"
#include "registry/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[REG_PARSE_ERR_MAX];
	json_object *docs = NULL;

	if (reg_json_parse((const char *)data, size, &docs, err, sizeof(err)))
		return 0;
	fuzz_decode_docs(docs);
	json_object_put(docs);
	return 0;
}
