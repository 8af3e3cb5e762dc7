// SPDX-License-Identifier: GPL-2.0-only
/* agent/registry/file.c with real files and real inotify in a temp folder,
 * feeding a model through a sink as in the agent (the registry reloads on
 * its own thread; the test waits for its counters, then drains the sink):
 * loading the YAML and JSON fixtures, reloads on write, atomic rename,
 * delete/recreate and a ConfigMap-style ..data symlink swap; a bad file
 * changing nothing; a bad object skipped while its previous version stays;
 * a reload sending only what changed; a reload parsing only the documents
 * that changed; the reload thread at nice 19.
 * Run from the top of the tree (fixtures in tests/fixtures/).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "log.h"
#include "loop.h"
#include "model/model.h"
#include "registry/file.h"

#define FIXTURES "tests/fixtures/"
#define WAIT_MS 5000		/* generous: events arrive within microseconds */
#define QUIET_MS 300		/* how long "nothing happens" is watched */

static char dir[256];
static struct loop *loop;
static struct reg_sink *sink;	/* into the test's model */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/weft-test-registry-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	/* Keep the expected warnings of the bad-input tests out of the way. */
	log_set_level(LOG_LEVEL_ERR);
}

static void teardown(void)
{
	reg_sink_free(sink);
	loop_free(loop);
	(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(file_registry, .init = setup, .fini = teardown);

static const char *in_dir(const char *name)
{
	static char p[2][PATH_MAX + 256];
	static int which;

	which ^= 1;
	snprintf(p[which], sizeof(p[which]), "%s/%s", dir, name);
	return p[which];
}

/* The file registry of @path into @m (one model per test), as the agent
 * starts it: what it sent at start is applied on return.
 */
static struct reg_file *file_new(const char *path, struct model *m)
{
	char source[PATH_MAX + 8];
	struct reg_file *r;
	int err;

	if (!sink) {
		loop = loop_new();
		cr_assert_not_null(loop);
		sink = reg_sink_new(loop, m, NULL, NULL);
		cr_assert_not_null(sink);
	}
	snprintf(source, sizeof(source), "file:%s", path);
	r = reg_file_new(source, path, sink);
	err = errno;
	reg_sink_drain(sink);
	errno = err;
	return r;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	cr_assert_not_null(f, "cannot open %s (run from the top of the tree)", path);
	cr_assert_eq(getdelim(&buf, &len, '\0', f) > 0, 1);
	fclose(f);
	return buf;
}

/* Write in place: open, truncate, write, close (IN_CLOSE_WRITE). */
static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_neq(fd, -1, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	cr_assert_eq(close(fd), 0);
}

/* What editors and config tools do: write a temp file, rename it over. */
static void write_atomic(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	write_file(tmp, text);
	cr_assert_eq(rename(tmp, path), 0);
}

static void copy_fixture(const char *fixture, const char *path)
{
	char *text = slurp(fixture);

	write_file(path, text);
	free(text);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static struct reg_file_stats stats_of(struct reg_file *r)
{
	struct reg_file_stats st;

	reg_file_stats(r, &st);
	return st;
}

/* Wait up to @ms for the registry's thread to count, since @before, a
 * reload (its events are then in the sink, and applied to the model on
 * return) or, with @errors, a rejected one. Whether it did.
 */
static bool counted_within(struct reg_file *r, const struct reg_file_stats *before, bool errors,
			   int ms)
{
	long long deadline = now_ms() + ms;

	for (;;) {
		struct reg_file_stats st = stats_of(r);

		if (errors ? st.load_errors > before->load_errors : st.loads > before->loads) {
			reg_sink_drain(sink);
			return true;
		}
		if (now_ms() >= deadline)
			return false;
		usleep(1000);
	}
}

/* Since @before, the file changed and its reload is applied (a rejected
 * reload on the way, as between ln -sfn's unlink and symlink, is fine).
 */
static void expect_change(struct reg_file *r, const struct reg_file_stats *before)
{
	cr_assert(counted_within(r, before, false, WAIT_MS), "no reload seen");
}

/* Write @text over @path and wait for the registry to reload it. */
static void reload(struct reg_file *r, const char *path, const char *text)
{
	struct reg_file_stats b = stats_of(r);

	write_atomic(path, text);
	expect_change(r, &b);
}

/* Write @text over @path, wait for the reload, and check how many documents
 * it parsed and how many it took as they were. The figures after it.
 */
static struct reg_file_stats reload_parsing(struct reg_file *r, const char *path,
					    const char *text, uint64_t parsed, uint64_t reused)
{
	struct reg_file_stats b = stats_of(r), st;

	reload(r, path, text);
	st = stats_of(r);
	cr_assert_eq(st.docs_parsed - b.docs_parsed, parsed);
	cr_assert_eq(st.docs_reused - b.docs_reused, reused);
	return st;
}

/* Since @before, a reload was rejected, and not reported as a change. */
static void expect_load_error(struct reg_file *r, const struct reg_file_stats *before)
{
	cr_assert(counted_within(r, before, true, WAIT_MS), "the bad file was not noticed");
	cr_assert_eq(stats_of(r).load_errors, before->load_errors + 1);
	cr_assert_eq(stats_of(r).loads, before->loads, "a rejected file was reported as a change");
}

/* Since @before, nothing happens for QUIET_MS. */
static void expect_quiet(struct reg_file *r, const struct reg_file_stats *before)
{
	cr_assert_not(counted_within(r, before, false, QUIET_MS), "a reload where none was due");
	cr_assert_eq(stats_of(r).load_errors, before->load_errors);
}

static struct cat_svc_port *vip(const struct catalogue *c, const char *ip_port)
{
	struct addr a;

	cr_assert_eq(addr_parse_ip_port(ip_port, &a), 0);
	return catalogue_find_vip(c, &a);
}

static bool has_vip(struct model *m, const char *ip_port)
{
	struct catalogue *c = model_build(m);
	bool found;

	cr_assert_not_null(c);
	found = vip(c, ip_port) != NULL;
	catalogue_unref(c);
	return found;
}

static const char *service(const char *name, const char *ip)
{
	static char buf[2][512];
	static int which;

	which ^= 1;
	snprintf(buf[which], sizeof(buf[which]),
		 "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: shop}\n"
		 "spec: {clusterIP: %s, ports: [{port: 80}]}\n",
		 name, ip);
	return buf[which];
}

Test(file_registry, loads_yaml_fixture)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct cat_svc_port *sp;
	struct reg_file *r;
	struct catalogue *c;
	char a[ADDR_STRLEN];

	copy_fixture(FIXTURES "registry.yaml", path);
	r = file_new(path, m);
	cr_assert_not_null(r, "%s", strerror(errno));
	cr_assert_str_eq(reg_file_path(r), path);
	cr_assert_eq(stats_of(r).loads, 1);
	cr_assert_eq(stats_of(r).objects_rejected, 0);
	cr_assert_str_eq(stats_of(r).last_error, "");
	c = model_build(m);
	cr_assert(catalogue_ns_meshed(c, "shop"));
	cr_assert_not(catalogue_ns_meshed(c, "legacy"));
	cr_assert(catalogue_pod_opted_out(c, "shop", "nightly-report-28391"));
	cr_assert_not(catalogue_pod_opted_out(c, "shop", "web-6d8f7b9c4-abcde"));
	cr_assert_eq(catalogue_n_services(c), 4);
	/* web: 2 VIPs x 2 TCP ports; api: 1; db headless; old: 1. */
	cr_assert_eq(catalogue_n_svc_ports(c), 6);
	sp = vip(c, "198.19.0.10:80");
	cr_assert_not_null(sp);
	cr_assert_eq(sp->n_endpoints, 4, "4 IPv4 (one in two slices); the IPv6 one serves the IPv6 VIP");
	cr_assert_eq(sp->n_ready, 3);
	cr_assert_str_eq(addr_fmt(&sp->endpoints[0].addr, a, sizeof(a)), "198.18.1.1:8080");
	cr_assert(policy_override_has(sp->svc->policy, policy_knob_find("weft.io/connect-timeout")));
	cr_assert_eq(sp->svc->policy->v.connect_timeout_ms, 2000);
	cr_assert_not_null(vip(c, "[fd00:198:19::10]:9090"));
	sp = vip(c, "198.19.0.20:8080");
	cr_assert_not_null(sp);
	cr_assert_eq(sp->n_ready, 2);
	cr_assert_eq(sp->endpoints[1].addr.port, 80);
	cr_assert_null(vip(c, "198.19.0.10:514"), "UDP");
	catalogue_unref(c);
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, loads_json_list_fixture)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.json");
	struct cat_svc_port *sp;
	struct reg_file *r;
	struct catalogue *c;
	char a[ADDR_STRLEN];

	copy_fixture(FIXTURES "registry-list.json", path);
	r = file_new(path, m);
	cr_assert_not_null(r);
	c = model_build(m);
	cr_assert(catalogue_ns_meshed(c, "payments"));
	sp = vip(c, "198.19.1.5:9000");
	cr_assert_not_null(sp);
	cr_assert_eq(sp->n_endpoints, 2);
	cr_assert_str_eq(addr_fmt(&sp->endpoints[1].addr, a, sizeof(a)), "198.18.5.2:9000",
			 "the named targetPort resolved through the slice port");
	cr_assert_str_eq(sp->endpoints[1].zone, "zone-b");
	catalogue_unref(c);
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, unreadable_or_unparsable_file_fails_new)
{
	struct model *m = model_new();
	const char *path = in_dir("bad.yaml");

	errno = 0;
	cr_assert_null(file_new(in_dir("missing.yaml"), m));
	cr_assert_eq(errno, ENOENT);
	copy_fixture(FIXTURES "registry-bad-syntax.yaml", path);
	errno = 0;
	cr_assert_null(file_new(path, m));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(file_new(dir, m), "a directory is not a registry");
	model_free(m);
}

Test(file_registry, too_big_file_is_rejected)
{
	struct model *m = model_new();
	const char *path = in_dir("huge.yaml");
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	cr_assert_neq(fd, -1);
	/* Sparse: costs no disk. */
	cr_assert_eq(ftruncate(fd, (64 << 20) + 1), 0);
	close(fd);
	errno = 0;
	cr_assert_null(file_new(path, m));
	cr_assert_eq(errno, EFBIG);
	model_free(m);
}

Test(file_registry, reload_on_write_and_on_atomic_rename)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b;
	struct reg_file *r;

	write_file(path, service("web", "198.19.0.10"));
	r = file_new(path, m);
	cr_assert_not_null(r);
	cr_assert(has_vip(m, "198.19.0.10:80"));

	b = stats_of(r);
	write_file(path, service("web", "198.19.0.11"));
	expect_change(r, &b);
	cr_assert(has_vip(m, "198.19.0.11:80"));
	cr_assert_not(has_vip(m, "198.19.0.10:80"));

	reload(r, path, service("web", "198.19.0.12"));
	cr_assert(has_vip(m, "198.19.0.12:80"));
	cr_assert_not(has_vip(m, "198.19.0.11:80"));
	cr_assert_eq(stats_of(r).loads, 3);

	/* Other files of the folder are none of our business. */
	b = stats_of(r);
	write_file(in_dir("other.yaml"), service("web", "198.19.0.13"));
	expect_quiet(r, &b);
	cr_assert_eq(stats_of(r).loads, 3);
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, same_content_is_not_a_change)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b;
	struct reg_file *r;

	write_file(path, service("web", "198.19.0.10"));
	r = file_new(path, m);
	cr_assert_not_null(r);
	b = stats_of(r);
	write_file(path, service("web", "198.19.0.10"));
	expect_quiet(r, &b);
	cr_assert_eq(stats_of(r).loads, 1);
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, bad_file_keeps_previous_content)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b, st;
	struct reg_file *r;

	copy_fixture(FIXTURES "registry.yaml", path);
	r = file_new(path, m);
	cr_assert_not_null(r);

	b = stats_of(r);
	copy_fixture(FIXTURES "registry-bad-syntax.yaml", path);
	expect_load_error(r, &b);
	st = stats_of(r);
	cr_assert(strstr(st.last_error, path), "the error names the file: %s", st.last_error);
	cr_assert(strstr(st.last_error, "line 11, column 6: "), "and the position: %s",
		  st.last_error);
	cr_assert(has_vip(m, "198.19.0.10:80"), "the previous content stays in force");
	cr_assert(has_vip(m, "198.19.0.20:8080"));
	cr_assert_eq(st.loads, 1);

	/* Deleted: same thing, until it comes back. */
	b = stats_of(r);
	cr_assert_eq(unlink(path), 0);
	expect_load_error(r, &b);
	st = stats_of(r);
	cr_assert(strstr(st.last_error, "No such file"), "%s", st.last_error);
	cr_assert(has_vip(m, "198.19.0.10:80"));
	reload(r, path, service("api", "198.19.0.21"));
	cr_assert_str_eq(stats_of(r).last_error, "");
	cr_assert(has_vip(m, "198.19.0.21:80"));
	cr_assert_not(has_vip(m, "198.19.0.10:80"));
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, bad_object_rejected_rest_applies_previous_version_stays)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b;
	struct cat_svc_port *sp;
	struct reg_file *r;
	struct catalogue *c;

	copy_fixture(FIXTURES "registry.yaml", path);
	r = file_new(path, m);
	cr_assert_not_null(r);

	/* web gets a bad port, a Deployment and an FQDN slice come in, api
	 * stays as it was, and everything else is gone from the file.
	 */
	b = stats_of(r);
	copy_fixture(FIXTURES "registry-bad-objects.yaml", path);
	expect_change(r, &b);
	cr_assert_eq(stats_of(r).objects_rejected, 3);
	cr_assert_str_eq(stats_of(r).last_error,
			 "document 1: Service shop/web: spec.ports[1].port: must be an integer in "
			 "1..65535, got \"http\"");
	c = model_build(m);
	sp = vip(c, "198.19.0.10:80");
	cr_assert_not_null(sp, "web's previous version stays in force");
	cr_assert_not_null(vip(c, "[fd00:198:19::10]:9090"), "all of it: both VIPs, both ports");
	cr_assert_eq(sp->n_endpoints, 0, "its slices were removed from the file");
	cr_assert_not_null(vip(c, "198.19.0.20:8080"), "api applied");
	cr_assert_null(vip(c, "198.19.0.30:80"), "legacy/old was removed from the file");
	cr_assert_not(catalogue_ns_meshed(c, "shop"), "the Namespace was removed too");
	catalogue_unref(c);

	/* The kept version survives further reloads while the object stays bad... */
	{
		char *text = slurp(FIXTURES "registry-bad-objects.yaml");
		char *more;

		cr_assert_neq(asprintf(&more, "%s---\n%s", text, service("extra", "198.19.0.40")),
			      -1);
		b = stats_of(r);
		write_atomic(path, more);
		free(more);
		free(text);
	}
	expect_change(r, &b);
	cr_assert_eq(stats_of(r).objects_rejected, 6);
	cr_assert(has_vip(m, "198.19.0.10:80"), "web kept across a second bad reload");
	cr_assert(has_vip(m, "198.19.0.40:80"));
	/* ...and goes once the file no longer has it. */
	reload(r, path, "# nothing left\n");
	cr_assert_not(has_vip(m, "198.19.0.10:80"));
	cr_assert_str_eq(stats_of(r).last_error, "");
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, bad_object_without_previous_version_is_skipped)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file *r;

	copy_fixture(FIXTURES "registry-bad-objects.yaml", path);
	r = file_new(path, m);
	cr_assert_not_null(r, "bad objects do not fail the file");
	cr_assert_eq(stats_of(r).objects_rejected, 3);
	cr_assert_not(has_vip(m, "198.19.0.10:80"));
	cr_assert(has_vip(m, "198.19.0.20:8080"));
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, duplicate_object_in_one_file)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file *r;
	char text[1024];

	snprintf(text, sizeof(text), "%s---\n%s", service("web", "198.19.0.10"),
		 service("web", "198.19.0.11"));
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	cr_assert_eq(stats_of(r).objects_rejected, 1);
	cr_assert_str_eq(stats_of(r).last_error,
			 "document 2: Service shop/web: already defined in document 1");
	cr_assert(has_vip(m, "198.19.0.10:80"), "the first definition stays");
	cr_assert_not(has_vip(m, "198.19.0.11:80"));
	reg_file_free(r);
	model_free(m);
}

