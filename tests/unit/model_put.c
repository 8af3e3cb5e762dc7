// SPDX-License-Identifier: GPL-2.0-only
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <string.h>

#include "model/model.h"
#include "registry/decode.h"
#include "registry/yaml.h"

#include "model_put.h"

void tmodel_put(struct model *m, const char *source, const char *yaml)
{
	char err[REG_PARSE_ERR_MAX] = "";
	json_object *docs;

	cr_assert_eq(reg_yaml_parse(yaml, strlen(yaml), &docs, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < json_object_array_length(docs); i++) {
		struct obj *o;

		cr_assert_eq(reg_decode(json_object_array_get_idx(docs, i), &o, err, sizeof(err)),
			     0, "%s", err);
		cr_assert_eq(model_upsert(m, source, o), 0);
	}
	json_object_put(docs);
}
