// SPDX-License-Identifier: GPL-2.0-only
/* agent/registry/yaml.c: YAML streams and JSON text into json-c documents,
 * scalar typing as Kubernetes does it (YAML 1.1), and errors with positions.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "registry/yaml.h"

static json_object *docs_ok(const char *text)
{
	char err[REG_PARSE_ERR_MAX] = "";
	json_object *docs = NULL;

	cr_assert_eq(reg_docs_parse(text, strlen(text), &docs, err, sizeof(err)), 0, "%s", err);
	cr_assert(json_object_is_type(docs, json_type_array));
	return docs;
}

static void expect_error(const char *text, const char *msg)
{
	char err[REG_PARSE_ERR_MAX] = "";
	json_object *docs = NULL;

	cr_assert_eq(reg_docs_parse(text, strlen(text), &docs, err, sizeof(err)), -EINVAL,
		     "accepted, expected: %s", msg);
	cr_assert_null(docs);
	cr_assert_str_eq(err, msg);
}

static json_object *field(json_object *o, const char *key)
{
	json_object *v = NULL;

	cr_assert(json_object_object_get_ex(o, key, &v), "no key '%s'", key);
	return v;
}

Test(yaml, multi_document_stream)
{
	json_object *docs = docs_ok("# leading comment\n"
				    "a: 1\n"
				    "---\n"
				    "---\n"
				    "b: [x, y]\n"
				    "...\n"
				    "---\n"
				    "c: {d: e}\n");

	cr_assert_eq(json_object_array_length(docs), 4);
	cr_assert_eq(json_object_get_int(field(json_object_array_get_idx(docs, 0), "a")), 1);
	cr_assert_null(json_object_array_get_idx(docs, 1), "an empty document is null");
	cr_assert_eq(json_object_array_length(field(json_object_array_get_idx(docs, 2), "b")), 2);
	cr_assert_str_eq(json_object_get_string(field(field(json_object_array_get_idx(docs, 3),
								 "c"),
							   "d")),
			 "e");
	json_object_put(docs);
}

Test(yaml, scalar_typing_like_kubernetes)
{
	json_object *docs = docs_ok("int: 80\n"
				    "neg: -12\n"
				    "hex: 0x1F\n"
				    "octal: 0644\n"
				    "under: 1_000\n"
				    "quoted: \"80\"\n"
				    "single: '80'\n"
				    "tagged: !!str 80\n"
				    "tagged_int: !!int \"81\"\n"
				    "t: true\n"
				    "yes: yes\n"
				    "off: Off\n"
				    "f: FALSE\n"
				    "n1: null\n"
				    "n2: ~\n"
				    "n3:\n"
				    "float: 1.5\n"
				    "version: 1.10\n"
				    "exp: 1e3\n"
				    "ip: 198.19.0.10\n"
				    "word: http\n"
				    "block: |\n"
				    "  42\n"
				    "true: key stays text\n");
	json_object *d = json_object_array_get_idx(docs, 0);

	cr_assert(json_object_is_type(field(d, "int"), json_type_int));
	cr_assert_eq(json_object_get_int64(field(d, "int")), 80);
	cr_assert_eq(json_object_get_int64(field(d, "neg")), -12);
	cr_assert_eq(json_object_get_int64(field(d, "hex")), 31);
	cr_assert_eq(json_object_get_int64(field(d, "octal")), 0644, "YAML 1.1 octal");
	cr_assert_eq(json_object_get_int64(field(d, "under")), 1000);
	cr_assert(json_object_is_type(field(d, "quoted"), json_type_string));
	cr_assert(json_object_is_type(field(d, "single"), json_type_string));
	cr_assert(json_object_is_type(field(d, "tagged"), json_type_string));
	cr_assert(json_object_is_type(field(d, "tagged_int"), json_type_int));
	cr_assert(json_object_is_type(field(d, "t"), json_type_boolean));
	cr_assert(json_object_get_boolean(field(d, "yes")));
	cr_assert(json_object_is_type(field(d, "off"), json_type_boolean));
	cr_assert_not(json_object_get_boolean(field(d, "off")));
	cr_assert_not(json_object_get_boolean(field(d, "f")));
	cr_assert_null(field(d, "n1"));
	cr_assert_null(field(d, "n2"));
	cr_assert_null(field(d, "n3"), "an empty value is null");
	cr_assert(json_object_is_type(field(d, "float"), json_type_double));
	cr_assert_float_eq(json_object_get_double(field(d, "version")), 1.1, 1e-9,
			   "the YAML 1.1 trap kubectl has too");
	cr_assert_float_eq(json_object_get_double(field(d, "exp")), 1000.0, 1e-9);
	cr_assert_str_eq(json_object_get_string(field(d, "ip")), "198.19.0.10");
	cr_assert_str_eq(json_object_get_string(field(d, "word")), "http");
	cr_assert_str_eq(json_object_get_string(field(d, "block")), "42\n");
	cr_assert_str_eq(json_object_get_string(field(d, "true")), "key stays text");
	json_object_put(docs);
}

Test(yaml, errors_have_line_and_column)
{
	expect_error("a: 1\nb:\n  - x\n   y: 2\n",
		     "line 4, column 5: mapping values are not allowed in this context");
	expect_error("metadata:\n  name: web\n  name: api\n",
		     "line 3, column 9: duplicate key 'name'");
	expect_error("a: &x 1\nb: *x\n", "line 2, column 4: aliases are not supported");
	expect_error("base: {a: 1}\nderived:\n  <<: {a: 2}\n",
		     "line 3, column 3: merge keys ('<<') are not supported");
	expect_error("? [a, b]\n: c\n", "line 1, column 3: mapping keys must be scalars");
	expect_error("a: .inf\n", "line 1, column 4: '.inf' cannot be represented in JSON");
	expect_error("a: !custom x\n", "line 1, column 4: unsupported tag '!custom'");
}

Test(yaml, syntax_error_mentions_context)
{
	char err[REG_PARSE_ERR_MAX] = "";
	const char *text = "spec:\n  ports:\n    - name: http\n      port: 80\n"
			   "     targetPort: 8080\n";
	json_object *docs = NULL;

	cr_assert_eq(reg_yaml_parse(text, strlen(text), &docs, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "line 5, column 6: ") == err, "got: %s", err);
}

Test(yaml, depth_is_bounded)
{
	char text[4 * (REG_DOC_DEPTH_MAX + 2) + 1] = "";

	for (int i = 0; i < REG_DOC_DEPTH_MAX + 1; i++)
		strcat(text, "[");
	strcat(text, "\n");
	/* JSON by content: json-c's own depth limit answers. */
	{
		char err[REG_PARSE_ERR_MAX];
		json_object *docs;

		cr_assert_eq(reg_docs_parse(text, strlen(text), &docs, err, sizeof(err)), -EINVAL);
	}
	/* The same nesting as YAML block sequences. */
	text[0] = '\0';
	for (int i = 0; i < REG_DOC_DEPTH_MAX + 1; i++)
		strcat(text, "- ");
	strcat(text, "x\n");
	{
		char err[REG_PARSE_ERR_MAX];
		json_object *docs;

		cr_assert_eq(reg_yaml_parse(text, strlen(text), &docs, err, sizeof(err)), -EINVAL);
		cr_assert(strstr(err, "nested deeper than 64 levels"), "got: %s", err);
	}
}

