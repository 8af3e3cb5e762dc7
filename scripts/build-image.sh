#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Assemble weft's container image as an OCI image layout in a tar, from the
# built binaries and nothing downloaded: one layer (a reproducible tar of a
# root filesystem), its config, a manifest, an index (scripts/oci-pack.sh). weft-cni and
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
mkdir -p "$root/usr/local/bin" "$root/usr/local/libexec/cni" "$root/etc" "$root/tmp" \
	"$root/run" "$root/sys" "$root/proc" "$root/dev"

install -m 0755 "$build/weft-agent" "$build/meshctl" "$build/weft-cni-install" \
	"$root/usr/local/bin/"
install -m 0755 "$build/weft-cni" "$root/usr/local/libexec/cni/weft-cni"
# weft-agent opens libcurl with dlopen() when an HTTP client first needs it
# (agent/curl_lazy.c), so ldd does not list it: it and what it needs are
# bundled by name, from the folder of the agent's own libc (Debian's
# multiarch folder of the build's architecture).
libc=$(ldd "$build/weft-agent" | awk '$1 ~ /^libc\.so/ { print $3 }')
curl=$(dirname "$libc")/libcurl.so.4
[ -f "$curl" ] || { echo "build-image: $curl not found (Debian's libcurl4)" >&2; exit 1; }
{
	for bin in "$build/weft-agent" "$build/meshctl" "$curl"; do
		# "libx.so => /lib/.../libx.so (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
		ldd "$bin" | awk '/=> \// { print $3 } /^\t\// { print $1 }'
	done
	echo "$curl"
} | sort -u | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
# A user database, so tools printing owners do not fail.
printf 'root:x:0:0:root:/:/usr/local/bin/weft-agent\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"

digest=$("$(dirname "$0")/oci-pack.sh" "$root" "$ref" \
	'{"Entrypoint":["/usr/local/bin/weft-agent"],"Env":["PATH=/usr/local/bin"],"Labels":{"org.opencontainers.image.title":"weft","org.opencontainers.image.version":"'"${ref##*:}"'"}}' \
	"$out")
echo "  IMAGE    $out ($ref, sha256:$digest)"