/* kubelet's ConfigMap update: new payload folder, "..data_tmp" symlink to
 * it renamed over "..data", then the old folder removed. The watched path is
 * a symlink through "..data". The change must be seen at the rename, before
 * the old folder goes (whose removal would otherwise hide a missed rename).
 */
static void configmap_swap(struct reg_file *r, const char *from, const char *to,
			   const char *text)
{
	char payload[PATH_MAX + 512];
	struct reg_file_stats b;

	cr_assert_eq(mkdir(in_dir(to), 0755), 0);
	snprintf(payload, sizeof(payload), "%s/registry.yaml", in_dir(to));
	write_file(payload, text);
	b = stats_of(r);
	cr_assert_eq(symlink(to, in_dir("..data_tmp")), 0);
	cr_assert_eq(rename(in_dir("..data_tmp"), in_dir("..data")), 0);
	expect_change(r, &b);
	/* Removing the old payload is no change. */
	b = stats_of(r);
	snprintf(payload, sizeof(payload), "%s/registry.yaml", in_dir(from));
	cr_assert_eq(unlink(payload), 0);
	cr_assert_eq(rmdir(in_dir(from)), 0);
	expect_quiet(r, &b);
}

Test(file_registry, configmap_symlink_swap)
{
	struct model *m = model_new();
	char payload[PATH_MAX + 512];
	struct reg_file *r;

	cr_assert_eq(mkdir(in_dir("..2026_11_25_10_00_00.1"), 0755), 0);
	snprintf(payload, sizeof(payload), "%s/registry.yaml", in_dir("..2026_11_25_10_00_00.1"));
	write_file(payload, service("web", "198.19.0.10"));
	cr_assert_eq(symlink("..2026_11_25_10_00_00.1", in_dir("..data")), 0);
	cr_assert_eq(symlink("..data/registry.yaml", in_dir("registry.yaml")), 0);
	r = file_new(in_dir("registry.yaml"), m);
	cr_assert_not_null(r);
	cr_assert(has_vip(m, "198.19.0.10:80"));

	configmap_swap(r, "..2026_11_25_10_00_00.1", "..2026_11_25_10_05_00.2",
		       service("web", "198.19.0.11"));
	cr_assert(has_vip(m, "198.19.0.11:80"));
	cr_assert_not(has_vip(m, "198.19.0.10:80"));

	/* Again: the watches must have followed the swap. */
	configmap_swap(r, "..2026_11_25_10_05_00.2", "..2026_11_25_10_10_00.3",
		       service("web", "198.19.0.12"));
	cr_assert(has_vip(m, "198.19.0.12:80"));
	cr_assert_eq(stats_of(r).load_errors, 0, "no transient error during the swaps");
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, retargeted_symlink)
{
	struct model *m = model_new();
	struct reg_file_stats b;
	struct reg_file *r;

	cr_assert_eq(mkdir(in_dir("a"), 0755), 0);
	cr_assert_eq(mkdir(in_dir("b"), 0755), 0);
	write_file(in_dir("a/registry.yaml"), service("web", "198.19.0.10"));
	write_file(in_dir("b/registry.yaml"), service("web", "198.19.0.11"));
	cr_assert_eq(symlink("a/registry.yaml", in_dir("current.yaml")), 0);
	r = file_new(in_dir("current.yaml"), m);
	cr_assert_not_null(r);
	/* A write to the target, in another folder than the link. */
	b = stats_of(r);
	write_file(in_dir("a/registry.yaml"), service("web", "198.19.0.12"));
	expect_change(r, &b);
	cr_assert(has_vip(m, "198.19.0.12:80"));
	/* Point the link elsewhere (ln -sfn does unlink + symlink). */
	b = stats_of(r);
	cr_assert_eq(unlink(in_dir("current.yaml")), 0);
	cr_assert_eq(symlink("b/registry.yaml", in_dir("current.yaml")), 0);
	expect_change(r, &b);
	cr_assert(has_vip(m, "198.19.0.11:80"));
	/* The old target no longer matters, the new one does. */
	b = stats_of(r);
	write_file(in_dir("a/registry.yaml"), service("web", "198.19.0.13"));
	expect_quiet(r, &b);
	write_file(in_dir("b/registry.yaml"), service("web", "198.19.0.14"));
	expect_change(r, &b);
	cr_assert(has_vip(m, "198.19.0.14:80"));
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, relative_path)
{
	struct model *m = model_new();
	struct reg_file_stats b;
	struct reg_file *r;

	/* Criterion runs each test in its own process: chdir is ours alone. */
	cr_assert_eq(chdir(dir), 0);
	write_file("registry.yaml", service("web", "198.19.0.10"));
	r = file_new("registry.yaml", m);
	cr_assert_not_null(r);
	cr_assert_str_eq(reg_file_path(r), "registry.yaml");
	b = stats_of(r);
	write_atomic("registry.yaml", service("web", "198.19.0.11"));
	expect_change(r, &b);
	cr_assert(has_vip(m, "198.19.0.11:80"));
	reg_file_free(r);
	model_free(m);
}

