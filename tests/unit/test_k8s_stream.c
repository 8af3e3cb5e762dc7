// SPDX-License-Identifier: GPL-2.0-only
/* agent/registry/k8s_stream.c (watch bodies cut anywhere by the network)
 * and the parts of k8s_watch.c that need no server: ERROR events, 410,
 * malformed events, Status messages, request URLs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "registry/k8s_http.h"
#include "registry/k8s_stream.h"
#include "registry/k8s_watch.h"

struct seen {
	char names[16][32];
	int n;
	int fail_at;	/* return an error at this value, -1 never */
};

static int on_value(json_object *v, void *ctx)
{
	struct seen *s = ctx;
	json_object *name;

	if (s->n == s->fail_at)
		return -ECANCELED;
	cr_assert(json_object_object_get_ex(v, "n", &name));
	snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", json_object_get_string(name));
	return 0;
}

static const char EVENTS[] = "{\"type\":\"ADDED\",\"n\":\"a\",\"o\":{\"x\":[1,2,{\"y\":\"}\"}]}}\n"
			     "{\"type\":\"MODIFIED\",\"n\":\"b\"}\n\n"
			     "  {\"type\":\"DELETED\",\"n\":\"c\",\"s\":\"\\u00e9\\\"{\"}\n";

Test(k8s_stream, values_cut_at_every_byte)
{
	size_t len = strlen(EVENTS);

	for (size_t cut = 0; cut <= len; cut++) {
		struct seen s = { .fail_at = -1 };
		struct k8s_stream st;

		cr_assert_eq(k8s_stream_init(&st, 1 << 20, on_value, &s), 0);
		cr_assert_eq(k8s_stream_feed(&st, EVENTS, cut), 0, "cut %zu: %s", cut, st.err);
		cr_assert_eq(k8s_stream_feed(&st, EVENTS + cut, len - cut), 0, "cut %zu: %s", cut,
			     st.err);
		cr_assert_eq(s.n, 3, "cut %zu: %d values", cut, s.n);
		cr_assert_str_eq(s.names[0], "a");
		cr_assert_str_eq(s.names[2], "c");
		cr_assert(!k8s_stream_partial(&st));
		k8s_stream_done(&st);
	}
}

Test(k8s_stream, one_byte_at_a_time)
{
	struct seen s = { .fail_at = -1 };
	struct k8s_stream st;

	cr_assert_eq(k8s_stream_init(&st, 1 << 20, on_value, &s), 0);
	for (size_t i = 0; EVENTS[i]; i++)
		cr_assert_eq(k8s_stream_feed(&st, EVENTS + i, 1), 0, "byte %zu: %s", i, st.err);
	cr_assert_eq(s.n, 3);
	k8s_stream_done(&st);
}

Test(k8s_stream, truncated_value_is_partial)
{
	struct seen s = { .fail_at = -1 };
	struct k8s_stream st;

	cr_assert_eq(k8s_stream_init(&st, 1 << 20, on_value, &s), 0);
	cr_assert_eq(k8s_stream_feed(&st, EVENTS, 70), 0);
	cr_assert_eq(s.n, 1);
	cr_assert(k8s_stream_partial(&st));
	k8s_stream_reset(&st);
	cr_assert(!k8s_stream_partial(&st));
	cr_assert_eq(k8s_stream_feed(&st, "{\"n\":\"z\"}", 9), 0);
	cr_assert_str_eq(s.names[1], "z");
	k8s_stream_done(&st);
}

Test(k8s_stream, garbage_and_oversize_and_callback_errors)
{
	struct seen s = { .fail_at = -1 };
	struct k8s_stream st;
	char big[300];

	cr_assert_eq(k8s_stream_init(&st, 256, on_value, &s), 0);
	cr_assert_eq(k8s_stream_feed(&st, "<html>", 6), -EINVAL);
	cr_assert_neq(st.err[0], '\0');
	k8s_stream_reset(&st);
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"n\":\"", 6);
	cr_assert_eq(k8s_stream_feed(&st, big, sizeof(big)), -E2BIG);
	k8s_stream_reset(&st);
	s.fail_at = 1;
	cr_assert_eq(k8s_stream_feed(&st, EVENTS, strlen(EVENTS)), -ECANCELED);
	cr_assert_eq(s.n, 1);
	k8s_stream_done(&st);
	k8s_stream_done(&st);	/* twice is fine */
}

