#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Install the Debian 12 packages weft builds and tests with, only those missing.
# Why each is here is written in docs/dependencies.md.
set -eu

PKGS="make gcc clang libclang-rt-14-dev llvm bpftool pkg-config libbpf-dev libelf-dev zlib1g-dev
libmnl-dev libnftnl-dev libjson-c-dev libyaml-dev libhttp-parser-dev libseccomp-dev libldns-dev
libcurl4-openssl-dev libssl-dev libcriterion-dev libzookeeper-mt-dev iproute2 curl procps util-linux
python3 python3-h11 python3-yaml openssl etcd-server etcd-client zookeeper default-jre-headless prometheus
containerd containernetworking-plugins busybox-static nftables dnsmasq-base bind9-dnsutils"

# `deps.sh bench` adds what only the benchmark needs. (Debian's nginx starts
# its default site on port 80 when installed on a host whose init runs
# services; the benchmark never uses that service, only the binary.)
if [ "${1:-}" = bench ]; then
	PKGS="$PKGS wrk iperf3 sockperf haproxy nginx linux-perf dnsperf"
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "error: missing packages:$missing; run 'make deps' as root" >&2
	exit 1
fi
echo "  DEPS     installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
