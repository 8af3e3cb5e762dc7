// SPDX-License-Identifier: GPL-2.0-only
/* What the repository ships to users must load cleanly: the demo's registry
 * and the registry file embedded in the ConfigMap of manifests/weft.yaml; and
 * the agent's ClusterRole there grants exactly what the Kubernetes registry
 * lists and watches (agent/registry/k8s_watch.c) and evicts
 * (agent/registry/k8s_http.h), no more.
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
#include "registry/k8s_http.h"
#include "registry/k8s_watch.h"
#include "registry/yaml.h"

/* Load @path with the file registry; assert nothing was rejected. */
static void load_clean(const char *path, size_t want_services)
{
	struct model *m = model_new();
	struct loop *loop = loop_new();
	struct reg_file_stats st;
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
	reg_file_stats(r, &st);
	cr_assert_eq(st.objects_rejected, 0, "'%s': %s", path, st.last_error);
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

static const char *str_at(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

/* The document of @kind named @name in @docs; fails the test when absent. */
static json_object *find_doc(json_object *docs, const char *kind, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(docs); i++) {
		json_object *d = json_object_array_get_idx(docs, i), *meta;

		if (strcmp(str_at(d, "kind"), kind) ||
		    !json_object_object_get_ex(d, "metadata", &meta) ||
		    strcmp(str_at(meta, "name"), name))
			continue;
		return d;
	}
	cr_assert_fail("no %s '%s' in manifests/weft.yaml", kind, name);
	return NULL;
}

static bool in_list(json_object *arr, const char *s)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(arr, i)), s))
			return true;
	return false;
}

Test(shipped_manifests, rbac_grants_exactly_what_the_registry_watches)
{
	json_object *docs = NULL, *role, *rules;
	char err[256] = "";
	size_t len, granted = 0, evict_rules = 0;
	char *buf = slurp("manifests/weft.yaml", &len);

	cr_assert_eq(reg_docs_parse(buf, len, &docs, err, sizeof(err)), 0, "%s", err);
	role = find_doc(docs, "ClusterRole", "weft-agent");
	cr_assert(json_object_object_get_ex(role, "rules", &rules));
	/* Every watched resource: list and watch, nothing else. */
	for (size_t k = 0; k < OBJ_KIND_COUNT; k++) {
		const struct k8s_kind *kind = &k8s_kinds[k];
		const char *slash = strchr(kind->api_version, '/');
		char group[64] = "";
		bool found = false;

		if (slash)
			snprintf(group, sizeof(group), "%.*s", (int)(slash - kind->api_version),
				 kind->api_version);
		for (size_t i = 0; i < json_object_array_length(rules); i++) {
			json_object *r = json_object_array_get_idx(rules, i), *groups, *res, *verbs;

			cr_assert(json_object_object_get_ex(r, "apiGroups", &groups));
			cr_assert(json_object_object_get_ex(r, "resources", &res));
			cr_assert(json_object_object_get_ex(r, "verbs", &verbs));
			if (!in_list(groups, group) || !in_list(res, kind->plural))
				continue;
			cr_expect(!in_list(res, K8S_EVICTION_RESOURCE),
				  "%s: shares a rule with the eviction grant", kind->plural);
			found = true;
			cr_expect(in_list(verbs, "list") && in_list(verbs, "watch"),
				  "%s: list and watch needed", kind->plural);
			cr_expect_eq(json_object_array_length(verbs), 2,
				     "%s: only list and watch are used", kind->plural);
		}
		cr_expect(found, "the ClusterRole does not grant '%s' in group '%s'", kind->plural,
			  group);
	}
	/* The evictions of pods that escaped (--evict-escaped): create on the
	 * subresource, in a rule of its own, and nothing more.
	 */
	for (size_t i = 0; i < json_object_array_length(rules); i++) {
		json_object *r = json_object_array_get_idx(rules, i), *groups, *res, *verbs;

		json_object_object_get_ex(r, "apiGroups", &groups);
		json_object_object_get_ex(r, "resources", &res);
		json_object_object_get_ex(r, "verbs", &verbs);
		if (!in_list(res, K8S_EVICTION_RESOURCE))
			continue;
		evict_rules++;
		cr_expect(in_list(groups, "") && json_object_array_length(groups) == 1,
			  "pods/eviction is in the core group");
		cr_expect_eq(json_object_array_length(res), 1, "the eviction rule grants more");
		cr_expect(in_list(verbs, K8S_EVICTION_VERB) && json_object_array_length(verbs) == 1,
			  "pods/eviction: only '%s' is used", K8S_EVICTION_VERB);
	}
	cr_expect_eq(evict_rules, 1, "the ClusterRole must grant pods/eviction once");
	/* And nothing the code does not watch or evict. */
	for (size_t i = 0; i < json_object_array_length(rules); i++) {
		json_object *r = json_object_array_get_idx(rules, i), *res;

		json_object_object_get_ex(r, "resources", &res);
		granted += json_object_array_length(res);
		cr_expect(!in_list(res, "*"), "no wildcard resource");
	}
	cr_expect_eq(granted, OBJ_KIND_COUNT + 1,
		     "the ClusterRole grants resources nobody watches or evicts");
	json_object_put(docs);
	free(buf);
}