/* The sink's count of applied upserts and deletes of the test's source. */
static uint64_t sink_events(const char *path)
{
	struct reg_source_status st[4];
	char source[PATH_MAX + 8];
	size_t n = reg_sink_status(sink, st, 4);

	snprintf(source, sizeof(source), "file:%s", path);
	for (size_t i = 0; i < n && i < 4; i++)
		if (!strcmp(st[i].source, source))
			return st[i].events;
	cr_assert_fail("no source '%s' in the sink", source);
	return 0;
}

/* Services s<from>..s<to - 1> into @buf, VIP 198.19.0.<10 + i>, but s<moved>
 * at 198.19.1.<10 + moved> (-1: none).
 */
static void services(char *buf, size_t len, int from, int to, int moved)
{
	size_t at = 0;

	buf[0] = '\0';
	for (int i = from; i < to; i++) {
		char name[16], ip[32];

		snprintf(name, sizeof(name), "s%d", i);
		snprintf(ip, sizeof(ip), "198.19.%d.%d", i == moved, 10 + i);
		at += (size_t)snprintf(buf + at, len - at, "---\n%s", service(name, ip));
		cr_assert_lt(at, len);
	}
}

Test(file_registry, reload_sends_only_what_changed)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file *r;
	char text[8192];
	uint64_t events;

	services(text, sizeof(text), 0, 10, -1);
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	events = sink_events(path);
	cr_assert_eq(events, 10, "the first load sends everything");

	/* s0 gone, s4 moved, s10 new, the 8 others unchanged: three events. */
	services(text, sizeof(text), 1, 11, 4);
	reload(r, path, text);
	cr_assert_eq(sink_events(path) - events, 3);
	cr_assert_not(has_vip(m, "198.19.0.10:80"), "s0 went with the file's");
	cr_assert(has_vip(m, "198.19.0.11:80"), "s1, unchanged, stays");
	cr_assert(has_vip(m, "198.19.1.14:80"));
	cr_assert_not(has_vip(m, "198.19.0.14:80"));
	cr_assert(has_vip(m, "198.19.0.20:80"));

	/* Another file with the same objects (a comment added): a load, no event. */
	events = sink_events(path);
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "# the same objects\n");
	reload(r, path, text);
	cr_assert_eq(sink_events(path), events, "nothing changed");
	cr_assert_eq(stats_of(r).loads, 3);
	reg_file_free(r);
	model_free(m);
}