/* ---- a list page split into its items ---- */

struct split_seen {
	char items[8][16];	/* each item's "n", in the order handed on */
	int n_items;
	int keep;		/* K8S_STREAM_KEEP every item while the head has no "kind" */
	int n_values;
	char head[256];		/* the value callback's object */
	int fail_at;		/* item index whose callback fails, -1 never */
};

static int split_value(json_object *v, void *ctx)
{
	struct split_seen *s = ctx;

	s->n_values++;
	snprintf(s->head, sizeof(s->head), "%s",
		 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	return 0;
}

static int split_item(json_object *head, json_object *item, void *ctx)
{
	struct split_seen *s = ctx;
	json_object *n;

	if (s->keep && !json_object_object_get_ex(head, "kind", NULL))
		return K8S_STREAM_KEEP;
	if (s->n_items == s->fail_at)
		return -ECANCELED;
	cr_assert(json_object_object_get_ex(head, "kind", NULL), "an item came before the kind");
	cr_assert(json_object_object_get_ex(item, "n", &n));
	snprintf(s->items[s->n_items++], sizeof(s->items[0]), "%s", json_object_get_string(n));
	return 0;
}

static const char PAGE[] = " {\"kind\" : \"ServiceList\",\"metadata\":{\"continue\":\"c]1\"},\n"
			   "\"items\" : [ {\"n\":\"a\",\"x\":[1,{\"y\":\"]}\"}]} ,{\"n\":\"b\"},"
			   "{\"n\":\"c\\\"]\"} ] ,\"z\":-1.5e3}\n";

Test(k8s_stream, a_split_page_cut_at_every_byte_hands_on_its_items_one_by_one)
{
	size_t len = strlen(PAGE);

	for (size_t cut = 0; cut <= len; cut++) {
		struct split_seen s = { .fail_at = -1 };
		struct k8s_stream st;

		cr_assert_eq(k8s_stream_init(&st, 1 << 20, split_value, &s), 0);
		k8s_stream_split(&st, split_item);
		cr_assert_eq(k8s_stream_feed(&st, PAGE, cut), 0, "cut %zu: %s", cut, st.err);
		cr_assert_eq(k8s_stream_feed(&st, PAGE + cut, len - cut), 0, "cut %zu: %s", cut,
			     st.err);
		cr_assert_eq(s.n_items, 3, "cut %zu: %d items", cut, s.n_items);
		cr_assert_str_eq(s.items[0], "a");
		cr_assert_str_eq(s.items[2], "c\"]");
		cr_assert_eq(s.n_values, 1);
		cr_assert_str_eq(s.head, "{\"kind\":\"ServiceList\",\"metadata\":{\"continue\":\"c]1\"},"
					 "\"z\":-1.5e3}", "cut %zu", cut);
		cr_assert(!k8s_stream_partial(&st));
		k8s_stream_done(&st);
	}
}

Test(k8s_stream, items_before_the_kind_are_kept_in_the_page_and_other_values_read_whole)
{
	static const char page[] = "{\"items\":[{\"n\":\"a\"},{\"n\":\"b\"}],\"kind\":\"L\"}"
				   "[{\"items\":[1]}] \"s\" {\"items\":null}";
	struct split_seen s = { .keep = 1, .fail_at = -1 };
	struct k8s_stream st;

	cr_assert_eq(k8s_stream_init(&st, 1 << 20, split_value, &s), 0);
	k8s_stream_split(&st, split_item);
	for (size_t i = 0; page[i]; i++)
		cr_assert_eq(k8s_stream_feed(&st, page + i, 1), 0, "byte %zu: %s", i, st.err);
	cr_assert_eq(s.n_items, 0);
	cr_assert_eq(s.n_values, 4);
	cr_assert_str_eq(s.head, "{\"items\":null}");
	k8s_stream_reset(&st);
	cr_assert_eq(k8s_stream_feed(&st, page, 46), 0, "%s", st.err);
	cr_assert_str_eq(s.head, "{\"items\":[{\"n\":\"a\"},{\"n\":\"b\"}],\"kind\":\"L\"}");
	k8s_stream_done(&st);
}

Test(k8s_stream, a_broken_split_page_is_refused_where_it_breaks)
{
	static const char *const bad[] = {
		"{\"kind\":\"L\" \"items\":[]}",	/* no comma */
		"{\"kind\":\"L\",\"items\":[{\"n\":\"a\"} {\"n\":\"b\"}]}",
		"{\"kind\":\"L\",\"items\":[{\"n\":\"a\"},]}",
		"{\"kind\":\"L\",}",
		"{kind:1}",
		"{\"kind\" 1}",
	};
	struct split_seen s = { .fail_at = -1 };
	struct k8s_stream st;
	char big[300];

	cr_assert_eq(k8s_stream_init(&st, 256, split_value, &s), 0);
	k8s_stream_split(&st, split_item);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		k8s_stream_reset(&st);
		cr_assert_eq(k8s_stream_feed(&st, bad[i], strlen(bad[i])), -EINVAL, "%s", bad[i]);
		cr_assert(strstr(st.err, "at byte"), "%s: %s", bad[i], st.err);
	}
	cr_assert_eq(s.n_values, 0);
	/* The limit counts the whole page, not one item. */
	k8s_stream_reset(&st);
	memset(big, ' ', sizeof(big));
	memcpy(big, "{\"kind\":\"L\",\"metadata\":{},\"items\":[", 35);
	cr_assert_eq(k8s_stream_feed(&st, big, sizeof(big)), -E2BIG);
	/* An item callback's error stops the feed. */
	k8s_stream_reset(&st);
	s.n_items = 0;
	s.fail_at = 1;
	cr_assert_eq(k8s_stream_feed(&st, PAGE, strlen(PAGE)), -ECANCELED);
	cr_assert_eq(s.n_items, 1);
	k8s_stream_done(&st);
}

