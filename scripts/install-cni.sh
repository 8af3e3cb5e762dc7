#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Init container of the DaemonSet: install weft-cni into the node's CNI bin dir
# and chain it after the cluster's own plugins in the node's first conflist.
# Idempotent: a conflist that already names weft-cni is left as it is.
set -eu
BIN_DIR=${CNI_BIN_DIR:-/host/opt/cni/bin}
CONF_DIR=${CNI_CONF_DIR:-/host/etc/cni/net.d}
SOCKET=${WEFT_CNI_SOCKET:-/run/weft/cni.sock}

install -m 0755 /usr/local/libexec/cni/weft-cni "$BIN_DIR/weft-cni.new"
mv "$BIN_DIR/weft-cni.new" "$BIN_DIR/weft-cni"

conf=$(ls "$CONF_DIR"/*.conflist 2>/dev/null | head -n 1)
if [ -z "$conf" ]; then
	echo "install-cni: no *.conflist in $CONF_DIR: install the cluster's CNI first" >&2
	exit 1
fi
grep -q '"weft-cni"' "$conf" && exit 0
# Append our entry to the "plugins" array with a real JSON parser, and replace
# the file atomically so the kubelet never reads half a config.
python3 - "$conf" "$SOCKET" <<'PY'
import json, os, sys
path, sock = sys.argv[1], sys.argv[2]
with open(path) as f:
    conf = json.load(f)
conf["plugins"].append({"type": "weft-cni", "agent_socket": sock})
tmp = path + ".weft"
with open(tmp, "w") as f:
    json.dump(conf, f, indent=2)
os.rename(tmp, path)
PY
echo "install-cni: chained weft-cni into $conf"
