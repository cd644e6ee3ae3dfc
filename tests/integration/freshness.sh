#!/usr/bin/env bash
# freshness.sh - tags are revalidated, outages are survived, old content goes.
#   tag refresh: a tag retagged upstream comes back with its new digest once
#   past manifest_invalidation_time (1s here); an unchanged tag costs the
#   upstream a HEAD, never a GET; digest references are never revalidated;
#   429 and 5xx: an uncached manifest gets the upstream's 429 (Retry-After
#   passed on) or 502, a cached tag is served stale with a Warning header;
#   upstream down: cached tags and digests are still pulled, an uncached
#   image fails fast with 502/503;
#   cleanup: content unused for blob_invalidation_time is removed by the
#   periodic cleanup (--cleanup-interval) and fetched again when asked for.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program docker-registry skopeo nginx curl openssl
need_responder

ACCEPT=(-H 'Accept: application/vnd.oci.image.manifest.v1+json'
	-H 'Accept: application/vnd.oci.image.index.v1+json')

# --- setup: docker-registry, a static upstream with a failure switch, the mirror ---
start_upstream || bail "docker-registry upstream did not start"
FRESH1=$(make_image fresh v1 --layers 2 --size 8192) || bail "cannot push test/fresh:v1"
FRESH2=$(make_image other v1 --layers 2 --size 8192) || bail "cannot push test/other:v1"
KEEP=$(make_image keep v1 --layers 1 --size 8192) || bail "cannot push test/keep:v1"

STATIC_PORT=$(free_ports 1)
STATIC_LOG=$T/log/static.log
STATIC_MODE=$T/static.mode
STATIC=$("$PYTHON" "$TESTLIB/util.py" mkimage "$T/static" v1 --layers 2 --size 4096) ||
	bail "cannot make the static upstream's image"
STATIC2=$("$PYTHON" "$TESTLIB/util.py" mkimage "$T/static" v2 --layers 1 --size 4096) ||
	bail "cannot make the static upstream's second image"
echo ok >"$STATIC_MODE"
: >"$STATIC_LOG"
spawn static "$T/log/static.out" "$PYTHON" "$TESTLIB/servers.py" static "$STATIC_PORT" \
	--layout "$T/static" --mode-file "$STATIC_MODE" --log "$STATIC_LOG"
wait_ready static 20 tcp_open "$STATIC_PORT" || bail "static upstream did not start"

export MANIFEST_INVALIDATION_TIME=1s
EXTRA_UPSTREAMS=$(upstream_entry static.test "127.0.0.1:$STATIC_PORT" "tls: false" \
	"manifest_invalidation_time: 1s")
export EXTRA_UPSTREAMS
start_mirror --workers 8 --connect-timeout 5 --low-speed-timeout 10 || bail "mirror did not start"
diag "upstream $UPSTREAM, static upstream 127.0.0.1:$STATIC_PORT, mirror $MIRROR, test dir $T"

# mirror_digest PATH: Docker-Content-Digest of a HEAD through nginx (empty unless 200).
mirror_digest() {
	[ "$(http_status "$1" -I "${ACCEPT[@]}")" = 200 ] && header Docker-Content-Digest
}

# digest_is PATH DIGEST: the mirror names DIGEST for PATH.
digest_is() {
	[ "$(mirror_digest "$1")" = "$2" ]
}

# record_age NS REPO TAG: seconds since the upstream last confirmed the tag.
record_age() {
	echo $(($(date +%s) - $(stat -c %Y "$CACHE/manifests/$1/$2/_tags/$3")))
}

# wait_stale NS REPO TAG: wait (bounded) until the tag is past the 1s
# invalidation time with a margin.
wait_stale() {
	wait_until 10 eval "[ \"\$(record_age $1 $2 $3)\" -ge 2 ]"
}

# new_lines FILE START: the lines of FILE after the first START.
new_lines() {
	tail -n "+$(($2 + 1))" "$1"
}

lines() {
	wc -l <"$1"
}

# --- tag refresh ---
check "pull reg.test/test/fresh:v1" pull_through fresh1 reg.test/test/fresh:v1
is "$(pulled_digest fresh1)" "$FRESH1" "the first pull gives the tag's first image"
check "retag upstream: test/other:v1 copied to test/fresh:v1" \
	skopeo_q copy --src-cert-dir "$T/pki/certs.d" --dest-cert-dir "$T/pki/certs.d" \
	"docker://$UPSTREAM/test/other:v1" "docker://$UPSTREAM/test/fresh:v1"
is "$(upstream_digest fresh v1)" "$FRESH2" "the upstream now names the other image"
mark=$(lines "$UPSTREAM_LOG")
check "past the 1s invalidation time the mirror names the new digest (polled, 20 s at most)" \
	wait_until 20 digest_is /v2/reg.test/test/fresh/manifests/v1 "$FRESH2"
