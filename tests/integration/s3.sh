#!/usr/bin/env bash
# s3.sh - S3 storage against a real S3 server that verifies SigV4 (Swift with
# s3api, or radosgw with OCI_TEST_S3=rgw: tests/lib/s3server.sh): real clients pull through nginx in the Docker,
# cri-o and containerd styles; the second pull is served by nginx from S3
# (presigned URL, no blob byte through the responder); a second responder
# process on the same bucket hits what the first cached; --s3-redirect and a
# lighttpd-style front; a wrong secret key stops the start; S3 stopped in the
# middle of a multipart upload leaves no object and no open upload.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/containerd.sh
. "$TESTLIB/containerd.sh"
# shellcheck source=tests/lib/s3server.sh
. "$TESTLIB/s3server.sh"

need_program docker-registry skopeo nginx curl cgi-fcgi openssl containerd ctr
need_responder
"$PYTHON" -c 'import swift.common.middleware.s3api' 2>/dev/null ||
	bail "Debian's python3-swift is not installed (scripts/test installs it)"

BUCKET=oci-cache
PREFIX=mirror
# Blobs above 6 MiB go up as multipart uploads (8 MiB parts) in this test.
THRESHOLD=$((6 * 1024 * 1024))

# start_s3_responder NAME SOCKET LOG [OPTIONS...]: a responder on S3 storage;
# the secret key comes from the environment, the rest from flags.
start_s3_responder() {
	local name=$1 sock=$2 log=$3
	shift 3
	spawn "$name" "$log" env S3_SECRET_KEY="$S3_TEST_SECRET_KEY" \
		S3_MULTIPART_THRESHOLD="$THRESHOLD" \
		"$OCI_REGISTRY" --listen "unix:$sock" --upstream-config-file "$T/upstream.yaml" \
		--default-namespace reg.test --workers 8 --low-speed-timeout 3 "$@" \
		s3 --host "${S3_HOST:-$S3_ENDPOINT}" --bucket "$BUCKET" --region us-east-1 \
		--access-key "$S3_TEST_ACCESS_KEY" --path-style --prefix "${S3_PREFIX:-$PREFIX}"
	wait_ready "$name" 30 unix_open "$sock"
}

# --- setup: upstream, Swift, bucket, responder A behind nginx ---
start_upstream || bail "docker-registry upstream did not start"
SMALL=$(make_image small v1 --layers 3 --size 1048576) || bail "cannot push test/small:v1"
CTRD=$(make_image ctrd v1 --layers 2 --size 262144) || bail "cannot push test/ctrd:v1"
make_image big v1 --layers 1 --size $((20 * 1024 * 1024)) >/dev/null || bail "cannot push test/big:v1"
start_s3 || bail "the S3 server did not start"
s3_cli "$BUCKET" mb || bail "cannot create the bucket"

mkdir -p "$T/run"
CACHE=$T/unused-cache # the filesystem location of contrib/nginx, unused here
write_upstream_config "$T/upstream.yaml"
FCGI_SOCK=$T/run/fcgi.sock
RESPONDER_LOG=$T/log/responder.log
start_s3_responder responder "$FCGI_SOCK" "$RESPONDER_LOG" || bail "responder on S3 did not start"
start_nginx || bail "nginx did not start"
diag "upstream $UPSTREAM, mirror $MIRROR, S3 $S3_ENDPOINT, test dir $T"


# presigned_gets: GETs that nginx made to S3 with a presigned URL.
presigned_gets() {
	s3_log | grep -c "\"GET /$BUCKET/$PREFIX/blobs/sha256/[^ ]*X-Amz-Signature="
}

# upstream_fetch_lines: the responder's upstream fetches so far.
upstream_fetch_lines() {
	grep -c ' upstream GET ' "$RESPONDER_LOG"
}

# --- Docker style: default namespace ---
gets0=$(upstream_blob_gets)
check "docker style: skopeo pulls test/small:v1 (miss, stored in S3)" \
	pull_dir docker "docker://$MIRROR/test/small:v1" --src-tls-verify=false
pulled_ok docker "$SMALL" "docker style"
gets1=$(upstream_blob_gets)
ok "$((gets1 > gets0 ? 0 : 1))" "the miss fetched blobs from the upstream ($((gets1 - gets0)) GETs)"
LAYER=$(json_get "$T/pulled/docker/manifest.json" layers 0 digest)
# bucket_holds KEY: the bucket lists KEY (under the prefix).
bucket_holds() { s3_cli "$BUCKET" ls "$PREFIX/" | grep -q "^$PREFIX/$1 "; }
# A fetched blob is uploaded after its request ended (storage/s3.c): wait for it.
check "the layer is in the bucket under the prefix, in the cache layout" \
	wait_until 30 bucket_holds "blobs/sha256/${LAYER:7:2}/${LAYER:7}"
