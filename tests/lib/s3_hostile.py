#!/usr/bin/python3
"""A broken or hostile S3 server for tests/integration/s3_hostile.sh.

  s3_hostile.py PORT TRAP_PORT SCENARIO

Answers path-style requests for any bucket well enough for the responder to
start (the bucket check lists one key) and to find objects (HEAD and GET of
any key: 4 bytes, modified now), and misbehaves as SCENARIO says:

  cycle          listings go back to their first page: page 1 leads to
                 page 2, which leads to page 1 again
  same-token     every page of a listing is empty, truncated, and names the
                 same continuation token
  endless        every page is truncated, with a new token each time, and
                 holds only a <Contents> without a key
  huge           a listing page of 9 MiB
  redirect       GETs and HEADs of objects signed in headers (the responder's
                 own) get a 307 to the trap
  steer          presigned GETs (nginx's) get an X-Accel-Redirect back into
                 nginx, with X-Oci-Presigned-Url naming the trap, and a cookie

TRAP_PORT is a second listener that only records: a request there means a
redirect was followed. Every request of both is printed on stdout as one
line, "S3 METHOD TARGET auth=yes|no" or "TRAP METHOD TARGET auth=yes|no".
"""

import http.server
import socketserver
import sys
import threading
import urllib.parse

SCENARIO = ""
TRAP_PORT = 0
LOCK = threading.Lock()
KEYS = ["blobs/sha256/00/%064x" % i for i in range(1, 5)]


def log(kind, handler):
    auth = "yes" if handler.headers.get("Authorization") else "no"
    with LOCK:
        print("%s %s %s auth=%s" % (kind, handler.command, handler.path, auth), flush=True)


def listing(contents, truncated, token):
    xml = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
           "<IsTruncated>%s</IsTruncated>" % ("true" if truncated else "false")]
    if token:
        xml.append("<NextContinuationToken>%s</NextContinuationToken>" % token)
    for key in contents:
        xml.append("<Contents><Key>%s</Key><LastModified>2099-01-01T00:00:00.000Z"
                   "</LastModified><Size>4</Size></Contents>" % key)
    xml.append("</ListBucketResult>")
    return "".join(xml).encode()


def page(query):
    """The body of a ListObjectsV2 answer for SCENARIO."""
    prefix = query.get("prefix", [""])[0]
    token = query.get("continuation-token", [None])[0]
    keys = [prefix + k for k in KEYS]
    if "max-keys" in query:  # the bucket check at start
        return listing([], False, None)
    if SCENARIO == "cycle":
        return listing(keys[:2], True, "two") if token != "two" else listing(keys[2:], True, "one")
    if SCENARIO == "same-token":
        return listing([], True, "again")
    if SCENARIO == "endless":
        n = int(token[4:]) + 1 if token else 1
        return listing([], True, "page%d" % n).replace(b"</ListBucketResult>",
                                                       b"<Contents></Contents></ListBucketResult>")
    if SCENARIO == "huge":
        pad = "<Padding>%s</Padding>" % ("x" * (9 * 1024 * 1024))
        return listing(keys, False, None).replace(b"<ListBucketResult>", b"<ListBucketResult>" + pad.encode())
    return listing(keys, False, None)


class S3(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def object(self):
        url = urllib.parse.urlsplit(self.path)
        presigned = "X-Amz-Signature=" in url.query
        trap = "http://127.0.0.1:%d/stolen%s" % (TRAP_PORT, url.path)
        if SCENARIO == "redirect" and not presigned:
            return self.answer(307, headers=[("Location", trap)])
        if SCENARIO == "steer" and presigned:
            return self.answer(200, b"evil", [("X-Accel-Redirect", "/_oci_s3/steered"),
                                              ("X-Oci-Presigned-Url", trap),
                                              ("Set-Cookie", "s3=steered; Path=/")])
        self.answer(200, b"data", [("x-amz-meta-mtime", "4070908800"),
                                   ("Last-Modified", "Fri, 01 Jan 2099 00:00:00 GMT")])

    def do_GET(self):
        log("S3", self)
        url = urllib.parse.urlsplit(self.path)
        if url.path.strip("/").count("/") == 0:  # the bucket: a listing
            return self.answer(200, page(urllib.parse.parse_qs(url.query)),
                               [("Content-Type", "application/xml")])
        self.object()

    def do_HEAD(self):
        log("S3", self)
        self.object()

    def do_PUT(self):
        log("S3", self)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.answer(200, b"<CopyObjectResult></CopyObjectResult>")

    do_DELETE = do_HEAD


class Trap(S3):
    def do_GET(self):
        log("TRAP", self)
        self.answer(200, b"trap")

    do_HEAD = do_PUT = do_DELETE = do_GET


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    global SCENARIO, TRAP_PORT
    port, TRAP_PORT, SCENARIO = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    trap = Server(("127.0.0.1", TRAP_PORT), Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    Server(("127.0.0.1", port), S3).serve_forever()


if __name__ == "__main__":
    main()
