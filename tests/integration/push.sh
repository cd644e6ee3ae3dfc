#!/usr/bin/env bash
# push.sh - pushes to a hosted namespace through nginx with HTTP Basic on
# writes (contrib/nginx/push-auth.conf, an htpasswd -B file): skopeo copies
# an image and a multi-arch index there and back; curl walks the upload
# protocol (monolithic, chunked, streamed, resumed after a restart of the
# responder, cancelled, mounted), manifests (by tag and digest, with a
# subject), tags, referrers, the catalog and deletes, with a test for each
# status code the spec names and for bad input. PUSH_STORAGE=s3 (push_s3.sh)
# runs it all on S3 storage (Swift with s3api, tests/lib/swift.sh).

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/lighttpd.sh
. "$TESTLIB/lighttpd.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"
# shellcheck source=tests/lib/hosted.sh
. "$TESTLIB/hosted.sh"

need_program skopeo nginx curl htpasswd cgi-fcgi
need_responder

# A hosted namespace whose entry does not allow deletes, and one only carol
# may push to, next to hosted.test.
EXTRA_UPSTREAMS=$(printf '%s\n' "$EXTRA_UPSTREAMS" '- namespace: nodelete.test' '  hosted: true' \
	'- namespace: team.test' '  hosted: true' '  push_users: [carol]')
htpasswd -B -b "$T/htpasswd" carol secret2 2>/dev/null || bail "htpasswd failed"

if [ "${PUSH_STORAGE:-}" = s3 ]; then
	"$PYTHON" -c 'import swift.common.middleware.s3api' 2>/dev/null ||
		bail "Debian's python3-swift is not installed (scripts/test installs it)"
	start_swift || bail "Swift (s3api) did not start"
	s3_cli oci-push mb || bail "cannot create the bucket"
fi
start_push_responder || bail "the responder did not start"
start_nginx || bail "nginx did not start"
diag "mirror $MIRROR, storage ${PUSH_STORAGE:-filesystem}, test dir $T"

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json

# --- who may write ---
# Clients send credentials only to a registry whose /v2/ asked for them.
expect "$(http_status /v2/)" 401 UNAUTHORIZED "GET /v2/ without credentials asks for them"
is "$(header WWW-Authenticate)" 'Basic realm="oci-registry"' "the ping's Basic challenge"
is "$(http_status /v2/ "${CREDS[@]}")" 200 "GET /v2/ with credentials"
is "$(http_status /v2/reg.test/)" 200 "a mirrored namespace's /v2/ asks for nothing"
expect "$(http_status /v2/myorg/app/blobs/uploads/ -X POST)" 401 "" "POST without credentials"
is "$(header WWW-Authenticate)" 'Basic realm="oci-registry"' "401 carries a Basic challenge"
expect "$(http_status /v2/myorg/app/blobs/uploads/ -X POST -u alice:wrong)" 401 "" \
	"POST with a wrong password"
expect "$(st POST /v2/reg.test/x/blobs/uploads/)" 405 UNSUPPORTED "a mirrored namespace takes no push"
expect "$(st PUT /v2/reg.test/x/manifests/v1 --data-binary '{}')" 405 UNSUPPORTED \
	"a mirrored namespace takes no manifest"
# A REMOTE_USER that the front server did not check is no user.
out=$(env -i REQUEST_METHOD=POST REQUEST_URI=/v2/myorg/app/blobs/uploads/ REMOTE_USER=alice \
	CONTENT_LENGTH=0 SERVER_SOFTWARE=nginx/1.22.1 timeout 30 cgi-fcgi -bind -connect "$FCGI_SOCK" \
	</dev/null | tr -d '\r')
like "$(head -1 <<<"$out")" '^Status: 401' "an unchecked REMOTE_USER gets 401 from the responder"
# push_users: [carol]: another checked user is refused, carol writes, anyone reads.
expect "$(st POST /v2/team.test/app/blobs/uploads/)" 403 DENIED "push_users: alice may not push to team.test"
like "$(json_get "$T/body" errors 0 detail)" 'push_users' "... and the detail says why"
expect "$(http_status "/v2/team.test/app/blobs/uploads/?digest=$(printf 'x' | sha256sum | sed 's/^/sha256:/;s/ .*//')" \
	-X POST -u carol:secret2 --data-binary x -H 'Content-Type: application/octet-stream')" 201 "" \
	"push_users: carol pushes a blob to team.test"
