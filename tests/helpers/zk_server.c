// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/zk_server.h. */
/* The synchronous calls of the multi-threaded client are behind THREADED. */
#define THREADED
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "zk_server.h"

#define JAVA_BIN "/usr/bin/java"
#define ZK_CLASSPATH "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
#define START_TIMEOUT_MS 30000
#define CLIENT_SESSION_MS 10000

static void stop_tracked(void *s)
{
	tzk_stop(s);
}

/* "ruok" → "imok": the server serves. */
static bool imok(void *ctx)
{
	struct tzk *s = ctx;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(s->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 1 };
	char buf[8] = "";
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = false;

	if (fd == -1)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && write(fd, "ruok", 4) == 4 &&
	    recv(fd, buf, 4, MSG_WAITALL) == 4)
		ok = !memcmp(buf, "imok", 4);
	close(fd);
	return ok;
}

static int spawn(struct tzk *s)
{
	char cfg[PATH_MAX + 16], log[PATH_MAX + 16];
	char *argv[] = {
		JAVA_BIN, "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dzookeeper.admin.enableServer=false", "-cp", ZK_CLASSPATH,
		"org.apache.zookeeper.server.ZooKeeperServerMain", cfg, NULL,
	};
	FILE *f;

	snprintf(cfg, sizeof(cfg), "%s/zoo.cfg", s->dir);
	snprintf(log, sizeof(log), "%s/zookeeper.log", s->dir);
	f = fopen(cfg, "w");
	if (!f)
		return -1;
	fprintf(f,
		"tickTime=%d\ndataDir=%s/data\nclientPort=%u\nclientPortAddress=127.0.0.1\n"
		"minSessionTimeout=%d\nmaxSessionTimeout=60000\nadmin.enableServer=false\n"
		"4lw.commands.whitelist=ruok\n",
		TZK_TICK_MS, s->dir, s->port, TZK_MIN_SESSION_MS);
	if (fclose(f))
		return -1;
	snprintf(s->hosts, sizeof(s->hosts), "127.0.0.1:%u", s->port);
	s->pid = tproc_spawn(argv, log, SIGKILL);
	if (s->pid < 0) {
		s->pid = 0;
		return -1;
	}
	tproc_track(s, stop_tracked);
	return tproc_wait_ready(&s->pid, START_TIMEOUT_MS, 20, imok, s) ? -1 : 0;
}

int tzk_start(struct tzk *s)
{
	memset(s, 0, sizeof(*s));
	if (tproc_mkdtemp(s->dir, sizeof(s->dir), "zk"))
		return -1;
	for (int attempt = 0; attempt < 3; attempt++) {
		s->port = tproc_free_port();
		if (s->port && !spawn(s))
			return 0;
		tzk_kill(s);
	}
	return -1;
}

int tzk_restart(struct tzk *s)
{
	tzk_kill(s);
	return spawn(s);
}

void tzk_kill(struct tzk *s)
{
	/* A fresh client after a restart connects at once; the old one would
	 * wait out its reconnect delays.
	 */
	if (s->zh)
		zookeeper_close(s->zh);
	s->zh = NULL;
	tproc_kill(s->pid);
	s->pid = 0;
}

void tzk_pause(struct tzk *s, bool paused)
{
	if (s->pid > 0)
		kill(s->pid, paused ? SIGSTOP : SIGCONT);
}

void tzk_stop(struct tzk *s)
{
	tzk_kill(s);
	tproc_untrack(s);
	tproc_rmtree(s->dir);
}

static void quiet(const char *msg)
{
	(void)msg;
}

zhandle_t *tzk_client(struct tzk *s)
{
	uint64_t until = tproc_now_ms() + 10000;

	if (s->zh && zoo_state(s->zh) == ZOO_CONNECTED_STATE)
		return s->zh;
	if (s->zh && zoo_state(s->zh) != ZOO_CONNECTING_STATE &&
	    zoo_state(s->zh) != ZOO_ASSOCIATING_STATE) {
		zookeeper_close(s->zh);
		s->zh = NULL;
	}
	if (!s->zh)
		s->zh = zookeeper_init2(s->hosts, NULL, CLIENT_SESSION_MS, NULL, NULL, 0, quiet);
	while (s->zh && tproc_now_ms() < until) {
		if (zoo_state(s->zh) == ZOO_CONNECTED_STATE)
			return s->zh;
		usleep(10000);
	}
	return NULL;
}

