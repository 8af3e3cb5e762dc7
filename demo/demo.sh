#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# weft in two minutes, in network namespaces on this machine only:
#   client-a (namespace shop, meshed) and client-b (namespace legacy, not meshed)
#   call the catalog service at 198.19.0.10:80 with plain curl; three backends
#   answer in turn; one dies and client-a keeps succeeding while the agent ejects
#   it. The backends' own pod is meshed too: their inbound connections pass
#   through the agent, which counts them per port, and the backends still see
#   each client's real address. With a CA made for the demo, the agent gives
#   each meshed pod a workload certificate, and client-a reaches backend-1 (a
#   meshed pod) over mutual TLS. With dnsmasq as the pods' resolver, client-a
#   reaches http://inventory.shop/, a service only the registry file knows, by
#   name: the agent answers its DNS. Everything lives in namespaces named wd<pid>*,
#   a cgroup and a bpffs made for the demo, and is removed on exit.
#   MODE=nft (or ebpf, auto: the default) picks the capture mode.
set -euo pipefail

B=${WEFT_BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
HERE=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: needs root (BPF, namespaces, cgroups)" >&2; exit 1; }

P=wd$$
TMP=$(mktemp -d "/tmp/weft-demo-$$-XXXXXX")
CG_ROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[ -n "$CG_ROOT" ] || { echo "demo: no cgroup v2 mount found" >&2; exit 1; }
CG=$CG_ROOT/weft-demo-$$
BPFFS=$TMP/bpffs
RUN=$TMP/run
AGENT_PID=
MODE=${MODE:-auto}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ns() { nsenter --net="/run/netns/$P$1" "${@:2}"; }

cleanup() {
	set +e
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	"$B/weft-agent" --cgroup "$CG" --bpffs "$BPFFS/weft" --run-dir "$RUN" --cleanup >/dev/null 2>&1
	echo $$ > "$CG_ROOT/cgroup.procs" 2>/dev/null
	# Whatever the demo started lives in its cgroup: stop all of it.
	for pid in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$pid" 2>/dev/null; done
	for n in r a b s; do ip netns del "$P$n" 2>/dev/null; done
	umount "$BPFFS" 2>/dev/null
	for _ in $(seq 50); do rmdir "$CG/agent" 2>/dev/null; rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
	rm -rf "$TMP"
}
trap cleanup EXIT

say "setting up: a cgroup, a private bpffs, four network namespaces"
mkdir "$CG" "$CG/agent"
# Join the demo cgroup first: the agent and every client below inherit it,
# and the programs are attached to it, never to the machine's root cgroup.
echo $$ > "$CG/cgroup.procs"
mkdir -p "$BPFFS" && mount -t bpf bpf "$BPFFS"
for n in r a b s; do ip netns add "$P$n"; ip -n "$P$n" link set lo up; done
ip netns exec "${P}r" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
link() { # pod subnet
	ip -n "$P$1" link add "$1-r" type veth peer name "r-$1" netns "${P}r"
	ip -n "$P$1" link set "$1-r" up; ip -n "${P}r" link set "r-$1" up
	ip -n "${P}r" addr add "198.18.$2.1/24" dev "r-$1"
}
link a 1; ip -n "${P}a" addr add 198.18.1.2/24 dev a-r; ip -n "${P}a" route add default via 198.18.1.1
link b 3; ip -n "${P}b" addr add 198.18.3.2/24 dev b-r; ip -n "${P}b" route add default via 198.18.3.1
link s 2
for i in 1 2 3; do
	ip -n "${P}s" addr add "198.18.2.1$i/24" dev s-r
	mkdir -p "$TMP/www$i"; echo "hello from backend-$i ($(printf '198.18.2.1%s' $i))" > "$TMP/www$i/index.html"
	# The server's log names each client by the address it connected from.
	ns s python3 -m http.server 8080 --bind "198.18.2.1$i" --directory "$TMP/www$i" \
		>/dev/null 2>"$TMP/backend-$i.log" &
done
ip -n "${P}s" route add default via 198.18.2.1
for i in 1 2 3; do # wait for the backends to listen
	for _ in $(seq 100); do ns s curl -s -o /dev/null "http://198.18.2.1$i:8080/" && break; sleep 0.05; done
done

say "starting weft-agent (registry: demo/registry.yaml, --mode $MODE, a CA for mTLS)"
cp "$HERE/registry.yaml" "$TMP/registry.yaml"
# The standalone CA (docs/mtls.md): its key on the node, for a demo or a
# single node only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /O=weft-demo/CN=weft-demo-ca -keyout "$TMP/ca.key" -out "$TMP/ca.pem" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
# The agent in a cgroup of its own below the demo's: nft mode tells its
# sockets from the pods' by cgroup (eBPF mode needs it below --cgroup).
(echo "$BASHPID" > "$CG/agent/cgroup.procs" && exec "$B/weft-agent" \
	--registry "file:$TMP/registry.yaml" --cgroup "$CG" --bpffs "$BPFFS/weft" \
	--run-dir "$RUN" --mode "$MODE" --ca-cert "$TMP/ca.pem" --ca-key "$TMP/ca.key") \
	>"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do [ -S "$RUN/admin.sock" ] && break; sleep 0.05; done
[ -S "$RUN/admin.sock" ] || { cat "$TMP/agent.log"; exit 1; }
sed 's/^/  /' "$TMP/agent.log"

cni() { # command netns k8s-namespace pod ip
	printf '{"cniVersion":"1.0.0","name":"demo","type":"weft-cni","agent_socket":"%s",
	  "prevResult":{"cniVersion":"1.0.0","ips":[{"address":"%s/24"}]}}' "$RUN/cni.sock" "$5" |
	CNI_COMMAND=$1 CNI_CONTAINERID="demo-$4" CNI_NETNS="/run/netns/$P$2" CNI_IFNAME=eth0 \
	CNI_PATH=/opt/cni/bin CNI_ARGS="K8S_POD_NAMESPACE=$3;K8S_POD_NAME=$4" "$B/weft-cni" >/dev/null
}
say "enrolling three pods through the CNI plugin, as a container runtime would"
cni ADD a shop client-a 198.18.1.2 && echo "  shop/client-a enrolled"
cni ADD b legacy client-b 198.18.3.2 && echo "  legacy/client-b enrolled"
cni ADD s shop catalog-backends 198.18.2.11 && echo "  shop/catalog-backends enrolled (the three backends' pod)"

