/* SPDX-License-Identifier: GPL-2.0-only */
/* The world of one tests/bpf test: a test cgroup, a private bpffs in a private
 * mount namespace, and (for most tests) an open datapath over them. Shared by
 * test_datapath.c and test_redirect.c; Criterion runs each test in its own
 * process, so one instance (fx) is enough.
 */
#ifndef WEFT_TESTS_BPF_FIXTURE_H
#define WEFT_TESTS_BPF_FIXTURE_H

#include <linux/types.h>

#include <bpf/bpf.h>

#include "datapath/dp.h"

#define FX_MARK 0x77656674u	/* the agent mark dp_open writes: "weft" */
#define FX_INBOUND_MARK 0x77656675u	/* its inbound-side mark */
#define FX_PROXY_PORT 15001

/* Our paths are short ("/tmp/weft-bpffs-XXXXXX", "<cgroup mount>/weft-test-<pid>-<n>"). */
#define FX_PATH_MAX 512

struct fx {
	char cgroup[FX_PATH_MAX];	/* the programs attach here: the pods' sockets */
	char agent_cgroup[FX_PATH_MAX];	/* <cgroup>/agent: what dp_open is told is the agent's */
	char cgroup2[FX_PATH_MAX];	/* a second one, for the tests that need it */
	char bpffs[FX_PATH_MAX - 16];
	char pin_dir[FX_PATH_MAX];	/* <bpffs>/weft/node: dp_open must create it */
	struct dp_opts opts;		/* cgroup, pin_dir, FX_MARK, FX_INBOUND_MARK, agent_cgroup */
	struct dp *dp;			/* NULL after fx_setup_env() */
};

extern struct fx fx;

/* .init: root required, else the test fails; makes the cgroup and the bpffs. */
void fx_setup_env(void);

/* .init: fx_setup_env() and dp_open() (failing with dp_probe()'s reason). */
void fx_setup_dp(void);

/* .fini: dp_close, dp_cleanup, unmount, remove the cgroups. Idempotent. */
void fx_teardown(void);

/* The ids of the programs attached to @cgroup itself for @type; returns the
 * count (at most @max). Fails the test on error.
 */
__u32 fx_query(const char *cgroup, enum bpf_attach_type type, __u32 *ids, __u32 max);

/* Parse "IP/LEN" into a dp_cidr; fails the test on bad input. */
struct dp_cidr fx_cidr(const char *s);

#endif /* WEFT_TESTS_BPF_FIXTURE_H */
