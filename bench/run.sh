#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# weft's benchmark (issues #6, #11 and #14): the same clients and server with
# no mesh ("direct"), through weft in eBPF mode (HTTP-aware, and with every
# service opaque TCP: "weft-tcp"), through weft in nft mode, through HAProxy
# behind an nftables REDIRECT (the interception of iptables-based meshes) in
# `mode tcp` and in `mode http` with upstream reuse ("haproxy-http"), and, for
# inbound capture, from the direct client to a second server whose pod is
# meshed ("weft-in"), and between two meshed pods, both ends captured by one
# agent, in plaintext ("weft-mesh") and over mutual TLS ("weft-mtls", issue
# #16), in network namespaces on this machine only; and DNS (issue #15): the
# meshed pods' queries (eBPF and nft capture) answered or forwarded by the
# agent against the direct client's to the same resolver (dnsmasq), with
# dnsperf. The server
# is nginx (Debian's, its own configuration) or bench/httpd.c. Rounds are
# interleaved: each round runs every configuration once per workload, in a
# rotating order, so drift hits all alike. Every process the benchmark starts
# runs in its own session (its own scheduling autogroup) and in its role's
# cgroup. Results: bench/results/<date>.md (+ .json), bench/results/latest.md.
# What is measured and why: docs/benchmarks.md.
#
# Everything lives in namespaces wb<pid>*, the cgroup weft-bench-<pid> and
# /tmp/weft-bench-<pid>-*, and is removed on every exit path.
#
# Knobs (environment): WEFT_BUILD (binaries; default ../build), BENCH_ROUNDS (5),
# BENCH_SECONDS (5, per run), BENCH_RATE (2000 req/s, latency), BENCH_CONNS
# (10000, the idle-connection memory test), BENCH_SERVER (nginx or httpd: the
# backend), BENCH_CONFIGS ("direct weft weft-tcp weft-nft haproxy haproxy-http
# weft-in weft-mesh weft-mtls", any subset), BENCH_ONLY (mtls: only the mutual
# TLS comparison, i.e. BENCH_CONFIGS "direct weft weft-mesh weft-mtls", no
# round-trip workload, BENCH_PROFILE 0, unless set; dns: only the DNS rows,
# BENCH_CONFIGS "direct weft weft-nft", no HTTP workload, no memory test,
# BENCH_PROFILE 0; publish: only the "publishing under load" rows, BENCH_CONFIGS "weft"),
# BENCH_CHURN_SERVICES (10000, the Services a publish brings in those rows,
# with 10 endpoints each), BENCH_DNS_CLIENTS (20, queries outstanding in the DNS queries/s test),
# BENCH_DNS_RATE (1000 queries/s, the DNS latency test), BENCH_PROFILE (1: after the measurements,
# one more connection-per-request run per configuration under `perf record`,
# restricted to the benchmark's cgroup, to say where the CPU goes, and with
# the DNS rows one more queries/s run per meshed row, the agent's cgroup
# alone; 0: none),
# BENCH_WORKLOADS (a subset of the workloads BENCH_ONLY selects, e.g. "bulk"),
# BENCH_KEEP_RAW (a folder to copy the raw outputs to, for report.py),
# WEFT_WORKERS (the agent's --workers; unset: one per online CPU) reaches the
# agent through its environment, like every WEFT_* option.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
B=${WEFT_BUILD:-$HERE/../build}
ROUNDS=${BENCH_ROUNDS:-5}
DUR=${BENCH_SECONDS:-5}
RATE=${BENCH_RATE:-2000}
CONNS=${BENCH_CONNS:-10000}
SERVER=${BENCH_SERVER:-nginx}
# "handshake": a new connection per request to the meshed pairs' opaque-TCP
# service, so each one is a new upstream connection (an mTLS handshake for
# weft-mtls); the HTTP-aware services pool upstream connections.
case ${BENCH_ONLY:-} in
"")
	PROFILE=${BENCH_PROFILE:-1}
	CONFIGS=${BENCH_CONFIGS:-direct weft weft-tcp weft-nft haproxy haproxy-http weft-in weft-mesh weft-mtls}
	WORKLOADS="keepalive close bulk latency pingpong handshake" ;;
mtls)	# the mutual TLS rows alone (issue #16), in a few minutes
	PROFILE=${BENCH_PROFILE:-0}
	CONFIGS=${BENCH_CONFIGS:-direct weft weft-mesh weft-mtls}
	WORKLOADS="keepalive close bulk latency handshake" ;;
dns)	# the DNS rows alone (issue #15): the meshed pods of both capture modes
	# (weft, weft-nft) and the direct client, no HTTP workload, no memory test
	PROFILE=${BENCH_PROFILE:-0}
	CONFIGS=${BENCH_CONFIGS:-direct weft weft-nft}
	WORKLOADS="" ;;
publish)	# the "publishing under load" rows alone (issue #15)
	PROFILE=${BENCH_PROFILE:-0}
	CONFIGS=${BENCH_CONFIGS:-weft}
	WORKLOADS="" ;;
*)	echo "bench: BENCH_ONLY must be empty, mtls, dns or publish" >&2; exit 1 ;;
esac
# BENCH_WORKLOADS: a subset of those workloads, e.g. "bulk latency" to
# measure (or profile) one change quickly.
if [ -n "${BENCH_WORKLOADS:-}" ]; then
	for w in $BENCH_WORKLOADS; do
		[[ " $WORKLOADS " == *" $w "* ]] ||
			{ echo "bench: BENCH_WORKLOADS: '$w' is not one of: $WORKLOADS" >&2; exit 1; }
	done
	WORKLOADS=$BENCH_WORKLOADS
fi
# The DNS rows (issue #15) need the direct client and a meshed pod of either
# capture mode (weft: eBPF, weft-nft: nft), each mode selected giving its own
# rows; they run in every full run and in BENCH_ONLY=dns.
DNS=0
case ${BENCH_ONLY:-} in "" | dns)
	[[ " $CONFIGS " == *" direct "* ]] &&
		[[ " $CONFIGS " == *" weft "* || " $CONFIGS " == *" weft-nft "* ]] && DNS=1 ;;
esac
[ "${BENCH_ONLY:-}" = dns ] && [ "$DNS" = 0 ] &&
	{ echo "bench: BENCH_ONLY=dns needs direct and weft or weft-nft in BENCH_CONFIGS" >&2; exit 1; }
# Publishing under load (issue #15): requests at a fixed rate through weft
# while its registry brings and changes thousands of Services; every full
# run and BENCH_ONLY=publish, when weft is selected.
PUBLISH=0
case ${BENCH_ONLY:-} in "" | publish) [[ " $CONFIGS " == *" weft "* ]] && PUBLISH=1 ;; esac
[ "${BENCH_ONLY:-}" = publish ] && [ "$PUBLISH" = 0 ] && { echo "bench: BENCH_ONLY=publish needs weft in BENCH_CONFIGS" >&2; exit 1; }
CHURN_SERVICES=${BENCH_CHURN_SERVICES:-10000}
DNS_CLIENTS=${BENCH_DNS_CLIENTS:-20}	# outstanding queries of the queries/s test
DNS_RATE=${BENCH_DNS_RATE:-1000}	# queries/s of the latency test
# Runs that are not made: HAProxy in HTTP mode has no bulk TCP or sockperf
# ping-pong of its own (a `mode tcp` frontend would be the haproxy row again);
# the handshake workload exists only for the meshed pairs.
SKIP="bulk.haproxy-http pingpong.haproxy-http"
for c in direct weft weft-tcp weft-nft haproxy haproxy-http weft-in; do SKIP="$SKIP handshake.$c"; done

die() { echo "bench: $*" >&2; exit 1; }
say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (BPF, namespaces, cgroups)"
case $SERVER in nginx | httpd) ;; *) die "BENCH_SERVER must be nginx or httpd" ;; esac
for t in wrk iperf3 sockperf haproxy nft nsenter setsid ss curl python3 cc $SERVER; do
	[ "$t" = httpd ] && continue	# built below
	command -v "$t" >/dev/null || die "$t not found: run 'scripts/deps.sh bench'"
done
for f in weft-agent weft-cni meshctl; do
	[ -x "$B/$f" ] || die "$B/$f missing: run 'make' (or set WEFT_BUILD)"
done
[[ " $CONFIGS " == *" weft-mtls "* ]] && { command -v openssl >/dev/null || die "openssl not found (weft-mtls makes a CA)"; }
if [ "$DNS" = 1 ]; then
	for t in dnsperf dnsmasq; do command -v "$t" >/dev/null || die "$t not found: run 'scripts/deps.sh bench'"; done
fi
if [ "$PROFILE" = 1 ]; then command -v perf >/dev/null || die "perf not found: run 'scripts/deps.sh bench'"; fi
case "$ROUNDS$DUR$RATE$CONNS$PROFILE$DNS_CLIENTS$DNS_RATE" in *[!0-9]*) die "BENCH_* values must be integers" ;; esac

