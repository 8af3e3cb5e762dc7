/* SPDX-License-Identifier: GPL-2.0-only */
/* Decode every document of a parsed manifest the way registry/file_load.c does,
 * for the targets that parse manifests (fuzz_decode.c, fuzz_yaml.c).
 */
#ifndef WEFT_FUZZ_DECODE_DOCS_H
#define WEFT_FUZZ_DECODE_DOCS_H

#include <json-c/json.h>

#include "registry/decode.h"

static void fuzz_decode_one(json_object *list, json_object *o)
{
	char err[REG_DECODE_ERR_MAX];
	struct obj_key key;
	struct obj *obj = NULL;
	int rc;

	rc = list ? reg_decode_list_item(list, o, &obj, err, sizeof(err))
		  : reg_decode(o, &obj, err, sizeof(err));
	if (!rc) {
		obj_free(obj);
		return;
	}
	/* A rejected object is named in the log by its key. */
	(void)reg_decode_key(list, o, &key);
}

static inline void fuzz_decode_docs(json_object *docs)
{
	size_t n = json_object_array_length(docs);

	for (size_t i = 0; i < n; i++) {
		json_object *doc = json_object_array_get_idx(docs, i), *items = NULL;
		char err[REG_DECODE_ERR_MAX];

		if (!doc)
			continue;
		if (reg_list_items(doc, &items, err, sizeof(err)) == 1) {
			for (size_t j = 0; items && j < json_object_array_length(items); j++)
				fuzz_decode_one(doc, json_object_array_get_idx(items, j));
			continue;
		}
		fuzz_decode_one(NULL, doc);
	}
}

#endif /* WEFT_FUZZ_DECODE_DOCS_H */