is "$(http_status "/v2/team.test/app/blobs/$(printf 'x' | sha256sum | sed 's/^/sha256:/;s/ .*//')")" 200 \
	"push_users: the blob is read without credentials"
expect "$(st DELETE "/v2/team.test/app/blobs/$(printf 'x' | sha256sum | sed 's/^/sha256:/;s/ .*//')")" 403 DENIED \
	"push_users: alice may not delete there either"

# --- a monolithic upload, sent back by nginx ---
blob_file big 3000000
BIG=$(sha256_of "$T/big")
expect "$(st POST "/v2/myorg/app/blobs/uploads/?digest=$BIG" --data-binary "@$T/big" \
	-H 'Content-Type: application/octet-stream')" 201 "" "monolithic POST"
is "$(header Location)" "/v2/myorg/app/blobs/$BIG" "monolithic POST: Location"
is "$(header Docker-Content-Digest)" "$BIG" "monolithic POST: Docker-Content-Digest"
is "$(http_status "/v2/myorg/app/blobs/$BIG")" 200 "GET of the pushed blob"
check "the blob comes back as pushed" cmp -s "$T/body" "$T/big"
is "$(header Docker-Content-Digest)" "$BIG" "GET of the blob: Docker-Content-Digest"
is "$(http_status "/v2/myorg/app/blobs/$BIG" -I)" 200 "HEAD of the pushed blob"
is "$(header Content-Length)" 3000000 "HEAD of the blob: Content-Length"
is "$(header Docker-Content-Digest)" "$BIG" "HEAD of the blob: Docker-Content-Digest"
expect "$(http_status "/v2/myorg/other/blobs/$BIG")" 404 BLOB_UNKNOWN "another repository lacks it"

# --- a chunked upload, with an out-of-order chunk, a streamed one, and a restart ---
blob_file chunked 700000
head -c 300000 "$T/chunked" >"$T/part1"
tail -c +300001 "$T/chunked" | head -c 200000 >"$T/part2"
tail -c +500001 "$T/chunked" >"$T/part3"
CHUNKED=$(sha256_of "$T/chunked")
expect "$(st POST /v2/myorg/app/blobs/uploads/)" 202 "" "POST starts a session"
SESSION=$(header Location)
like "$SESSION" '^/v2/myorg/app/blobs/uploads/[0-9a-f]{32}$' "the session's Location"
is "$(header Range)" 0-0 "a new session: Range 0-0"
like "$(header Docker-Upload-UUID)" '^[0-9a-f]{32}$' "a new session: Docker-Upload-UUID"
expect "$(st PATCH "$SESSION" --data-binary "@$T/part1" -H 'Content-Range: 0-299999' \
	-H 'Content-Type: application/octet-stream')" 202 "" "PATCH of the first chunk"
is "$(header Range)" 0-299999 "after the first chunk: Range"
is "$(header Location)" "$SESSION" "after the first chunk: Location"
expect "$(st PATCH "$SESSION" --data-binary "@$T/part1" -H 'Content-Range: 0-299999')" 416 \
	BLOB_UPLOAD_INVALID "the first chunk sent again"
expect "$(st PATCH "$SESSION" --data-binary "@$T/part3" -H 'Content-Range: 500000-699999')" 416 \
	BLOB_UPLOAD_INVALID "an out-of-order chunk"
is "$(header Range)" 0-299999 "416 says what the session holds"
expect "$(st PATCH "$SESSION" --data-binary "@$T/part2" -H 'Content-Range: 300000-300009')" 416 \
	BLOB_UPLOAD_INVALID "a Content-Range that is not the body's length"
# A refused chunk is answered before its body is read; the connection recovers.
expect "$(st PATCH "$SESSION" --data-binary "@$T/big" -H 'Content-Range: 0-2999999')" 416 \
	BLOB_UPLOAD_INVALID "a 3 MB chunk at the wrong offset"
expect "$(http_status "$SESSION")" 204 "" "the next request is answered"
# Any process sharing the storage carries a session on.
stop responder TERM 15
start_push_responder || bail "responder did not restart"
expect "$(http_status "$SESSION")" 204 "" "GET of the session after a restart"
is "$(header Range)" 0-299999 "the session survived the restart"
is "$(header Location)" "$SESSION" "GET of the session: Location"
# A chunk without a length (chunked transfer encoding), streamed to storage.
expect "$(st PATCH "$SESSION" -T "$T/part2" -H 'Transfer-Encoding: chunked')" 202 "" \
	"PATCH with a chunked body and no Content-Range"
