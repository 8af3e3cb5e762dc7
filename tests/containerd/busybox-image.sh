#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# A tiny OCI image of Debian's busybox-static for the containerd tier: one
# layer holding /bin/busybox and the applet links the tests use, assembled
# the way scripts/build-image.sh assembles weft's own image (nothing
# downloaded). Loads with `ctr images import`.
#   busybox-image.sh IMAGE_REF OUT.tar
# `set -- $(blob ...)` splits "digest size" on purpose.
# shellcheck disable=SC2046
set -eu
ref=$1 out=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-bbimage.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
layout=$work/layout
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/www" \
	"$layout/blobs/sha256"
# busybox-static: a static binary, so the layer needs no libraries.
cp /bin/busybox "$root/bin/busybox"
for a in sh cat echo ip sleep wget nc httpd ls true false timeout grep; do
	ln -s busybox "$root/bin/$a"
done
printf 'root:x:0:0:root:/:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$root" -cf "$work/layer.tar" .
blob() { # file -> prints "digest size"
	d=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$layout/blobs/sha256/$d"
	echo "$d $(stat -c %s "$1")"
}
set -- $(blob "$work/layer.tar")
layer_digest=$1 layer_size=$2
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
cat > "$work/config.json" <<JSON
{"architecture":"$arch","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_digest"]}}
JSON
set -- $(blob "$work/config.json")
config_digest=$1 config_size=$2
cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer_digest","size":$layer_size}]}
JSON
set -- $(blob "$work/manifest.json")
cat > "$layout/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$1","size":$2,"platform":{"architecture":"$arch","os":"linux"},"annotations":{"io.containerd.image.name":"$ref","org.opencontainers.image.ref.name":"${ref##*:}"}}]}
JSON
printf '{"imageLayoutVersion":"1.0.0"}\n' > "$layout/oci-layout"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$layout" -cf "$out" .