/* When most of the file changes, it goes as one listing: the unchanged
 * objects stay without being sent, what it lacks goes at its end.
 */
Test(file_registry, mostly_new_file_is_one_listing)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file *r;
	char text[8192];
	uint64_t events;

	services(text, sizeof(text), 0, 4, -1);
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	events = sink_events(path);

	/* s0-s2 gone, s3 unchanged, s4-s9 new: six sent, three removed at the end. */
	services(text, sizeof(text), 3, 10, -1);
	reload(r, path, text);
	cr_assert_eq(sink_events(path) - events, 6, "the new ones only");
	for (int i = 0; i < 10; i++) {
		char vip[32];

		snprintf(vip, sizeof(vip), "198.19.0.%d:80", 10 + i);
		cr_assert_eq(has_vip(m, vip), i >= 3, "%s", vip);
	}

	/* All of it gone. */
	reload(r, path, "# nothing left\n");
	cr_assert_not(has_vip(m, "198.19.0.13:80"));
	cr_assert_not(has_vip(m, "198.19.0.19:80"));
	reg_file_free(r);
	model_free(m);
}

/* A rejected object keeps its previous version; the file going back to that
 * version's very manifest changes nothing, and the object is still there.
 */
Test(file_registry, kept_version_back_in_the_file_stays)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b;
	struct reg_file *r;
	uint64_t events;

	copy_fixture(FIXTURES "registry.yaml", path);
	r = file_new(path, m);
	cr_assert_not_null(r);
	b = stats_of(r);
	copy_fixture(FIXTURES "registry-bad-objects.yaml", path);
	expect_change(r, &b);
	cr_assert(has_vip(m, "198.19.0.10:80"), "web's previous version kept");
	events = sink_events(path);

	b = stats_of(r);
	copy_fixture(FIXTURES "registry.yaml", path);
	expect_change(r, &b);
	cr_assert_eq(stats_of(r).objects_rejected, 3, "nothing rejected this time");
	cr_assert_str_eq(stats_of(r).last_error, "");
	cr_assert(has_vip(m, "198.19.0.10:80"), "web stays: the model has that version");
	cr_assert(has_vip(m, "198.19.0.30:80"), "legacy/old back");
	/* The fixture's 12 objects but web, whose manifest is the kept one's. */
	cr_assert_eq(sink_events(path) - events, 11);
	reg_file_free(r);
	model_free(m);
}

