#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""weft-bench churn: publish big catalogue changes to a running agent through
its registry file, on a schedule, while bench/run.sh measures requests through
the proxy (the "publishing under load" rows, issue 15).

usage: churn.py BASE.yaml REGISTRY.yaml ADMIN.sock SERVICES ENDPOINTS SECONDS [unwatched]

REGISTRY.yaml is the file the agent loads (`--registry file:...`); it starts
as a copy of BASE.yaml. At 1.2 s the file gains SERVICES Services of
ENDPOINTS endpoints each in namespace "churn" (the sync: thousands of
Services new at once); every second after that, a tenth of them moves its
endpoints and the tenth moved before moves back (a change of 20 % of those
Services); the last event, one second
before SECONDS, goes back to BASE.yaml (thousands of Services removed). Each
file is written beside REGISTRY.yaml and renamed over it, as an operator's
tool would. After each event the agent's admin API is polled every 50 ms
until its catalogue generation moves (a /v1/status reading does not park
the workers, but it is work for the agent's loop, so not more often; its
bind figures may then lag a worker's bind in progress): one JSON line per event on
stdout, with the time from the rename to the publish as the admin API saw
it, to 50 ms, and the workers' bind figures (catalogue_binds) read just
before the next event, so a long bind can be told to one event.

With "unwatched", REGISTRY.yaml is a file the agent does not load: the
same files are built, written and renamed on the same schedule, and the
admin API is read as often as a publishing run reads it (POLLS below), but
nothing is published: the benchmark's own share of the disturbance (the
"harness" phase of bench/run.sh), to set the publishing run against.

Addresses: VIPs in 198.19.64.0-198.19.103.255, endpoints in 198.18.128.0/17
(reused past 32,768); no traffic is ever sent to any of them.
"""
import json
import os
import socket
import sys
import time


def admin_get(sock_path, path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(sock_path)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: weft\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"admin {path}: {head[:80]!r}")
    return json.loads(body)


def generation(sock_path):
    return admin_get(sock_path, "/v1/status")["catalogue_generation"]


def binds(sock_path):
    return admin_get(sock_path, "/v1/status").get("catalogue_binds", {})


def services(n, eps, shift):
    out = ["---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: churn\n"]
    for i in range(n):
        vip = f"198.19.{64 + i // 250}.{1 + i % 250}"
        # One in ten Services moves its endpoints with each change.
        base = i * eps + (shift if i % 10 == shift % 10 else 0) * 7
        addrs = ", ".join(
            f'"198.18.{128 + ((base + j) // 256) % 128}.{(base + j) % 256}"' for j in range(eps))
        out.append(
            f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i:05d}\n"
            f"  namespace: churn\nspec:\n  clusterIP: {vip}\n  ports:\n  - name: http\n"
            f"    port: 80\n    targetPort: 8080\n"
            f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
            f"  name: svc-{i:05d}-1\n  namespace: churn\n  labels:\n"
            f"    kubernetes.io/service-name: svc-{i:05d}\naddressType: IPv4\nendpoints:\n"
            f"- addresses: [{addrs}]\n  conditions: {{ready: true}}\n"
            f"ports:\n- name: http\n  port: 8080\n")
    return "".join(out)


# Readings of /v1/status after each event in an unwatched run: about as many
# as a publishing run takes to see it (the sync about 400 ms, a change about
# 130 ms, the removal under 50 ms, at one reading per 50 ms).
POLLS = {"sync": 8, "change": 3, "remove": 1}


def put(path, text):
    tmp = path + ".next"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    if len(sys.argv) not in (7, 8) or sys.argv[7:] not in ([], ["unwatched"]):
        sys.exit(__doc__)
    unwatched = sys.argv[7:] == ["unwatched"]
    base_path, reg, admin = sys.argv[1:4]
    n, eps, seconds = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    if n < 1 or not 1 <= eps <= 100 or seconds < 3:
        sys.exit("churn.py: SERVICES ≥ 1, 1 ≤ ENDPOINTS ≤ 100, SECONDS ≥ 3")
    with open(base_path) as f:
        base = f.read()
    # Built before the clock starts: the events are file renames, not Python.
    events = [("sync", base + services(n, eps, 0))]
    t_last = seconds - 1
    k = 1
    while 1.2 + k < t_last:
        events.append(("change", base + services(n, eps, k)))
        k += 1
    events.append(("remove", base))
    start = time.monotonic()
    last = None
    for i, (kind, text) in enumerate(events):
        due = start + (1.2 + i if kind != "remove" else t_last)
        time.sleep(max(0.0, due - time.monotonic()))
        # The previous event's binds, read before this one is written.
        if last:
            print(json.dumps(dict(last, binds_after=binds(admin))), flush=True)
        g0 = generation(admin)
        t0 = time.monotonic()
        put(reg, text)
        published = None
        for _ in range(POLLS[kind] if unwatched else 0):
            generation(admin)
            time.sleep(0.05)
        while not unwatched and time.monotonic() - t0 < 10:
            if generation(admin) != g0:
                published = (time.monotonic() - t0) * 1000
                break
            time.sleep(0.05)
        last = {"event": kind, "at_s": round(t0 - start, 3), "at_monotonic": round(t0, 6),
                "services": n if kind != "remove" else 0,
                "published_ms": None if published is None else round(published, 1)}
    time.sleep(0.5)
    print(json.dumps(dict(last, binds_after=binds(admin))), flush=True)


if __name__ == "__main__":
    main()
