// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl pods`: the agent's GET /v1/pods as one table row per pod, or the
 * answer itself under -o json; `meshctl pod NS/NAME` (or `pods NS/NAME`):
 * one pod in detail with its inbound ports and its live connections (GET
 * /v1/conns?pod=).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_help.h"
#include "meshctl.h"

static const char *const pod_headers[] = {
	"NAMESPACE", "NAME", "MESHED", "IPS", "LISTENERS", "CONNS", "REASON",
};
#define N_POD_COLS (sizeof(pod_headers) / sizeof(pod_headers[0]))

/* "a,b" from an array of strings, "-" when empty or absent. malloc'd. */
static char *join_field(struct json_object *o, const char *key)
{
	struct json_object *arr;

	if (!json_object_object_get_ex(o, key, &arr) ||
	    !json_object_is_type(arr, json_type_array) || !json_object_array_length(arr))
		return strdup("-");
	return out_join(arr);
}

static uint64_t conn_count(struct json_object *pod, const char *key)
{
	struct json_object *conns, *v;

	if (!json_object_object_get_ex(pod, "connections", &conns) ||
	    !json_object_object_get_ex(conns, key, &v))
		return 0;
	return json_object_get_uint64(v);
}

static int add_pod(struct out_table *t, struct json_object *pod, void *ctx)
{
	struct json_object *meshed;
	char conns[48];
	char *ips, *ls;
	int err = -ENOMEM;

	(void)ctx;
	if (!json_object_is_type(pod, json_type_object))
		return -EPROTO;
	ips = join_field(pod, "ips");
	ls = join_field(pod, "listeners");
	if (!ips || !ls)
		goto out_free;
	snprintf(conns, sizeof(conns), "%" PRIu64 "/%" PRIu64, conn_count(pod, "active"),
		 conn_count(pod, "total"));
	json_object_object_get_ex(pod, "meshed", &meshed);
	err = out_table_add(t, (const char *const[]){
		json_member_str(pod, "namespace"),
		json_member_str(pod, "name"),
		json_object_get_boolean(meshed) ? "yes" : "no",
		ips,
		ls,
		conns,
		json_member_str(pod, "reason"),
	});
out_free:
	free(ips);
	free(ls);
	return err;
}

int cmd_pods_render(FILE *out, struct json_object *resp)
{
	struct json_object *pods;

	if (!json_object_object_get_ex(resp, "pods", &pods) ||
	    !json_object_is_type(pods, json_type_array))
		return -EPROTO;
	return out_table_rows(out, N_POD_COLS, pod_headers, pods, add_pod, NULL);
}

int cmd_pods(struct meshctl *m, int argc, char **argv)
{
	int ret;

	/* kubectl's habit: `pods NAME` is `pod NAME`. */
	if (argc == 2 && strchr(argv[1], '/'))
		return cmd_pod(m, argc, argv);
	ret = meshctl_no_args(m, argc, argv);
	return ret ? ret : meshctl_show(m, "/v1/pods", cmd_pods_render,
					"\"pods\" array of objects");
}

