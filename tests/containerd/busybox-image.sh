#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# A tiny OCI image of Debian's busybox-static for the containerd tier: one
# layer holding /bin/busybox and the applet links the tests use, assembled
# by scripts/oci-pack.sh as weft's own image is (nothing downloaded).
# Loads with `ctr images import`.
#   busybox-image.sh IMAGE_REF OUT.tar
set -eu
ref=$1 out=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-bbimage.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/www"
# busybox-static: a static binary, so the layer needs no libraries.
cp /bin/busybox "$root/bin/busybox"
for a in sh cat echo ip sleep wget nc httpd ls true false timeout grep; do
	ln -s busybox "$root/bin/$a"
done
printf 'root:x:0:0:root:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

"$(dirname "$0")/../../scripts/oci-pack.sh" "$root" "$ref" '{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}' \
	"$out" >/dev/null