/* Documents @from..@to (one Service each, "---" before each), Service
 * svc-@changed's address moved.
 */
static void docs_text(char *buf, size_t len, int from, int to, int changed)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = from; i <= to; i++) {
		char name[32], ip[32];

		snprintf(name, sizeof(name), "svc-%d", i);
		snprintf(ip, sizeof(ip), "198.19.%d.%d", i == changed ? 2 : 1, i);
		off += (size_t)snprintf(buf + off, len - off, "---\n%s", service(name, ip));
		cr_assert_lt(off, len);
	}
}

Test(file_registry, unchanged_document_is_not_parsed_again)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats st;
	struct reg_file *r;
	char text[8192];

	docs_text(text, sizeof(text), 1, 8, 0);
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	st = stats_of(r);
	cr_assert_eq(st.docs_parsed, 8);
	cr_assert_eq(st.docs_reused, 0);

	/* One Service changed: that document alone is parsed. */
	docs_text(text, sizeof(text), 1, 8, 5);
	st = reload_parsing(r, path, text, 1, 7);
	cr_assert(has_vip(m, "198.19.2.5:80"), "the changed one is applied");
	cr_assert_not(has_vip(m, "198.19.1.5:80"));
	cr_assert(has_vip(m, "198.19.1.4:80"), "the others stay");

	/* Moved: the first one gone, the rest unchanged and not parsed. */
	docs_text(text, sizeof(text), 2, 8, 5);
	st = reload_parsing(r, path, text, 0, 7);
	cr_assert_not(has_vip(m, "198.19.1.1:80"));
	cr_assert(has_vip(m, "198.19.2.5:80"));
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, reused_document_rejection_names_where_it_is_now)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b, st;
	struct reg_file *r;
	char text[8192], bad[256];

	snprintf(bad, sizeof(bad), "---\napiVersion: v1\nkind: Service\n"
		 "metadata: {name: bad, namespace: shop}\nspec: {ports: [{port: x}]}\n");
	docs_text(text, sizeof(text), 1, 3, 0);
	strcat(text, bad);
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	st = stats_of(r);
	cr_assert_eq(st.objects_rejected, 1);
	cr_assert(!strncmp(st.last_error, "document 4: ", 12), "%s", st.last_error);

	/* Two documents before it gone: the same bytes, not parsed, now document 2. */
	b = st;
	docs_text(text, sizeof(text), 3, 3, 0);
	strcat(text, bad);
	write_atomic(path, text);
	expect_change(r, &b);
	st = stats_of(r);
	cr_assert_eq(st.docs_parsed - b.docs_parsed, 0);
	cr_assert_eq(st.objects_rejected, 2, "rejected again");
	cr_assert(!strncmp(st.last_error, "document 2: ", 12), "%s", st.last_error);
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, duplicate_that_becomes_the_only_definition_is_applied)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b;
	struct reg_file *r;
	char text[1024];

	snprintf(text, sizeof(text), "---\n%s---\n%s", service("web", "198.19.0.10"),
		 service("web", "198.19.0.11"));
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	cr_assert(has_vip(m, "198.19.0.10:80"));

	/* The second definition's bytes are those of the load in force, but
	 * it was not what was applied: it is decoded and sent.
	 */
	b = stats_of(r);
	snprintf(text, sizeof(text), "---\n%s", service("web", "198.19.0.11"));
	write_atomic(path, text);
	expect_change(r, &b);
	cr_assert_eq(stats_of(r).docs_parsed - b.docs_parsed, 1);
	cr_assert(has_vip(m, "198.19.0.11:80"));
	cr_assert_not(has_vip(m, "198.19.0.10:80"));
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, dashes_inside_a_block_scalar_are_not_a_document)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats st;
	struct reg_file *r;
	char text[8192];
	const char *annotated =
		"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: notes\n"
		"  namespace: shop\n  annotations:\n    note: |\n      first\n      ---\n"
		"      --- not a document\n      ...\n    other: \"a\n      --- b\"\n"
		"spec: {clusterIP: 198.19.3.1, ports: [{port: 80}]}\n";

	docs_text(text, sizeof(text), 1, 2, 0);
	strcat(text, annotated);
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	st = stats_of(r);
	cr_assert_eq(st.objects_rejected, 0, "%s", st.last_error);
	cr_assert_eq(st.docs_parsed, 3);
	cr_assert(has_vip(m, "198.19.3.1:80"));

	/* Split where YAML splits: a change elsewhere leaves it unparsed. */
	docs_text(text, sizeof(text), 1, 2, 1);
	strcat(text, annotated);
	st = reload_parsing(r, path, text, 1, 2);
	cr_assert(has_vip(m, "198.19.3.1:80"));
	cr_assert(has_vip(m, "198.19.2.1:80"));
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, list_document_and_directives)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b, st;
	struct reg_file *r;
	char text[8192];

	/* A first document without a marker, a BOM before it, a List. */
	snprintf(text, sizeof(text),
		 "\xef\xbb\xbf# services\n%s---\nkind: List\napiVersion: v1\nitems:\n"
		 "- {apiVersion: v1, kind: Service, metadata: {name: a, namespace: shop},\n"
		 "   spec: {clusterIP: 198.19.4.1, ports: [{port: 80}]}}\n"
		 "- {apiVersion: v1, kind: Service, metadata: {name: b, namespace: shop},\n"
		 "   spec: {clusterIP: 198.19.4.2, ports: [{port: x}]}}\n",
		 service("first", "198.19.4.9"));
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	st = stats_of(r);
	cr_assert_eq(st.docs_parsed, 2);
	cr_assert(has_vip(m, "198.19.4.9:80"));
	cr_assert(has_vip(m, "198.19.4.1:80"));
	cr_assert(!strncmp(st.last_error, "document 2, item 2: ", 20), "%s", st.last_error);

	/* The first document changes; the List, one unit, is not parsed. */
	memcpy(strstr(text, "198.19.4.9"), "198.19.4.8", 10);
	st = reload_parsing(r, path, text, 1, 1);
	cr_assert(has_vip(m, "198.19.4.8:80"));
	cr_assert(!strncmp(st.last_error, "document 2, item 2: ", 20), "%s", st.last_error);

	/* A directive: the file is parsed whole, every time. */
	b = st;
	docs_text(text, sizeof(text), 1, 3, 0);
	memmove(text + 10, text, strlen(text) + 1);
	memcpy(text, "%YAML 1.1\n", 10);
	write_atomic(path, text);
	expect_change(r, &b);
	docs_text(text, sizeof(text), 1, 3, 2);
	memmove(text + 10, text, strlen(text) + 1);
	memcpy(text, "%YAML 1.1\n", 10);
	st = reload_parsing(r, path, text, 3, 0);
	cr_assert(has_vip(m, "198.19.2.2:80"));
	reg_file_free(r);
	model_free(m);
}

