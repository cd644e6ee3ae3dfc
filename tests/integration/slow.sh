#!/usr/bin/env bash
# slow.sh - a trickling upstream cannot take the mirror down.
#   An upstream that sends 2 bytes every 0.5 s never stalls, so a low-speed
#   limit of 1 byte/s never fires. With as many manifest requests to it as
#   the responder has workers (32, the default), /v2/, cache hits and the
#   readiness check must still be answered at once; the trickled requests
#   end by the upstream deadline, or at once when its slots are taken, with
#   a 503 that says why; a trickled blob ends at the minimum rate.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program nginx curl openssl
need_responder

WORKERS=32   # the default
DEADLINE=4   # UPSTREAM_TIMEOUT: seconds for a manifest answer
WINDOW=3     # LOW_SPEED_TIMEOUT: seconds a blob's rate is averaged over
HIT_BOUND=3  # seconds within which /v2/ and a hit must be answered
ACCEPT=(-H 'Accept: application/vnd.oci.image.manifest.v1+json')

# --- setup: a trickling upstream, a static one for hits, the mirror ---
make_pki || bail "cannot make the test CA"
read -r CLOSED TRICKLE_PORT STATIC_PORT < <(free_ports 3 | tr '\n' ' ')
TRICKLE_LOG=$T/log/trickle.log
: >"$TRICKLE_LOG"
"$PYTHON" "$TESTLIB/util.py" mkimage "$T/static" v1 --layers 1 --size 4096 >/dev/null ||
	bail "cannot make the static upstream's image"
spawn trickle "$T/log/trickle.out" "$PYTHON" "$TESTLIB/faults.py" trickle "$TRICKLE_PORT" \
	--log "$TRICKLE_LOG"
spawn static "$T/log/static.out" "$PYTHON" "$TESTLIB/servers.py" static "$STATIC_PORT" \
	--layout "$T/static" --mode-file "$T/static.mode" --log "$T/log/static.log"
wait_ready trickle 20 tcp_open "$TRICKLE_PORT" || bail "trickling upstream did not start"
wait_ready static 20 tcp_open "$STATIC_PORT" || bail "static upstream did not start"

UPSTREAM=127.0.0.1:$CLOSED # reg.test is not used here
# Dynamic namespaces may not point at loopback: the trickle is a configured one.
EXTRA_UPSTREAMS=$(
	upstream_entry trickle.test "127.0.0.1:$TRICKLE_PORT" "tls: false"
	upstream_entry static.test "127.0.0.1:$STATIC_PORT" "tls: false"
)
export EXTRA_UPSTREAMS
# The limits come as variables, so the same script runs against an older responder.
UPSTREAM_TIMEOUT=$DEADLINE LOW_SPEED_TIMEOUT=$WINDOW start_mirror --workers "$WORKERS" ||
	bail "mirror did not start"
diag "mirror $MIRROR, trickle 127.0.0.1:$TRICKLE_PORT, test dir $T"

# --- a cached blob to hit later ---
code=$(http_status /v2/static.test/test/s/manifests/v1 "${ACCEPT[@]}")
is "$code" 200 "static.test: manifest fetched"
LAYER=$(json_get "$T/body" layers 0 digest)
code=$(http_status "/v2/static.test/test/s/blobs/$LAYER")
is "$code" 200 "static.test: blob fetched (miss)"
check "the blob is in the cache" wait_until 10 test -e "$CACHE/blobs/sha256/${LAYER:7:2}/${LAYER#sha256:}"

# timed LABEL PATH: status and seconds of a request through nginx, bounded by curl.
timed() {
	curl -sS --max-time 10 -o "$T/$1.body" -D "$T/$1.headers" \
		-w '%{http_code} %{time_total}' "${ACCEPT[@]}" "http://$MIRROR$2"
}

# --- as many trickled manifest requests as there are workers ---
mkdir -p "$T/trickle"
PIDS=()
start=$SECONDS
for i in $(seq "$WORKERS"); do
	curl -sS --max-time 30 -o "$T/trickle/$i.body" -D "$T/trickle/$i.headers" \
		-w '%{http_code} %{time_total}\n' "${ACCEPT[@]}" \
		"http://$MIRROR/v2/trickle.test/test/t$i/manifests/v1" >"$T/trickle/$i.out" 2>&1 &
	PIDS+=($!)
