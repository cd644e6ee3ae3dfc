#!/usr/bin/env bash
# badinput.sh - bad requests through nginx get the right 4xx status and OCI
# error code (never a 500), write nothing into the cache, and an unreachable
# upstream gives a prompt 502/503.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program docker-registry skopeo nginx curl openssl
need_responder

start_upstream || bail "docker-registry upstream did not start"
make_image small v1 --layers 1 --size 4096 >/dev/null || bail "cannot push test/small:v1"
start_mirror --default-namespace reg.test --workers 4 || bail "mirror did not start"
diag "upstream $UPSTREAM, mirror $MIRROR, test dir $T"
ZERO=sha256:$(printf '0%.0s' {1..64})

# error_code: the first OCI error code of the last body ("" if not OCI JSON).
error_code() {
	json_get "$T/body" errors 0 code 2>/dev/null
}

# expect_error STATUS CODE PATH [curl options]: status and OCI error code.
expect_error() {
	local want=$1 code=$2 path=$3 got
	shift 3
	got=$(http_status "$path" "$@")
	is "$got" "$want" "${*:+$* }$path: status $want"
	is "$(error_code)" "$code" "${*:+$* }$path: error code $code"
}

# expect_4xx PATH [curl options]: some client error, whoever answers it.
expect_4xx() {
	local path=$1 got
	shift
	got=$(http_status "$path" --path-as-is "$@")
	like "$got" '^4[0-9][0-9]$' "${*:+$* }${path:0:80}: 4xx (got $got)"
}

blobs_count() {
	find "$CACHE/blobs" -type f 2>/dev/null | wc -l
}

# --- the base endpoint ---
is "$(http_status /v2/)" 200 "GET /v2/: 200"
is "$(tr -d ' \n' <"$T/body")" '{}' "GET /v2/: body {}"
is "$(header Docker-Distribution-API-Version)" registry/2.0 "GET /v2/: Docker-Distribution-API-Version"

BLOBS_BEFORE=$(blobs_count)

# --- malformed names, tags, digests ---
expect_error 400 NAME_INVALID /v2/test/Small/manifests/v1
expect_error 400 NAME_INVALID /v2/test/sm___all/manifests/v1
expect_error 400 NAME_INVALID /v2/test/small./manifests/v1
expect_error 400 NAME_INVALID "/v2/test/-small/blobs/$ZERO"
expect_error 400 DIGEST_INVALID /v2/test/small/blobs/sha256:1234
expect_error 400 DIGEST_INVALID "/v2/test/small/blobs/sha256:$(printf 'Z%.0s' {1..64})"
expect_error 400 DIGEST_INVALID /v2/test/small/blobs/v1
expect_error 400 DIGEST_INVALID /v2/test/small/blobs/sha256:totallywrong
# a well-formed digest of an algorithm we do not hash: a bad digest, not a 405
expect_error 400 DIGEST_INVALID /v2/test/small/blobs/md5:abc
like "$(json_get "$T/body" errors 0 detail)" 'unsupported digest algorithm' \
	"blobs/md5:abc: the error says the algorithm is not supported"
is "$(http_status /v2/test/small/blobs/md5:abc -I)" 400 "HEAD blobs/md5:abc: status 400"

# --- a manifest reference that is neither tag nor digest names nothing: 404 ---
# (the conformance suite's .INVALID_MANIFEST_NAME), asked of no upstream.
for ref in .INVALID_MANIFEST_NAME -v1 "$(printf 'a%.0s' {1..129})" sha256:abc \
	sha256:totallywrong md5:abc; do
	expect_error 404 MANIFEST_UNKNOWN "/v2/test/small/manifests/$ref"
	is "$(http_status "/v2/test/small/manifests/$ref" -I)" 404 "HEAD manifests/${ref:0:40}: status 404"
done
check "no invalid manifest reference was asked of the upstream" \
	eval "! grep -Eq 'manifests/(\\.INVALID|-v1|aaaa|sha256:abc|sha256:totally|md5:)' '$UPSTREAM_LOG'"

# --- unknown things ---
expect_error 404 MANIFEST_UNKNOWN /v2/test/small/manifests/nope
expect_error 404 BLOB_UNKNOWN "/v2/test/small/blobs/$ZERO"
expect_error 404 NOT_FOUND /v2/test/small/wat/v1