Test(file_registry, syntax_error_in_one_document_names_its_line_in_the_file)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b, st;
	struct reg_file *r;
	char text[8192];

	docs_text(text, sizeof(text), 1, 3, 0);
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	b = stats_of(r);
	/* Three documents of 5 lines, then from line 16 one the parser gives up
	 * on at the end, line 18: counted in the file, not in the document.
	 */
	strcat(text, "---\nkind: [unclosed\n");
	write_atomic(path, text);
	expect_load_error(r, &b);
	st = stats_of(r);
	cr_assert(strstr(st.last_error, "line 18, column "), "%s", st.last_error);
	cr_assert(has_vip(m, "198.19.1.3:80"));
	reg_file_free(r);
	model_free(m);
}

/* The thread id of this process' thread named @comm, or 0 if none. */
static pid_t tid_of(const char *comm)
{
	char path[PATH_MAX], name[32];
	pid_t tid = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	cr_assert_not_null(d);
	while ((e = readdir(d)) && !tid) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && !strncmp(name, comm, strlen(comm)) &&
		    name[strlen(comm)] == '\n')
			tid = (pid_t)atoi(e->d_name);
		fclose(f);
	}
	closedir(d);
	return tid;
}

/* Nice 19 in the normal class, not SCHED_IDLE: an idle-class thread draws
 * other processes' wake-ups to its CPU and does not yield it to them
 * (registry/file.c, background()).
 */
