#!/usr/bin/python3
"""Small HTTP servers that play parts of the registry world in the integration tests.

  servers.py token PORT --cert PEM --key PEM --service S --issuer I --users FILE
                        [--public PREFIX] [--tls-cert PEM --tls-key PEM] --log FILE
      A token server (docker/distribution "token" auth), over HTTPS with
      --tls-cert and --tls-key: GET /token?service=&scope=
      answers {"token", "access_token", "expires_in", "issued_at"} with an RS256
      JWT whose header carries the signing certificate as x5c. Anonymous
      requests get pull on repositories starting with PREFIX (default
      "test/pub"); users of FILE ("name:password" lines) get pull and push on
      everything; wrong credentials get 401. An unknown service or a malformed
      scope gets 400. One log line per request, without any secret.

  servers.py redirect PORT CDN-PORT --backend URL --cafile PEM --log FILE
      An upstream registry (plain HTTP on PORT) that proxies BACKEND but
      answers blob GETs, once the backend granted them, with a 307 to
      http://127.0.0.1:CDN-PORT/, where the blob is served like a CDN serves
      signed URLs: a request that carries an Authorization header is refused
      with 400. The log records which requests carried credentials (never
      their value).

  servers.py static PORT --layout DIR --mode-file FILE --log FILE
      A minimal read-only registry (plain HTTP) serving an OCI image layout:
      manifests by tag (the layout's ref.name annotations) or digest, and
      blobs. The mode file switches its behaviour per request: "ok" (or
      absent), "429" (every request: 429 with Retry-After: 7) or "500".

Every server prints "ready" on stdout once it listens and stops on SIGTERM.
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

LOG_LOCK = threading.Lock()


def log_line(path, text):
    with LOG_LOCK, open(path, "a") as f:
        f.write(text + "\n")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def auth_scheme(header):
    """What kind of Authorization a request carried: none, basic, bearer, other."""
    if not header:
        return "none"
    scheme = header.split(" ", 1)[0].lower()
    return scheme if scheme in ("basic", "bearer") else "other"


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "oci-test"

    def log_message(self, fmt, *args):  # the servers keep their own logs
        pass

    def answer(self, status, body=b"", headers=None, content_type="application/json"):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or []):
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message, headers=None):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self.answer(status, body, headers)


# ---- token server -----------------------------------------------------------


class TokenHandler(Handler):
    def do_GET(self):
        cfg = self.server.cfg
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        service = query.get("service", [""])[0]
        scopes = query.get("scope", [])
        user, status, granted = "anonymous", 200, []
        header = self.headers.get("Authorization", "")
        if header:
            try:
                scheme, value = header.split(" ", 1)
                name, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                scheme, name, password = "", "", ""
            if scheme.lower() != "basic" or cfg["users"].get(name) != password:
                user, status = "invalid", 401
            else:
                user = name
        if status == 200 and (url.path != "/token" or service != cfg["service"]):
            status = 400
        access = []
        for scope in scopes if status == 200 else []:
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository" or not parts[1]:
                status = 400
                break
            wanted = [a for a in parts[2].split(",") if a]
            if user != "anonymous":
                allowed = ["pull", "push", "*"]
            elif parts[1].startswith(cfg["public"]):
                allowed = ["pull"]
            else:
                allowed = []
            actions = [a for a in wanted if a in allowed]
            access.append({"type": "repository", "name": parts[1], "actions": actions})
            granted.append("%s:%s" % (parts[1], ",".join(actions) or "-"))
        log_line(
            cfg["log"],
            "token user=%s service=%s scope=%s granted=%s status=%d"
            % (user, service or "-", " ".join(scopes) or "-", " ".join(granted) or "-", status),
        )
        if status == 401:
            self.error(401, "UNAUTHORIZED", "wrong credentials",
                       [("WWW-Authenticate", 'Basic realm="token"')])
            return
        if status != 200:
            self.error(status, "BAD_REQUEST", "bad token request")
            return
        token = make_jwt(cfg, user if user != "anonymous" else "", access)
        now = int(time.time())
        body = {
            "token": token,
            "access_token": token,
            "expires_in": cfg["lifetime"],
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
        self.answer(200, json.dumps(body).encode())


def make_jwt(cfg, subject, access):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [cfg["x5c"]]}
    claims = {
        "iss": cfg["issuer"],
        "sub": subject,
        "aud": cfg["service"],
        "exp": now + cfg["lifetime"],
        "nbf": now - 10,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "access": access,
    }
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    signature = cfg["key"].sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode() + "." + b64url(signature)


def token_server(args):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(args.cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(args.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    users = {}
    with open(args.users) as f:
        for line in f:
            name, sep, password = line.rstrip("\n").partition(":")
            if sep:
                users[name] = password
    cfg = {
        "service": args.service,
        "issuer": args.issuer,
        "public": args.public,
        "lifetime": args.lifetime,
        "users": users,
        "log": args.log,
        "key": key,
        "x5c": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
    }
    tls = server_tls(args.tls_cert, args.tls_key) if args.tls_cert else None
    serve([(args.port, TokenHandler, "", tls)], cfg)


# ---- redirecting upstream -----------------------------------------------------

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class RedirectHandler(Handler):
    def backend(self, method):
        cfg = self.server.cfg
        url = urllib.parse.urlsplit(cfg["backend"])
        if url.scheme == "https":
            conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=30,
                                               context=cfg["ssl"])
        else:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        headers = {}
        for name in ("Authorization", "User-Agent"):
            if self.headers.get(name):
                headers[name] = self.headers[name]
        accept = self.headers.get_all("Accept") or []
        if accept:
            headers["Accept"] = ", ".join(accept)
        conn.request(method, self.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read() if method != "HEAD" else b""
        conn.close()
        return resp, body

    def relay(self, resp, body):
        self.send_response(resp.status)
        for name, value in resp.getheaders():
            if name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
        length = resp.getheader("Content-Length") if self.command == "HEAD" else str(len(body))
        self.send_header("Content-Length", length or "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_one(self):
        cfg = self.server.cfg
        scheme = auth_scheme(self.headers.get("Authorization"))
        if self.server.role == "cdn":
            blob = cfg["blobs"].get(urllib.parse.urlsplit(self.path).path)
            if scheme != "none":
                status = 400  # like S3: a signed URL plus an Authorization header
                self.error(400, "InvalidArgument", "Only one auth mechanism allowed")
            elif blob is None:
                status = 404
                self.error(404, "NoSuchKey", "no such blob")
            else:
                status = 200
                self.answer(200, blob, content_type="application/octet-stream")
            log_line(cfg["log"], "cdn %s %s auth=%s status=%d" % (self.command, self.path, scheme, status))
            return
        resp, body = self.backend(self.command)
        is_blob_get = self.command == "GET" and "/blobs/sha256:" in self.path
        if is_blob_get and resp.status == 200:
            path = "/cdn/%s/%s" % (uuid.uuid4().hex, self.path.rsplit("/", 1)[1])
            cfg["blobs"][path] = body
            location = "http://127.0.0.1:%d%s?X-Signature=%s" % (cfg["cdn_port"], path, uuid.uuid4().hex)
            self.answer(307, b"", [("Location", location)], content_type=None)
            status = 307
        else:
            self.relay(resp, body)
            status = resp.status
        log_line(cfg["log"], "registry %s %s auth=%s status=%d" % (self.command, self.path, scheme, status))

    def do_GET(self):
        self.handle_one()

    def do_HEAD(self):
        self.handle_one()


def redirect_server(args):
    context = ssl.create_default_context(cafile=args.cafile)
    cfg = {"backend": args.backend, "ssl": context, "log": args.log,
           "cdn_port": args.cdn_port, "blobs": {}}
    serve([(args.port, RedirectHandler, "registry"), (args.cdn_port, RedirectHandler, "cdn")], cfg)


# ---- static registry with a switchable failure mode ---------------------------


class StaticHandler(Handler):
    def mode(self):
        try:
            with open(self.server.cfg["mode_file"]) as f:
                return f.read().strip() or "ok"
        except OSError:
            return "ok"

    def handle_one(self):
        cfg = self.server.cfg
        mode = self.mode()
        status = self.respond(mode)
        log_line(cfg["log"], "%s %s mode=%s status=%d" % (self.command, self.path, mode, status))

    def respond(self, mode):
        layout = self.server.cfg["layout"]
        if mode == "429":
            self.error(429, "TOOMANYREQUESTS", "slow down", [("Retry-After", "7")])
            return 429
        if mode == "500":
            self.error(500, "UNKNOWN", "broken")
            return 500
        path = urllib.parse.urlsplit(self.path).path
        if path == "/v2/":
            self.answer(200, b"{}")
            return 200
        parts = path.split("/")
        # /v2/<name...>/(manifests|blobs)/<reference>
        if len(parts) < 5 or parts[1] != "v2" or parts[-2] not in ("manifests", "blobs"):
            self.error(404, "NOT_FOUND", "no such endpoint")
            return 404
        kind, ref = parts[-2], parts[-1]
        media_type = "application/octet-stream"
        if kind == "manifests" and not ref.startswith("sha256:"):
            with open(os.path.join(layout, "index.json")) as f:
                index = json.load(f)
            found = [m for m in index["manifests"]
                     if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
            if not found:
                self.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                return 404
            ref, media_type = found[-1]["digest"], found[-1]["mediaType"]
        elif kind == "manifests":
            media_type = "application/vnd.oci.image.manifest.v1+json"
        file = os.path.join(layout, "blobs", "sha256", ref[len("sha256:"):])
        if not ref.startswith("sha256:") or "/" in ref or not os.path.isfile(file):
            code = "BLOB_UNKNOWN" if kind == "blobs" else "MANIFEST_UNKNOWN"
            self.error(404, code, "unknown")
            return 404
        with open(file, "rb") as f:
            data = f.read()
        if kind == "manifests":
            media_type = json.loads(data).get("mediaType", media_type)
        self.answer(200, data, [("Docker-Content-Digest", ref)], content_type=media_type)
        return 200

    def do_GET(self):
        self.handle_one()

    def do_HEAD(self):
        self.handle_one()


def static_server(args):
    cfg = {"layout": args.layout, "mode_file": args.mode_file, "log": args.log}
    serve([(args.port, StaticHandler)], cfg)


# ---- common ---------------------------------------------------------------------


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def server_tls(cert, key):
    """The TLS context of a listener with this certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def serve(listeners, cfg):
    """Serves (port, handler[, role[, TLS context]]) listeners on 127.0.0.1 until SIGTERM."""
    servers = []
    for spec in listeners:
        port, handler = spec[0], spec[1]
        srv = Server(("127.0.0.1", port), handler)
        if len(spec) > 3 and spec[3] is not None:
            srv.socket = spec[3].wrap_socket(srv.socket, server_side=True)
        srv.cfg = cfg
        srv.role = spec[2] if len(spec) > 2 else ""
        servers.append(srv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("token")
    p.add_argument("port", type=int)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--users", required=True)
    p.add_argument("--public", default="test/pub")
    p.add_argument("--lifetime", type=int, default=300)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--log", required=True)
    p = sub.add_parser("redirect")
    p.add_argument("port", type=int)
    p.add_argument("cdn_port", type=int)
    p.add_argument("--backend", required=True)
    p.add_argument("--cafile")
    p.add_argument("--log", required=True)
    p = sub.add_parser("static")
    p.add_argument("port", type=int)
    p.add_argument("--layout", required=True)
    p.add_argument("--mode-file", required=True)
    p.add_argument("--log", required=True)
    args = parser.parse_args()
    {"token": token_server, "redirect": redirect_server, "static": static_server}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
