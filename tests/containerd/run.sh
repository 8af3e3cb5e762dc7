#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The real container runtime tier (docs/testing.md): Debian's containerd,
# runc and CNI plugins run containers through `ctr run --cni`, with weft-cni
# chained into a bridge + host-local network by the real weft-cni-install and
# a real weft-agent capturing their traffic. Everything is private to the run:
# containerd lives in its own network and mount namespace (its /etc/cni/net.d,
# /opt/cni/bin and /run are mounts of that namespace only), root, state,
# sockets, IPAM and the agent's bpffs/run dir are under one temp folder, and
# every process and container cgroup is below one test cgroup the BPF
# programs attach to. Addresses: 198.18.10.0/24 (pods, servers), 198.19.0.10
# (the VIP); no route leaves the namespace.
#   tests/containerd/run.sh BUILD_DIR   (root; prints "N passed, N failed")
# `cond && ok ... || bad ...` is meant: ok and bad always succeed.
# shellcheck disable=SC2015
set -u

B=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
IMG=docker.io/weft-test/busybox:1
AGENT_IMG=ghcr.io/weft-mesh/weft:$(cat "$HERE/../../VERSION")
# Debian's interpreter (docs/dependencies.md), not the first python3 in PATH:
# a version manager's shim there (pyenv's) costs about 2 s a start, and the
# pod and status checks below run it in polling loops.
PY=/usr/bin/python3

