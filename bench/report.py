#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Turn bench/run.sh's raw outputs into the Markdown report and a JSON record.

usage: report.py RAW_DIR OUT.md OUT.json

RAW_DIR holds, per run, <round>.<workload>.<config>.out (the tool's output) and
.meta (exit status, CPU charged to the benchmark's cgroups and to the proxy's
own cgroup, proxy memory), plus env.json, idle_rss.json and hold.<config>.json.
Each figure is the median over the rounds, with the minimum and maximum beside
it, and its ratio to direct and to HAProxy; the targets of issue #14 are same-run
ratios, with the range of the per-round ratios beside them.
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
    "weft-tcp": "weft (eBPF, protocol tcp)",
    "weft-nft": "weft (nft)",
    "haproxy": "HAProxy L4 (nft REDIRECT)",
    "haproxy-http": "HAProxy HTTP (nft REDIRECT, http-reuse always)",
    "weft-in": "weft inbound (eBPF, sk_lookup)",
    "weft-mesh": "weft, meshed pair, plaintext",
    "weft-mtls": "weft, meshed pair, mTLS",
}
# The configurations with a proxy of their own for the memory test (weft-in
# goes through the eBPF agent, to a server's address, not the VIP).
HOLD = ("weft", "weft-tcp", "weft-nft", "haproxy", "haproxy-http", "weft-mesh", "weft-mtls")
WORKLOADS = {
    "keepalive": ("HTTP keep-alive, 50 connections", "req/s"),
    "close": ("new connection per request, 50 at once", "conn/s"),
    "bulk": ("bulk TCP, one stream", "Gbit/s"),
    "handshake": ("new connection per request, opaque TCP service (meshed pairs)", "conn/s"),
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
    # wrk --latency: the latency distribution under this load, in µs
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+" + pct + r"%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m:
            out[key] = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
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


def parse_sockperf(text):
    """sockperf ping-pong --full-rtt: round-trip percentiles in µs over the
    measured part, and the messages of the whole run (its warm-up included,
    for CPU per message)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    out = {}
    m = re.search(r"\[Total Run\].*ReceivedMessages=(\d+)", text)
    if not m:
        return None
    out["messages"] = int(m.group(1))
    m = re.search(r"\[Valid Duration\].*ReceivedMessages=(\d+)", text)
    out["n"] = int(m.group(1)) if m else 0
    for pct, key in (("50.000", "p50"), ("99.000", "p99"), ("99.900", "p999")):
        m = re.search(r"percentile " + re.escape(pct) + r" =\s+([\d.]+)", text)
        if not m:
            return None
        out[key] = float(m.group(1))
    return out


def load(raw, env):
    """runs[(workload, config)] = list of dicts, one per successful round."""
    runs, failed, other = {}, {}, []
    for path in sorted(glob.glob(os.path.join(raw, "*.out"))):
        name = os.path.basename(path)[:-4]
        parts = name.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        rnd, workload, config = parts
        with open(path) as f:
            text = f.read()
        with open(path[:-4] + ".meta") as f:
            meta = json.load(f)
        parsed = {
            "keepalive": parse_wrk,
            "close": parse_wrk,
            "bulk": parse_iperf,
            "latency": parse_latency,
            "pingpong": parse_sockperf,
            "handshake": parse_wrk,
        }[workload](text)
        key = (workload, config)
        other.append(meta.get("other_cores", 0.0))
        if meta["rc"] != 0 or parsed is None:
            failed[key] = failed.get(key, 0) + 1
            continue
        parsed["round"] = int(rnd)
        if "cg_usec" in meta:
            parsed["cg_cpu_s"] = meta["cg_usec"] / 1e6
        if "proxy_usec" in meta:  # the proxy's own cgroup
            parsed["cpu_s"] = meta["proxy_usec"] / 1e6
        elif "cpu_ticks" in meta:  # runs before the proxies had a cgroup each
            parsed["cpu_s"] = meta["cpu_ticks"] / env["clk_tck"]
        if "rss_kb" in meta:
            parsed["rss_kb"] = meta["rss_kb"]
            parsed["hwm_kb"] = meta["hwm_kb"]
        parsed["other_cores"] = meta.get("other_cores", 0.0)
        for k in ("mtls_out", "mtls_in"):  # weft-mtls: the agent's handshakes in the run
            if k in meta:
                parsed[k] = meta[k]
        runs.setdefault(key, []).append(parsed)
    return runs, failed, other


# The DNS rows (issue #15): which client asks which names, in the report's
# order (a path's two capture modes side by side). bench/run.sh's env.json
# names the rows a run made (dns_rows); a run from before the nft rows made
# the eBPF ones and direct.
DNS_ROWS = {
    "agent": "meshed pod, eBPF, names the agent answers",
    "nft-agent": "meshed pod, nft, names the agent answers",
    "forwarded": "meshed pod, eBPF, external names forwarded by the agent",
    "nft-forwarded": "meshed pod, nft, external names forwarded by the agent",
    "direct": "direct client to dnsmasq, the same external names",
}
DNS_ROWS_BEFORE_NFT = ("agent", "forwarded", "direct")
# nft mode's rows and the eBPF rows they compare with, per path.
DNS_MODE_PAIRS = (("answered", "agent", "nft-agent"), ("forwarded", "forwarded", "nft-forwarded"))


def parse_dnsperf(text):
    """dnsperf's summary, and with -v every answer's latency (µs)."""
    qps = re.search(r"Queries per second:\s+([\d.]+)", text)
    done = re.search(r"Queries completed:\s+(\d+)", text)
    lost = re.search(r"Queries lost:\s+(\d+)", text)
    if not qps or not done:
        return None
    lat = sorted(float(m) * 1e6 for m in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", text, re.M))
    r = {"qps": float(qps.group(1)), "completed": int(done.group(1)),
         "lost": int(lost.group(1)) if lost else 0}
    if lat:
        r["p50"] = lat[len(lat) // 2]
        r["p99"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return r


def load_dns(raw):
    """dns[(workload, row)] = list of dicts, one per successful round;
    dns.<round>.<workload>.<row>.out and .meta, from bench/run.sh's run_dns."""
    runs, failed, other = {}, {}, []
    for path in sorted(glob.glob(os.path.join(raw, "dns.*.out"))):
        parts = os.path.basename(path)[:-4].split(".")
        if len(parts) != 4 or not parts[1].isdigit():
            continue
        _, rnd, workload, row = parts
        with open(path) as f:
            parsed = parse_dnsperf(f.read())
        with open(path[:-4] + ".meta") as f:
            meta = json.load(f)
        other.append(meta.get("other_cores", 0.0))
        if meta["rc"] != 0 or parsed is None:
            failed[(workload, row)] = failed.get((workload, row), 0) + 1
            continue
        parsed.update(round=int(rnd), agent_s=meta["agent_usec"] / 1e6,
                      cg_cpu_s=meta["cg_usec"] / 1e6, answered=meta["answered"],
                      forwarded=meta["forwarded"], other_cores=meta.get("other_cores", 0.0))
        runs.setdefault((workload, row), []).append(parsed)
    return runs, failed, other


def dns_section(w, env, dns, failed, raw):
    """The DNS rows: queries/s, latency, the agent's CPU per query, the two
    capture modes compared, and where the agent's time goes when profiled."""
    rows = [r for r in DNS_ROWS if r in env.get("dns_rows", DNS_ROWS_BEFORE_NFT)]
    pods = []
    if "agent" in rows or "forwarded" in rows:
        pods.append("the eBPF agent's client pod, its queries steered by the cgroup programs")
    if "nft-agent" in rows or "nft-forwarded" in rows:
        pods.append("the nft-mode agent's client pod, its queries redirected by the pod's "
                    "`inet weft` table")
    w("## DNS (issue #15)")
    w("")
    w(f"dnsperf {env.get('dnsperf', '')} against dnsmasq {env.get('dnsmasq', '')} (its "
      "configuration's answers, no upstream), from the meshed pod "
      + ("of each capture mode " if len(pods) > 1 else "") + "(" + "; ".join(pods)
      + ") and from the direct client. *queries/s*: "
      f"{env.get('dns_clients')} queries outstanding, a closed loop; *latency*: each answer at "
      f"a fixed {env.get('dns_rate')} queries/s. *agent CPU per query*: the row's agent's "
      "cgroup over the queries completed in the queries/s runs; *all CPU per query*: every "
      "benchmark cgroup (dnsperf, dnsmasq, the agents). *agent answered / forwarded*: the "
      "row's agent's counters over the queries/s runs (medians; for direct, every meshed "
      "agent's), to show which path each row took.")
    w("")
    w("| row | queries/s | ÷ direct | p50 µs | p99 µs | p50 added vs direct | "
      "agent CPU per query | all CPU per query | agent answered / forwarded | lost |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    summary = {}

    def count(rs, key):
        return f"{med([r[key] for r in rs]):,.0f}" if rs else "–"

    def per_query(rs, key):
        v = [r[key] * 1e6 / r["completed"] for r in rs if r["completed"]]
        return med(v)
    base = med([r["qps"] for r in dns.get(("dnsqps", "direct"), [])])
    base_p50 = med([r["p50"] for r in dns.get(("dnslat", "direct"), []) if "p50" in r])
    for row in rows:
        title = DNS_ROWS[row]
        q = dns.get(("dnsqps", row), [])
        lat = [r for r in dns.get(("dnslat", row), []) if "p50" in r]
        qps = [r["qps"] for r in q]
        cell = spread(qps, num)
        for wl in ("dnsqps", "dnslat"):
            if failed.get((wl, row)):
                cell += f" ({failed[(wl, row)]} {wl} runs failed)"
        p50 = med([r["p50"] for r in lat])
        p99 = med([r["p99"] for r in lat])
        agent = per_query(q, "agent_s") if row != "direct" else None
        allc = per_query(q, "cg_cpu_s")
        lost = sum(r["lost"] for r in q + lat)
        added = None if p50 is None or base_p50 is None else p50 - base_p50
        w(f"| {title} | {cell} | {ratio(med(qps), base)} "
          f"| {spread([r['p50'] for r in lat], lambda x: f'{x:,.0f}') if lat else '–'} "
          f"| {spread([r['p99'] for r in lat], lambda x: f'{x:,.0f}') if lat else '–'} "
          f"| {'–' if added is None or row == 'direct' else f'{added:+,.0f} µs'} "
          f"| {'–' if agent is None else f'{agent:.1f} µs'} "
          f"| {'–' if allc is None else f'{allc:.1f} µs'} "
          f"| {count(q, 'answered')} / {count(q, 'forwarded')} | {lost} |")
        summary[row] = {"qps": med(qps), "min": min(qps, default=None), "max": max(qps, default=None),
                        "p50_us": p50, "p99_us": p99, "p50_added_us": added,
                        "agent_cpu_us_per_query": agent, "all_cpu_us_per_query": allc,
                        "lost": lost}
    w("")
    modes = dns_modes(w, dns, summary)
    if modes:
        summary["nft_vs_ebpf"] = modes
    prof = dns_profile_section(w, raw, rows)
    if prof:
        summary["profile"] = prof
    return summary


def dns_modes(w, dns, summary):
    """One line: nft mode against eBPF mode, per path (answered, forwarded),
    from the medians and from each round's pair of queries/s runs (the rows
    of one round ran minutes apart at most, so their ratio drifts less)."""
    parts, out = [], {}
    for path, ebpf, nft in DNS_MODE_PAIRS:
        a, b = summary.get(ebpf), summary.get(nft)
        if not a or not b or a["qps"] is None or b["qps"] is None:
            continue
        by_round = {r["round"]: r["qps"] for r in dns.get(("dnsqps", ebpf), [])}
        rounds = [r["qps"] / by_round[r["round"]] for r in dns.get(("dnsqps", nft), [])
                  if by_round.get(r["round"])]
        text = f"{path}: queries/s {ratio(b['qps'], a['qps'])}"
        if rounds:
            text += f" (per round {min(rounds):.2f}–{max(rounds):.2f}×)"
        if a["p50_us"] is not None and b["p50_us"] is not None:
            text += f", p50 {b['p50_us'] - a['p50_us']:+,.0f} µs"
        if a["agent_cpu_us_per_query"] is not None and b["agent_cpu_us_per_query"] is not None:
            text += (f", agent CPU per query {b['agent_cpu_us_per_query']:.1f} µs against "
                     f"{a['agent_cpu_us_per_query']:.1f} µs")
        parts.append(text)
        out[path] = {"qps_ratio": b["qps"] / a["qps"] if a["qps"] else None,
                     "qps_ratio_rounds": rounds,
                     "p50_diff_us": (None if a["p50_us"] is None or b["p50_us"] is None
                                     else b["p50_us"] - a["p50_us"]),
                     "agent_cpu_us_per_query": [a["agent_cpu_us_per_query"],
                                                b["agent_cpu_us_per_query"]]}
    if parts:
        w("**nft mode against eBPF mode** (nft ÷ eBPF, medians): " + "; ".join(parts) + ".")
        w("")
    return out


# What a DNS profile's kernel functions (with their callees) stand for: the
# system calls the agent's DNS work makes, by entry point (none calls
# another, so their shares add up), and the conntrack lookup inside nft
# mode's netlink request.
DNS_PROFILE_PARTS = (
    ("recvmmsg (queries, answers)", ("__x64_sys_recvmmsg",)),
    ("sendmmsg (answers, forwarded queries)", ("__x64_sys_sendmmsg",)),
    ("epoll_wait", ("__x64_sys_epoll_wait", "__x64_sys_epoll_pwait")),
    ("sendto (nft: the ctnetlink request)", ("__x64_sys_sendto",)),
    ("recvfrom (nft: the ctnetlink answer and ack)", ("__x64_sys_recvfrom",)),
    ("– of sendto: the conntrack lookup (ctnetlink_get_conntrack)", ("ctnetlink_get_conntrack",)),
    ("– of all: netfilter hooks (nf_hook_slow: conntrack, NAT, nft chains)", ("nf_hook_slow",)),
    ("other system calls", ()),  # filled in below
    ("user space: the agent, libc, libldns (self)", ()),  # filled in below
)


DNS_SYSCALL_KINDS = ("all", "recvmmsg", "sendmmsg", "epoll_wait", "sendto", "recvfrom", "recvmsg",
                     "sendmsg")


def load_dns_profile(raw, row):
    """BENCH_PROFILE=1's perf reports of a DNS row's agent: CPU in ns
    (samples × period), queries completed, the share (0–1) of each kernel
    function with its callees and of each function by self time (user
    space marked), and its system calls by kind (perf stat, when counted);
    None without them."""
    base = os.path.join(raw, f"perf.dns-{row}")
    paths = [base + k for k in (".self.txt", ".sym.txt", ".dnsperf")]
    if not all(os.path.exists(p) for p in paths):
        return None
    texts = []
    for p in paths:
        with open(p) as f:
            texts.append(f.read())
    m = re.search(r"Event count \(approx\.\): (\d+)", texts[0])
    run = parse_dnsperf(texts[2])
    if not m or not run or not run["completed"]:
        return None
    self_, children = {}, {}
    for line in texts[0].splitlines():
        m2 = re.match(r"\s+([\d.]+)%\s+\[([k.])\]\s+(\S+)", line)
        if m2:
            self_[(m2.group(3), m2.group(2) == ".")] = float(m2.group(1)) / 100
    for line in texts[1].splitlines():
        m2 = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[[k.]\]\s+(\S+)", line)
        if m2:
            children[m2.group(2)] = max(children.get(m2.group(2), 0), float(m2.group(1)) / 100)
    syscalls = {}
    try:
        with open(base + ".syscalls") as f:
            for line in f:
                cells = line.strip().split(",")
                if len(cells) > 2 and cells[0].isdigit():
                    syscalls[cells[2].split(":sys_enter_")[-1].replace("raw_syscalls:sys_enter",
                                                                        "all")] = int(cells[0])
    except OSError:
        pass
    return {"ns": int(m.group(1)), "queries": run["completed"], "self": self_,
            "children": children, "syscalls": syscalls}


def dns_profile_section(w, raw, rows):
    """Where a meshed row's agent spends its CPU per query (BENCH_PROFILE=1)."""
    profs = {r: load_dns_profile(raw, r) for r in rows if r != "direct"}
    profs = {r: p for r, p in profs.items() if p}
    if not profs:
        return {}
    show = list(profs)
    w("### Where the agent's CPU goes, per query")
    w("")
    w("One more queries/s run per meshed row after the measured ones, under `perf record -a -g "
      "-G <the row's agent cgroup>` (a sample every 250 µs of the agent's CPU, the kernel's "
      "work on its stacks included), in µs of the agent's CPU per query completed. System "
      "calls are counted with everything they call; the agent's own functions by self time.")
    w("")
    w("| µs per query | " + " | ".join(DNS_ROWS[r] for r in show) + " |")
    w("| --- |" + " --- |" * len(show))
    out = {}
    for r in show:
        p = profs[r]
        per = p["ns"] / 1e3 / p["queries"]
        parts = {"all": per}
        syscalls = p["children"].get("do_syscall_64", 0)
        named = 0.0
        for name, syms in DNS_PROFILE_PARTS:
            if syms:
                share = max((p["children"].get(s, 0) for s in syms), default=0)
                parts[name] = share * per
                if not name.startswith("–"):
                    named += share
        parts["other system calls"] = max(syscalls - named, 0) * per
        parts["user space: the agent, libc, libldns (self)"] = sum(
            v for (_, user), v in p["self"].items() if user) * per
        out[r] = parts
    for name in ["all"] + [n for n, _ in DNS_PROFILE_PARTS]:
        w(f"| {name} | " + " | ".join(f"{out[r][name]:.1f}" for r in show) + " |")
    w("")
    if any(profs[r]["syscalls"] for r in show):
        w("The agent's system calls in the same runs (`perf stat -e 'syscalls:sys_enter_*' -G "
          "<its cgroup>`), per query completed:")
        w("")
        w("| system calls per query | " + " | ".join(DNS_ROWS[r] for r in show) + " |")
        w("| --- |" + " --- |" * len(show))
        for name in DNS_SYSCALL_KINDS:
            w(f"| {name} | " + " | ".join(
                f"{profs[r]['syscalls'][name] / profs[r]['queries']:.2f}"
                if name in profs[r]["syscalls"] else "–" for r in show) + " |")
        w("")
        for r in show:
            out[r]["syscalls_per_query"] = {k: v / profs[r]["queries"]
                                            for k, v in profs[r]["syscalls"].items()}
    for r in show:
        p = profs[r]
        per = p["ns"] / 1e3 / p["queries"]
        top = sorted(p["self"].items(), key=lambda kv: -kv[1])[:8]
        w(f"Heaviest functions by self time, {DNS_ROWS[r]}: " + ", ".join(
            f"`{name}`{' (agent)' if user else ''} {v * per:.1f}" for (name, user), v in top)
          + " µs per query.")
        w("")
        out[r]["top_self"] = [[name, v * per] for (name, _), v in top]
    return out


def load_publish(raw):
    """publish[phase] = list of per-round dicts (the latency client's JSON,
    the churn events, the agent's catalogue_binds after the run), from
    bench/run.sh's run_publish."""
    out = {}
    for path in sorted(glob.glob(os.path.join(raw, "publish.*.out"))):
        _, r, phase, _ = os.path.basename(path).split(".")
        with open(path) as f:
            lat = parse_latency(f.read())
        if not lat:
            continue
        rec = {"round": int(r), "lat": lat, "events": [], "binds": None, "slow": None}
        try:  # requests over 1 ms, one line each (bench/latency.c, BENCH_SLOW_LOG)
            with open(path[:-4] + ".slow") as f:
                rec["slow"] = sum(1 for line in f if line.strip())
        except OSError:
            pass
        churn = path[:-4] + ".churn"
        if os.path.exists(churn):
            with open(churn) as f:
                rec["events"] = [json.loads(line) for line in f if line.startswith("{")]
        try:
            with open(path[:-4] + ".status.json") as f:
                rec["binds"] = json.load(f).get("catalogue_binds")
        except (OSError, ValueError):
            pass
        out.setdefault(phase, []).append(rec)
    return out


def publish_section(w, env, pub):
    """Requests through the proxy while the catalogue changes, against the
    same requests quiet (issue #15)."""
    w("## Publishing under load (issue #15)")
    w("")
    w(f"One request in flight at a fixed {env.get('rate')} req/s through weft (eBPF), "
      f"{env['seconds']} s per run; in each round once *quiet*, once during *churn*: "
      f"the agent's registry file gains {env.get('churn_services', 0):,} Services of 10 "
      "endpoints (the sync), a fifth of them change every second, then all are removed "
      "(bench/churn.py), and once during *harness*: the same files written and renamed, and "
      "the admin API read as often, but to a file the agent does not load (the benchmark's "
      "own share). *late*: requests sent more than one interval after their due time; "
      "*co p99.9*: from the due time (coordinated omission corrected); *> 1 ms*: requests "
      "that took longer, all rounds.")
    w("")
    w("| phase | p50 µs | p99 µs | p99.9 µs | max µs | co p99.9 µs | late | > 1 ms |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    summary = {}
    us = lambda x: f"{x:,.0f}"  # noqa: E731
    for phase in ("quiet", "harness", "churn"):
        rs = pub.get(phase, [])
        lat = [r["lat"] for r in rs]
        if not lat:
            if phase != "harness":  # results from before the harness phase have none
                w(f"| {phase} | failed | | | | | | |")
            continue
        cells = [spread([x[k] for x in lat if k in x], us)
                 for k in ("p50", "p99", "p999", "max", "co_p999")]
        slow = [r["slow"] for r in rs if r["slow"] is not None]
        w(f"| {phase} | " + " | ".join(cells) + f" | {sum(x.get('late', 0) for x in lat)} | "
          + (f"{sum(slow):,}" if slow else "") + " |")
        summary[phase] = {k: med([x[k] for x in lat if k in x])
                          for k in ("p50", "p99", "p999", "max", "co_p999")}
        if slow:
            summary[phase]["over_1ms"] = sum(slow)
    w("")
    ev = [e for r in pub.get("churn", []) for e in r["events"]]
    binds = [r["binds"] for rs in pub.values() for r in rs if r["binds"]]
    if ev:
        w("Registry file renamed → catalogue published (the admin API's generation moved), "
          "per event over the rounds: " + "; ".join(
              f"{kind} {spread([e['published_ms'] for e in ev if e['event'] == kind and e['published_ms'] is not None], lambda x: f'{x:,.0f}')} ms"
              for kind in ("sync", "change", "remove") if any(e["event"] == kind for e in ev))
          + f" ({sum(1 for e in ev if e['published_ms'] is None)} not seen within 10 s).")
        w("")
    if binds:
        # One agent for every run, its counters since its start: the
        # reading with the most binds is the last one.
        last = max(binds, key=lambda b: b.get("binds", 0))
        w(f"The workers' binds over the whole run (`catalogue_binds`, /v1/status): "
          f"{last['binds']:,} binds, {last['avg_us']:,} µs average, longest "
          f"{last['max_us']:,} µs wall and {last['max_cpu_us']:,} µs of CPU"
          + (f"; at most {last['max_changes']:,} Services taken up by one bind, "
             f"{last.get('publish_waits', 0):,} parts published once the workers had bound "
             f"the one before, {last.get('publish_waits_expired', 0):,} after the bounded wait"
             if "max_changes" in last else "") + ".")
        w("")
        summary["binds"] = last
    if "quiet" in summary and "churn" in summary:
        summary["p999_added_us"] = summary["churn"]["p999"] - summary["quiet"]["p999"]
        summary["max_added_us"] = summary["churn"]["max"] - summary["quiet"]["max"]
    return summary


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


def run_cpu(workload, r, key="cpu_s"):
    """CPU per unit of work of one run (µs per request, s per GB), or None.
    key "cpu_s": the proxy's own CPU; "cg_cpu_s": all the CPU charged to the
    benchmark's cgroups (client, server, proxy, and the kernel's packet work
    done in their context)."""
    if key not in r:
        return None
    if workload in ("keepalive", "close", "handshake"):
        return r[key] * 1e6 / r["requests"] if r["requests"] else None
    if workload == "bulk":
        return r[key] / (r["bytes"] / 1e9) if r["bytes"] else None
    if workload == "latency":
        return r[key] * 1e6 / (r["n"] + r["rate"])  # + the 1 s warm-up, also proxied
    if workload == "pingpong":
        return r[key] * 1e6 / r["messages"] if r["messages"] else None
    return None


def cpu_per_unit(workload, runs, env, key="cpu_s"):
    """run_cpu(), median over rounds; None where a run has no such figure."""
    if any(key not in r for r in runs):
        return None
    return med([v for v in (run_cpu(workload, r, key) for r in runs) if v is not None])


def per_round(runs, wl, a, b, f, op):
    """op(f(run of a), f(run of b)) for every round where both have a figure:
    the same-run comparison, round by round (a round runs every configuration
    once, close together in time)."""
    fa = {r["round"]: f(r) for r in runs.get((wl, a), [])}
    fb = {r["round"]: f(r) for r in runs.get((wl, b), [])}
    out = []
    for k in sorted(fa):
        x, y = fa[k], fb.get(k)
        if x is None or y is None or (op is ratio_of and not y):
            continue
        out.append(op(x, y))
    return out


def ratio_of(a, b):
    return a / b


def diff_of(a, b):
    return a - b


# Issue #14's targets, one row each: (target, configuration, workload, figure
# of a run, compared with configuration, "ratio" or "diff", the bound, "≥" or
# "≤", counts as a target or is shown for comparison). Figures of the
# memory test have no rounds (workload None).
TARGETS14 = (
    ("keep-alive req/s ≥ 1.2× HAProxy L4", "weft", "keepalive", "rate", "haproxy",
     "ratio", 1.2, "≥", True),
    ("", "weft-tcp", "keepalive", "rate", "haproxy", "ratio", 1.2, "≥", False),
    ("", "weft", "keepalive", "rate", "haproxy-http", "ratio", 1.2, "≥", False),
    ("keep-alive p99 under load ≤ HAProxy L4's", "weft", "keepalive", "p99", "haproxy",
     "ratio", 1.0, "≤", True),
    ("new connection per request, HTTP-aware ≥ 0.95× direct", "weft", "close", "rate",
     "direct", "ratio", 0.95, "≥", True),
    ("", "haproxy-http", "close", "rate", "direct", "ratio", 0.95, "≥", False),
    ("new connection per request, opaque TCP ≥ 0.7× direct", "weft-tcp", "close", "rate",
     "direct", "ratio", 0.7, "≥", True),
    ("added p50, one request in flight (2,000 req/s) ≤ +20 µs", "weft", "latency", "p50",
     "direct", "diff", 20, "≤", True),
    ("", "weft-tcp", "latency", "p50", "direct", "diff", 20, "≤", False),
    ("", "haproxy", "latency", "p50", "direct", "diff", 20, "≤", False),
    ("added p50, one message in flight (closed loop, sockperf) ≤ +20 µs", "weft", "pingpong",
     "p50", "direct", "diff", 20, "≤", True),
    ("", "weft-tcp", "pingpong", "p50", "direct", "diff", 20, "≤", False),
    ("", "haproxy", "pingpong", "p50", "direct", "diff", 20, "≤", False),
    ("bulk ≥ 0.85× direct", "weft", "bulk", "rate", "direct", "ratio", 0.85, "≥", True),
    ("", "weft-tcp", "bulk", "rate", "direct", "ratio", 0.85, "≥", False),
    ("≤ 3 KiB per idle connection", "weft", None, "kib", None, None, 3, "≤", True),
    ("", "weft-tcp", None, "kib", None, None, 3, "≤", True),
    ("", "haproxy", None, "kib", None, None, 3, "≤", False),
    ("≤ 2 fds per idle connection", "weft", None, "fds", None, None, 2, "≤", True),
    ("", "weft-tcp", None, "fds", None, None, 2, "≤", True),
    ("", "haproxy", None, "fds", None, None, 2, "≤", False),
    ("idle RSS ≤ 10 MiB", "weft", None, "idle", None, None, 10, "≤", True),
    ("", "weft-tcp", None, "idle", None, None, 10, "≤", False),
    ("proxy CPU per request at 2,000 req/s ≤ 0.5× HAProxy L4's", "weft", "latency", "cpu",
     "haproxy", "ratio", 0.5, "≤", True),
    ("", "weft-tcp", "latency", "cpu", "haproxy", "ratio", 0.5, "≤", False),
    ("", "weft", "latency", "cpu", "haproxy-http", "ratio", 0.5, "≤", False),
)


def targets14_section(w, env, runs, idle, per_conn, fds_conn):
    """Issue #14's targets as same-run comparisons: the ratio (or difference)
    of this run's medians, the range of the per-round ones, and whether the
    bound holds. Returns the rows for the JSON record."""
    figure = {
        "rate": lambda r: r.get("rate"),
        "p99": lambda r: r.get("p99"),
        "p50": lambda r: r.get("p50"),
        "cpu": lambda r: run_cpu("latency", r),
    }
    unit = {"rate": "", "p99": " µs", "p50": " µs", "cpu": " µs/req"}
    configs = env["configs"]
    w("## Targets of issue #14 (same-run comparisons)")
    w("")
    if env.get("server") != "nginx":
        w("The targets are stated for the real-server variant (`BENCH_SERVER=nginx`); this "
          "run's server is bench/httpd.c.")
        w("")
    w("*measured*: this run's medians and their ratio (or difference); *per round*: the "
      "lowest and highest of the same comparison made round by round (each round runs every "
      "configuration, close together in time). Rows without a mark are shown for "
      "comparison. A figure goes into the docs only when it holds across two runs.")
    w("")
    w("| target | configuration | measured | per round | |")
    w("| --- | --- | --- | --- | --- |")
    out = []
    for title, c, wl, fig, other, kind, bound, sense, counts in TARGETS14:
        if c not in configs or (other is not None and other not in configs):
            continue
        val, rng, text = None, "", "–"
        if wl is None:
            val = {"kib": per_conn.get(c), "fds": fds_conn.get(c),
                   "idle": idle[c] / 1024 if c in idle else None}[fig]
            if val is not None:
                text = {"kib": f"{val:.1f} KiB", "fds": f"{val:.2f}",
                        "idle": f"{val:.1f} MiB"}[fig]
        else:
            f = figure[fig]
            a = med([v for v in map(f, runs.get((wl, c), [])) if v is not None])
            b = med([v for v in map(f, runs.get((wl, other), [])) if v is not None])
            op = ratio_of if kind == "ratio" else diff_of
            rounds = per_round(runs, wl, c, other, f, op)
            if a is not None and b is not None and (kind == "diff" or b):
                val = op(a, b)
                fmt = (lambda x: f"{x:.2f}×") if kind == "ratio" else (lambda x: f"{x:+.1f} µs")
                base = "" if fig == "rate" else f"{num(a)}{unit[fig]} vs {num(b)}{unit[fig]}: "
                text = f"{base}{fmt(val)} {'÷' if kind == 'ratio' else 'over'} {NAMES[other]}"
                if rounds:
                    rng = f"{fmt(min(rounds))} – {fmt(max(rounds))}"
        ok = None if val is None else (val >= bound if sense == "≥" else val <= bound)
        mark = "" if not counts else ("–" if ok is None else ("met" if ok else "**not met**"))
        w(f"| {title} | {NAMES[c]} | {text} | {rng} | {mark} |")
        out.append({"target": title, "config": c, "other": other, "figure": fig,
                    "value": val, "bound": bound, "sense": sense, "counts": counts, "ok": ok})
    w("")
    return out


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


# Which thread names (perf's comm) are the proxy's: the agent names its
# threads weft-worker-N, weft-broker, ...; the benchmark's own tools are
# weft-bench-*.
def is_weft(comm):
    return comm.startswith("weft-") and not comm.startswith("weft-bench")


PROXY_COMM = {"weft": is_weft, "weft-tcp": is_weft, "weft-nft": is_weft, "weft-in": is_weft,
              "weft-mesh": is_weft, "weft-mtls": is_weft,
              "haproxy": lambda n: n == "haproxy", "haproxy-http": lambda n: n == "haproxy"}
SERVER_COMM = {"nginx": "nginx", "httpd": "weft-bench-http"}


def profile_section(w, raw, configs, server):
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
      "(`nf_hook_slow`) contain conntrack, NAT and nft chains. The meshed pairs' run goes to "
      "their opaque-TCP service, so each connection is a new upstream connection (with "
      "mTLS, a handshake on each side).")
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
                 "server": p["comm"].get(SERVER_COMM[server], 0) * per,
                 "proxy process": (sum(v for k, v in p["comm"].items() if PROXY_COMM[c](k)) * per
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
    for wl in ("keepalive", "close", "bulk"):
        title, unit = WORKLOADS[wl]
        cells = [ratio(summary.get(wl, {}).get(a, {}).get("median"),
                       summary.get(wl, {}).get(b, {}).get("median")) for a, b in pairs]
        w(f"| {title} ({unit}) | " + " | ".join(cells) + " |")
    for k, title in (("p50", "latency p50"), ("p99", "latency p99")):
        cells = [ratio(lat.get(a, {}).get(k), lat.get(b, {}).get(k)) for a, b in pairs]
        w(f"| {title} | " + " | ".join(cells) + " |")
    w("")
    show = [c for c in NAMES if c in configs]
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


# Issue #16's targets: (target, figure, workload, "ratio" or "diff", bound,
# "≥" or "≤"), each weft-mtls against the plaintext meshed pair (counted) and
# against one-hop weft (shown).
TARGETS16 = (
    ("bulk ≥ 0.6× plaintext weft", "rate", "bulk", "ratio", 0.6, "≥"),
    ("added p50 at a fixed 2,000 req/s ≤ +50 µs over plaintext weft", "p50", "latency", "diff",
     50, "≤"),
)


def mtls_section(w, env, runs, per_conn, fds_conn, hold):
    """weft with mutual TLS against the same pair of meshed pods in
    plaintext, one-hop weft and direct (issue #16): throughput, latency and
    the agent's CPU per unit of work, the handshake's CPU, memory per mTLS
    connection, the targets. Returns the figures for the JSON record."""
    configs = env["configs"]
    if "weft-mtls" not in configs:
        return {}
    show = [c for c in ("direct", "weft", "weft-mesh", "weft-mtls") if c in configs]
    pair = "weft-mesh" if "weft-mesh" in configs else None
    out = {}
    w("## Mutual TLS (issue #16)")
    w("")
    w("*meshed pair*: a client pod and a server pod, both meshed and served by one agent "
      "with its defaults (HTTP-aware), the client calling its service's VIP: the agent's "
      "outbound side relays to the server pod, whose inbound side (sk_lookup) delivers to "
      "the server. *mTLS*: the same with `--ca-cert/--ca-key`, so the outbound side opens "
      "TLS 1.3 to the server pod's port 15008 and the inbound side terminates it: **one "
      "agent does both handshake sides**, and its CPU counts both. *plaintext*: the same "
      "agent without a CA, the fair comparison (two proxy hops both); *weft* is one hop "
      "(outbound only, unmeshed server). Proxy CPU is the agent's cgroup's `usage_usec` "
      "over the run. Per-round columns: the lowest and highest of the same comparison made "
      "round by round.")
    w("")

    def fig(c, wl, f):
        return med([v for v in map(f, runs.get((wl, c), [])) if v is not None])

    rows = [
        ("HTTP keep-alive, 50 connections (req/s)", "keepalive", lambda r: r.get("rate"), num),
        ("keep-alive p99 under load (µs)", "keepalive", lambda r: r.get("p99"), num),
        ("new connection per request, HTTP-aware (conn/s)", "close", lambda r: r.get("rate"), num),
        ("new connection per request, opaque TCP (conn/s)", "handshake",
         lambda r: r.get("rate"), num),
        ("bulk TCP, one stream (Gbit/s)", "bulk", lambda r: r.get("rate"), num),
        ("latency at a fixed rate, p50 (µs)", "latency", lambda r: r.get("p50"), num),
        ("latency at a fixed rate, p99 (µs)", "latency", lambda r: r.get("p99"), num),
        ("proxy CPU, keep-alive (µs/req)", "keepalive", lambda r: run_cpu("keepalive", r), num),
        ("proxy CPU, new connection HTTP-aware (µs/conn)", "close",
         lambda r: run_cpu("close", r), num),
        ("proxy CPU, new connection opaque TCP (µs/conn)", "handshake",
         lambda r: run_cpu("handshake", r), num),
        ("proxy CPU, bulk (s/GB)", "bulk", lambda r: run_cpu("bulk", r), num),
        ("proxy CPU at the fixed rate (µs/req)", "latency", lambda r: run_cpu("latency", r), num),
        ("all CPU, new connection opaque TCP (µs/conn)", "handshake",
         lambda r: run_cpu("handshake", r, "cg_cpu_s"), num),
    ]
    cols = [NAMES[c] for c in show]
    ratio_hdr = ["mTLS ÷ plaintext pair", "per round"] if pair else []
    w("| measure | " + " | ".join(cols + ratio_hdr) + " |")
    w("| --- |" + " --- |" * (len(cols) + len(ratio_hdr)))
    for title, wl, f, fmt in rows:
        vals = {c: fig(c, wl, f) for c in show}
        if all(v is None for v in vals.values()):
            continue
        cells = ["–" if vals[c] is None else fmt(vals[c]) for c in show]
        if pair:
            cells.append(ratio(vals["weft-mtls"], vals[pair]))
            rounds = per_round(runs, wl, "weft-mtls", pair, f, ratio_of)
            cells.append(f"{min(rounds):.2f}× – {max(rounds):.2f}×" if rounds else "–")
        w(f"| {title} | " + " | ".join(cells) + " |")
        out[f"{wl}:{title}"] = vals
    w("")

    # Handshakes per client connection, from the agent's own counters: the
    # HTTP-aware workloads pool upstream (mTLS) connections, the opaque one
    # does not.
    hs = []
    for wl in ("keepalive", "close", "handshake", "latency", "bulk"):
        rs = [r for r in runs.get((wl, "weft-mtls"), []) if "mtls_out" in r]
        if not rs:
            continue
        n_out, n_in = sum(r["mtls_out"] for r in rs), sum(r["mtls_in"] for r in rs)
        reqs = sum(r.get("requests", 0) for r in rs)
        per = f", {n_out / reqs:.3f} per request" if reqs and wl != "latency" else ""
        hs.append(f"{WORKLOADS.get(wl, (wl,))[0] if wl in WORKLOADS else 'latency'}: "
                  f"{n_out:,} opened, {n_in:,} accepted{per}")
        out[f"handshakes:{wl}"] = {"out": n_out, "in": n_in, "requests": reqs}
    if hs:
        w("mTLS connections the agent made over the rounds (`mtls.out` client side, `mtls.in` "
          "server side, from `meshctl status`): " + "; ".join(hs) + ".")
        w("")

    # The handshake's cost: the agent's CPU per mTLS connection of the
    # opaque workload (÷ the connections its counters saw opened: those
    # still in flight when wrk stops were paid for too) minus its CPU per
    # connection in plaintext, round by round; one agent, both sides.
    if pair:
        def per_hs(r):
            return r["cpu_s"] * 1e6 / r["mtls_out"] if r.get("mtls_out") and "cpu_s" in r else None
        f = lambda r: run_cpu("handshake", r)
        hs_runs = {r["round"]: per_hs(r) for r in runs.get(("handshake", "weft-mtls"), [])}
        plain = {r["round"]: f(r) for r in runs.get(("handshake", pair), [])}
        rounds = [hs_runs[k] - plain[k] for k in sorted(hs_runs)
                  if hs_runs[k] is not None and plain.get(k) is not None]
        a = med([v for v in hs_runs.values() if v is not None])
        b = med([v for v in plain.values() if v is not None])
        a_req = fig("weft-mtls", "handshake", f)
        g = lambda r: run_cpu("handshake", r, "cg_cpu_s")
        ga, gb = fig("weft-mtls", "handshake", g), fig(pair, "handshake", g)
        grounds = per_round(runs, "handshake", "weft-mtls", pair, g, diff_of)
        if a is not None and b is not None and rounds:
            w(f"**Handshake cost**: {a - b:.0f} µs of agent CPU per new mTLS connection, "
              f"the client's and the server's handshake together in one agent (per round "
              f"{min(rounds):.0f} – {max(rounds):.0f} µs): in the opaque-TCP connection "
              f"workload the agent spent {a:.0f} µs per mTLS connection it opened "
              f"(`mtls.out`), against {b:.0f} µs per connection without mTLS. Per completed "
              f"client connection it spent {a_req:.0f} µs (connections still in flight when "
              f"the run ends are paid for and not counted)"
              + (f"; all CPU charged to the benchmark: {ga - gb:+.0f} µs per completed "
                 f"connection over plaintext (per round {min(grounds):+.0f} – "
                 f"{max(grounds):+.0f})" if ga is not None and gb is not None and grounds
                 else "") + ".")
            w("")
            out["handshake_us"] = {"median": a - b, "rounds": rounds, "mtls_cpu_per_conn": a,
                                   "plaintext_cpu_per_conn": b, "per_completed_conn": a_req,
                                   "all_cpu_us": None if ga is None or gb is None else ga - gb}

    # Memory per connection: held through the opaque services, so each
    # connection keeps its own upstream (an mTLS connection, both sides).
    if "weft-mtls" in per_conn:
        h = hold["weft-mtls"]
        text = (f"**Memory per mTLS connection**: {per_conn['weft-mtls']:.1f} KiB of agent RSS "
                f"and {fds_conn.get('weft-mtls', 0):.2f} fds per idle connection "
                f"({h['ok']:,} held through the opaque service, both TLS sides in the one agent")
        if h.get("mtls_out") is not None:
            text += f"; {h['mtls_out']:,} mTLS connections opened for them"
        text += ")"
        if pair in per_conn:
            text += (f", against {per_conn[pair]:.1f} KiB and {fds_conn.get(pair, 0):.2f} fds "
                     f"for the plaintext pair: TLS adds "
                     f"{per_conn['weft-mtls'] - per_conn[pair]:.1f} KiB per connection")
        w(text + ". Kernel socket memory is not included.")
        w("")
        out["memory"] = {"per_conn_kib": per_conn.get("weft-mtls"),
                         "plaintext_kib": per_conn.get(pair), "fds": fds_conn.get("weft-mtls")}

    w("| target (issue #16) | against | measured | per round | |")
    w("| --- | --- | --- | --- | --- |")
    targets = []
    for title, figname, wl, kind, bound, sense in TARGETS16:
        f = lambda r, k=figname: r.get(k)
        for other, counts in ((pair, True), ("weft", False)):
            if other not in configs:
                continue
            a, b = fig("weft-mtls", wl, f), fig(other, wl, f)
            op = ratio_of if kind == "ratio" else diff_of
            rounds = per_round(runs, wl, "weft-mtls", other, f, op)
            fmt = (lambda x: f"{x:.2f}×") if kind == "ratio" else (lambda x: f"{x:+.1f} µs")
            val = None if a is None or b is None or (kind == "ratio" and not b) else op(a, b)
            ok = None if val is None else (val >= bound if sense == "≥" else val <= bound)
            mark = "" if not counts else ("–" if ok is None else ("met" if ok else "**not met**"))
            rng = f"{fmt(min(rounds))} – {fmt(max(rounds))}" if rounds else ""
            w(f"| {title if counts else ''} | {NAMES[other]} "
              f"| {'–' if val is None else fmt(val)} | {rng} | {mark} |")
            targets.append({"target": title, "other": other, "value": val, "bound": bound,
                            "sense": sense, "counts": counts, "ok": ok})
    w("")
    out["targets"] = targets
    return out


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
            len(runs.get(("latency", "weft-in"), [])) +
            len(runs.get(("pingpong", "weft-in"), [])))
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
    dns, dns_failed, dns_other = load_dns(raw)
    other = other + dns_other
    env["other_cores_median"] = med(other)
    env["other_cores_max"] = max(other, default=None)
    configs = env["configs"]
    summary = {}
    L = []
    w = L.append

    w(f"# weft benchmark — {env['date']}")
    w("")
    server = env.get("server", "httpd")
    server_desc = (f"nginx {env.get('server_version', '')} (2 workers, `return 200`)"
                   if server == "nginx" else "bench/httpd.c (2 threads)")
    w(f"weft `{env['weft_rev']}` (agent sha256 {env['weft_sha256']}…), HAProxy {env['haproxy']} "
      f"({env['haproxy_threads']} threads, maxconn {env['haproxy_maxconn']:,}), "
      f"wrk {env['wrk']}, iperf3 {env['iperf3']}; "
      f"server: {server_desc}, 128-byte body. "
      f"Kernel {env['kernel']}, {env['cores']} × {env['cpu']}. {env['rounds']} interleaved rounds "
      f"of {env['seconds']} s per run; medians with (min–max). Load average "
      f"{env['load_start']} at the start, {env['load_end']} at the end "
      f"(rounds took {env['elapsed_s']} s). Each process in its own session (autogroup "
      f"{'on' if env.get('autogroup') else 'off'}) and its role's cgroup. "
      f"Method: docs/benchmarks.md.")
    w("")
    if other:
        w(f"Other activity on the machine during the runs (busy CPU not charged to the "
          f"benchmark's cgroups): median {med(other):.2f} cores, max {max(other):.2f}.")
        if med(other) > 0.2:
            w("**The machine was busy with other work: these figures are skewed; rerun on a "
              "quiet machine before drawing conclusions.**")
        w("")

    if env.get("only") == "dns":  # the DNS rows alone
        summary["dns"] = dns_section(w, env, dns, dns_failed, raw)
        write(out_md, out_json, L, env, summary, runs, failed, dns, dns_failed)
        return
    pub = load_publish(raw)
    if env.get("only") == "publish":  # the publishing rows alone
        summary["publish"] = publish_section(w, env, pub)
        write(out_md, out_json, L, env, summary, runs, failed, dns, dns_failed)
        return

    # ---- throughput
    w("## Throughput")
    w("")
    w("*proxy CPU*: the proxy process (for weft inbound: the eBPF agent, whose inbound side "
      "the connections cross); *all CPU*: everything charged to the benchmark's cgroups "
      "(client, server, proxy, and the kernel's packet work done in their context: NAT, "
      "conntrack, the TCP stacks), per unit of work.")
    w("")
    w("*p99 under load*: wrk's 99th percentile of request latency during the run "
      "(`--latency`; a closed loop, so it is the latency at the throughput reached).")
    w("")
    w("| workload | configuration | median (min–max) | ÷ direct | ÷ HAProxy L4 "
      "| p99 under load µs | proxy CPU s per run | proxy CPU per unit | all CPU per unit "
      "| proxy RSS after run |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    skipped = set(env.get("skipped", []))
    for wl, (title, unit) in WORKLOADS.items():
        base = {c: med([r["rate"] for r in runs.get((wl, c), [])]) for c in configs}
        for c in configs:
            if f"{wl}.{c}" in skipped:
                continue
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
            p99s = [r["p99"] for r in rs if "p99" in r]
            p99 = med(p99s)
            w(f"| {title} | {NAMES[c]} | {cell} | {ratio(base[c], base.get('direct'))} "
              f"| {ratio(base[c], base.get('haproxy'))} "
              f"| {spread(p99s, lambda x: f'{x:,.0f}') if p99s else '–'} "
              f"| {'–' if cpu is None else f'{cpu:.2f}'} "
              f"| {'–' if per is None else f'{per:.1f} {per_unit}'} "
              f"| {'–' if allc is None else f'{allc:.1f} {per_unit}'} "
              f"| {'–' if rss is None else mib(rss)} |")
            summary.setdefault(wl, {})[c] = {"median": base[c], "min": min(rates, default=None),
                                             "max": max(rates, default=None), "errors": errors,
                                             "p99_us": p99, "cpu_s": cpu, "cpu_per_unit": per,
                                             "all_cpu_per_unit": allc, "rss_kb": rss}
    w("")

    # ---- latency
    w(f"## Latency at a fixed {env['rate']} req/s, one request in flight")
    w("")
    w("Per-request time from send to the last byte of the response, over one keep-alive "
      "connection; \"late\" counts requests sent more than one interval after their due time "
      "(summed over the rounds).")
    w("")
    w("| configuration | p50 µs | ÷ direct | ÷ HAProxy L4 | p99 µs | ÷ direct | ÷ HAProxy L4 "
      "| p99.9 µs | ÷ direct | ÷ HAProxy L4 | p50 added vs direct | late | proxy CPU µs/req "
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

    # ---- round trips, closed loop
    pp = {c: {k: med([r[k] for r in runs.get(("pingpong", c), [])]) for k in ("p50", "p99", "p999")}
          for c in configs}
    if any(runs.get(("pingpong", c)) for c in configs):
        w("## Round trip, one message in flight, closed loop (sockperf)")
        w("")
        w(f"`sockperf ping-pong --tcp -m 64 --full-rtt` (sockperf {env.get('sockperf', '?')}): "
          "one 64-byte message, the next sent as soon as the reply is in, over one TCP "
          "connection; round-trip time in µs. Not HTTP, so weft relays it as TCP in every "
          "mode. HAProxy HTTP has no such row.")
        w("")
        w("| configuration | p50 µs | p50 added vs direct | ÷ HAProxy L4 | p99 µs | p99.9 µs "
          "| round trips | proxy CPU µs per round trip |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for c in configs:
            if f"pingpong.{c}" in skipped:
                continue
            rs = runs.get(("pingpong", c), [])
            cell = {k: spread([r[k] for r in rs], lambda x: f"{x:.1f}")
                    for k in ("p50", "p99", "p999")}
            added = "–"
            if c != "direct" and pp[c]["p50"] is not None and pp.get("direct", {}).get("p50"):
                added = f"{pp[c]['p50'] - pp['direct']['p50']:+.1f} µs"
            per = cpu_per_unit("pingpong", rs, env)
            if failed.get(("pingpong", c)):
                cell["p50"] += f" ({failed[('pingpong', c)]} runs failed)"
            w(f"| {NAMES[c]} | {cell['p50']} | {added} "
              f"| {ratio(pp[c]['p50'], pp.get('haproxy', {}).get('p50'))} | {cell['p99']} "
              f"| {cell['p999']} | {med([r['n'] for r in rs]) or 0:,.0f} "
              f"| {'–' if per is None else f'{per:.1f}'} |")
            summary.setdefault("pingpong", {})[c] = dict(pp[c], cpu_per_rt_us=per)
        w("")

    if env.get("dns"):
        summary["dns"] = dns_section(w, env, dns, dns_failed, raw)
    if env.get("publish"):
        summary["publish"] = publish_section(w, env, pub)

    # ---- memory
    w("## Memory")
    w("")
    w(f"Idle: resident set right after start (an agent with its enrolled pods), before any "
      f"benchmark traffic. Per connection: {env['conns']:,} keep-alive connections opened through "
      f"the proxy, one request each, then held idle; (VmRSS with them − VmRSS before) ÷ "
      f"connections; fds per connection likewise, from the proxy's open descriptors "
      f"(`/proc/PID/fd`). Kernel socket memory is not in either figure.")
    if env["conns"] < env["conns_wanted"]:
        w("")
        w(f"The test used {env['conns']:,} connections, not {env['conns_wanted']:,}: this "
          f"machine's RLIMIT_NOFILE hard limit is {env['nofile']:,}, and a proxy needs two "
          f"descriptors per connection (more with pipes). Memory per connection does not "
          f"depend on the count.")
    w("")
    w("| proxy | idle RSS | peak RSS in the rounds (VmHWM) | connections held | RSS held "
      "| per connection | ÷ HAProxy L4 | fds per connection |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    per_conn, fds_conn = {}, {}
    for c in HOLD:
        h = hold.get(c)
        if h and h["ok"]:
            per_conn[c] = (h["rss1_kb"] - h["rss0_kb"]) / h["ok"]
            if "fds1" in h:
                fds_conn[c] = (h["fds1"] - h["fds0"]) / h["ok"]
    for c in HOLD:
        if c not in idle:
            continue
        hwm = max((r["hwm_kb"] for (wl, cc), rs in runs.items() if cc == c
                   for r in rs if "hwm_kb" in r), default=None)
        h = hold.get(c, {})
        pc = per_conn.get(c)
        held = f"{h['ok']:,} of {h.get('conns', env['conns']):,}" if h else "not run"
        w(f"| {NAMES[c]} | {mib(idle[c])} | {'–' if hwm is None else mib(hwm)} "
          f"| {held} "
          f"| {mib(h['rss1_kb']) if h else '–'} "
          f"| {'–' if pc is None else f'{pc:.1f} KiB'} "
          f"| {ratio(pc, per_conn.get('haproxy'))} "
          f"| {'–' if c not in fds_conn else f'{fds_conn[c]:.2f}'} |")
    for c in ("weft", "weft-tcp", "weft-nft"):
        if c in idle:
            w(f"| ratio {NAMES[c]} ÷ HAProxy L4 | {ratio(idle[c], idle.get('haproxy'))} | | | | | | |")
    for c in HOLD:
        closed = hold.get(c, {}).get("closed")
        if closed:
            w("")
            w(f"**{NAMES[c]} closed {closed:,} of the held connections before the end of the "
              f"test.**")
    summary["memory"] = {"idle_kb": idle, "per_conn_kib": per_conn, "fds_per_conn": fds_conn,
                         "hold": hold}
    w("")

    # ---- capture modes and inbound (issue #11)
    capture_section(w, env, configs, summary, lat, raw, runs)

    # ---- mutual TLS (issue #16)
    summary["mtls"] = mtls_section(w, env, runs, per_conn, fds_conn, hold)

    summary["profile"] = profile_section(w, raw, configs, env.get("server", "httpd"))

    # ---- targets
    def target_row(name, measured, ok):
        mark = "–" if ok is None else ("met" if ok else "**not met**")
        w(f"| {name} | {measured} | {mark} |")

    summary["targets14"] = targets14_section(w, env, runs, idle, per_conn, fds_conn)

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
    x = idle["weft"] / idle["haproxy"] if idle.get("haproxy") and "weft" in idle else None
    target_row("idle RSS ≤ HAProxy", "–" if x is None else
               f"{mib(idle['weft'])} vs {mib(idle['haproxy'])}", None if x is None else x <= 1)
    x = per_conn.get("weft")
    target_row(f"≤ 40 KiB per connection at {env['conns']:,}",
               "–" if x is None else f"{x:.1f} KiB", None if x is None else x <= 40)
    w("")

    write(out_md, out_json, L, env, summary, runs, failed, dns, dns_failed)


def write(out_md, out_json, lines, env, summary, runs, failed, dns, dns_failed):
    with open(out_md, "w") as f:
        f.write("\n".join(lines))
    with open(out_json, "w") as f:
        json.dump({"env": env, "summary": summary,
                   "runs": {f"{wl}.{c}": rs for (wl, c), rs in runs.items()},
                   "failed": {f"{wl}.{c}": n for (wl, c), n in failed.items()},
                   "dns_runs": {f"{wl}.{row}": rs for (wl, row), rs in dns.items()},
                   "dns_failed": {f"{wl}.{row}": n for (wl, row), n in dns_failed.items()}},
                  f, indent=1)


if __name__ == "__main__":
    main()
