// SPDX-License-Identifier: GPL-2.0-only
/* The CNI config installer (agent/cni_install.c) and its binary
 * (build/weft-cni-install) in temp folders standing for /etc/cni/net.d,
 * /opt/cni/bin and the state folder: which file is chained, conversion of
 * single-plugin configs, re-chaining after a rewrite, byte-identical
 * uninstall, restarts that change nothing, malformed configs named.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cni_install.h"
#include "log.h"

struct bed {
	char root[64];
	char conf[128], bin[128], state[128], plugin[128];
	struct cni_install_cfg cfg;
};

static void put(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "create '%s'", path);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

static char *get(const char *dir, const char *name)
{
	char path[512], *buf = calloc(1, 1 << 16);
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f) {
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool present(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void bed_init(struct bed *b)
{
	snprintf(b->root, sizeof(b->root), "/tmp/weft-cni-install-XXXXXX");
	cr_assert_not_null(mkdtemp(b->root));
	snprintf(b->conf, sizeof(b->conf), "%s/net.d", b->root);
	snprintf(b->bin, sizeof(b->bin), "%s/bin", b->root);
	snprintf(b->state, sizeof(b->state), "%s/state", b->root);
	snprintf(b->plugin, sizeof(b->plugin), "%s/weft-cni.build", b->root);
	cr_assert_eq(mkdir(b->conf, 0755), 0);
	cr_assert_eq(mkdir(b->bin, 0755), 0);
	put(b->root, "weft-cni.build", "#!/bin/false plugin v1\n", 0755);
	b->cfg = (struct cni_install_cfg){ .conf_dir = b->conf,
					   .bin_dir = b->bin,
					   .plugin_src = b->plugin,
					   .state_dir = b->state,
					   .agent_socket = "/run/weft/cni.sock" };
	log_set_level(LOG_LEVEL_WARN);
}

static void bed_done(struct bed *b)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->root);
	cr_assert_eq(system(cmd), 0);
}

/* Every entry of @dir: "name mode bytes\n", sorted. */
static char *snapshot(const char *dir)
{
	struct dirent **ents;
	size_t cap = 1 << 18, off = 0;
	char *out = calloc(1, cap);
	int n = scandir(dir, &ents, NULL, alphasort);

	cr_assert_geq(n, 0, "scan '%s'", dir);
	for (int i = 0; i < n; i++) {
		char path[512], *text;
		struct stat st;

		if (ents[i]->d_name[0] == '.' &&
		    (!ents[i]->d_name[1] || !strcmp(ents[i]->d_name, ".."))) {
			free(ents[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		cr_assert_eq(lstat(path, &st), 0);
		text = get(dir, ents[i]->d_name);
		off += (size_t)snprintf(out + off, cap - off, "%s %o %s\n", ents[i]->d_name,
					st.st_mode & 07777, text ?: "");
		free(text);
		free(ents[i]);
	}
	free(ents);
	return out;
}

/* Assert @dir's snapshot is (or, @same false, is not) @want. */
static void assert_snap(const char *dir, const char *want, bool same, const char *what)
{
	char *now = snapshot(dir);

	if (same)
		cr_assert_str_eq(now, want, "%s", what);
	else
		cr_assert_str_neq(now, want, "%s", what);
	free(now);
}

static void assert_file(const char *dir, const char *name, const char *want)
{
	char *text = get(dir, name);

	cr_assert_not_null(text, "'%s' missing", name);
	cr_assert_str_eq(text, want);
	free(text);
}

/* The plugin types of conflist @name, "bridge,weft-cni". */
static void types_of(const char *dir, const char *name, char *out, size_t len)
{
	char *text = get(dir, name);
	json_object *o, *plugins;
	size_t off = 0;

	cr_assert_not_null(text, "'%s' missing", name);
	o = json_tokener_parse(text);
	cr_assert_not_null(o, "'%s' is not JSON: %s", name, text);
	cr_assert(json_object_object_get_ex(o, "plugins", &plugins), "%s", text);
	out[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(plugins); i++) {
		json_object *t;

		json_object_object_get_ex(json_object_array_get_idx(plugins, i), "type", &t);
		off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "," : "",
					json_object_get_string(t));
	}
	json_object_put(o);
	free(text);
}

#define BRIDGE_CONF                                                                                \
	"{\"cniVersion\": \"0.4.0\", \"name\": \"kube\", \"type\": \"bridge\", "                   \
	"\"ipam\": {\"type\": \"host-local\", \"subnet\": \"198.18.0.0/24\"}}\n"
#define FLANNEL_LIST                                                                               \
	"{\n  \"name\": \"cbr0\",\n  \"cniVersion\": \"1.0.0\",\n  \"plugins\": [\n"               \
	"    {\"type\": \"flannel\", \"delegate\": {\"isDefaultGateway\": true}},\n"               \
	"    {\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}}\n  ]\n}\n"

static int install_once(struct bed *b)
{
	struct cni_install *ci = cni_install_new(&b->cfg);
	int err;

	cr_assert_not_null(ci);
	err = cni_install_sync(ci);
	cni_install_free(ci);
	return err;
}

static void uninstall(struct bed *b)
{
	char err[CNI_INSTALL_ERR_MAX];

	cr_assert_eq(cni_install_uninstall(&b->cfg, err, sizeof(err)), 0, "%s", err);
}

Test(cni_install, conflist_only_is_chained_in_place)
{
	struct cni_install *ci;
	struct bed b;
	char types[256];
	struct stat st;

	bed_init(&b);
	put(b.conf, "10-flannel.conflist", FLANNEL_LIST, 0644);
	ci = cni_install_new(&b.cfg);
	cr_assert_eq(cni_install_sync(ci), 0, "%s", cni_install_stats(ci)->last_error);
	types_of(b.conf, "10-flannel.conflist", types, sizeof(types));
	cr_assert_str_eq(types, "flannel,portmap,weft-cni");
	cr_assert_eq(cni_install_stats(ci)->chains, 1);
	cr_assert_eq(cni_install_stats(ci)->repairs, 0);
	/* The plugin is in place and executable, byte for byte. */
	assert_file(b.bin, "weft-cni", "#!/bin/false plugin v1\n");
	cr_assert_eq(stat(b.bin, &st), 0);
	cr_assert_eq(access(strcat(strcpy((char[256]){ 0 }, b.bin), "/weft-cni"), X_OK), 0);
	/* A second sync changes nothing. */
	cr_assert_eq(cni_install_sync(ci), 0);
	cr_assert_eq(cni_install_stats(ci)->chains, 1);
	cni_install_free(ci);
	bed_done(&b);
}

Test(cni_install, conf_only_becomes_a_conflist)
{
	struct bed b;
	char types[256], *text;
	json_object *o, *v;

	bed_init(&b);
	put(b.conf, "10-bridge.conf", BRIDGE_CONF, 0600);
	cr_assert_eq(install_once(&b), 0);
	cr_assert_not(present(b.conf, "10-bridge.conf"), "the .conf would still sort first");
	types_of(b.conf, "10-bridge.conflist", types, sizeof(types));
	cr_assert_str_eq(types, "bridge,weft-cni");
	text = get(b.conf, "10-bridge.conflist");
	o = json_tokener_parse(text);
	cr_assert(json_object_object_get_ex(o, "cniVersion", &v));
	cr_assert_str_eq(json_object_get_string(v), "0.4.0");
	cr_assert(json_object_object_get_ex(o, "name", &v));
	cr_assert_str_eq(json_object_get_string(v), "kube");
	json_object_put(o);
	free(text);
	bed_done(&b);
}

Test(cni_install, json_only_becomes_a_conflist)
{
	struct bed b;
	char types[256];

	bed_init(&b);
	put(b.conf, "87-podman.json", BRIDGE_CONF, 0644);
	cr_assert_eq(install_once(&b), 0);
	cr_assert_not(present(b.conf, "87-podman.json"));
	types_of(b.conf, "87-podman.conflist", types, sizeof(types));
	cr_assert_str_eq(types, "bridge,weft-cni");
	bed_done(&b);
}

Test(cni_install, only_the_first_of_several_files_is_chained)
{
	struct bed b;
	char types[256];

	bed_init(&b);
	put(b.conf, "20-b.conflist", FLANNEL_LIST, 0644);
	put(b.conf, "10-a.conflist", FLANNEL_LIST, 0644);
	put(b.conf, "05-z.conflist.bak", "not a config", 0644); /* ignored: extension */
	put(b.conf, "00-notes.txt", "ignored", 0644);
	cr_assert_eq(mkdir(strcat(strcpy((char[256]){ 0 }, b.conf), "/01-dir.conflist"), 0755),
		     0); /* ignored: not a file */
	cr_assert_eq(install_once(&b), 0);
	types_of(b.conf, "10-a.conflist", types, sizeof(types));
	cr_assert_str_eq(types, "flannel,portmap,weft-cni");
	assert_file(b.conf, "20-b.conflist", FLANNEL_LIST);

	/* .conf sorts before .conflist of the same base: libcni loads it. */
	put(b.conf, "10-a.conf", BRIDGE_CONF, 0644);
	cr_assert_eq(install_once(&b), 0);
	cr_assert_not(present(b.conf, "10-a.conf"));
	types_of(b.conf, "10-a.conflist", types, sizeof(types));
	cr_assert_str_eq(types, "bridge,weft-cni");
	bed_done(&b);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The cluster's plugin rewrites its file as such plugins do: a new file
 * renamed over the old one.
 */
static void cluster_rewrites(struct bed *b, const char *name, const char *text)
{
	char tmp[512], path[512];

	put(b->conf, "cluster.tmp", text, 0644);
	snprintf(tmp, sizeof(tmp), "%s/cluster.tmp", b->conf);
	snprintf(path, sizeof(path), "%s/%s", b->conf, name);
	cr_assert_eq(rename(tmp, path), 0);
}

/* Poll the watch until the installer has acted, at most @ms. */
static void wait_repair(struct cni_install *ci, int fd, uint64_t want_repairs, int ms)
{
	int64_t end = now_ms() + ms;

	while (cni_install_stats(ci)->repairs < want_repairs && now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, (int)(end - now_ms())) == 1)
			(void)cni_install_on_events(ci);
	}
}

Test(cni_install, rewrite_while_watching_is_rechained_within_a_second)
{
	struct cni_install *ci;
	struct bed b;
	char types[256];
	int64_t t0;
	int fd;

	bed_init(&b);
	put(b.conf, "10-flannel.conflist", FLANNEL_LIST, 0644);
	ci = cni_install_new(&b.cfg);
	fd = cni_install_watch(ci);
	cr_assert_geq(fd, 0);
	cr_assert_eq(cni_install_sync(ci), 0);

	for (uint64_t round = 1; round <= 3; round++) {
		t0 = now_ms();
		cluster_rewrites(&b, "10-flannel.conflist", FLANNEL_LIST);
		wait_repair(ci, fd, round, 1000);
		cr_assert_eq(cni_install_stats(ci)->repairs, round, "not re-chained within 1 s");
		cr_assert_lt(now_ms() - t0, 1000);
		types_of(b.conf, "10-flannel.conflist", types, sizeof(types));
		cr_assert_str_eq(types, "flannel,portmap,weft-cni");
	}
	/* A single-plugin config appearing first is converted too. */
	put(b.conf, "05-bridge.conf", BRIDGE_CONF, 0644);
	wait_repair(ci, fd, 4, 1000);
	cr_assert_eq(cni_install_stats(ci)->repairs, 4);
	cr_assert_not(present(b.conf, "05-bridge.conf"));
	types_of(b.conf, "05-bridge.conflist", types, sizeof(types));
	cr_assert_str_eq(types, "bridge,weft-cni");
	/* Our own writes do not loop: quiet now. */
	(void)cni_install_on_events(ci);
	cr_assert_eq(cni_install_stats(ci)->chains, 5);
	cni_install_free(ci);
	bed_done(&b);
}

Test(cni_install, uninstall_leaves_the_folders_byte_identical)
{
	static const char *const layouts[][2] = {
		{ "10-bridge.conf", BRIDGE_CONF },
		{ "10-flannel.conflist", FLANNEL_LIST },
		{ "99-podman.json", BRIDGE_CONF },
	};

	for (size_t i = 0; i < 3; i++) {
		struct bed b;
		char *conf_before, *bin_before;

		bed_init(&b);
		put(b.conf, layouts[i][0], layouts[i][1], i == 0 ? 0600 : 0644);
		put(b.conf, "50-other.conflist", FLANNEL_LIST, 0644);
		put(b.conf, "README", "not a config\n", 0644);
		put(b.bin, "bridge", "bridge binary\n", 0755);
		conf_before = snapshot(b.conf);
		bin_before = snapshot(b.bin);
		cr_assert_eq(install_once(&b), 0);
		assert_snap(b.conf, conf_before, false, "");
		uninstall(&b);
		assert_snap(b.conf, conf_before, true, layouts[i][0]);
		assert_snap(b.bin, bin_before, true, layouts[i][0]);
		cr_assert_not(present(b.root, "state"), "the records are gone");
		/* Uninstalling twice is harmless. */
		uninstall(&b);
		assert_snap(b.conf, conf_before, true, "");
		free(conf_before);
		free(bin_before);
		bed_done(&b);
	}
}

Test(cni_install, uninstall_after_repairs_restores_the_clusters_latest_file)
{
	struct cni_install *ci;
	struct bed b;
	const char *v2 = "{\"cniVersion\": \"1.0.0\", \"name\": \"cbr0\", \"plugins\": "
			 "[{\"type\": \"flannel\", \"mtu\": 1400}]}\n";
	char *conf_latest;
	int fd;

	bed_init(&b);
	put(b.conf, "10-flannel.conflist", FLANNEL_LIST, 0644);
	ci = cni_install_new(&b.cfg);
	fd = cni_install_watch(ci);
	cr_assert_eq(cni_install_sync(ci), 0);
	cluster_rewrites(&b, "10-flannel.conflist", v2);
	conf_latest = snapshot(b.conf);
	wait_repair(ci, fd, 1, 1000);
	cr_assert_eq(cni_install_stats(ci)->repairs, 1);
	cni_install_free(ci);
	uninstall(&b);
	assert_snap(b.conf, conf_latest, true, "");
	free(conf_latest);
	bed_done(&b);
}

Test(cni_install, a_rewrite_while_stopped_is_left_to_the_cluster_on_uninstall)
{
	struct bed b;
	const char *v2 = "{\"cniVersion\": \"1.0.0\", \"name\": \"cbr0\", \"plugins\": "
			 "[{\"type\": \"calico\"}]}\n";
	char *after;

	bed_init(&b);
	put(b.conf, "10-flannel.conflist", FLANNEL_LIST, 0644);
	cr_assert_eq(install_once(&b), 0);
	/* No installer running: the cluster replaces its config. */
	cluster_rewrites(&b, "10-flannel.conflist", v2);
	after = snapshot(b.conf);
	uninstall(&b);
	assert_snap(b.conf, after, true, "the cluster's newer file was kept");
	cr_assert_not(present(b.bin, "weft-cni"));
	free(after);
	bed_done(&b);
}

Test(cni_install, restart_does_not_touch_anything)
{
	struct cni_install *ci;
	struct bed b;
	char *conf_after, *bin_after, *state_after;

	bed_init(&b);
	put(b.conf, "10-bridge.conf", BRIDGE_CONF, 0644);
	cr_assert_eq(install_once(&b), 0);
	conf_after = snapshot(b.conf);
	bin_after = snapshot(b.bin);
	state_after = snapshot(b.state);
	/* Stop (free: nothing undone) and start again, twice. */
	for (int i = 0; i < 2; i++) {
		ci = cni_install_new(&b.cfg);
		cr_assert_geq(cni_install_watch(ci), 0);
		cr_assert_eq(cni_install_sync(ci), 0);
		cr_assert_eq(cni_install_stats(ci)->chains, 0);
		cni_install_free(ci);
		assert_snap(b.conf, conf_after, true, "");
		assert_snap(b.bin, bin_after, true, "");
		assert_snap(b.state, state_after, true, "");
	}
	free(conf_after);
	free(bin_after);
	free(state_after);
	bed_done(&b);
}

Test(cni_install, an_upgrade_replaces_the_plugin_and_uninstall_restores_a_foreign_one)
{
	struct bed b;
	char *bin_before;

	bed_init(&b);
	put(b.conf, "10-flannel.conflist", FLANNEL_LIST, 0644);
	put(b.bin, "weft-cni", "someone else's weft-cni\n", 0700);
	bin_before = snapshot(b.bin);
	cr_assert_eq(install_once(&b), 0);
	assert_file(b.bin, "weft-cni", "#!/bin/false plugin v1\n");
	put(b.root, "weft-cni.build", "#!/bin/false plugin v2\n", 0755);
	cr_assert_eq(install_once(&b), 0);
	assert_file(b.bin, "weft-cni", "#!/bin/false plugin v2\n");
	uninstall(&b);
	assert_snap(b.bin, bin_before, true, "");
	free(bin_before);
	bed_done(&b);
}

Test(cni_install, lost_records_still_leave_no_weft_entry)
{
	struct bed b;
	char types[256], cmd[256];

	bed_init(&b);
	put(b.conf, "10-flannel.conflist", FLANNEL_LIST, 0644);
	cr_assert_eq(install_once(&b), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.state);
	cr_assert_eq(system(cmd), 0);
	uninstall(&b);
	types_of(b.conf, "10-flannel.conflist", types, sizeof(types));
	cr_assert_str_eq(types, "flannel,portmap");
	bed_done(&b);
}

Test(cni_install, an_empty_folder_waits)
{
	struct cni_install *ci;
	struct bed b;

	bed_init(&b);
	ci = cni_install_new(&b.cfg);
	cr_assert_eq(cni_install_sync(ci), -ENOENT);
	cr_assert(strstr(cni_install_stats(ci)->last_error, "waiting"), "%s",
		  cni_install_stats(ci)->last_error);
	put(b.conf, "10-flannel.conflist", FLANNEL_LIST, 0644);
	cr_assert_eq(cni_install_sync(ci), 0);
	cr_assert_eq(cni_install_stats(ci)->chains, 1);
	cni_install_free(ci);
	bed_done(&b);
}

Test(cni_install, malformed_configs_are_named_with_file_and_field)
{
	static const struct {
		const char *name, *text, *want;
	} cases[] = {
		{ "10-a.conflist", "{\"plugins\": [", "not JSON" },
		{ "10-a.conflist", "[1, 2]", "not a JSON object" },
		{ "10-a.conflist", "{\"name\": \"x\"}", "field 'plugins': missing" },
		{ "10-a.conflist", "{\"plugins\": []}", "field 'plugins': empty" },
		{ "10-a.conflist", "{\"plugins\": [{\"type\": \"a\"}, {\"mtu\": 1}]}",
		  "field 'plugins[1].type'" },
		{ "10-a.conf", "{\"name\": \"x\"}", "field 'type'" },
		{ "10-a.conf", "{\"plugins\": [{\"type\": \"a\"}]}", "belongs in a .conflist" },
		{ "10-a.json", "{\"type\": 7}", "field 'type'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cni_install *ci;
		struct bed b;
		char *before;
		const char *msg;

		bed_init(&b);
		put(b.conf, cases[i].name, cases[i].text, 0644);
		before = snapshot(b.conf);
		ci = cni_install_new(&b.cfg);
		cr_assert_eq(cni_install_sync(ci), -EINVAL, "case %zu", i);
		msg = cni_install_stats(ci)->last_error;
		cr_assert(strstr(msg, cases[i].name), "case %zu: file not named: %s", i, msg);
		cr_assert(strstr(msg, cases[i].want), "case %zu: %s", i, msg);
		cr_assert_eq(cni_install_stats(ci)->errors, 1);
		assert_snap(b.conf, before, true, cases[i].text);
		cni_install_free(ci);
		free(before);
		bed_done(&b);
	}
}

/* ---- the binary the DaemonSet runs */

static const char *installer_bin(void)
{
	static char path[512];
	const char *build = getenv("WEFT_BUILD");

	snprintf(path, sizeof(path), "%s/weft-cni-install", build && *build ? build : "build");
	cr_assert_eq(access(path, X_OK), 0, "no '%s': run 'make test-unit'", path);
	return path;
}

static pid_t spawn(struct bed *b, const char *cmd)
{
	pid_t pid = fork();

	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDERR_FILENO);
		execl(installer_bin(), "weft-cni-install", cmd, "--conf-dir", b->conf, "--bin-dir",
		      b->bin, "--state-dir", b->state, "--plugin", b->plugin, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool chained(struct bed *b, const char *name)
{
	char *text = get(b->conf, name);
	bool yes = text && strstr(text, "\"weft-cni\"");

	free(text);
	return yes;
}

Test(cni_install, binary_runs_repairs_and_stops_without_undoing)
{
	struct bed b;
	char *conf_before, *after_install;
	int64_t t0;
	pid_t pid;

	bed_init(&b);
	put(b.conf, "10-flannel.conflist", FLANNEL_LIST, 0644);
	conf_before = snapshot(b.conf);
	pid = spawn(&b, "run");
	for (t0 = now_ms(); !chained(&b, "10-flannel.conflist") && now_ms() - t0 < 5000;)
		usleep(10000);
	cr_assert(chained(&b, "10-flannel.conflist"), "not installed");

	t0 = now_ms();
	cluster_rewrites(&b, "10-flannel.conflist", FLANNEL_LIST);
	while (!chained(&b, "10-flannel.conflist") && now_ms() - t0 < 1000)
		usleep(5000);
	cr_assert(chained(&b, "10-flannel.conflist"), "not re-chained within 1 s");

	/* SIGTERM (a restart or an upgrade): everything stays. */
	after_install = snapshot(b.conf);
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert_eq(wait_exit(pid), 0);
	assert_snap(b.conf, after_install, true, "");
	cr_assert(present(b.bin, "weft-cni"));

	cr_assert_eq(wait_exit(spawn(&b, "uninstall")), 0);
	assert_snap(b.conf, conf_before, true, "");
	cr_assert_not(present(b.bin, "weft-cni"));
	free(conf_before);
	free(after_install);
	bed_done(&b);
}

Test(cni_install, binary_reports_a_malformed_config_and_fails_install)
{
	struct bed b;

	bed_init(&b);
	put(b.conf, "10-a.conflist", "{\"name\": \"x\"}", 0644);
	cr_assert_eq(wait_exit(spawn(&b, "install")), 1);
	cr_assert_eq(wait_exit(spawn(&b, "bogus")), 2);
	bed_done(&b);
}
