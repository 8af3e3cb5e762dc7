#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turn bench/run.sh's raw outputs into the Markdown report and a JSON record.

usage: report.py RAW_DIR OUT.md OUT.json

RAW_DIR holds, per run, <round>.<workload>.<config>.out (the tool's output) and
.meta (exit status, CPU charged to the benchmark's cgroups, proxy CPU ticks and
memory), plus env.json, idle_rss.json and hold.<config>.json. Each figure is
the median over the rounds, with the minimum and maximum beside it, and its
ratio to direct and to HAProxy.
"""
import glob
import json
import os
import re
import statistics
import sys

NAMES = {
    "direct": "direct",
    "weft": "weft (eBPF)",
    "weft-nft": "weft (nft)",
    "haproxy": "HAProxy (nft REDIRECT)",
    "weft-in": "weft inbound (eBPF, sk_lookup)",
}
# The configurations with a proxy of their own for the memory test (weft-in
# goes through the eBPF agent, to a server's address, not the VIP).
HOLD = ("weft", "weft-nft", "haproxy")
WORKLOADS = {
    "keepalive": ("HTTP keep-alive, 50 connections", "req/s"),
    "close": ("new connection per request, 50 at once", "conn/s"),
    "bulk": ("bulk TCP, one stream", "Gbit/s"),
}


def parse_wrk(text):
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        return None
    out = {"rate": float(m.group(1))}
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else 0
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    out["errors"] = errors
    return out


def parse_iperf(text):
    try:
        j = json.loads(text)
        end = j["end"]
        return {
            "rate": end["sum_received"]["bits_per_second"] / 1e9,
            "bytes": end["sum_received"]["bytes"],
            "retransmits": end["sum_sent"].get("retransmits", 0),
            "errors": 0,
        }
    except (ValueError, KeyError):
        return None


def parse_latency(text):
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def load(raw, env):
    """runs[(workload, config)] = list of dicts, one per successful round."""
    runs, failed, other = {}, {}, []
    for path in sorted(glob.glob(os.path.join(raw, "*.out"))):
        name = os.path.basename(path)[:-4]
        parts = name.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        _, workload, config = parts
        with open(path) as f:
            text = f.read()
        with open(path[:-4] + ".meta") as f:
            meta = json.load(f)
        parsed = {
            "keepalive": parse_wrk,
            "close": parse_wrk,
            "bulk": parse_iperf,
            "latency": parse_latency,
        }[workload](text)
        key = (workload, config)
        other.append(meta.get("other_cores", 0.0))
        if meta["rc"] != 0 or parsed is None:
            failed[key] = failed.get(key, 0) + 1
            continue
        if "cg_usec" in meta:
            parsed["cg_cpu_s"] = meta["cg_usec"] / 1e6
        if "cpu_ticks" in meta:
            parsed["cpu_s"] = meta["cpu_ticks"] / env["clk_tck"]
            parsed["rss_kb"] = meta["rss_kb"]
            parsed["hwm_kb"] = meta["hwm_kb"]
        parsed["other_cores"] = meta.get("other_cores", 0.0)
        runs.setdefault(key, []).append(parsed)
    return runs, failed, other


def med(values):
    return statistics.median(values) if values else None


def spread(values, fmt):
    if not values:
        return "failed"
    return f"{fmt(med(values))} ({fmt(min(values))}–{fmt(max(values))})"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def num(x):
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def mib(kb):
    return f"{kb / 1024:.1f} MiB"


def cpu_per_unit(workload, runs, env, key="cpu_s"):
    """CPU per unit of work (µs per request, s per GB), median over rounds;
    None where a run has no such figure. key "cpu_s": the proxy's own CPU;
    "cg_cpu_s": all the CPU charged to the benchmark's cgroups (client,
    server, proxy, and the kernel's packet work done in their context)."""
    vals = []
    for r in runs:
        if key not in r:
            return None
        if workload in ("keepalive", "close") and r["requests"]:
            vals.append(r[key] * 1e6 / r["requests"])
        elif workload == "bulk" and r["bytes"]:
            vals.append(r[key] / (r["bytes"] / 1e9))
        elif workload == "latency":
            sent = r["n"] + r["rate"]  # + the 1 s warm-up, also proxied
            vals.append(r[key] * 1e6 / sent)
    return med(vals)


def load_profile(raw, config):
    """A BENCH_PROFILE=1 run's perf reports for one configuration: CPU in ns
    (samples × period), connections made, and the share (0–1) of each
    command (self) and of each kernel function with its callees; None
    without them."""
    paths = [os.path.join(raw, f"perf.{config}.{k}") for k in ("comm.txt", "sym.txt", "wrk")]
    if not all(os.path.exists(p) for p in paths):
        return None
    with open(paths[0]) as f:
        comm_text = f.read()
    with open(paths[1]) as f:
        sym_text = f.read()
    with open(paths[2]) as f:
        wrk = parse_wrk(f.read())
    m = re.search(r"Event count \(approx\.\): (\d+)", comm_text)
    if not m or not wrk or not wrk["requests"]:
        return None
    comm, sym = {}, {}
    for line in comm_text.splitlines():
        m2 = re.match(r"\s+([\d.]+)%\s+\d+\s+(.+?)\s*$", line)
        if m2:
            comm[m2.group(2)] = comm.get(m2.group(2), 0) + float(m2.group(1)) / 100
    for line in sym_text.splitlines():
        m2 = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[[k.]\]\s+(\S+)", line)
        if m2:
            sym[m2.group(2)] = max(sym.get(m2.group(2), 0), float(m2.group(1)) / 100)
    return {"ns": int(m.group(1)), "conns": wrk["requests"], "comm": comm, "sym": sym}


# What a profile's kernel functions (with their callees) stand for. Entry
# points only, none calling another, so their shares add up.
PROFILE_PARTS = (
    ("netfilter hooks", lambda n: n == "nf_hook_slow"),
    ("conntrack", lambda n: n in ("nf_conntrack_in", "nf_confirm", "ipv4_conntrack_defrag")),
    ("NAT", lambda n: re.fullmatch(r"nf_nat_ipv[46]_(local_fn|out|pre_routing|local_in|in)", n)),
    ("nft chains", lambda n: n == "nft_do_chain"),
    ("BPF (cgroup hooks, sk_lookup)",
     lambda n: n.startswith("__cgroup_bpf_run_filter_") or
     re.fullmatch(r"bpf_prog_[0-9a-f]+_\w*(lookup|inbound)\w*", n) is not None),
)
PROXY_COMM = {"weft": "weft-agent", "weft-nft": "weft-agent", "weft-in": "weft-agent",
              "haproxy": "haproxy"}


def profile_section(w, raw, configs):
    """Where the CPU of one connection-per-request run goes, per
    configuration (bench/run.sh BENCH_PROFILE=1)."""
    profs = {c: load_profile(raw, c) for c in configs}
    profs = {c: p for c, p in profs.items() if p}
    if not profs:
        return {}
    w("## Where the CPU goes: one connection per request, profiled")
    w("")
    w("One more connection-per-request run per configuration after the measured ones, under "
      "`perf record -a -G <benchmark cgroup>` (a sample every 250 µs of CPU of the "
      "benchmark's processes, the kernel's work on their stacks included), in µs of CPU per "
      "connection. The kernel rows include what the function calls; netfilter hooks "
      "(`nf_hook_slow`) contain conntrack, NAT and nft chains.")
    w("")
    show = [c for c in configs if c in profs]
    w("| µs per connection | " + " | ".join(NAMES[c] for c in show) + " |")
    w("| --- |" + " --- |" * len(show))
    out = {}
    for c in show:
        p = profs[c]
        per = p["ns"] / 1e3 / p["conns"]
        parts = {"all": per,
                 "client (wrk)": p["comm"].get("wrk", 0) * per,
                 "server": p["comm"].get("weft-bench-http", 0) * per,
                 "proxy process": (p["comm"].get(PROXY_COMM[c], 0) * per
                                   if c in PROXY_COMM else None)}
        for name, match in PROFILE_PARTS:
            parts[name] = sum(v for k, v in p["sym"].items() if match(k)) * per
        out[c] = parts
    for row in ["all", "client (wrk)", "server", "proxy process"] + [n for n, _ in PROFILE_PARTS]:
        w(f"| {row} | " + " | ".join("–" if out[c][row] is None else f"{out[c][row]:.1f}"
                                      for c in show) + " |")
    w("")
    return out


def capture_section(w, env, configs, summary, lat, raw, runs):
    """The ratios issue #11 asks for: outbound nft vs eBPF vs HAProxy, and
    inbound capture against the same client and server unmeshed."""
    pairs = [(a, b) for a, b in (("weft-nft", "weft"), ("weft-nft", "haproxy"),
                                 ("weft", "haproxy"), ("weft-in", "direct"))
             if a in configs and b in configs]
    if not pairs:
        return
    w("## Capture modes and inbound capture")
    w("")
    w("Ratios of medians from this run (higher is better for throughput, lower for "
      "latency). weft inbound is the direct client talking to a server whose pod is "
      "meshed: ÷ direct is the cost of inbound capture.")
    w("")
    w("| measure | " + " | ".join(f"{NAMES[a]} ÷ {NAMES[b]}" for a, b in pairs) + " |")
    w("| --- |" + " --- |" * len(pairs))
    for wl, (title, unit) in WORKLOADS.items():
        cells = [ratio(summary.get(wl, {}).get(a, {}).get("median"),
                       summary.get(wl, {}).get(b, {}).get("median")) for a, b in pairs]
        w(f"| {title} ({unit}) | " + " | ".join(cells) + " |")
    for k, title in (("p50", "latency p50"), ("p99", "latency p99")):
        cells = [ratio(lat.get(a, {}).get(k), lat.get(b, {}).get(k)) for a, b in pairs]
        w(f"| {title} | " + " | ".join(cells) + " |")
    w("")
    show = [c for c in ("direct", "weft", "weft-nft", "haproxy", "weft-in") if c in configs]
    w("All CPU charged to the benchmark per unit of work (client + server + proxy + the "
      "kernel's work in their context), and the part above direct's:")
    w("")
    w("| workload | " + " | ".join(NAMES[c] for c in show) + " |")
    w("| --- |" + " --- |" * len(show))
    for wl in ("keepalive", "close", "bulk", "latency"):
        unit = "s/GB" if wl == "bulk" else "µs/req"
        if wl == "latency":
            vals = {c: summary.get("latency", {}).get(c, {}).get("all_cpu_per_req_us") for c in show}
            title = "latency (one request in flight)"
        else:
            vals = {c: summary.get(wl, {}).get(c, {}).get("all_cpu_per_unit") for c in show}
            title = WORKLOADS[wl][0]
        d = vals.get("direct")
        cells = []
        for c in show:
            v = vals[c]
            if v is None:
                cells.append("–")
            elif c == "direct" or d is None:
                cells.append(f"{v:.2f} {unit}" if wl == "bulk" else f"{v:.1f} {unit}")
            else:
                cells.append((f"{v:.2f} ({v - d:+.2f})" if wl == "bulk" else
                              f"{v:.1f} ({v - d:+.1f})") + f" {unit}")
        w(f"| {title} | " + " | ".join(cells) + " |")
    w("")
    if "weft-in" in configs and env.get("inbound_count_end") is not None:
        inbound_check(w, env, raw, runs)


def counters_delta(raw):
    """The eBPF agent's status counters (flattened) at the end of the rounds
    minus at their start; {} without both snapshots."""
    def flat(o, p=""):
        out = {}
        if isinstance(o, dict):
            for k, v in o.items():
                out.update(flat(v, f"{p}.{k}" if p else k))
        elif isinstance(o, (int, float)) and not isinstance(o, bool):
            out[p] = o
        return out
    snaps = []
    for name in ("status.start.json", "status.end.json"):
        try:
            with open(os.path.join(raw, name)) as f:
                snaps.append(flat(json.load(f)))
        except (OSError, ValueError):
            return {}
    a, b = snaps
    return {k: v - a.get(k, 0) for k, v in b.items() if k != "uptime_s" and v != a.get(k, 0)}


def inbound_check(w, env, raw, runs):
    """Did every weft-in connection go through the agent? The clients made
    at least: one per request with Connection: close, 50 per keep-alive run,
    2 per iperf3 run (control and data), 1 per latency run."""
    counted = env["inbound_count_end"] - env["inbound_count_start"]
    made = (sum(r["requests"] for r in runs.get(("close", "weft-in"), [])) +
            50 * len(runs.get(("keepalive", "weft-in"), [])) +
            2 * len(runs.get(("bulk", "weft-in"), [])) +
            len(runs.get(("latency", "weft-in"), [])))
    w(f"Inbound: during the rounds the clients of weft inbound made at least {made:,} "
      f"connections to the meshed server; the eBPF agent counted {counted:,} for its pod "
      f"(`meshctl pod`, \"inbound\").")
    opens0, opens1 = env.get("pod_in_tcp_opens_start"), env.get("pod_in_tcp_opens_end")
    if opens0 and opens1:
        active, passive = opens1[0] - opens0[0], opens1[1] - opens0[1]
        w(f"The kernel of the server pod's netns (`/proc/net/snmp`, no agent involved) saw "
          f"{active:,} connections made from inside it (the agent's inbound side, to the "
          f"server) and {passive:,} accepted: {active:,} captured, "
          f"{max(passive - 2 * active, 0):,} accepted by the server without the agent.")
    if made and counted < 0.99 * made:
        w(f"**{made - counted:,} connections ({(made - counted) / made:.0%}) reached the server "
          f"without the agent: inbound capture let them through, and the weft inbound figures "
          f"are a mix of captured and uncaptured connections.**")
    delta = counters_delta(raw)
    keys = sorted(k for k in delta if "inbound" in k)
    if keys:
        w("The agent's inbound counters over the rounds (`meshctl status`): " +
          ", ".join(f"`{k}` +{delta[k]:,}" for k in keys) + ".")
    w("")


def main():
    raw, out_md, out_json = sys.argv[1:4]
    with open(os.path.join(raw, "env.json")) as f:
        env = json.load(f)
    with open(os.path.join(raw, "idle_rss.json")) as f:
        idle = json.load(f)
    hold = {}
    for c in HOLD:
        p = os.path.join(raw, f"hold.{c}.json")
        if os.path.exists(p):
            with open(p) as f:
                hold[c] = json.load(f)
    runs, failed, other = load(raw, env)
    env["other_cores_median"] = med(other)
    env["other_cores_max"] = max(other, default=None)
    configs = env["configs"]
    summary = {}
    L = []
    w = L.append

    w(f"# weft benchmark — {env['date']}")
    w("")
    w(f"weft `{env['weft_rev']}` (agent sha256 {env['weft_sha256']}…), HAProxy {env['haproxy']} "
      f"({env['haproxy_threads']} threads, `mode tcp`, maxconn {env['haproxy_maxconn']:,}), wrk {env['wrk']}, iperf3 {env['iperf3']}. "
      f"Kernel {env['kernel']}, {env['cores']} × {env['cpu']}. {env['rounds']} interleaved rounds "
      f"of {env['seconds']} s per run; medians with (min–max). Load average "
      f"{env['load_start']} at the start, {env['load_end']} at the end "
      f"(rounds took {env['elapsed_s']} s). Method: docs/benchmarks.md.")
    w("")
    if other:
        w(f"Other activity on the machine during the runs (busy CPU not charged to the "
          f"benchmark's cgroups): median {med(other):.2f} cores, max {max(other):.2f}.")
        if med(other) > 0.2:
            w("**The machine was busy with other work: these figures are skewed; rerun on a "
              "quiet machine before drawing conclusions.**")
        w("")

    # ---- throughput
    w("## Throughput")
    w("")
    w("*proxy CPU*: the proxy process (for weft inbound: the eBPF agent, whose inbound side "
      "the connections cross); *all CPU*: everything charged to the benchmark's cgroups "
      "(client, server, proxy, and the kernel's packet work done in their context: NAT, "
      "conntrack, the TCP stacks), per unit of work.")
    w("")
    w("| workload | configuration | median (min–max) | ÷ direct | ÷ HAProxy "
      "| proxy CPU s per run | proxy CPU per unit | all CPU per unit | proxy RSS after run |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for wl, (title, unit) in WORKLOADS.items():
        base = {c: med([r["rate"] for r in runs.get((wl, c), [])]) for c in configs}
        for c in configs:
            rs = runs.get((wl, c), [])
            rates = [r["rate"] for r in rs]
            errors = sum(r.get("errors", 0) for r in rs)
            cell = spread(rates, num) + f" {unit}"
            if errors:
                cell += f" ({errors} errors)"
            if failed.get((wl, c)):
                cell += f" ({failed[(wl, c)]} runs failed)"
            cpu = med([r["cpu_s"] for r in rs if "cpu_s" in r])
            per = cpu_per_unit(wl, rs, env)
            allc = cpu_per_unit(wl, rs, env, "cg_cpu_s")
            per_unit = "µs/req" if wl != "bulk" else "s/GB"
            rss = med([r["rss_kb"] for r in rs if "rss_kb" in r])
            w(f"| {title} | {NAMES[c]} | {cell} | {ratio(base[c], base.get('direct'))} "
              f"| {ratio(base[c], base.get('haproxy'))} "
              f"| {'–' if cpu is None else f'{cpu:.2f}'} "
              f"| {'–' if per is None else f'{per:.1f} {per_unit}'} "
              f"| {'–' if allc is None else f'{allc:.1f} {per_unit}'} "
              f"| {'–' if rss is None else mib(rss)} |")
            summary.setdefault(wl, {})[c] = {"median": base[c], "min": min(rates, default=None),
                                             "max": max(rates, default=None), "errors": errors,
                                             "cpu_s": cpu, "cpu_per_unit": per,
                                             "all_cpu_per_unit": allc, "rss_kb": rss}
    w("")

    # ---- latency
    w(f"## Latency at a fixed {env['rate']} req/s, one request in flight")
    w("")
    w("Per-request time from send to the last byte of the response, over one keep-alive "
      "connection; \"late\" counts requests sent more than one interval after their due time "
      "(summed over the rounds).")
    w("")
    w("| configuration | p50 µs | ÷ direct | ÷ HAProxy | p99 µs | ÷ direct | ÷ HAProxy "
      "| p99.9 µs | ÷ direct | ÷ HAProxy | p50 added vs direct | late | proxy CPU µs/req "
      "| all CPU µs/req |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    lat = {c: {k: med([r[k] for r in runs.get(("latency", c), [])]) for k in ("p50", "p99", "p999")}
           for c in configs}
    for c in configs:
        rs = runs.get(("latency", c), [])
        cells = []
        for k in ("p50", "p99", "p999"):
            vals = [r[k] for r in rs]
            cells.append(spread(vals, lambda x: f"{x:.0f}"))
            cells.append(ratio(lat[c][k], lat.get("direct", {}).get(k)))
            cells.append(ratio(lat[c][k], lat.get("haproxy", {}).get(k)))
        added = "–"
        if c != "direct" and lat[c]["p50"] is not None and lat.get("direct", {}).get("p50"):
            added = f"{lat[c]['p50'] - lat['direct']['p50']:+.1f} µs"
        per = cpu_per_unit("latency", rs, env)
        allc = cpu_per_unit("latency", rs, env, "cg_cpu_s")
        late = sum(r["late"] for r in rs)
        w(f"| {NAMES[c]} | " + " | ".join(cells) +
          f" | {added} | {late} | {'–' if per is None else f'{per:.1f}'} "
          f"| {'–' if allc is None else f'{allc:.1f}'} |")
        summary.setdefault("latency", {})[c] = dict(lat[c], late=late, cpu_per_req_us=per,
                                                    all_cpu_per_req_us=allc)
    w("")

    # ---- memory
    w("## Memory")
    w("")
    w(f"Idle: resident set right after start (an agent with its enrolled pods), before any "
      f"benchmark traffic. Per connection: {env['conns']:,} keep-alive connections opened through "
      f"the proxy, one request each, then held idle; (VmRSS with them − VmRSS before) ÷ "
      f"connections. Kernel socket memory is not in either figure.")
    if env["conns"] < env["conns_wanted"]:
        w("")
        w(f"The test used {env['conns']:,} connections, not {env['conns_wanted']:,}: this "
          f"machine's RLIMIT_NOFILE hard limit is {env['nofile']:,}, and a proxy needs two "
          f"descriptors per connection. Memory per connection does not depend on the count.")
    w("")
    w("| proxy | idle RSS | peak RSS in the rounds (VmHWM) | connections held | RSS held "
      "| per connection | ÷ HAProxy |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    per_conn = {}
    for c in HOLD:
        h = hold.get(c)
        if h and h["ok"]:
            per_conn[c] = (h["rss1_kb"] - h["rss0_kb"]) / h["ok"]
    for c in HOLD:
        if c not in idle:
            continue
        hwm = max((r["hwm_kb"] for (wl, cc), rs in runs.items() if cc == c
                   for r in rs if "hwm_kb" in r), default=None)
        h = hold.get(c, {})
        pc = per_conn.get(c)
        w(f"| {NAMES[c]} | {mib(idle[c])} | {'–' if hwm is None else mib(hwm)} "
          f"| {h.get('ok', 0):,} of {env['conns']:,} "
          f"| {mib(h['rss1_kb']) if h else '–'} "
          f"| {'–' if pc is None else f'{pc:.1f} KiB'} "
          f"| {ratio(pc, per_conn.get('haproxy'))} |")
    w(f"| ratio weft ÷ HAProxy | {ratio(idle['weft'], idle['haproxy'])} | | | | | |")
    if "weft-nft" in idle:
        w(f"| ratio weft (nft) ÷ HAProxy | {ratio(idle['weft-nft'], idle['haproxy'])} | | | | | |")
    for c in HOLD:
        closed = hold.get(c, {}).get("closed")
        if closed:
            w("")
            w(f"**{NAMES[c]} closed {closed:,} of the held connections before the end of the "
              f"test.**")
    summary["memory"] = {"idle_kb": idle, "per_conn_kib": per_conn, "hold": hold}
    w("")

    # ---- capture modes and inbound (issue #11)
    capture_section(w, env, configs, summary, lat, raw, runs)

    summary["profile"] = profile_section(w, raw, configs)

    # ---- targets
    def target_row(name, measured, ok):
        mark = "–" if ok is None else ("met" if ok else "**not met**")
        w(f"| {name} | {measured} | {mark} |")

    w("## Targets of issue #6 (weft)")
    w("")
    w("| target | measured | |")
    w("| --- | --- | --- |")
    s = summary

    def rel(wl, other):
        a = s.get(wl, {}).get("weft", {}).get("median")
        b = s.get(wl, {}).get(other, {}).get("median")
        return None if a is None or not b else a / b

    x = rel("bulk", "direct")
    target_row("bulk ≥ 0.8× direct", "–" if x is None else f"{x:.2f}×",
               None if x is None else x >= 0.8)
    x = rel("close", "direct")
    target_row("new connections/s ≥ 0.7× direct", "–" if x is None else f"{x:.2f}×",
               None if x is None else x >= 0.7)
    lw, ld = lat.get("weft", {}).get("p50"), lat.get("direct", {}).get("p50")
    x = None if lw is None or ld is None else lw - ld
    target_row("p50 added ≤ +20 µs", "–" if x is None else f"{x:+.1f} µs",
               None if x is None else x <= 20)
    x = rel("keepalive", "haproxy")
    target_row("keep-alive req/s ≥ HAProxy", "–" if x is None else f"{x:.2f}×",
               None if x is None else x >= 1)
    x = idle["weft"] / idle["haproxy"] if idle.get("haproxy") else None
    target_row("idle RSS ≤ HAProxy", "–" if x is None else
               f"{mib(idle['weft'])} vs {mib(idle['haproxy'])}", None if x is None else x <= 1)
    x = per_conn.get("weft")
    target_row(f"≤ 40 KiB per connection at {env['conns']:,}",
               "–" if x is None else f"{x:.1f} KiB", None if x is None else x <= 40)
    w("")

    with open(out_md, "w") as f:
        f.write("\n".join(L))
    with open(out_json, "w") as f:
        json.dump({"env": env, "summary": summary,
                   "runs": {f"{wl}.{c}": rs for (wl, c), rs in runs.items()},
                   "failed": {f"{wl}.{c}": n for (wl, c), n in failed.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