done
# stop_trickles: the clients still running at exit (none when all went well).
stop_trickles() {
	kill "${PIDS[@]}" 2>/dev/null
}
at_exit stop_trickles

# trickle_requests: how many requests reached the trickling upstream.
trickle_requests() {
	wc -l <"$TRICKLE_LOG"
}

# all_settled: every trickled request has either reached the upstream or ended.
all_settled() {
	local ended
	ended=$(find "$T/trickle" -name '*.out' -size +0 | wc -l)
	[ $((ended + $(trickle_requests))) -ge "$WORKERS" ]
}
check "every trickled request reached the upstream or ended" wait_until 10 all_settled
diag "requests that reached the trickling upstream: $(trickle_requests)"

# While the trickles are in flight: /v2/ and a hit, each within a bound.
read -r code secs < <(timed v2 /v2/)
is "$code" 200 "/v2/ while trickles are in flight: 200"
ok "$(awk -v s="${secs:-99}" -v b="$HIT_BOUND" 'BEGIN { exit !(s < b) }'; echo $?)" \
	"/v2/ answered in ${secs:-?} s (bound $HIT_BOUND s)"
read -r code secs < <(timed hit "/v2/static.test/test/s/blobs/$LAYER")
is "$code" 200 "a cached blob while trickles are in flight: 200"
ok "$(awk -v s="${secs:-99}" -v b="$HIT_BOUND" 'BEGIN { exit !(s < b) }'; echo $?)" \
	"the cached blob answered in ${secs:-?} s (bound $HIT_BOUND s)"
is "$(sha256_of "$T/hit.body")" "$LAYER" "the cached blob's content matches its digest"
read -r code secs < <(timed ready /readyz)
is "$code" 200 "/readyz while trickles are in flight: 200"
ok "$(awk -v s="${secs:-99}" -v b="$HIT_BOUND" 'BEGIN { exit !(s < b) }'; echo $?)" \
	"/readyz answered in ${secs:-?} s (bound $HIT_BOUND s)"

# Every trickled request ends, by the deadline, with a 503 that says why.
for pid in "${PIDS[@]}"; do
	wait "$pid"
done
ended=$((SECONDS - start))
ok "$((ended <= DEADLINE + 6 ? 0 : 1))" "all $WORKERS trickled requests ended in $ended s (deadline $DEADLINE s)"
late=0 busy=0 other=0
for i in $(seq "$WORKERS"); do
	read -r code _ <"$T/trickle/$i.out"
	detail=$(json_get "$T/trickle/$i.body" errors 0 detail 2>/dev/null)
	case "$code $(header Retry-After "$T/trickle/$i.headers") $detail" in
	"503 5 upstream trickle.test (127.0.0.1:$TRICKLE_PORT): no complete answer in time") late=$((late + 1)) ;;
	"503 5 upstream trickle.test (127.0.0.1:$TRICKLE_PORT): too many requests are waiting on "*) busy=$((busy + 1)) ;;
	*) other=$((other + 1)) && diag "request $i: $code $detail" ;;
	esac
done
diag "trickled requests: $late past the deadline, $busy refused at once, $other otherwise"
is "$other" 0 "every trickled request got 503, Retry-After 5 and a detail saying why"
ok "$((late > 0 ? 0 : 1))" "some trickled requests reached the upstream and hit the deadline ($late)"
ok "$((busy > 0 ? 0 : 1))" "the others were refused at once: the upstream's slots were taken ($busy)"
ok "$(($(trickle_requests) < WORKERS ? 0 : 1))" \
	"fewer than $WORKERS requests reached the trickling upstream ($(trickle_requests))"

# A trickled blob: the download ends at the minimum rate, not never.
BLOB=sha256:$(printf y | sha256sum | cut -d' ' -f1)
start=$SECONDS
curl -sS --max-time 20 -o /dev/null "http://$MIRROR/v2/trickle.test/test/b/blobs/$BLOB" 2>/dev/null
status=$?
isnt "$status" 28 "the trickled blob download ended before curl's 20 s limit (curl exit $status)"
ok "$((SECONDS - start <= WINDOW + 6 ? 0 : 1))" \
	"the trickled blob ended in $((SECONDS - start)) s (window $WINDOW s)"
check "nothing of it was cached" cache_tmp_empty

stop_responder_checked
done_testing