check "the changed tag was fetched with a GET" \
	grep -q '"GET /v2/test/fresh/manifests/v1 ' <(new_lines "$UPSTREAM_LOG" "$mark")
check "pull the retagged tag" pull_through fresh2 reg.test/test/fresh:v1
is "$(pulled_digest fresh2)" "$FRESH2" "the pull gives the new image"
check "the new image's blobs verify" pulled_verifies fresh2

check "the tag record gets past the invalidation time" wait_stale reg.test test/fresh v1
mark=$(lines "$UPSTREAM_LOG")
age=$(record_age reg.test test/fresh v1)
is "$(mirror_digest /v2/reg.test/test/fresh/manifests/v1)" "$FRESH2" \
	"unchanged tag past its invalidation time: same digest"
code=$(http_status /v2/reg.test/test/fresh/manifests/v1 "${ACCEPT[@]}")
is "$code" 200 "unchanged tag: GET through the mirror answers 200"
is "$(sha256_of "$T/body")" "$FRESH2" "unchanged tag: the body is the manifest"
check "unchanged tag: the upstream saw a HEAD for it" \
	wait_until 10 grep -q '"HEAD /v2/test/fresh/manifests/v1 ' "$UPSTREAM_LOG"
is "$(new_lines "$UPSTREAM_LOG" "$mark" | grep -c '"GET /v2/test/fresh/manifests/')" 0 \
	"unchanged tag: no manifest GET upstream"
age2=$(record_age reg.test test/fresh v1)
ok "$((age2 < age ? 0 : 1))" "unchanged tag: the HEAD confirmed the record (age $age s -> $age2 s)"
check "the responder logged the revalidation" \
	grep -q 'upstream HEAD reg.test test/fresh manifests v1 status=200' "$RESPONDER_LOG"

# --- digest references are never revalidated ---
check "pull by digest" pull_through bydigest "reg.test/test/fresh@$FRESH1"
is "$(pulled_digest bydigest)" "$FRESH1" "pull by digest of the old image still works"
sleep 2 # let time pass: past the 1s invalidation time of anything just stored
mark=$(lines "$UPSTREAM_LOG")
check "pull by digest again, later" pull_through bydigest2 "reg.test/test/fresh@$FRESH1"
is "$(new_lines "$UPSTREAM_LOG" "$mark" | grep -c '/v2/test/fresh/manifests/')" 0 \
	"a digest reference is not revalidated upstream"

# --- 429 and 5xx from the upstream ---
check "static.test: pull test/s:v1 over plain HTTP (tls: false)" pull_through static1 static.test/test/s:v1
is "$(pulled_digest static1)" "$STATIC" "static.test: manifest digest"
check "static.test: blobs verify" pulled_verifies static1
echo 429 >"$STATIC_MODE"
start=$SECONDS
code=$(http_status /v2/static.test/test/s/manifests/v2 "${ACCEPT[@]}")
is "$code" 429 "429 upstream, uncached manifest: 429"
is "$(header Retry-After)" 7 "... with the upstream's Retry-After: 7"
is "$(json_get "$T/body" errors 0 code 2>/dev/null)" TOOMANYREQUESTS "... and code TOOMANYREQUESTS"
code=$(http_status "/v2/static.test/test/s/blobs/sha256:$(printf x | sha256sum | cut -d' ' -f1)")
is "$code" 429 "429 upstream, uncached blob: 429"
is "$(header Retry-After)" 7 "... with Retry-After: 7"
ok "$((SECONDS - start < 10 ? 0 : 1))" "the 429s were answered at once ($((SECONDS - start)) s)"
check "static.test: tag record past its invalidation time" wait_stale static.test test/s v1
mark=$(lines "$STATIC_LOG")
code=$(http_status /v2/static.test/test/s/manifests/v1 "${ACCEPT[@]}")
is "$code" 200 "429 upstream, cached tag: served stale (200)"
is "$(sha256_of "$T/body")" "$STATIC" "... the cached manifest"
like "$(header Warning)" '^299 - "stale: ' "... with a Warning: 299 header through nginx"
check "the mirror did ask the upstream (a HEAD, answered 429)" \
	grep -q '^HEAD /v2/test/s/manifests/v1 mode=429 status=429' <(new_lines "$STATIC_LOG" "$mark")
