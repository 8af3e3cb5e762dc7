#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The image `make image` builds is a valid OCI image layout that runs.

Checks: every blob's sha256 and size match what refers to it, the index names
the image the manifests use, the config's diff_ids are the layers, the
entrypoint and every binary the manifests run exist in the layer and are
executable, weft-cni and weft-cni-install are static (no PT_INTERP and no
PT_DYNAMIC), no interpreter is in the image, and every dynamic binary finds
its loader and libraries inside the image.

  test_image.py IMAGE.tar REF       prints "N passed, M failed"
"""
import hashlib
import io
import json
import os
import struct
import sys
import tarfile

BINARIES = ["usr/local/bin/weft-agent", "usr/local/bin/meshctl", "usr/local/bin/weft-cni-install",
            "usr/local/libexec/cni/weft-cni"]
STATIC = ["usr/local/libexec/cni/weft-cni", "usr/local/bin/weft-cni-install"]
INTERPRETERS = ("sh", "bash", "dash", "python3", "perl", "busybox")


def elf_segments(data):
    """Program header types and the PT_INTERP string of an ELF64 little-endian file."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None, None
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types, interp = set(), None
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, = struct.unpack_from("<I", data, off)
        types.add(p_type)
        if p_type == 3:  # PT_INTERP
            p_offset, = struct.unpack_from("<Q", data, off + 8)
            p_filesz, = struct.unpack_from("<Q", data, off + 32)
            interp = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
    return types, interp


def needed(data):
    """DT_NEEDED names of an ELF64 file (through its section headers)."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for sec in secs:
        if sec[1] != 6:  # SHT_DYNAMIC
            continue
        strtab = secs[sec[6]]
        for off in range(sec[4], sec[4] + sec[5], 16):
            tag, val = struct.unpack_from("<qQ", data, off)
            if tag == 1:  # DT_NEEDED
                start = strtab[4] + val
                out.append(data[start:data.index(b"\0", start)].decode())
    return out


def main(tar_path, ref):
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        passed += bool(ok)
        failed += not ok
        print("%s  %s" % ("ok  " if ok else "FAIL", what))
        return ok

    outer = tarfile.open(tar_path)
    files = {m.name.lstrip("./"): m for m in outer.getmembers() if m.isfile()}

    def read(name):
        return outer.extractfile(files[name]).read()

    def blob(desc, what):
        digest = desc["digest"]
        name = "blobs/sha256/" + digest.split(":")[1]
        if not check(name in files, "%s blob %s present" % (what, digest[:19])):
            return None
        data = read(name)
        check("sha256:" + hashlib.sha256(data).hexdigest() == digest and
              len(data) == desc["size"], "%s blob digest and size match" % what)
        return data

    check(json.loads(read("oci-layout")).get("imageLayoutVersion") == "1.0.0", "oci-layout")
    index = json.loads(read("index.json"))
    check(len(index["manifests"]) == 1, "index holds one manifest")
    desc = index["manifests"][0]
    check(desc["annotations"].get("io.containerd.image.name") == ref and
          desc["annotations"].get("org.opencontainers.image.ref.name") == ref.split(":")[-1],
          "index names %s" % ref)
    manifest = json.loads(blob(desc, "manifest"))
    check(manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json",
          "manifest media type")
    config = json.loads(blob(manifest["config"], "config"))
    layers = [blob(layer, "layer") for layer in manifest["layers"]]
    check(config["rootfs"]["diff_ids"] ==
          ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers],
          "config's diff_ids are the (uncompressed) layers")
    docker = json.loads(read("manifest.json"))
    check(docker[0]["RepoTags"] == [ref] and
          docker[0]["Config"] == "blobs/sha256/" + manifest["config"]["digest"].split(":")[1],
          "docker load's manifest.json names the same config and tag")

    rootfs = {}
    with tarfile.open(fileobj=io.BytesIO(layers[0])) as layer:
        for m in layer.getmembers():
            rootfs[m.name.lstrip("./")] = (m, layer.extractfile(m).read() if m.isfile() else None)
    entry = config["config"]["Entrypoint"][0].lstrip("/")
    for path in sorted(set(BINARIES + [entry])):
        m = rootfs.get(path, (None, None))[0]
        check(m is not None and m.isfile() and m.mode & 0o111, "/%s exists, executable" % path)
    for path in STATIC:
        types, interp = elf_segments(rootfs[path][1])
        check(types is not None and 2 not in types and interp is None,
              "/%s is static (no PT_DYNAMIC, no PT_INTERP)" % path)
    names = {os.path.basename(p) for p in rootfs}
    check(not names & set(INTERPRETERS), "no shell or interpreter in the image")
    libs = {os.path.basename(p): p for p, (m, _) in rootfs.items() if ".so" in p}
    for path in BINARIES:
        data = rootfs[path][1]
        types, interp = elf_segments(data)
        if interp is None:
            continue
        missing = [n for n in needed(data) if n not in libs]
        check(interp.lstrip("/") in rootfs and not missing,
              "/%s finds its loader %s and libraries in the image%s"
              % (path, interp, " (missing: %s)" % missing if missing else ""))
    # weft-agent opens libcurl with dlopen() (agent/curl_lazy.c): no
    # DT_NEEDED names it, the image must bundle it and what it needs.
    curl = libs.get("libcurl.so.4")
    missing = [n for n in needed(rootfs[curl][1]) if n not in libs] if curl else ["libcurl.so.4"]
    check(not missing, "libcurl.so.4, which weft-agent loads when an HTTP client needs it, "
          "and its libraries are in the image%s" % (" (missing: %s)" % missing if missing else ""))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