is "$(header Range)" 0-499999 "the streamed chunk is appended"
is "$(header Location)" "$SESSION" "after the streamed chunk: Location"
expect "$(st PUT "$SESSION?digest=$CHUNKED" --data-binary "@$T/part3" \
	-H 'Content-Range: 500000-699999')" 201 "" "PUT closes with the last chunk"
is "$(header Docker-Content-Digest)" "$CHUNKED" "closing: Docker-Content-Digest"
is "$(http_status "/v2/myorg/app/blobs/$CHUNKED")" 200 "the chunked blob is served"
check "the chunked blob comes back whole" cmp -s "$T/body" "$T/chunked"
expect "$(http_status "$SESSION")" 404 BLOB_UPLOAD_UNKNOWN "a closed session is gone"

# --- bad digests, cancel ---
expect "$(st POST /v2/myorg/app/blobs/uploads/)" 202 "" "another session"
SESSION=$(header Location)
expect "$(st PATCH "$SESSION" --data-binary "@$T/part1")" 202 "" "PATCH without Content-Range"
expect "$(st PUT "$SESSION")" 400 DIGEST_INVALID "PUT without a digest"
expect "$(st PUT "$SESSION?digest=sha256:1234")" 400 DIGEST_INVALID "PUT with a malformed digest"
expect "$(st PUT "$SESSION?digest=$BIG")" 400 DIGEST_INVALID "PUT with the wrong digest"
PART1=$(sha256_of "$T/part1")
expect "$(http_status "/v2/myorg/app/blobs/$PART1" -I)" 404 "" "nothing visible after a mismatch"
expect "$(st POST /v2/myorg/app/blobs/uploads/)" 202 "" "a session to cancel"
SESSION=$(header Location)
expect "$(st DELETE "$SESSION")" 204 "" "DELETE cancels a session"
expect "$(st PATCH "$SESSION" --data-binary x)" 404 BLOB_UPLOAD_UNKNOWN "a cancelled session is gone"
expect "$(st PATCH /v2/myorg/app/blobs/uploads/0123456789abcdef0123456789abcdef --data-binary x)" \
	404 BLOB_UPLOAD_UNKNOWN "an unknown session"
expect "$(st PUT "/v2/myorg/app/blobs/uploads/0123456789abcdef0123456789abcdef?digest=$BIG")" \
	404 BLOB_UPLOAD_UNKNOWN "PUT to an unknown session"
expect "$(st POST "/v2/myorg/app/blobs/uploads/?digest=$BIG" --data-binary 'not it')" 400 \
	DIGEST_INVALID "a monolithic POST that does not match"
# A session closed by one PUT that carries the whole blob.
blob_file whole 100000
WHOLE=$(sha256_of "$T/whole")
expect "$(st POST /v2/myorg/app/blobs/uploads/ -H 'Content-Length: 0')" 202 "" "a session for one PUT"
SESSION=$(header Location)
expect "$(st PUT "$SESSION?digest=$WHOLE" --data-binary "@$T/whole" \
	-H 'Content-Type: application/octet-stream')" 201 "" "PUT of a whole blob to a session"
is "$(header Location)" "/v2/myorg/app/blobs/$WHOLE" "PUT of a whole blob: Location"
is "$(http_status "/v2/myorg/app/blobs/$WHOLE" -I)" 200 "the blob of one PUT is there"
# Streamed: one PATCH with no Content-Range, then a PUT with no body.
blob_file streamed 50000
STREAMED=$(sha256_of "$T/streamed")
expect "$(st POST /v2/myorg/app/blobs/uploads/ -H 'Content-Length: 0')" 202 "" "a session to stream to"
SESSION=$(header Location)
expect "$(st PATCH "$SESSION" --data-binary "@$T/streamed" -H 'Content-Type: application/octet-stream')" \
	202 "" "PATCH of the whole blob"
is "$(header Location)" "$SESSION" "the streamed PATCH: Location"
expect "$(st PUT "$SESSION?digest=$STREAMED" -H 'Content-Length: 0')" 201 "" "PUT with no body closes it"
is "$(header Location)" "/v2/myorg/app/blobs/$STREAMED" "closing with no body: Location"

# --- mounts ---
expect "$(st POST "/v2/myorg/copy/blobs/uploads/?mount=$BIG&from=myorg/app")" 201 "" \
	"a mount from a repository that has the blob"
