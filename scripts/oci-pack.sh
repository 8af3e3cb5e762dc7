#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Pack a root filesystem folder as a one-layer OCI image layout in a tar:
# a reproducible layer tar (fixed order, owner and times), the image config,
# a manifest, an index, and docker's manifest.json so `docker load` takes it
# too. Nothing is downloaded. Used by scripts/build-image.sh (weft's image)
# and tests/containerd/busybox-image.sh (the containerd tier's test image).
#   oci-pack.sh ROOTFS IMAGE_REF CONFIG OUT.tar
# CONFIG is the image config's "config" object as JSON ({"Entrypoint":...}).
# Prints the manifest digest.
# `set -- $(blob ...)` splits "digest size" on purpose.
# shellcheck disable=SC2046
set -eu
root=$1 ref=$2 config=$3 out=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-oci.XXXXXX")
trap 'rm -rf "$work"' EXIT
layout=$work/layout
mkdir -p "$layout/blobs/sha256"

blob() { # file -> prints "digest size"
	d=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$layout/blobs/sha256/$d"
	echo "$d $(stat -c %s "$1")"
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$root" -cf "$work/layer.tar" .
set -- $(blob "$work/layer.tar")
layer_digest=$1 layer_size=$2
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
cat > "$work/config.json" <<JSON
{"architecture":"$arch","os":"linux","config":$config,"rootfs":{"type":"layers","diff_ids":["sha256:$layer_digest"]}}
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
echo "$manifest_digest"