int tzk_put(struct tzk *s, const char *path, const char *value)
{
	zhandle_t *zh = tzk_client(s);
	int len = (int)strlen(value), rc;
	char parent[1024];

	if (!zh)
		return ZCONNECTIONLOSS;
	rc = zoo_set(zh, path, value, len, -1);
	if (rc != ZNONODE)
		return rc;
	snprintf(parent, sizeof(parent), "%s", path);
	for (char *p = strchr(parent + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		rc = zoo_create(zh, parent, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
		*p = '/';
		if (rc != ZOK && rc != ZNODEEXISTS)
			return rc;
	}
	return zoo_create(zh, path, value, len, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
}

int tzk_del(struct tzk *s, const char *path)
{
	zhandle_t *zh = tzk_client(s);
	int rc;

	if (!zh)
		return ZCONNECTIONLOSS;
	rc = zoo_delete(zh, path, -1);
	return rc == ZNONODE ? ZOK : rc;
}

int tzk_exists(struct tzk *s, const char *path)
{
	zhandle_t *zh = tzk_client(s);
	struct Stat st;
	int rc;

	if (!zh)
		return -1;
	rc = zoo_exists(zh, path, 0, &st);
	return rc == ZOK ? 1 : rc == ZNONODE ? 0 : -1;
}

int tzk_stat(struct tzk *s, const char *path, struct Stat *st)
{
	zhandle_t *zh = tzk_client(s);

	return zh ? zoo_exists(zh, path, 0, st) : ZCONNECTIONLOSS;
}

static void rearmed(int rc, const struct Stat *st, const void *data)
{
	(void)rc;
	(void)st;
	(void)data;
}

/* The client library's completion thread: count, then watch again. */
static void on_watch_event(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct tzk_watch *w = ctx;

	pthread_mutex_lock(&w->lock);
	if (type == ZOO_SESSION_EVENT)
		w->lost |= state != ZOO_CONNECTED_STATE;
	else if (type == ZOO_CREATED_EVENT)
		w->created++;
	else if (type == ZOO_DELETED_EVENT)
		w->deleted++;
	else if (type == ZOO_CHANGED_EVENT)
		w->changed++;
	pthread_mutex_unlock(&w->lock);
	if (type != ZOO_SESSION_EVENT && path)
		(void)zoo_awexists(zh, w->path, on_watch_event, w, rearmed, NULL);
}

int tzk_watch_start(struct tzk *s, struct tzk_watch *w, const char *path)
{
	uint64_t until = tproc_now_ms() + 10000;
	struct Stat st;
	int rc;

	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->zh = zookeeper_init2(s->hosts, on_watch_event, CLIENT_SESSION_MS, NULL, w, 0, quiet);
	while (w->zh && zoo_state(w->zh) != ZOO_CONNECTED_STATE && tproc_now_ms() < until)
		usleep(10000);
	if (!w->zh || zoo_state(w->zh) != ZOO_CONNECTED_STATE)
		return -1;
	rc = zoo_wexists(w->zh, w->path, on_watch_event, w, &st);
	return rc == ZOK || rc == ZNONODE ? 0 : -1;
}

void tzk_watch_counts(struct tzk_watch *w, unsigned int *created, unsigned int *deleted,
		      unsigned int *changed, bool *lost)
{
	pthread_mutex_lock(&w->lock);
	*created = w->created;
	*deleted = w->deleted;
	*changed = w->changed;
	*lost = w->lost;
	pthread_mutex_unlock(&w->lock);
}

void tzk_watch_stop(struct tzk_watch *w)
{
	if (!w->zh)
		return;
	zookeeper_close(w->zh);
	w->zh = NULL;
	pthread_mutex_destroy(&w->lock);
}
