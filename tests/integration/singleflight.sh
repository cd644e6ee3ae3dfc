#!/usr/bin/env bash
# singleflight.sh - one upstream download per blob, however many clients ask
# at once: 16 and 32 concurrent clients through nginx, two responder
# processes on one cache (spawn-fcgi -F 2, and two separate responders), and
# a leader killed halfway (kill -9) while others follow its download.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program docker-registry skopeo nginx curl cgi-fcgi spawn-fcgi
need_responder

BLOB_SIZE=$((64 * 1024 * 1024))

start_upstream || bail "docker-registry upstream did not start"
make_image big v1 --layers 1 --size "$BLOB_SIZE" >/dev/null || bail "cannot push test/big:v1"
upstream_curl /v2/test/big/manifests/v1 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	-o "$T/big-manifest.json" || bail "cannot read the image's manifest"
LAYER=$("$PYTHON" "$TESTLIB/util.py" json "$T/big-manifest.json" layers 0 digest)
LAYER_SIZE=$("$PYTHON" "$TESTLIB/util.py" json "$T/big-manifest.json" layers 0 size)
BLOB_PATH=/v2/test/big/blobs/$LAYER
start_mirror --default-namespace reg.test --workers 40 || bail "mirror did not start"
FINAL=$CACHE/blobs/sha256/${LAYER:7:2}/${LAYER:7}

layer_gets() {
	grep -c "\"GET /v2/test/big/blobs/$LAYER" "$UPSTREAM_LOG"
}

# concurrent_clients N: N curl clients at once through nginx; each body is
# hashed into $T/got/N. Waits for all (each bounded by curl's --max-time).
concurrent_clients() {
	local i pids=()
	rm -rf "$T/got"
	mkdir -p "$T/got"
	for ((i = 1; i <= $1; i++)); do
		mirror_curl "$BLOB_PATH" --max-time 120 | sha256sum | cut -d' ' -f1 >"$T/got/$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
}

# all_clients_right N: every one of N clients received exactly the blob.
all_clients_right() {
	local i
	for ((i = 1; i <= $1; i++)); do
		[ "sha256:$(cat "$T/got/$i")" = "$LAYER" ] || return 1
	done
}

# all_exited PID...: none of the processes runs any more.
all_exited() {
	local pid
	for pid in "$@"; do
		proc_alive "$pid" && return 1
	done
	return 0
}

# forget_blob: drop the cached copy so the next request is a miss again.
forget_blob() {
	rm -f "$FINAL"
}

for clients in 16 32; do
	forget_blob
	before=$(layer_gets)
	concurrent_clients "$clients"
	check "$clients concurrent clients all receive the right 64 MiB blob" all_clients_right "$clients"
	is "$(($(layer_gets) - before))" 1 "$clients concurrent clients: the upstream is asked once"
	check "$clients concurrent clients: the blob is cached" test -s "$FINAL"
	check "$clients concurrent clients: no temporary file is left" cache_tmp_empty
done

# --- two processes behind one nginx: spawn-fcgi -F 2 on the same socket ---
stop_responder_checked
forget_blob
rm -f "$FCGI_SOCK"
# spawn-fcgi daemonises its children and closes their stderr: a shell keeps it.
spawn-fcgi -s "$FCGI_SOCK" -M 0666 -F 2 -P "$T/run/spawn.pid" -- /bin/sh -c \
	"exec '$OCI_REGISTRY' --workers 24 --default-namespace reg.test --upstream-config-file '$T/upstream.yaml' \
	 filesystem --root '$CACHE' 2>>'$T/log/spawned.log'" >"$T/log/spawn-fcgi.log" 2>&1 ||
	bail "spawn-fcgi failed"
# stop_spawned: SIGTERM the children of spawn-fcgi (not ours to wait for) until
# gone. (Its pid file has no newline after the last pid: mapfile, not read.)
stop_spawned() {
	local pids=()
	[ -f "$T/run/spawn.pid" ] || return 0
	mapfile -t pids <"$T/run/spawn.pid"
	rm -f "$T/run/spawn.pid"
	kill "${pids[@]}" 2>/dev/null
	wait_until 15 all_exited "${pids[@]}"
}
at_exit stop_spawned
is "$(grep -c . "$T/run/spawn.pid")" 2 "spawn-fcgi -F 2 started two responders"
before=$(layer_gets)
concurrent_clients 16
check "spawn-fcgi -F 2: 16 clients all receive the right blob" all_clients_right 16
is "$(($(layer_gets) - before))" 1 "spawn-fcgi -F 2: the upstream is asked once"
SPAWNED=$(tr '\n' ' ' <"$T/run/spawn.pid")
check "both spawn-fcgi children stop on SIGTERM" stop_spawned
# shellcheck disable=SC2086 # the pids, one word each
check "no spawn-fcgi child is left running" all_exited $SPAWNED

