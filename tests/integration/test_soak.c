// SPDX-License-Identifier: GPL-2.0-only
/* The soak (`make soak`, issue 13; not part of `make test`): the sanitizer
 * build of the agent runs for $WEFT_SOAK_SECONDS (default 600) with three
 * registries (the file, a real etcd, a real ZooKeeper) under continuous load
 * from meshed pods a and b (soak_load.h), while the test
 *  - churns endpoints: backends added, flipped ready and not ready, removed
 *    (and their servers stopped once the agent no longer lists them), a web
 *    backend now and then killed while still listed (a crash the registry
 *    learns of 2 s later), a service added and removed;
 *  - kills etcd and ZooKeeper in turn, about once a minute each, and starts
 *    them again: the agent goes stale and must resync;
 *  - enrolls and removes a pod through weft-cni every 15 s, which must be
 *    meshed at once;
 *  - samples the agent's resident memory, heap in use and descriptors every
 *    5 s (soak_samples.h).
 * Then it stops the agent (SIGTERM): exit status 0, so no LeakSanitizer or
 * other sanitizer report; no unexpected client error; heap, resident memory
 * and descriptors flat. What counts as an expected error is defined in
 * docs/testing.md ("Soak"), next to the figures.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd_server.h"
#include "fixture.h"
#include "proc.h"
#include "servers.h"
#include "soak_load.h"
#include "soak_samples.h"
#include "sock.h"
#include "tns.h"
#include "zk_server.h"

#define SECONDS_DEFAULT 600
#define SECONDS_MIN 30
#define SAMPLE_MS 5000
#define CHURN_MS 1000		/* one churn event a second */
#define CNI_MS 15000		/* one pod enrolled and removed */
#define RESTART_MS 60000	/* each registry server restarted this often */
#define DOWN_MS 3000		/* how long a registry server stays down */
#define CONVERGE_MS 60000	/* the agent must apply a change within this */
#define GRACE_MS 500		/* after the agent applied a removal, before the stop */
#define CRASH_NOTICE_MS 2000	/* a crashed backend stays listed this long */
#define WARMUP_MS_MAX 120000
#define ASAN_QUARANTINE_MB 16	/* the agent's, see asan_options() */
#define ASAN_RELEASE_MS 5000
#define CNI_IDENTS 5
#define NODE "soak-node"
#define TMP_VIP "198.19.0.70:80"

/* Flatness, after the warm-up: the late half's peak over the early half's.
 * The heap in use is the leak's measure. The resident size of the sanitizer
 * build swings by several MiB from one sample to the next as its allocator
 * hands free pages back (asan_options()): its bound catches a gross growth.
 */
#define HEAP_TOL_KIB 1024
#define HEAP_TOL_PCT 10
#define RSS_TOL_KIB (16 * 1024)
#define RSS_TOL_PCT 20
#define FDS_TOL 24
#define FDS_TOL_PCT 10

enum reg { REG_FILE, REG_ETCD, REG_ZK };

/* One churned backend address of a service. */
struct backend {
	const char *ip;
	bool listed, ready;
	pid_t srv;		/* its server, 0 when stopped (echo: always up) */
};

/* A service whose endpoints churn: two stable endpoints (198.18.2.11 and .12,
 * always listed, ready and serving) and a pool of churned ones.
 */
struct svc {
	const char *name, *vip;
	enum reg reg;
	uint16_t port;		/* the backends' */
	enum { SRV_LINE, SRV_HTTP, SRV_ALWAYS } srv;
	struct backend b[6];
	int n;
};

#define B(a) { .ip = "198.18.2." #a }
static struct svc web = { .name = "web", .vip = SOAK_WEB_VIP, .reg = REG_FILE, .port = 8080,
			  .srv = SRV_LINE, .b = { B(21), B(22), B(23) }, .n = 3 };
static struct svc kv = { .name = "kv", .vip = SOAK_KV_VIP, .reg = REG_ETCD, .port = 8081,
			 .srv = SRV_HTTP, .b = { B(24), B(25), B(26) }, .n = 3 };
static struct svc echo = { .name = "echo", .vip = SOAK_ECHO_VIP, .reg = REG_ZK, .port = 8082,
			   .srv = SRV_ALWAYS, .b = { B(21), B(22), B(23), B(24), B(25), B(26) },
			   .n = 6 };
#undef B
static const char *const stable_ip[] = { "198.18.2.11", "198.18.2.12" };

/* A registry server the test restarts. */
struct regsrv {
	const char *name, *status_prefix;
	enum { UP, DOWN, RESYNCING } phase;
	uint64_t next_ms, since_ms;
	bool stale_seen;
	int restarts, seen_stale, resynced;
	long resync_max_ms;
};