P=wb$$
TMP=$(mktemp -d "/tmp/weft-bench-$$-XXXXXX")
CG_ROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[ -n "$CG_ROOT" ] || die "no cgroup v2 mount found"
CG_HOME=$CG_ROOT$(sed -n 's/^0:://p' /proc/self/cgroup)
CG=$CG_ROOT/weft-bench-$$
# One cgroup per role, so each one's CPU is its own and none shares a
# scheduling group with another: proxy, load generator, server.
CG_MESH=$CG/mesh	# the programs attach here; nothing runs in it directly
CG_AGENT=$CG_MESH/agent	# the eBPF-mode agent (below the attach point, as it must be)
CG_MESH_CLIENT=$CG_MESH/client	# weft (eBPF)'s load generator, seen by the programs
CG_TCP=$CG/tcp		# the attach point of a second eBPF-mode agent, every service opaque
CG_TCP_AGENT=$CG_TCP/agent	# that agent (weft-tcp)
CG_TCP_CLIENT=$CG_TCP/client	# weft-tcp's load generator
CG_PAIR=$CG/pair	# the attach point of the plaintext meshed pair's agent (weft-mesh)
CG_PAIR_AGENT=$CG_PAIR/agent	# that agent
CG_PAIR_CLIENT=$CG_PAIR/client	# weft-mesh's load generator
CG_MTLS=$CG/mtls	# the attach point of the mutual TLS pair's agent (weft-mtls)
CG_MTLS_AGENT=$CG_MTLS/agent	# that agent
CG_MTLS_CLIENT=$CG_MTLS/client	# weft-mtls's load generator
CG_NFT=$CG/nft		# the nft-mode agent alone: its rules skip this cgroup's sockets
CG_HAPROXY=$CG/haproxy	# HAProxy in mode tcp
CG_HAPROXY_HTTP=$CG/haproxy-http	# HAProxy in mode http
CG_SERVER=$CG/server	# the HTTP and iperf3 servers
CG_CLIENT=$CG/client	# the other configurations' load generators
CG_OTHER=$CG/other	# this script
BPFFS=$TMP/bpffs
RUN=$TMP/run
BIN=$TMP/bin
RAW=$TMP/raw
RUN_NFT=$TMP/run-nft
RUN_TCP=$TMP/run-tcp
RUN_PAIR=$TMP/run-pair
RUN_MTLS=$TMP/run-mtls
VIP=198.19.0.10
SRV=198.18.2.2
SRV_IN=198.18.15.2	# the second server, in a meshed pod (weft-in)
POD_IN=bench/server-in
# The meshed pairs (bench/services-mtls.yaml): each client pod calls its VIP,
# whose endpoint is the pair's server pod; the -tcp VIPs are the same server
# as opaque TCP.
VIP_PAIR=198.19.0.20 VIP_PAIR_TCP=198.19.0.21 SRV_PAIR=198.18.19.2
VIP_MTLS=198.19.0.30 VIP_MTLS_TCP=198.19.0.31 SRV_MTLS=198.18.21.2
AGENT_PID=
TCP_AGENT_PID=
PAIR_AGENT_PID=
MTLS_AGENT_PID=
NFT_AGENT_PID=
HAPROXY_PID=
HAPROXY_HTTP_PID=
# r router, s server, d direct client, w weft (eBPF) pod, t weft-tcp pod, h
# HAProxy, x HAProxy (mode http), n weft (nft) pod, i the meshed server pod,
# m and e weft-mesh's client and server pods, k and l weft-mtls's
NSS="r s d w t h x n i m e k l"
has() { [[ " $CONFIGS " == *" $1 "* ]]; } # configuration: is it selected?

# ---------------------------------------------------------------- clean-up
cleanup() {
	set +e
	trap - EXIT INT TERM
	[ -n "$AGENT_PID" ] && stop_pids "$AGENT_PID"
	[ -n "$NFT_AGENT_PID" ] && stop_pids "$NFT_AGENT_PID"
	[ -n "$TCP_AGENT_PID" ] && stop_pids "$TCP_AGENT_PID"
	[ -n "$PAIR_AGENT_PID" ] && stop_pids "$PAIR_AGENT_PID"
	[ -n "$MTLS_AGENT_PID" ] && stop_pids "$MTLS_AGENT_PID"
	[ -x "$BIN/weft-agent" ] && "$BIN/weft-agent" --cgroup "$CG_MESH" --bpffs "$BPFFS/weft" \
		--run-dir "$RUN" --cleanup >/dev/null 2>&1
	[ -n "$TCP_AGENT_PID" ] && "$BIN/weft-agent" --cgroup "$CG_TCP" --bpffs "$BPFFS/weft-tcp" \
		--run-dir "$RUN_TCP" --cleanup >/dev/null 2>&1
	[ -n "$PAIR_AGENT_PID" ] && "$BIN/weft-agent" --cgroup "$CG_PAIR" --bpffs "$BPFFS/weft-pair" \
		--run-dir "$RUN_PAIR" --cleanup >/dev/null 2>&1
	[ -n "$MTLS_AGENT_PID" ] && "$BIN/weft-agent" --cgroup "$CG_MTLS" --bpffs "$BPFFS/weft-mtls" \
		--run-dir "$RUN_MTLS" --cleanup >/dev/null 2>&1
	[ -n "$NFT_AGENT_PID" ] && "$BIN/weft-agent" --mode nft --cgroup "$CG_NFT" \
		--bpffs "$BPFFS/weft-nft" --run-dir "$RUN_NFT" --cleanup >/dev/null 2>&1
	echo $$ > "$CG_HOME/cgroup.procs" 2>/dev/null
	# Whatever the benchmark started lives in its cgroups: stop it, by pid.
	# shellcheck disable=SC2046
	stop_pids $(cat "$CG_AGENT/cgroup.procs" "$CG_MESH_CLIENT/cgroup.procs" \
		"$CG_TCP_AGENT/cgroup.procs" "$CG_TCP_CLIENT/cgroup.procs" "$CG_NFT/cgroup.procs" \
		"$CG_PAIR_AGENT/cgroup.procs" "$CG_PAIR_CLIENT/cgroup.procs" \
		"$CG_MTLS_AGENT/cgroup.procs" "$CG_MTLS_CLIENT/cgroup.procs" \
		"$CG_HAPROXY/cgroup.procs" "$CG_HAPROXY_HTTP/cgroup.procs" "$CG_SERVER/cgroup.procs" \
		"$CG_CLIENT/cgroup.procs" "$CG_OTHER/cgroup.procs" 2>/dev/null)
	for n in $NSS; do ip netns del "$P$n" 2>/dev/null; done
	umount "$BPFFS" 2>/dev/null
	for cg in "$CG_AGENT" "$CG_MESH_CLIENT" "$CG_MESH" "$CG_TCP_AGENT" "$CG_TCP_CLIENT" "$CG_TCP" \
		"$CG_PAIR_AGENT" "$CG_PAIR_CLIENT" "$CG_PAIR" "$CG_MTLS_AGENT" "$CG_MTLS_CLIENT" "$CG_MTLS" \
		"$CG_NFT" "$CG_HAPROXY" "$CG_HAPROXY_HTTP" "$CG_SERVER" "$CG_CLIENT" "$CG_OTHER" "$CG"; do
		for _ in $(seq 50); do [ -d "$cg" ] || break; rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
	done
	rm -rf "$TMP"
}
# SIGTERM, up to 2 s to exit, then SIGKILL.
stop_pids() {
	local pid left _
	[ $# -gt 0 ] || return 0
	kill "$@" 2>/dev/null
	for _ in $(seq 20); do
		left=
		for pid in "$@"; do [ -d "/proc/$pid" ] && left=1; done
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	kill -9 "$@" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Leftovers of benchmark runs that were killed (their pid is gone); only ours.
sweep() {
	local cg pid ns m d
	for cg in "$CG_ROOT"/weft-bench-*; do
		[ -d "$cg" ] || continue
		pid=${cg##*/weft-bench-}
		[ -d "/proc/$pid" ] && continue
		for pid in $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
		sleep 0.2
		# Children first: mesh/agent before mesh before the run's own.
		find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null &&
			echo "bench: removed stale cgroup $cg" >&2
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^wb[0-9]+[a-z]$'); do
		pid=$(echo "$ns" | sed -E 's/^wb([0-9]+)[a-z]$/\1/')
		[ -d "/proc/$pid" ] || ip netns del "$ns"
	done
	for m in $(awk '$3 == "bpf" && $2 ~ /^\/tmp\/weft-bench-/ {print $2}' /proc/mounts); do
		pid=$(echo "$m" | sed -nE 's/^\/tmp\/weft-bench-([0-9]+)-.*/\1/p')
		[ -n "$pid" ] && [ ! -d "/proc/$pid" ] && umount "$m"
	done
	for d in /tmp/weft-bench-*; do
		[ -d "$d" ] || continue
		pid=$(echo "$d" | sed -nE 's/^\/tmp\/weft-bench-([0-9]+)-.*/\1/p')
		[ -n "$pid" ] && [ ! -d "/proc/$pid" ] && rm -rf "$d"
	done
	return 0
}

# ---------------------------------------------------------------- helpers
ns() { nsenter --net="/run/netns/$P$1" "${@:2}"; }
# Every process the benchmark starts gets a session of its own, so with
# autogroup scheduling (kernel.sched_autogroup_enabled) the proxy, the load
# generator and the server do not share one scheduling group; the cgroups
# (one per role) count their CPU. setsid execs in place (the subshell is not a
# process group leader), so the pid stays the one the script knows.
# Run a command in cgroup $1, in its own session.
in_cg() { (echo "$BASHPID" > "$1/cgroup.procs" && exec setsid -w "${@:2}"); }
# The load generator's cgroup and netns of configuration $1.
client_ns() {
	case $1 in
	direct) echo "$CG_CLIENT d" ;;
	weft) echo "$CG_MESH_CLIENT w" ;;
	weft-tcp) echo "$CG_TCP_CLIENT t" ;;
	weft-nft) echo "$CG_CLIENT n" ;;
	haproxy) echo "$CG_CLIENT h" ;;
	haproxy-http) echo "$CG_CLIENT x" ;;
	weft-in) echo "$CG_CLIENT d" ;; # the direct client, to the meshed server
	weft-mesh) echo "$CG_PAIR_CLIENT m" ;;
	weft-mtls) echo "$CG_MTLS_CLIENT k" ;;
	esac
}
# Run a client command of configuration $1 inside its namespace and its
# load generator's cgroup.
client() {
	local cg n
	read -r cg n < <(client_ns "$1")
	in_cg "$cg" nsenter --net="/run/netns/$P$n" "${@:2}"
}
# Start a command in the background in cgroup $1 and netns $2 ("" for none),
# in its own session; SPAWNED is its pid (the subshell execs it). Not a job
# of this shell: no "Killed" notices on clean-up.
spawn() {
	local cg=$1 n=$2
	shift 2
	if [ -n "$n" ]; then
		(echo "$BASHPID" > "$cg/cgroup.procs" && exec setsid -w nsenter --net="/run/netns/$P$n" "$@") &
	else
		(echo "$BASHPID" > "$cg/cgroup.procs" && exec setsid -w "$@") &
	fi
	SPAWNED=$!
	disown "$SPAWNED"
}
# The process whose memory a configuration's runs are charged (for weft-in
# the eBPF agent, whose inbound side the connections cross), and the cgroup
# that holds it alone, whose cpu.stat gives its CPU to the µs.
proxy_pid() {
	case $1 in
	weft | weft-in) echo "$AGENT_PID" ;;
	weft-tcp) echo "$TCP_AGENT_PID" ;;
	weft-mesh) echo "$PAIR_AGENT_PID" ;;
	weft-mtls) echo "$MTLS_AGENT_PID" ;;
	weft-nft) echo "$NFT_AGENT_PID" ;;
	haproxy) echo "$HAPROXY_PID" ;;
	haproxy-http) echo "$HAPROXY_HTTP_PID" ;;
	*) echo "" ;;
	esac
}
proxy_cg() {
	case $1 in
	weft | weft-in) echo "$CG_AGENT" ;;
	weft-tcp) echo "$CG_TCP_AGENT" ;;
	weft-mesh) echo "$CG_PAIR_AGENT" ;;
	weft-mtls) echo "$CG_MTLS_AGENT" ;;
	weft-nft) echo "$CG_NFT" ;;
	haproxy) echo "$CG_HAPROXY" ;;
	haproxy-http) echo "$CG_HAPROXY_HTTP" ;;
	esac
}
# busy CPU ticks of the whole machine (steal left out), and µs of CPU charged
# to our cgroups (which includes softirq work done in our tasks' context when,
# as on Debian's kernels, CONFIG_IRQ_TIME_ACCOUNTING is off)
host_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
cg_usec() { awk '/^usage_usec/ {print $2}' "${1:-$CG}/cpu.stat"; }
mem_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
alive() { # config: die if its proxy has exited
	local log=$TMP/agent.log
	case $1 in haproxy | haproxy-http | weft-nft | weft-tcp | weft-mesh | weft-mtls) log=$TMP/$1.log ;; esac
	[ -d "/proc/$(proxy_pid "$1")" ] && return 0
	tail -20 "$log" >&2
	die "$1: the proxy has exited (its log above)"
}
wait_for() { # tries command...
	local i
	for i in $(seq "$1"); do "${@:2}" >/dev/null 2>&1 && return 0; sleep 0.05; done
	return 1
}

