// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/env.h. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpffs.h"
#include "cgroup.h"
#include "curl_body.h"
#include "env.h"
#include "fs.h"
#include "proc.h"
#include "tns.h"
#include "require.h"
#include "topo.h"

static void path_join(char *out, size_t len, const char *a, const char *b)
{
	int n = snprintf(out, len, "%s/%s", a, b);

	cr_assert(n > 0 && (size_t)n < len, "path too long: %s/%s", a, b);
}

static struct tenv *live_env;
/* Set while teardown_at_exit() runs: Criterion's assertions belong to a
 * test's body, .init or .fini, not to exit(). (One in .fini is printed with
 * the test's output but does not change its verdict: what fails the run
 * when a cgroup stays is tcg_remove()'s report, in scripts/run-tests.sh.)
 */
static bool in_exit;

void tenv_phase(const char *what)
{
	const char *path = getenv("WEFT_TEST_PHASES");
	const struct criterion_test *t = criterion_current_test;
	struct timespec ts;
	FILE *f;

	if (!path || !*path)
		return;
	f = fopen(path, "a");
	if (!f)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(f, "%lld %s/%s %s\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
		t && t->category ? t->category : "?", t && t->name ? t->name : "?", what);
	fclose(f);
}

void tenv_exiting(void)
{
	in_exit = true;
}

/* For a worker that ends through exit() with its set-up half done. A failed
 * assertion in .init is not such an end: Criterion 2.4.1 runs neither .fini
 * nor exit()'s handlers then (the test "crashed during its setup"), and the
 * test's cgroups go by tcg_create()'s guard (tests/helpers/cgroup.c); its
 * namespaces, bpffs and temp dir stay until the next
 * scripts/sweep-test-leftovers.sh.
 */
static void teardown_at_exit(void)
{
	tenv_exiting();
	if (live_env)
		tenv_teardown(live_env);
}

/* What tenv_setup() and tenv_node_setup() share before the cgroups: the
 * binaries, the temp dir and the paths in it.
 */
static void env_begin(struct tenv *e, const char *what)
{
	const char *build = getenv("WEFT_BUILD");

	require_root();
	memset(e, 0, sizeof(*e));
	cr_assert(build && *build, "WEFT_BUILD is not set: run the suite through 'make test-integration'");
	snprintf(e->build, sizeof(e->build), "%s", build);
	cr_assert_eq(tproc_mkdtemp(e->tmp, sizeof(e->tmp), what), 0, "mkdtemp: %s",
		     strerror(errno));
	path_join(e->run_dir, sizeof(e->run_dir), e->tmp, "run");
	path_join(e->registry, sizeof(e->registry), e->tmp, "registry.yaml");
	path_join(e->agent_log, sizeof(e->agent_log), e->tmp, "agent.log");
}

/* The agent's cgroup below e->cgroup and the private bpffs. */
static void env_agent_dirs(struct tenv *e)
{
	/* The agent runs in a child of its own: nft mode tells the agent's
	 * sockets from the pods' by cgroup, so the test's clients must not
	 * share it (eBPF mode only needs it below --cgroup).
	 */
	path_join(e->agent_cgroup, sizeof(e->agent_cgroup), e->cgroup, "agent");
	cr_assert_eq(mkdir(e->agent_cgroup, 0755), 0, "create %s: %s", e->agent_cgroup,
		     strerror(errno));
	cr_assert_eq(tbpffs_mount(e->bpffs_mnt, sizeof(e->bpffs_mnt)), 0, "mount private bpffs");
	path_join(e->bpffs, sizeof(e->bpffs), e->bpffs_mnt, "weft");
}

void tenv_setup(struct tenv *e)
{
	tenv_phase("setup");
	env_begin(e, "test");
	live_env = e;
	atexit(teardown_at_exit);
	cr_assert_eq(tcg_create(e->cgroup, sizeof(e->cgroup)), 0, "create test cgroup");
	/* Join first: the agent, the CNI plugin and every client inherit it. */
	cr_assert_eq(tcg_join(e->cgroup, 0), 0, "join test cgroup %s", e->cgroup);
	env_agent_dirs(e);
	tenv_phase("cgroup+bpffs");
	cr_assert_eq(ttopo_setup(), 0, "build the test topology");
	tenv_phase("topology");
}

void tenv_node_setup(struct tenv *e, const char *parent, const char *name)
{
	tenv_phase("node-setup");
	env_begin(e, name);
	path_join(e->cgroup, sizeof(e->cgroup), parent, name);
	cr_assert_eq(mkdir(e->cgroup, 0755), 0, "create %s: %s", e->cgroup, strerror(errno));
	env_agent_dirs(e);
}

/* Stop the agent. No --cleanup run after it: everything the agent puts
 * anywhere is in what the tear-down removes anyway (its pins in the private
 * bpffs, its attachments on the test's cgroups, its nft tables, routes and
 * sysctls in the pods' netns, its files in the temp dir), and a sanitizer
 * build's start and exit cost half a second a test. test_lifecycle.c asserts
 * what --cleanup removes.
 */