static struct regsrv etcd_rs = { .name = "etcd", .status_prefix = "etcd:" };
static struct regsrv zk_rs = { .name = "ZooKeeper", .status_prefix = "zookeeper:" };
static uint64_t restart_ms;	/* RESTART_MS, or less in a short run */
static struct tetcd etcd;
static struct tzk zk;
static pid_t stable_srv[6], echo_srv[6];

/* What the churn did. */
static struct {
	long adds, flips, removes, crashes, svc_adds, svc_dels;
	long cni_cycles, cni_failed, stuck;
	long converge_max_ms;
	bool tmp_listed;
	unsigned int seed, rand;	/* the run's seed; rand_r()'s state */
	uint64_t t0_ms;
} st;

static double secs(void)
{
	return (double)(tproc_now_ms() - st.t0_ms) / 1000;
}

/* ------------------------------------------------------------ registries */

static void slice_json(char *out, size_t len, const char *svc, const char *slice, uint16_t port,
		       const struct backend *b, int n)
{
	size_t k = (size_t)snprintf(out, len,
				    "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
				    "\"metadata\":{\"name\":\"%s\",\"namespace\":\"mesh\",\"labels\":"
				    "{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\","
				    "\"endpoints\":[",
				    slice, svc);
	bool first = true;

	for (int i = 0; i < n; i++) {
		if (!b[i].listed)
			continue;
		k += (size_t)snprintf(out + k, len - k,
				      "%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":%s}}",
				      first ? "" : ",", b[i].ip, b[i].ready ? "true" : "false");
		first = false;
	}
	snprintf(out + k, len - k, "],\"ports\":[{\"port\":%u}]}", port);
	cr_assert_lt(k, len - 32, "slice %s too long", slice);
}

static void svc_json(char *out, size_t len, const char *name, const char *vip, uint16_t port)
{
	char ip[32];

	snprintf(ip, sizeof(ip), "%s", vip);
	ip[strcspn(ip, ":")] = '\0';
	snprintf(out, len,
		 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"mesh\"},\"spec\":{\"clusterIP\":\"%s\",\"ports\":[{\"port\":80,"
		 "\"targetPort\":%u}]}}",
		 name, ip, port);
}

/* Write @value at @rel under the soak's prefix, or delete it (@value NULL). */
static void kv_write(enum reg where, const char *rel, const char *value)
{
	char key[256];
	int rc;

	snprintf(key, sizeof(key), "/soak/%s", rel);
	if (where == REG_ETCD)
		rc = value ? tetcd_put(&etcd, key, value) : tetcd_del(&etcd, key);
	else
		rc = value ? tzk_put(&zk, key, value) : tzk_del(&zk, key);
	cr_assert_eq(rc, 0, "%s %s in %s", value ? "write" : "delete", key,
		     where == REG_ETCD ? "etcd" : "ZooKeeper");
}

/* The file registry: namespaces, web (stable and churned slices), and pod b
 * registering itself as an endpoint of reg in etcd and ZooKeeper.
 */
static void file_write(void)
{
	char yaml[8192], slice[2048];
	struct backend stable[2] = {
		{ .ip = stable_ip[0], .listed = true, .ready = true },
		{ .ip = stable_ip[1], .listed = true, .ready = true },
	};

	slice_json(slice, sizeof(slice), "web", "web-churn", 8080, web.b, web.n);
	snprintf(yaml, sizeof(yaml),
		 "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh\n  labels:\n"
		 "    weft.io/mesh: enabled\n"
		 "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: mesh\n"
		 "spec:\n  clusterIP: 198.19.0.10\n  ports:\n  - port: 80\n    targetPort: 8080\n"
		 "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: reg\n  namespace: mesh\n"
		 "spec:\n  clusterIP: 198.19.0.40\n  ports:\n  - port: 80\n    targetPort: 8080\n"
		 "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: client-b\n  namespace: mesh\n"
		 "  annotations:\n    weft.io/register: \"reg:8080\"\n"
		 "---\n%s\n---\n",
		 slice);
	/* JSON is YAML: the slices are the same text as in etcd and ZooKeeper. */
	slice_json(slice, sizeof(slice), "web", "web-stable", 8080, stable, 2);
	cr_assert_lt(strlen(yaml) + strlen(slice) + 2, sizeof(yaml));
	strcat(yaml, slice);
	strcat(yaml, "\n");
	cr_assert_eq(tenv_write_registry(&env, yaml), 0, "write the registry file");
}

static void svc_write(const struct svc *s)
{
	char rel[128], json[2048];

	if (s->reg == REG_FILE) {
		file_write();
		return;
	}
	snprintf(rel, sizeof(rel), "endpointslices/mesh/%s-churn", s->name);
	slice_json(json, sizeof(json), s->name, rel + strlen("endpointslices/mesh/"), s->port,
		   s->b, s->n);
	/* No endpoint listed: the slice goes, which a watch sees as a delete. */
	for (int i = 0; i < s->n; i++) {
		if (s->b[i].listed) {
			kv_write(s->reg, rel, json);
			return;
		}
	}
	kv_write(s->reg, rel, NULL);
}

