#!/usr/bin/env bash
# s3_flight.sh - one upstream download and one upload per blob on S3
# storage (Swift with s3api), however many clients ask at once on one host:
# 16 concurrent clients through nginx in front of two responder processes
# (spawn-fcgi -F 2) that share the local spool; a leader killed halfway,
# while a responder of its own follows it, leaves no object, and the next
# request succeeds.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"

need_program docker-registry nginx curl cgi-fcgi spawn-fcgi
need_responder
"$PYTHON" -c 'import swift.common.middleware.s3api' 2>/dev/null ||
	bail "Debian's python3-swift is not installed (scripts/test installs it)"

BUCKET=oci-cache
BLOB_SIZE=$((32 * 1024 * 1024))
# The spool: TMPDIR of every responder here, so they share it.
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR" "$T/run"
CACHE=$T/unused-cache

start_upstream || bail "docker-registry upstream did not start"
make_image big v1 --layers 1 --size "$BLOB_SIZE" >/dev/null || bail "cannot push test/big:v1"
LAYER=$(upstream_layer big v1)
BLOB_PATH=/v2/test/big/blobs/$LAYER
KEY=blobs/sha256/${LAYER:7:2}/${LAYER:7}
start_swift || bail "Swift (s3api) did not start"
s3_cli "$BUCKET" mb || bail "cannot create the bucket"
write_upstream_config "$T/upstream.yaml"

layer_gets() { upstream_gets_of "$LAYER"; }
# Uploads of the blob: whole PUTs and multipart starts (8 MiB threshold here).
layer_uploads() { swift_log | grep -Ec "\"(PUT /$BUCKET/$KEY HTTP|POST /$BUCKET/$KEY\\?uploads)"; }
stored() { s3_cli "$BUCKET" ls "$KEY" | grep -q .; }
forget_blob() { s3_cli "$BUCKET" rm "$KEY"; }
spool_empty() { [ -z "$(find "$TMPDIR" -type f 2>/dev/null | head -n 1)" ]; }

# --- 16 clients, two processes (spawn-fcgi -F 2) ---
FCGI_SOCK=$T/run/fcgi.sock
RESPONDER_LOG=$T/log/spawned.log
export S3_SECRET_KEY=$S3_TEST_SECRET_KEY S3_MULTIPART_THRESHOLD=$((8 * 1024 * 1024))
SPAWN_STORAGE=(s3 --host "$S3_ENDPOINT" --bucket "$BUCKET" --access-key "$S3_TEST_ACCESS_KEY" --path-style)
spawn_fcgi 2 --workers 24 --default-namespace reg.test || bail "spawn-fcgi failed"
wait_until 30 unix_open "$FCGI_SOCK" || bail "the responders did not start"
start_nginx || bail "nginx did not start"
diag "upstream $UPSTREAM, mirror $MIRROR, S3 $S3_ENDPOINT, test dir $T"

rm -rf "$T/got" && mkdir -p "$T/got"
pids=()
for i in $(seq 1 16); do
	mirror_curl "$BLOB_PATH" --max-time 120 -o "$T/got/$i.body" -w '%{http_code}' >"$T/got/$i.code" &
	pids+=($!)
done
wait "${pids[@]}"
right=0
for i in $(seq 1 16); do
	[ "$(sha256_of "$T/got/$i.body")" = "$LAYER" ] && right=$((right + 1))
	rm -f "$T/got/$i.body"
done
is "$right" 16 "16 concurrent clients over two processes all receive the right blob"
[ "$right" = 16 ] ||
	diag "statuses: $(cat "$T"/got/*.code | sort | uniq -c | tr '\n' ' '); nginx: $(tail -n 3 "$T/log/nginx-error.log" 2>/dev/null)"
is "$(layer_gets)" 1 "16 clients on S3 storage: the upstream is asked once"
check "the blob is stored in S3" wait_until 60 stored
is "$(layer_uploads)" 1 "16 clients on S3 storage: one upload"
check "the spool is empty once the upload is done" wait_until 30 spool_empty
is "$(s3_cli "$BUCKET" uploads | wc -l)" 0 "no multipart upload is left open"
gets=$(layer_gets)
code=$(http_status "$BLOB_PATH")
is "$code" 200 "the next request is a hit"
is "$(layer_gets)" "$gets" "the hit asks the upstream nothing"
stop_spawned
is "$(grep -Ec 'info (\[[0-9]+\] )?stopped$' "$RESPONDER_LOG")" 2 "both spawn-fcgi children stopped on SIGTERM"
check "the spawned responders' log has no sanitizer report" sanitizer_clean "$RESPONDER_LOG"
stop nginx

# --- a leader killed halfway: A leads through a slow link, B follows it ---
forget_blob || bail "cannot remove the blob from S3"
slow_upstream_config $((8 * 1024 * 1024)) || bail "the throttled upstream did not start"
for r in a b; do
	config=$T/upstream.yaml
	[ "$r" = a ] && config=$T/slow.yaml
	spawn "responder_$r" "$T/log/responder_$r.log" "$OCI_REGISTRY" --workers 24 --default-namespace reg.test \
		--listen "unix:$T/run/$r.sock" --upstream-config-file "$config" "${SPAWN_STORAGE[@]}"
	wait_ready "responder_$r" 30 unix_open "$T/run/$r.sock" || bail "responder $r did not start"
done
FCGI_SOCK=$T/run/a.sock fcgi_request GET "$BLOB_PATH" >"$T/a.out" 2>/dev/null &
client_a=$!
part_grown() { [ -n "$(find "$TMPDIR" -name '*.part' -size +4M 2>/dev/null | head -n 1)" ]; }
check "A's download grows in the shared spool" wait_until 30 part_grown
FCGI_SOCK=$T/run/b.sock fcgi_request GET "$BLOB_PATH" >"$T/b.out" 2>/dev/null &
client_b=$!
check "B follows A's download" wait_until 30 grep -q 'following the download' "$T/log/responder_b.log"
gets=$(layer_gets)
kill -KILL "${PROC_PID[responder_a]}"
wait "$client_a" 2>/dev/null
wait "$client_b"
# docker-registry logs a GET when it ends: wait for A's, cut short.
a_logged() { [ "$(layer_gets)" -gt "$gets" ]; }
check "the upstream logs A's killed download" wait_until 30 a_logged
gets=$(layer_gets)
b_bytes=$(body_of "$T/b.out" | wc -c)
ok "$((b_bytes < BLOB_SIZE ? 0 : 1))" "B's client gets a short body when the leader dies ($b_bytes bytes)"
check "nothing is stored under the blob's key" eval "! stored"
is "$(s3_cli "$BUCKET" uploads | wc -l)" 0 "no multipart upload was left open"
start=$SECONDS
FCGI_SOCK=$T/run/b.sock fcgi_request GET "$BLOB_PATH" | body_of /dev/stdin >"$T/b2.body"
is "$(sha256_of "$T/b2.body")" "$LAYER" "the next request leads a fresh download and gets the blob" || {
	diag "$(wc -c <"$T/b2.body") of $BLOB_SIZE bytes in $((SECONDS - start)) s"
	diag_file "$T/log/responder_b.log" 20
}
is "$(($(layer_gets) - gets))" 1 "it fetched the blob once more"
check "then the blob is stored" wait_until 60 stored
stop responder_b TERM 15
is "$?" 0 "B exits 0 on SIGTERM"
check "B's log has no sanitizer report" sanitizer_clean "$T/log/responder_b.log"
done_testing