Test(file_registry, reloads_run_at_nice_19_the_caller_stays_normal)
{
	struct model *m = model_new();
	const char *path = in_dir("registry.yaml");
	struct reg_file_stats b;
	struct reg_file *r;
	char text[4096];
	int caller_nice;
	pid_t tid;

	errno = 0;
	caller_nice = getpriority(PRIO_PROCESS, 0);
	cr_assert_eq(errno, 0);
	docs_text(text, sizeof(text), 1, 2, 0);
	write_file(path, text);
	r = file_new(path, m);
	cr_assert_not_null(r);
	b = stats_of(r);
	docs_text(text, sizeof(text), 1, 2, 1);
	write_atomic(path, text);
	expect_change(r, &b);
	tid = tid_of("weft-file");
	cr_assert_gt(tid, 0, "no thread named weft-file");
	cr_assert_eq(sched_getscheduler(tid), SCHED_OTHER, "the reload thread stays in the normal class");
	errno = 0;
	cr_assert_eq(getpriority(PRIO_PROCESS, (id_t)tid), 19, "the reload thread is background work");
	cr_assert_eq(errno, 0);
	cr_assert_eq(sched_getscheduler(0), SCHED_OTHER, "the caller's thread is left alone");
	cr_assert_eq(getpriority(PRIO_PROCESS, 0), caller_nice, "the caller's nice is left alone");
	cr_assert(has_vip(m, "198.19.2.1:80"));
	reg_file_free(r);
	model_free(m);
}