/* The service's stable slice and the Service itself, in etcd or ZooKeeper. */
static void svc_init(const struct svc *s)
{
	struct backend stable[2] = {
		{ .ip = stable_ip[0], .listed = true, .ready = true },
		{ .ip = stable_ip[1], .listed = true, .ready = true },
	};
	char rel[128], json[2048];

	snprintf(rel, sizeof(rel), "services/mesh/%s", s->name);
	svc_json(json, sizeof(json), s->name, s->vip, s->port);
	kv_write(s->reg, rel, json);
	snprintf(rel, sizeof(rel), "endpointslices/mesh/%s-stable", s->name);
	slice_json(json, sizeof(json), s->name, rel + strlen("endpointslices/mesh/"), s->port,
		   stable, 2);
	kv_write(s->reg, rel, json);
}

/* The registry source of @rs in /v1/status: its health, or "" if unknown. */
static void reg_health(const struct regsrv *rs, char *out, size_t len)
{
	json_object *o = tenv_admin_get(&env, "/v1/status"), *regs, *r, *v;

	out[0] = '\0';
	if (!o || !json_object_object_get_ex(o, "registries", &regs))
		goto out;
	for (size_t i = 0; i < json_object_array_length(regs); i++) {
		r = json_object_array_get_idx(regs, i);
		if (json_object_object_get_ex(r, "name", &v) &&
		    !strncmp(json_object_get_string(v), rs->status_prefix,
			     strlen(rs->status_prefix)) &&
		    json_object_object_get_ex(r, "health", &v))
			snprintf(out, len, "%s", json_object_get_string(v));
	}
out:
	json_object_put(o);
}

static bool reg_synced(const struct regsrv *rs)
{
	char h[32];

	reg_health(rs, h, sizeof(h));
	return !strcmp(h, "synced");
}

/* Whether the agent's catalogue lists @ip:@port among @s's endpoints: 1, 0,
 * or -1 when the admin API did not answer.
 */
static int agent_lists(const struct svc *s, const char *ip)
{
	char path[128], want[64];
	json_object *o, *svcs, *eps, *v;
	int found = 0;

	snprintf(path, sizeof(path), "/v1/services?service=mesh/%s", s->name);
	snprintf(want, sizeof(want), "%s:%u", ip, s->port);
	o = tenv_admin_get(&env, path);
	if (!o || !json_object_object_get_ex(o, "services", &svcs)) {
		json_object_put(o);
		return -1;
	}
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		if (!json_object_object_get_ex(json_object_array_get_idx(svcs, i), "endpoints",
					       &eps))
			continue;
		for (size_t j = 0; j < json_object_array_length(eps); j++) {
			if (json_object_object_get_ex(json_object_array_get_idx(eps, j), "address",
						      &v) &&
			    !strcmp(json_object_get_string(v), want))
				found = 1;
		}
	}
	json_object_put(o);
	return found;
}

/* Wait until the agent no longer lists @b of @s. false if it still did
 * after CONVERGE_MS (counted in st.stuck).
 */
static bool wait_unlisted(const struct svc *s, const struct backend *b)
{
	uint64_t t0 = tproc_now_ms();
	long took;

	while (agent_lists(s, b->ip) != 0) {
		if (tproc_now_ms() - t0 > CONVERGE_MS) {
			fprintf(stderr, "soak: %7.1f s: the agent still lists %s %s:%u %d ms after its removal\n",
				secs(), s->name, b->ip, s->port, CONVERGE_MS);
			st.stuck++;
			return false;
		}
		usleep(50000);
	}
	took = (long)(tproc_now_ms() - t0);
	if (took > st.converge_max_ms)
		st.converge_max_ms = took;
	return true;
}

/* ------------------------------------------------------------ churn */

static void backend_up(const struct svc *s, struct backend *b)
{
	char name[32];

	if (s->srv == SRV_ALWAYS || b->srv > 0)
		return;
	snprintf(name, sizeof(name), "%s-%s", s->name, strrchr(b->ip, '.') + 1);
	b->srv = s->srv == SRV_LINE ? tsrv_start("s", b->ip, s->port, name)
				    : tsrv_start_http("s", b->ip, s->port, name, 200, 0);
	cr_assert_gt(b->srv, 0, "start %s on %s:%u", name, b->ip, s->port);
}

static void backend_down(const struct svc *s, struct backend *b)
{
	if (s->srv == SRV_ALWAYS)
		return;
	tsrv_stop(b->srv);
	b->srv = 0;
}

/* A backend the registry no longer lists is stopped only once the agent
 * applied that, as a terminating pod is: whatever the agent balances to is
 * always serving, except during a crash.
 */
