#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# For each hog policy, in ROUNDS rounds (policies interleaved): two pingpong
# pairs for SECONDS while one hog thread in a session of its own keeps a CPU
# busy. Local processes only: no network, nothing outside this folder.
set -eu
cd "$(dirname "$0")"
SECONDS_RUN=${SECONDS_RUN:-20} ROUNDS=${ROUNDS:-2}
POLICIES=${POLICIES:-"none normal nice19 idle"}
make -s
for r in $(seq "$ROUNDS"); do
	for p in $POLICIES; do
		hog=
		if [ "$p" != none ]; then
			setsid ./hog "$p" $((SECONDS_RUN + 1)) &
			hog=$!
		fi
		sleep 0.5
		setsid ./pingpong "$SECONDS_RUN" >"/tmp/sched-wake.$$.a" &
		a=$!
		setsid ./pingpong "$SECONDS_RUN" >"/tmp/sched-wake.$$.b"
		wait "$a"
		[ -n "$hog" ] && wait "$hog"
		printf 'round %s  hog %-7s  %s | %s\n' "$r" "$p" "$(cat "/tmp/sched-wake.$$.a")" \
			"$(cat "/tmp/sched-wake.$$.b")"
	done
done
rm -f "/tmp/sched-wake.$$.a" "/tmp/sched-wake.$$.b"