/* Whether some rule of @rules grants @verb on @resource of @group (and,
 * with @name, on that name only).
 */
static bool grants(json_object *rules, const char *group, const char *resource, const char *verb,
		   const char *name)
{
	for (size_t i = 0; i < json_object_array_length(rules); i++) {
		json_object *r = json_object_array_get_idx(rules, i), *groups, *res, *verbs, *names;

		if (!json_object_object_get_ex(r, "apiGroups", &groups) ||
		    !json_object_object_get_ex(r, "resources", &res) ||
		    !json_object_object_get_ex(r, "verbs", &verbs))
			continue;
		if (in_list(groups, group) && in_list(res, resource) && in_list(verbs, verb) &&
		    (!name || (json_object_object_get_ex(r, "resourceNames", &names) &&
			       in_list(names, name) && json_object_array_length(names) == 1)))
			return true;
	}
	return false;
}

/* weft-ca (agent/ca/kube.c) calls: POST tokenreviews, GET pods of a node
 * (list), GET one agent pod, PUT then POST the bundle ConfigMap. It reads
 * its CA from a mounted Secret: no right on Secrets at all.
 */
Test(shipped_manifests, weft_ca_rbac_grants_what_it_calls_and_no_secret)
{
	json_object *docs = NULL, *cr, *role, *crules, *rrules;
	char err[256] = "";
	size_t len;
	char *buf = slurp("manifests/weft.yaml", &len);

	cr_assert_eq(reg_docs_parse(buf, len, &docs, err, sizeof(err)), 0, "%s", err);
	cr = find_doc(docs, "ClusterRole", "weft-ca");
	role = find_doc(docs, "Role", "weft-ca");
	cr_assert(json_object_object_get_ex(cr, "rules", &crules));
	cr_assert(json_object_object_get_ex(role, "rules", &rrules));
	cr_expect(grants(crules, "authentication.k8s.io", "tokenreviews", "create", NULL));
	cr_expect(grants(crules, "", "pods", "list", NULL));
	cr_expect(grants(rrules, "", "pods", "get", NULL));
	cr_expect(grants(rrules, "", "configmaps", "create", NULL));
	cr_expect(grants(rrules, "", "configmaps", "update", "weft-ca-bundle"));
	cr_expect(grants(rrules, "", "configmaps", "get", "weft-ca-bundle"));
	for (const char *const *v = (const char *const[]){ "get", "list", "watch", "create",
							   "update", "patch", NULL };
	     *v; v++) {
		cr_expect(!grants(crules, "", "secrets", *v, NULL), "secrets %s granted", *v);
		cr_expect(!grants(rrules, "", "secrets", *v, NULL), "secrets %s granted", *v);
	}
	json_object_put(docs);
	free(buf);
}

Test(shipped_manifests, demo_registry_loads_clean)
{
	load_clean("demo/registry.yaml", 2);	/* catalog, and inventory (names) */
}

Test(shipped_manifests, configmap_registry_loads_clean)
{
	json_object *docs = NULL, *data, *text;
	char err[256] = "", tmp[] = "/tmp/weft-cm-XXXXXX";
	size_t len;
	char *buf = slurp("manifests/weft.yaml", &len);
	FILE *f;
	int fd;

	cr_assert_eq(reg_docs_parse(buf, len, &docs, err, sizeof(err)), 0, "%s", err);
	cr_assert(json_object_object_get_ex(find_doc(docs, "ConfigMap", "weft-registry"), "data",
					    &data));
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