static void churn_remove(struct svc *s, struct backend *b)
{
	b->listed = false;
	svc_write(s);
	st.removes++;
	if (!wait_unlisted(s, b))
		return;		/* leave it serving: stopping it would fail clients */
	usleep(GRACE_MS * 1000);
	backend_down(s, b);
}

/* A web backend dies while listed and ready; the registry is told
 * CRASH_NOTICE_MS later. Connections open on it at that moment fail, which
 * is expected (soak_load.c); new ones must not: the proxy retries refused
 * connects elsewhere and ejects the endpoint.
 */
static void churn_crash(struct svc *s, struct backend *b, struct soak_shared *sh)
{
	atomic_fetch_add(&sh->crash_epoch, 1);
	backend_down(s, b);
	st.crashes++;
	fprintf(stderr, "soak: %7.1f s: web backend %s killed while listed and ready\n", secs(),
		b->ip);
	usleep(CRASH_NOTICE_MS * 1000);
	b->listed = false;
	svc_write(s);
	wait_unlisted(s, b);
	usleep(GRACE_MS * 1000);
	atomic_fetch_add(&sh->crash_epoch, 1);
}

static void churn_svc(struct svc *s, struct soak_shared *sh)
{
	int listed = 0, pick, op;
	struct backend *b;

	for (int i = 0; i < s->n; i++)
		listed += s->b[i].listed;
	/* 0: add, 1: flip ready, 2: remove (or, for web, now and then crash) */
	op = listed == 0 ? 0 : listed == s->n ? 1 + rand_r(&st.rand) % 2 : rand_r(&st.rand) % 3;
	do {
		pick = rand_r(&st.rand) % s->n;
		b = &s->b[pick];
	} while (b->listed != (op != 0));
	if (op == 0) {
		backend_up(s, b);
		b->listed = true;
		b->ready = rand_r(&st.rand) % 4 != 0;
		svc_write(s);
		st.adds++;
	} else if (op == 1) {
		b->ready = !b->ready;
		svc_write(s);
		st.flips++;
	} else if (s == &web && b->ready && rand_r(&st.rand) % 2 == 0) {
		churn_crash(s, b, sh);
	} else {
		churn_remove(s, b);
	}
}

/* The service tmp (in etcd) comes and goes; once there, a meshed pod must
 * reach it.
 */
static void churn_tmp(void)
{
	char json[2048], out[256];
	struct backend one = { .ip = stable_ip[0], .listed = true, .ready = true };
	uint64_t t0 = tproc_now_ms();

	if (st.tmp_listed) {
		kv_write(REG_ETCD, "services/mesh/tmp", NULL);
		kv_write(REG_ETCD, "endpointslices/mesh/tmp-1", NULL);
		st.tmp_listed = false;
		st.svc_dels++;
		return;
	}
	slice_json(json, sizeof(json), "tmp", "tmp-1", 8080, &one, 1);
	kv_write(REG_ETCD, "endpointslices/mesh/tmp-1", json);
	svc_json(json, sizeof(json), "tmp", TMP_VIP, 8080);
	kv_write(REG_ETCD, "services/mesh/tmp", json);
	st.tmp_listed = true;
	st.svc_adds++;
	while (tsock_ident("b", TMP_VIP, out, sizeof(out)) || strncmp(out, "web-", 4)) {
		if (tproc_now_ms() - t0 > CONVERGE_MS) {
			fprintf(stderr, "soak: %7.1f s: service tmp never answered\n", secs());
			st.stuck++;
			return;
		}
		usleep(100000);
	}
}

static void churn_once(struct soak_shared *sh)
{
	int r = rand_r(&st.rand) % 10;

	if (r < 3)
		churn_svc(&web, sh);
	else if (r < 6 && etcd_rs.phase != DOWN)
		churn_svc(&kv, sh);
	else if (r < 9 && zk_rs.phase != DOWN)
		churn_svc(&echo, sh);
	else if (r == 9 && etcd_rs.phase != DOWN)
		churn_tmp();
}

/* A pod enrolled through weft-cni is meshed when ADD returns: its first
 * connections go through the agent; then it is removed.
 */
static void cni_cycle(void)
{
	char pod[32], out[4096];
	int rc;

	snprintf(pod, sizeof(pod), "churn-%ld", st.cni_cycles);
	st.cni_cycles++;
	rc = tenv_cni(&env, "ADD", "d", "mesh", pod, "198.18.5.2", out, sizeof(out));
	if (rc) {
		fprintf(stderr, "soak: %7.1f s: weft-cni ADD %s: %d: %s\n", secs(), pod, rc, out);
		st.cni_failed++;
		return;
	}
	for (int i = 0; i < CNI_IDENTS; i++) {
		rc = tsock_ident("d", SOAK_WEB_VIP, out, sizeof(out));
		if (rc || strncmp(out, "web-", 4)) {
			fprintf(stderr, "soak: %7.1f s: pod %s: IDENT: %s\n", secs(), pod,
				rc ? strerror(-rc) : out);
			st.cni_failed++;
		}
	}
	rc = tenv_cni(&env, "DEL", "d", "mesh", pod, "198.18.5.2", out, sizeof(out));
	if (rc) {
		fprintf(stderr, "soak: %7.1f s: weft-cni DEL %s: %d: %s\n", secs(), pod, rc, out);
		st.cni_failed++;
	}
}