pass=0 fail=0
T="" CG="" CPID="" AGENT=""

ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
note() { echo "     $*"; }

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$CPID" ] && [ -d "/proc/$CPID" ]; then
		for id in $(ctr_ task ls -q 2>/dev/null); do
			ctr_ task kill -s KILL "$id" >/dev/null 2>&1
		done
		sleep 0.3
	fi
	[ -n "$AGENT" ] && agent_stop
	if [ -n "$T" ] && [ -d "$T/bpffs" ]; then
		agent_cmd --cleanup >>"$T/agent.log" 2>&1
	fi
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		# Leave the test cgroup, then end everything still in it (containerd,
		# shims, containers, servers): the namespaces go with them.
		echo $$ > "$CG_ROOT/cgroup.procs"
		echo 1 > "$CG/cgroup.kill" 2>/dev/null
		sleep 0.3
		find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null
		[ -d "$CG" ] && echo "warning: could not remove $CG" >&2
	fi
	# runc also makes the container cgroups in each cgroup v1 hierarchy
	# (this host is hybrid); it removes the leaves, the parent is ours.
	for d in /sys/fs/cgroup/*/"weft-test-$$-cd"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	if [ -n "$T" ]; then
		grep -q " $T/bpffs " /proc/mounts && umount "$T/bpffs"
		if [ "$fail" -gt 0 ] && [ -z "${KEEP_LOGS:-}" ]; then
			for f in agent.log containerd.log; do
				[ -s "$T/$f" ] && { echo "--- last lines of $f:"; tail -n 30 "$T/$f"; }
			done
		fi
		rm -rf "$T"
	fi
	if [ -n "${HOST_PATHS0:-}" ]; then
		[ "$(host_paths)" = "$HOST_PATHS0" ] &&
			ok "the host's CNI and containerd paths are as they were" ||
			bad "host paths changed: before '$HOST_PATHS0', after '$(host_paths)'"
	fi
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit $?
}

# The host's CNI folders (their whole content) and whether the host has its
# own containerd's folders (only that: a host containerd may be running and
# changing them): the tier must leave them alone.
host_paths() {
	for p in /etc/cni /opt/cni /run/containerd /var/lib/containerd; do
		if [ ! -e "$p" ]; then
			echo "$p:absent"
		elif [ "${p#*containerd}" != "$p" ]; then
			echo "$p:present"
		else
			echo "$p:$(find "$p" -printf '%p %s %T@\n' 2>/dev/null | sort | cksum)"
		fi
	done | tr '\n' ' '
}

# A setup step that cannot work fails the tier with the reason, never skips.
die() {
	bad "setup: $*"
	cleanup
}

ctr_() { nsenter --target "$CPID" --net --mount ctr --address "$T/run/containerd.sock" "$@"; }
innet() { nsenter --net="/proc/$CPID/ns/net" "$@"; }
meshctl_() { "$B/meshctl" --socket "$T/weft/admin.sock" --timeout 3s "$@"; }
# weft-agent with the test's options (--cleanup needs no network namespace).
agent_cmd() {
	"$B/san/weft-agent" --registry "file:$T/registry.yaml" --cgroup "$CG" \
		--bpffs "$T/bpffs/weft" --run-dir "$T/weft" --log-level debug "$@"
}
agent_start() {
	# Not through agent_cmd: $! must be the agent (nsenter execs it), not a
	# subshell running a function.
	# The agent runs in a cgroup of its own below the test's: capture
	# recognises its sockets by that cgroup (docs/datapath.md).
	mkdir -p "$CG/agent"
	sh -c 'echo $$ > "$0/agent/cgroup.procs" && exec "$@"' "$CG" \
		nsenter --net="/proc/$CPID/ns/net" "$B/san/weft-agent" --registry "file:$T/registry.yaml" \
		--cgroup "$CG" --bpffs "$T/bpffs/weft" --run-dir "$T/weft" --log-level debug \
		>>"$T/agent.log" 2>&1 &
	AGENT=$!
	for _ in $(seq 100); do
		meshctl_ status >/dev/null 2>&1 && return 0
		[ -d "/proc/$AGENT" ] || break
		sleep 0.1
	done
	return 1
}
# SIGTERM the agent; its exit status in AGENT_RC (0 = clean, no sanitizer report).
agent_stop() {
	kill -TERM "$AGENT" 2>/dev/null
	wait "$AGENT"
	AGENT_RC=$?
	AGENT=""
}
# Poll @2.. (a command) for up to @1 tenths of a second.
wait_for() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
# Run a container in the foreground (--rm: ctr runs CNI DEL when it exits).
crun() {
	id=$1
	shift
	ctr_ run --rm --cni --cgroup "/weft-test-$$-cd/$id" "$IMG" "$id" "$@"
}
# The same, left running in the background until `ctr task kill`.
crun_bg() {
	id=$1
	shift
	ctr_ run --rm --cni --cgroup "/weft-test-$$-cd/$id" "$IMG" "$id" "$@" \
		>"$T/$id.out" 2>&1 &
}
running() { ctr_ task ls 2>/dev/null | grep -q "^$1 .*RUNNING"; }
stopped() { ctr_ task ls 2>/dev/null | grep -q "^$1 .*STOPPED"; }
gone() { ! ctr_ container ls -q 2>/dev/null | grep -qx "$1"; }
stop_bg() {
	ctr_ task kill -s KILL "$1" >/dev/null 2>&1
	wait_for 100 gone "$1"
}
# "meshed" / "not-meshed" / "absent": what /v1/pods says of pod default/$1.
pod_state() {
	meshctl_ -j pods 2>/dev/null | "$PY" -c '
import json, sys
want = sys.argv[1]
doc = json.load(sys.stdin)
pods = doc.get("pods", doc) if isinstance(doc, dict) else doc
for p in pods:
    if p.get("name") == want and p.get("namespace", "default") == "default":
        print("meshed" if p.get("meshed") else "not-meshed")
        break
else:
    print("absent")' "default-$1"
}
# A value at dotted path @1 of /v1/status ("connections.total", "registries.0.loads").
status_num() {
	meshctl_ -j status 2>/dev/null | "$PY" -c '
import json, sys
o = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    o = o[int(k)] if isinstance(o, list) else o[k]
print(o)' "$1"
}
pod_is() { [ "$(pod_state "$1")" = "$2" ]; }
registry() { # $1: labels of namespace default (a YAML flow map)
	cat > "$T/registry.yaml.new" <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels: $1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations:
    weft.io/lb: round-robin
spec:
  clusterIP: 198.19.0.10
  ports:
    - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
  - addresses: ["198.18.10.251"]
  - addresses: ["198.18.10.252"]
  - addresses: ["198.18.10.253"]
ports:
  - {name: http, port: 8080, protocol: TCP}
EOF
	mv "$T/registry.yaml.new" "$T/registry.yaml"
}

trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- setup ------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root (namespaces, cgroups, BPF, containerd)"
for c in containerd ctr runc containerd-shim-runc-v2 unshare nsenter ip "$PY"; do
	command -v "$c" >/dev/null || die "$c not found: run 'make deps' (scripts/deps.sh)"
done
for p in bridge host-local; do
	[ -x "/usr/lib/cni/$p" ] || die "/usr/lib/cni/$p missing: install containernetworking-plugins"
done
[ -x /bin/busybox ] && file_static=$(ldd /bin/busybox 2>&1 | grep -c "not a dynamic")
[ "${file_static:-0}" = 1 ] || die "/bin/busybox is not busybox-static: install busybox-static"
for f in weft-cni weft-cni-install meshctl san/weft-agent; do
	[ -x "$B/$f" ] || die "$B/$f not built"
done
[ -s "$B/weft-image.tar" ] || die "$B/weft-image.tar missing: make image"

HOST_PATHS0=$(host_paths)
CG_ROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[ -n "$CG_ROOT" ] || die "no cgroup v2 mount in /proc/mounts"
T=$(mktemp -d "/tmp/weft-test-$$-XXXXXX") || die "mktemp"
mkdir -p "$T/root" "$T/state" "$T/run" "$T/conf" "$T/bin" "$T/ipam" "$T/weft" "$T/bpffs" \
	"$T/cni-install" "$T/etc-up" "$T/etc-work" "$T/www"
CG=$CG_ROOT/weft-test-$$-cd
mkdir "$CG" || die "create test cgroup $CG"
# Join first: containerd, its shims, containers, the agent and servers all
# inherit it, and the BPF programs attach to it (DESIGN.md test-bed rules).
echo $$ > "$CG/cgroup.procs" || die "join test cgroup $CG"
mount -t bpf bpf "$T/bpffs" -o mode=0700 || die "mount a private bpffs on $T/bpffs"

# The plugins ctr runs: Debian's bridge, host-local and loopback, then
# weft-cni (copied in by the installer below).
cp /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback "$T/bin/"
cat > "$T/conf/10-wtcd.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "wtcd",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "wtcd0",
      "isGateway": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "198.18.10.0/24", "rangeStart": "198.18.10.10",
                     "rangeEnd": "198.18.10.200", "gateway": "198.18.10.1"}]],
        "routes": [{"dst": "198.18.0.0/15"}],
        "dataDir": "$T/ipam"
      }
    }
  ]
}
EOF
cat > "$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
# ctr needs no CRI; without it containerd reads no CNI config of its own.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/run/containerd.sock"
[ttrpc]
  address = "$T/run/containerd.sock.ttrpc"
EOF
# In containerd's own mount namespace: ctr looks for CNI configs in
# /etc/cni/net.d and plugins in /opt/cni/bin, and shims put their sockets
# under /run/containerd; those paths become mounts of this namespace only
# (an overlay over /etc, tmpfs on /opt and /run). The bridge exists first so
# the servers standing for backends can have their addresses on it.
cat > "$T/start.sh" <<EOF
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /opt
mkdir -p /opt/cni/bin
mount --bind "$T/bin" /opt/cni/bin
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/etc-up,workdir=$T/etc-work" /etc
mkdir -p /etc/cni/net.d
mount --bind "$T/conf" /etc/cni/net.d
ip link set lo up
ip link add wtcd0 type bridge
ip addr add 198.18.10.1/24 dev wtcd0
for i in 251 252 253; do ip addr add 198.18.10.\$i/24 dev wtcd0; done
ip link set wtcd0 up
exec containerd --config "$T/config.toml"
EOF
unshare --net --mount sh "$T/start.sh" >"$T/containerd.log" 2>&1 &
CPID=$!
# unshare execs sh, which execs containerd: the same pid throughout.
wait_for 100 test -S "$T/run/containerd.sock" ||
	die "containerd did not start: $(tail -n 5 "$T/containerd.log" | tr '\n' ' ')"
ctr_ version >/dev/null 2>&1 || die "ctr cannot reach containerd: $(ctr_ version 2>&1 | tail -n 1)"

"$HERE/busybox-image.sh" "$IMG" "$T/busybox.tar" || die "build the busybox image"
ctr_ images import "$T/busybox.tar" >/dev/null 2>&1 ||
	die "ctr images import: $(ctr_ images import "$T/busybox.tar" 2>&1 | tail -n 1)"

# Backends of the VIP: servers on the bridge, one per address.
for i in 1 2 3; do
	mkdir -p "$T/www/b$i"
	echo "backend-$i" > "$T/www/b$i/index.html"
	innet busybox httpd -f -p "198.18.10.25$i:8080" -h "$T/www/b$i" &
done

# The real installer chains weft-cni into the conflist.
"$B/weft-cni-install" install --conf-dir "$T/conf" --bin-dir "$T/bin" \
	--state-dir "$T/cni-install" --plugin "$B/weft-cni" --agent-socket "$T/weft/cni.sock" \
	>"$T/install.log" 2>&1 || die "weft-cni-install: $(tail -n 3 "$T/install.log")"
# ctr (containerd 1.6) passes no CNI_ARGS at all (labels do not become
# K8S_POD_*), so weft-cni's documented "standalone": true is the only way it
# accepts these sandboxes: namespace "default", named after the container
# ID. The installer has no option for it, so the test adds the key.
"$PY" - "$T/conf/10-wtcd.conflist" <<'EOF' || die "mark the weft entry standalone"
import json, sys
path = sys.argv[1]
conf = json.load(open(path))
weft = [p for p in conf["plugins"] if p["type"] == "weft-cni"]
assert len(weft) == 1, conf
weft[0]["standalone"] = True
json.dump(conf, open(path, "w"), indent=2)
EOF

registry "{weft.io/mesh: enabled}"
agent_start || die "weft-agent did not answer: $(tail -n 5 "$T/agent.log" | tr '\n' ' ')"

# ---- a meshed container: captured and balanced ------------------------------
crun_bg m1 sleep 120
if wait_for 100 running m1 && wait_for 50 pod_is m1 meshed; then
	ok "a container started by ctr run --cni is enrolled and meshed (/v1/pods)"
else
	bad "container m1 not meshed: state $(pod_state m1); $(tail -n 3 "$T/m1.out")"
fi
seen=$(ctr_ task exec --exec-id w1 m1 sh -c \
	'for i in 1 2 3 4 5 6 7 8 9; do timeout 5 wget -q -O - http://198.19.0.10/; done' 2>&1 |
	grep '^backend-' | sort -u | tr '\n' ' ')
n=$(echo "$seen" | wc -w)
if [ "$n" -ge 2 ]; then
	ok "the container's requests to the VIP reach several backends: $seen"
else
	bad "VIP 198.19.0.10 from m1 reached ${n} backend(s): '$seen'"
fi
to_svc=$(status_num connections.to_service)
[ "$to_svc" -ge 9 ] 2>/dev/null && ok "the agent proxied them (connections.to_service=$to_svc)" ||
	bad "the agent did not proxy m1's requests: connections.to_service=$to_svc"
stop_bg m1 || bad "container m1 did not go away"
wait_for 50 pod_is m1 absent && ok "deleting the container removes the pod from the agent" ||
	bad "pod default-m1 still $(pod_state m1) after its container went"

# ---- 50 create/delete cycles leak nothing -----------------------------------
count_ips() { find "$T/ipam/wtcd" -name '198.*' 2>/dev/null | wc -l; }
count_pods() { meshctl_ -j pods 2>/dev/null | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)
print(len(doc.get("pods", []) if isinstance(doc, dict) else doc))'; }
count_map() { "$B/meshctl" -j bpf maps --bpffs "$T/bpffs/weft" 2>/dev/null | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)
print(len(doc.get("pods", [])))' 2>/dev/null || echo "?"; }
count_fds() { find "/proc/$AGENT/fd" -mindepth 1 | wc -l; }
count_state() { find "$T/weft" -type f | wc -l; }
before="ips=$(count_ips) pods=$(count_pods) map=$(count_map) fds=$(count_fds) state=$(count_state)"
cyc_fail=0
start=$(date +%s)
for i in $(seq 50); do
	out=$(crun "c$i" sh -c 'timeout 5 wget -q -O - http://198.19.0.10/' 2>&1)
	case "$out" in
	backend-*) ;;
	*) cyc_fail=$((cyc_fail + 1)); [ "$cyc_fail" -le 3 ] && note "cycle $i: $out" ;;
	esac
done
note "50 cycles in $(($(date +%s) - start)) s"
[ "$cyc_fail" = 0 ] && ok "50 create/delete cycles: every container reached the VIP" ||
	bad "$cyc_fail of 50 cycles did not reach the VIP"
sleep 0.5
after="ips=$(count_ips) pods=$(count_pods) map=$(count_map) fds=$(count_fds) state=$(count_state)"
if [ "$before" = "$after" ]; then
	ok "50 cycles leak nothing: $after"
else
	bad "50 cycles leaked: before $before, after $after"
fi
leftover=$(ctr_ container ls -q | wc -l)
[ "$leftover" = 0 ] && ok "no container is left" || bad "$leftover containers left"

# ---- a namespace that is not meshed -----------------------------------------
loads=$(status_num registries.0.loads)
registry "{team: legacy}"
reloaded() { [ "$(status_num registries.0.loads)" -gt "$loads" ] 2>/dev/null; }
wait_for 50 reloaded || bad "the agent did not reload the rewritten registry file"
crun_bg u1 sleep 120
if wait_for 100 running u1; then
	ok "a container in a namespace that is not meshed starts"
else
	bad "container u1 in a non-meshed namespace did not start: $(tail -n 3 "$T/u1.out")"
fi
st=$(pod_state u1)
[ "$st" != meshed ] && ok "and is not meshed ($st)" || bad "u1 is meshed in a non-meshed namespace"
total0=$(status_num connections.total)
out=$(ctr_ task exec --exec-id w1 u1 sh -c \
	'timeout 5 wget -q -O - http://198.18.10.251:8080/; timeout 3 wget -q -O - http://198.19.0.10/ 2>&1; echo vip=$?' 2>&1)
case "$out" in
backend-1*vip=[1-9]*)
	total1=$(status_num connections.total)
	[ "$total0" = "$total1" ] &&
		ok "its traffic is left alone: direct address answers, VIP not captured, agent saw none" ||
		bad "u1 is not meshed but the agent proxied $((total1 - total0)) of its connections"
	;;
*) bad "traffic of u1 not left alone: $(echo "$out" | tr '\n' ' ')" ;;
esac
stop_bg u1

agent_stop
[ "$AGENT_RC" = 0 ] && ok "the agent exits cleanly (no sanitizer report)" || bad "agent exit status $AGENT_RC"
out=$(crun u2 true 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
	ok "agent stopped: a container in a non-meshed namespace still starts"
else
	bad "agent stopped: non-meshed container did not start: $(echo "$out" | tail -n 1)"
fi
agent_cmd --cleanup >>"$T/agent.log" 2>&1 || bad "weft-agent --cleanup failed"

# ---- weft's own image under containerd --------------------------------------
ctr_ images import "$B/weft-image.tar" >/dev/null 2>&1 ||
	bad "import weft-image.tar: $(ctr_ images import "$B/weft-image.tar" 2>&1 | tail -n 1)"
mkdir -p "$T/img-netns" "$T/img-etc" "$T/weft"
registry "{weft.io/mesh: enabled}"
cp "$T/registry.yaml" "$T/img-etc/registry.yaml"
# What manifests/weft.yaml gives the agent container: host network (here,
# containerd's namespace) and PID namespace, the capabilities it lists on
# top of none, a read-only root, bpffs (here, the test's), the cgroup
# folder read-only, /run/weft, /run/netns and the registry file. Its
# /run/weft is the folder the chained weft-cni already talks to.
# ctr has no "drop ALL": drop each capability of its default set instead.
cap_args=""
for c in CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP \
	NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE; do
	cap_args="$cap_args --cap-drop CAP_$c"
done
for c in BPF PERFMON NET_ADMIN SYS_ADMIN SYS_PTRACE; do cap_args="$cap_args --cap-add CAP_$c"; done
# shellcheck disable=SC2086
ctr_ run -d --net-host --with-ns "pid:/proc/$CPID/ns/pid" --read-only --seccomp \
	$cap_args --cgroup "/weft-test-$$-cd/weft-agent" \
	--mount "type=bind,src=$T/bpffs,dst=/sys/fs/bpf,options=rbind:rw" \
	--mount "type=bind,src=/sys/fs/cgroup,dst=/sys/fs/cgroup,options=rbind:ro" \
	--mount "type=bind,src=$T/weft,dst=/run/weft,options=rbind:rw" \
	--mount "type=bind,src=$T/img-netns,dst=/run/netns,options=rbind:ro" \
	--mount "type=bind,src=$T/img-etc,dst=/etc/weft,options=rbind:ro" \
	--env WEFT_REGISTRY=file:/etc/weft/registry.yaml --env WEFT_BPFFS=/sys/fs/bpf/weft \
	--env WEFT_RUN_DIR=/run/weft --env "WEFT_CGROUP=$CG" \
	--log-uri "file://$T/img-agent.log" "$AGENT_IMG" weft-agent >"$T/img.out" 2>&1 ||
	bad "run the agent image: $(tail -n 2 "$T/img.out")"
# The manifest's probes: liveness `meshctl status`, readiness `meshctl check --ready`.
img_probe() { ctr_ task exec --exec-id probe weft-agent /usr/local/bin/meshctl --timeout 3s "$@" >"$T/img-probe.out" 2>&1; }
if wait_for 100 img_probe status; then
	ok "weft's image runs under containerd and answers meshctl status (liveness)"
else
	bad "weft's image under containerd: $(tail -n 3 "$T/img-probe.out" | tr '\n' ' ')"
	ctr_ task ls >&2
fi
if wait_for 50 img_probe check --ready; then
	ok "and is ready: datapath loaded, registry synced (meshctl check --ready)"
else
	bad "the image's agent is not ready: $(tail -n 5 "$T/img-probe.out" | tr '\n' ' ')"
fi
# Exactly the capabilities the manifest adds: BPF 39, PERFMON 38, NET_ADMIN
# 12, SYS_ADMIN 21, SYS_PTRACE 19.
ipid=$(ctr_ task ls | awk '$1 == "weft-agent" {print $2}')
cap=$(awk '/^CapEff/ {print $2}' "/proc/${ipid:-0}/status" 2>/dev/null)
[ "$cap" = "000000c000281000" ] && ok "it runs with exactly the manifest's capabilities" ||
	bad "the image's agent has CapEff '$cap', want 000000c000281000"
out=$(crun i1 sh -c 'for i in 1 2 3; do timeout 5 wget -q -O - http://198.19.0.10/; done' 2>&1)
n=$(echo "$out" | grep '^backend-' | sort -u | wc -l)
[ "$n" -ge 2 ] && ok "a container started next to it is captured and balanced by it ($n backends)" ||
	bad "a container under the image's agent: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
# Stopped as the kubelet would: SIGTERM, and it must exit cleanly in time.
ctr_ task kill -s TERM weft-agent >/dev/null 2>&1
if wait_for 100 stopped weft-agent; then
	# The shim copies the output to the file after the fact, and deleting
	# the task cuts that copy short: read the log first. The copy can also
	# fail on its own as the process exits (containerd logs "error copying
	# stderr"); then the exit status, which `ctr task delete` returns, is
	# what says the stop was clean.
	logged=0
	wait_for 30 grep -q "stopping" "$T/img-agent.log" || logged=1
	status=0
	ctr_ task delete weft-agent >/dev/null 2>&1 || status=$?
	if [ "$status" = 0 ] && [ "$logged" = 0 ]; then
		ok "the image's agent stops on SIGTERM within 10 s with status 0, saying so in its log"
	elif [ "$status" = 0 ] && grep -q "error copying stderr" "$T/containerd.log"; then
		ok "the image's agent stops on SIGTERM within 10 s with status 0 (its last log lines lost by containerd's shim: \"error copying stderr\")"
	else
		bad "the image's agent stopped with status $status, its shutdown line $([ "$logged" = 0 ] && echo logged || echo missing): $(tail -n 3 "$T/img-agent.log")"
	fi
else
	bad "the image's agent did not stop within 10 s of SIGTERM"
	ctr_ task kill -s KILL weft-agent >/dev/null 2>&1
	wait_for 50 stopped weft-agent
	ctr_ task delete weft-agent >/dev/null 2>&1
fi
ctr_ container delete weft-agent >/dev/null 2>&1
