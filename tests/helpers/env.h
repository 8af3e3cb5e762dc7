/* SPDX-License-Identifier: GPL-2.0-only */
/* One isolated weft installation per integration test: its own cgroup (which
 * the test process joins, so the agent and every client run inside it), a
 * private bpffs mount, a run dir and registry file in a temp dir, the real
 * weft-agent / weft-cni / meshctl binaries (the sanitizer builds) from
 * $WEFT_BUILD (the agent from $WEFT_AGENT when set), and the topology of topo.h.
 * A test with several agents sets up one tenv per node (tenv_node_setup()).
 */
#ifndef WEFT_TEST_ENV_H
#define WEFT_TEST_ENV_H

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tenv {
	char tmp[PATH_MAX];
	char cgroup[PATH_MAX];		/* --cgroup: the test, its clients and pods */
	char agent_cgroup[PATH_MAX];	/* a child of it: the agent alone */
	char bpffs_mnt[PATH_MAX];
	char bpffs[PATH_MAX];
	char run_dir[PATH_MAX];
	char registry[PATH_MAX];
	char agent_log[PATH_MAX];
	char build[PATH_MAX];
	char registry_spec[PATH_MAX];	/* --registry value; "" = file:<registry> */
	char extra_args[2 * PATH_MAX];	/* more weft-agent options, "" = none */
	pid_t agent;
};

/* The capture mode the suites run in: $WEFT_TEST_MODE (ebpf, nft, auto),
 * "ebpf" when unset. `make test-integration` runs the capture, relay and
 * resilience suites once per mode: the same tests, not copies.
 */
const char *tenv_mode(void);
bool tenv_mode_is(const char *mode);

/* Set everything up; asserts (failing the test with the reason) on error. */
void tenv_setup(struct tenv *e);
/* Stop the agent, remove topology, cgroup, mounts and files. Idempotent. */
void tenv_teardown(struct tenv *e);

/* One node of a test that runs several agents (tests/integration/nodes.h):
 * the agent's half of tenv_setup() (a temp dir with run dir, registry file
 * and log, the cgroup @parent/@name for the node's pods with the agent's
 * child below it, a private bpffs), but no cgroup joined and no topology.
 * @parent is a cgroup the caller made (never the machine's root). Asserts
 * on error; the caller has tenv_node_teardown() run on every way out.
 */
void tenv_node_setup(struct tenv *e, const char *parent, const char *name);
/* Stop the node's agent, then remove its cgroups, bpffs and files (which
 * takes what the agent attached and pinned there with them). Idempotent.
 */
void tenv_node_teardown(struct tenv *e);
/* Say that the tear-downs from here on run from exit() (an atexit handler):
 * a cgroup they cannot remove is reported on stderr only
 * (scripts/run-tests.sh fails the run on it), not as an assertion too.
 */
void tenv_exiting(void);

/* Replace the registry file atomically (write + rename). 0 or -errno. */
int tenv_write_registry(struct tenv *e, const char *yaml);

/* Start weft-agent (set registry_spec and extra_args after tenv_setup() to
 * change its registry); returns once admin.sock answers. 0 or -1 (log kept).
 */
int tenv_agent_start(struct tenv *e);
/* tenv_agent_start() in two halves, so that several agents start at once:
 * spawn (does not block; 0 or -1), then wait until admin.sock answers
 * (0, or -1 when the agent exited or did not answer within 10 s).
 */
int tenv_agent_spawn(struct tenv *e);
int tenv_agent_wait(struct tenv *e);
/* SIGTERM and reap; returns the agent's exit status (0 = clean, no leaks). */
int tenv_agent_stop(struct tenv *e);
/* Run weft-agent --cleanup with the same options; returns its exit status. */
int tenv_agent_cleanup(struct tenv *e);

/* Run weft-cni @cmd for pod @k8s_ns/@pod in test netns @ns with IP @ip (as
 * a runtime would, after its own plugin). Stdout goes to @out. Returns the
 * plugin's exit status.
 */
int tenv_cni(struct tenv *e, const char *cmd, const char *ns, const char *k8s_ns,
	     const char *pod, const char *ip, char *out, size_t len);

/* GET @path from the admin API; the parsed JSON (caller puts it) or NULL. */
json_object *tenv_admin_get(struct tenv *e, const char *path);

/* The pid of the agent answering @e's admin API (its /v1/status), or 0: after
 * a hand-over, whether the successor has taken over.
 */
long long tenv_admin_pid(struct tenv *e);

/* Read a counter at a dotted path ("connections.passthrough") of /v1/status. */
long long tenv_status_counter(struct tenv *e, const char *dotted);
/* The agent's open descriptors; with @pipes, how many of them are pipes. */
long tenv_agent_fds(struct tenv *e, long *pipes);

/* With $WEFT_TEST_PHASES set to a file: append "<monotonic ms> <suite>/<test>
 * @what" to it, so the time each phase of a test's set-up and tear-down takes
 * can be read back (docs/testing.md, "Where the time goes"). No-op otherwise.
 */
void tenv_phase(const char *what);

/* Run a command line, capture stdout into @out; returns exit status. */
int tenv_capture(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* WEFT_TEST_ENV_H */
