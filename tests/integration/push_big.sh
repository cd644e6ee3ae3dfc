#!/usr/bin/env bash
# push_big.sh - pushes at size and under faults to a hosted namespace
# through nginx with HTTP Basic on writes (tests/lib/hosted.sh): a 1 GiB
# blob in 64 MiB chunks that streams (the responder's peak RSS stays under
# 32 MiB, nginx spools nothing), `ctr images push --user`, two PATCHes racing
# on one session, a client dropping mid-PATCH, the responder killed (-9)
# mid-PATCH (no partial blob; the session resumes from its Range), and a disk
# filling up during an upload. push.sh has the protocol itself, skopeo,
# podman, and a session resumed after a restart of the responder.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/containerd.sh
. "$TESTLIB/containerd.sh"
# shellcheck source=tests/lib/hosted.sh
. "$TESTLIB/hosted.sh"

need_program nginx curl htpasswd skopeo
need_responder

BIG_CHUNK=$((64 << 20))
BIG_CHUNKS=16
RSS_LIMIT=$((32 << 20))

start_push_responder || bail "the responder did not start"
start_nginx || bail "nginx did not start"
diag "mirror $MIRROR, test dir $T"

# patch SESSION FILE START [curl options]: a chunk of FILE's bytes from START.
patch() {
	local s=$1 f=$2 start=$3 size
	shift 3
	size=$(stat -c %s "$f")
	st PATCH "$s" -T "$f" -H "Content-Range: $start-$((start + size - 1))" \
		-H 'Content-Type: application/octet-stream' "$@"
}

# hwm: the responder's peak resident memory in bytes (VmHWM), all its life.
hwm() {
	awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/${PROC_PID[responder]}/status"
}

# --- 1 GiB in 64 MiB chunks, through nginx, streamed ---
for ((i = 0; i < BIG_CHUNKS; i++)); do
	blob_file "chunk.$(printf %02d "$i")" "$BIG_CHUNK" || bail "cannot write a chunk"
done
GIB=sha256:$(cat "$T"/chunk.* | sha256sum | cut -d' ' -f1)
SESSION=$(session big) || bail "no session"
failed=
for ((i = 0; i < BIG_CHUNKS; i++)); do
	code=$(patch "$SESSION" "$T/chunk.$(printf %02d "$i")" $((i * BIG_CHUNK)))
	[ "$code" = 202 ] || { failed="chunk $i: $code" && break; }
	SESSION=$(header Location)
done
is "${failed:-202}" 202 "16 PATCHes of 64 MiB each"
is "$(header Range)" "0-$((BIG_CHUNKS * BIG_CHUNK - 1))" "the session holds 1 GiB"
expect "$(st PUT "$SESSION?digest=$GIB")" 201 "" "PUT closes the 1 GiB upload"
got=$(curl -sS --max-time 300 "http://$MIRROR/v2/myorg/big/blobs/$GIB" | sha256sum | cut -d' ' -f1)
is "sha256:$got" "$GIB" "GET of the 1 GiB blob gives the bytes pushed"
peak=$(hwm)
ok "$([ "$peak" -lt "$RSS_LIMIT" ]; echo $?)" "the responder's peak RSS stays under 32 MiB ($((peak >> 20)) MiB)"
# Unbuffered, nginx never writes a body to its temp directory (it warns when it does).
check "nginx's error log is there" test -f "$T/log/nginx-error.log"
is "$(grep -c 'request body is buffered to a temporary file' "$T/log/nginx-error.log")" 0 \
	"nginx spooled no request body to a file"
rm -f "$T"/chunk.*

# --- ctr images push --user ---
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
	start_containerd || bail "containerd did not start"
	"$PYTHON" "$TESTLIB/util.py" mkimage "$T/img" v1 --layers 2 --size 300000 >"$T/img.digest" ||
		bail "mkimage failed"
	check "skopeo pushes the image ctr starts from" skopeo_q copy --dest-tls-verify=false \
		--dest-creds alice:secret "oci:$T/img:v1" "docker://$MIRROR/myorg/ctrsrc:v1"
	check "ctr pulls it" ctr_q images pull --plain-http --snapshotter native "$MIRROR/myorg/ctrsrc:v1"
	check "ctr images push --user to the hosted namespace" ctr_q images push --plain-http \
		--user alice:secret "$MIRROR/myorg/ctr:v1" "$MIRROR/myorg/ctrsrc:v1"
	is "$(http_status /v2/myorg/ctr/manifests/v1)" 200 "the image ctr pushed is there"
	is "$(sha256_of "$T/body")" "$(cat "$T/img.digest")" "with the manifest's digest"
	expect "$(st PUT /v2/myorg/ctr/manifests/v2 --data-binary "@$T/body" \
		-H "Content-Type: $(header Content-Type)")" 201 "" "its layers are in the repository"
	ctr_q images push --plain-http "$MIRROR/myorg/ctr2:v1" "$MIRROR/myorg/ctrsrc:v1"
	isnt "$?" 0 "ctr images push without --user is refused"
else
	skip "ctr images push" "containerd is not installed"
fi

# --- two PATCHes at once on one session: one wins, whole ---
race_patches race

# --- a client dropping mid-PATCH ---
SESSION=$(session drop) || bail "no session"
expect "$(patch "$SESSION" "$T/a" 0)" 202 "" "a first chunk"
SESSION=$(header Location)
# 8 MiB at 1 MiB/s, given up after 2 s: nginx passes on part of it, then the end.
curl -sS --max-time 2 -o /dev/null "${CREDS[@]}" -X PATCH -T "$T/b" --limit-rate 1M \
	-H "Content-Range: $((8 << 20))-$(((16 << 20) - 1))" "http://$MIRROR$SESSION" 2>/dev/null
