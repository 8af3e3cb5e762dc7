// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: a DNS message from a meshed pod, which any application in the
 * pod writes, through dns_answer() (agent/dns/answer.c: libldns's parser,
 * then the agent's naming rules) over UDP and TCP, against a catalogue with
 * registry VIPs, an allocated VIP, named ports and a headless service. An
 * answer must be a message libldns reads back, no larger than the transport
 * takes, with the query's id.
 */
#include <ldns/ldns.h>

#include "dns/dns.h"
#include "fuzz.h"
#include "registry/decode.h"
#include "registry/yaml.h"

static const char registry[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	"spec:\n  clusterIPs: [198.19.0.10, \"fd00:198:19::10\"]\n"
	"  ports: [{name: http, port: 80}, {name: grpc, port: 9000}]\n"
	"---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: catalog, namespace: shop}\n"
	"spec:\n  ports: [{name: http, port: 8080}]\n"
	"---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\n"
	"spec:\n  clusterIP: None\n  ports: [{port: 5432}]\n";

/* Built once; reachable until exit, so not a leak. */
static struct catalogue *catalogue_once(void)
{
	static struct catalogue *cat;
	char err[REG_PARSE_ERR_MAX];
	struct model *m;
	json_object *docs;
	struct cidr r;

	if (cat)
		return cat;
	m = model_new();
	if (!m || addr_parse_cidr("198.19.77.0/24", &r.net, &r.prefix_len) ||
	    model_set_vip_ranges(m, &r, 1) ||
	    reg_yaml_parse(registry, sizeof(registry) - 1, &docs, err, sizeof(err)))
		abort();
	for (size_t i = 0; i < json_object_array_length(docs); i++) {
		struct obj *o;

		if (reg_decode(json_object_array_get_idx(docs, i), &o, err, sizeof(err)) ||
		    model_upsert(m, "file", o))
			abort();
	}
	json_object_put(docs);
	cat = model_build(m);
	model_free(m);
	if (!cat)
		abort();
	return cat;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct catalogue *cat = catalogue_once();

	for (int tcp = 0; tcp < 2; tcp++) {
		uint8_t *out = NULL;
		size_t len = 0;
		ldns_pkt *r = NULL;
		int rc = dns_answer(cat, "cluster.local", data, size, tcp, &out, &len);

		if (rc < 0)
			abort();
		if (rc == DNS_FORWARD)
			continue;
		if (len > (tcp ? DNS_TCP_MAX : DNS_UDP_MAX) || len < 12 ||
		    memcmp(out, data, 2) || ldns_wire2pkt(&r, out, len) != LDNS_STATUS_OK)
			abort();
		ldns_pkt_free(r);
		free(out);
	}
	return 0;
}