# ---------------------------------------------------------------- setup
sweep
HZ=$(getconf CLK_TCK)
if [ "$(ulimit -Hn)" = unlimited ]; then ulimit -n 1048576; else ulimit -n "$(ulimit -Hn)"; fi
NOFILE=$(ulimit -n)
# A proxy holds two descriptors per connection: fit the memory test in the
# limit this machine allows (20000 in some sandboxes without CAP_SYS_RESOURCE).
CONNS_WANTED=$CONNS
FIT=$(( (NOFILE - 400) / 2 / 100 * 100 ))
[ "$CONNS" -le "$FIT" ] || { echo "bench: RLIMIT_NOFILE is $NOFILE: memory test at $FIT connections" >&2; CONNS=$FIT; }

say "building the benchmark tools"
mkdir -p "$BIN" "$RAW" "$HERE/results"
for t in httpd latency hold; do
	cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -o "$BIN/weft-bench-$t" \
		"$HERE/$t.c" -lpthread
done
# The binaries under test are copied: a rebuild during the run changes nothing.
cp "$B/weft-agent" "$B/weft-cni" "$B/meshctl" "$BIN/"

for c in $CONFIGS; do
	case $c in
	direct | weft | weft-tcp | weft-nft | haproxy | haproxy-http | weft-in | weft-mesh | weft-mtls) ;;
	*) die "unknown configuration $c" ;;
	esac
done
# What this build can do, asked before anything is set up, so a missing
# feature fails at once and by name. (The help is read whole first: grep -q
# stops at the first match, and under pipefail the writer's SIGPIPE would
# count as a failure.)
AGENT_HELP=$("$B/weft-agent" --help 2>&1 || true)
if has weft-nft && ! grep -q -- '--mode' <<< "$AGENT_HELP"; then
	die "weft-nft: nft capture mode not available in this build (weft-agent has no --mode)"
fi
if has weft-tcp && ! grep -q -- '--protocol ' <<< "$AGENT_HELP"; then
	die "weft-tcp: no protocol setting in this build (weft-agent has no --protocol)"
fi
for c in weft-in weft-mesh weft-mtls; do
	if has $c && ! grep -q -- '--inbound-port' <<< "$AGENT_HELP"; then
		die "$c: inbound capture not available in this build (weft-agent has no --inbound-port)"
	fi
done
if has weft-mtls && ! grep -q -- '--ca-cert' <<< "$AGENT_HELP"; then
	die "weft-mtls: mutual TLS not available in this build (weft-agent has no --ca-cert)"
fi

say "setting up: cgroups, a private bpffs, namespaces $NSS"
mkdir "$CG" "$CG_MESH" "$CG_AGENT" "$CG_MESH_CLIENT" "$CG_TCP" "$CG_TCP_AGENT" "$CG_TCP_CLIENT" \
	"$CG_PAIR" "$CG_PAIR_AGENT" "$CG_PAIR_CLIENT" "$CG_MTLS" "$CG_MTLS_AGENT" "$CG_MTLS_CLIENT" \
	"$CG_NFT" "$CG_HAPROXY" "$CG_HAPROXY_HTTP" "$CG_SERVER" "$CG_CLIENT" "$CG_OTHER"
echo $$ > "$CG_OTHER/cgroup.procs"
mkdir -p "$BPFFS" && mount -t bpf bpf "$BPFFS"
for n in $NSS; do ip netns add "$P$n"; ip -n "$P$n" link set lo up; done
ns r sysctl -qw net.ipv4.ip_forward=1
link() { # name subnet-octet
	ip -n "$P$1" link add "$1-r" type veth peer name "r-$1" netns "${P}r"
	ip -n "$P$1" link set "$1-r" up
	ip -n "${P}r" link set "r-$1" up
	ip -n "${P}r" addr add "198.18.$2.1/24" dev "r-$1"
	ip -n "$P$1" addr add "198.18.$2.2/24" dev "$1-r"
	ip -n "$P$1" route add default via "198.18.$2.1"
}
# The router knows only its connected subnets: the VIP goes nowhere unless a
# proxy takes it, and no namespace reaches beyond the router.
link s 2; link d 11; link w 12; link h 13; link n 14; link i 15; link x 16; link t 17
link m 18; link e 19; link k 20; link l 21

# nginx as Debian ships it, with a configuration of its own (never the
# system's, nor its service): two workers, as httpd.c has two threads, the
# same 128-byte body (`return`: no file I/O, the subject is the proxy),
# keep-alive without a request limit or a short timeout (the memory test holds
# connections idle), and room for the memory test's connections.
nginx_conf() { # dir address
	local body
	body="$(printf 'x%.0s' $(seq 127))"'\n'
	mkdir -p "$1"
	cat > "$1/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile $NOFILE;
user www-data;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events {
	worker_connections $((CONNS + 1000));
}
http {
	access_log off;
	client_body_temp_path $1/body;
	proxy_temp_path $1/proxy;
	fastcgi_temp_path $1/fastcgi;
	uwsgi_temp_path $1/uwsgi;
	scgi_temp_path $1/scgi;
	keepalive_timeout 1h;
	keepalive_requests 1000000000;
	server {
		listen $2:8080 backlog=4096;
		location / {
			default_type text/plain;
			return 200 "$body";
		}
	}
}
EOF
}

# The same server in ns s (unmeshed, behind the VIP), in ns i (a meshed pod,
# reached at its own address: weft-in) and in the meshed pairs' server pods
# (ns e: weft-mesh, ns l: weft-mtls) when those run.
listening() { ns "$1" ss -Hltn "sport = :$2" | grep -q .; } # netns port
SERVERS=("s $SRV" "i $SRV_IN")
has weft-mesh && SERVERS+=("e $SRV_PAIR")
has weft-mtls && SERVERS+=("l $SRV_MTLS")
for srv in "${SERVERS[@]}"; do
	read -r n a <<< "$srv"
	if [ "$SERVER" = nginx ]; then
		nginx_conf "$TMP/nginx-$n" "$a"
		spawn "$CG_SERVER" "$n" nginx -e "$TMP/nginx-$n/error.log" -p "$TMP/nginx-$n" \
			-c "$TMP/nginx-$n/nginx.conf" >"$TMP/nginx-$n.log" 2>&1
	else
		spawn "$CG_SERVER" "$n" "$BIN/weft-bench-httpd" "$a" 8080 2
	fi
	spawn "$CG_SERVER" "$n" iperf3 -s -B "$a" -p 5201 >/dev/null 2>&1
	spawn "$CG_SERVER" "$n" sockperf server --tcp -i "$a" -p 11111 >/dev/null 2>&1
	wait_for 100 listening "$n" 8080 ||
		{ cat "$TMP/nginx-$n.log" "$TMP/nginx-$n/error.log" 2>/dev/null >&2
		  die "the HTTP server ($SERVER) in ns $n did not start"; }
	wait_for 100 listening "$n" 5201 || die "iperf3 in ns $n did not start"
	wait_for 100 listening "$n" 11111 || die "sockperf in ns $n did not start"
