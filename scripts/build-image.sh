#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Assemble weft's container image as an OCI image layout in a tar, from the
# built binaries and nothing downloaded: one layer (a reproducible tar of a
# root filesystem), its config, a manifest, an index. weft-cni and
# weft-cni-install are static; weft-agent and meshctl are bundled: the shared
# libraries ldd finds for them and the dynamic loader are copied from the
# build host at their own paths. No shell, no interpreter in the image.
#   build-image.sh BUILD_DIR IMAGE_REF OUT.tar
# The tar loads with `ctr images import OUT.tar` and `docker load -i OUT.tar`
# (it also carries docker's manifest.json).
set -eu
build=$1 ref=$2 out=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
layout=$work/layout
mkdir -p "$root/usr/local/bin" "$root/usr/local/libexec/cni" "$root/etc" "$root/tmp" \
	"$root/run" "$root/sys" "$root/proc" "$root/dev" "$layout/blobs/sha256"

install -m 0755 "$build/weft-agent" "$build/meshctl" "$build/weft-cni-install" \
	"$root/usr/local/bin/"
install -m 0755 "$build/weft-cni" "$root/usr/local/libexec/cni/weft-cni"
for bin in "$build/weft-agent" "$build/meshctl"; do
	# "libx.so => /lib/.../libx.so (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
	ldd "$bin" | awk '/=> \// { print $3 } /^\t\// { print $1 }'
done | sort -u | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
# A user database, so tools printing owners do not fail.
printf 'root:x:0:0:root:/:/usr/local/bin/weft-agent\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

# Reproducible layer: fixed order, owner and times.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$root" -cf "$work/layer.tar" .
blob() { # file media-type -> prints "digest size"
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	cp "$1" "$layout/blobs/sha256/$d"
	echo "$d $s"
}
set -- $(blob "$work/layer.tar")
layer_digest=$1 layer_size=$2
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
cat > "$work/config.json" <<JSON
{"architecture":"$arch","os":"linux","config":{"Entrypoint":["/usr/local/bin/weft-agent"],"Env":["PATH=/usr/local/bin"],"Labels":{"org.opencontainers.image.title":"weft","org.opencontainers.image.version":"${ref##*:}"}},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_digest"]},"history":[{"created_by":"scripts/build-image.sh"}]}
JSON
set -- $(blob "$work/config.json")
config_digest=$1 config_size=$2
cat > "$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer_digest","size":$layer_size}]}
JSON
set -- $(blob "$work/manifest.json")
manifest_digest=$1 manifest_size=$2
cat > "$layout/index.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_digest","size":$manifest_size,"platform":{"architecture":"$arch","os":"linux"},"annotations":{"io.containerd.image.name":"$ref","org.opencontainers.image.ref.name":"${ref##*:}"}}]}
JSON
printf '{"imageLayoutVersion":"1.0.0"}\n' > "$layout/oci-layout"
# docker load (before OCI layout support) reads this one.
cat > "$layout/manifest.json" <<JSON
[{"Config":"blobs/sha256/$config_digest","RepoTags":["$ref"],"Layers":["blobs/sha256/$layer_digest"]}]
JSON
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$layout" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "  IMAGE    $out ($ref, sha256:$manifest_digest)"
