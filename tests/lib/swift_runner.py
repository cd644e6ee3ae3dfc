#!/usr/bin/python3
"""A one-node OpenStack Swift with s3api and tempauth, in one process.

  swift_runner.py DIR PROXY_PORT ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT

Writes its configuration and rings under DIR (first run only), serves the
proxy (S3 API, SigV4 verified by s3api + tempauth) and the account,
container and object servers on 127.0.0.1, and logs one line per proxy
request to stdout. S3 credentials: access key "test:tester", secret
"testing". Runs until SIGTERM. A restart on the same DIR keeps the data.

Needs Debian's python3-swift (run it with /usr/bin/python3) and a DIR on a
filesystem with user xattrs (ext4, or tmpfs on recent kernels).
"""

import os
import signal
import sys
import time

import eventlet

eventlet.patcher.monkey_patch(all=False, socket=True, select=True, thread=True)

from eventlet import wsgi  # noqa: E402

from swift.common import utils  # noqa: E402
from swift.common import storage_policy  # noqa: E402
from swift.common.http_protocol import SwiftHttpProtocol  # noqa: E402
from swift.common.ring import RingBuilder  # noqa: E402
from swift.common.wsgi import loadapp  # noqa: E402

ACCESS_KEY = "test:tester"
SECRET_KEY = "testing"


class InProcessMemcache(object):
    """What tempauth and the proxy need of memcache, in a dict."""

    def __init__(self):
        self.store = {}

    def get(self, key, raise_on_error=False):
        entry = self.store.get(key)
        if entry is None or (entry[1] and entry[1] < time.time()):
            return None
        return entry[0]

    def set(self, key, value, serialize=True, time=0, min_compress_len=0, raise_on_error=False):
        self.store[key] = (value, _expiry(time))
        return True

    def incr(self, key, delta=1, time=0):
        value = int(self.get(key) or 0) + delta
        self.set(key, value, time=time)
        return value

    def decr(self, key, delta=1, time=0):
        return self.incr(key, -delta, time)

    def delete(self, key, server_key=None):
        self.store.pop(key, None)
        return True

    def get_multi(self, keys, server_key):
        return [self.get(k) for k in keys]

    def set_multi(self, mapping, server_key, serialize=True, time=0, min_compress_len=0):
        for k, v in mapping.items():
            self.set(k, v, time=time)


def _expiry(ttl):
    if not ttl:
        return 0
    return ttl if ttl > 30 * 24 * 3600 else time.time() + ttl


CACHE = InProcessMemcache()


def cache_filter(global_conf, **local_conf):
    """paste.filter_factory: puts the in-process cache into every request."""

    def make(app):
        def middleware(env, start_response):
            env["swift.cache"] = CACHE
            return app(env, start_response)

        return middleware

    return make


SERVER_CONF = """[DEFAULT]
devices = {dir}/srv
mount_check = false
swift_dir = {dir}/etc
bind_ip = 127.0.0.1
bind_port = {port}
log_level = WARNING

[pipeline:main]
pipeline = {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}
"""

PROXY_CONF = """[DEFAULT]
swift_dir = {dir}/etc
bind_ip = 127.0.0.1
bind_port = {port}
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper cache listing_formats s3api tempauth copy slo dlo proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:cache]
paste.filter_factory = swift_runner:cache_filter

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
# Virtual-hosted-style requests: BUCKET.s3.test (the tests resolve it).
storage_domain = s3.test
s3_acl = false
check_bucket_owner = false
allow_multipart_uploads = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = {secret} .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
"""

SWIFT_CONF = """[swift-hash]
swift_hash_path_suffix = oci-registry-test
swift_hash_path_prefix = oci-registry-test

[storage-policy:0]
name = Policy-0
default = yes
"""


def build_ring(path, port):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
                     "device": "d0", "weight": 100})
    builder.rebalance()
    builder.get_ring().save(path)


def write_configs(d, ports):
    os.makedirs(os.path.join(d, "etc"), exist_ok=True)
    os.makedirs(os.path.join(d, "srv", "d0"), exist_ok=True)
    with open(os.path.join(d, "etc", "swift.conf"), "w") as f:
        f.write(SWIFT_CONF)
    with open(os.path.join(d, "etc", "proxy-server.conf"), "w") as f:
        f.write(PROXY_CONF.format(dir=d, port=ports["proxy"], secret=SECRET_KEY))
    for kind in ("account", "container", "object"):
        with open(os.path.join(d, "etc", kind + "-server.conf"), "w") as f:
            f.write(SERVER_CONF.format(dir=d, port=ports[kind], kind=kind))
        build_ring(os.path.join(d, "etc", kind + ".ring.gz"), ports[kind])


class AccessLog(object):
    """eventlet.wsgi's log: proxy request lines to stdout, the others dropped."""

    def __init__(self, name):
        self.name = name

    def write(self, line):
        if self.name == "proxy":
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
            sys.stdout.flush()


def main():
    d = os.path.abspath(sys.argv[1])
    ports = dict(zip(("proxy", "account", "container", "object"), map(int, sys.argv[2:6])))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    write_configs(d, ports)
    utils.set_swift_dir(os.path.join(d, "etc"))
    storage_policy.reload_storage_policies()
    os.environ["TZ"] = "UTC+0"
    time.tzset()
    threads = []
    for name in ("account", "container", "object", "proxy"):
        app = loadapp(os.path.join(d, "etc", name + "-server.conf"))
        sock = eventlet.listen(("127.0.0.1", ports[name]))
        threads.append(eventlet.spawn(wsgi.server, sock, app, AccessLog(name),
                                      protocol=SwiftHttpProtocol,
                                      capitalize_response_headers=False,
                                      socket_timeout=60))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("swift ready: proxy on 127.0.0.1:%d" % ports["proxy"], flush=True)
    while True:
        eventlet.sleep(3600)


if __name__ == "__main__":
    main()
