#!/usr/bin/python3
"""An upstream registry whose answers carry header values no proxy should pass on.

  badheaders.py PORT --log FILE

Plain HTTP on 127.0.0.1:PORT. GET /v2/ answers {}. A manifest request's tag
picks the answer by its part before the first "." (so a test can ask for
"crtype.nginx" and "crtype.lighttpd" and get two misses of one case):

  crtype     200, Content-Type with a bare CR ("...+json\\rX-Injected: 1"),
             a manifest whose mediaType field is valid
  ctltype    200, Content-Type with a control byte (\\x01), valid mediaType
  crbare     200, Content-Type with a bare CR, a manifest without mediaType
  ctlmedia   200, Content-Type application/json, mediaType with a \\x01
  retrycr    429, Retry-After "7\\rX-Injected: 1"
  retrydate  429, Retry-After an HTTP-date 60 seconds ahead
  retryok    429, Retry-After: 7
  anything else: 404 MANIFEST_UNKNOWN.

Every blob request gets 429 with Retry-After "3\\rX-Injected: 1". 200 answers
carry Docker-Content-Digest. Headers are written as raw bytes, unchecked.
One log line per request. Prints "ready" once it listens; stops on SIGTERM.
"""

import argparse
import email.utils
import hashlib
import http.server
import json
import os
import signal
import sys
import threading
import time

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INJECTED = "\rX-Injected: 1"
LOG_LOCK = threading.Lock()


def manifest(media_type):
    """A small image manifest, with mediaType media_type (None: without the field)."""
    doc = {"schemaVersion": 2}
    if media_type is not None:
        doc["mediaType"] = media_type
    doc["config"] = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
        "size": 2,
    }
    doc["layers"] = []
    return json.dumps(doc).encode()


def retry_date():
    return email.utils.formatdate(time.time() + 60, usegmt=True)


# case -> (status, headers, body)
MANIFEST_CASES = {
    "crtype": lambda: (200, [("Content-Type", OCI_MANIFEST + INJECTED)], manifest(OCI_MANIFEST)),
    "ctltype": lambda: (200, [("Content-Type", OCI_MANIFEST + "\x01")], manifest(OCI_MANIFEST)),
    "crbare": lambda: (200, [("Content-Type", OCI_MANIFEST + INJECTED)], manifest(None)),
    "ctlmedia": lambda: (200, [("Content-Type", "application/json")],
                         manifest(OCI_MANIFEST + "\x01")),
    "retrycr": lambda: (429, [("Retry-After", "7" + INJECTED)], b""),
    "retrydate": lambda: (429, [("Retry-After", retry_date())], b""),
    "retryok": lambda: (429, [("Retry-After", "7")], b""),
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # our own log, one line per request
        pass

    def raw_answer(self, status, headers, body):
        """Writes the answer byte for byte: no check of any header value."""
        if status == 200:
            headers = headers + [("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())]
        elif status == 429:
            body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}).encode()
            headers = headers + [("Content-Type", "application/json")]
        lines = ["HTTP/1.1 %d X" % status] + ["%s: %s" % h for h in headers]
        lines.append("Content-Length: %d" % len(body))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (body if self.command != "HEAD" else b""))
        self.wfile.flush()

    def handle_one(self):
        path = self.path.split("?", 1)[0]
        parts = path.split("/")
        if path == "/v2/":
            status, headers, body = 200, [("Content-Type", "application/json")], b"{}"
        elif len(parts) >= 5 and parts[-2] == "blobs":
            status, headers, body = 429, [("Retry-After", "3" + INJECTED)], b""
        elif len(parts) >= 5 and parts[-2] == "manifests" and parts[-1].split(".")[0] in MANIFEST_CASES:
            status, headers, body = MANIFEST_CASES[parts[-1].split(".")[0]]()
        else:
            status, headers = 404, [("Content-Type", "application/json")]
            body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]}).encode()
        self.raw_answer(status, headers, body)
        with LOG_LOCK, open(self.server.log, "a") as f:
            f.write("%s %s status=%d\n" % (self.command, self.path, status))

    def do_GET(self):
        self.handle_one()

    def do_HEAD(self):
        self.handle_one()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.log = args.log
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