/* ------------------------------------------------------------ restarts */

static void regsrv_kill(struct regsrv *rs)
{
	if (rs == &etcd_rs)
		tetcd_kill(&etcd);
	else
		tzk_kill(&zk);
}

static int regsrv_restart(struct regsrv *rs)
{
	return rs == &etcd_rs ? tetcd_restart(&etcd) : tzk_restart(&zk);
}

/* One step of @rs's restart cycle: up → killed → started again → the
 * agent synced again. The churn goes on meanwhile, without writing to a
 * server that is down.
 */
static void regsrv_tick(struct regsrv *rs, uint64_t now, uint64_t end)
{
	char h[32];

	switch (rs->phase) {
	case UP:
		if (now < rs->next_ms || now + 4 * DOWN_MS > end)
			return;
		regsrv_kill(rs);
		rs->phase = DOWN;
		rs->since_ms = now;
		rs->stale_seen = false;
		rs->restarts++;
		fprintf(stderr, "soak: %7.1f s: %s killed\n", secs(), rs->name);
		return;
	case DOWN:
		reg_health(rs, h, sizeof(h));
		rs->stale_seen |= !strcmp(h, "stale");
		if (now - rs->since_ms < DOWN_MS)
			return;
		cr_assert_eq(regsrv_restart(rs), 0, "%s did not start again", rs->name);
		rs->phase = RESYNCING;
		rs->since_ms = tproc_now_ms();
		return;
	case RESYNCING:
		reg_health(rs, h, sizeof(h));
		rs->stale_seen |= !strcmp(h, "stale");
		if (strcmp(h, "synced"))
			return;
		rs->phase = UP;
		rs->resynced++;
		rs->seen_stale += rs->stale_seen;
		if ((long)(now - rs->since_ms) > rs->resync_max_ms)
			rs->resync_max_ms = (long)(now - rs->since_ms);
		rs->next_ms += restart_ms;
		fprintf(stderr, "soak: %7.1f s: %s back, the agent %s and synced in %llu ms\n",
			secs(), rs->name, rs->stale_seen ? "went stale" : "never went stale",
			(unsigned long long)(now - rs->since_ms));
		return;
	}
}

/* ------------------------------------------------------------ the suite */

static void servers_start(void)
{
	char name[32];

	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "web-%s", strrchr(stable_ip[i], '.') + 1);
		stable_srv[2 * i] = tsrv_start("s", stable_ip[i], web.port, name);
		snprintf(name, sizeof(name), "kv-%s", strrchr(stable_ip[i], '.') + 1);
		stable_srv[2 * i + 1] = tsrv_start_http("s", stable_ip[i], kv.port, name, 200, 0);
		snprintf(name, sizeof(name), "echo-%s", strrchr(stable_ip[i], '.') + 1);
		stable_srv[4 + i] = tsrv_start("s", stable_ip[i], echo.port, name);
	}
	for (int i = 0; i < 6; i++)
		cr_assert_gt(stable_srv[i], 0, "stable server %d did not start", i);
	for (int i = 0; i < echo.n; i++) {
		snprintf(name, sizeof(name), "echo-%s", strrchr(echo.b[i].ip, '.') + 1);
		echo_srv[i] = tsrv_start("s", echo.b[i].ip, echo.port, name);
		cr_assert_gt(echo_srv[i], 0, "echo server %s did not start", echo.b[i].ip);
	}
}

/* AddressSanitizer keeps freed memory in a quarantine, 256 MiB by default,
 * to catch uses after free, and its allocator returns no free page to the
 * kernel unless asked: the agent's resident memory would climb for many
 * minutes whatever the agent does. A smaller quarantine, full within the
 * warm-up, and free pages given back every few seconds leave in the
 * resident size what the agent holds.
 */
static void asan_options(void)
{
	const char *cur = getenv("ASAN_OPTIONS");
	char opts[1024];

	snprintf(opts, sizeof(opts),
		 "%s%squarantine_size_mb=%d:allocator_release_to_os_interval_ms=%d",
		 cur ? cur : "", cur && *cur ? ":" : "", ASAN_QUARANTINE_MB, ASAN_RELEASE_MS);
	cr_assert_eq(setenv("ASAN_OPTIONS", opts, 1), 0);
}