/* ---- k8s_watch without a sink: what never reaches it ---- */

static int event(const char *json, struct k8s_res *r, char *err, size_t len)
{
	struct k8s_out out = { .sink = NULL, .source = "kubernetes" };
	json_object *ev = json_tokener_parse(json);
	int rc;

	cr_assert_not_null(ev, "bad test JSON: %s", json);
	rc = k8s_res_event(r, &out, ev, err, len);
	json_object_put(ev);
	return rc;
}

Test(k8s_watch, error_events)
{
	struct k8s_res r = { .k = &k8s_kinds[OBJ_SERVICE], .rv = "7" };
	char err[256];

	cr_assert_eq(event("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
			   "\"reason\":\"Expired\",\"message\":\"too old resource version: 7 (9)\"}}",
			   &r, err, sizeof(err)), 1, "410 means relist");
	cr_assert_eq(event("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,"
			   "\"reason\":\"InternalError\",\"message\":\"etcd is sad\"}}",
			   &r, err, sizeof(err)), -EPROTO);
	cr_assert_str_eq(err, "ERROR event: 500 InternalError: etcd is sad");
	cr_assert_eq(event("{\"type\":\"ADDED\"}", &r, err, sizeof(err)), -EPROTO);
	cr_assert_eq(event("{\"object\":{}}", &r, err, sizeof(err)), -EPROTO);
	cr_assert_eq(event("{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}", &r, err, sizeof(err)),
		     -EPROTO);
	cr_assert(strstr(err, "resourceVersion"), "%s", err);
	cr_assert_eq(event("{\"type\":\"RENAMED\",\"object\":{\"metadata\":{\"resourceVersion\":\"8\"}}}",
			   &r, err, sizeof(err)), -EPROTO);
	cr_assert_str_eq(r.rv, "7", "a failed event moved the position");
}