is "$(header Location)" "/v2/myorg/copy/blobs/$BIG" "the mount's Location"
is "$(http_status "/v2/myorg/copy/blobs/$BIG" -I)" 200 "the mounted blob is there"
expect "$(st POST "/v2/myorg/copy/blobs/uploads/?mount=$BIG&from=myorg/none")" 202 "" \
	"a mount from a repository without it starts a session"
expect "$(st POST "/v2/myorg/third/blobs/uploads/?mount=$CHUNKED")" 202 "" \
	"a mount without from of a blob the storage holds starts a session (no automatic discovery)"
is "$(http_status "/v2/myorg/third/blobs/$CHUNKED" -I)" 404 "and links nothing into the repository"
expect "$(st POST "/v2/myorg/third/blobs/uploads/?mount=sha256:$(printf '0%.0s' {1..64})")" 202 "" \
	"a mount without from of a blob nowhere starts a session"
like "$(header Location)" '^/v2/myorg/third/blobs/uploads/[0-9a-f]{32}$' "that session's Location"
# from names a repository as the client's paths do: with the namespace too.
expect "$(st POST "/v2/hosted.test/myorg/fourth/blobs/uploads/?mount=$BIG&from=hosted.test/myorg/app")" \
	201 "" "a mount whose from names the namespace"
is "$(header Location)" "/v2/hosted.test/myorg/fourth/blobs/$BIG" "that mount's Location"
expect "$(st POST "/v2/hosted.test/myorg/fifth/blobs/uploads/?mount=$BIG&from=myorg/app")" 201 "" \
	"a mount from the default namespace's repository into the same namespace named"
expect "$(st POST "/v2/myorg/sixth/blobs/uploads/?mount=$BIG&from=reg.test/myorg/app")" 202 "" \
	"a mount from another namespace is an upload"
like "$(header Location)" '^/v2/myorg/sixth/blobs/uploads/[0-9a-f]{32}$' "its session's Location"

# --- manifests ---
CONFIG='{"architecture":"amd64","os":"linux"}'
printf '%s' "$CONFIG" >"$T/config"
CFG=$(sha256_of "$T/config")
expect "$(st POST "/v2/myorg/app/blobs/uploads/?digest=$CFG" --data-binary "@$T/config")" 201 "" \
	"the config blob"
