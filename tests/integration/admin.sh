#!/usr/bin/env bash
# admin.sh - the /_admin/ API through contrib/nginx: DELETE of a tag, a
# manifest by digest, a blob, a repository and a namespace (each then a miss,
# fetched again whole); 404 for what is not cached and for junk paths, 405
# for other methods; 403 for requests that reach the responder without the
# front's marker; without --admin, a 404 like any unknown path; and a
# removed manifest no longer answered by nginx after --front-cache-time.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/cache.sh
. "$TESTLIB/cache.sh"

need_program docker-registry skopeo nginx curl cgi-fcgi
need_responder

# admin METHOD PATH: a request to the admin API through nginx; prints the status.
admin() {
	http_status "$2" -X "$1"
}

start_upstream || bail "docker-registry upstream did not start"
make_image one v1 --layers 1 >/dev/null || bail "cannot push test/one"
make_image two v1 --layers 1 >/dev/null || bail "cannot push test/two"
EXTRA_UPSTREAMS=$(upstream_entry other.test "$UPSTREAM")

# --- off by default: a 404 like any unknown path -------------------------------------
start_mirror --default-namespace reg.test || bail "mirror did not start"
check "pull reg.test/test/one" pull_image reg.test one
ONE_LAYER=$(json_get "$T/one.json" layers 0 digest)
is "$(admin DELETE "/_admin/blobs/$ONE_LAYER")" 404 "without --admin: 404"
like "$(cat "$T/body")" '"NOT_FOUND"' "without --admin: the body of an unknown path"
check "without --admin: nothing removed" test -e "$(blob_file "$ONE_LAYER")"
stop_responder_checked
stop nginx

# --- on --------------------------------------------------------------------------------
start_mirror --default-namespace reg.test --admin || bail "mirror did not start with --admin"
check "pull reg.test/test/one" pull_image reg.test one
check "pull reg.test/test/two" pull_image reg.test two
check "pull other.test/test/one" pull_image other.test one
ONE_MANIFEST=$(sha256_of "$T/one.json")

is "$(admin DELETE /_admin/manifests/reg.test/test/one/v1)" 200 "DELETE a tag: 200"
is "$(json_get "$T/body" records)" 1 "DELETE a tag: one record"
is "$(admin DELETE /_admin/manifests/reg.test/test/one/v1)" 404 "DELETE it again: 404"
like "$(cat "$T/body")" '"MANIFEST_UNKNOWN"' "DELETE it again: MANIFEST_UNKNOWN"
check "the deleted tag is pulled again" pull_image reg.test one again

is "$(admin DELETE "/_admin/blobs/$ONE_LAYER")" 200 "DELETE a blob: 200"
is "$(json_get "$T/body" blobs)" 1 "DELETE a blob: one blob"
check "DELETE a blob: gone from the cache" test ! -e "$(blob_file "$ONE_LAYER")"
is "$(admin DELETE "/_admin/blobs/$ONE_LAYER")" 404 "DELETE it again: 404"
like "$(cat "$T/body")" '"BLOB_UNKNOWN"' "DELETE it again: BLOB_UNKNOWN"
check "the deleted blob is fetched again, whole" pull_image reg.test one

is "$(admin DELETE "/_admin/manifests/reg.test/test/one/$ONE_MANIFEST")" 200 "DELETE a manifest by digest: 200"
is "$(json_get "$T/body" blobs)" 1 "DELETE a manifest by digest: its content too"
is "$(admin DELETE /_admin/repositories/reg.test/test/two)" 200 "DELETE a repository: 200"
is "$(json_get "$T/body" records)" 2 "DELETE a repository: its tag and digest records"
is "$(admin DELETE /_admin/namespaces/other.test)" 200 "DELETE a namespace: 200"
is "$(find "$CACHE/manifests/other.test" -type f 2>/dev/null | wc -l)" 0 "DELETE a namespace: no record left"
is "$(admin DELETE /_admin/namespaces/other.test)" 404 "DELETE an empty namespace: 404"
check "pulls work after all that" pull_image other.test one again

# --- junk and other methods ------------------------------------------------------------
for path in /_admin/ /_admin/frob /_admin/blobs/sha256:nothex /_admin/blobs/ \
	/_admin/manifests/reg.test/test /_admin/manifests/reg.test/../x/v1 \
	/_admin/repositories/reg.test /_admin/namespaces/-bad- "/_admin/manifests/reg.test/Test/v1"; do
	is "$(admin DELETE "$path")" 404 "junk $path: 404"
done
is "$(admin GET /_admin/namespaces/reg.test)" 405 "GET of an admin path: 405"
is "$(header Allow)" DELETE "GET of an admin path: Allow: DELETE"
is "$(admin GET /_admin/frob)" 404 "GET of a junk admin path: 404"

# --- not through the front's admin location: refused ------------------------------------
check "pull reg.test/test/two again" pull_image reg.test two again
resp=$(fcgi_request DELETE /_admin/namespaces/reg.test | tr -d '\r')
like "$resp" '^Status: 403' "straight to the socket, without the marker: 403"
like "$resp" 'DENIED' "without the marker: DENIED"
like "$(fcgi_request DELETE /_admin | tr -d '\r')" '^Status: 404' "junk /_admin straight to the socket: 404"
check "without the marker: nothing removed" test -n "$(find "$CACHE/manifests/reg.test" -type f)"
stop_responder_checked
stop nginx

# --- a removal reaches clients once nginx's manifest cache lets go ----------------------
# An image the upstream withdraws: the operator removes it here too, and
# clients must stop getting it, although nginx keeps manifest answers.
GONE=$(make_image gone v1 --layers 1 --size 1024) || bail "cannot push test/gone"
start_mirror --default-namespace reg.test --admin --front-cache-time 2s ||
	bail "mirror did not start with --front-cache-time"
GONE_URI=/v2/test/gone/manifests/$GONE
fcgi_request GET "$GONE_URI" >"$T/fcgi-gone" 2>"$T/fcgi.err"
is "$(header X-Accel-Expires <(head_of "$T/fcgi-gone"))" 2 \
	"--front-cache-time 2s: nginx may keep a digest's answer 2 s, not blob_invalidation_time"
for i in 1 2; do http_status "$GONE_URI" >/dev/null; done
is "$(header X-Cache-Status)" HIT "the manifest is answered from nginx's cache"
is "$(upstream_curl "$GONE_URI" -X DELETE -o /dev/null -w '%{http_code}')" 202 "the upstream withdraws it"
is "$(admin DELETE "/_admin/manifests/reg.test/test/gone/$GONE")" 200 "DELETE it here: 200"
# gone_for_clients: a GET through nginx answers 404 MANIFEST_UNKNOWN.
gone_for_clients() { [ "$(http_status "$GONE_URI")" = 404 ]; }
check "within --front-cache-time, clients get 404 (nginx asks the responder again)" \
	wait_until 10 gone_for_clients
like "$(cat "$T/body")" MANIFEST_UNKNOWN "... MANIFEST_UNKNOWN"
stop_responder_checked
stop nginx

done_testing