static void env_agent_done(struct tenv *e)
{
	tenv_phase("teardown");
	if (e->agent > 0 && tenv_agent_stop(e) != 0) {
		/* Its sanitizer report (if any) reaches scripts/run-tests.sh this way. */
		fprintf(stderr, "weft-agent did not exit cleanly; its log:\n");
		tns_sh("cat '%s' >&2", e->agent_log);
	}
	tenv_phase("agent-stopped");
}

/* Unmount the bpffs, remove the cgroups and the temp dir, forget it all.
 * The agent's cgroup first: what is still in it (a predecessor left by a
 * hand-over test that failed half-way) is ended and waited for before the
 * test's own cgroup goes. A cgroup that stays is reported with its path and
 * error (tcg_remove() prints what is still inside), which fails the run.
 */
static void env_release(struct tenv *e)
{
	char left[sizeof(e->agent_cgroup)] = "";
	int err = 0, err2 = 0;

	if (e->bpffs_mnt[0])
		(void)tbpffs_umount(e->bpffs_mnt);
	if (e->agent_cgroup[0] && (err = tcg_remove(e->agent_cgroup)))
		snprintf(left, sizeof(left), "%s", e->agent_cgroup);
	if (e->cgroup[0] && (err2 = tcg_remove(e->cgroup)) && !err) {
		err = err2;
		snprintf(left, sizeof(left), "%s", e->cgroup);
	}
	tproc_rmtree(e->tmp);
	memset(e, 0, sizeof(*e));
	if (left[0] && !in_exit)
		cr_expect_fail("the test's cgroup %s is left behind: %s (errno %d)", left,
			       strerror(-err), -err);
}

void tenv_teardown(struct tenv *e)
{
	env_agent_done(e);
	ttopo_teardown();
	tenv_phase("topology-down");
	env_release(e);
	live_env = NULL;
	tenv_phase("released");
}

void tenv_node_teardown(struct tenv *e)
{
	env_agent_done(e);
	env_release(e);
	tenv_phase("node-released");
}

int tenv_write_registry(struct tenv *e, const char *yaml)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", e->registry);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fputs(yaml, f);
	if (fclose(f))
		return -errno;
	return rename(tmp, e->registry) ? -errno : 0;
}

const char *tenv_mode(void)
{
	const char *m = getenv("WEFT_TEST_MODE");

	return m && m[0] ? m : "ebpf";
}

bool tenv_mode_is(const char *mode)
{
	return !strcmp(tenv_mode(), mode);
}

static void agent_args(struct tenv *e, char *buf, size_t len)
{
	if (e->registry_spec[0])
		snprintf(buf, len, "--registry %s", e->registry_spec);
	else
		snprintf(buf, len, "--registry file:%s", e->registry);
	snprintf(buf + strlen(buf), len - strlen(buf),
		 " --mode %s --cgroup %s --bpffs %s --run-dir %s --log-level debug --drain-seconds 5 %s",
		 tenv_mode(),
		 e->cgroup, e->bpffs, e->run_dir, e->extra_args);
}

static bool admin_answers(void *e)
{
	json_object *o = tenv_admin_get(e, "/v1/status");

	json_object_put(o);
	return o != NULL;
}

int tenv_agent_spawn(struct tenv *e)
{
	char args[8 * PATH_MAX], cmd[14 * PATH_MAX];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	char bin[PATH_MAX + 16];

	tenv_phase("agent-spawn");
	agent_args(e, args, sizeof(args));
	/* WEFT_AGENT: another agent binary (the optimised one, for memory figures). */
	if (getenv("WEFT_AGENT"))
		snprintf(bin, sizeof(bin), "%s", getenv("WEFT_AGENT"));
	else
		snprintf(bin, sizeof(bin), "%s/san/weft-agent", e->build);
	snprintf(cmd, sizeof(cmd), "echo $$ > %s/cgroup.procs && exec %s %s >>%s 2>&1",
		 e->agent_cgroup, bin, args, e->agent_log);
	/* An agent must not outlive a test that died before its .fini. */
	e->agent = tproc_spawn(argv, NULL, SIGTERM);
	if (e->agent == -1) {
		e->agent = 0;
		return -1;
	}
	return 0;
}

int tenv_agent_wait(struct tenv *e)
{
	if (e->agent <= 0)
		return -1;
	/* Ready when the admin API answers (it is created last); every test
	 * waits for this at least once, so the poll is fine-grained.
	 */
	if (tproc_wait_ready(&e->agent, 10000, 10, admin_answers, e))
		return -1;
	tenv_phase("agent-ready");
	return 0;
}

int tenv_agent_start(struct tenv *e)
{
	return tenv_agent_spawn(e) ? -1 : tenv_agent_wait(e);
}

