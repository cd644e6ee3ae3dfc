#!/usr/bin/env bash
# s3_replicas.sh - replicas on one S3 bucket behave as one cache: three
# responders, each with its own nginx, TMPDIR (spool, usage and metrics
# files) and run directory, share only a radosgw bucket, which honours
# conditional writes (tests/lib/rgw.sh). They fetch a cold blob from the
# upstream once for 16 clients spread over them; a holder of a lease killed
# mid-fetch is taken over once its lease expired, and its clients fail
# cleanly; an S3 outage mid-pull leaves no corrupt object and no open
# multipart upload; a replica whose clock is 20 s ahead (libfaketime) does
# not take a live lease; cleanup passes never overlap. On Swift, whose
# s3api refuses conditional writes, a replica says it works alone and
# still serves.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"
# shellcheck source=tests/lib/rgw.sh
. "$TESTLIB/rgw.sh"
# shellcheck source=tests/lib/replicas.sh
. "$TESTLIB/replicas.sh"

need_program docker-registry nginx curl faketime radosgw ceph-mon ceph-osd
need_responder
"$PYTHON" -c 'import swift.common.middleware.s3api' 2>/dev/null ||
	bail "Debian's python3-swift is not installed (scripts/test installs it)"
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$FAKETIME_LIB" ] || bail "libfaketime is not installed (Debian's faketime)"

# The cold blob of the fan-out: 256 MiB (BIG_SIZE to change it); the
# others are fetched through a throttled link, to act on them halfway.
BIG_SIZE=${BIG_SIZE:-$((256 * 1024 * 1024))}
SIZE=$((32 * 1024 * 1024))
RATE=$((2 * 1024 * 1024))
# Short, so that a dead holder's lease expires within the test's patience.
LEASE_TTL=6
BUCKET=oci-cache
# nginx's cache location is unused: hits come from S3.
CACHE=$T/unused-cache

start_upstream || bail "docker-registry upstream did not start"
for name in kill outage skew; do
	make_image "$name" v1 --layers 1 --size "$SIZE" >/dev/null || bail "cannot push test/$name:v1"
done
make_image big v1 --layers 1 --size "$BIG_SIZE" >/dev/null || bail "cannot push test/big:v1"
write_upstream_config "$T/upstream.yaml"
slow_upstream_config "$RATE" || bail "the throttled upstream did not start"
S3_TEST_BUCKET=$BUCKET start_rgw || bail "radosgw did not start"
export S3_SECRET_KEY=$S3_TEST_SECRET_KEY
S3_ARGS=(s3 --host "$S3_ENDPOINT" --bucket "$BUCKET" --access-key "$S3_TEST_ACCESS_KEY" --path-style
	--lease-ttl "$LEASE_TTL")
diag "upstream $UPSTREAM, S3 (radosgw) $S3_ENDPOINT, test dir $T"

REPLICA_ARGS=(--workers 24 --default-namespace reg.test --cleanup-interval 2)
stored_size() { s3_cli "$BUCKET" ls "$(key_of "$1")" | awk '{ print $2 }'; }
no_uploads() { [ -z "$(s3_cli "$BUCKET" uploads)" ]; }
part_grown() { [ -n "$(find "$T/r$1/tmp" -name '*.part' -size +4M 2>/dev/null | head -n 1)" ]; }
# holder_and_waiter NAME DIGEST I OUT_A OUT_B: client A pulls test/NAME's
# layer through replica 1 (throttled: it holds the lease for a while), then
# client B through replica I, which waits for it; sets client_a, client_b.
holder_and_waiter() {
	local path=/v2/test/$1/blobs/$2 waiting
	waiting="another replica is fetching $(key_of "$2")"
	pull 1 "$path" "$4" &
	client_a=$!
	check "replica 1 holds the lease of $1 and fetches it, slowly" wait_until 30 part_grown 1
	pull "$3" "$path" "$5" &
	client_b=$!
	check "replica $3 waits for it" wait_until 30 eval "replica_log $3 | grep -q '$waiting'"
}
metric() { curl -s --max-time 10 "http://${FRONT[$1]}/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

for i in 1 2 3; do
	start_replica "$i" "$T/upstream.yaml" || bail "replica $i did not start"
done

# --- the probe ---
like "$(curl -s "http://${FRONT[1]}/readyz")" 'cooperating' "/readyz says the replicas cooperate"
is "$(metric 1 oci_registry_s3_conditional_writes)" 1 "oci_registry_s3_conditional_writes is 1"
like "$(replica_log 1)" 'honours conditional writes' "the log says what the probe found"

# --- 1: 16 clients over three replicas, one cold blob ---
BIG=$(upstream_layer big v1)
mkdir -p "$T/got"
start=$SECONDS
pids=()
for c in $(seq 1 16); do
	pull $((c % 3 + 1)) "/v2/test/big/blobs/$BIG" "$T/got/$c" &
	pids+=($!)
done
wait "${pids[@]}"
took=$((SECONDS - start))
right=0
big_bytes=$(stat -c %s "$T/got/1")
for c in $(seq 1 16); do
	[ "$(sha256_of "$T/got/$c")" = "$BIG" ] && right=$((right + 1))
	rm -f "$T/got/$c"
done
is "$right" 16 "16 clients over three replicas all get the right $((BIG_SIZE >> 20)) MiB blob"
[ "$right" = 16 ] || diag "statuses: $(cat "$T"/got/*.code | sort | uniq -c | tr '\n' ' ')"
is "$(upstream_gets_of "$BIG")" 1 "the upstream is asked for it once (in ${took} s)"
diag "figure: 16 clients, 3 replicas, $((BIG_SIZE >> 20)) MiB: $(upstream_gets_of "$BIG") upstream GET, ${took} s"
# Waits per replica, fewest first: the holder none, each other replica one
# for all its clients (they follow its wait through its spool).
waits=$(for i in 1 2 3; do replica_log "$i" | grep -c "another replica is fetching $(key_of "$BIG")"; done |
	sort -n | paste -sd' ')
is "$waits" "0 1 1" "two replicas waited for the third's commit, once each for all their clients"
is "$(stored_size "$BIG")" "$big_bytes" "the blob is stored whole"
s3_cli "$BUCKET" rm "$(key_of "$BIG")" # room in the memstore OSD

# --- 2: the holder killed mid-fetch ---
KILL=$(upstream_layer kill v1)
stop r1 TERM 15
replica_up 1 "$T/slow.yaml" || bail "replica 1 did not restart"
holder_and_waiter kill "$KILL" 2 "$T/a" "$T/b"
kill -KILL "${PROC_PID[r1]}"
killed=$(date +%s)
is "$(stored_size "$KILL")" "" "no object is visible after the holder died"
wait "$client_a" "$client_b"
is "$(sha256_of "$T/b")" "$KILL" "the waiting client gets the blob once the lease expired"
kill_bytes=$(stat -c %s "$T/b")
waited=$(($(cat "$T/b.end") - killed))
ok "$((waited <= LEASE_TTL + 20 ? 0 : 1))" "within the lease's ttl and a margin ($waited s, ttl $LEASE_TTL s)"
a_size=$(stat -c %s "$T/a")
ok "$((a_size < kill_bytes ? 0 : 1))" "the dead holder's client gets a short body ($a_size bytes), never a whole wrong one"
diag "its curl: $(cat "$T/a.err") after $(($(cat "$T/a.end") - killed)) s"
kill_logged() { [ "$(upstream_gets_of "$KILL")" -ge 2 ]; }
check "the upstream logs the killed download" wait_until 30 kill_logged
is "$(upstream_gets_of "$KILL")" 2 "one fetch by the holder, one by the replica that took over"
# The replica that took over uploads once its client has the blob: wait for it.
kill_stored() { [ "$(stored_size "$KILL")" = "$kill_bytes" ]; }
check "the blob is stored whole" wait_until 60 kill_stored
# An upload left open by a writer that died: no live lease holds its key.
s3_cli "$BUCKET" mpu "$(key_of sha256:00dead)" >/dev/null || bail "cannot begin a multipart upload"
check "cleanup aborts the orphaned multipart upload" wait_until $((LEASE_TTL + 30)) no_uploads
s3_cli "$BUCKET" uploads | while read -r line; do diag "left open: $line"; done
replica_up 1 "$T/slow.yaml" || bail "replica 1 did not restart"
pull 1 "/v2/test/kill/blobs/$KILL" "$T/a"
is "$(sha256_of "$T/a")" "$KILL" "a later request through the killed replica's front succeeds"

# --- 3: S3 stopped for 10 s during a pull ---
OUT=$(upstream_layer outage v1)
pids=()
pull 1 "/v2/test/outage/blobs/$OUT" "$T/o1" &
pids+=($!)
check "replica 1 fetches, slowly" wait_until 30 part_grown 1
for c in 2 3 4 5 6; do
	pull $((c % 3 + 1)) "/v2/test/outage/blobs/$OUT" "$T/o$c" &
	pids+=($!)
done
rgw_stop_gateway
sleep 10 # the outage itself, not a wait for anything
rgw_start_gateway || bail "radosgw did not restart"
wait "${pids[@]}"
right=0
for c in 1 2 3 4 5 6; do
	[ "$(sha256_of "$T/o$c")" = "$OUT" ] || pull $((c % 3 + 1)) "/v2/test/outage/blobs/$OUT" "$T/o$c"
	[ "$(sha256_of "$T/o$c")" = "$OUT" ] && right=$((right + 1))
done
is "$right" 6 "every client of the outage gets the blob, at most on a retry"
stored_ok() { [ "$(s3_cli "$BUCKET" get "$(key_of "$OUT")" | sha256sum | cut -d' ' -f1)" = "${OUT#sha256:}" ]; }
# The clients may all have had their bytes while S3 was down, the commit
# failing: then nothing is stored until the next pull. Never a corrupt one.
absent_or_whole() { [ -z "$(stored_size "$OUT")" ] || stored_ok; }
check "no corrupt object: the blob is absent or whole" absent_or_whole
check "no multipart upload is left open after cleanup" wait_until $((LEASE_TTL + 40)) no_uploads
pull 2 "/v2/test/outage/blobs/$OUT" "$T/o"
is "$(sha256_of "$T/o")" "$OUT" "a pull after the outage succeeds"
check "the blob is stored, and whole" wait_until 60 stored_ok

# --- 6: cleanup passes, one replica at a time ---
passes() { replica_log "$1" | grep -c 'cleanup: pass begins'; }
skipped() { metric "$1" oci_registry_cleanup_skipped_total; }
printf 'oci-registry lease\nttl 600\nholder test 0\n' >"$T/lease"
# Taken as a replica takes it (If-None-Match), between two of their passes.
check "the test takes the cleanup lease" \
	wait_until 20 s3_cli "$BUCKET" put _leases/cleanup "$T/lease" 'If-None-Match:*' 2>/dev/null
grown() { [ "$(skipped "$1")" -ge "$2" ]; }
s1=$(skipped 1) s2=$(skipped 2)
check "replicas skip their passes while another holds the lease" \
	wait_until 20 eval "grown 1 $((s1 + 1)) && grown 2 $((s2 + 1))"
p1=$(passes 1) p2=$(passes 2)
check "... pass after pass" wait_until 20 eval "grown 1 $((s1 + 3)) && grown 2 $((s2 + 3))"
is "$(passes 1) $(passes 2)" "$p1 $p2" "no pass began meanwhile"
s3_cli "$BUCKET" rm _leases/cleanup
resumed() { [ "$(passes 1)" -ge $((p1 + 2)) ] && [ "$(passes 2)" -ge $((p2 + 2)) ]; }
check "passes resume once the lease is given back" wait_until 30 resumed
overlaps=$(for i in 1 2 3; do replica_log "$i" | grep -E 'cleanup: pass (begins|ends)'; done | sort |
	awk '/begins/ { if (open) n++; open = 1 } /ends/ { open = 0 } END { print n + 0 }')
is "$overlaps" 0 "no cleanup pass of one replica overlaps another's ($(cat "$T"/r*/log/responder-*.log | grep -c 'pass begins') passes)"
# gc, one host at a time too: not run while another holds the gc lease.
check "the test takes the gc lease" s3_cli "$BUCKET" put _leases/gc "$T/lease" 'If-None-Match:*'
"$OCI_REGISTRY" "${S3_ARGS[@]}" gc >"$T/gc.out" 2>"$T/gc.err"
is "$?" 1 "gc exits 1 while another host's gc holds the lease"
like "$(cat "$T/gc.err")" "holds the lease" "and says why"
is "$(wc -c <"$T/gc.out")" 0 "having removed nothing"
s3_cli "$BUCKET" rm _leases/gc
"$OCI_REGISTRY" "${S3_ARGS[@]}" gc >"$T/gc.out" 2>"$T/gc.err"
is "$?" 0 "gc runs once the lease is given back" || diag_file "$T/gc.err"
like "$(cat "$T/gc.out")" '^gc: ' "its summary"

# --- 4: a replica whose clock is 20 s ahead does not take a live lease ---
SKEW=$(upstream_layer skew v1)
stop r3 TERM 15
before=$(date +%s)
replica_up 3 "$T/upstream.yaml" env LD_PRELOAD="$FAKETIME_LIB" FAKETIME=+20s \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" ||
	bail "replica 3 did not start with its clock ahead"
# This start's log alone: before its restart replica 3 may rightly have taken
# over a lease that the replica killed in part 2 held.
SKEWED_LOG=$REPLICA_LOG
ahead=$(($(date -d "$(head -n 1 "$SKEWED_LOG" | cut -d' ' -f1)" +%s) - before))
ok "$((ahead >= 15 && ahead <= 30 ? 0 : 1))" "replica 3's clock is ahead ($ahead s by its log)"
holder_and_waiter skew "$SKEW" 3 "$T/s1" "$T/s3"
wait "$client_a" "$client_b"
is "$(sha256_of "$T/s1")$(sha256_of "$T/s3")" "$SKEW$SKEW" "both clients get the blob"
is "$(upstream_gets_of "$SKEW")" 1 "the replica 20 s ahead took no live lease: one upstream GET"
like "$(grep -c 'taking it over' "$SKEWED_LOG")" '^0$' "replica 3, its clock ahead, never took a lease over"

# --- 5: Swift's s3api refuses conditional writes: alone, and still serving ---
for i in 1 2 3; do stop "r$i" TERM 15; done
start_swift || bail "Swift (s3api) did not start"
S3_TEST_ACCESS_KEY=test:tester S3_TEST_SECRET_KEY=testing
export S3_SECRET_KEY=$S3_TEST_SECRET_KEY
s3_cli "$BUCKET" mb || bail "cannot create the Swift bucket"
S3_ARGS=(s3 --host "$S3_ENDPOINT" --bucket "$BUCKET" --access-key "$S3_TEST_ACCESS_KEY" --path-style)
start_replica 4 "$T/upstream.yaml" || bail "a replica on Swift did not start"
like "$(replica_log 4)" 'does not honour conditional writes' "the probe finds no conditional writes on Swift"
like "$(curl -s "http://${FRONT[4]}/readyz")" 'alone' "/readyz says this replica works alone"
is "$(metric 4 oci_registry_s3_conditional_writes)" 0 "oci_registry_s3_conditional_writes is 0"
pull 4 "/v2/test/skew/blobs/$SKEW" "$T/w"
is "$(sha256_of "$T/w")" "$SKEW" "pulls still work"

for i in 1 2 3 4; do
	check "replica $i's logs have no sanitizer report" sanitizer_clean <(replica_log "$i")
done
done_testing