done

# The pods' resolver (the DNS rows): dnsmasq in the server's namespace at a
# second address, answering every name under example.test from its
# configuration (no upstream: nothing leaves the test bed) and NXDOMAIN for
# cluster.local, which the agent owns; it knows nothing of the mesh. The
# names the agent answers are the registry's service, echo.bench.svc.
DNS_SRV=198.18.2.53
if [ "$DNS" = 1 ]; then
	say "starting dnsmasq, the pods' resolver, at $DNS_SRV (ns s)"
	ip -n "${P}s" addr add "$DNS_SRV/24" dev s-r
	spawn "$CG_SERVER" s dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
		--bind-interfaces --listen-address="$DNS_SRV" --user=root --pid-file= --cache-size=1000 \
		--local=/cluster.local/ --address=/example.test/198.18.2.13 >"$TMP/dnsmasq.log" 2>&1
	wait_for 100 listening s 53 || { cat "$TMP/dnsmasq.log" >&2; die "dnsmasq did not start"; }
	# dnsperf's query files: the agent's name (the service's A record, as a
	# pod asks it once its search path made it fully qualified) and eight
	# external names, which dnsperf cycles through.
	echo "echo.bench.svc.cluster.local A" > "$TMP/dns-agent.txt"
	for i in $(seq 8); do echo "host$i.example.test A"; done > "$TMP/dns-external.txt"
fi

