#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A fake Consul agent+server for weft's tests, speaking the parts of
Consul's HTTP API the registry backend uses, with Consul's wire format:

  GET /v1/catalog/services          {"name": [tags...]}, blocking
  GET /v1/health/service/NAME       [{"Node":..,"Service":..,"Checks":[..]}],
                                    ?passing=1 filters, blocking
  PUT /v1/catalog/register|deregister   (how tests add external instances)
  PUT /v1/agent/service/register    with a "Check" {TTL, Status,
                                    DeregisterCriticalServiceAfter}
  PUT /v1/agent/service/deregister/ID
  PUT /v1/agent/check/pass/CHECKID  404 "Unknown check ID" when unknown

Blocking queries: ?index=N&wait=Ds hangs until the query's index is above
N or the wait (plus up to wait/16) runs out; X-Consul-Index on every
answer. ACLs: with --token, a request without that X-Consul-Token gets 403
"ACL not found". TTL checks go critical after their TTL and the instance is
reaped after DeregisterCriticalServiceAfter.

Test-only calls under /_test/: raw (inject a raw health entry), reset-index
(the index goes back, as after a restore), stats, token.
"""
import argparse
import json
import random
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Condition()
STATE = {
    "index": 10,
    "services": {},   # ID -> dict(node, address, service{}, checks{CheckID: check})
    "raw": {},        # service name -> list of raw entries appended to answers
    "svc_index": {},  # service name -> modify index
    "token": None,
    "stats": {"catalog": 0, "health": 0, "register": 0, "deregister": 0, "pass": 0,
              "denied": 0, "indexes": []},
}
NODE = "node-consul"


def bump(names):
    STATE["index"] += 1
    for n in names:
        STATE["svc_index"][n] = STATE["index"]
    LOCK.notify_all()


def parse_dur(s, default):
    if not s:
        return default
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", s)
    if not m:
        return default
    v = float(m.group(1))
    return v * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def status_of(inst):
    st = [c["Status"] for c in inst["checks"].values()]
    if "critical" in st:
        return "critical"
    if "warning" in st:
        return "warning"
    return "passing"


def catalog_services():
    out = {}
    for inst in STATE["services"].values():
        s = inst["service"]
        tags = out.setdefault(s["Service"], [])
        for t in s["Tags"]:
            if t not in tags:
                tags.append(t)
    for name in STATE["raw"]:
        out.setdefault(name, [])
    return out, STATE["index"]


def health(name, passing):
    out = []
    for inst in sorted(STATE["services"].values(), key=lambda i: i["service"]["ID"]):
        s = inst["service"]
        if s["Service"] != name:
            continue
        if passing and status_of(inst) != "passing":
            continue
        out.append({
            "Node": {"ID": "", "Node": inst["node"], "Address": inst["node_address"],
                     "Datacenter": "dc1", "TaggedAddresses": {}, "Meta": {},
                     "CreateIndex": s["CreateIndex"], "ModifyIndex": s["ModifyIndex"]},
            "Service": s,
            "Checks": [public_check(c) for c in inst["checks"].values()],
        })
    out.extend(STATE["raw"].get(name, []))
    return out, STATE["svc_index"].get(name, STATE["index"])


def reaper():
    while True:
        time.sleep(0.1)
        with LOCK:
            now = time.monotonic()
            changed, gone = set(), []
            for sid, inst in STATE["services"].items():
                for c in inst["checks"].values():
                    if c.get("_ttl") and c["Status"] != "critical" and now > c["_expires"]:
                        c["Status"] = "critical"
                        c["Output"] = "TTL expired"
                        c["_critical_since"] = now
                        changed.add(inst["service"]["Service"])
                    if (c["Status"] == "critical" and c.get("_dereg")
                            and now - c.get("_critical_since", now) > c["_dereg"]):
                        gone.append(sid)
            for sid in set(gone):
                changed.add(STATE["services"].pop(sid)["service"]["Service"])
            if changed:
                bump(changed)


def public_check(c):
    return {k: v for k, v in c.items() if not k.startswith("_")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, index=None, ctype="application/json"):
        data = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if ctype == "application/json" else body.encode())
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if index is not None:
            self.send_header("X-Consul-Index", str(index))
            self.send_header("X-Consul-KnownLeader", "true")
            self.send_header("X-Consul-LastContact", "0")
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw.strip() else None

    def authorized(self, q):
        tok = STATE["token"]
        if tok is None:
            return True
        got = self.headers.get("X-Consul-Token") or q.get("token", [""])[0]
        if got == tok:
            return True
        STATE["stats"]["denied"] += 1
        self.reply(403, "ACL not found", ctype="text/plain")
        return False

    def blocking(self, q, query):
        index = int(q.get("index", ["0"])[0] or 0)
        wait = min(parse_dur(q.get("wait", [""])[0], 300), 600)
        wait += random.uniform(0, wait / 16)
        deadline = time.monotonic() + wait
        with LOCK:
            STATE["stats"]["indexes"].append(index)
            res, idx = query()
            while index > 0 and idx <= index:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                LOCK.wait(left)
                res, idx = query()
        return res, idx

    def do_GET(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        if u.path == "/_test/stats":
            with LOCK:
                return self.reply(200, STATE["stats"])
        if not self.authorized(q):
            return None
        if u.path == "/v1/catalog/services":
            STATE["stats"]["catalog"] += 1
            res, idx = self.blocking(q, catalog_services)
            return self.reply(200, res, idx)
        m = re.fullmatch(r"/v1/health/service/([^/]+)", u.path)
        if m:
            STATE["stats"]["health"] += 1
            passing = "passing" in q
            res, idx = self.blocking(q, lambda: health(m.group(1), passing))
            return self.reply(200, res, idx)
        return self.reply(404, "not found", ctype="text/plain")

    def do_PUT(self):
        u = urlparse(self.path)
        q = parse_qs(u.query)
        if not self.authorized(q):
            return None
        try:
            b = self.body()
        except ValueError as e:
            return self.reply(400, "Request decode failed: %s" % e, ctype="text/plain")
        with LOCK:
            return self.put_locked(u.path, b)

    def do_POST(self):
        u = urlparse(self.path)
        b = self.body()
        with LOCK:
            if u.path == "/_test/raw":
                STATE["raw"].setdefault(b["service"], []).append(b["entry"])
                bump([b["service"]])
            elif u.path == "/_test/reset-index":
                STATE["index"] = int(b.get("index", 2))
                for n in STATE["svc_index"]:
                    STATE["svc_index"][n] = STATE["index"]
                LOCK.notify_all()
            elif u.path == "/_test/token":
                STATE["token"] = b.get("token")
            else:
                return self.reply(404, "not found", ctype="text/plain")
        return self.reply(200, {})

    def register(self, node, node_addr, svc, checks):
        sid = svc.get("ID") or svc["Name" if "Name" in svc else "Service"]
        name = svc.get("Name") or svc.get("Service")
        old = STATE["services"].get(sid)
        s = {"ID": sid, "Service": name, "Tags": svc.get("Tags") or [],
             "Address": svc.get("Address", ""), "TaggedAddresses": {},
             "Meta": svc.get("Meta") or {}, "Port": svc.get("Port", 0),
             "Weights": svc.get("Weights") or {"Passing": 1, "Warning": 1},
             "EnableTagOverride": False, "Proxy": {"Expose": {}}, "Connect": {},
             "PeerName": "", "Namespace": "default", "Partition": "default",
             "CreateIndex": old["service"]["CreateIndex"] if old else STATE["index"] + 1,
             "ModifyIndex": STATE["index"] + 1}
        cs = {}
        for c in checks:
            cid = c.get("CheckID") or ("service:" + sid)
            ttl = parse_dur(c.get("TTL"), 0)
            cs[cid] = {"Node": node, "CheckID": cid, "Name": c.get("Name", cid),
                       "Status": c.get("Status", "critical"), "Notes": "", "Output": "",
                       "ServiceID": sid, "ServiceName": name, "ServiceTags": s["Tags"],
                       "Type": "ttl" if ttl else "", "CreateIndex": STATE["index"] + 1,
                       "ModifyIndex": STATE["index"] + 1,
                       "_ttl": ttl, "_expires": time.monotonic() + ttl,
                       "_dereg": parse_dur(c.get("DeregisterCriticalServiceAfter"), 0)}
        STATE["services"][sid] = {"node": node, "node_address": node_addr, "service": s,
                                  "checks": cs}
        names = [name] + ([old["service"]["Service"]] if old else [])
        bump(names)

    def put_locked(self, path, b):
        st = STATE["stats"]
        if path == "/v1/agent/service/register":
            st["register"] += 1
            checks = b.get("Checks") or ([b["Check"]] if b.get("Check") else [])
            if not isinstance(b.get("Port", 0), int) or not (b.get("Name") or b.get("Service")):
                return self.reply(400, "Invalid Service", ctype="text/plain")
            self.register(NODE, "127.0.0.1", b, checks)
            return self.reply(200, b"", ctype="text/plain")
        m = re.fullmatch(r"/v1/agent/service/deregister/(.+)", path)
        if m:
            st["deregister"] += 1
            inst = STATE["services"].pop(m.group(1), None)
            if not inst:
                return self.reply(404, "Unknown service ID %r" % m.group(1),
                                  ctype="text/plain")
            bump([inst["service"]["Service"]])
            return self.reply(200, b"", ctype="text/plain")
        m = re.fullmatch(r"/v1/agent/check/pass/(.+)", path)
        if m:
            st["pass"] += 1
            for inst in STATE["services"].values():
                c = inst["checks"].get(m.group(1))
                if c:
                    was = c["Status"]
                    c["Status"] = "passing"
                    c["_expires"] = time.monotonic() + c["_ttl"]
                    if was != "passing":
                        bump([inst["service"]["Service"]])
                    return self.reply(200, b"", ctype="text/plain")
            return self.reply(404, 'Unknown check ID "%s"' % m.group(1), ctype="text/plain")
        if path == "/v1/catalog/register":
            svc = b.get("Service") or {}
            checks = b.get("Checks") or ([b["Check"]] if b.get("Check") else [])
            for c in checks:
                c.setdefault("Status", "passing")
            if not checks:
                checks = [{"CheckID": "serfHealth", "Status": "passing"}]
                checks[0]["CheckID"] = "serf:" + (svc.get("ID") or svc.get("Service"))
            self.register(b.get("Node", "ext"), b.get("Address", ""), svc, checks)
            return self.reply(200, True)
        if path == "/v1/catalog/deregister":
            inst = STATE["services"].pop(b.get("ServiceID"), None)
            if inst:
                bump([inst["service"]["Service"]])
            return self.reply(200, True)
        return self.reply(404, "not found", ctype="text/plain")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--token")
    ap.add_argument("--start-index", type=int, default=10)
    a = ap.parse_args()
    STATE["token"] = a.token
    STATE["index"] = a.start_index
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=reaper, daemon=True).start()
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