# --- a leader killed halfway: two responders, A leads through a slow link ---
forget_blob
slow_upstream_config $((8 * 1024 * 1024)) || bail "the throttled upstream did not start"
for r in a b; do
	config=$T/upstream.yaml
	[ "$r" = a ] && config=$T/slow.yaml
	spawn "responder_$r" "$T/log/responder_$r.log" "$OCI_REGISTRY" --listen "unix:$T/run/$r.sock" \
		--workers 8 --default-namespace reg.test --upstream-config-file "$config" filesystem --root "$CACHE"
	wait_ready "responder_$r" 20 unix_open "$T/run/$r.sock" || bail "responder $r did not start"
done

# fcgi_get NAME SOCKET: a blob GET straight to a responder, raw answer in $T/fcgi/NAME.
fcgi_get() {
	mkdir -p "$T/fcgi"
	FCGI_SOCK=$2 fcgi_request GET "$BLOB_PATH" >"$T/fcgi/$1" 2>/dev/null
}

# body_of NAME: "<size> sha256:<hex>" of the body of a raw FastCGI answer.
body_of() {
	"$PYTHON" -c '
import hashlib, sys
data = open(sys.argv[1], "rb").read()
body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
print(len(body), "sha256:" + hashlib.sha256(body).hexdigest())' "$T/fcgi/$1"
}

part_grown() {
	local part
	part=$(find "$CACHE/tmp" -name '*.part' -size +8M 2>/dev/null | head -n 1)
	[ -n "$part" ]
}

followers_following() {
	[ "$(grep -c 'following the download' "$T/log/responder_b.log")" -ge 4 ]
}

before=$(layer_gets)
fcgi_get leader "$T/run/a.sock" &
leader=$!
check "the leader's download is under way in responder A" wait_until 60 part_grown
followers=()
for i in 1 2 3 4; do
	fcgi_get "follower$i" "$T/run/b.sock" &
	followers+=($!)
done
check "four requests to responder B follow A's download" wait_until 30 followers_following
stop responder_a KILL 10
check "the followers finish within 30 s of the leader's death" \
	wait_until 30 all_exited "${followers[@]}" "$leader"
wait "${followers[@]}" "$leader" 2>/dev/null
for i in 1 2 3 4; do
	read -r size digest < <(body_of "follower$i")
	ok "$([ "$size" -lt "$LAYER_SIZE" ] && [ "$digest" != "$LAYER" ] && echo 0 || echo 1)" \
		"follower $i got a short body (${size} bytes): a clean failure, never wrong bytes"
done
check "no blob is committed from the killed download" test ! -e "$FINAL"
fcgi_get retry "$T/run/b.sock"
read -r size digest < <(body_of retry)
is "$digest" "$LAYER" "a new request after the crash gets the whole blob"
check "and the blob is now cached" test -s "$FINAL"
# The upstream logs a request when it ends, and the killed one ends when the
# throttle lets go of it: wait (bounded) for two lines, then count.
upstream_logged_two() { [ $(($(layer_gets) - before)) -ge 2 ]; }
wait_until 30 upstream_logged_two
is "$(($(layer_gets) - before))" 2 "the upstream was asked twice: the killed download and the retry"
stop responder_b TERM 15
is "$?" 0 "responder B exits 0 on SIGTERM"
check "responder B's log has no sanitizer report" sanitizer_clean "$T/log/responder_b.log"

# --- a slow download streams as it comes: the responder gathers the
# upstream's pieces before handing them on, but never waits for more to
# come; at 16 KiB/s a 256 KiB piece would take 16 s to fill ---
forget_blob
stop throttle
slow_upstream_config $((16 * 1024)) || bail "the slower throttled upstream did not start"
spawn responder_c "$T/log/responder_c.log" "$OCI_REGISTRY" --listen "unix:$T/run/c.sock" \
	--workers 4 --default-namespace reg.test --upstream-config-file "$T/slow.yaml" filesystem --root "$CACHE"
wait_ready responder_c 20 unix_open "$T/run/c.sock" || bail "responder C did not start"
# body_started NAME: the raw FastCGI answer in $T/fcgi/NAME has body bytes.
body_started() {
	"$PYTHON" -c '
import sys
data = open(sys.argv[1], "rb").read()
sys.exit(0 if len(data.split(b"\r\n\r\n", 1)[-1]) > 0 and b"\r\n\r\n" in data else 1)' "$T/fcgi/$1" 2>/dev/null
}
fcgi_get trickle "$T/run/c.sock" &
trickle=$!
check "a 16 KiB/s download: the client has body bytes within 5 s" wait_until 5 body_started trickle
stop responder_c KILL 10
wait "$trickle" 2>/dev/null

done_testing