say "starting weft-agent and enrolling the client pod"
"$BIN/weft-agent" --version > "$TMP/weft.version" 2>&1 || true
start_agent() { # registry own-cgroup attach-cgroup run-dir log what [agent options]: the agent's pid in SPAWNED
	local registry=$1 cg=$2 attach=$3 run=$4 log=$5 what=$6
	shift 6
	case $registry in /*) ;; *) registry=$HERE/$registry ;; esac
	spawn "$cg" "" "$BIN/weft-agent" --registry "file:$registry" --cgroup "$attach" \
		--run-dir "$run" "$@" >"$log" 2>&1
	local pid=$SPAWNED
	wait_for 200 test -S "$run/admin.sock" || { cat "$log" >&2; die "$what did not start"; }
	SPAWNED=$pid
}
enrol() { # run-dir netns address/len pod-name: CNI ADD, as a container runtime would
	printf '{"cniVersion":"1.0.0","name":"bench","type":"weft-cni","agent_socket":"%s",
  "prevResult":{"cniVersion":"1.0.0","ips":[{"address":"%s"}]}}' "$1/cni.sock" "$3" |
		CNI_COMMAND=ADD CNI_CONTAINERID="bench-$4" CNI_NETNS="/run/netns/$P$2" CNI_IFNAME=eth0 \
		CNI_PATH=/opt/cni/bin CNI_ARGS="K8S_POD_NAMESPACE=bench;K8S_POD_NAME=$4" \
		"$BIN/weft-cni" >/dev/null || die "enrolling pod bench/$4 (ns $2) failed"
}
# The eBPF-mode agent serves weft, weft-in and the eBPF DNS rows; a run that
# selects none of them (BENCH_ONLY=mtls, say) starts no agent it would not
# measure, so nothing idle competes for the CPU.
if has weft || has weft-in; then
	# A copy: the publishing rows rewrite it.
	cp "$HERE/services.yaml" "$TMP/registry.yaml"
	start_agent "$TMP/registry.yaml" "$CG_AGENT" "$CG_MESH" "$RUN" "$TMP/agent.log" "the agent" --bpffs "$BPFFS/weft"
	AGENT_PID=$SPAWNED
	enrol "$RUN" w 198.18.12.2/24 client
fi
if has weft-in; then
	say "enrolling the second server's pod (ns i) in the eBPF agent: inbound capture"
	enrol "$RUN" i "$SRV_IN/24" "${POD_IN#bench/}"
fi
if has weft-nft; then
	# Its own cgroup (not the eBPF agent's: those programs never see it, and
	# not the clients': the nft rules skip the agent's cgroup), run dir and
	# bpffs folder; the same registry.
	say "starting a second weft-agent in nft mode and enrolling its client pod (ns n)"
	start_agent services.yaml "$CG_NFT" "$CG_NFT" "$RUN_NFT" "$TMP/weft-nft.log" "the nft-mode agent" \
		--mode nft --bpffs "$BPFFS/weft-nft"
	NFT_AGENT_PID=$SPAWNED
	enrol "$RUN_NFT" n 198.18.14.2/24 client-nft
fi
if has weft-tcp; then
	# The same eBPF-mode agent with every service opaque TCP (the agent-wide
	# default of weft.io/protocol): its own attach point, cgroup, run dir,
	# bpffs folder and client pod, so its memory and CPU are its own.
	say "starting a third weft-agent, eBPF mode, --protocol tcp, and enrolling its client pod (ns t)"
	start_agent services.yaml "$CG_TCP_AGENT" "$CG_TCP" "$RUN_TCP" "$TMP/weft-tcp.log" "the tcp-mode agent" \
		--protocol tcp --bpffs "$BPFFS/weft-tcp"
	TCP_AGENT_PID=$SPAWNED
	enrol "$RUN_TCP" t 198.18.17.2/24 client-tcp
fi
# The meshed pairs: one agent each, with its defaults, serving both its
# client pod (outbound) and its server pod (inbound), as an agent does for
# two pods on one node. The two agents differ only in the CA: weft-mesh's
# client side sends plaintext to the server pod, weft-mtls's opens TLS 1.3 to
# the server pod's port 15008, whose inbound side terminates it (one agent,
# both handshake sides). Each has its own attach cgroup, run dir and bpffs.
if has weft-mesh; then
	say "starting a weft-agent for a meshed pair in plaintext, enrolling its client (ns m) and server (ns e) pods"
	start_agent services-mtls.yaml "$CG_PAIR_AGENT" "$CG_PAIR" "$RUN_PAIR" "$TMP/weft-mesh.log" \
		"the meshed pair's agent" --bpffs "$BPFFS/weft-pair"
	PAIR_AGENT_PID=$SPAWNED
	enrol "$RUN_PAIR" m 198.18.18.2/24 client-mesh
	enrol "$RUN_PAIR" e "$SRV_PAIR/24" server-mesh
fi
if has weft-mtls; then
	say "starting a weft-agent with a standalone CA (mTLS), enrolling its client (ns k) and server (ns l) pods"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /O=weft-bench/CN=weft-bench-ca -keyout "$TMP/ca.key" -out "$TMP/ca.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
		>/dev/null 2>&1 || die "openssl could not make the benchmark's CA"
	start_agent services-mtls.yaml "$CG_MTLS_AGENT" "$CG_MTLS" "$RUN_MTLS" "$TMP/weft-mtls.log" \
		"the mTLS pair's agent" --bpffs "$BPFFS/weft-mtls" --ca-cert "$TMP/ca.pem" --ca-key "$TMP/ca.key"
	MTLS_AGENT_PID=$SPAWNED
	enrol "$RUN_MTLS" k 198.18.20.2/24 client-mtls
	enrol "$RUN_MTLS" l "$SRV_MTLS/24" server-mtls
fi

say "HAProxy in the client namespace (ns h), behind an nftables REDIRECT"
HAPROXY_UID=$(id -u haproxy 2>/dev/null) || die "no 'haproxy' user (Debian's haproxy package makes it)"
cat > "$TMP/haproxy.cfg" <<EOF
global
	maxconn $((CONNS + 100))
	nbthread $(nproc)
	user haproxy
	group haproxy
defaults
	mode tcp
	timeout connect 5s
	timeout client 1h
	timeout server 1h
frontend http
	bind 127.0.0.1:15001
	default_backend http
backend http
	server s1 $SRV:8080
frontend bulk
	bind 127.0.0.1:15002
	default_backend bulk
backend bulk
	server s1 $SRV:5201
frontend pingpong
	bind 127.0.0.1:15003
	default_backend pingpong
backend pingpong
	server s1 $SRV:11111
EOF
# As an iptables mesh does: the proxy's own traffic (by uid) is left alone,
# the application's traffic to the service goes to the proxy.
cat > "$TMP/nft.conf" <<EOF
table ip weft_bench {
	chain output {
		type nat hook output priority -100; policy accept;
		meta skuid $HAPROXY_UID return
		ip daddr $VIP tcp dport 80 counter redirect to :15001
		ip daddr $VIP tcp dport 5201 counter redirect to :15002
		ip daddr $VIP tcp dport 11111 counter redirect to :15003
	}
}
EOF
# Its configuration and rules are written in every run (HAProxy in HTTP mode
# below derives its own from them); it runs only when selected.
if has haproxy; then
	ns h nft -f "$TMP/nft.conf"
	spawn "$CG_HAPROXY" h haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1
	HAPROXY_PID=$SPAWNED
	wait_for 100 listening h 15002 || { cat "$TMP/haproxy.log" >&2; die "HAProxy did not start"; }
fi

if has haproxy-http; then
	# The L7 peer: HTTP mode, keep-alive on both sides, and idle server
	# connections shared between client connections (`http-reuse always`),
	# so a client's `Connection: close` ends only the client's side. The same
	# interception, in a namespace of its own.
	say "starting HAProxy in HTTP mode (http-reuse always) in ns x, behind an nftables REDIRECT"
	cat > "$TMP/haproxy-http.cfg" <<EOF
global
	maxconn $((CONNS + 100))
	nbthread $(nproc)
	user haproxy
	group haproxy
defaults
	mode http
	option http-keep-alive
	http-reuse always
	timeout connect 5s
	timeout client 1h
	timeout server 1h
	timeout http-keep-alive 1h
frontend http
	bind 127.0.0.1:15001
	default_backend http
backend http
	server s1 $SRV:8080
EOF
	sed '/dport 5201/d; /dport 11111/d' "$TMP/nft.conf" > "$TMP/nft-http.conf"
	ns x nft -f "$TMP/nft-http.conf"
	spawn "$CG_HAPROXY_HTTP" x haproxy -db -f "$TMP/haproxy-http.cfg" >"$TMP/haproxy-http.log" 2>&1
	HAPROXY_HTTP_PID=$SPAWNED
	wait_for 100 listening x 15001 ||
		{ cat "$TMP/haproxy-http.log" >&2; die "HAProxy (mode http) did not start"; }
fi

# The inbound connections an agent (its run dir; the eBPF agent's by
# default) counted for a meshed server pod (default: weft-in's) (meshctl pod
# -o json, its "inbound" object: every "connections", "accepted" or "total"
# count in it, summed; growth is what matters), or "none" when the agent
# reports no inbound counters at all.
inbound_count() { # [run-dir pod]
	"$BIN/meshctl" --socket "${1:-$RUN}/admin.sock" pod "${2:-$POD_IN}" -o json 2>/dev/null | python3 -c '
import json, sys
def count(o, key=None):
    if isinstance(o, bool):
        return 0
    if isinstance(o, int):
        return o if key in ("connections", "accepted", "total") else 0
    if isinstance(o, dict):
        if key == "connections" and "total" in o:
            return count(o["total"], "total")
        return sum(count(v, k) for k, v in o.items() if k not in ("active", "bytes"))
    if isinstance(o, list):
        return sum(count(v, key) for v in o)
    return 0
try:
    pod = json.load(sys.stdin)
except ValueError:
    pod = {}
print(count(pod["inbound"]) if isinstance(pod, dict) and "inbound" in pod else "none")'
}
# The mTLS agent's handshakes, "client server" (meshctl status: mtls.out,
# connections it opened to a meshed pod; mtls.in, connections it accepted),
# or "none none".
mtls_count() {
	"$BIN/meshctl" --socket "$RUN_MTLS/admin.sock" status -o json 2>/dev/null | python3 -c '
import json, sys
try:
    m = json.load(sys.stdin)["mtls"]
    print(m["out"], m["in"])
except (ValueError, KeyError, TypeError):
    print("none none")'
}

say "checking each path"
# Only a proxy can answer the VIP: the router has no route for it. So an
# answer from the VIP proves the capture works. The meshed server answers at
# its own address with or without capture: there the agent's inbound count
# for its pod must grow.
for c in $CONFIGS; do
	case $c in
	direct) url=http://$SRV:8080/ ;;
	weft | weft-tcp | weft-nft | haproxy | haproxy-http) url=http://$VIP/ ;;
	weft-in) url=http://$SRV_IN:8080/ in0=$(inbound_count) ;;
	weft-mesh) url=http://$VIP_PAIR/ in0=$(inbound_count "$RUN_PAIR" bench/server-mesh) ;;
	weft-mtls) url=http://$VIP_MTLS/ in0=$(mtls_count) ;;
	esac
	client "$c" curl -sf --max-time 3 -o /dev/null "$url" || die "$c: no answer from $url"
	# The meshed pairs: the server side must be the agent's inbound side
	# (plaintext pair), and the connections mTLS on both sides (each agent
	# also answers on its opaque-TCP VIP).
	if [ "$c" = weft-mesh ]; then
		client "$c" curl -sf --max-time 3 -o /dev/null "http://$VIP_PAIR_TCP/" ||
			die "$c: no answer from http://$VIP_PAIR_TCP/"
		in1=$(inbound_count "$RUN_PAIR" bench/server-mesh)
		if [ "$in0" = none ] || [ "$in1" = none ] || [ "$in1" -lt $((in0 + 2)) ]; then
			die "weft-mesh: two requests did not both pass the agent's inbound side (count $in0 → $in1)"
		fi
	fi
	if [ "$c" = weft-mtls ]; then
		client "$c" curl -sf --max-time 3 -o /dev/null "http://$VIP_MTLS_TCP/" ||
			die "$c: no answer from http://$VIP_MTLS_TCP/"
		read -r out0 srv0 <<< "$in0"
		read -r out1 srv1 <<< "$(mtls_count)"
		if [ "$out0" = none ] || [ "$out1" = none ] || [ "$out1" -lt $((out0 + 2)) ] ||
			[ "$srv1" -lt $((srv0 + 2)) ]; then
			tail -20 "$TMP/weft-mtls.log" >&2
			die "weft-mtls: two requests, not two mTLS handshakes on each side" \
				"(mtls.out $out0 → $out1, mtls.in $srv0 → $srv1)"
		fi
	fi
	if [ "$c" = weft-in ]; then
		in1=$(inbound_count)
		case $in0:$in1 in
		none:* | *:none) die "weft-in: inbound capture not available in this build" \
			"(no inbound counters for pod $POD_IN)" ;;
		esac
		[ "$in1" -gt "$in0" ] || die "weft-in: inbound capture not available in this build:" \
			"a connection to $SRV_IN:8080 did not pass the agent (pod $POD_IN inbound count $in0 → $in1)"
	fi
done
# The DNS counters of the agents of configurations $@ (weft, weft-nft),
# summed: "answered forwarded" (meshctl status: dns), or "none none" when
# this build has no DNS capture.
dns_count() { # config...
	local c a f sa=0 sf=0 run
	for c in "$@"; do
		case $c in weft) run=$RUN ;; weft-nft) run=$RUN_NFT ;; esac
		read -r a f < <("$BIN/meshctl" --socket "$run/admin.sock" status -o json 2>/dev/null |
			python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)["dns"]
    print(d["answered"], d["forwarded"])
except (ValueError, KeyError, TypeError):
    print("none none")')
		[ "$a" = none ] && { echo "none none"; return 0; }
		sa=$((sa + a)) sf=$((sf + f))
	done
	echo "$sa $sf"
}
# A DNS row's client (a meshed pod or the direct client), its query file.
# The eBPF pod's rows are agent and forwarded, the nft pod's nft-agent and
# nft-forwarded.
dns_row() { # row: "config file"
	case $1 in
	agent) echo "weft $TMP/dns-agent.txt" ;;
	forwarded) echo "weft $TMP/dns-external.txt" ;;
	nft-agent) echo "weft-nft $TMP/dns-agent.txt" ;;
	nft-forwarded) echo "weft-nft $TMP/dns-external.txt" ;;
	direct) echo "direct $TMP/dns-external.txt" ;;
	esac
}
# The agents a DNS row's counters and CPU are read from: the meshed pod's,
# or for the direct client every meshed one (none of them may see it).
dns_agents() { # config
	if [ "$1" = direct ]; then echo "$DNS_MESHED"; else echo "$1"; fi
}
DNS_MESHED='' DNS_ROWS=''
if [ "$DNS" = 1 ]; then
	has weft && DNS_MESHED="weft" DNS_ROWS="agent forwarded"
	has weft-nft && DNS_MESHED="$DNS_MESHED weft-nft" DNS_ROWS="$DNS_ROWS nft-agent nft-forwarded"
	DNS_MESHED=${DNS_MESHED# } DNS_ROWS="${DNS_ROWS# } direct"
fi
dns_check_row() { # row: every query answered NOERROR
	local c file out
	read -r c file < <(dns_row "$1")
	out=$(client "$c" dnsperf -s "$DNS_SRV" -d "$file" -n 1 -t 2 2>&1) ||
		{ echo "$out" >&2; die "dns: dnsperf failed for the $1 row"; }
	grep -Eq 'Response codes: +NOERROR [0-9]+ \(100.00%\)' <<< "$out" ||
		{ echo "$out" >&2; die "dns: not every query of the $1 row was answered NOERROR"; }
}
for c in $DNS_MESHED; do
	# The meshed pod's queries to dnsmasq's address must reach its agent:
	# its own name answered there (dnsmasq would say NXDOMAIN), an external
	# one forwarded; the direct client's never pass it.
	read -r a0 f0 <<< "$(dns_count "$c")"
	[ "$a0" = none ] && die "dns: this build's $c agent reports no DNS counters (no DNS capture)"
	if [ "$c" = weft ]; then dns_check_row agent; dns_check_row forwarded
	else dns_check_row nft-agent; dns_check_row nft-forwarded; fi
	dns_check_row direct
	read -r a1 f1 <<< "$(dns_count "$c")"
	na=$(wc -l < "$TMP/dns-agent.txt") nf=$(wc -l < "$TMP/dns-external.txt")
	if [ "$a1" -ne $((a0 + na)) ] || [ "$f1" -ne $((f0 + nf)) ]; then
		die "dns: the $c agent answered $((a1 - a0)) and forwarded $((f1 - f0)) of the" \
			"check's queries, not $na and $nf (the direct client's must not reach it)"
	fi
done
if has weft-nft; then
	ns n nft list table inet weft > "$RAW/nft-weft.txt" 2>&1 ||
		die "weft-nft: no table inet weft in the client pod's netns"
fi

# Idle memory, before any benchmark traffic (one request each, just above).
# Only the proxies this run started: {"config": kB, ...}.
idle_rss=()
for pair in "weft:$AGENT_PID" "haproxy:$HAPROXY_PID" "weft-nft:$NFT_AGENT_PID" \
	"weft-tcp:$TCP_AGENT_PID" "weft-mesh:$PAIR_AGENT_PID" "weft-mtls:$MTLS_AGENT_PID" \
	"haproxy-http:$HAPROXY_HTTP_PID"; do
	[ -n "${pair#*:}" ] && idle_rss+=("\"${pair%%:*}\": $(mem_kb "${pair#*:}" VmRSS)")
done
(IFS=,; echo "{${idle_rss[*]}}") > "$RAW/idle_rss.json"

# ---------------------------------------------------------------- runs
port_of() { case $1 in http) echo 80 ;; bulk) echo 5201 ;; pp) echo 11111 ;; esac; } # port-kind
# The address of configuration $1's server of kind http, bulk, pp (sockperf)
# or tcp (the meshed pairs' opaque-TCP service).
target() { # config port-kind
	case $1:$2 in
	direct:http) echo "$SRV 8080" ;;
	direct:bulk) echo "$SRV 5201" ;;
	direct:pp) echo "$SRV 11111" ;;
	weft-in:http) echo "$SRV_IN 8080" ;;
	weft-in:bulk) echo "$SRV_IN 5201" ;;
	weft-in:pp) echo "$SRV_IN 11111" ;;
	weft-mesh:tcp) echo "$VIP_PAIR_TCP 80" ;;
	weft-mesh:*) echo "$VIP_PAIR $(port_of "$2")" ;;
	weft-mtls:tcp) echo "$VIP_MTLS_TCP 80" ;;
	weft-mtls:*) echo "$VIP_MTLS $(port_of "$2")" ;;
	*:http) echo "$VIP 80" ;;
	*:bulk) echo "$VIP 5201" ;;
	*:pp) echo "$VIP 11111" ;;
	esac
}
skipped() { [[ " $SKIP " == *" $1.$2 "* ]]; } # workload config
run_one() { # round workload config
	local r=$1 w=$2 c=$3 out="$RAW/$1.$2.$3" pid pcg p0 p1 rc=0 host port
	local h0 h1 u0 u1 w0 w1 other m0='' m1='' mtls=''
	pid=$(proxy_pid "$c") pcg=$(proxy_cg "$c")
	[ "$c" = weft-mtls ] && m0=$(mtls_count)
	[ -n "$pid" ] && { alive "$c"; p0=$(cg_usec "$pcg"); }
	h0=$(host_busy) u0=$(cg_usec) w0=$(date +%s%N)
	case $w in
	keepalive | close | latency) read -r host port < <(target "$c" http) ;;
	handshake) read -r host port < <(target "$c" tcp) ;;
	bulk) read -r host port < <(target "$c" bulk) ;;
	pingpong) read -r host port < <(target "$c" pp) ;;
	esac
	case $w in
	keepalive)
		client "$c" timeout $((DUR + 30)) wrk -c50 -t2 -d"${DUR}s" --timeout 2s --latency \
			"http://$host:$port/" >"$out.out" 2>&1 || rc=$? ;;
	close | handshake)
		client "$c" timeout $((DUR + 30)) wrk -c50 -t2 -d"${DUR}s" --timeout 2s --latency \
			-H 'Connection: close' "http://$host:$port/" >"$out.out" 2>&1 || rc=$? ;;
	bulk)
		client "$c" timeout $((DUR + 30)) iperf3 -c "$host" -p "$port" -t "$DUR" -J \
			>"$out.out" 2>&1 || rc=$? ;;
	latency)
		client "$c" timeout $((DUR + 30)) "$BIN/weft-bench-latency" "$host" "$port" \
			"$RATE" "$DUR" 1 >"$out.out" 2>&1 || rc=$? ;;
	pingpong)
		# One 64-byte message in flight, the next sent when the reply is in
		# (a closed loop): round trips, not HTTP, so weft relays it as TCP.
		client "$c" timeout $((DUR + 30)) sockperf ping-pong --tcp -i "$host" -p "$port" \
			-t "$DUR" -m 64 --full-rtt >"$out.out" 2>&1 || rc=$? ;;
	esac
	h1=$(host_busy) u1=$(cg_usec) w1=$(date +%s%N)
	# CPU busy on the machine but not charged to the benchmark, in cores:
	# other people's work, which skews this run.
	other=$(awk -v h=$((h1 - h0)) -v u=$((u1 - u0)) -v w=$((w1 - w0)) -v hz="$HZ" \
		'BEGIN {o = (h / hz - u / 1e6) / (w / 1e9); printf "%.2f", o < 0 ? 0 : o}')
	if [ -n "$pid" ]; then
		alive "$c"
		p1=$(cg_usec "$pcg")
		if [ -n "$m0" ]; then
			# mTLS connections the agent opened (client side) and accepted
			# (server side) during the run (after its CPU was read).
			m1=$(mtls_count)
			mtls=$(awk -v a="$m0" -v b="$m1" 'BEGIN {split(a, x, " "); split(b, y, " ")
				if (x[1] != "none" && y[1] != "none")
					printf "\"mtls_out\": %d, \"mtls_in\": %d, ", y[1] - x[1], y[2] - x[2]}')
		fi
		echo "{\"rc\": $rc, \"other_cores\": $other, \"cg_usec\": $((u1 - u0)), $mtls" \
			"\"proxy_usec\": $((p1 - p0))," \
			"\"rss_kb\": $(mem_kb "$pid" VmRSS), \"hwm_kb\": $(mem_kb "$pid" VmHWM)}" > "$out.meta"
	else
		echo "{\"rc\": $rc, \"other_cores\": $other, \"cg_usec\": $((u1 - u0))}" > "$out.meta"
	fi
	[ "$rc" = 0 ] || echo "bench: round $r $w $c failed (exit $rc)" >&2
	return 0
}

say "warm-up: one short run of each workload per configuration"
[ -n "$WORKLOADS" ] || say "(none: no HTTP workload in this run)"
for c in $CONFIGS; do
	[ -n "$WORKLOADS" ] || break
	read -r host port < <(target "$c" http)
	client "$c" timeout 20 wrk -c50 -t2 -d1s "http://$host:$port/" >/dev/null 2>&1 || true
	client "$c" timeout 20 wrk -c50 -t2 -d1s -H 'Connection: close' "http://$host:$port/" >/dev/null 2>&1 || true
	if ! skipped bulk "$c"; then
		read -r host port < <(target "$c" bulk)
		client "$c" timeout 20 iperf3 -c "$host" -p "$port" -t 1 >/dev/null 2>&1 || true
	fi
	if ! skipped handshake "$c" && [[ " $WORKLOADS " == *" handshake "* ]]; then
		read -r host port < <(target "$c" tcp)
		client "$c" timeout 20 wrk -c50 -t2 -d1s -H 'Connection: close' "http://$host:$port/" \
			>/dev/null 2>&1 || true
	fi
	if ! skipped pingpong "$c" && [[ " $WORKLOADS " == *" pingpong "* ]]; then
		read -r host port < <(target "$c" pp)
		client "$c" timeout 20 sockperf ping-pong --tcp -i "$host" -p "$port" -t 1 -m 64 \
			>/dev/null 2>&1 || true
	fi
done

read -ra CFG <<< "$CONFIGS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
IN_START=None IN_END=None	# Python literals: env.json is written by python3 below
# The eBPF agent's counters around the rounds (its BPF programs' included),
# to tell how many weft-in connections the agent really took.
agent_status() { "$BIN/meshctl" --socket "$RUN/admin.sock" status -o json > "$1" 2>&1 || true; }
# And the kernel's own count in the server pod's netns, which needs no
# agent: each captured connection is accepted twice there (by the agent's
# inbound listener, then by the server from the agent's connect), one that
# escaped capture once, by the server.
# shellcheck disable=SC2016 # awk fields, not shell
tcp_opens() { ns i awk '/^Tcp:/ { if (h) { printf "[%s, %s]", $6, $7; exit } h = 1 }' /proc/net/snmp; }
OPENS_START=None OPENS_END=None
if has weft-in; then
	IN_START=$(inbound_count) OPENS_START=$(tcp_opens)
	agent_status "$RAW/status.start.json"
fi
T_START=$(date +%s)
for r in $(seq "$ROUNDS"); do
	for w in $WORKLOADS; do
		# Rotate the order each round, so no configuration always goes first.
		for i in $(seq 0 $((${#CFG[@]} - 1))); do
			c=${CFG[$(((i + r - 1) % ${#CFG[@]}))]}
			skipped "$w" "$c" && continue
			say "round $r/$ROUNDS: $w, $c"
			run_one "$r" "$w" "$c"
			sleep 1
		done
	done
done
# ---------------------------------------------------------------- DNS
# Per meshed pod (eBPF: weft's pod, nft: weft-nft's) two rows (issue #15):
# asking a name the agent answers (agent, nft-agent) and asking external
# names the agent forwards to dnsmasq (forwarded, nft-forwarded); and the
# direct client asking dnsmasq the same names (direct: the baseline). Two
# workloads: queries/s with DNS_CLIENTS queries outstanding (dnsqps, a closed
# loop: the capacity), and each query's latency at a fixed DNS_RATE
# queries/s (dnslat, dnsperf -v: one line per answer). Rounds are
# interleaved and rotated as above; the agent's CPU comes from its cgroup and
# its DNS counters say how many queries it answered and forwarded meanwhile
# (for the direct rows, every meshed agent's: none should move).
dns_agent_usec() { # config...: µs of CPU of their agents' cgroups, summed
	local c n=0
	for c in "$@"; do n=$((n + $(cg_usec "$(proxy_cg "$c")"))); done
	echo "$n"
}
run_dns() { # round workload row
	local r=$1 w=$2 row=$3 out="$RAW/dns.$1.$2.$3" c file rc=0 h0 h1 u0 u1 w0 w1 p0 p1 other
	local a0 f0 a1 f1 opts agents a
	read -r c file < <(dns_row "$row")
	agents=$(dns_agents "$c")
	case $w in
	dnsqps) opts="-c $DNS_CLIENTS -q $DNS_CLIENTS" ;;
	dnslat) opts="-c 1 -q $DNS_CLIENTS -Q $DNS_RATE -v" ;;
	esac
	for a in $agents; do alive "$a"; done
	# shellcheck disable=SC2086 # agents are words
	read -r a0 f0 <<< "$(dns_count $agents)"
	# shellcheck disable=SC2086
	p0=$(dns_agent_usec $agents) h0=$(host_busy) u0=$(cg_usec) w0=$(date +%s%N)
	# shellcheck disable=SC2086 # opts are words
	client "$c" timeout $((DUR + 30)) dnsperf -s "$DNS_SRV" -d "$file" -l "$DUR" -t 2 $opts \
		>"$out.out" 2>&1 || rc=$?
	# shellcheck disable=SC2086
	h1=$(host_busy) u1=$(cg_usec) w1=$(date +%s%N) p1=$(dns_agent_usec $agents)
	# shellcheck disable=SC2086
	read -r a1 f1 <<< "$(dns_count $agents)"
	for a in $agents; do alive "$a"; done
	other=$(awk -v h=$((h1 - h0)) -v u=$((u1 - u0)) -v w=$((w1 - w0)) -v hz="$HZ" \
		'BEGIN {o = (h / hz - u / 1e6) / (w / 1e9); printf "%.2f", o < 0 ? 0 : o}')
	echo "{\"rc\": $rc, \"other_cores\": $other, \"cg_usec\": $((u1 - u0))," \
		"\"agent_usec\": $((p1 - p0)), \"answered\": $((a1 - a0)), \"forwarded\": $((f1 - f0))}" \
		> "$out.meta"
	[ "$rc" = 0 ] || echo "bench: DNS round $r $w $row failed (exit $rc)" >&2
	return 0
}
if [ "$DNS" = 1 ]; then
	say "DNS warm-up"
	for row in $DNS_ROWS; do
		read -r c file < <(dns_row "$row")
		client "$c" timeout 20 dnsperf -s "$DNS_SRV" -d "$file" -l 1 -t 2 >/dev/null 2>&1 || true
	done
	read -ra DROWS <<< "$DNS_ROWS"
	for r in $(seq "$ROUNDS"); do
		for w in dnsqps dnslat; do
			for i in $(seq 0 $((${#DROWS[@]} - 1))); do
				row=${DROWS[$(((i + r - 1) % ${#DROWS[@]}))]}
				say "round $r/$ROUNDS: $w, $row"
				run_dns "$r" "$w" "$row"
				sleep 1
			done
		done
	done
fi
# ---------------------------------------------------------------- publishing under load
# Issue #15: "no request through the proxy delayed by more than 1 ms by a
# publish". The latency workload through weft (one request in flight at
# RATE req/s, as above), in each round once quiet, once while
# bench/churn.py rewrites the agent's registry file (churn: CHURN_SERVICES
# Services new at once (the sync), a fifth of them changed every second,
# then all removed), and once while churn.py does the same to a file the
# agent does not load (harness: the benchmark's own writes and admin reads,
# nothing published). The quiet run is the baseline taken minutes apart at
# most; the agent's own account of its workers' binds (catalogue_binds in
# /v1/status) is read after each run.
run_publish() { # round phase
	local r=$1 phase=$2 out="$RAW/publish.$1.$2" rc=0 cpid= reg="$TMP/registry.yaml" how=
	alive weft
	if [ "$phase" = harness ]; then
		mkdir -p "$TMP/unwatched"
		reg="$TMP/unwatched/registry.yaml" how=unwatched
		cp "$HERE/services.yaml" "$reg"
	fi
	if [ "$phase" != quiet ]; then
		python3 "$HERE/churn.py" "$HERE/services.yaml" "$reg" "$RUN/admin.sock" \
			"$CHURN_SERVICES" 10 "$DUR" $how >"$out.churn" 2>"$out.churn.err" &
		cpid=$!
	fi
	BENCH_SLOW_LOG="$out.slow" client weft timeout $((DUR + 30)) "$BIN/weft-bench-latency" \
		"$VIP" 80 "$RATE" "$DUR" 1 >"$out.out" 2>&1 || rc=$?
	if [ -n "$cpid" ]; then
		wait "$cpid" || { echo "bench: churn failed in round $r, see below" >&2; cat "$out.churn.err" >&2; }
		cp "$HERE/services.yaml" "$reg.next" && mv "$reg.next" "$reg"
	fi
	agent_status "$out.status.json"
	alive weft
	[ "$rc" = 0 ] || echo "bench: publishing round $r $phase failed (exit $rc)" >&2
	return 0
}
if [ "$PUBLISH" = 1 ]; then
	for r in $(seq "$ROUNDS"); do
		# Rotated, so that no phase always comes first.
		case $((r % 3)) in
		1) phases="quiet churn harness" ;;
		2) phases="churn harness quiet" ;;
		0) phases="harness quiet churn" ;;
		esac
		for phase in $phases; do
			say "round $r/$ROUNDS: publishing under load, $phase"
			run_publish "$r" "$phase"
			sleep 2	# the removal's publish and its frees are done
		done
	done
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
if has weft-in; then
	IN_END=$(inbound_count) OPENS_END=$(tcp_opens)
	agent_status "$RAW/status.end.json"
fi

# ---------------------------------------------------------------- memory per connection
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# The meshed pairs' agents serve both ends of each connection, and are held
# through their opaque-TCP service, so each held connection keeps its own
# upstream (the HTTP-aware service would pool them): 4 descriptors per
# connection (client, upstream, inbound accept, to the server), with mTLS
# too (the relays read and write the TLS sockets themselves). Fewer
# connections then fit in RLIMIT_NOFILE; the count is in hold.<config>.json.
hold_conns() { # config
	local fds=2
	case $1 in weft-mesh | weft-mtls) fds=4 ;; esac
	local fit=$(( (NOFILE - 400) / fds / 100 * 100 ))
	echo $(( CONNS < fit ? CONNS : fit ))
}
hold_test() { # config
	local c=$1 pid hpid r0 r1 f0 f1 ready i host port n kind=http m0=none m1=none
	pid=$(proxy_pid "$c")
	n=$(hold_conns "$c")
	case $c in weft-mesh | weft-mtls) kind=tcp ;; esac
	alive "$c"
	sleep 1
	r0=$(mem_kb "$pid" VmRSS) f0=$(fd_count "$pid")
	[ "$c" = weft-mtls ] && m0=$(mtls_count | cut -d' ' -f1)
	read -r host port < <(target "$c" "$kind")
	# shellcheck disable=SC2046
	spawn $(client_ns "$c") "$BIN/weft-bench-hold" "$host" "$port" "$n" 120 >"$RAW/hold.$c.out" 2>&1
	hpid=$SPAWNED
	ready=
	for i in $(seq 900); do
		ready=$(grep -m1 '^ready' "$RAW/hold.$c.out" || true)
		[ -n "$ready" ] && break
		kill -0 "$hpid" 2>/dev/null || break
		sleep 0.1
	done
	sleep 2	# let the proxy finish any work behind the last response
	alive "$c"
	r1=$(mem_kb "$pid" VmRSS) f1=$(fd_count "$pid")
	[ "$c" = weft-mtls ] && m1=$(mtls_count | cut -d' ' -f1)
	stop_pids "$hpid"
	# ok: connections that got their response; closed: of those, how many the
	# proxy (or the server) closed while they were held. fds0/fds1: the
	# proxy's open descriptors before and while they were held.
	# conns: how many were tried; mtls_out: mTLS connections the agent
	# opened meanwhile (weft-mtls), to show each held one has its own.
	echo "{\"rss0_kb\": $r0, \"rss1_kb\": $r1, \"fds0\": $f0, \"fds1\": $f1, \"conns\": $n," \
		"\"mtls_out\": $( [ "$m0" = none ] || [ "$m1" = none ] && echo null || echo $((m1 - m0)))," \ \
		"\"ok\": $(sed -n 's/^ready ok=\([0-9]*\).*/\1/p' "$RAW/hold.$c.out" | grep . || echo 0)," \
		"\"closed\": $(sed -n 's/^done closed_by_peer=\([0-9]*\)/\1/p' "$RAW/hold.$c.out" | grep . || echo null)}" \
		> "$RAW/hold.$c.json"
	sleep 2	# the connections close before the next test
}
for c in $CONFIGS; do
	case ${BENCH_ONLY:-} in dns | publish) break ;; esac	# those rows alone: no memory test
	# Not direct (no proxy) nor weft-in (the memory of the agent's inbound
	# side is not what this test is about: it goes through the VIP).
	case $c in direct | weft-in) continue ;; esac
	say "memory: $(hold_conns "$c") idle keep-alive connections through $c"
	hold_test "$c"
