#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Keep the module rule of docs/architecture.md true.

Every source file belongs to one module (by its path, table MODULES below);
each module may include headers only of the modules it is allowed to use
(table MAY_USE). Data flows one way, registry -> model -> catalogue ->
(datapath, proxy), and an include against that flow fails the build's tests.

With --objects DIR, also reads the symbols of the compiled objects under DIR
(nm) and fails on a call circle between two files of the agent: file A calls
a function defined in file B and B (directly or through others) calls back
into A. Include edges alone miss those when two files share one header.

--report prints the figures (files, lines, include edges against the rule,
call circles) instead of failing, for comparing two trees.
"""
import argparse
import os
import re
import subprocess
import sys

# Module of a file: the first pattern that matches its path wins.
MODULES = [
    (r"^lib/", "lib"),
    (r"^bpf/", "bpf"),
    (r"^agent/(loop|netns|cgroup|srv|curl_lazy)\.[ch]$", "runtime"),
    (r"^agent/model/", "model"),
    (r"^agent/registry/", "registry"),
    (r"^agent/datapath/", "datapath"),
    (r"^agent/identity/", "identity"),
    (r"^agent/proxy/", "proxy"),
    (r"^agent/dns/", "dns"),
    (r"^agent/(pods|pods_state|pod_spec)\.[ch]$", "pods"),
    (r"^agent/selfreg\.[ch]$", "selfreg"),
    (r"^agent/cni_server\.[ch]$", "cni_server"),
    (r"^(agent/cni_install\.[ch]|cni-install/)", "cni_install"),
    (r"^agent/config\.[ch]$", "config"),
    (r"^agent/admin/", "admin"),
    (r"^agent/ca_client\.[ch]$", "ca_client"),
    (r"^agent/ca/", "ca_server"),
    (r"^agent/(main\.c|agent\.h|publish\.[ch]|repair\.c|heartbeat\.c|handover\.[ch]|identities\.c)$", "wiring"),
    (r"^cni/", "cni"),
    (r"^meshctl/", "meshctl"),
]

# Who may include whom. A module may always include its own headers.
MAY_USE = {
    "lib": set(),
    "bpf": set(),
    "runtime": {"lib"},
    "model": {"lib"},
    "registry": {"lib", "runtime", "model"},
    "datapath": {"lib", "runtime", "model", "bpf"},
    # Workload certificates and the trust bundle: OpenSSL and strings only.
    "identity": {"lib"},
    "proxy": {"lib", "runtime", "model", "identity"},
    "dns": {"lib", "runtime", "model"},
    "pods": {"lib", "runtime", "model", "datapath", "proxy"},
    "selfreg": {"lib", "model", "pods", "registry"},
    "cni_server": {"lib", "runtime", "model", "pods"},
    # The option table names the bounds of what it configures.
    "config": {"lib", "model", "proxy", "dns"},
    # The agent's client of weft-ca: HTTP on the loop, no certificates.
    "ca_client": {"lib", "runtime"},
    # weft-ca (weft-agent --mode-ca): signs with identity, asks the API
    # server through the registry's Kubernetes connection code.
    "ca_server": {"lib", "runtime", "identity", "registry"},
    # The CNI config installer touches only files; the agent's wiring may run it.
    "cni_install": {"lib"},
    # The admin API is the read-back interface: it may look at everything
    # (through the agent's wiring, struct agent), and nothing includes it but main.
    "admin": {"lib", "bpf", "runtime", "model", "registry", "datapath", "identity", "proxy", "dns", "pods",
              "selfreg", "cni_server", "config", "wiring", "ca_client"},
    "wiring": {"lib", "runtime", "model", "registry", "datapath", "identity", "proxy", "dns", "pods",
               "selfreg", "cni_server", "config", "admin", "cni_install", "ca_client", "ca_server"},
    "cni": {"lib"},
    "meshctl": {"lib", "bpf"},
}

SOURCE_DIRS = ("lib", "agent", "cni", "cni-install", "meshctl")
# Where "#include \"x.h\"" is looked up, in the Makefile's -I order.
INCLUDE_DIRS = ["lib", "bpf", "agent", "cni", "meshctl"]
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(path):
    for pattern, module in MODULES:
        if re.search(pattern, path):
            return module
    return None


def sources(root):
    out = []
    for top in SOURCE_DIRS:
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def resolve(root, src, name):
    """The repository path of header @name as included by @src, or None (system/generated)."""
    for d in [os.path.dirname(src)] + INCLUDE_DIRS:
        cand = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def include_edges(root, files):
    edges = []
    for src in files:
        with open(os.path.join(root, src), encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                target = resolve(root, src, m.group(1))
                if target:
                    edges.append((src, lineno, target))
    return edges


def violations(edges):
    bad = []
    for src, lineno, target in edges:
        a, b = module_of(src), module_of(target)
        if a is None or b is None or a == b:
            continue
        if b not in MAY_USE.get(a, set()):
            bad.append(f"{src}:{lineno}: {a} may not include {target} ({b})")
    return bad


def call_circles(objdir):
    """Strongly connected sets of object files linked by calls, size > 1."""
    defined, undefined = {}, {}
    for d, _, files in os.walk(objdir):
        for f in files:
            if not f.endswith(".o"):
                continue
            path = os.path.join(d, f)
            unit = os.path.relpath(path, objdir)[:-2]
            if not unit.startswith("agent/") or unit == "agent/main":
                continue
            out = subprocess.run(["nm", path], capture_output=True, text=True,
                                 check=True).stdout
            undefined[unit] = set()
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "U":
                    undefined[unit].add(parts[1])
                elif len(parts) == 3 and parts[1] in "TDBR":
                    defined[parts[2]] = unit
    graph = {u: {defined[s] for s in syms if s in defined and defined[s] != u}
             for u, syms in undefined.items()}
    # Tarjan's algorithm, iteratively: the graph is small but recursion is not needed.
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def strongconnect(v):
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    scc.append(w)
                    if w == node:
                        break
                if len(scc) > 1:
                    sccs.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return sorted(sccs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".", help="the repository (default: .)")
    ap.add_argument("--objects", help="a build's object folder (build/obj) to check call circles")
    ap.add_argument("--report", action="store_true", help="print figures, never fail")
    args = ap.parse_args()

    files = sources(args.root)
    edges = include_edges(args.root, files)
    unknown = [f for f in files if module_of(f) is None]
    bad = violations(edges)
    circles = call_circles(args.objects) if args.objects else []

    if args.report:
        lines = 0
        for f in files:
            with open(os.path.join(args.root, f), encoding="utf-8") as fh:
                lines += sum(1 for _ in fh)
        print(f"files {len(files)}, lines {lines}, include edges {len(edges)}, "
              f"against the rule {len(bad)}, call circles {len(circles)}")
        for line in bad:
            print("  " + line)
        for scc in circles:
            print("  circle: " + " <-> ".join(scc))
        return 0

    for f in unknown:
        print(f"check-layers: {f}: no module claims this file; add it to MODULES",
              file=sys.stderr)
    for line in bad:
        print(f"check-layers: {line}", file=sys.stderr)
    for scc in circles:
        print("check-layers: call circle: " + " <-> ".join(scc), file=sys.stderr)
    if unknown or bad or circles:
        print("check-layers: see docs/architecture.md, 'Who may include whom'", file=sys.stderr)
        return 1
    print(f"check-layers: {len(files)} files, {len(edges)} include edges, "
          "every one along the flow" + (", no call circle" if args.objects else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
