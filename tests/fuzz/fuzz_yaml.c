// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: manifest text through registry/yaml.c (reg_docs_parse():
 * YAML through libyaml's events, or JSON, chosen by the first character) and
 * every document through the decoder, as the file backend reads a manifest.
 */
#include "fuzz.h"
#include "decode_docs.h"
#include "registry/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[REG_PARSE_ERR_MAX];
	json_object *docs = NULL;

	if (reg_docs_parse((const char *)data, size, &docs, err, sizeof(err)))
		return 0;
	fuzz_decode_docs(docs);
	json_object_put(docs);
	return 0;
}