done
T_END=$(date +%s)

# ---------------------------------------------------------------- profiles
# Connection per request, where capture costs most: per configuration one
# more run, after the measured ones, with perf sampling every CPU but only
# the benchmark's cgroup (and its children): the client, server and proxy
# and the kernel work done in their context (a softirq that runs in
# ksoftirqd is not in it). A sample every 250 µs of CPU, so samples × 250 µs
# is CPU time. The meshed pairs go to their opaque-TCP service, so each
# connection is a new upstream (mTLS) connection: the handshake's profile.
PERIOD_NS=250000
if [ "$PROFILE" = 1 ] && [ -n "$WORKLOADS" ]; then	# not in the DNS or publishing rows alone
	for c in $CONFIGS; do
		say "profile: connection per request, $c"
		case $c in
		weft-mesh | weft-mtls) read -r host port < <(target "$c" tcp) ;;
		*) read -r host port < <(target "$c" http) ;;
		esac
		# perf itself runs outside the cgroup it samples (where this script
		# was started), so its own work is not in the profile.
		(echo "$BASHPID" > "$CG_HOME/cgroup.procs" 2>/dev/null
		 exec perf record -q -a -g -e cpu-clock -c "$PERIOD_NS" -G "${CG#"$CG_ROOT"/}" \
			-o "$RAW/perf.$c.data" -- sleep "$DUR") >/dev/null 2>&1 &
		ppid=$!
		client "$c" timeout $((DUR + 30)) wrk -c50 -t2 -d"${DUR}s" --timeout 2s \
			-H 'Connection: close' "http://$host:$port/" >"$RAW/perf.$c.wrk" 2>&1 || true
		wait "$ppid" || echo "bench: perf record failed for $c" >&2
		# Per process (self time), and per function with what it calls
		# (children: all of netfilter's hooks under nf_hook_slow, a BPF
		# program's helpers under the program), softirqs included where
		# they ran on a benchmark task's stack.
		perf report -i "$RAW/perf.$c.data" --stdio --no-children -g none -n \
			--sort comm --percent-limit 0 > "$RAW/perf.$c.comm.txt" 2>/dev/null &&
		perf report -i "$RAW/perf.$c.data" --stdio --children -g none \
			--sort sym --percent-limit 0.1 > "$RAW/perf.$c.sym.txt" 2>/dev/null ||
			echo "bench: perf report failed for $c" >&2
		[ -n "${BENCH_KEEP_PERF:-}" ] && cp "$RAW/perf.$c.data" "$BENCH_KEEP_PERF.$c.data"
		rm -f "$RAW/perf.$c.data"
		sleep 1
	done