static void pod_line(FILE *out, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pod_line(FILE *out, const char *key, const char *fmt, ...)
{
	va_list ap;

	fprintf(out, "%-14s", key);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

static const char *const inbound_headers[] = {
	"PORT", "CONNS", "ACTIVE", "BYTES-IN", "BYTES-OUT", "REQUESTS", "1XX", "2XX", "3XX", "4XX",
	"5XX", "CONNECT-ERRORS",
};
#define N_INBOUND_COLS (sizeof(inbound_headers) / sizeof(inbound_headers[0]))

/* One inbound port of the pod: the port clients dialled, port 0 for the
 * ports past the proxy's per-pod bound.
 */
static int add_inbound(struct out_table *t, struct json_object *p, void *ctx)
{
	static const char *const keys[N_INBOUND_COLS] = {
		"port", "connections", "active", "bytes_in", "bytes_out", "requests",
		"responses.1xx", "responses.2xx", "responses.3xx", "responses.4xx",
		"responses.5xx", "connect_errors",
	};
	char cells[N_INBOUND_COLS][24];
	const char *row[N_INBOUND_COLS];

	(void)ctx;
	for (size_t i = 0; i < N_INBOUND_COLS; i++) {
		if (i == 0 && !out_u64(p, keys[i]))
			snprintf(cells[i], sizeof(cells[i]), "other");
		else
			snprintf(cells[i], sizeof(cells[i]), "%llu", out_u64(p, keys[i]));
		row[i] = cells[i];
	}
	return out_table_add(t, row);
}

int cmd_pod_render(FILE *out, struct json_object *pod)
{
	char *ips = join_field(pod, "ips"), *ls = join_field(pod, "listeners");
	char *ports = join_field(pod, "exclude_ports"), *cidrs = join_field(pod, "exclude_cidrs");
	char *in_ports = join_field(pod, "exclude_inbound_ports");
	int meshed = out_bool(pod, "meshed"), err = -ENOMEM;

	if (!ips || !ls || !ports || !cidrs || !in_ports)
		goto out_free;
	pod_line(out, "Pod:", "%s/%s", out_str(pod, "namespace"), out_str(pod, "name"));
	pod_line(out, "UID:", "%s", out_str(pod, "uid") ? out_str(pod, "uid") : "-");
	pod_line(out, "Meshed:", "%s (%s)", meshed ? "yes" : "no",
		 out_str(pod, "reason") ? out_str(pod, "reason") : "-");
	pod_line(out, "Netns:", "%s (cookie %llu)", out_str(pod, "netns") ? out_str(pod, "netns") : "-",
		 out_u64(pod, "netns_cookie"));
	pod_line(out, "IPs:", "%s", ips);
	pod_line(out, "Listeners:", "%s%s", ls,
		 !strcmp(ls, "-") ? "" : out_bool(pod, "listening") ? " (listening)" :
								       " (NOT listening: restart the agent)");
	if (meshed) {
		pod_line(out, "Capture:", "%s%s", out_bool(pod, "capture_in_place") ?
			 "in place, as read back from the kernel" : "NOT in place: ",
			 out_bool(pod, "capture_in_place") ? "" :
			 (out_str(pod, "capture_problem") ?: "run 'meshctl check'"));
		pod_line(out, "Excluded:", "outbound ports %s; outbound CIDRs %s; inbound ports %s",
			 ports, cidrs, in_ports);
		if (json_object_is_type(out_path(pod, "fail_open"), json_type_object))
			pod_line(out, "Fail-open:",
				 "yes (weft.io/fail-open): heartbeat %s, %llu ms old; capture is "
				 "skipped once it is over %llu ms old%s",
				 out_str(pod, "fail_open.heartbeat") ?: "?",
				 out_u64(pod, "fail_open.age_ms"), out_u64(pod, "fail_open.after_ms"),
				 out_str(pod, "fail_open.heartbeat") &&
						 !strcmp(out_str(pod, "fail_open.heartbeat"), "stale")
					 ? " -- NOW BYPASSING THE MESH"
					 : "");
		else
			pod_line(out, "Fail-open:", "no (fails closed while no agent runs)");
		pod_line(out, "DNS:", "%s", out_bool(pod, "dns_captured")
			 ? "captured: the agent answers its services' names, forwards the rest"
			 : "not captured (weft.io/dns-capture \"false\", or --dns-port 0): "
			   "its resolver answers alone");
	}
	pod_line(out, "Connections:", "%llu active, %llu since enrollment",
		 out_u64(pod, "connections.active"), out_u64(pod, "connections.total"));
	err = 0;
	/* Inbound: clients outside the pod reaching its application, per port. */
	if (json_object_is_type(out_path(pod, "inbound"), json_type_array) &&
	    json_object_array_length(out_path(pod, "inbound"))) {
		fprintf(out, "\nInbound:\n");
		err = out_table_rows(out, N_INBOUND_COLS, inbound_headers, out_path(pod, "inbound"),
				     add_inbound, NULL);
	}
out_free:
	free(ips);
	free(ls);
	free(ports);
	free(cidrs);
	free(in_ports);
	return err;
}

/* The one pod of a /v1/pods?pod= answer, with its live connections. */
static int show_pod(struct meshctl *m, const char *ref)
{
	struct json_object *resp = NULL, *conns = NULL, *pods, *pod;
	char url[512] = "/v1/pods";
	int ret;

	if (meshctl_query_add(url, sizeof(url), "pod", ref)) {
		out_err(m->err, m->format, "pod name '%s' is too long", ref);
		return MESHCTL_USAGE;
	}
	ret = meshctl_get(m, url, &resp);
	if (ret)
		return ret;
	pods = out_path(resp, "pods");
	pod = pods && json_object_is_type(pods, json_type_array) ?
		      json_object_array_get_idx(pods, 0) : NULL;
	if (!pod) {
		out_err(m->err, m->format, "malformed answer from the agent on %s: no pod in %s",
			m->socket, url);
		ret = MESHCTL_ERR;
		goto out_put;
	}
	snprintf(url, sizeof(url), "/v1/conns");
	(void)meshctl_query_add(url, sizeof(url), "pod", ref);
	ret = meshctl_get(m, url, &conns);
	if (ret)
		goto out_put;
	if (m->format == OUT_JSON) {
		json_object_object_add(pod, "conns", json_object_get(out_path(conns, "conns")));
		out_json(m->out, pod);
		goto out_put;
	}
	if (cmd_pod_render(m->out, pod)) {
		out_err(m->err, m->format, "out of memory");
		ret = MESHCTL_ERR;
		goto out_put;
	}
	if (json_object_array_length(out_path(conns, "conns"))) {
		fprintf(m->out, "\nLive connections:\n");
		(void)cmd_conns_render(m->out, conns);
	}
out_put:
	json_object_put(conns);
	json_object_put(resp);
	return ret;
}

int cmd_pod(struct meshctl *m, int argc, char **argv)
{
	int ret = meshctl_args(m, argc, argv, 1, "NAMESPACE/NAME");

	if (!ret)
		ret = meshctl_ns_ref(m, argv[1], "NAME", "pods");
	return ret ? ret : show_pod(m, argv[1]);
}
