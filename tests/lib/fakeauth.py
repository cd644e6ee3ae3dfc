#!/usr/bin/python3
"""An upstream registry, a host it redirects to, and a token realm, in one
process, to see where a mirror sends its credentials (tests/integration/security.sh).

  fakeauth.py UPSTREAM-PORT ELSEWHERE-PORT REALM-PORT TLS-PORT
              --tls-cert PEM --tls-key PEM --log FILE

The upstream listens on UPSTREAM-PORT (plain HTTP) and TLS-PORT (HTTPS), both
on 127.0.0.1. A manifest request /v2/REPO/manifests/REF is answered by REPO:

  redirect  307 to http://localhost:ELSEWHERE-PORT/..., which answers every
            request with 401 and a realm of another origin, http://localhost:REALM-PORT/steal
  redirect-own
            307 to http://localhost:ELSEWHERE-PORT/..., a registry with a realm of
            its own origin, http://localhost:ELSEWHERE-PORT/token, which gives
            anyone a token (as ghcr.io behind lscr.io)
  foreign   401, realm http://localhost:REALM-PORT/token (not the upstream's host name)
  own       401, realm http://127.0.0.1:REALM-PORT/token (the upstream's host)
  inject    401, realm http://127.0.0.1:REALM-PORT/inject, whose token holds CR LF
  anything  401 as for own

A request with a token the realm gave out gets a small OCI manifest (from the
upstream, or from elsewhere for redirect-own). The realm gives a token to
anyone (anonymous or not) on /token and /steal; a GET of /revoke on
ELSEWHERE-PORT takes back every token given out so far.

One log line per request: the listener, method and path, which Authorization
scheme it carried (and the Basic user name, never the password), and whether
an X-Injected header arrived. Prints "ready" once all listen; stops on SIGTERM.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import Handler, auth_scheme, log_line, serve, server_tls  # noqa: E402

MANIFEST = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + "0" * 64, "size": 2},
    "layers": [],
}).encode()

REALM_PATHS = {"foreign": "http://localhost:%d/token", "inject": "http://127.0.0.1:%d/inject"}


class FakeHandler(Handler):
    def record(self, status):
        cfg = self.server.cfg
        header = self.headers.get("Authorization", "")
        scheme = auth_scheme(header)
        user = ""
        if scheme == "basic":
            try:
                user = " user=" + base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")[0]
            except (ValueError, IndexError):
                user = " user=?"
        injected = "yes" if self.headers.get("X-Injected") is not None else "no"
        log_line(cfg["log"], "%s %s %s auth=%s%s injected=%s status=%d"
                 % (self.server.role, self.command, self.path, scheme, user, injected, status))

    def has_token(self):
        """The request carries a token that a realm of this process gave out."""
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.server.cfg["tokens"]

    def upstream(self):
        cfg = self.server.cfg
        parts = urllib.parse.urlsplit(self.path).path.split("/")
        if len(parts) < 5 or parts[1] != "v2" or parts[-2] != "manifests":
            return self.error(404, "NOT_FOUND", "no such endpoint") or 404
        repo = "/".join(parts[2:-2])
        if self.has_token():
            digest = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
            self.answer(200, MANIFEST, [("Docker-Content-Digest", digest)],
                        content_type="application/vnd.oci.image.manifest.v1+json")
            return 200
        if repo in ("redirect", "redirect-own"):
            location = "http://localhost:%d%s" % (cfg["elsewhere_port"], self.path)
            self.answer(307, b"", [("Location", location)], content_type=None)
            return 307
        realm = REALM_PATHS.get(repo, "http://127.0.0.1:%d/token") % cfg["realm_port"]
        return self.challenge(realm, repo)

    def challenge(self, realm, repo):
        value = 'Bearer realm="%s",service="fake",scope="repository:%s:pull"' % (realm, repo)
        self.error(401, "UNAUTHORIZED", "authentication required", [("WWW-Authenticate", value)])
        return 401

    def realm(self):
        cfg = self.server.cfg
        path = urllib.parse.urlsplit(self.path).path
        if path == "/inject":
            token = "abc\r\nX-Injected: 1"
        elif path in ("/token", "/steal"):
            token = "tok-" + uuid.uuid4().hex
            cfg["tokens"].add(token)
        else:
            return self.error(404, "NOT_FOUND", "no such endpoint") or 404
        self.answer(200, json.dumps({"token": token, "expires_in": 300}).encode())
        return 200

    def elsewhere(self):
        cfg = self.server.cfg
        path = urllib.parse.urlsplit(self.path).path
        if path == "/token":
            return self.realm()
        if path == "/revoke":
            cfg["tokens"].clear()
            self.answer(200, b"")
            return 200
        if path.startswith("/v2/redirect-own/"):
            if self.has_token():
                self.answer(200, MANIFEST, [],
                            content_type="application/vnd.oci.image.manifest.v1+json")
                return 200
            own_realm = "http://localhost:%d/token" % cfg["elsewhere_port"]
            return self.challenge(own_realm, "redirect-own")
        return self.challenge("http://localhost:%d/steal" % cfg["realm_port"], "redirect")

    def handle_one(self):
        role = self.server.role
        if role == "realm":
            status = self.realm()
        elif role == "elsewhere":
            status = self.elsewhere()
        else:
            status = self.upstream()
        self.record(status)

    def do_GET(self):
        self.handle_one()

    def do_HEAD(self):
        self.handle_one()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("upstream_port", "elsewhere_port", "realm_port", "tls_port"):
        parser.add_argument(name, type=int)
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    cfg = {"log": args.log, "elsewhere_port": args.elsewhere_port,
           "realm_port": args.realm_port, "tokens": set()}
    serve([(args.upstream_port, FakeHandler, "upstream"),
           (args.elsewhere_port, FakeHandler, "elsewhere"),
           (args.realm_port, FakeHandler, "realm"),
           (args.tls_port, FakeHandler, "upstream-tls", server_tls(args.tls_cert, args.tls_key))],
          cfg)


if __name__ == "__main__":
    sys.exit(main())