fi
# The DNS rows' agents: one more queries/s run per meshed row, with perf
# sampling the row's agent cgroup alone (its work and the kernel's on its
# stacks: the system calls, nft mode's conntrack lookups over ctnetlink), so
# the report can say where an answered or a forwarded query's time goes in
# each capture mode, and counting its system calls by kind. The agent has
# no frame pointers: the kernel's call chains are whole, its own functions
# count by self time.
DNS_SYSCALLS="raw_syscalls:sys_enter"
for sc in recvmmsg sendmmsg epoll_wait sendto recvfrom recvmsg sendmsg; do
	DNS_SYSCALLS="$DNS_SYSCALLS,syscalls:sys_enter_$sc"
done
if [ "$PROFILE" = 1 ] && [ "$DNS" = 1 ]; then
	for row in $DNS_ROWS; do
		read -r c file < <(dns_row "$row")
		[ "$c" = direct ] && continue
		say "profile: DNS queries/s, $row"
		pcg=$(proxy_cg "$c")
		(echo "$BASHPID" > "$CG_HOME/cgroup.procs" 2>/dev/null
		 exec perf record -q -a -g -e cpu-clock -c "$PERIOD_NS" -G "${pcg#"$CG_ROOT"/}" \
			-o "$RAW/perf.dns-$row.data" -- sleep "$DUR") >/dev/null 2>&1 &
		ppid=$!
		(echo "$BASHPID" > "$CG_HOME/cgroup.procs" 2>/dev/null
		 exec perf stat -x, -a -e "$DNS_SYSCALLS" -G "${pcg#"$CG_ROOT"/}" \
			-o "$RAW/perf.dns-$row.syscalls" -- sleep "$DUR") >/dev/null 2>&1 &
		spid=$!
		client "$c" timeout $((DUR + 30)) dnsperf -s "$DNS_SRV" -d "$file" -l "$DUR" -t 2 \
			-c "$DNS_CLIENTS" -q "$DNS_CLIENTS" >"$RAW/perf.dns-$row.dnsperf" 2>&1 || true
		wait "$ppid" || echo "bench: perf record failed for DNS $row" >&2
		wait "$spid" || echo "bench: perf stat failed for DNS $row" >&2
		# Self time per function, and kernel functions with what they call
		# (a system call's entry holds all of it).
		perf report -i "$RAW/perf.dns-$row.data" --stdio --no-children -g none \
			--sort sym --percent-limit 0 > "$RAW/perf.dns-$row.self.txt" 2>/dev/null &&
		perf report -i "$RAW/perf.dns-$row.data" --stdio --children -g none \
			--sort sym --percent-limit 0.5 > "$RAW/perf.dns-$row.sym.txt" 2>/dev/null ||
			echo "bench: perf report failed for DNS $row" >&2
		[ -n "${BENCH_KEEP_PERF:-}" ] && cp "$RAW/perf.dns-$row.data" "$BENCH_KEEP_PERF.dns-$row.data"
		rm -f "$RAW/perf.dns-$row.data"
		sleep 1
	done
