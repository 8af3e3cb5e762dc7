#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""The differential framing test: weft's framing (the weft_frame binary,
proxy/http.c itself) against h11 (Debian's python3-h11), over the HTTP fuzz
corpus and the smuggling shapes (tests/fuzz/corpus/proxy_http/). Each input
is one request and the response to it; both sides say accept (with where the
message ends and its body length), reject or incomplete. Every difference
must be a row of differences.tsv, with the reason weft differs; a row that no
longer differs fails too, so the table stays true.

usage: run.py WEFT_FRAME_BINARY CORPUS_DIR... [--write-table]
"""
import os
import subprocess
import sys

import h11

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "differences.tsv")


def split_input(data):
    """The fuzz target's layout: piece size byte, request, NUL, response."""
    body = data[1:]
    nul = body.find(b"\0")
    if nul < 0:
        return body, b""
    return body[:nul], body[nul + 1:]


def h11_request_once(req):
    """h11's verdict on @req alone, and the method it read."""
    conn = h11.Connection(our_role=h11.SERVER, max_incomplete_event_size=16384)
    if req:
        conn.receive_data(req)    # empty data would mean EOF to h11
    method, body = None, 0
    try:
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA or isinstance(ev, h11.ConnectionClosed):
                return ("req incomplete" if method else "req incomplete-head"), method
            if ev is h11.PAUSED:
                return "req tunnel", method
            if isinstance(ev, h11.Request):
                method = ev.method.decode("latin-1")
            elif isinstance(ev, h11.Data):
                body += len(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                if conn.their_state is h11.MIGHT_SWITCH_PROTOCOL:
                    return "req tunnel", method
                rest, _ = conn.trailing_data
                return "req accept %s %d %d" % (method, len(req) - len(rest), body), method
    except h11.RemoteProtocolError as e:
        if "Host" in str(e):
            return "req reject-host", None
        return "req reject", None


def h11_request(req):
    """h11's verdict on @req, with two rules that are not framing set aside:
    an HTTP/1.1 request without Host is framed with one added (Host is the
    application's business; weft does not require it), and a head h11 is
    still waiting for is "incomplete-head" (main() asks h11_closed_head()
    whether it would refuse it, when weft did: weft refuses at the first byte
    that breaks the grammar, h11 at the head's end).
    """
    verdict, method = h11_request_once(req)
    if verdict == "req reject-host":
        nl = req.find(b"\n") + 1
        host = b"Host: x\r\n"
        verdict, method = h11_request_once(req[:nl] + host + req[nl:])
        if verdict.startswith("req accept"):
            words = verdict.split(" ")
            words[3] = str(int(words[3]) - len(host))
            verdict = " ".join(words)
    return verdict, method


def h11_closed_head(req):
    """Whether h11 refuses @req's unfinished head once an empty line ends it."""
    closed, _ = h11_request_once(req + b"\r\n\r\n")
    return closed in ("req reject", "req reject-host")


def h11_response(method, resp):
    conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=16384)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    if resp:
        conn.receive_data(resp)
    status, body, eof = 0, 0, False
    try:
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                if eof:
                    return "resp incomplete"
                conn.receive_data(b"")
                eof = True
                continue
            if ev is h11.PAUSED or isinstance(ev, h11.ConnectionClosed):
                return "resp incomplete"
            if isinstance(ev, h11.Response):
                status = ev.status_code
            elif isinstance(ev, h11.Data):
                body += len(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                rest, _ = conn.trailing_data
                return "resp accept %d %d %d" % (status, len(resp) - len(rest), body)
    except h11.RemoteProtocolError:
        return "resp reject"


def h11_verdict(data):
    req, resp = split_input(data)
    r, method = h11_request(req)
    if r.startswith("req accept"):
        try:
            return r + " " + h11_response(method, resp)
        except h11.LocalProtocolError:
            return r
    return r


def weft_verdicts(binary, files):
    out = subprocess.run([binary] + files, check=True, capture_output=True, text=True).stdout
    verdicts = {}
    for line in out.splitlines():
        path, rest = line.split(" ", 1)
        verdicts[path] = rest
    return verdicts


def load_table():
    rows = {}
    with open(TABLE) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, weft, other, reason = line.rstrip("\n").split("\t")
            rows[name] = (weft, other, reason)
    return rows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    write = "--write-table" in sys.argv
    binary, dirs = args[0], args[1:]
    files = sorted(os.path.join(d, f) for d in dirs for f in os.listdir(d))
    weft = weft_verdicts(binary, files)
    table = {} if write else load_table()
    diffs, fails, same = [], 0, 0
    for path in files:
        name = os.path.basename(path)
        with open(path, "rb") as f:
            data = f.read()
        other = h11_verdict(data)
        if other == "req incomplete-head":
            other = "req reject" if weft[path] == "req reject" and \
                h11_closed_head(split_input(data)[0]) else "req incomplete"
        w, o = weft[path], other
        if w == o:
            same += 1
            if name in table:
                print("stale row: %s no longer differs (%s)" % (name, weft[path]))
                fails += 1
            continue
        diffs.append((name, weft[path], other))
        if write:
            continue
        row = table.get(name)
        if not row:
            print("unexplained difference: %s\n  weft: %s\n  h11:  %s" % (name, weft[path], other))
            fails += 1
        elif (row[0], row[1]) != (weft[path], other):
            print("difference changed: %s\n  weft: %s (table: %s)\n  h11:  %s (table: %s)"
                  % (name, weft[path], row[0], other, row[1]))
            fails += 1
    if write:
        for name, w, o in diffs:
            print("%s\t%s\t%s\t?" % (name, w, o))
        return 0
    print("  http-diff: %d inputs, %d framed alike, %d differences, all in %s"
          % (len(files), same, len(diffs), os.path.relpath(TABLE)) if not fails else
          "http-diff: %d failures" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
