#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The agent loop's instructions per registry change (`make bench-publish-cpu`):
# the publishing rows' files (bench/churn.py's services(): SERVICES Services
# of ENDPOINTS endpoints after bench/services.yaml), loaded as the sync, one
# change (a tenth of the Services' slices moved) and the removal, and the
# loop's part of each (sink, model, catalogue builds) counted by callgrind:
# deterministic, so a before and an after compare on a busy machine.
# BENCH_CALLGRIND=0 runs the driver natively and prints its CPU times only.
#
# usage: bench/publish_cpu.sh DRIVER [SERVICES [ENDPOINTS]]
set -eu
driver=$(realpath "$1")
n=${2:-10000}
eps=${3:-10}
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 - "$dir" "$n" "$eps" <<'EOF'
import sys
sys.path.insert(0, "bench")
from churn import services
d, n, eps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = open("bench/services.yaml").read()
for name, text in (("sync", base + services(n, eps, 0)), ("change", base + services(n, eps, 1)),
                   ("remove", base)):
    with open(f"{d}/{name}.yaml", "w") as f:
        f.write(text)
EOF
files="$dir/sync.yaml $dir/change.yaml $dir/remove.yaml"
if [ "${BENCH_CALLGRIND:-1}" = 0 ]; then
	"$driver" $files
	exit 0
fi
command -v valgrind >/dev/null || { echo "bench/publish_cpu.sh: needs valgrind" >&2; exit 1; }
# One dump per call of drain_phase(), holding that call's instructions only.
valgrind --tool=callgrind --collect-atstart=no --toggle-collect=drain_phase \
	--dump-after=drain_phase --callgrind-out-file="$dir/cg.out" "$driver" $files \
	2>"$dir/valgrind.log" >"$dir/phases.json" || { cat "$dir/valgrind.log" >&2; exit 1; }
i=1
for phase in sync change remove; do
	ir=$(sed -n 's/^summary: //p' "$dir/cg.out.$i")
	sed -n "${i}p" "$dir/phases.json" | sed "s/}\$/,\"instructions\":$ir}/"
	if [ -n "${BENCH_KEEP:-}" ]; then
		mkdir -p "$BENCH_KEEP" && cp "$dir/cg.out.$i" "$BENCH_KEEP/callgrind.$phase"
	fi
	i=$((i + 1))
done
