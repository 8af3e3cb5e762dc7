#!/bin/sh
# Runs the reproducer in a fresh network namespace (loopback only), so the
# sockets, the SOCKHASH and the load never touch the host's network.
# Usage: sudo tools/sockmap-repro/run.sh [repro options]
set -e
cd "$(dirname "$0")"
exec unshare -n sh -c 'ip link set lo up && ./repro "$@"' repro "$@"