fi

# ---------------------------------------------------------------- report
if has haproxy; then
	ns h nft list table ip weft_bench > "$RAW/nft.txt" 2>&1 || true
fi
if has haproxy-http; then
	ns x nft list table ip weft_bench > "$RAW/nft-http.txt" 2>&1 || true
fi
if has weft || has weft-in; then
	"$BIN/meshctl" --socket "$RUN/admin.sock" status > "$RAW/meshctl.txt" 2>&1 || true
fi
if has weft-mtls; then
	"$BIN/meshctl" --socket "$RUN_MTLS/admin.sock" status > "$RAW/meshctl-mtls.txt" 2>&1 || true
fi
if has weft-nft; then
	"$BIN/meshctl" --socket "$RUN_NFT/admin.sock" status > "$RAW/meshctl-nft.txt" 2>&1 || true
fi
if has weft-in; then
	"$BIN/meshctl" --socket "$RUN/admin.sock" pod "$POD_IN" -o json > "$RAW/pod-in.json" 2>&1 || true
fi
STAMP=$(date -u +%Y-%m-%d-%H%M)
REV=$(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo unknown)
python3 - "$RAW/env.json" <<EOF
import json, sys
json.dump({
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "kernel": "$(uname -r)",
    "cpu": "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)",
    "cores": $(nproc), "clk_tck": $HZ,
    "rounds": $ROUNDS, "seconds": $DUR, "rate": $RATE, "conns": $CONNS, "conns_wanted": $CONNS_WANTED, "nofile": $NOFILE,
    "haproxy_maxconn": $((CONNS + 100)),
    "configs": "$CONFIGS".split(), "skipped": "$SKIP".split(), "workloads": "$WORKLOADS".split(),
    "only": "${BENCH_ONLY:-}",
    "server": "$SERVER",
    "server_version": "$(if [ "$SERVER" = nginx ]; then nginx -v 2>&1 | sed 's/.*nginx\///'; else echo bench/httpd.c; fi)",
    "autogroup": $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo None),
    "weft": "$(head -1 "$TMP/weft.version")", "weft_rev": "$REV",
    "weft_sha256": "$(sha256sum "$BIN/weft-agent" | cut -c1-16)",
    "haproxy": "$(haproxy -v | head -1 | cut -d' ' -f3)",
    "haproxy_threads": $(nproc),
    "weft_workers": "${WEFT_WORKERS:-auto ($(nproc))}",
    "wrk": "$(wrk -v 2>&1 | head -1 | cut -d' ' -f2)",
    "iperf3": "$(iperf3 --version | head -1 | cut -d' ' -f2)",
    "sockperf": "$(sockperf --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1)",
    "load_start": "$LOAD_START", "load_end": "$LOAD_END",
    "inbound_count_start": $IN_START, "inbound_count_end": $IN_END,
    "pod_in_tcp_opens_start": $OPENS_START, "pod_in_tcp_opens_end": $OPENS_END,
    "profile": $PROFILE, "profile_period_ns": $PERIOD_NS,
    "publish": $PUBLISH, "churn_services": $CHURN_SERVICES,
    "dns": $DNS, "dns_clients": $DNS_CLIENTS, "dns_rate": $DNS_RATE, "dns_rows": "$DNS_ROWS".split(),
    "dnsperf": "$(if [ "$DNS" = 1 ]; then dnsperf -h 2>&1 | sed -n 's/^Version //p' | head -1; fi)",
    "dnsmasq": "$(if [ "$DNS" = 1 ]; then dnsmasq --version | head -1 | cut -d' ' -f3; fi)",
    "elapsed_s": $((T_END - T_START)),
}, open(sys.argv[1], "w"))
EOF
# BENCH_KEEP_RAW=DIR keeps the raw outputs, to render the report again later
# (bench/report.py DIR OUT.md OUT.json).
[ -n "${BENCH_KEEP_RAW:-}" ] && cp -r "$RAW" "$BENCH_KEEP_RAW"
python3 "$HERE/report.py" "$RAW" "$HERE/results/$STAMP.md" "$HERE/results/$STAMP.json"
cp "$HERE/results/$STAMP.md" "$HERE/results/latest.md"
echo
cat "$HERE/results/latest.md"
echo
echo "bench: written bench/results/$STAMP.md, bench/results/latest.md" >&2
