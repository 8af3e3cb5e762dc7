#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Run the libFuzzer targets built by `make fuzz-build`.
#   run.sh regress O NAME...  each target over every file of its corpus, once
#   run.sh run O NAME...      each target for $FUZZ_SECONDS, mutating;
#                             $FUZZ_JOBS targets at a time (default 1)
# A run writes the inputs it finds to O/fuzz/corpus/NAME (the checked-in
# seeds stay as they are: copy an input worth keeping by hand) and a crash to
# O/fuzz/crashes/NAME-*. The last line of each run (cov:, ft:, exec/s) goes to
# O/fuzz/NAME.log.
set -eu

mode=$1 out=$2
shift 2
here=$(dirname "$0")
fail=0

# A mutating run is one process on one core for a fixed time: with more
# cores, several targets side by side take the same coverage in less wall
# time. Each target then runs as its own invocation of this script.
jobs=${FUZZ_JOBS:-1}
if [ "$mode" = run ] && [ "$jobs" -gt 1 ] && [ $# -gt 1 ]; then
	printf '%s\n' "$@" | FUZZ_JOBS=1 xargs -P "$jobs" -n 1 "$0" run "$out"
	exit $?
fi

for name in "$@"; do
	bin=$out/fuzz/fuzz_$name
	seeds=$here/corpus/$name
	dict=""
	[ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
	case $mode in
	regress)
		if ! ls "$seeds"/* >/dev/null 2>&1; then
			echo "fuzz: $name has no corpus in $seeds" >&2
			fail=1
			continue
		fi
		# shellcheck disable=SC2086
		if ! "$bin" $dict "$seeds"/* </dev/null >"$out/fuzz/$name.regress.log" 2>&1; then
			echo "fuzz: $name fails on its corpus; see $out/fuzz/$name.regress.log" >&2
			tail -n 30 "$out/fuzz/$name.regress.log" >&2
			fail=1
		else
			echo "  fuzz: $name: $(ls "$seeds" | wc -l) corpus inputs replayed, no finding"
		fi
		;;
	run)
		mkdir -p "$out/fuzz/corpus/$name" "$out/fuzz/crashes"
		echo "  FUZZ     $name for ${FUZZ_SECONDS}s"
		# shellcheck disable=SC2086
		if ! "$bin" $dict -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
			-artifact_prefix="$out/fuzz/crashes/$name-" \
			"$out/fuzz/corpus/$name" "$seeds" </dev/null >"$out/fuzz/$name.log" 2>&1; then
			echo "fuzz: $name found a crash; see $out/fuzz/$name.log" >&2
			tail -n 40 "$out/fuzz/$name.log" >&2
			fail=1
		fi
		grep -E '^#[0-9]+.*(DONE|cov:)' "$out/fuzz/$name.log" | tail -n 1 | sed "s/^/  $name: /"
		;;
	*)
		echo "usage: $0 regress|run O NAME..." >&2
		exit 2
		;;
	esac
done
exit $fail