static void up(void)
{
	char r[64], d[64], s[64];
	uint64_t t0;

	tenv_setup(&env);
	/* Pod d, enrolled and removed by the churn, and the churned backends'
	 * addresses in netns s.
	 */
	tns_name("r", r, sizeof(r));
	tns_name("d", d, sizeof(d));
	tns_name("s", s, sizeof(s));
	cr_assert_eq(tns_add("d"), 0);
	cr_assert_eq(tns_link("d", "r"), 0);
	cr_assert_eq(tns_sh("ip -n %s addr add 198.18.5.2/24 dev d-r && "
			    "ip -n %s route add default via 198.18.5.1 && "
			    "ip -n %s addr add 198.18.5.1/24 dev r-d && "
			    "for i in 21 22 23 24 25 26; do "
			    "ip -n %s addr add 198.18.2.$i/24 dev s-r || exit 1; done",
			    d, d, r, s),
		     0, "pod d and the churned backends' addresses");
	file_write();
	cr_assert_eq(tetcd_start(&etcd), 0, "etcd did not start, see %s", etcd.dir);
	cr_assert_eq(tzk_start(&zk), 0, "ZooKeeper did not start, see %s", zk.dir);
	svc_init(&kv);
	svc_init(&echo);
	snprintf(env.extra_args, sizeof(env.extra_args),
		 "--registry etcd:%s --etcd-prefix /soak/ --etcd-lease-ttl 5 "
		 "--registry zookeeper:%s/soak --zk-session-timeout 10000 --node-name " NODE
		 " --log-level info",
		 etcd.url, zk.hosts);
	asan_options();
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
	t0 = tproc_now_ms();
	while (!(reg_synced(&etcd_rs) && reg_synced(&zk_rs))) {
		cr_assert_lt(tproc_now_ms() - t0, 20000, "the registries never synced, see %s",
			     env.agent_log);
		usleep(50000);
	}
	fixture_enroll("a", "mesh", "client-a", "198.18.1.2");
	fixture_enroll("b", "mesh", "client-b", "198.18.3.2");
	servers_start();
}

static void down(void)
{
	for (int i = 0; i < 6; i++) {
		tsrv_stop(stable_srv[i]);
		tsrv_stop(echo_srv[i]);
		tsrv_stop(web.b[i].srv);
		tsrv_stop(kv.b[i].srv);
	}
	if (env.agent > 0)
		(void)tenv_agent_stop(&env);
	tetcd_stop(&etcd);
	tzk_stop(&zk);
	tenv_teardown(&env);
}

/* Suite timeout: the longest run, $WEFT_SOAK_SECONDS at most 3 h, plus
 * set-up and the final checks; every wait inside has its own bound.
 */
TestSuite(soak, .init = up, .fini = down, .timeout = 3 * 3600 + 600);

static unsigned int soak_seconds(void)
{
	const char *v = getenv("WEFT_SOAK_SECONDS");
	long n = v ? strtol(v, NULL, 10) : SECONDS_DEFAULT;

	return n < SECONDS_MIN ? SECONDS_MIN : n > 3 * 3600 ? 3 * 3600 : (unsigned int)n;
}

/* Each kind of load, the pods it runs in. */
static const struct {
	enum soak_kind kind;
	const char *ns;
} loads[] = {
	{ SOAK_CONNS, "a" }, { SOAK_CONNS, "b" }, { SOAK_HTTP, "a" },  { SOAK_HTTP, "b" },
	{ SOAK_STREAM, "a" }, { SOAK_STREAM, "b" }, { SOAK_LONG, "a" }, { SOAK_LONG, "b" },
};
#define N_LOADS (sizeof(loads) / sizeof(loads[0]))

/* One sample of the agent, @t s into the run. */
static void sample(pid_t agent, double t, struct soak_sample *s)
{
	long long heap = tenv_status_counter(&env, "heap_bytes");

	s->t = t;
	cr_assert_eq(soak_sample_proc(agent, s), 0, "the agent is gone, see %s", env.agent_log);
	/* An admin call that failed (a busy moment) leaves the value unknown. */
	s->v[SOAK_HEAP] = heap < 0 ? -1 : (long)(heap / 1024);
}

/* What the agent counted, read before it stops. */
struct agent_end {
	long long retries, exhausted, ejections;
	int status;		/* its exit status */
};

