#!/usr/bin/python3
"""A minimal S3 client for the tests, with its own SigV4 signing (hashlib and
hmac only), so that what the responder stores is checked by code that
shares nothing with it.

  s3.py ENDPOINT BUCKET mb                  create the bucket
  s3.py ENDPOINT BUCKET ls [PREFIX]         "key size" per object, paged
  s3.py ENDPOINT BUCKET uploads             "key uploadId" per open multipart upload
  s3.py ENDPOINT BUCKET mpu KEY             begin a multipart upload (left open); print its id
  s3.py ENDPOINT BUCKET get KEY             the object to stdout
  s3.py ENDPOINT BUCKET put KEY FILE [NAME:VALUE...]
                                            upload a file, with these headers (signed)
  s3.py ENDPOINT BUCKET rm KEY              delete an object
  s3.py ENDPOINT BUCKET fill PREFIX COUNT [MTIME]
                                            COUNT small objects PREFIX0000.., 8 at a time,
                                            with x-amz-meta-mtime MTIME (epoch seconds) if given

ENDPOINT is http://host:port (path-style). Keys come from S3_ACCESS_KEY and
S3_SECRET_KEY, region from S3_REGION (us-east-1). Exits 1 on an HTTP error.
"""

import datetime
import hashlib
import hmac
import http.client
import os
import re
import sys
import urllib.parse


def quote(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def sign(method, host, path, query, payload_hash, key, secret, region, extra=None):
    now = datetime.datetime.utcnow()
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    headers.update(extra or {})
    names = sorted(headers)
    canonical_query = "&".join(sorted(
        "%s=%s" % (quote(k), quote(v)) for k, v in query))
    canonical = "\n".join([method, quote(path, safe="/-_.~"), canonical_query]
                          + ["%s:%s" % (n, headers[n]) for n in names]
                          + ["", ";".join(names), payload_hash])
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (key, scope, ";".join(names), signature))
    return headers, canonical_query


def request(endpoint, method, path, query=(), body=b"", extra=None):
    url = urllib.parse.urlsplit(endpoint)
    payload_hash = hashlib.sha256(body).hexdigest()
    headers, qs = sign(method, url.netloc, path, list(query), payload_hash,
                       os.environ.get("S3_ACCESS_KEY", "test:tester"),
                       os.environ.get("S3_SECRET_KEY", "testing"),
                       os.environ.get("S3_REGION", "us-east-1"), extra)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request(method, quote(path, safe="/-_.~") + ("?" + qs if qs else ""), body, headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status >= 300:
        sys.stderr.write("%s %s: %d %s\n" % (method, path, resp.status, data[:300]))
        sys.exit(1)
    return data


def tags(xml, tag):
    return [x for x in re.findall(r"<%s>(.*?)</%s>" % (tag, tag), xml, re.S)]


def ls(endpoint, bucket, prefix):
    token = None
    while True:
        query = [("list-type", "2"), ("prefix", prefix)]
        if token:
            query.append(("continuation-token", token))
        xml = request(endpoint, "GET", "/" + bucket, query).decode()
        for item in tags(xml, "Contents"):
            print(tags(item, "Key")[0], tags(item, "Size")[0])
        token = (tags(xml, "NextContinuationToken") or [None])[0]
        if "<IsTruncated>true</IsTruncated>" not in xml or not token:
            return


def uploads(endpoint, bucket):
    xml = request(endpoint, "GET", "/" + bucket, [("uploads", "")]).decode()
    for item in tags(xml, "Upload"):
        print(tags(item, "Key")[0], tags(item, "UploadId")[0])


def fill(endpoint, bucket, prefix, count, mtime=None):
    from concurrent.futures import ThreadPoolExecutor
    extra = {"x-amz-meta-mtime": mtime} if mtime else None

    def put(i):
        request(endpoint, "PUT", "/%s/%s%04d" % (bucket, prefix, i), body=b"filler %d\n" % i,
                extra=extra)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))


def main():
    endpoint, bucket, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    if cmd == "mb":
        request(endpoint, "PUT", "/" + bucket)
    elif cmd == "ls":
        ls(endpoint, bucket, args[0] if args else "")
    elif cmd == "uploads":
        uploads(endpoint, bucket)
    elif cmd == "mpu":
        xml = request(endpoint, "POST", "/%s/%s" % (bucket, args[0]), [("uploads", "")]).decode()
        print(tags(xml, "UploadId")[0])
    elif cmd == "get":
        sys.stdout.buffer.write(request(endpoint, "GET", "/%s/%s" % (bucket, args[0])))
    elif cmd == "put":
        headers = dict(h.lower().split(":", 1) for h in args[2:])
        with open(args[1], "rb") as f:
            request(endpoint, "PUT", "/%s/%s" % (bucket, args[0]), body=f.read(),
                    extra=headers)
    elif cmd == "rm":
        request(endpoint, "DELETE", "/%s/%s" % (bucket, args[0]))
    elif cmd == "fill":
        fill(endpoint, bucket, args[0], int(args[1]), args[2] if len(args) > 2 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