# --- a pull-through cache accepts no writes ---
expect_error 405 UNSUPPORTED /v2/test/small/manifests/v1 -X PUT --data-binary '{}'
expect_error 405 UNSUPPORTED /v2/test/small/blobs/uploads/ -X POST
expect_error 405 UNSUPPORTED /v2/test/small/blobs/uploads/x -X PATCH --data-binary x
expect_error 405 UNSUPPORTED /v2/test/small/manifests/v1 -X DELETE
expect_error 405 UNSUPPORTED "/v2/test/small/blobs/$ZERO" -X DELETE

# --- dynamic namespaces must not reach internal addresses (SSRF) ---
expect_error 403 DENIED "/v2/test/small/manifests/v1?ns=localhost:$UPSTREAM_PORT"
expect_error 403 DENIED "/v2/test/small/manifests/v1?ns=$UPSTREAM"
expect_error 403 DENIED "/v2/test/small/manifests/v1?ns=%5B::1%5D:$UPSTREAM_PORT"
expect_error 403 DENIED "/v2/test/small/manifests/v1?ns=10.1.2.3"
# other spellings of loopback, link-local metadata, *.localhost
for ns in 127.1 0x7f000001 2130706433 169.254.169.254 foo.localhost; do
	expect_error 403 DENIED "/v2/test/small/manifests/v1?ns=$ns:$UPSTREAM_PORT"
done
expect_error 403 DENIED "/v2/$UPSTREAM/test/small/manifests/v1"
expect_error 403 DENIED "/v2/localhost:$UPSTREAM_PORT/test/small/blobs/$ZERO"

# --- path traversal and oversized input ---
expect_4xx /v2/../x
expect_4xx /v2/a/%2e%2e/manifests/x
expect_4xx /v2/test/%2e%2e/%2e%2e/manifests/x
expect_4xx /v2/test/small/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd
expect_4xx /v2/test/small/manifests/..%2f..%2fx
expect_4xx "/v2/test/small/manifests/v1?ns=..%2f..%2fetc"
expect_4xx /v2/test/sm%00all/manifests/v1
expect_4xx "/v2/$(printf 'a%.0s' {1..300})/manifests/v1"
expect_4xx "/v2/$(printf 'abcdefgh/%.0s' {1..1000})manifests/v1"
expect_4xx "/v2/test/small/manifests/v1?ns=$(printf 'a%.0s' {1..3000}).example"

is "$(blobs_count)" "$BLOBS_BEFORE" "no blob was stored for failed requests"
check "nginx logged no 500 from the responder" \
	eval "! grep -Eq '\" 5[0-9][0-9] ' '$T/log/nginx-access.log'"

# --- the upstream goes away ---
LAYER=$(upstream_curl /v2/test/small/manifests/v1 -H 'Accept: application/vnd.oci.image.manifest.v1+json' |
	json_get - layers 0 digest)
is "$(http_status "/v2/test/small/blobs/$LAYER")" 200 "blob fetched while the upstream is up"
stop upstream
# The responder commits a blob just after its last byte went out: let it finish.
check "the fetched blob is committed" wait_until 20 cache_tmp_empty
BLOBS_BEFORE=$(blobs_count)

start=$SECONDS
code=$(http_status /v2/test/other/manifests/v1 --max-time 60)
like "$code" '^50[23]$' "uncached manifest, upstream down: 502 or 503 (got $code)"
ok "$((SECONDS - start <= 35 ? 0 : 1))" "... answered within 35 s ($((SECONDS - start)) s)"
code=$(http_status "/v2/test/other/blobs/$ZERO" --max-time 60)
like "$code" '^50[23]$' "uncached blob, upstream down: 502 or 503 (got $code)"
is "$(http_status "/v2/test/small/blobs/$LAYER")" 200 "cached blob still served with the upstream down"
is "$(sha256_of "$T/body")" "$LAYER" "... with the right content"
is "$(blobs_count)" "$BLOBS_BEFORE" "no blob was stored for requests that failed upstream"
check "cache tmp/ is empty" cache_tmp_empty

stop nginx
stop_responder_checked
done_testing