static void report(unsigned int seconds, const struct soak_shared *sh,
		   const struct soak_sample *smp, const struct soak_window *w,
		   const struct agent_end *a)
{
	fprintf(stderr, "soak: summary (%u s, %s mode, seed %u)\n", seconds, tenv_mode(), st.seed);
	for (int k = 0; k < SOAK_KINDS; k++) {
		const struct soak_counts *c = &sh->c[k];

		fprintf(stderr, "soak:   %-32s ok %ld, connections %ld, failed %ld, expected %ld, "
			"bypassed %ld\n",
			soak_kind_name[k], atomic_load(&c->ok), atomic_load(&c->opened),
			atomic_load(&c->failed), atomic_load(&c->expected),
			atomic_load(&c->bypassed));
	}
	fprintf(stderr, "soak:   stream bytes echoed %ld (long streams %ld)\n",
		atomic_load(&sh->c[SOAK_STREAM].bytes) + atomic_load(&sh->c[SOAK_LONG].bytes),
		atomic_load(&sh->c[SOAK_LONG].bytes));
	fprintf(stderr, "soak:   churn: %ld adds, %ld ready flips, %ld removes, %ld crashes, "
		"service tmp added %ld / removed %ld; slowest removal applied in %ld ms; stuck %ld\n",
		st.adds, st.flips, st.removes, st.crashes, st.svc_adds, st.svc_dels,
		st.converge_max_ms, st.stuck);
	fprintf(stderr, "soak:   pods through weft-cni: %ld ADD/DEL cycles, %ld failures\n",
		st.cni_cycles, st.cni_failed);
	fprintf(stderr, "soak:   registry restarts: etcd %d (stale seen %d, resynced %d, slowest "
		"%ld ms), ZooKeeper %d (stale seen %d, resynced %d, slowest %ld ms)\n",
		etcd_rs.restarts, etcd_rs.seen_stale, etcd_rs.resynced, etcd_rs.resync_max_ms,
		zk_rs.restarts, zk_rs.seen_stale, zk_rs.resynced, zk_rs.resync_max_ms);
	fprintf(stderr, "soak:   agent: retries %lld, retry budget refusals %lld, ejections %lld; "
		"exit status %d\n",
		a->retries, a->exhausted, a->ejections, a->status);
	fprintf(stderr, "soak:   warm-up until %.0f s, early half until %.0f s, late half until "
		"%.0f s\n",
		smp[w->warm].t, smp[w->mid].t, smp[w->n - 1].t);
	for (enum soak_field f = 0; f < SOAK_FIELDS; f++)
		fprintf(stderr, "soak:   %-13s start %ld, min %ld, max %ld, end %ld; early peak %ld, "
			"late peak %ld, slope after the warm-up %.1f /min\n",
			soak_field_name[f], smp[0].v[f], soak_least(smp, 0, w->n, f),
			soak_peak(smp, 0, w->n, f), smp[w->n - 1].v[f],
			soak_peak(smp, w->warm, w->mid, f), soak_peak(smp, w->mid, w->n, f),
			soak_slope_per_min(smp, w->warm, w->n, f));
}

static void expect_flat(const struct soak_sample *smp, const struct soak_window *w,
			enum soak_field f, long tol, long tol_pct)
{
	long allowed;

	cr_expect(soak_flat(smp, w, f, tol, tol_pct, &allowed),
		  "%s grew: late peak %ld, early peak %ld (+%ld allowed)", soak_field_name[f],
		  soak_peak(smp, w->mid, w->n, f), soak_peak(smp, w->warm, w->mid, f), allowed);
}

static void verdict(const struct soak_shared *sh, const struct soak_sample *smp,
		    const struct soak_window *w, const struct agent_end *a)
{
	char out[64];
	long failed = 0;

	cr_expect_eq(a->status, 0, "the agent exited with %d (a sanitizer report?), see %s",
		     a->status, env.agent_log);
	/* grep exits 1 when nothing matched. */
	cr_expect_eq(tenv_capture(out, sizeof(out),
				  "grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' %s",
				  env.agent_log),
		     1, "a sanitizer report in %s", env.agent_log);
	for (int k = 0; k < SOAK_KINDS; k++) {
		failed += atomic_load(&sh->c[k].failed) + atomic_load(&sh->c[k].bypassed);
		cr_expect_gt(atomic_load(&sh->c[k].ok) + atomic_load(&sh->c[k].bytes), 0,
			     "no %s succeeded", soak_kind_name[k]);
	}
	cr_expect_eq(failed, 0, "%ld unexpected client failures (see the lines above)", failed);
	cr_expect_eq(st.cni_failed, 0, "%ld failures of pods enrolled through weft-cni",
		     st.cni_failed);
	cr_expect_eq(st.stuck, 0, "%ld registry changes the agent never applied", st.stuck);
	cr_expect_geq(etcd_rs.restarts, 1, "etcd was never restarted");
	cr_expect_geq(zk_rs.restarts, 1, "ZooKeeper was never restarted");
	cr_expect_eq(etcd_rs.resynced, etcd_rs.restarts, "the agent did not resync with etcd");
	cr_expect_eq(zk_rs.resynced, zk_rs.restarts, "the agent did not resync with ZooKeeper");
	cr_expect_eq(etcd_rs.seen_stale, etcd_rs.restarts, "etcd down, yet never stale");
	cr_expect_eq(zk_rs.seen_stale, zk_rs.restarts, "ZooKeeper down, yet never stale");
	cr_expect_gt(soak_peak(smp, 0, w->n, SOAK_HEAP), 0, "the agent never reported its heap");
	expect_flat(smp, w, SOAK_HEAP, HEAP_TOL_KIB, HEAP_TOL_PCT);
	expect_flat(smp, w, SOAK_RSS, RSS_TOL_KIB, RSS_TOL_PCT);
	expect_flat(smp, w, SOAK_FDS, FDS_TOL, FDS_TOL_PCT);
}

