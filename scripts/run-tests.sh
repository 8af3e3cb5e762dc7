#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Run a Criterion test binary and fail if a sanitizer reported anything.
# Criterion forks a worker per test and judges it by what the worker reported
# before exiting; LeakSanitizer runs after that, at the worker's exit, so its
# report would otherwise be printed and ignored.
set -u
log=$(mktemp /tmp/weft-testlog.XXXXXX)
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
status=0
# The binary's status is lost in the pipe; Criterion's own summary says it.
if ! grep -q 'Synthesis: Tested: [0-9]* | Passing: [0-9]* | Failing: 0 | Crashing: 0' "$log"; then
	status=1
fi
# Only what precedes the summary: every test worker has exited by then. The
# runner process itself leaks one allocation inside libcriterion at exit
# (reported after the summary, with no frame of ours), which is not ours to fix.
if sed '/Synthesis: Tested:/q' "$log" |
	grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|crashed during its setup or teardown'; then
	echo "run-tests: a sanitizer reported a problem above; failing" >&2
	status=1
fi
# A test that could not remove its cgroups (tests/helpers/cgroup.c says so,
# from its .fini or at exit) leaves them on the host: that fails the run too.
if grep -q 'tcg: cannot remove cgroup' "$log"; then
	echo "run-tests: a test left a cgroup behind (see 'tcg:' above); failing" >&2
	status=1
fi
exit $status