Test(yaml, json_detected_by_content)
{
	json_object *docs = docs_ok("\xef\xbb\xbf\n  {\"kind\": \"List\", \"items\": [1, 2]}\n"
				    "{\"second\": true}\n");

	cr_assert_eq(json_object_array_length(docs), 2, "concatenated JSON values");
	cr_assert_str_eq(json_object_get_string(field(json_object_array_get_idx(docs, 0), "kind")),
			 "List");
	json_object_put(docs);
	docs = docs_ok("[{\"a\": 1}, {\"b\": 2}]");
	cr_assert_eq(json_object_array_length(docs), 1, "a top-level array is one document");
	json_object_put(docs);
	/* Starts with neither: YAML, where a flow mapping is fine too. */
	docs = docs_ok("# comment\n{a: 1}\n");
	cr_assert_eq(json_object_get_int(field(json_object_array_get_idx(docs, 0), "a")), 1);
	json_object_put(docs);
}

Test(yaml, json_errors_have_position)
{
	expect_error("{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}\n",
		     "line 3, column 14: unexpected character");
	expect_error("{\"a\": 1", "line 1, column 8: unexpected end of input");
	expect_error("{\"a\": tru}", "line 1, column 10: boolean expected");
	expect_error("{\"a\": \"\xff\"}", "line 1, column 8: invalid utf-8 string");
}

Test(yaml, empty_input_is_no_documents)
{
	json_object *docs = docs_ok("");

	cr_assert_eq(json_object_array_length(docs), 0);
	json_object_put(docs);
	docs = docs_ok("# only a comment\n");
	cr_assert_eq(json_object_array_length(docs), 0);
	json_object_put(docs);
}