Test(k8s_watch, bookmark_moves_the_position_only)
{
	struct k8s_res r = { .k = &k8s_kinds[OBJ_ENDPOINTSLICE], .rv = "7" };
	char err[256];

	cr_assert_eq(event("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"EndpointSlice\","
			   "\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{\"resourceVersion\":\"12\"}}}",
			   &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(r.rv, "12");
}

Test(k8s_watch, status_strings)
{
	char buf[128];
	json_object *o = json_tokener_parse("{\"kind\":\"Status\",\"code\":403,\"reason\":\"Forbidden\","
					    "\"message\":\"services is forbidden\"}");

	cr_assert_str_eq(k8s_status_str(o, buf, sizeof(buf)), "403 Forbidden: services is forbidden");
	json_object_put(o);
	o = json_tokener_parse("{\"kind\":\"ServiceList\"}");
	cr_assert_str_eq(k8s_status_str(o, buf, sizeof(buf)), "");
	json_object_put(o);
	cr_assert_str_eq(k8s_status_str(NULL, buf, sizeof(buf)), "");
}

Test(k8s_watch, list_of_the_wrong_kind_is_refused)
{
	struct k8s_res r = { .k = &k8s_kinds[OBJ_SERVICE] };
	struct k8s_out out = { .sink = NULL, .source = "kubernetes" };
	json_object *o = json_tokener_parse("{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"3\"},\"items\":[]}");
	char err[256];

	cr_assert_eq(k8s_res_list_page(&r, &out, o, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "expected a ServiceList, got a PodList"), "%s", err);
	json_object_put(o);
	o = json_tokener_parse("{\"kind\":\"ServiceList\",\"metadata\":{},\"items\":[]}");
	cr_assert_eq(k8s_res_list_page(&r, &out, o, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "resourceVersion"), "%s", err);
	json_object_put(o);
	cr_assert(!r.resyncing, "a refused page began a resync");
}

Test(k8s_watch, an_item_counts_only_once_its_page_says_what_it_is)
{
	struct k8s_res r = { .k = &k8s_kinds[OBJ_SERVICE] };
	struct k8s_out out = { .sink = NULL, .source = "kubernetes" };
	json_object *item = json_tokener_parse("{\"metadata\":{\"name\":\"web\"}}");
	json_object *head = json_tokener_parse("{\"kind\":\"ServiceList\"}");
	char err[256];

	/* No metadata yet: the item waits for the whole page. */
	cr_assert_eq(k8s_res_list_item(&r, &out, head, item, err, sizeof(err)),
		     K8S_LIST_ITEM_LATER);
	json_object_put(head);
	head = json_tokener_parse("{\"metadata\":{\"resourceVersion\":\"3\"}}");
	cr_assert_eq(k8s_res_list_item(&r, &out, head, item, err, sizeof(err)),
		     K8S_LIST_ITEM_LATER);
	json_object_put(head);
	/* A page of another kind, or a last page without its version, is
	 * refused before its first item counts.
	 */
	head = json_tokener_parse("{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"3\"}}");
	cr_assert_eq(k8s_res_list_item(&r, &out, head, item, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "expected a ServiceList, got a PodList"), "%s", err);
	json_object_put(head);
	head = json_tokener_parse("{\"kind\":\"ServiceList\",\"metadata\":{}}");
	cr_assert_eq(k8s_res_list_item(&r, &out, head, item, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "resourceVersion"), "%s", err);
	json_object_put(head);
	json_object_put(item);
	cr_assert(!r.resyncing, "a refused page began a resync");
	cr_assert_eq(r.n_listed, 0);
}

Test(k8s_http, urls)
{
	struct k8s_conn_cfg c = { .server = "https://10.0.0.1:6443/prefix" };
	char *u;

	u = k8s_url_list(&c, &k8s_kinds[OBJ_POD], "spec.nodeName=node-a", NULL);
	cr_assert_str_eq(u, "https://10.0.0.1:6443/prefix/api/v1/pods?limit=100"
			    "&fieldSelector=spec.nodeName%3Dnode-a");
	free(u);
	u = k8s_url_list(&c, &k8s_kinds[OBJ_SERVICE], NULL, "eyJ2Ijoi+/=");
	cr_assert_str_eq(u, "https://10.0.0.1:6443/prefix/api/v1/services?limit=100"
			    "&continue=eyJ2Ijoi%2B%2F%3D");
	free(u);
	u = k8s_url_watch(&c, &k8s_kinds[OBJ_ENDPOINTSLICE], NULL, "12345", 300);
	cr_assert_str_eq(u, "https://10.0.0.1:6443/prefix/apis/discovery.k8s.io/v1/endpointslices?"
			    "watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=12345");
	free(u);
}
