#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The integration tier of `make test-integration`: the binary in eBPF mode
# over EBPF_FILTER and in nft mode over NFT_FILTER (the mode-dependent suites),
# through scripts/run-tests.sh, side by side when PARALLEL is 1.
#   scripts/run-modes.sh PARALLEL BIN EBPF_FILTER NFT_FILTER [criterion flags]
# Side by side is safe: every test makes its own namespaces (wt<pid>...),
# cgroups (weft-test-<pid>-N), bpffs mount and temp dir, and its servers
# listen on ports the kernel picks or inside its own namespaces, so the two
# runs share nothing but the CPU. Most of a test's time is spent waiting
# (processes starting, BPF programs loading, timeouts), which the other run
# fills. The nft run's output is printed when the eBPF run ends; either
# failing fails the tier.
set -u
parallel=$1 bin=$2 ebpf_filter=$3 nft_filter=$4
shift 4
here=$(dirname "$0")
nft_log=$(mktemp /tmp/weft-nft-run.XXXXXX)
nft_pid=""
cleanup() {
	[ -n "$nft_pid" ] && kill "$nft_pid" 2>/dev/null
	rm -f "$nft_log"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ "$parallel" = 1 ]; then
	WEFT_TEST_MODE=nft "$here/run-tests.sh" "$bin" "$@" --jobs 1 --filter "$nft_filter" \
		>"$nft_log" 2>&1 &
	nft_pid=$!
	echo "  (nft mode runs beside it; its output follows)"
fi
WEFT_TEST_MODE=ebpf "$here/run-tests.sh" "$bin" "$@" --jobs 1 --filter "$ebpf_filter"
ebpf=$?
printf '  %-8s %s  [%s]\n' TEST "integration (nft mode)" "$(date +%T)"
if [ -n "$nft_pid" ]; then
	wait "$nft_pid"
	nft=$?
	nft_pid=""
	cat "$nft_log"
else
	WEFT_TEST_MODE=nft "$here/run-tests.sh" "$bin" "$@" --jobs 1 --filter "$nft_filter"
	nft=$?
fi
[ "$ebpf" = 0 ] && [ "$nft" = 0 ]
