#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""An HTTP/1.1 keep-alive backend for the hop-by-hop tests (Python's own
http.server, threaded): it counts the connections it accepts, and answers
each request with the header fields it received ("name: value" lines,
lowercased names) as its body, with a Keep-Alive field of its own.

  GET /stats      "conns N requests M": connections accepted (this one
                  included) and requests answered, /stats excluded
  any /drop-next  answered; the next request on that connection is read
                  and the connection closed without an answer, as a server
                  closing an idle connection the moment a request arrives

Usage: keepalive_server.py IP PORT
"""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
counts = {"conns": 0, "requests": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.drop_next = False
        with lock:
            counts["conns"] += 1

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.drop_next:
            self.close_connection = True
            return
        if self.path == "/stats":
            with lock:
                body = "conns %d requests %d\n" % (counts["conns"], counts["requests"])
        else:
            with lock:
                counts["requests"] += 1
            body = "".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items())
        self.drop_next = self.path == "/drop-next"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Keep-Alive", "timeout=60")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_HEAD = answer

    def log_message(self, fmt, *args):
        # Into the test's backend.log, with the raw request line.
        sys.stderr.write("%r %s\n" % (self.raw_requestline, fmt % args))


def main():
    srv = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