check "the tag record is in the bucket" wait_until 30 bucket_holds manifests/reg.test/test/small/_tags/v1
check "the manifest is in the bucket by its digest" wait_until 30 bucket_holds "blobs/sha256/${SMALL:7:2}/${SMALL:7}"
for i in 1 2; do
	layer=$(json_get "$T/pulled/docker/manifest.json" layers "$i" digest)
	check "layer $i is in the bucket" wait_until 30 bucket_holds "blobs/sha256/${layer:7:2}/${layer:7}"
done

fetches=$(upstream_fetch_lines)
presigned0=$(presigned_gets)
check "docker style: second pull (hit)" \
	pull_dir docker2 "docker://$MIRROR/test/small:v1" --src-tls-verify=false
pulled_ok docker2 "$SMALL" "docker style, from S3"
is "$(upstream_blob_gets)" "$gets1" "the second pull made no blob GET upstream"
is "$(upstream_fetch_lines)" "$fetches" "the responder fetched nothing for the second pull"
presigned1=$(presigned_gets)
ok "$((presigned1 > presigned0 ? 0 : 1))" \
	"nginx fetched the blobs from S3 by presigned URL ($((presigned1 - presigned0)) GETs)"

# --- cri-o style: registries.conf mirror with a path prefix ---
use_crio_mirror
check "cri-o style: pull reg.test/test/small:v1 through the mirror (hit)" \
	pull_dir crio docker://reg.test/test/small:v1
pulled_ok crio "$SMALL" "cri-o style"
check "cri-o style: pull by digest" pull_dir crio2 "docker://reg.test/test/small@$SMALL"
pulled_ok crio2 "$SMALL" "cri-o style, by digest"
is "$(upstream_blob_gets)" "$gets1" "cri-o style pulls of a cached image made no blob GET upstream"
drop_crio_mirror

# --- containerd style: ?ns=reg.test ---
if check "containerd starts" start_containerd; then
	containerd_miss_then_hit containerd
	stop containerd
fi

# --- HTTP details of hits proxied from S3 ---
hit_details S3 docker
health_checks S3
code=$(http_status /v2/test/small/manifests/v1 -H 'Accept: application/vnd.oci.image.manifest.v1+json')
is "$code" 200 "GET manifest from S3: 200"
is "$(header Content-Type)" application/vnd.oci.image.manifest.v1+json "GET manifest from S3: the media type"
is "$(grep -ci '^content-type:' "$T/headers")" 1 "GET manifest from S3: one Content-Type, the registry's"
is "$(sha256_of "$T/body")" "$SMALL" "GET manifest from S3: content matches the digest"

fcgi_request GET "/v2/test/small/blobs/$LAYER" >"$T/fcgi-blob" 2>"$T/fcgi.err"
head_of "$T/fcgi-blob" >"$T/fcgi-head"
check "FastCGI: a hit is X-Accel-Redirect to /_oci_s3/ with a presigned URL" \
	grep -q "^X-Accel-Redirect: /_oci_s3/blobs/sha256/${LAYER:7:2}/${LAYER:7}$" "$T/fcgi-head"
check "FastCGI: the presigned URL names the object and its signature" \
	grep -Eq "^X-Oci-Presigned-Url: $S3_ENDPOINT/$BUCKET/$PREFIX/blobs/sha256/${LAYER:7:2}/${LAYER:7}\?.*X-Amz-Signature=[0-9a-f]{64}" \
	"$T/fcgi-head"
is "$(body_of "$T/fcgi-blob" | wc -c)" 0 "FastCGI: the responder sent no blob byte"

# --- lighttpd-style front: the responder streams from S3 ---
FCGI_SERVER_SOFTWARE=lighttpd/1.4.69 fcgi_request GET "/v2/test/small/blobs/$LAYER" >"$T/fcgi-light"
body_of "$T/fcgi-light" >"$T/light-body"
is "$(sha256_of "$T/light-body")" "$LAYER" "lighttpd front: the responder streams the blob from S3"

# --- a second responder process on the same bucket; --s3-redirect (S3_REDIRECT) ---
SOCK_B=$T/run/fcgi-b.sock
S3_REDIRECT=true start_s3_responder responder_b "$SOCK_B" "$T/log/responder-b.log" ||
	bail "second responder did not start"
