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
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "addr.h"
#include "log.h"

#include "../helpers/bpffs.h"
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
	for (int i = 0; i < 2; i++) {
		char *cg = i ? fx.cgroup2 : fx.cgroup;

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
	int err;

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
	err = tbpffs_mount(fx.bpffs, sizeof(fx.bpffs));
	setup_require(!err, "mount a private bpffs: %s", strerror(-err));
	snprintf(fx.pin_dir, sizeof(fx.pin_dir), "%s/weft/node", fx.bpffs);
	fx.opts = (struct dp_opts){
		.cgroup_path = fx.cgroup,
		.bpffs_dir = fx.pin_dir,
		.mark = FX_MARK,
		.inbound_mark = FX_INBOUND_MARK,
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