say "meshctl pods"
"$B/meshctl" --socket "$RUN/admin.sock" pods

say "client-a (meshed): six plain curl calls to the service VIP http://198.19.0.10/"
for i in 1 2 3 4 5 6; do
	printf '  request %d → ' "$i"; ns a curl -sS --max-time 3 http://198.19.0.10/
done

say "backend-2 dies: client-a keeps succeeding (retry on another endpoint, then ejection)"
pkill -f -- "--directory $TMP/www2" || true
ok=0
for i in $(seq 12); do
	if out=$(ns a curl -sS --max-time 3 http://198.19.0.10/); then ok=$((ok + 1)); fi
	printf '  request %2d → %s\n' "$i" "$out"
done
echo "  $ok of 12 requests succeeded"
[ "$ok" = 12 ] || { echo "demo: requests failed after a backend died" >&2; exit 1; }

say "meshctl service shop/catalog: backend-2 is ejected"
"$B/meshctl" --socket "$RUN/admin.sock" service shop/catalog

say "inbound capture: the backends' pod is meshed too; each connection reached them through the agent"
"$B/meshctl" --socket "$RUN/admin.sock" pod shop/catalog-backends | sed 's/^/  /'
echo "  … and the backends saw the real client, not the agent (backend-1's log):"
tail -n 2 "$TMP/backend-1.log" | sed 's/^/  /'
grep -q '^198\.18\.1\.2 ' "$TMP/backend-1.log" ||
	{ echo "demo: backend-1 did not see client-a's own address" >&2; exit 1; }

say "mutual TLS: each meshed pod's certificate names its workload (meshctl identities)"
"$B/meshctl" --socket "$RUN/admin.sock" identities | sed 's/^/  /'
echo "  backend-1 (198.18.2.11) is the meshed pod catalog-backends: reached over TLS 1.3;"
echo "  the others are no pod the registry knows: plaintext. meshctl trace, for the next pick:"
"$B/meshctl" --socket "$RUN/admin.sock" trace shop/client-a 198.19.0.10:80 |
	grep -E 'mtls' | sed 's/^/  /' || true
mtls=$("$B/meshctl" --socket "$RUN/admin.sock" -o json status |
	python3 -c 'import json,sys; m=json.load(sys.stdin)["mtls"]; print(m["out"], m["in"])')
echo "  handshakes so far: ${mtls% *} as client (client-a's agent), ${mtls#* } as server (the backends')"
[ "${mtls% *}" -gt 0 ] || { echo "demo: no request went over mTLS" >&2; exit 1; }

say "client-b (namespace legacy, not meshed): the VIP exists nowhere on the wire"
if ns b curl -sS --max-time 2 http://198.19.0.10/ 2>&1 | sed 's/^/  /'; then :; fi
echo "  … its direct traffic reaches the backends, through their pod's inbound capture:"
printf '  '; ns b curl -sS --max-time 3 http://198.18.2.13:8080/
tail -n 1 "$TMP/backend-3.log" | sed 's/^/  backend-3 saw: /'

say "names: client-a's plain curl http://inventory.shop/ (a service only the registry file knows)"
# The pods' resolver: dnsmasq in the backends' namespace, knowing nothing of
# the mesh (cluster.local is local to it: NXDOMAIN for any name under it).
ip -n "${P}s" addr add 198.18.2.53/24 dev s-r
ns s dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
	--bind-interfaces --listen-address=198.18.2.53 --user=root --pid-file= \
	--local=/cluster.local/ --address=/example.test/198.18.2.13 >/dev/null 2>&1 &
printf 'nameserver 198.18.2.53\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' \
	> "$TMP/resolv.conf"
# A pod's own resolv.conf, as the kubelet writes it: bind-mounted in a mount
# namespace of the client's own, the machine's stays as it is.
pod_a() { unshare --mount sh -c "mount --bind $TMP/resolv.conf /etc/resolv.conf && exec nsenter --net=/run/netns/${P}a $*"; }
for _ in $(seq 50); do pod_a getent hosts example.test >/dev/null && break; sleep 0.1; done
printf '  getent hosts inventory.shop → '; pod_a getent hosts inventory.shop
printf '  curl http://inventory.shop/ → '; pod_a curl -sS --max-time 3 http://inventory.shop/
printf '  getent hosts example.test (not the agent'"'"'s: forwarded to dnsmasq) → '; pod_a getent hosts example.test
"$B/meshctl" --socket "$RUN/admin.sock" resolve inventory.shop --pod shop/client-a | sed 's/^/  /'
dns=$("$B/meshctl" --socket "$RUN/admin.sock" -o json status |
	python3 -c 'import json,sys; d=json.load(sys.stdin)["dns"]; print(d["answered"], d["forwarded"])')
echo "  the agent's DNS: ${dns% *} answered, ${dns#* } forwarded"
[ "${dns% *}" -gt 0 ] || { echo "demo: the agent answered no DNS query" >&2; exit 1; }

say "meshctl check: the capture mode, and what each mode needs from this kernel"
"$B/meshctl" --socket "$RUN/admin.sock" check | grep -E 'capture mode|mode needs|agent ' | sed 's/^/  /' || true

say "meshctl status"
"$B/meshctl" --socket "$RUN/admin.sock" status

say "done: cleaning up (agent stopped, programs detached, namespaces removed)"
