/* SPDX-License-Identifier: GPL-2.0-only */
/* Helper server processes of the tests (etcd, ZooKeeper, the fake Kubernetes
 * API server, weft-agent): free ports, spawning one that dies with the test,
 * waiting until it serves, killing it, stopping whatever is still live at exit,
 * and the scratch folder each keeps its files in.
 */
#ifndef WEFT_TEST_PROC_H
#define WEFT_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The interpreter of the tests' Python helpers (the fake API and Consul
 * servers, small clients): Debian's, which docs/dependencies.md lists. Not
 * "python3" from PATH: a version manager's shim found first there (pyenv's)
 * costs about 2 s a start on a loaded machine, and some tests start dozens.
 */
#define TPROC_PYTHON "/usr/bin/python3"

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t tproc_now_ms(void);

/* A TCP port free on 127.0.0.1 right now (the kernel's pick), or 0. */
uint16_t tproc_free_port(void);

/* Start @argv[0] (a path, or a name looked up in PATH), sent @deathsig when
 * this process dies. With @log, stdout and stderr are appended to it;
 * without, they are this process'. Does not block. The pid, or -1.
 */
pid_t tproc_spawn(char *const argv[], const char *log, int deathsig);

typedef bool (*tproc_ready_fn)(void *ctx);

/* Poll @ready(@ctx) every @every_ms until it holds (0), the child *@pid
 * exits (-ECHILD; it is reaped and *@pid set to 0) or @timeout_ms pass
 * (-ETIMEDOUT). Blocks.
 */
int tproc_wait_ready(pid_t *pid, uint32_t timeout_ms, uint32_t every_ms, tproc_ready_fn ready,
		     void *ctx);

/* A server that writes its port to a file once it listens: tproc_port_written
 * is the tproc_wait_ready() check, which fills @port from @path.
 */
struct tproc_port_file {
	const char *path;
	uint16_t port;
};
bool tproc_port_written(void *ctx);

/* SIGKILL @pid and reap it; nothing for a pid <= 0. Blocks until reaped. */
void tproc_kill(pid_t pid);

/* Have @stop(@obj) called at exit (Criterion skips .fini when .init fails
 * an assertion) until tproc_untrack(@obj). Tracking an object twice is one.
 */
void tproc_track(void *obj, void (*stop)(void *obj));
void tproc_untrack(void *obj);

/* Make the scratch folder /tmp/weft-@what-<pid>-XXXXXX in @dir (@len bytes).
 * 0, or -1 with @dir "".
 */
int tproc_mkdtemp(char *dir, size_t len, const char *what);

/* Remove the folder @dir made by tproc_mkdtemp(), unless WEFT_KEEP_TMP is set,
 * and set @dir to "". Nothing for "". Blocks.
 */
void tproc_rmtree(char *dir);

#endif /* WEFT_TEST_PROC_H */
