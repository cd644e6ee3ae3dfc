#!/usr/bin/python3
"""faults.py - upstreams (and a proxy) that fail in the ways real networks do.

  faults.py trickle PORT --log FILE
      An HTTP server that answers every GET with 200, a Content-Length of a
      megabyte, and then 2 bytes every 0.5 s, for as long as the client
      stays: a link that never quite stalls. One log line per request.

  faults.py silent PORT
      Accepts connections and never answers: an upstream that hangs.

  faults.py tls PORT --cert PEM --key PEM
      HTTPS with the given certificate (one the mirror is not told to
      trust); answers 404 to whatever gets through.

  faults.py proxy PORT --log FILE
      An HTTP proxy that only records what it is asked (the request line:
      "CONNECT host:port ..." or "GET http://host/... ") and answers 502.

Every server prints "ready" on stdout once it listens and stops on SIGTERM.
"""

import argparse
import http.server
import os
import signal
import socket
import ssl
import sys
import threading
import time

LOG_LOCK = threading.Lock()
TRICKLE_LENGTH = 1024 * 1024


def log_line(path, text):
    with LOG_LOCK, open(path, "a") as f:
        f.write(text + "\n")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass


class Trickle(Quiet):
    def do_GET(self):
        log_line(self.server.log, "%s %s" % (self.command, self.path))
        self.send_response(200)
        if "/manifests/" in self.path:
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        else:
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(TRICKLE_LENGTH))
        self.end_headers()
        try:
            for _ in range(TRICKLE_LENGTH // 2):
                self.wfile.write(b"{ ")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass  # the client gave up: what we are here to see
        self.close_connection = True


class NotFound(Quiet):
    def do_GET(self):
        body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"nothing here"}]}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Proxy(Quiet):
    def record(self):
        log_line(self.server.log, self.requestline)
        self.send_response(502)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.close_connection = True

    do_CONNECT = do_GET = do_HEAD = record


def ready():
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("ready", flush=True)


def http_server(port, handler, log=None, wrap=None):
    srv = Server(("127.0.0.1", port), handler)
    srv.log = log
    if wrap is not None:
        srv.socket = wrap(srv.socket)
    ready()
    srv.serve_forever()


def silent(port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    held = []
    ready()
    while True:
        conn, _ = listener.accept()
        held.append(conn)  # never read, never answered, closed at exit


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("trickle", "proxy"):
        p = sub.add_parser(name)
        p.add_argument("port", type=int)
        p.add_argument("--log", required=True)
    p = sub.add_parser("silent")
    p.add_argument("port", type=int)
    p = sub.add_parser("tls")
    p.add_argument("port", type=int)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    args = parser.parse_args()
    if args.cmd == "trickle":
        http_server(args.port, Trickle, args.log)
    elif args.cmd == "proxy":
        http_server(args.port, Proxy, args.log)
    elif args.cmd == "silent":
        silent(args.port)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        http_server(args.port, NotFound,
                    wrap=lambda s: ctx.wrap_socket(s, server_side=True))


if __name__ == "__main__":
    sys.exit(main())
