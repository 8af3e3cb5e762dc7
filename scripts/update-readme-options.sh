#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Refresh the README's copy of `weft-agent --help` (between the agent-help
# markers) from the built binary, so the docs come from the option table.
set -eu
B=${WEFT_BUILD:-build}
help=$(mktemp)
trap 'rm -f "$help"' EXIT
"$B/weft-agent" --help | sed 1,3d > "$help"
awk -v help="$help" '
	/<!-- agent-help:begin -->/ { print; print "```"; while ((getline l < help) > 0) print l; print "```"; skip = 1; next }
	/<!-- agent-help:end -->/ { skip = 0 }
	!skip { print }
' README.md > README.md.new
mv README.md.new README.md