manifest() { # manifest LAYER [SUBJECT]: an image manifest of the config and LAYER
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":3000000}]%s}' \
		"$OCI_MANIFEST" "$CFG" "${#CONFIG}" "$1" "${2:+,\"subject\":{\"mediaType\":\"$OCI_MANIFEST\",\"digest\":\"$2\",\"size\":1}}"
}
manifest "$BIG" >"$T/m1"
M1=$(sha256_of "$T/m1")
expect "$(st PUT /v2/myorg/app/manifests/v1 --data-binary 'not json' -H "Content-Type: $OCI_MANIFEST")" \
	400 MANIFEST_INVALID "a manifest that is not JSON"
manifest "$PART1" >"$T/m-missing"
expect "$(st PUT /v2/myorg/app/manifests/v1 --data-binary "@$T/m-missing" -H "Content-Type: $OCI_MANIFEST")" \
	400 MANIFEST_BLOB_UNKNOWN "a manifest that references a missing blob"
expect "$(st PUT "/v2/myorg/app/manifests/$(printf 't%.0s' {1..129})" --data-binary "@$T/m1" \
	-H "Content-Type: $OCI_MANIFEST")" 400 TAG_INVALID "a tag of 129 characters"
head -c 4194305 /dev/zero >"$T/huge"
expect "$(st PUT /v2/myorg/app/manifests/huge --data-binary "@$T/huge" -H "Content-Type: $OCI_MANIFEST")" \
	413 MANIFEST_INVALID "a manifest over 4 MiB"
expect "$(st PUT /v2/myorg/app/manifests/v1 --data-binary "@$T/m1" -H "Content-Type: $OCI_MANIFEST")" \
	201 "" "PUT of a manifest by tag"
is "$(header Docker-Content-Digest)" "$M1" "manifest PUT: Docker-Content-Digest"
is "$(header Location)" "/v2/myorg/app/manifests/$M1" "manifest PUT: Location"
is "$(http_status /v2/myorg/app/manifests/v1)" 200 "GET of the manifest by tag"
check "the manifest comes back byte for byte" cmp -s "$T/body" "$T/m1"
is "$(header Content-Type)" "$OCI_MANIFEST" "the manifest's Content-Type"
is "$(http_status "/v2/myorg/app/manifests/$M1" -I)" 200 "HEAD of the manifest by digest"
is "$(header Docker-Content-Digest)" "$M1" "HEAD by digest: Docker-Content-Digest"
is "$(http_status /v2/myorg/app/manifests/v1 -I)" 200 "HEAD of the manifest by tag"
is "$(header Docker-Content-Digest)" "$M1" "HEAD by tag: Docker-Content-Digest"
expect "$(http_status /v2/myorg/app/manifests/nosuchtag)" 404 MANIFEST_UNKNOWN "GET of a manifest never pushed"
is "$(http_status /v2/myorg/app/manifests/nosuchtag -I)" 404 "HEAD of a manifest never pushed"
# A reference that is neither tag nor digest names no manifest on a read.
expect "$(http_status /v2/myorg/app/manifests/.INVALID_MANIFEST_NAME)" 404 MANIFEST_UNKNOWN \
	"GET of a reference that cannot be a tag"
is "$(http_status /v2/myorg/app/manifests/.INVALID_MANIFEST_NAME -I)" 404 \
	"HEAD of a reference that cannot be a tag"
expect "$(http_status /v2/myorg/app/manifests/sha256:totallywrong)" 404 MANIFEST_UNKNOWN \
	"GET of a manifest by a malformed digest"
expect "$(http_status /v2/myorg/app/blobs/sha256:totallywrong)" 400 DIGEST_INVALID \
	"GET of a blob by a malformed digest"
# An image manifest with no layers (the suite's empty-layer push).
printf '{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
	"$CFG" "${#CONFIG}" >"$T/m-nolayers"
expect "$(st PUT /v2/myorg/app/manifests/nolayers --data-binary "@$T/m-nolayers" \
	-H "Content-Type: $OCI_MANIFEST")" 201 "" "PUT of a manifest with no layers"
is "$(header Location)" "/v2/myorg/app/manifests/$(sha256_of "$T/m-nolayers")" "no layers: Location"
st DELETE /v2/myorg/app/manifests/nolayers >/dev/null
# A tag moves at once, whatever nginx keeps.
manifest "$CHUNKED" >"$T/m2"
M2=$(sha256_of "$T/m2")
expect "$(st PUT "/v2/myorg/app/manifests/$M2" --data-binary "@$T/m2" -H "Content-Type: $OCI_MANIFEST")" \
	201 "" "PUT of a manifest by digest"
expect "$(st PUT "/v2/myorg/app/manifests/$M1" --data-binary "@$T/m2" -H "Content-Type: $OCI_MANIFEST")" \
	400 DIGEST_INVALID "PUT by a digest the bytes do not have"
expect "$(st PUT /v2/myorg/app/manifests/v1 --data-binary "@$T/m2" -H "Content-Type: $OCI_MANIFEST")" \
	201 "" "the tag moves to the second manifest"
http_status /v2/myorg/app/manifests/v1 >/dev/null
is "$(sha256_of "$T/body")" "$M2" "GET of the tag answers the new manifest"

# Concurrent pushes of one tag: the last writer wins, never a mix of two.
RACERS=()
for i in 1 2 3 4 5 6 7 8; do
	m=$T/m1
	[ $((i % 2)) -eq 0 ] || m=$T/m2
	curl -sS --max-time 30 -o /dev/null "${CREDS[@]}" -X PUT --data-binary "@$m" \
		-H "Content-Type: $OCI_MANIFEST" "http://$MIRROR/v2/myorg/app/manifests/race" &
	RACERS+=($!)
done
wait "${RACERS[@]}"
http_status /v2/myorg/app/manifests/race >/dev/null
like "$(sha256_of "$T/body")" "^($M1|$M2)\$" "concurrent pushes of a tag leave one whole manifest"

# --- referrers ---
manifest "$BIG" "$M1" >"$T/sig"
SIG=$(sha256_of "$T/sig")
expect "$(st PUT /v2/myorg/app/manifests/sig --data-binary "@$T/sig" -H "Content-Type: $OCI_MANIFEST")" \
	201 "" "PUT of a manifest with a subject"
is "$(header OCI-Subject)" "$M1" "the answer names the subject"
is "$(http_status "/v2/myorg/app/referrers/$M1")" 200 "GET of the referrers"
is "$(json_get "$T/body" manifests 0 digest)" "$SIG" "the referrer is listed"
is "$(http_status "/v2/myorg/app/referrers/$M1?artifactType=application/x.none")" 200 \
	"referrers with an artifactType filter"
is "$(header OCI-Filters-Applied)" artifactType "OCI-Filters-Applied"
is "$(json_get "$T/body" manifests)" "[]" "the filter leaves nothing"
expect "$(http_status /v2/myorg/app/referrers/sha256:bad)" 400 DIGEST_INVALID "referrers of a malformed digest"
is "$(http_status "/v2/myorg/app/referrers/sha256:$(printf 'f%.0s' {1..64})")" 200 \
	"referrers of a digest nothing refers to"
is "$(header Content-Type)" application/vnd.oci.image.index.v1+json "an empty list is an index"
is "$(json_get "$T/body" manifests)" "[]" "the empty list"
# Artifacts (artifactType, annotations) and an index referring to M2, and one to a
# subject that was never pushed.
ART=application/vnd.example.sbom
printf '{"schemaVersion":2,"mediaType":"%s","artifactType":"%s","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"%s","digest":"%s","size":%s}],"subject":{"mediaType":"%s","digest":"%s","size":1},"annotations":{"org.example.key":"%s"}}' \
	"$OCI_MANIFEST" "$ART" "$CFG" "${#CONFIG}" "$ART" "$CFG" "${#CONFIG}" "$OCI_MANIFEST" "$M2" one >"$T/art"
ARTD=$(sha256_of "$T/art")
expect "$(st PUT "/v2/myorg/app/manifests/$ARTD" --data-binary "@$T/art" -H "Content-Type: $OCI_MANIFEST")" \
	201 "" "PUT of an artifact with a subject"
is "$(header OCI-Subject)" "$M2" "the artifact's OCI-Subject"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/vnd.example.idx","manifests":[{"mediaType":"%s","digest":"%s","size":%s}],"subject":{"mediaType":"%s","digest":"%s","size":1}}' \
	"$OCI_MANIFEST" "$M1" "$(wc -c <"$T/m1")" "$OCI_MANIFEST" "$M2" >"$T/artidx"
ARTIDX=$(sha256_of "$T/artidx")
expect "$(st PUT "/v2/myorg/app/manifests/$ARTIDX" --data-binary "@$T/artidx" \
	-H 'Content-Type: application/vnd.oci.image.index.v1+json')" 201 "" "PUT of an index with a subject"
is "$(header OCI-Subject)" "$M2" "the index's OCI-Subject"
is "$(http_status "/v2/myorg/app/referrers/$M2")" 200 "referrers of M2"
is "$(header Content-Type)" application/vnd.oci.image.index.v1+json "referrers are an index"
"$PYTHON" - "$T/body" "$ARTD" "$ARTIDX" >"$T/refs" <<'PY'
import json, sys
by = {m["digest"]: m for m in json.load(open(sys.argv[1]))["manifests"]}
a, i = by.get(sys.argv[2], {}), by.get(sys.argv[3], {})
print(len(by), a.get("artifactType"), a.get("annotations"), i.get("artifactType"), i.get("mediaType"))
PY
is "$(cat "$T/refs")" "2 $ART {'org.example.key': 'one'} application/vnd.example.idx application/vnd.oci.image.index.v1+json" \
	"both referrers, with their artifactType and annotations"
is "$(http_status "/v2/myorg/app/referrers/$M2?artifactType=$ART")" 200 "referrers filtered by artifactType"
is "$(json_get "$T/body" manifests 0 digest)/$(header OCI-Filters-Applied)" "$ARTD/artifactType" \
	"the filter keeps the artifact"
GHOST=sha256:$(printf 'e%.0s' {1..64})
sed "s/$M2/$GHOST/" "$T/art" >"$T/art-ghost"
expect "$(st PUT "/v2/myorg/app/manifests/$(sha256_of "$T/art-ghost")" --data-binary "@$T/art-ghost" \
	-H "Content-Type: $OCI_MANIFEST")" 201 "" "PUT of an artifact whose subject was never pushed"
is "$(header OCI-Subject)" "$GHOST" "its OCI-Subject"
is "$(http_status "/v2/myorg/app/referrers/$GHOST")" 200 "referrers of a missing manifest"
is "$(json_get "$T/body" manifests 0 digest)" "$(sha256_of "$T/art-ghost")" "the missing manifest's referrer"

# --- tags, catalog ---
for t in a b c; do
	st PUT "/v2/myorg/app/manifests/$t" --data-binary "@$T/m1" -H "Content-Type: $OCI_MANIFEST" >/dev/null
done
is "$(http_status '/v2/myorg/app/tags/list?n=2')" 200 "tags list, first page"
is "$(json_get "$T/body" tags)" '["a", "b"]' "the first two tags, sorted"
is "$(header Link)" '</v2/myorg/app/tags/list?n=2&last=b>; rel="next"' "a Link to the next page"
is "$(http_status '/v2/myorg/app/tags/list?n=10&last=b')" 200 "tags list after b"
is "$(json_get "$T/body" tags)" '["c", "race", "sig", "v1"]' "the rest of the tags"
expect "$(http_status /v2/myorg/nothing/tags/list)" 404 NAME_UNKNOWN \
	"tags list of a repository nothing was pushed to"
is "$(http_status /v2/myorg/copy/tags/list)" 200 "tags list of a repository with a blob and no tag"
is "$(json_get "$T/body" tags)" "[]" "no tags"
is "$(http_status '/v2/_catalog')" 200 "the catalog"
like "$(json_get "$T/body" repositories)" '"myorg/app".*"myorg/copy"' "the catalog lists the repositories"

# --- deletes ---
expect "$(st DELETE /v2/myorg/app/manifests/c)" 202 "" "DELETE of a tag"
expect "$(st DELETE /v2/myorg/app/manifests/c)" 404 MANIFEST_UNKNOWN "DELETE of a tag that is gone"
is "$(http_status /v2/myorg/app/tags/list)" 200 "tags list after the delete"
is "$(json_get "$T/body" tags)" '["a", "b", "race", "sig", "v1"]' "the deleted tag is no longer listed"
is "$(http_status "/v2/myorg/app/manifests/$M1")" 200 "the tag's manifest stays"
expect "$(st DELETE "/v2/myorg/app/manifests/$SIG")" 202 "" "DELETE of a manifest by digest"
expect "$(http_status "/v2/myorg/app/manifests/sig")" 404 MANIFEST_UNKNOWN "its tag went with it"
expect "$(http_status "/v2/myorg/app/manifests/$SIG")" 404 MANIFEST_UNKNOWN "GET of the deleted digest"
is "$(http_status "/v2/myorg/app/referrers/$M1")" 200 "referrers after the referrer's delete"
is "$(json_get "$T/body" manifests)" "[]" "the deleted referrer is no longer listed"
expect "$(st DELETE "/v2/myorg/copy/blobs/$BIG")" 202 "" "DELETE of a blob"
expect "$(http_status "/v2/myorg/copy/blobs/$BIG")" 404 BLOB_UNKNOWN "the deleted blob is gone"
expect "$(st DELETE "/v2/myorg/copy/blobs/$BIG")" 404 BLOB_UNKNOWN "DELETE of a blob that is gone"
is "$(http_status "/v2/myorg/app/blobs/$BIG")" 200 "the other repository keeps its blob"
# A hosted namespace without delete: true refuses deletes (405, as distribution does).
st POST "/v2/nodelete.test/x/blobs/uploads/?digest=$CFG" --data-binary "@$T/config" >/dev/null
st PUT /v2/nodelete.test/x/manifests/v1 --data-binary "@$T/m-nolayers" -H "Content-Type: $OCI_MANIFEST" >/dev/null
expect "$(st DELETE "/v2/nodelete.test/x/blobs/$CFG")" 405 UNSUPPORTED "DELETE of a blob, deletes disabled"
is "$(header Allow)" "GET, HEAD" "its Allow"
expect "$(st DELETE /v2/nodelete.test/x/manifests/v1)" 405 UNSUPPORTED "DELETE of a tag, deletes disabled"
expect "$(st DELETE "/v2/nodelete.test/x/manifests/$(sha256_of "$T/m-nolayers")")" 405 UNSUPPORTED \
	"DELETE of a manifest, deletes disabled"
is "$(http_status /v2/nodelete.test/x/manifests/v1)" 200 "the manifest stays"

# --- real clients: skopeo, an image and a multi-arch index, there and back ---
SKOPEO_TLS=(--dest-tls-verify=false --dest-creds alice:secret)
"$PYTHON" "$TESTLIB/util.py" mkimage "$T/img" v1 --layers 2 --size 200000 >"$T/img.digest" ||
	bail "mkimage failed"
"$PYTHON" "$TESTLIB/util.py" mkimage "$T/multi" v1 --layers 2 --size 100000 --index >"$T/multi.digest" ||
	bail "mkimage failed"
check "skopeo copy of an image to the hosted namespace" skopeo_q copy "${SKOPEO_TLS[@]}" \
	"oci:$T/img:v1" "docker://$MIRROR/myorg/image:v1"
check "skopeo copy --all of a multi-arch index" skopeo_q copy --all "${SKOPEO_TLS[@]}" \
	"oci:$T/multi:v1" "docker://$MIRROR/myorg/multi:v1"
check "skopeo copy of the image back" skopeo_q copy --src-tls-verify=false \
	"docker://$MIRROR/myorg/image:v1" "oci:$T/back:v1"
check "skopeo copy --all of the index back" skopeo_q copy --all --src-tls-verify=false \
	"docker://$MIRROR/myorg/multi:v1" "oci:$T/multi-back:v1"
is "$(json_get "$T/multi-back/index.json" manifests 0 digest)" "$(cat "$T/multi.digest")" \
	"the index comes back with its digest"
is "$(http_status /v2/myorg/multi/manifests/v1)" 200 "GET of the pushed index"
is "$(sha256_of "$T/body")" "$(cat "$T/multi.digest")" "the index is stored as pushed"
check "skopeo inspect through the mirror" skopeo_q inspect --tls-verify=false \
	"docker://$MIRROR/myorg/image:v1"

# --- podman push and pull (scripts/test --containers installs podman and runc) ---
if command -v podman >/dev/null && command -v runc >/dev/null; then
	printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' \
		'[engine]' 'runtime = "runc"' >"$T/containers.conf"
	PODMAN=(env CONTAINERS_CONF="$T/containers.conf" timeout 120 podman --root "$T/podman/root"
		--runroot "$T/podman/run" --storage-driver vfs)
	podman_q() { "${PODMAN[@]}" "$@" >>"$T/log/podman.log" 2>&1 || { diag_file "$T/log/podman.log" 10; return 1; }; }
	check "podman: the image into its storage" skopeo_q copy "oci:$T/img:v1" \
		"containers-storage:[vfs@$T/podman/root+$T/podman/run]localhost/app:v1"
	check "podman push --creds to the hosted namespace" podman_q push --tls-verify=false \
		--creds alice:secret localhost/app:v1 "docker://$MIRROR/myorg/podman:v1"
	podman_q rmi -a -f
	check "podman pull of it back" podman_q pull --tls-verify=false "$MIRROR/myorg/podman:v1"
	is "$("${PODMAN[@]}" images --format '{{.Repository}}:{{.Tag}}')" "$MIRROR/myorg/podman:v1" \
		"podman has the pulled image"
else
	skip "podman push and pull" "podman and runc are not installed (scripts/test --containers)"
fi

# --- the responder survived it all ---
is "$(http_status /v2/ "${CREDS[@]}")" 200 "the registry still answers"

# --- lighttpd in front (contrib/lighttpd/push-auth.conf, mod_auth), same responder ---
if command -v lighttpd >/dev/null; then
	stop nginx
	# lighttpd connects to $T/run/connect/fcgi.sock: the running responder's socket.
	mkdir -p "$T/run/connect" && ln -s "$FCGI_SOCK" "$T/run/connect/fcgi.sock"
	LIGHTTPD_PING=/v2/reg.test/ start_lighttpd connect || bail "lighttpd did not start"
	# lighttpd wants a length on a POST (411 without): clients send Content-Length: 0.
	expect "$(http_status /v2/myorg/lt/blobs/uploads/ -d '')" 401 "" "lighttpd: POST without credentials"
	like "$(header WWW-Authenticate)" '^Basic realm="oci-registry"' "lighttpd: a Basic challenge"
	expect "$(http_status /v2/myorg/lt/blobs/uploads/ -d '' -u alice:wrong)" 401 "" \
		"lighttpd: POST with a wrong password"
	expect "$(st POST "/v2/myorg/lt/blobs/uploads/?digest=$CHUNKED" --data-binary "@$T/chunked")" 201 "" \
		"lighttpd: a monolithic push as alice"
	is "$(http_status "/v2/myorg/lt/blobs/$CHUNKED")" 200 "lighttpd: the blob is sent (X-Sendfile)"
	check "lighttpd: the blob comes back whole" cmp -s "$T/body" "$T/chunked"
	expect "$(st POST /v2/reg.test/x/blobs/uploads/ -d '')" 405 UNSUPPORTED "lighttpd: a mirror takes no push"
else
	skip "lighttpd front" "lighttpd is not installed"
fi
stop_responder_checked
done_testing
