/* SPDX-License-Identifier: GPL-2.0-only */
/* Preconditions of privileged tests. A missing privilege or feature fails the
 * test with the reason and the fix, loudly: a test that passes without having
 * run proves nothing. Include after <criterion/criterion.h>.
 */
#ifndef WEFT_TESTS_REQUIRE_H
#define WEFT_TESTS_REQUIRE_H

#include <unistd.h>

/* Abort the current test unless it runs as root. */
#define require_root()                                                                             \
	do {                                                                                       \
		if (geteuid() != 0)                                                                \
			cr_assert_fail("needs root (BPF, cgroups, namespaces, mounts): run "       \
				       "'make test-bpf' as root");                                 \
	} while (0)

/* Abort the current test with @why (printf-style) unless @cond holds. */
#define require(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			cr_assert_fail(__VA_ARGS__);                                               \
	} while (0)

#endif /* WEFT_TESTS_REQUIRE_H */