check "429 upstream: skopeo pulls the cached image" pull_through static2 static.test/test/s:v1
is "$(pulled_digest static2)" "$STATIC" "429 upstream: pulled digest"
echo 500 >"$STATIC_MODE"
code=$(http_status /v2/static.test/test/s/manifests/v2 "${ACCEPT[@]}")
is "$code" 502 "500 upstream, uncached manifest: 502"
is "$(json_get "$T/body" errors 0 code 2>/dev/null)" UPSTREAM_FAILED "... code UPSTREAM_FAILED"
code=$(http_status /v2/static.test/test/s/manifests/v1 -I "${ACCEPT[@]}")
is "$code" 200 "500 upstream, cached tag: HEAD answered 200"
like "$(header Warning)" '^299 - "stale: ' "... with Warning: 299"
echo ok >"$STATIC_MODE"
is "$(mirror_digest /v2/static.test/test/s/manifests/v2)" "$STATIC2" "upstream back: the uncached tag is fetched"
check "the responder logged serving stale" grep -q 'serving stale static.test test/s:v1' "$RESPONDER_LOG"

# --- the upstream is down ---
check "pull test/keep:v1 while the upstream is up" pull_through keep1 reg.test/test/keep:v1
stop upstream
upstream_down() {
	! upstream_answers
}
check "upstream stopped" upstream_down
check "the tag is past its invalidation time" wait_stale reg.test test/keep v1
check "upstream down: pull by tag (stale)" pull_through keep2 reg.test/test/keep:v1
is "$(pulled_digest keep2)" "$KEEP" "upstream down: pulled digest by tag"
check "upstream down: blobs verify" pulled_verifies keep2
check "upstream down: pull by digest" pull_through keep3 "reg.test/test/keep@$KEEP"
is "$(pulled_digest keep3)" "$KEEP" "upstream down: pulled digest by digest"
check "upstream down: pull the retagged tag" pull_through fresh3 reg.test/test/fresh:v1
is "$(pulled_digest fresh3)" "$FRESH2" "upstream down: the retagged tag's last known digest"
code=$(http_status /v2/reg.test/test/keep/manifests/v1 -I "${ACCEPT[@]}")
is "$code" 200 "upstream down: curl -I of the stale tag: 200"
like "$(header Warning)" '^299 - "stale: ' "... with Warning: 299"
is "$(header Docker-Content-Digest)" "$KEEP" "... and its digest"
start=$SECONDS
code=$(http_status /v2/reg.test/test/never/manifests/v1 "${ACCEPT[@]}")
like "$code" '^50[23]$' "upstream down: uncached manifest gets 502/503"
code=$(http_status "/v2/reg.test/test/never/blobs/sha256:$(printf y | sha256sum | cut -d' ' -f1)")
like "$code" '^50[23]$' "upstream down: uncached blob gets 502/503"
ok "$((SECONDS - start < 10 ? 0 : 1))" "... quickly ($((SECONDS - start)) s)"
check "pull of an uncached image fails" pull_refused never reg.test/test/never:v1

stop nginx
stop_responder_checked

# --- cleanup of unused content ---
# no_old_blobs: no cached blob was last used more than 5 s ago.
no_old_blobs() {
	[ -z "$(find "$CACHE/blobs" -type f ! -newermt "@$(($(date +%s) - 5))" | head -n 1)" ]
}
# Every upstream keeps blobs 3 s, dynamic namespaces are off (they would keep them 30 d).
export BLOB_INVALIDATION_TIME=3s
EXTRA_UPSTREAMS=$(upstream_entry static.test "127.0.0.1:$STATIC_PORT" "tls: false" \
	"manifest_invalidation_time: 1s" "blob_invalidation_time: 3s")
# One blob and one record from the first run, to see them go.
SLAYER=$(json_get "$T/pulled/static1/manifest.json" layers 0 digest)
check "before cleanup: the static image's layer is cached" \
	test -f "$CACHE/blobs/sha256/${SLAYER:7:2}/${SLAYER:7}"
check "before cleanup: its tag record too" test -e "$CACHE/manifests/static.test/test/s/_tags/v1"
start_mirror --workers 4 --no-dynamic-namespaces --cleanup-interval 1 ||
	bail "mirror with cleanup did not start"
check "a cleanup pass removes old content (log line 'cleanup:', 30 s at most)" \
	wait_until 30 grep -q 'cleanup: ' "$RESPONDER_LOG"
check "the unused layer is gone" \
	wait_until 30 test ! -e "$CACHE/blobs/sha256/${SLAYER:7:2}/${SLAYER:7}"
check "the unused tag record is gone" \
	wait_until 30 test ! -e "$CACHE/manifests/static.test/test/s/_tags/v1"
check "no blob unused for more than 3 s is left" wait_until 30 no_old_blobs
mark=$(lines "$STATIC_LOG")
check "after cleanup: the image is pulled again" pull_through static3 static.test/test/s:v1
is "$(pulled_digest static3)" "$STATIC" "after cleanup: digest"
check "after cleanup: blobs verify" pulled_verifies static3
check "after cleanup: the blobs came from the upstream again" \
	grep -q "^GET /v2/test/s/blobs/$SLAYER " <(new_lines "$STATIC_LOG" "$mark")
stop nginx
stop_responder_checked
done_testing