int tenv_agent_stop(struct tenv *e)
{
	int status;

	if (e->agent <= 0)
		return -1;
	kill(e->agent, SIGTERM);
	/* 10 s, polled every 10 ms: every test ends here. */
	for (int i = 0; i < 1000; i++) {
		if (waitpid(e->agent, &status, WNOHANG) == e->agent) {
			e->agent = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		usleep(10000);
	}
	kill(e->agent, SIGKILL);
	waitpid(e->agent, &status, 0);
	e->agent = 0;
	return -1;
}

int tenv_agent_cleanup(struct tenv *e)
{
	char args[8 * PATH_MAX];

	agent_args(e, args, sizeof(args));
	return tns_sh("%s/san/weft-agent %s --cleanup >>%s 2>&1", e->build, args, e->agent_log);
}

int tenv_capture(char *out, size_t len, const char *fmt, ...)
{
	char cmd[8192];
	size_t have = 0;
	va_list ap;
	FILE *p;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (have < len - 1) {
		size_t n = fread(out + have, 1, len - 1 - have, p);

		if (!n)
			break;
		have += n;
	}
	out[have] = '\0';
	rc = pclose(p);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int tenv_cni(struct tenv *e, const char *cmd, const char *ns, const char *k8s_ns,
	     const char *pod, const char *ip, char *out, size_t len)
{
	char conf[PATH_MAX + 512], conf_path[PATH_MAX + 16], netns[128];
	FILE *f;

	/* What a runtime hands a chained plugin: the network config with the
	 * previous plugin's result.
	 */
	snprintf(conf, sizeof(conf),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"test\",\"type\":\"weft-cni\","
		 "\"agent_socket\":\"%s/cni.sock\",\"prevResult\":{\"cniVersion\":\"1.0.0\","
		 "\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"%s\"}],"
		 "\"ips\":[{\"address\":\"%s/24\",\"interface\":0}]}}",
		 e->run_dir, tns_path(ns, netns, sizeof(netns)), ip);
	snprintf(conf_path, sizeof(conf_path), "%s/cni-%s.json", e->tmp, pod);
	f = fopen(conf_path, "w");
	if (!f)
		return -1;
	fputs(conf, f);
	fclose(f);
	return tenv_capture(out, len,
			    "CNI_COMMAND=%s CNI_CONTAINERID=ctr-%s CNI_NETNS=%s CNI_IFNAME=eth0 "
			    "CNI_PATH=/opt/cni/bin CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;"
			    "K8S_POD_NAME=%s;K8S_POD_UID=uid-%s' %s/san/weft-cni < %s 2>&1",
			    cmd, pod, netns, k8s_ns, pod, pod, e->build, conf_path);
}

json_object *tenv_admin_get(struct tenv *e, const char *path)
{
	char sock[PATH_MAX + 16], url[256];
	struct tcurl_body b = { 0 };
	json_object *o = NULL;
	long code = 0;
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	snprintf(sock, sizeof(sock), "%s/admin.sock", e->run_dir);
	snprintf(url, sizeof(url), "http://weft%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tcurl_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 && b.buf)
		o = json_tokener_parse(b.buf);
	curl_easy_cleanup(c);
	free(b.buf);
	return o;
}

long long tenv_admin_pid(struct tenv *e)
{
	json_object *o = tenv_admin_get(e, "/v1/status"), *v;
	long long pid = 0;

	if (o && json_object_object_get_ex(o, "pid", &v))
		pid = json_object_get_int64(v);
	json_object_put(o);
	return pid;
}

long long tenv_status_counter(struct tenv *e, const char *dotted)
{
	json_object *root = tenv_admin_get(e, "/v1/status"), *cur = root;
	char path[256], *save = NULL, *tok;
	long long v = -1;

	if (!root)
		return -1;
	snprintf(path, sizeof(path), "%s", dotted);
	for (tok = strtok_r(path, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(cur, json_type_array))
			cur = json_object_array_get_idx(cur, (size_t)atoi(tok));
		else if (!json_object_object_get_ex(cur, tok, &cur))
			cur = NULL;
	}
	if (cur)
		v = json_object_get_int64(cur);
	json_object_put(root);
	return v;
}

/* The agent's open descriptors; with @pipes, how many of them are pipes. */
long tenv_agent_fds(struct tenv *e, long *pipes)
{
	char path[64], link[PATH_MAX], target[64];
	struct dirent *d;
	long n = 0;
	DIR *dir;

	*pipes = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)e->agent);
	dir = opendir(path);
	cr_assert_not_null(dir, "%s: %m", path);
	while ((d = readdir(dir))) {
		ssize_t k;

		if (d->d_name[0] == '.')
			continue;
		n++;
		snprintf(link, sizeof(link), "%s/%s", path, d->d_name);
		k = readlink(link, target, sizeof(target) - 1);
		if (k > 0 && !strncmp(target, "pipe:", 5))
			(*pipes)++;
	}
	closedir(dir);
	return n;
}
