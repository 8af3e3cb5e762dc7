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
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|crashed during its setup or teardown' "$log"; then
	echo "run-tests: a sanitizer reported a problem above; failing" >&2
	status=1
fi
exit $status