/* Service svc-NNNN (@i) with a VIP of its own. */
static const char *service_named(int i)
{
	char name[32], ip[32];

	snprintf(name, sizeof(name), "svc-%04d", i);
	snprintf(ip, sizeof(ip), "198.19.%d.%d", 1 + i / 250, 1 + i % 250);
	return service(name, ip);
}

/* What each publish of a listing showed: Services built without any
 * endpoint, over every build.
 */
struct bare_count {
	struct model *m;
	size_t builds, bare;
};

static void count_bare(void *ctx)
{
	struct bare_count *b = ctx;
	struct catalogue *c = model_build(b->m);
	const struct cat_service *s;

	cr_assert_not_null(c);
	b->builds++;
	for (size_t i = 0; (s = catalogue_service_at(c, i)); i++)
		if (s->n_ports && !s->ports[0].n_endpoints)
			b->bare++;
	catalogue_unref(c);
}

/* A new file of many Services goes to the sink in parts of at most 512
 * changes; each Service is sent with its EndpointSlice next to it, so no
 * part publishes Services whose slices are still to come (each Service
 * would be built twice, the first time with no endpoint).
 */
Test(file_registry, a_listing_sends_each_service_with_its_slices)
{
	enum { N = 600 };
	struct bare_count b = { .m = model_new() };
	const char *path = in_dir("registry.yaml");
	size_t len = (size_t)N * 640, off = 0;
	char *text = malloc(len);
	struct reg_sink *own;
	struct loop *own_loop;
	struct reg_file *r;
	char source[PATH_MAX + 8];

	cr_assert_not_null(text);
	for (int i = 0; i < N; i++) {
		/* Slices named apart from their Service, so that key order
		 * alone would not put them together.
		 */
		off += (size_t)snprintf(
			text + off, len - off,
			"---\n%s---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			"metadata: {name: slice-%04d, namespace: shop, labels: "
			"{kubernetes.io/service-name: svc-%04d}}\naddressType: IPv4\n"
			"endpoints: [{addresses: [10.1.%d.%d]}]\nports: [{port: 80}]\n",
			service_named(i), N - 1 - i, i, i / 250, 1 + i % 250);
		cr_assert_lt(off, len);
	}
	write_file(path, text);
	own_loop = loop_new();
	cr_assert_not_null(own_loop);
	own = reg_sink_new(own_loop, b.m, count_bare, &b);
	cr_assert_not_null(own);
	snprintf(source, sizeof(source), "file:%s", path);
	r = reg_file_new(source, path, own);
	cr_assert_not_null(r);
	reg_sink_drain(own);
	cr_assert_geq(b.builds, 2, "a listing of %d objects goes in parts", 2 * N);
	/* A part may end between a Service and its slice: one each at most. */
	cr_assert_leq(b.bare, b.builds, "%zu Services published without endpoints over %zu builds",
		      b.bare, b.builds);
	cr_assert(has_vip(b.m, "198.19.1.1:80"));
	reg_file_free(r);
	reg_sink_free(own);
	loop_free(own_loop);
	model_free(b.m);
	free(text);
}
