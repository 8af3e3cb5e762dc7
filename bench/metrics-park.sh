#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# How long a /metrics scrape parks the proxy workers (workers_isolate() to
# workers_release(), timed by perf uprobes) with 10,000 Services of two
# endpoints (bench/churn.py's services()), two workers, eBPF mode, in a
# network namespace, a cgroup and a bpffs of its own; 20 scrapes.
#
# usage: bench/metrics-park.sh [AGENT_BINARY [LABEL]]   (root; perf)
# prints: LABEL scrapes N median X ms min Y max Z
set -eu
A=$(realpath "${1:-$(dirname "$0")/../build/weft-agent}")
L=${2:-weft-agent}
HERE=$(cd "$(dirname "$0")" && pwd)
P=wpk$$
TMP=$(mktemp -d "/tmp/weft-park-$$-XXXXXX")
CG_ROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
CG=$CG_ROOT/weft-park-$$
AP=
cleanup() {
	set +e
	[ -n "$AP" ] && kill "$AP" && wait "$AP" 2>/dev/null
	"$A" --cgroup "$CG" --bpffs "$TMP/bpffs/weft" --run-dir "$TMP/run" --cleanup >/dev/null 2>&1
	echo $$ > "$CG_ROOT/cgroup.procs"
	umount "$TMP/bpffs"
	ip netns del "$P"
	for _ in $(seq 50); do rmdir "$CG/agent" "$CG" 2>/dev/null; [ -d "$CG" ] || break; sleep 0.1; done
	perf probe -q -d 'probe_weft*' 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
# The agent's programs attach to this cgroup, never to the machine's root.
mkdir "$CG" "$CG/agent"
echo $$ > "$CG/cgroup.procs"
mkdir -p "$TMP/bpffs" && mount -t bpf bpf "$TMP/bpffs"
ip netns add "$P" && ip -n "$P" link set lo up
python3 - "$HERE" "$TMP/reg.yaml" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from churn import services
base = open(sys.argv[1] + "/services.yaml").read()
open(sys.argv[2], "w").write(base + services(10000, 2, 0))
PY
perf probe -q -x "$A" -a workers_isolate -a workers_release
(echo "$BASHPID" > "$CG/agent/cgroup.procs" && exec nsenter --net="/run/netns/$P" "$A" \
	--registry "file:$TMP/reg.yaml" --cgroup "$CG" --bpffs "$TMP/bpffs/weft" --run-dir "$TMP/run" \
	--mode ebpf --workers 2 --metrics-addr 127.0.0.1:9912) >"$TMP/agent.log" 2>&1 &
AP=$!
for _ in $(seq 200); do [ -S "$TMP/run/admin.sock" ] && break; sleep 0.1; done
sleep 3	# the 10,000 Services loaded and published
scrape() { nsenter --net="/run/netns/$P" curl -sf http://127.0.0.1:9912/metrics -o /dev/null; }
scrape || { cat "$TMP/agent.log" >&2; exit 1; }
perf record -q -o "$TMP/p.data" -e 'probe_weft*:*' -p "$AP" -- sleep 10 2>/dev/null &
PR=$!
sleep 1
for _ in $(seq 20); do scrape; sleep 0.3; done
wait "$PR"
perf script -i "$TMP/p.data" -F time,event 2>/dev/null | python3 -c "
import sys
t0, d = None, []
for line in sys.stdin:
    f = line.split()
    t = float(f[0].rstrip(':'))
    if 'isolate' in f[1]:
        t0 = t
    elif 'release' in f[1] and t0 is not None:
        d.append((t - t0) * 1e3)
        t0 = None
d.sort()
print('$L scrapes', len(d), 'median %.2f ms min %.2f max %.2f' % (d[len(d) // 2], d[0], d[-1]))"
