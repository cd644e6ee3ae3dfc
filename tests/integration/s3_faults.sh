#!/usr/bin/env bash
# s3_faults.sh - S3 storage when S3 fails (Swift with s3api behind a relay
# that can fail the front server's presigned GETs, tests/lib/s3_fault.py):
#   - S3 failing after the responder decided to serve from it (connection
#     reset, a 5xx): the client gets the registry's 503 with Retry-After and
#     an OCI error body, not nginx's bare 502 page;
#   - S3 down when the responder starts: it starts, /readyz says 503 and
#     why, requests are answered at once (from the upstream), and once S3 is
#     back /readyz says ready;
#   - a spool directory (TMPDIR) that cannot be written: /readyz says 503.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"

need_program docker-registry skopeo nginx curl cgi-fcgi openssl
need_responder
"$PYTHON" -c 'import swift.common.middleware.s3api' 2>/dev/null ||
	bail "Debian's python3-swift is not installed (scripts/test installs it)"

BUCKET=oci-cache

# s3_responder NAME SOCKET ENDPOINT: a responder on S3 storage at ENDPOINT.
s3_responder() {
	spawn "$1" "$T/log/$1.log" env S3_SECRET_KEY="$S3_TEST_SECRET_KEY" \
		"$OCI_REGISTRY" --listen "unix:$2" --upstream-config-file "$T/upstream.yaml" \
		--default-namespace reg.test --workers 8 \
		s3 --host "$3" --bucket "$BUCKET" --access-key "$S3_TEST_ACCESS_KEY" --path-style
	wait_ready "$1" 30 unix_open "$2"
}

start_upstream || bail "docker-registry upstream did not start"
SMALL=$(make_image small v1 --layers 2 --size 262144) || bail "cannot push test/small:v1"
start_swift || bail "Swift (s3api) did not start"
s3_cli "$BUCKET" mb || bail "cannot create the bucket"

# The relay: the responder and nginx reach S3 through it, so the presigned
# URLs name it (what is signed is the host the front server connects to).
RELAY_PORT=$(free_ports 1)
MODE=$T/s3-mode
echo pass >"$MODE"
spawn s3_fault "$T/log/s3_fault.log" "$PYTHON" "$TESTLIB/s3_fault.py" "$RELAY_PORT" \
	"${S3_ENDPOINT##*:}" "$MODE"
wait_ready s3_fault 10 tcp_open "$RELAY_PORT" || bail "the S3 relay did not start"

mkdir -p "$T/run"
CACHE=$T/unused-cache
write_upstream_config "$T/upstream.yaml"
FCGI_SOCK=$T/run/fcgi.sock
RESPONDER_LOG=$T/log/responder.log
s3_responder responder "$FCGI_SOCK" "http://127.0.0.1:$RELAY_PORT" || bail "responder did not start"
start_nginx || bail "nginx did not start"
diag "upstream $UPSTREAM, mirror $MIRROR, S3 $S3_ENDPOINT via relay $RELAY_PORT, test dir $T"

check "skopeo pulls test/small:v1 (a miss, stored in S3)" \
	pull_dir small "docker://$MIRROR/test/small:v1" --src-tls-verify=false
pulled_ok small "$SMALL" "first pull"
LAYER=$(json_get "$T/pulled/small/manifest.json" layers 0 digest)
layer_stored() { s3_cli "$BUCKET" ls "blobs/sha256/${LAYER:7:2}/${LAYER:7}" | grep -q .; }
check "the layer is stored in S3" wait_until 30 layer_stored

# --- S3 fails after the responder decided to serve from it ---
for how in reset 500; do
	echo "$how" >"$MODE"
	code=$(http_status "/v2/test/small/blobs/$LAYER")
	is "$code" 503 "S3 fails the presigned GET ($how): the client gets 503"
	is "$(json_get "$T/body" errors 0 code 2>/dev/null)" UNAVAILABLE "($how): the OCI error code is UNAVAILABLE"
	like "$(json_get "$T/body" errors 0 message 2>/dev/null)" 'cache storage \(S3\) failed' \
		"($how): the message says the cache storage failed"
	is "$(header Retry-After)" 5 "($how): Retry-After is set"
	is "$(header Content-Type)" application/json "($how): the body is JSON"
	check "($how): the relay failed a presigned GET" grep -q "failed $how" "$T/log/s3_fault.log"
done
echo pass >"$MODE"
code=$(http_status "/v2/test/small/blobs/$LAYER")
is "$code" 200 "S3 answers again: the blob is served (200)"
is "$(sha256_of "$T/body")" "$LAYER" "S3 answers again: content matches the digest"

# --- S3 down when a responder starts ---
stop_swift KILL
SOCK_B=$T/run/fcgi-b.sock
s3_responder responder_b "$SOCK_B" "$S3_ENDPOINT"
ok $? "S3 down at start: the responder starts anyway"
check "S3 down at start: the log says why and that it serves anyway" \
	grep -q 'not available at start.*starting anyway' "$T/log/responder_b.log"
fcgi_b() { FCGI_SOCK=$SOCK_B fcgi_request "$@"; }
fcgi_b GET /readyz >"$T/b-ready"
like "$(head_of "$T/b-ready")" 'Status: 503' "S3 down: /readyz answers 503"
like "$(body_of "$T/b-ready")" '^not ready: storage' "S3 down: /readyz says the storage is why"
start=$SECONDS
fcgi_b GET "/v2/test/small/blobs/$LAYER" >"$T/b-blob"
body_of "$T/b-blob" >"$T/b-body"
is "$(sha256_of "$T/b-body")" "$LAYER" "S3 down: a blob request is served from the upstream"
ok "$((SECONDS - start <= 5 ? 0 : 1))" "S3 down: it is answered at once ($((SECONDS - start)) s), not after S3's timeouts"
check "S3 comes back" start_swift
b_ready() { fcgi_b GET /readyz | body_of /dev/stdin | grep -q '^ready$'; }
check "S3 back: /readyz says ready within the fast-failure window" wait_until 20 b_ready
stop responder_b TERM 15
is "$?" 0 "the second responder exits 0 on SIGTERM"

# --- a spool directory that cannot be written: misses could not be kept ---
SOCK_C=$T/run/fcgi-c.sock
TMPDIR=$T/no-such-dir s3_responder responder_c "$SOCK_C" "$S3_ENDPOINT" || bail "responder c did not start"
FCGI_SOCK=$SOCK_C fcgi_request GET /readyz >"$T/c-ready"
like "$(head_of "$T/c-ready")" 'Status: 503' "no spool directory: /readyz answers 503"
like "$(body_of "$T/c-ready")" '^not ready: storage spool' "no spool directory: /readyz says the spool is why"
stop responder_c TERM 15
check "the second responder's log has no sanitizer report" sanitizer_clean "$T/log/responder_b.log"

stop nginx
stop_responder_checked
done_testing