Test(soak, churn_and_registry_restarts_leave_no_leak_no_error_and_flat_memory)
{
	const unsigned int seconds = soak_seconds();
	const uint64_t dur_ms = seconds * 1000ULL;
	size_t max_samples = dur_ms / SAMPLE_MS + 8, n = 0;
	struct soak_sample *smp = calloc(max_samples, sizeof(*smp));
	struct soak_shared *sh = soak_shared_new();
	uint64_t now, end, next_sample, next_churn, next_cni;
	pid_t load_pid[N_LOADS], agent = env.agent;
	const char *seed = getenv("WEFT_SOAK_SEED");
	struct soak_window w;
	struct agent_end a;
	char out[256];
	int status;

	cr_assert_not_null(smp);
	cr_assert_not_null(sh, "mmap: %s", strerror(errno));
	st.seed = seed ? (unsigned int)strtoul(seed, NULL, 10) : (unsigned int)getpid();
	st.rand = st.seed;
	cr_assert_eq(tsock_ident("a", SOAK_WEB_VIP, out, sizeof(out)), 0, "web before the load");
	fprintf(stderr, "soak: %u s, %s mode, seed %u (WEFT_SOAK_SEED), agent pid %d\n", seconds,
		tenv_mode(), st.seed, (int)agent);

	st.t0_ms = sh->t0_ms = tproc_now_ms();
	for (size_t i = 0; i < N_LOADS; i++) {
		load_pid[i] = soak_load_start(sh, loads[i].kind, loads[i].ns);
		cr_assert_gt(load_pid[i], 0, "fork: %s", strerror(errno));
	}
	now = st.t0_ms;
	end = now + dur_ms;
	next_sample = next_churn = now;
	next_cni = now + CNI_MS / 2;
	/* A minute apart, or closer in a short run: at least two of each. */
	restart_ms = dur_ms / 3 < RESTART_MS ? dur_ms / 3 : RESTART_MS;
	etcd_rs.next_ms = now + restart_ms / 2;
	zk_rs.next_ms = now + restart_ms;
	/* Past the end, only a restart still going on is waited for. */
	while ((now = tproc_now_ms()) < end ||
	       ((etcd_rs.phase != UP || zk_rs.phase != UP) && now < end + CONVERGE_MS)) {
		if (now >= next_sample && n < max_samples - 1) {
			sample(agent, (double)(now - st.t0_ms) / 1000, &smp[n]);
			fprintf(stderr, "soak: %7.1f s: agent rss %ld KiB (anon %ld, heap %ld), "
				"fds %ld; ok %ld/%ld/%ld/%ld\n",
				smp[n].t, smp[n].v[SOAK_RSS], smp[n].v[SOAK_ANON], smp[n].v[SOAK_HEAP],
				smp[n].v[SOAK_FDS], atomic_load(&sh->c[SOAK_CONNS].ok),
				atomic_load(&sh->c[SOAK_HTTP].ok), atomic_load(&sh->c[SOAK_STREAM].ok),
				atomic_load(&sh->c[SOAK_LONG].bytes));
			n++;
			next_sample += SAMPLE_MS;
		}
		regsrv_tick(&etcd_rs, now, end);
		regsrv_tick(&zk_rs, now, end);
		if (now < end && now >= next_churn) {
			churn_once(sh);
			next_churn += CHURN_MS;
		}
		if (now < end && now >= next_cni) {
			cni_cycle();
			next_cni += CNI_MS;
		}
		usleep(100000);
	}

	/* The end: the load stops, its connections close, then the agent. */
	atomic_store(&sh->stop, true);
	for (size_t i = 0; i < N_LOADS; i++) {
		cr_assert_eq(waitpid(load_pid[i], &status, 0), load_pid[i]);
		cr_expect(WIFEXITED(status) && !WEXITSTATUS(status), "load %zu ended with %#x", i,
			  status);
	}
	usleep(2000000);
	sample(agent, (double)(tproc_now_ms() - st.t0_ms) / 1000, &smp[n++]);
	a.retries = tenv_status_counter(&env, "resilience.retries");
	a.exhausted = tenv_status_counter(&env, "resilience.retry_budget_exhausted");
	a.ejections = tenv_status_counter(&env, "resilience.ejections");
	a.status = tenv_agent_stop(&env);

	w = soak_window(smp, n, (double)(dur_ms / 3 < WARMUP_MS_MAX ? dur_ms / 3 : WARMUP_MS_MAX) /
					1000);
	report(seconds, sh, smp, &w, &a);
	verdict(sh, smp, &w, &a);
	soak_shared_free(sh);
	free(smp);
}
