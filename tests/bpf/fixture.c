// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/bpf/fixture.h: builds and tears down the cgroup,
 * bpffs and datapath of one test, on every exit path.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "addr.h"
#include "log.h"

#include "../helpers/bpffs.h"
#include "../../agent/cgroup.h"
#include "../helpers/cgroup.h"
#include "../helpers/require.h"
#include "fixture.h"

struct fx fx;

void fx_teardown(void)
{
	int err;

	dp_close(fx.dp);
	fx.dp = NULL;
	if (fx.bpffs[0]) {
		err = dp_cleanup(&fx.opts);
		if (err)
			cr_log_error("dp_cleanup: %s", strerror(-err));
		err = tbpffs_umount(fx.bpffs);
		if (err)
			cr_log_error("unmount '%s': %s", fx.bpffs, strerror(-err));
		fx.bpffs[0] = '\0';
	}
	/* The agent's cgroup first: a cgroup with a child cannot be removed. */
	for (int i = 0; i < 3; i++) {
		char *cg = i == 0 ? fx.agent_cgroup : i == 1 ? fx.cgroup2 : fx.cgroup;

		if (!cg[0])
			continue;
		err = tcg_remove(cg);
		if (err)
			cr_log_error("remove cgroup '%s': %s", cg, strerror(-err));
		cg[0] = '\0';
	}
}

/* A failed precondition: undo what exists, then fail the test with @why. */
#define setup_require(cond, ...)                                                                   \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fx_teardown();                                                             \
			cr_assert_fail(__VA_ARGS__);                                               \
		}                                                                                  \
	} while (0)

void fx_setup_env(void)
{
	uint64_t agent_id = 0;
	uint32_t agent_level = 0;
	int err, n;

	require_root();
	memset(&fx, 0, sizeof(fx));
	log_set_level(getenv("WEFT_TEST_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	/* A private mount namespace: should this process die mid-test, its
	 * bpffs mount (and every pin in it) goes with it.
	 */
	if (unshare(CLONE_NEWNS) == -1 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
		cr_log_warn("no private mount namespace (%s): a crash may leave a bpffs mounted "
			    "under /tmp", strerror(errno));
	err = tcg_create(fx.cgroup, sizeof(fx.cgroup));
	setup_require(!err, "create a test cgroup under the cgroup v2 mount: %s", strerror(-err));
	/* The agent's own cgroup, a child of the attach cgroup, as in the
	 * integration tests and on a node; processes of the test that play the
	 * agent join it.
	 */
	n = snprintf(fx.agent_cgroup, sizeof(fx.agent_cgroup), "%s/agent", fx.cgroup);
	if (n < 0 || (size_t)n >= sizeof(fx.agent_cgroup))
		fx.agent_cgroup[0] = '\0';
	setup_require(fx.agent_cgroup[0], "'%s/agent' is too long", fx.cgroup);
	if (mkdir(fx.agent_cgroup, 0755) == -1) {
		err = -errno;
		fx.agent_cgroup[0] = '\0';
		setup_require(0, "create the agent's cgroup under '%s': %s", fx.cgroup,
			      strerror(-err));
	}
	err = cgroup_id_of(fx.agent_cgroup, &agent_id, &agent_level);
	setup_require(!err, "the id of '%s': %s", fx.agent_cgroup, strerror(-err));
	err = tbpffs_mount(fx.bpffs, sizeof(fx.bpffs));
	setup_require(!err, "mount a private bpffs: %s", strerror(-err));
	snprintf(fx.pin_dir, sizeof(fx.pin_dir), "%s/weft/node", fx.bpffs);
	fx.opts = (struct dp_opts){
		.cgroup_path = fx.cgroup,
		.bpffs_dir = fx.pin_dir,
		.mark = FX_MARK,
		.inbound_mark = FX_INBOUND_MARK,
		.agent_cgroup_id = agent_id,
		.agent_cgroup_level = agent_level,
	};
}

void fx_setup_dp(void)
{
	char why[256] = "";
	int err;

	fx_setup_env();
	err = dp_open(&fx.dp, &fx.opts);
	if (err)
		(void)dp_probe(why, sizeof(why));
	setup_require(!err, "dp_open: %s (dp_probe says: %s)", strerror(-err), why);
}

/* Program ids attached to @cgroup for @type (non-effective: this cgroup's own). */
__u32 fx_query(const char *cgroup, enum bpf_attach_type type, __u32 *ids, __u32 max)
{
	__u32 cnt = max, flags = 0;
	int fd, err;

	fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open '%s': %s", cgroup, strerror(errno));
	err = bpf_prog_query(fd, type, 0, &flags, ids, &cnt);
	close(fd);
	cr_assert_eq(err, 0, "bpf_prog_query(%d): %s", type, strerror(-err));
	return cnt;
}

struct dp_cidr fx_cidr(const char *s)
{
	struct dp_cidr c = { 0 };

	cr_assert_eq(addr_parse_cidr(s, &c.net, &c.prefix_len), 0, "parse %s", s);
	return c;
}
