#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The Kubernetes registry at scale (`make bench-registry`): 10,000 Services
# and 100,000 endpoints in the fake API server of tests/k8s-apiserver/, the
# unchanged backend syncing them, then EndpointSlice changes one at a time.
# Prints the driver's JSON (sync time, memory, p50/p99 propagation) and keeps
# it in bench/results/registry.json. Loopback only; no root needed.
#
# usage: bench/registry.sh DRIVER [SERVICES [ENDPOINTS_PER_SERVICE [CHANGES]]]
set -eu
driver=$1
shift
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "bench/registry.sh: needs python3" >&2; exit 1; }
command -v openssl >/dev/null || { echo "bench/registry.sh: needs openssl" >&2; exit 1; }
mkdir -p bench/results
"$driver" "$@" | tee bench/results/registry.json
