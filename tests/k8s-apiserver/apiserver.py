#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""A fake Kubernetes API server for weft's tests: just enough of the real wire
format to drive the agent's unchanged Kubernetes watcher.

Serves Namespaces, Services, discovery.k8s.io/v1 EndpointSlices and Pods:

- lists: {"kind": "ServiceList", "metadata": {"resourceVersion", "continue",
  "remainingItemCount"}, "items": [...]} with items lacking kind/apiVersion as
  the real server sends them; limit/continue pagination over a consistent
  snapshot; a continue token older than the compaction point is 410 Gone;
- watches (?watch=1): chunked streams of one JSON event per line, ADDED,
  MODIFIED, DELETED, BOOKMARK (with allowWatchBookmarks) and ERROR, starting
  after the given resourceVersion from a bounded event history; a version
  older than the history is 410 Gone, as an ERROR event (the watch cache's
  way) or as an HTTP 410 (--gone http or the control call); timeoutSeconds
  ends the stream cleanly;
- namespaced paths: /api/v1/namespaces/NS/<plural> (a list or watch of one
  namespace) and /api/v1/namespaces/NS/<plural>/NAME (GET one object, 404
  as a Status when absent); ConfigMaps are also created (POST, 409 when
  the name is taken) and replaced (PUT, 404 when absent; a stale
  metadata.resourceVersion is 409 Conflict);
