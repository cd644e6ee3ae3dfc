#!/usr/bin/python3
"""Helpers for the integration tests that are easier in Python than in shell.

  util.py freeport [N]             print N free TCP ports on 127.0.0.1
  util.py connect ADDR             exit 0 if tcp:HOST:PORT or unix:PATH accepts
  util.py mkimage DIR TAG [--layers N] [--size BYTES] [--index]
                                   write an OCI image layout; print the digest
                                   of the manifest (or index) tagged TAG
  util.py json FILE KEY...         print a value from a JSON file (- for stdin);
                                   KEYs are object keys or list indexes
  util.py verify-dir DIR           check a `skopeo copy ... dir:DIR` result: every
                                   blob named in manifest.json exists and hashes
                                   to its digest; print the number of blobs
"""

import gzip
import hashlib
import io
import json
import os
import random
import socket
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def freeport(count=1):
    # Bind port 0 for each, all held open together so the N ports differ;
    # the kernel does not hand a just-released port out again at once.
    socks = []
    for _ in range(int(count)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
        s.close()


def connect(addr):
    kind, _, where = addr.partition(":")
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = where
    else:
        host, _, port = where.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, int(port))
    s.settimeout(2)
    try:
        s.connect(target)
    except OSError:
        return 1
    finally:
        s.close()
    return 0


class Layout:
    """An OCI image layout directory (image-layout spec v1.0)."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.index_path = os.path.join(path, "index.json")
        if not os.path.exists(self.index_path):
            with open(self.index_path, "w") as f:
                json.dump({"schemaVersion": 2, "manifests": []}, f)

    def blob(self, data, media_type, **extra):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        desc = {"mediaType": media_type, "digest": digest, "size": len(data)}
        desc.update(extra)
        return desc

    def json_blob(self, obj, media_type, **extra):
        return self.blob(json.dumps(obj, indent=2).encode(), media_type, **extra)

    def tag(self, desc, tag):
        with open(self.index_path) as f:
            index = json.load(f)
        desc = dict(desc, annotations={"org.opencontainers.image.ref.name": tag})
        # A tag names one image: a new image of the same tag replaces the old one.
        index["manifests"] = [
            m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag
        ]
        index["manifests"].append(desc)
        with open(self.index_path, "w") as f:
            json.dump(index, f, indent=2)


def make_layer(rng, number, size):
    # Random bytes do not compress, so the blob is about SIZE bytes.
    # In pieces: randbytes() of 256 MiB or more overflows.
    content = b"".join(rng.randbytes(min(1 << 24, size - at)) for at in range(0, size, 1 << 24))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("data/layer-%d.bin" % number)
        info.size = size
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    return gzip.compress(tar_bytes, mtime=0), diff_id


def make_manifest(layout, rng, layers, size, arch):
    descs, diff_ids = [], []
    for n in range(layers):
        data, diff_id = make_layer(rng, n, size)
        descs.append(layout.blob(data, OCI_LAYER))
        diff_ids.append(diff_id)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": layout.json_blob(config, OCI_CONFIG),
        "layers": descs,
    }
    return layout.json_blob(manifest, OCI_MANIFEST)


def mkimage(args):
    path, tag = args[0], args[1]
    layers, size, index = 3, 1 << 20, False
    rest = args[2:]
    while rest:
        opt = rest.pop(0)
        if opt == "--layers":
            layers = int(rest.pop(0))
        elif opt == "--size":
            size = int(rest.pop(0))
        elif opt == "--index":
            index = True
        else:
            sys.exit("mkimage: unknown option " + opt)
    rng = random.Random(os.urandom(16))  # fresh content on every run
    layout = Layout(path)
    if index:
        manifests = []
        for arch in ("amd64", "arm64"):
            desc = make_manifest(layout, rng, layers, size, arch)
            desc["platform"] = {"architecture": arch, "os": "linux"}
            manifests.append(desc)
        top = layout.json_blob(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, OCI_INDEX
        )
    else:
        top = make_manifest(layout, rng, layers, size, "amd64")
    layout.tag(top, tag)
    print(top["digest"])


def json_get(args):
    src = sys.stdin if args[0] == "-" else open(args[0])
    value = json.load(src)
    for key in args[1:]:
        value = value[int(key)] if isinstance(value, list) else value[key]
    print(value if isinstance(value, str) else json.dumps(value))


def verify_dir(path):
    with open(os.path.join(path, "manifest.json"), "rb") as f:
        manifest = json.load(f)
    descs = [manifest["config"]] + manifest["layers"]
    for desc in descs:
        hexdigest = desc["digest"].split(":", 1)[1]
        with open(os.path.join(path, hexdigest), "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != hexdigest or len(data) != desc["size"]:
            sys.exit("blob %s does not match its digest or size" % desc["digest"])
    print(len(descs))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "freeport":
        freeport(*args)
    elif cmd == "connect":
        sys.exit(connect(args[0]))
    elif cmd == "mkimage":
        mkimage(args)
    elif cmd == "json":
        json_get(args)
    elif cmd == "verify-dir":
        verify_dir(args[0])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