is "$?" 28 "the client gives up mid-PATCH"
range_is() { http_status "$SESSION" >/dev/null && [ "$(header Range)" = "$1" ]; }
check "the session keeps what it held before (GET: Range)" wait_until 30 range_is "0-$(((8 << 20) - 1))"
expect "$(http_status "$SESSION")" 204 "" "GET of the session after the drop"
expect "$(patch "$SESSION" "$T/b" $((8 << 20)))" 202 "" "the chunk again, from there"
cat "$T/a" "$T/b" >"$T/ab"
expect "$(st PUT "$SESSION?digest=$(sha256_of "$T/ab")")" 201 "" "the resumed upload closes"
is "$(http_status "/v2/myorg/drop/blobs/$(sha256_of "$T/ab")")" 200 "GET of the resumed blob"
check "it is both chunks, whole" cmp -s "$T/body" "$T/ab"

# --- the responder killed (-9) mid-PATCH ---
SESSION=$(session killed) || bail "no session"
# 16 MiB at 2 MiB/s: the responder is killed once part of it is stored.
curl -sS --max-time 60 -o /dev/null -w '%{http_code}' "${CREDS[@]}" -X PATCH -T "$T/ab" \
	--limit-rate 2M -H "Content-Range: 0-$(((16 << 20) - 1))" "http://$MIRROR$SESSION" \
	>"$T/killed.status" 2>/dev/null &
CLIENT=$!
stored() { [ "$(stat -c %s "$CACHE/uploads/${SESSION##*/}/data" 2>/dev/null || echo 0)" -ge $((2 << 20)) ]; }
check "part of the chunk is stored" wait_until 30 stored
stop responder KILL 5
wait "$CLIENT"
isnt "$(cat "$T/killed.status")" 202 "the client of the killed responder is not told the chunk is stored"
is "$(http_status "/v2/myorg/killed/blobs/$(sha256_of "$T/ab")" -I)" 502 \
	"with the responder gone, nginx answers 502"
start_push_responder || bail "the responder did not restart"
is "$(http_status "/v2/myorg/killed/blobs/$(sha256_of "$T/ab")" -I)" 404 "no partial blob is visible"
expect "$(http_status "$SESSION")" 204 "" "the session is still there after the kill"
held=$(header Range)
held=$((${held#0-} + 1))
ok "$([ "$held" -gt 0 ] && [ "$held" -lt $((16 << 20)) ]; echo $?)" \
	"it holds part of the chunk ($held bytes)"
tail -c +$((held + 1)) "$T/ab" >"$T/rest"
expect "$(patch "$SESSION" "$T/rest" "$held")" 202 "" "the rest of the chunk, from the session's Range"
expect "$(st PUT "$SESSION?digest=$(sha256_of "$T/ab")")" 201 "" "the upload closes after the kill"
is "$(http_status "/v2/myorg/killed/blobs/$(sha256_of "$T/ab")")" 200 "GET of the blob"
check "it is the bytes pushed, whole" cmp -s "$T/body" "$T/ab"

# --- a disk that fills during an upload ---
# The responder again, its storage on a 24 MiB tmpfs; nginx sends from the same path.
stop responder TERM 15
mkdir -p "$T/cache"
if mount -t tmpfs -o size=24m oci-test-full "$T/cache" 2>/dev/null; then
	at_exit "umount -l '$T/cache'"
	start_push_responder || bail "the responder did not restart"
	blob_file small 100000
	SMALL=$(sha256_of "$T/small")
	expect "$(st POST "/v2/myorg/full/blobs/uploads/?digest=$SMALL" --data-binary "@$T/small")" 201 "" \
		"a small blob before the disk fills"
	blob_file huge $((32 << 20))
	HUGE=$(sha256_of "$T/huge")
	expect "$(st POST "/v2/myorg/full/blobs/uploads/?digest=$HUGE" --data-binary "@$T/huge")" 500 INTERNAL \
		"a monolithic push that fills the disk"
	like "$(json_get "$T/body" errors 0 detail)" "full" "the message says the storage is full"
	is "$(find "$T/cache/tmp" -type f | wc -l)" 0 "its partial object is removed"
	SESSION=$(session full) || bail "no session"
	expect "$(patch "$SESSION" "$T/small" 0)" 202 "" "a first chunk on the small disk"
	SESSION=$(header Location)
	expect "$(patch "$SESSION" "$T/huge" 100000)" 500 INTERNAL "a chunk that fills the disk"
	like "$(json_get "$T/body" errors 0 detail)" "full" "the chunk's answer says the storage is full"
	expect "$(http_status "$SESSION")" 204 "" "the session is still there"
	is "$(header Range)" 0-99999 "with what it held before the chunk"
	ok "$([ "$(df -k --output=used "$T/cache" | tail -1)" -lt 4096 ]; echo $?)" \
		"the space the chunk took is given back"
	is "$(http_status "/v2/myorg/full/blobs/$SMALL")" 200 "the blob pushed before is still served"
	check "whole" cmp -s "$T/body" "$T/small"
	expect "$(st PUT "$SESSION?digest=$SMALL")" 201 "" "the session closes with what it held"
else
	skip "a disk that fills" "cannot mount a tmpfs here"
fi

stop_responder_checked
done_testing
