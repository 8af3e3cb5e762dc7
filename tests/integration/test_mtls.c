// SPDX-License-Identifier: GPL-2.0-only
/* Workload identities on a running agent with the standalone CA
 * (--ca-cert/--ca-key made here by the openssl tool): one certificate per
 * (namespace, service account) of this node's meshed pods, the service
 * account taken from the registry's Pod object, certificates that chain to
 * the CA (checked by `openssl verify`, outside the agent), renewal at
 * half-life, CA files replaced on disk (a rotation) reissuing everything,
 * and `meshctl identities`. Capture-mode independent: not in MODE_SUITES.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "fixture.h"
#include "topo.h"

static char cadir[] = "/tmp/weft-mtls-ca-XXXXXX";

static void sh(const char *fmt, const char *arg)
{
	char cmd[2048], inner[1024];

	snprintf(inner, sizeof(inner), fmt, arg);
	snprintf(cmd, sizeof(cmd), "cd %s && (%s) >/dev/null 2>&1", cadir, inner);
	cr_assert_eq(system(cmd), 0, "%s", inner);
}

/* A P-256 CA as NAME.pem and NAME.key in cadir. */
static void make_ca(const char *name)
{
	char args[256];

	snprintf(args, sizeof(args), "-subj /O=weft-test/CN=%s -keyout %s.key -out %s.pem", name,
		 name, name);
	sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 %s "
	   "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
	   args);
}

static void up(void)
{
	char args[1024];

	cr_assert_not_null(mkdtemp(cadir));
	make_ca("ca1");
	make_ca("ca2");
	snprintf(args, sizeof(args), "--ca-cert %s/ca1.pem --ca-key %s/ca1.key --svid-ttl 10",
		 cadir, cadir);
	fixture_up_with(args);
}

static void down(void)
{
	char cmd[128];

	fixture_down();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cadir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(mtls, .init = up, .fini = down, .timeout = 120);

/* The /v1/identities entry of @uri (a new reference), or NULL. */
static json_object *identity(const char *uri)
{
	json_object *all = tenv_admin_get(&env, "/v1/identities"), *arr, *found = NULL;

	if (all && json_object_object_get_ex(all, "identities", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i), *id;

			if (json_object_object_get_ex(e, "id", &id) &&
			    !strcmp(json_object_get_string(id), uri))
				found = json_object_get(e);
		}
	}
	json_object_put(all);
	return found;
}

static size_t n_identities(void)
{
	json_object *all = tenv_admin_get(&env, "/v1/identities"), *arr;
	size_t n = 0;

	if (all && json_object_object_get_ex(all, "identities", &arr))
		n = json_object_array_length(arr);
	json_object_put(all);
	return n;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

/* Wait up to @ms for @uri to be listed with a serial other than @not
 * (NULL: any). A new reference, or NULL.
 */
static json_object *identity_until(const char *uri, const char *not, uint64_t ms)
{
	uint64_t end = mono_ms() + ms;

	do {
		json_object *e = identity(uri);

		if (e && (!not || strcmp(str(e, "serial"), not)))
			return e;
		json_object_put(e);
		usleep(100000);
	} while (mono_ms() < end);
	return NULL;
}

/* Write @e's certificate to cadir/leaf.pem and run `openssl verify` on it
 * against cadir/@ca; its exit status.
 */
static int openssl_verify(json_object *e, const char *ca)
{
	char path[256], cmd[768];
	FILE *f;

	snprintf(path, sizeof(path), "%s/leaf.pem", cadir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(str(e, "certificate"), f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "openssl verify -CAfile %s/%s -purpose sslclient %s >/dev/null 2>&1 && "
		 "openssl verify -CAfile %s/%s -purpose sslserver %s >/dev/null 2>&1",
		 cadir, ca, path, cadir, ca, path);
	return system(cmd);
}

Test(mtls, one_certificate_per_identity_of_the_meshed_pods)
{
	json_object *e = identity_until("spiffe://cluster.local/ns/mesh/sa/default", NULL, 5000);

	cr_assert_not_null(e, "client-a and client-b (no Pod objects) run as 'default'");
	cr_assert_eq(n_identities(), 1, "two meshed pods, one identity; client-c is not meshed");
	cr_assert_str_eq(str(e, "issuer"), "/O=weft-test/CN=ca1");
	cr_assert_eq(openssl_verify(e, "ca1.pem"), 0, "the certificate chains to the CA");
	cr_assert_neq(openssl_verify(e, "ca2.pem"), 0, "and not to another");
	cr_assert_not(strstr(json_object_to_json_string(e), "PRIVATE"), "no key leaves the agent");
	json_object_put(e);

	/* The registry names client-a's service account: a second identity. */
	{
		char yaml[8192];

		snprintf(yaml, sizeof(yaml),
			 "%s---\napiVersion: v1\nkind: Pod\nmetadata: {name: client-a, namespace: mesh}\n"
			 "spec: {serviceAccountName: frontend}\nstatus: {podIP: 198.18.1.2}\n",
			 TOPO_REGISTRY);
		cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	}
	e = identity_until("spiffe://cluster.local/ns/mesh/sa/frontend", NULL, 5000);
	cr_assert_not_null(e, "client-a's Pod object names its service account");
	cr_assert_eq(openssl_verify(e, "ca1.pem"), 0);
	json_object_put(e);
	cr_assert_eq(n_identities(), 2, "client-b still runs as 'default'");
	/* client-b leaves: 'default' has no pod here any more. */
	{
		char out[4096];

		cr_assert_eq(tenv_cni(&env, "DEL", "b", "mesh", "client-b", "198.18.3.2", out,
				      sizeof(out)), 0, "%s", out);
	}
	for (int i = 0; i < 50 && n_identities() != 1; i++)
		usleep(100000);
	cr_assert_eq(n_identities(), 1);
	cr_assert_null(identity("spiffe://cluster.local/ns/mesh/sa/default"));
}

Test(mtls, renewed_at_half_life_and_reissued_when_the_ca_rotates)
{
	const char *uri = "spiffe://cluster.local/ns/mesh/sa/default";
	json_object *e = identity_until(uri, NULL, 5000), *next;
	char serial[64], cmd[512];
	long long not_after;

	cr_assert_not_null(e);
	snprintf(serial, sizeof(serial), "%s", str(e, "serial"));
	not_after = json_object_get_int64(json_object_object_get(e, "not_after"));
	json_object_put(e);
	/* --svid-ttl 10: renewed about 5 s after issuance, well before expiry. */
	next = identity_until(uri, serial, 9000);
	cr_assert_not_null(next, "not renewed within 9 s with a 10 s lifetime");
	cr_assert_gt(json_object_get_int64(json_object_object_get(next, "not_after")), not_after);
	cr_assert_eq(openssl_verify(next, "ca1.pem"), 0);
	json_object_put(next);

	/* A CA rotation: ca2 replaces ca1 on disk (rename: atomic for readers). */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && cp ca2.key new.key && cp ca2.pem new.pem && mv new.key ca1.key && "
		 "mv new.pem ca1.pem", cadir);
	cr_assert_eq(system(cmd), 0);
	/* The tick notices within its period, bounded here by renewals (5 s). */
	for (int i = 0; i < 150; i++) {
		next = identity(uri);
		if (next && strstr(str(next, "issuer"), "CN=ca2"))
			break;
		json_object_put(next);
		next = NULL;
		usleep(100000);
	}
	cr_assert_not_null(next, "not reissued by the new CA");
	cr_assert_eq(openssl_verify(next, "ca2.pem"), 0);
	json_object_put(next);
}