fcgi_b() {
	local saved=$FCGI_SOCK rc
	FCGI_SOCK=$SOCK_B
	fcgi_request "$@"
	rc=$?
	FCGI_SOCK=$saved
	return "$rc"
}
fcgi_b GET "/v2/test/small/blobs/$LAYER" >"$T/b-blob"
head_of "$T/b-blob" >"$T/b-head"
check "second responder: a blob cached through the first is a hit (307)" \
	grep -q '^Status: 307' "$T/b-head"
url=$(sed -n 's/^Location: //p' "$T/b-head")
curl -sS --max-time 30 -o "$T/b-body" "$url"
is "$(sha256_of "$T/b-body")" "$LAYER" "--s3-redirect: the presigned URL serves the blob"
fcgi_b GET /v2/test/small/manifests/v1 >"$T/b-manifest"
body_of "$T/b-manifest" >"$T/b-manifest.body"
check "second responder: the tag record from the first is a hit" \
	grep -q '^Status: 200' "$T/b-manifest"
is "$(sha256_of "$T/b-manifest.body")" "$SMALL" "second responder: the manifest, read from S3"
is "$(grep -c ' upstream GET ' "$T/log/responder-b.log")" 0 "second responder: no upstream fetch"
stop responder_b TERM 15
is "$?" 0 "second responder exits 0 on SIGTERM"
check "second responder log has no sanitizer report" sanitizer_clean "$T/log/responder-b.log"

# --- a wrong secret key: one clear line at start, exit 2 ---
S3_SECRET_KEY=not-the-secret timeout 60 "$OCI_REGISTRY" --listen "unix:$T/run/wrong.sock" \
	s3 --host "$S3_ENDPOINT" --bucket "$BUCKET" --access-key "$S3_TEST_ACCESS_KEY" --path-style \
	>"$T/wrong.out" 2>&1
is "$?" 2 "wrong secret key: exit status 2 before serving"
like "$(tail -n 1 "$T/wrong.out")" "SignatureDoesNotMatch.*secret key" "wrong secret key: the error says so"
check "wrong secret key: the key is not printed" eval "! grep -q not-the-secret '$T/wrong.out'"
check "no secret in the responder's log" eval "! grep -q '$S3_TEST_SECRET_KEY' '$RESPONDER_LOG'"
S3_SECRET_KEY=not-the-secret "$OCI_REGISTRY" --help >"$T/help.out" 2>&1
check "--help describes the s3 storage without showing the secret" \
	eval "grep -q -- '--secret-key' '$T/help.out' && ! grep -q not-the-secret '$T/help.out'"
S3_SECRET_KEY=not-the-secret "$OCI_REGISTRY" s3 --host "$S3_ENDPOINT" --access-key k >"$T/nobucket.out" 2>&1
is "$?" 2 "s3 without a bucket: exit status 2"
like "$(cat "$T/nobucket.out")" '^oci-registry: s3 storage needs --bucket' "s3 without a bucket: one line says so"

# --- S3 stopped in the middle of a multipart upload ---
BIG_LAYER=$(upstream_curl /v2/test/big/manifests/v1 -H 'Accept: application/vnd.oci.image.manifest.v1+json' |
	json_get - layers 0 digest)
# Its object's key: listing by it names that object alone (the blobs/sha256/xx/
# directory may hold another layer whose digest starts alike).
BIG_KEY=$PREFIX/blobs/sha256/${BIG_LAYER:7:2}/${BIG_LAYER:7}
uploads_started() { s3_log | grep -q "POST /$BUCKET/$PREFIX/blobs/sha256/${BIG_LAYER:7:2}/${BIG_LAYER:7}?uploads"; }
part_failed() { grep -q "s3: PUT blobs/sha256/${BIG_LAYER:7:2}/${BIG_LAYER:7}" "$RESPONDER_LOG"; }
upload_aborted() { grep -q "aborted the multipart upload of blobs/sha256/${BIG_LAYER:7:2}/${BIG_LAYER:7}" "$RESPONDER_LOG"; }
mirror_curl "/v2/test/big/blobs/$BIG_LAYER" -o "$T/big-body" &
big_client=$!
if check "a 20 MiB blob starts a multipart upload" wait_until 120 uploads_started; then
	kill -STOP "${PROC_PID[$S3_PROC]}" # S3 stops answering in the middle of the parts
	check "the stalled part upload fails within its timeouts" wait_until 90 part_failed
	stop_s3 KILL
	check "S3 comes back" start_s3
	check "the responder aborts the multipart upload" wait_until 90 upload_aborted
	s3_cli "$BUCKET" uploads >"$T/uploads"
	is "$(wc -l <"$T/uploads")" 0 "no multipart upload is left open"
	s3_cli "$BUCKET" ls "$BIG_KEY" >"$T/big-objects"
	is "$(wc -l <"$T/big-objects")" 0 "no object was left under the blob's key"
