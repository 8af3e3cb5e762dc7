// SPDX-License-Identifier: GPL-2.0-only
/* Choosing the capture mode: --mode auto picks eBPF where the kernel has
 * every hook and nft where it does not (the probe is made to miss them with
 * WEFT_PROBE_HIDE), says which and why, and a restart in the other mode
 * takes the enrolled pods over without leaving the first mode's state.
 * Runs once, not per mode: it switches modes itself.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "datapath/nft.h"
#include "fixture.h"
#include "netns.h"
#include "sock.h"
#include "tns.h"

static void up(void)
{
	fixture_up();
	fixture_backends_start(false);
}

static void down(void)
{
	unsetenv("WEFT_PROBE_HIDE");
	fixture_backends_stop();
	fixture_down();
}

TestSuite(modes, .init = up, .fini = down, .timeout = 120);

static void restart(const char *mode, const char *hide)
{
	cr_assert_eq(tenv_agent_stop(&env), 0, "the agent did not exit cleanly, see %s",
		     env.agent_log);
	if (hide)
		setenv("WEFT_PROBE_HIDE", hide, 1);
	else
		unsetenv("WEFT_PROBE_HIDE");
	snprintf(env.extra_args, sizeof(env.extra_args), "--mode %s", mode);
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent --mode %s did not start, see %s", mode,
		     env.agent_log);
}

/* /v1/status's string @key, copied into @buf ("" when absent). */
static const char *status_str(const char *key, char *buf, size_t len)
{
	json_object *st = tenv_admin_get(&env, "/v1/status"), *v;

	snprintf(buf, len, "%s",
		 st && json_object_object_get_ex(st, key, &v) ? json_object_get_string(v) : "");
	json_object_put(st);
	return buf;
}

static bool table_in(const char *ns)
{
	struct nft_pod_state st;
	char path[128];
	int fd = netns_open(tns_path(ns, path, sizeof(path)));

	cr_assert_geq(fd, 0, "open netns %s", ns);
	cr_assert_eq(nft_pod_read(fd, &st), 0);
	close(fd);
	return st.table_present;
}

Test(modes, auto_picks_nft_when_the_ebpf_hooks_are_missing_and_says_why)
{
	char out[8192], buf[640];

	/* Hide one hook: the probe must say that one is what is missing. */
	restart("auto", "prog_sk_lookup");
	cr_assert_str_eq(status_str("mode", buf, sizeof(buf)), "nft");
	cr_assert(strstr(status_str("mode_reason", buf, sizeof(buf)), "sk_lookup") != NULL,
		  "the reason does not name the missing feature: %s", buf);
	/* The pods enrolled under eBPF mode are taken over: their tables are
	 * there, the programs are gone, and capture works.
	 */
	cr_assert(table_in("a"), "pod a has no table inet weft after the switch to nft");
	cr_assert_eq(tenv_status_counter(&env, "bpf.counters.redirected"), -1,
		     "nft mode still reports BPF counters");
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert(!strncmp(out, "web-", 4) && strstr(out, " 198.18.1.2"), "got '%s'", out);
	/* meshctl check: the mode, and what eBPF mode misses here. */
	tenv_capture(out, sizeof(out), "%s/san/meshctl --socket %s/admin.sock check 2>&1",
		     env.build, env.run_dir);
	cr_assert(strstr(out, "PASS  capture mode") && strstr(out, "nft"),
		  "meshctl check does not report the mode: %s", out);
	cr_assert(strstr(out, "ebpf mode needs") && strstr(out, "sk_lookup"),
		  "meshctl check does not say what eBPF mode misses: %s", out);
	cr_assert(strstr(out, "PASS  nft mode needs") != NULL,
		  "meshctl check does not pass nft mode's needs: %s", out);
	cr_assert(strstr(out, "programs attached") == NULL,
		  "meshctl check ran an eBPF-only check in nft mode: %s", out);

	/* And back: eBPF mode removes the nft tables it finds. */
	restart("auto", NULL);
	cr_assert_str_eq(status_str("mode", buf, sizeof(buf)), "ebpf");
	cr_assert(!table_in("a"), "the nft table of pod a survived the switch back to eBPF");
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert_gt(tenv_status_counter(&env, "bpf.counters.redirected"), 0);
}

Test(modes, a_mode_the_kernel_cannot_run_is_refused_with_the_reason)
{
	char out[1024];

	cr_assert_eq(tenv_agent_stop(&env), 0);
	setenv("WEFT_PROBE_HIDE", "ebpf", 1);
	snprintf(env.extra_args, sizeof(env.extra_args), "--mode ebpf");
	cr_assert_neq(tenv_agent_start(&env), 0, "--mode ebpf started without the eBPF hooks");
	cr_assert_eq(tenv_capture(out, sizeof(out),
				  "grep -m1 'eBPF mode needs what this kernel lacks' %s",
				  env.agent_log),
		     0, "the log does not say why --mode ebpf was refused (see %s)", env.agent_log);
	unsetenv("WEFT_PROBE_HIDE");
	env.extra_args[0] = '\0';
	cr_assert_eq(tenv_agent_start(&env), 0);
}

/* The kernel fast path of opaque TCP is eBPF mode's only (docs/datapath.md):
 * asked for with --mode nft it is refused, naming the clash; when --mode
 * auto falls back to nft, the agent starts and relays with splice.
 */
Test(modes, the_sockmap_fast_path_is_refused_in_nft_mode)
{
	char out[1024];

	cr_assert_eq(tenv_agent_stop(&env), 0);
	snprintf(env.extra_args, sizeof(env.extra_args), "--mode nft --opaque-fastpath sockmap");
	cr_assert_neq(tenv_agent_start(&env), 0, "--mode nft took --opaque-fastpath sockmap");
	cr_assert_eq(tenv_capture(out, sizeof(out),
				  "grep -m1 'opaque-fastpath sockmap is not supported with --mode nft' %s",
				  env.agent_log),
		     0, "the log does not say why the fast path was refused (see %s)", env.agent_log);

	setenv("WEFT_PROBE_HIDE", "prog_sk_lookup", 1);
	snprintf(env.extra_args, sizeof(env.extra_args), "--mode auto --opaque-fastpath sockmap");
	cr_assert_eq(tenv_agent_start(&env), 0, "--mode auto did not start, see %s", env.agent_log);
	cr_assert_eq(tenv_capture(out, sizeof(out), "grep -m1 'relaying with splice' %s",
				  env.agent_log),
		     0, "the agent does not say it relays with splice (see %s)", env.agent_log);
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert(!strncmp(out, "web-", 4), "got '%s'", out);
}
