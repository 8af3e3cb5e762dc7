// SPDX-License-Identifier: GPL-2.0-only
/* What the repository ships to users must load cleanly: the demo's registry
 * and the registry file embedded in the ConfigMap of manifests/.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "model/model.h"
#include "registry/file.h"
#include "registry/yaml.h"

/* Load @path with the file registry; assert nothing was rejected. */
static void load_clean(const char *path, size_t want_services)
{
	struct model *m = model_new();
	struct loop *loop = loop_new();
	struct reg_sink *sink;
	struct reg_file *r;
	struct catalogue *c;

	cr_assert_not_null(m);
	cr_assert_not_null(loop);
	sink = reg_sink_new(loop, m, NULL, NULL);
	cr_assert_not_null(sink);
	r = reg_file_new("file", path, sink);
	reg_sink_drain(sink);
	cr_assert_not_null(r, "'%s' did not load", path);
	cr_assert_eq(reg_file_stats(r)->objects_rejected, 0, "'%s': %s", path,
		     reg_file_stats(r)->last_error);
	c = model_build(m);
	cr_assert_eq(catalogue_n_services(c), want_services, "'%s'", path);
	catalogue_unref(c);
	reg_file_free(r);
	reg_sink_free(sink);
	loop_free(loop);
	model_free(m);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf;

	cr_assert_not_null(f, "open '%s'", path);
	buf = calloc(1, 1 << 20);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	return buf;
}

Test(shipped_manifests, demo_registry_loads_clean)
{
	load_clean("demo/registry.yaml", 1);
}

Test(shipped_manifests, configmap_registry_loads_clean)
{
	json_object *docs = NULL, *data, *text;
	char err[256] = "", tmp[] = "/tmp/weft-cm-XXXXXX";
	size_t len;
	char *buf = slurp("manifests/20-config.yaml", &len);
	FILE *f;
	int fd;

	cr_assert_eq(reg_docs_parse(buf, len, &docs, err, sizeof(err)), 0, "%s", err);
	/* The first document is the weft-registry ConfigMap. */
	cr_assert(json_object_object_get_ex(json_object_array_get_idx(docs, 0), "data", &data));
	cr_assert(json_object_object_get_ex(data, "registry.yaml", &text));
	fd = mkstemp(tmp);
	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	fputs(json_object_get_string(text), f);
	fclose(f);
	load_clean(tmp, 1);
	unlink(tmp);
	json_object_put(docs);
	free(buf);
}
