#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Remove what a killed test run or demo left behind. Only objects whose name
# carries weft's test prefix AND the pid of a process that no longer exists are
# touched: namespaces wt<pid>*/wd<pid>*, cgroups weft-test-<pid>-*/weft-demo-<pid>,
# bpffs mounts and temp folders /tmp/weft-{test,bpffs,demo,etcd,zk}-<pid>-*.
set -u
[ "$(id -u)" = 0 ] || exit 0
dead() { [ ! -d "/proc/$1" ]; }

cg_root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
for cg in "$cg_root"/weft-test-* "$cg_root"/weft-demo-*; do
	[ -d "$cg" ] || continue
	pid=$(basename "$cg" | sed -E 's/^weft-(test|demo)-([0-9]+).*/\2/')
	dead "$pid" || continue
	# The test's own cgroups under it (the agent's) first: a cgroup with a
	# child cannot be removed. Deepest first.
	for sub in $(find "$cg" -mindepth 1 -type d | sort -r) "$cg"; do
		for p in $(cat "$sub/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$sub" 2>/dev/null && break; sleep 0.1; done
	done
	if [ -d "$cg" ]; then
		echo "sweep: cannot remove stale cgroup $cg" >&2
	else
		echo "sweep: removed stale cgroup $cg"
	fi
done
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^w[td][0-9]+'); do
	pid=$(echo "$ns" | sed -E 's/^w[td]([0-9]+).*/\1/')
	dead "$pid" || continue
	ip netns del "$ns" && echo "sweep: removed stale netns $ns"
done
for m in $(awk '$3 == "bpf" && $2 ~ /^\/tmp\/weft-/ {print $2}' /proc/mounts); do
	pid=$(echo "$m" | sed -nE 's/^\/tmp\/weft-[a-z]+-([0-9]+)-.*/\1/p')
	[ -n "$pid" ] && dead "$pid" || continue
	umount "$m" && echo "sweep: unmounted stale bpffs $m"
done
for d in /tmp/weft-test-* /tmp/weft-bpffs-* /tmp/weft-demo-* /tmp/weft-etcd-* /tmp/weft-zk-*; do
	[ -d "$d" ] || continue
	pid=$(echo "$d" | sed -nE 's/^\/tmp\/weft-[a-z]+-([0-9]+)-.*/\1/p')
	[ -n "$pid" ] && dead "$pid" || continue
	awk -v d="$d" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r | xargs -r umount
	rm -rf "$d"
done
exit 0