- fieldSelector=spec.nodeName=X for Pods (no other selector);
- TokenReview (POST /apis/authentication.k8s.io/v1/tokenreviews, caller
  authenticated like every request): the tokens registered with
  /_control/tokens, each with its user (username, uid, groups, extra, as a
  pod-bound ServiceAccount token carries authentication.kubernetes.io/
  node-name and pod-name) and audiences. As the real server answers: 201
  with the review, status.authenticated true, the user and the audiences
  both sides share; an unknown token, one none of whose audiences was
  asked for, or one bound to a pod that no longer exists (the pod-name
  extra, in the ServiceAccount's namespace), is 201 too with authenticated
  absent and status.error;
- authentication: "Authorization: Bearer <token>" (401 otherwise; the token
  can change at run time) or a TLS client certificate signed by --client-ca.

It binds 127.0.0.1 only, on a free port written to --port-file. Tests steer it
with plain HTTP calls under /_control/ (no authentication, loopback only):

  POST /_control/apply    {"objects": [obj...]}      create or replace
  POST /_control/delete   {"kind", "namespace", "name"}
  POST /_control/token    {"token": "..."}            accept only this one now
  POST /_control/tokens   {"token", "user", "audiences"}  TokenReview knows this
                          token from now on ({"token", "delete": true}: forgets it)
  POST /_control/drop     {"abrupt": bool}            end every open watch
  POST /_control/compact  {}                          forget the event history
  POST /_control/down     {"down": bool}              close every connection at once
  POST /_control/gone     {"mode": "event"|"http"}    how a too old version is told
  POST /_control/expire_continue {}                   the next continue token is 410 Gone
  POST /_control/fail     {"status", "count", "retry_after"}  answer the next
                          COUNT API requests with an HTML error page (a proxy)
  POST /_control/bookmarks {"interval": seconds}      0: none
  POST /_control/bulk     {"namespace", "services", "endpoints_per_slice",
                           "slices_per_service"}      load a big cluster at once
  POST /_control/evictions {"refuse": count}         answer the next COUNT
                          evictions 429, as a PodDisruptionBudget that
                          allows no disruption does
  GET  /_control/stats                                request counters
  GET  /_control/event_times?since=RV                 per event after RV: when it was
                          recorded and when its first write to a watch stream
                          began (CLOCK_MONOTONIC seconds, as time.monotonic())

Evictions: POST /api/v1/namespaces/NS/pods/NAME/eviction with a policy/v1
(or v1beta1) Eviction body, as the real server answers them: 400 for a body
that is not one or names another pod, 404 for a pod that does not exist,
409 when deleteOptions.preconditions.uid is not the pod's, 429 while refused,
else 201 with a Success Status and the pod deleted (a watch sees DELETED).
"""

import argparse
import base64
import bisect
import json
import os
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# path -> (plural, kind, apiVersion, list kind, namespaced)
RESOURCES = {
    "/api/v1/namespaces": ("namespaces", "Namespace", "v1", "NamespaceList", False),
    "/api/v1/services": ("services", "Service", "v1", "ServiceList", True),
    "/apis/discovery.k8s.io/v1/endpointslices": (
        "endpointslices", "EndpointSlice", "discovery.k8s.io/v1", "EndpointSliceList", True),
    "/api/v1/pods": ("pods", "Pod", "v1", "PodList", True),
    "/api/v1/configmaps": ("configmaps", "ConfigMap", "v1", "ConfigMapList", True),
}
BY_KIND = {r[1]: r for r in RESOURCES.values()}
BY_PLURAL = {r[0]: r for r in RESOURCES.values()}
SNAPSHOTS_MAX = 64
EVENT_TIMES_MAX = 100000


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class State:
    """Everything the server knows, under one lock (a condition: watches wait on it)."""

    def __init__(self, token, history_max, bookmark_interval, gone_mode):
        self.cond = threading.Condition()
        self.rv = 1
        self.objects = {plural: {} for plural in BY_PLURAL}
        self.history = []          # (rv, plural, type, object), rv ascending
        self.history_max = history_max
        self.compacted = 0         # a watch from a version below this is 410 Gone
        self.token = token
        self.down = False
        self.gone_mode = gone_mode
        self.bookmark_interval = bookmark_interval
        self.drop_gen = 0
        self.drop_abrupt = False
        self.snapshots = {}        # continue id -> (rv, items)
        self.expire_continue = False
        self.fail = None           # {"status", "count", "retry_after"}
        self.stats = {"lists": {p: 0 for p in BY_PLURAL}, "list_pages": {p: 0 for p in BY_PLURAL},
                      "watches": {p: 0 for p in BY_PLURAL}, "watch_rvs": {p: [] for p in BY_PLURAL},
                      "unauthorized": 0, "gone": 0, "open_watches": 0, "field_selectors": [],
                      "evictions": [], "evictions_refused": 0, "tokenreviews": 0,
                      "writes": {p: 0 for p in BY_PLURAL}}
        self.tokens = {}           # TokenReview: token -> {"user", "audiences"}
        # rv -> [recorded, first written to a watch stream or None], in
        # CLOCK_MONOTONIC seconds: lets a benchmark split a change's latency
        # into the server's part and the client's.
        self.event_times = {}
        self.refuse_evictions = 0

    # -- changes (caller holds the lock)
    def _record(self, plural, etype, obj):
        self.history.append((self.rv, plural, etype, obj))
        self.event_times[self.rv] = [time.monotonic(), None]
        while len(self.event_times) > EVENT_TIMES_MAX:
            del self.event_times[next(iter(self.event_times))]
        while len(self.history) > self.history_max:
            self.compacted = self.history.pop(0)[0]
        self.cond.notify_all()

    def apply(self, obj, record=True):
        res = BY_KIND[obj["kind"]]
        meta = obj.setdefault("metadata", {})
        if res[4]:
            meta["namespace"] = meta.get("namespace") or "default"
        key = (meta.get("namespace", ""), meta["name"])
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        meta.setdefault("uid", str(uuid.uuid4()))
        store = self.objects[res[0]]
        etype = "MODIFIED" if key in store else "ADDED"
        store[key] = obj
        if record:
            self._record(res[0], etype, obj)

    def delete(self, kind, ns, name):
        res = BY_KIND[kind]
        key = (ns if res[4] else "", name)
        old = self.objects[res[0]].pop(key, None)
        if old is None:
            return False
        self.rv += 1
        gone = dict(old)
        gone["metadata"] = dict(old["metadata"], resourceVersion=str(self.rv))
        self._record(res[0], "DELETED", gone)
        return True

    def compact(self):
        self.history.clear()
        self.compacted = self.rv
        self.snapshots.clear()


def route(path):
    """(resource, namespace, name) of an API path; (None, None, None) when unknown.
    Cluster paths give namespace None (every namespace) and name None."""
    res = RESOURCES.get(path)
    if res is not None:
        return res, None, None
    parts = path.split("/")
    # "", api, v1, namespaces, NS, plural[, NAME]
    if len(parts) in (6, 7) and parts[1:4] == ["api", "v1", "namespaces"]:
        res = BY_PLURAL.get(parts[5])
        if res is not None and res[4] and res[2] == "v1":
            return res, parts[4], parts[6] if len(parts) == 7 else None
    return None, None, None


def matches(obj, node, ns=None):
    return ((node is None or (obj.get("spec") or {}).get("nodeName") == node)
            and (ns is None or obj["metadata"].get("namespace") == ns))


def strip(obj):
    """A list item as the real server sends it: without kind and apiVersion."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "weft-fake-apiserver"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("apiserver: " + (fmt % args) + "\n")

    def setup(self):
        # The TLS handshake runs here, on the connection's own thread, so a
        # slow client never blocks accept().
        # Headers and body go out in separate writes: without this, Nagle
        # and delayed ACKs add 40 ms to every response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    # -- plumbing
    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_html(self, code, retry_after):
        body = b"<html><body><h1>%d</h1>upstream unavailable</body></html>\n" % code
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        if retry_after:
            self.send_header("Retry-After", str(retry_after))
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def slam(self):
        """Drop the connection without a word (a crashed server, a cut cable)."""
        self.close_connection = True
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def authorized(self):
        st = self.server.state
        if isinstance(self.request, ssl.SSLSocket) and self.request.getpeercert():
            return True
        return self.headers.get("Authorization") == "Bearer " + st.token

    # -- requests
    def do_GET(self):
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == "/_control/stats":
            with self.server.state.cond:
                return self.send_json(200, self.server.state.stats)
        if url.path == "/_control/event_times":
            since = int(q.get("since") or 0)
            with self.server.state.cond:
                times = [{"rv": rv, "recorded": t[0], "written": t[1]}
                         for rv, t in self.server.state.event_times.items() if rv > since]
            return self.send_json(200, {"events": times})
        st = self.server.state
        if st.down:
            return self.slam()
        with st.cond:
            fail = st.fail
            if fail and fail["count"] > 0:
                fail["count"] -= 1
            else:
                fail = None
        if fail:
            return self.send_html(fail["status"], fail.get("retry_after"))
        res, ns, name = route(url.path)
        if res is None:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        if not self.authorized():
            with st.cond:
                st.stats["unauthorized"] += 1
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        node = None
        fs = q.get("fieldSelector", "")
        if fs:
            if res[0] != "pods" or not fs.startswith("spec.nodeName="):
                return self.send_json(400, status(400, "BadRequest", "unsupported field selector " + fs))
            node = fs[len("spec.nodeName="):]
            with st.cond:
                st.stats["field_selectors"].append(fs)
        if name is not None:
            with st.cond:
                obj = st.objects[res[0]].get((ns, name))
            if obj is None:
                return self.send_json(404, status(404, "NotFound", '%s "%s" not found' % (res[0], name)))
            return self.send_json(200, obj)
        if q.get("watch") in ("1", "true"):
            return self.watch(res, q, node, ns)
        return self.list(res, q, node, ns)

    def list(self, res, q, node, ns=None):
        st = self.server.state
        limit = int(q.get("limit") or 0)
        cont = q.get("continue")
        with st.cond:
            if cont:
                sid, offset = json.loads(base64.b64decode(cont))
                snap = st.snapshots.get(sid)
                if st.expire_continue:
                    st.expire_continue, snap = False, None
                if snap is None or snap[0] < st.compacted:
                    st.stats["gone"] += 1
                    return self.send_json(410, status(410, "Expired",
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter."))
            else:
                items = [o for k, o in sorted(st.objects[res[0]].items())
                         if matches(o, node) and (ns is None or k[0] == ns)]
                snap = (st.rv, items)
                sid, offset = uuid.uuid4().hex, 0
                st.snapshots[sid] = snap
                while len(st.snapshots) > SNAPSHOTS_MAX:
                    del st.snapshots[next(iter(st.snapshots))]
                st.stats["lists"][res[0]] += 1
            st.stats["list_pages"][res[0]] += 1
        rv, items = snap
        end = offset + limit if limit else len(items)
        meta = {"resourceVersion": str(rv)}
        if end < len(items):
            meta["continue"] = base64.b64encode(json.dumps([sid, end]).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        else:
            with st.cond:
                st.snapshots.pop(sid, None)
        self.send_json(200, {"kind": res[3], "apiVersion": res[2], "metadata": meta,
                             "items": [strip(o) for o in items[offset:end]]})

    def watch(self, res, q, node, ns=None):
        st = self.server.state
        plural = res[0]
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        rv = q.get("resourceVersion", "")
        initial = []
        with st.cond:
            st.stats["watches"][plural] += 1
            st.stats["watch_rvs"][plural].append(rv)
            gen = st.drop_gen
            if rv in ("", "0"):
                # "Get state and start at most recent": synthetic ADDEDs.
                cursor = st.rv
                initial = [o for _, o in sorted(st.objects[plural].items()) if matches(o, node, ns)]
            else:
                cursor = int(rv)
                if cursor < st.compacted:
                    st.stats["gone"] += 1
                    gone = status(410, "Expired", "too old resource version: %d (%d)" % (cursor, st.compacted))
                    if st.gone_mode == "http":
                        return self.send_json(410, gone)
                    initial = None
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if initial is None:
            self.chunk(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            self.chunk(b"")
            return
        with st.cond:
            st.stats["open_watches"] += 1
        try:
            self.stream(res, node, cursor, initial, bookmarks, timeout, gen, ns)
        except OSError:
            self.close_connection = True
        finally:
            with st.cond:
                st.stats["open_watches"] -= 1

    def stream(self, res, node, cursor, initial, bookmarks, timeout, gen, ns=None):
        st = self.server.state
        plural, kind, api = res[0], res[1], res[2]
        for o in initial:
            self.chunk(json.dumps({"type": "ADDED", "object": o}).encode() + b"\n")
        start = last_bookmark = time.monotonic()
        while True:
            with st.cond:
                while True:
                    now = time.monotonic()
                    if st.drop_gen != gen or st.down:
                        abrupt = st.drop_abrupt or st.down
                        break
                    if cursor < st.compacted:
                        abrupt = None
                        break
                    i = bisect.bisect_right(st.history, cursor, key=lambda e: e[0])
                    events = [(e[2], e[3]) for e in st.history[i:]
                              if e[1] == plural and matches(e[3], node, ns)]
                    newest = st.rv
                    due = bookmarks and st.bookmark_interval > 0 and now - last_bookmark >= st.bookmark_interval
                    if events or due or (timeout is not None and now - start >= timeout):
                        abrupt = False
                        break
                    st.cond.wait(0.05)
                compacted = st.compacted
            if abrupt:
                return self.slam()
            if abrupt is None:
                gone = status(410, "Expired", "too old resource version: %d (%d)" % (cursor, compacted))
                self.chunk(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
                return self.chunk(b"")
            if st.drop_gen != gen:
                return self.chunk(b"")
            # Every event up to "newest" was looked at: that is where we are.
            for etype, o in events:
                data = json.dumps({"type": etype, "object": o}).encode() + b"\n"
                # Taken as the write starts: the client's share measured from
                # here is, if anything, overstated (never negative).
                written = time.monotonic()
                self.chunk(data)
                with st.cond:
                    t = st.event_times.get(int(o["metadata"]["resourceVersion"]))
                    if t is not None and t[1] is None:
                        t[1] = written
            cursor = newest
            if due:
                last_bookmark = now
                bm = {"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api,
                      "metadata": {"resourceVersion": str(cursor)}}}
                self.chunk(json.dumps(bm).encode() + b"\n")
            if timeout is not None and time.monotonic() - start >= timeout:
                return self.chunk(b"")

    def evict(self, ns, name, body):
        st = self.server.state
        if not self.authorized():
            with st.cond:
                st.stats["unauthorized"] += 1
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        if (not isinstance(body, dict) or body.get("kind") != "Eviction"
                or body.get("apiVersion") not in ("policy/v1", "policy/v1beta1")):
            return self.send_json(400, status(400, "BadRequest",
                                              "the body is not a policy/v1 Eviction"))
        meta = body.get("metadata") or {}
        if meta.get("name") != name:
            return self.send_json(400, status(400, "BadRequest",
                                              "name in URL does not match name in Eviction object"))
        if meta.get("namespace") not in (None, "", ns):
            return self.send_json(400, status(400, "BadRequest",
                                              "namespace in URL does not match namespace in Eviction object"))
        with st.cond:
            pod = st.objects["pods"].get((ns, name))
            if pod is None:
                return self.send_json(404, status(404, "NotFound", 'pods "%s" not found' % name))
            uid = (((body.get("deleteOptions") or {}).get("preconditions") or {}).get("uid"))
            if uid and uid != pod["metadata"].get("uid"):
                return self.send_json(409, status(
                    409, "Conflict",
                    'Operation cannot be fulfilled on Pod "%s": Precondition failed: UID in '
                    'precondition: %s, UID in object meta: %s' % (name, uid, pod["metadata"].get("uid"))))
            if st.refuse_evictions > 0:
                st.refuse_evictions -= 1
                st.stats["evictions_refused"] += 1
                refused = status(429, "TooManyRequests",
                                 "Cannot evict pod as it would violate the pod's disruption budget.")
                refused["details"] = {"causes": [{"reason": "DisruptionBudget", "message":
                                      "The disruption budget needs 1 healthy pods and has 1 currently"}]}
                return self.send_json(429, refused)
            st.stats["evictions"].append(ns + "/" + name)
            st.delete("Pod", ns, name)
        self.send_json(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                             "status": "Success", "code": 201})

    def token_review(self, body):
        """authentication.k8s.io/v1 TokenReview, answered as the real server does."""
        st = self.server.state
        if not self.authorized():
            with st.cond:
                st.stats["unauthorized"] += 1
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        if (not isinstance(body, dict) or body.get("kind") != "TokenReview"
                or body.get("apiVersion") != "authentication.k8s.io/v1"):
            return self.send_json(400, status(400, "BadRequest", "the body is not an authentication.k8s.io/v1 TokenReview"))
        spec = body.get("spec") or {}
        token = spec.get("token") or ""
        wanted = spec.get("audiences") or []
        with st.cond:
            st.stats["tokenreviews"] += 1
            known = st.tokens.get(token)
            if known is not None:
                # A pod-bound token dies with its pod (the pod named in its
                # extra, in its ServiceAccount's namespace).
                user = known["user"]
                pod = ((user.get("extra") or {}).get("authentication.kubernetes.io/pod-name") or [None])[0]
                parts = (user.get("username") or "").split(":")
                if pod and len(parts) == 4 and (parts[2], pod) not in st.objects["pods"]:
                    known = {"gone": 'pod "%s" not found' % pod}
        review = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                  "metadata": {"creationTimestamp": None}, "spec": spec}
        if known is None:
            review["status"] = {"user": {}, "error": "[invalid bearer token, service account token has been invalidated]"}
        elif "gone" in known:
            review["status"] = {"user": {}, "error": "[invalid bearer token, %s]" % known["gone"]}
        else:
            shared = [a for a in known["audiences"] if a in wanted] if wanted else list(known["audiences"])
            if wanted and not shared:
                review["status"] = {"user": {}, "error": "[invalid bearer token, token audiences %s is invalid for the target audiences %s]"
                                    % (json.dumps(known["audiences"]), json.dumps(wanted))}
            else:
                review["status"] = {"authenticated": True, "user": known["user"], "audiences": shared}
        self.send_json(201, review)

    def write_object(self, res, ns, name, body):
        """Create (name None: POST) or replace (PUT) one object, as the real server does."""
        st = self.server.state
        if not self.authorized():
            with st.cond:
                st.stats["unauthorized"] += 1
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        if not isinstance(body, dict) or body.get("kind") != res[1] or body.get("apiVersion") != res[2]:
            return self.send_json(400, status(400, "BadRequest", "the body is not a %s %s" % (res[2], res[1])))
        meta = body.setdefault("metadata", {})
        if meta.get("namespace") not in (None, "", ns):
            return self.send_json(400, status(400, "BadRequest",
                                              "the namespace of the provided object does not match the namespace sent on the request"))
        if name is not None and meta.get("name") != name:
            return self.send_json(400, status(400, "BadRequest",
                                              "the name of the object (%s) does not match the name on the URL (%s)" % (meta.get("name"), name)))
        meta["namespace"] = ns
        key = (ns, meta.get("name"))
        with st.cond:
            old = st.objects[res[0]].get(key)
            if name is None and old is not None:
                return self.send_json(409, status(409, "AlreadyExists", '%s "%s" already exists' % (res[0], key[1])))
            if name is not None and old is None:
                return self.send_json(404, status(404, "NotFound", '%s "%s" not found' % (res[0], name)))
            rv = meta.get("resourceVersion")
            if old is not None and rv and rv != old["metadata"]["resourceVersion"]:
                return self.send_json(409, status(409, "Conflict",
                    "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                    "please apply your changes to the latest version and try again" % (res[0], name)))
            if old is not None:
                meta["uid"] = old["metadata"]["uid"]
            meta.pop("resourceVersion", None)
            st.apply(body)
            st.stats["writes"][res[0]] += 1
        self.send_json(201 if name is None else 200, body)

    def do_PUT(self):
        st = self.server.state
        url = urlsplit(self.path)
        body = read_body(self)
        res, ns, name = route(url.path)
        if res is None or res[0] != "configmaps" or name is None:
            return self.send_json(405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
        if st.down:
            return self.slam()
        return self.write_object(res, ns, name, body)

    def do_POST(self):
        st = self.server.state
        url = urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self.send_json(400, status(400, "BadRequest", "the body is not JSON"))
        if url.path == "/apis/authentication.k8s.io/v1/tokenreviews":
            if st.down:
                return self.slam()
            return self.token_review(body)
        res, ns, name = route(url.path)
        if res is not None and res[0] == "configmaps" and ns is not None and name is None:
            if st.down:
                return self.slam()
            return self.write_object(res, ns, None, body)
        parts = url.path.split("/")
        # "", api, v1, namespaces, NS, pods, NAME, eviction
        if len(parts) == 8 and parts[1:4] == ["api", "v1", "namespaces"] and parts[5] == "pods" \
                and parts[7] == "eviction":
            if st.down:
                return self.slam()
            return self.evict(parts[4], parts[6], body)
        with st.cond:
            if url.path == "/_control/apply":
                for o in body["objects"]:
                    st.apply(o)
            elif url.path == "/_control/delete":
                st.delete(body["kind"], body.get("namespace", ""), body["name"])
            elif url.path == "/_control/token":
                st.token = body["token"]
            elif url.path == "/_control/tokens":
                if body.get("delete"):
                    st.tokens.pop(body["token"], None)
                else:
                    st.tokens[body["token"]] = {"user": body["user"],
                                                "audiences": body.get("audiences") or []}
            elif url.path == "/_control/drop":
                st.drop_abrupt = bool(body.get("abrupt"))
                st.drop_gen += 1
                st.cond.notify_all()
            elif url.path == "/_control/compact":
                st.compact()
            elif url.path == "/_control/down":
                st.down = bool(body["down"])
                st.cond.notify_all()
            elif url.path == "/_control/gone":
                st.gone_mode = body["mode"]
            elif url.path == "/_control/fail":
                st.fail = dict(body)
            elif url.path == "/_control/expire_continue":
                st.expire_continue = True
            elif url.path == "/_control/bookmarks":
                st.bookmark_interval = float(body["interval"])
            elif url.path == "/_control/evictions":
                st.refuse_evictions = int(body.get("refuse", 0))
            elif url.path == "/_control/bulk":
                bulk(st, body)
            else:
                return self.send_json(404, status(404, "NotFound", url.path))
            rv = st.rv
        self.send_json(200, {"resourceVersion": str(rv)})


def read_body(handler):
    n = int(handler.headers.get("Content-Length") or 0)
    try:
        return json.loads(handler.rfile.read(n) or b"{}")
    except ValueError:
        return None


def bulk(st, spec):
    """A big cluster in one step (no history: as if it had always been there)."""
    ns = spec.get("namespace", "bench")
    n_svc = int(spec.get("services", 0))
    per_slice = int(spec.get("endpoints_per_slice", 10))
    slices = int(spec.get("slices_per_service", 1))
    st.apply({"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": ns, "labels": {"weft.io/mesh": "enabled"}}}, record=False)
    for s in range(n_svc):
        name = "svc-%d" % s
        vip = "198.19.%d.%d" % (s // 250, s % 250 + 1)
        st.apply({"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": name, "namespace": ns},
                  "spec": {"clusterIP": vip, "clusterIPs": [vip],
                           "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}, record=False)
        for k in range(slices):
            eps = []
            for e in range(per_slice):
                i = (s * slices + k) * per_slice + e
                eps.append({"addresses": ["198.18.%d.%d" % (i // 250 % 256, i % 250 + 1)],
                            "conditions": {"ready": True}, "nodeName": "node-%d" % (i % 50)})
            st.apply({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "metadata": {"name": "%s-%d" % (name, k), "namespace": ns,
                                   "labels": {"kubernetes.io/service-name": name}},
                      "addressType": "IPv4", "endpoints": eps,
                      "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}, record=False)
    st.compacted = st.rv


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, ctx, verbose):
        self.state, self.ctx, self.verbose = state, ctx, verbose
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ctx is not None:
            sock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        # Clients hang up mid-stream all the time here; that is the point.
        if self.verbose:
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0: a free port")
    ap.add_argument("--port-file", required=True, help="where the port is written once listening")
    ap.add_argument("--cert", help="server certificate (PEM); without it, plain HTTP")
    ap.add_argument("--key", help="its key")
    ap.add_argument("--client-ca", help="accept client certificates signed by this CA")
    ap.add_argument("--token", default="weft-test-token")
    ap.add_argument("--history", type=int, default=10000, help="events kept for watches")
    ap.add_argument("--bookmarks", type=float, default=1.0, help="seconds between bookmarks, 0: none")
    ap.add_argument("--gone", choices=("event", "http"), default="event")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            ctx.load_verify_locations(args.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    state = State(args.token, args.history, args.bookmarks, args.gone)
    # Loopback only: the test bed never listens anywhere else.
    srv = Server(("127.0.0.1", args.port), state, ctx, args.verbose)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
