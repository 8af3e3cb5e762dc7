#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Write the named seeds of the HTTP fuzz target (and of the differential
test, tests/http_diff/) into tests/fuzz/corpus/proxy_http/: well-formed
exchanges, responses without a body by status or method, and the request
smuggling and response splitting shapes weft refuses. Each file is the fuzz
target's input: a piece-size byte, the client's bytes, a NUL, the upstream's.
A NUL cannot appear in the client's bytes of a seed (it ends them): the NUL
shapes are tested end to end in tests/integration/test_http_strict.c.

usage: http_shapes.py  (rewrites the shape-* files; review with git diff)
"""
import os

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
GET = b"GET / HTTP/1.1\r\nHost: a\r\n"
POST = b"POST / HTTP/1.1\r\nHost: a\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"
BODY5 = b"5\r\nhello\r\n0\r\n\r\n"

# name: (client bytes, upstream bytes)
SHAPES = {
    # well-formed: both parsers must frame these alike
    "get": (GET + b"\r\n", OK),
    "get-pipelined": (GET + b"\r\n" + GET + b"\r\n", OK),
    "post-cl": (POST + b"Content-Length: 5\r\n\r\nhello", OK),
    "post-cl-ows": (POST + b"Content-Length: \t 5 \t\r\n\r\nhello", OK),
    "post-cl-zero": (POST + b"Content-Length: 0\r\n\r\n", OK),
    "post-chunked": (POST + CHUNKED + b"\r\n" + BODY5, OK),
    "post-chunked-upper": (POST + b"Transfer-Encoding: CHUNKED\r\n\r\n" + BODY5, OK),
    "post-chunked-ext": (POST + CHUNKED + b"\r\n5;a=b;c=\"x y\"\r\nhello\r\n0\r\n\r\n", OK),
    "post-chunked-trailer": (POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", OK),
    "post-chunked-two": (POST + CHUNKED + b"\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n", OK),
    "post-expect-100": (POST + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
                        b"HTTP/1.1 100 Continue\r\n\r\n" + OK),
    "http10-get": (b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nuntil close"),
    "head-cl": (b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"),
    "head-chunked": (b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
                     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "resp-304-cl": (GET + b"\r\n", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
    "resp-204-cl": (GET + b"\r\n", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
    "resp-204-chunked": (GET + b"\r\n",
                         b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"),
    "resp-100-cl": (POST + b"Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
                    b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n" + OK),
    "resp-103-then-200": (GET + b"\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK),
    "resp-chunked": (GET + b"\r\n",
                     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + BODY5),
    "resp-until-close": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\n\r\nuntil close"),
    "resp-no-reason": (GET + b"\r\n", b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
    "connect": (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"),
    "upgrade": (GET + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
    # request smuggling: refused with 400, never forwarded
    "cl-te": (POST + b"Content-Length: 5\r\n" + CHUNKED + b"\r\n" + BODY5, OK),
    "te-cl": (POST + CHUNKED + b"Content-Length: 5\r\n\r\n" + BODY5, OK),
    "cl-dup-differ": (POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", OK),
    "cl-dup-same": (POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", OK),
    "cl-list": (POST + b"Content-Length: 5, 5\r\n\r\nhello", OK),
    "cl-sign-plus": (POST + b"Content-Length: +5\r\n\r\nhello", OK),
    "cl-sign-minus": (POST + b"Content-Length: -5\r\n\r\nhello", OK),
    "cl-inner-space": (POST + b"Content-Length: 1 2\r\n\r\nhello", OK),
    "cl-hex": (POST + b"Content-Length: 0x5\r\n\r\nhello", OK),
    "cl-overflow": (POST + b"Content-Length: 99999999999999999999999\r\n\r\nhello", OK),
    "cl-empty": (POST + b"Content-Length: \r\n\r\nhello", OK),
    "te-gzip": (POST + b"Transfer-Encoding: gzip\r\n\r\n" + BODY5, OK),
    "te-identity": (POST + b"Transfer-Encoding: identity\r\n\r\nhello", OK),
    "te-gzip-chunked": (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + BODY5, OK),
    "te-chunked-gzip": (POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n" + BODY5, OK),
    "te-dup": (POST + CHUNKED + CHUNKED + b"\r\n" + BODY5, OK),
    "te-xchunked": (POST + b"Transfer-Encoding: xchunked\r\n\r\n" + BODY5, OK),
    "te-http10": (b"POST / HTTP/1.0\r\n" + CHUNKED + b"\r\n" + BODY5, OK),
    "ws-before-colon-cl": (POST + b"Content-Length : 5\r\n\r\nhello", OK),
    "ws-before-colon-te": (POST + b"Transfer-Encoding : chunked\r\n\r\n" + BODY5, OK),
    "tab-before-colon": (POST + b"Content-Length\t: 5\r\n\r\nhello", OK),
    "obs-fold": (GET + b"X-A: a\r\n b\r\n\r\n", OK),
    "obs-fold-te": (POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n" + BODY5, OK),
    "obs-fold-first": (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", OK),
    "bare-lf-header": (b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", OK),
    "bare-lf-request-line": (b"GET / HTTP/1.1\nHost: a\r\n\r\n", OK),
    "bare-lf-end": (GET + b"\n", OK),
    "bare-lf-all": (b"GET / HTTP/1.1\nHost: a\n\n", OK),
    "bare-cr-value": (GET + b"X-A: a\rb\r\n\r\n", OK),
    "bare-cr-end": (GET + b"\r\r\n", OK),
    "ctl-value": (GET + b"X-A: a\x01b\r\n\r\n", OK),
    "del-value": (GET + b"X-A: a\x7fb\r\n\r\n", OK),
    "ctl-name": (GET + b"X\x01A: b\r\n\r\n", OK),
    "vt-value": (GET + b"X-A: a\x0bb\r\n\r\n", OK),
    "no-colon": (GET + b"X-A b\r\n\r\n", OK),
    "chunk-size-invalid": (POST + CHUNKED + b"\r\ng\r\nhello\r\n0\r\n\r\n", OK),
    "chunk-size-negative": (POST + CHUNKED + b"\r\n-5\r\nhello\r\n0\r\n\r\n", OK),
    "chunk-size-0x": (POST + CHUNKED + b"\r\n0x5\r\nhello\r\n0\r\n\r\n", OK),
    "chunk-size-trailing-ws": (POST + CHUNKED + b"\r\n5 \r\nhello\r\n0\r\n\r\n", OK),
    "chunk-size-overflow": (POST + CHUNKED + b"\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", OK),
    "chunk-size-bare-lf": (POST + CHUNKED + b"\r\n5\nhello\r\n0\r\n\r\n", OK),
    "chunk-ext-bare-lf": (POST + CHUNKED + b"\r\n5;a\nhello\r\n0\r\n\r\n", OK),
    "chunk-ext-ctl": (POST + CHUNKED + b"\r\n5;a\x01\r\nhello\r\n0\r\n\r\n", OK),
    "chunk-ext-no-name": (POST + CHUNKED + b"\r\n5;\r\nhello\r\n0\r\n\r\n", OK),
    "chunk-ext-bare-cr": (POST + CHUNKED + b"\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", OK),
    "chunk-data-long": (POST + CHUNKED + b"\r\n5\r\nhelloX\r\n0\r\n\r\n", OK),
    "chunk-data-bare-lf": (POST + CHUNKED + b"\r\n5\r\nhello\n0\r\n\r\n", OK),
    "chunk-last-bare-lf": (POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\n\n", OK),
    "trailer-obs-fold": (POST + CHUNKED + b"\r\n5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n", OK),
    "version-http2": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", OK),
    "connect-cl": (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\nhello",
                   OK),
    # the same shapes from the upstream: 502, the upstream closed
    "resp-cl-te": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + CHUNKED +
                   b"\r\n2\r\nok\r\n0\r\n\r\n"),
    "resp-cl-dup-differ": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                           b"Content-Length: 3\r\n\r\nok!"),
    "resp-ws-before-colon": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"),
    "resp-obs-fold": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2"
                      b"\r\n\r\nok"),
    "resp-bare-lf": (GET + b"\r\n", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    "resp-bare-cr": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok"),
    "resp-te-gzip": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok"),
    "resp-chunk-invalid": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\n" + CHUNKED + b"\r\nz\r\nok\r\n"
                           b"0\r\n\r\n"),
    "resp-cl-sign": (GET + b"\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"),
    "resp-101-unasked": (GET + b"\r\n", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
    "resp-status-short": (GET + b"\r\n", b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok"),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "proxy_http")
    for name in os.listdir(out):
        if name.startswith("shape-"):
            os.unlink(os.path.join(out, name))
    for name, (req, resp) in SHAPES.items():
        assert b"\0" not in req, name
        # Piece size 1 + 4 * 255: whole messages, as one read delivers them;
        # the fuzzer mutates the first byte to split them.
        with open(os.path.join(out, "shape-" + name), "wb") as f:
            f.write(b"\xff" + req + b"\0" + resp)


if __name__ == "__main__":
    main()