fi
wait "$big_client"
is "$(sha256_of "$T/big-body")" "$BIG_LAYER" "the client still got the whole blob, streamed from the upstream"

# --- the same blob again, S3 up: a complete multipart upload ---
code=$(http_status "/v2/test/big/blobs/$BIG_LAYER")
is "$code" 200 "the big blob again: 200 (a miss)"
is "$(sha256_of "$T/body")" "$BIG_LAYER" "the big blob again: content matches the digest"
# The upload starts once the client has its last byte: wait for it.
big_stored() {
	s3_cli "$BUCKET" ls "$BIG_KEY" >"$T/big-objects" && [ -s "$T/big-objects" ]
}
check "the big blob is stored" wait_until 90 big_stored
is "$(cut -d' ' -f2 "$T/big-objects")" "$(stat -c %s "$T/body")" \
	"the multipart upload completed: one object of the blob's size"
s3_cli "$BUCKET" uploads >"$T/uploads"
is "$(wc -l <"$T/uploads")" 0 "no multipart upload is left open after it"
gets3=$(upstream_blob_gets)
code=$(http_status "/v2/test/big/blobs/$BIG_LAYER")
is "$(sha256_of "$T/body")" "$BIG_LAYER" "the big blob from S3: content matches the digest"
is "$(upstream_blob_gets)" "$gets3" "the big blob from S3: no upstream GET"

# --- the answer does not wait for the upload ---
# A responder whose S3 takes 128 KiB/s each way (tests/lib/throttle.py):
# storing a 1 MiB layer takes 8 s, and the request that fetched it ends
# first. Under its own prefix, so the objects are new to the bucket.
SLOW_PORT=$(free_ports 1)
spawn s3_slow "$T/log/s3_slow.log" "$PYTHON" "$TESTLIB/throttle.py" "$SLOW_PORT" "${S3_ENDPOINT##*:}" 131072 both
wait_ready s3_slow 10 tcp_open "$SLOW_PORT" || bail "the S3 throttle did not start"
SOCK_C=$T/run/fcgi-c.sock
S3_HOST=http://127.0.0.1:$SLOW_PORT S3_PREFIX=slow start_s3_responder responder_c "$SOCK_C" \
	"$T/log/responder-c.log" || bail "the responder on slow S3 did not start"
# slow_stored DIGEST: the blob is in the bucket under the slow prefix.
slow_stored() { s3_cli "$BUCKET" ls "slow/blobs/sha256/${1:7:2}/${1:7}" | grep -q .; }
# slow_get DIGEST FILE: the blob from the slow responder, its body in FILE.
slow_get() {
	FCGI_SOCK=$SOCK_C fcgi_request GET "/v2/test/small/blobs/$1" >"$2.raw" && body_of "$2.raw" >"$2"
}
for i in 1 2; do
	layer=$(json_get "$T/pulled/docker/manifest.json" layers "$i" digest)
	check "slow S3, layer $i: the miss is answered" slow_get "$layer" "$T/slow-$i"
	is "$(sha256_of "$T/slow-$i")" "$layer" "slow S3, layer $i: content matches the digest"
	ok "$(slow_stored "$layer" && echo 1 || echo 0)" \
		"slow S3, layer $i: the request ended before the upload (not in the bucket yet)"
	[ "$i" = 2 ] && break
	check "slow S3: asked again meanwhile, served from the spool" slow_get "$layer" "$T/slow-again"
	is "$(sha256_of "$T/slow-again")" "$layer" "slow S3: the spool's copy matches the digest"
	check "slow S3: the upload ends in the bucket" wait_until 60 slow_stored "$layer"
done
# Layer 2 is still uploading: a stop waits for it.
stop responder_c TERM 60
is "$?" 0 "slow S3: the responder stopped meanwhile exits 0"
check "slow S3: ... after finishing the upload" slow_stored "$layer"
check "slow S3: its log has no sanitizer report" sanitizer_clean "$T/log/responder-c.log"
stop s3_slow

stop nginx
stop_responder_checked
done_testing
