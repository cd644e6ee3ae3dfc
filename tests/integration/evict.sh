#!/usr/bin/env bash
# evict.sh - the size bound through nginx: pulls of five 20 MiB images into a
# cache bounded at 64 MiB keep it under the bound (plus the one object being
# committed), evicted blobs are fetched again on their next pull, bad sizes
# stop the program with exit 2, a full disk (a 72 MiB tmpfs) still streams
# the blob whole to its client, leaves nothing partial and makes room; and a
# small run of bench/evict: the bound holds over a Zipf pull trace and the
# hit ratio is within 5 points of an exact LRU's. Then the same bound on S3
# (Swift with s3api), checked in the bucket and with `cache du` on it.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/cache.sh
. "$TESTLIB/cache.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"

need_program docker-registry skopeo nginx curl mount spawn-fcgi
need_responder

MIB=$((1024 * 1024))
LAYER_SIZE=$((20 * MIB))
BOUND=$((64 * MIB))

# cached_bytes: the bytes under the cache's blobs/.
cached_bytes() {
	find "$CACHE/blobs" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

# under BYTES: the cache holds at most BYTES.
under() {
	[ "$(cached_bytes)" -le "$1" ]
}

start_upstream || bail "docker-registry upstream did not start"
for i in 1 2 3 4 5; do
	make_image "img$i" v1 --layers 1 --size "$LAYER_SIZE" >/dev/null || bail "cannot push test/img$i"
done

# --- bad sizes stop the program before it serves -----------------------------------
bad_size() {
	local desc=$1 re=$2 status
	shift 2
	timeout 20 "$@" </dev/null >/dev/null 2>"$T/err"
	status=$?
	is "$status" 2 "$desc: exit status 2"
	is "$(wc -l <"$T/err")" 1 "$desc: one line on stderr"
	like "$(cat "$T/err")" "$re" "$desc: the message says why"
}
mkdir -p "$T/cache0"
bad_size "--max-cache-size 12XB" "max-cache-size.*12XB" \
	"$OCI_REGISTRY" --max-cache-size 12XB filesystem --root "$T/cache0"
bad_size "MAX_CACHE_SIZE=1.5GB" "MAX_CACHE_SIZE.*1\.5GB" \
	env MAX_CACHE_SIZE=1.5GB "$OCI_REGISTRY" filesystem --root "$T/cache0"
bad_size "a bound below 64MiB" "below the smallest bound" \
	"$OCI_REGISTRY" --max-cache-size 1MiB filesystem --root "$T/cache0"
bad_size "a percentage for S3" "needs filesystem" \
	"$OCI_REGISTRY" --max-cache-size 90% s3 --bucket b --access-key k --secret-key s
bad_size "--min-cache-age soon" "min-cache-age.*soon" \
	"$OCI_REGISTRY" --max-cache-size 64MiB --min-cache-age soon filesystem --root "$T/cache0"

# --- the bound holds while five 20 MiB images are pulled -------------------------------
start_mirror --default-namespace reg.test --max-cache-size 64MiB --min-cache-age 0 ||
	bail "mirror did not start"
max_seen=0
# Each pull as if a minute after the one before (age_image), the last one now.
aged=$(($(date +%s) - 600))
for i in 1 2 3 4 5; do
	check "img$i: pulled whole through the bounded cache" pull_image "" "img$i"
	age_image "img$i" $((aged + 60 * i))
	size=$(cached_bytes)
	[ "$size" -le "$max_seen" ] || max_seen=$size
done
ok "$([ "$max_seen" -le $((BOUND + LAYER_SIZE + MIB)) ] && echo 0 || echo 1)" \
	"the cache never held more than the bound and one object ($max_seen bytes)"
check "eviction brings the cache under the bound" wait_until 20 under "$BOUND"
check "eviction stops near the low-water mark, not at an empty cache" \
	test "$(cached_bytes)" -ge $((BOUND * 9 / 10 - 2 * LAYER_SIZE))
like "$(cat "$RESPONDER_LOG")" "eviction objects=[0-9]+ bytes=" "the responder logs its evictions"
check "nothing left in tmp/" cache_tmp_empty
mirror_curl /metrics -o "$T/metrics"
like "$(cat "$T/metrics")" "oci_registry_cache_bound_bytes $BOUND" "/metrics: the bound"
like "$(cat "$T/metrics")" "oci_registry_evicted_objects_total [1-9]" "/metrics: the evictions"
gauge=$(awk '$1 == "oci_registry_cache_size_bytes" { print $2 }' "$T/metrics")
ok "$([ "${gauge:-99999999999}" -le "$BOUND" ] 2>/dev/null && echo 0 || echo 1)" \
	"/metrics: the cache's size ($gauge) is under the bound"

# img1 was the least recently used: gone, and fetched again on its next pull.
before=$(upstream_blob_gets)
# Eviction runs in the background in bounded steps: wait for it (bounded).
check "img1 was evicted" wait_until 20 test ! -e "$(blob_file "$(json_get "$T/img1.json" layers 0 digest)")"
check "img1 is pulled again whole" pull_image "" img1
ok "$([ "$(upstream_blob_gets)" -gt "$before" ] && echo 0 || echo 1)" \
	"img1's blobs were fetched from the upstream again"
check "img1, the most recent now, is cached" test -e "$(blob_file "$(json_get "$T/img1.json" layers 0 digest)")"
check "and the cache is under the bound again" wait_until 20 under "$BOUND"

# --- two processes on one cache (spawn-fcgi -F 2): one size, shared ----------------------
# Each process counts only its own commits unless the total is shared: then
# neither would see the cache pass the bound.
stop_responder_checked
rm -rf "$CACHE" "$FCGI_SOCK"
mkdir -p "$CACHE"
spawn-fcgi -s "$FCGI_SOCK" -M 0666 -F 2 -P "$T/run/spawn.pid" -- /bin/sh -c \
	"exec '$OCI_REGISTRY' --default-namespace reg.test --upstream-config-file '$T/upstream.yaml' \
	 --max-cache-size 64MiB --min-cache-age 0 filesystem --root '$CACHE' 2>>'$T/log/spawned.log'" \
	>"$T/log/spawn-fcgi.log" 2>&1 || bail "spawn-fcgi failed"
# spawned_gone: none of spawn-fcgi's children runs any more.
spawned_gone() {
	local pid
	for pid in $SPAWNED; do
		! kill -0 "$pid" 2>/dev/null || return 1
	done
}
SPAWNED=$(tr '\n' ' ' <"$T/run/spawn.pid")
at_exit "kill $SPAWNED 2>/dev/null"
is "$(wc -w <<<"$SPAWNED")" 2 "spawn-fcgi -F 2 started two responders"
aged=$(($(date +%s) - 600))
for i in 1 2 3 4 5; do
	check "two processes: img$i pulled whole" pull_image "" "img$i"
	age_image "img$i" $((aged + 60 * i))
done
check "two processes: the cache is kept under the bound" wait_until 20 under "$BOUND"
like "$(cat "$T/log/spawned.log")" "eviction objects=[0-9]+ bytes=" "two processes: one of them evicted"
# shellcheck disable=SC2086 # the pids
kill $SPAWNED
check "two processes: both stop on SIGTERM" wait_until 15 spawned_gone
check "two processes: no sanitizer report" sanitizer_clean "$T/log/spawned.log"
stop nginx

# --- a full disk -----------------------------------------------------------------------
# The bound is far above the disk: only the full disk can start an eviction.
rm -rf "$CACHE"
mkdir -p "$CACHE"
mount -t tmpfs -o size=72m tmpfs "$CACHE" || bail "cannot mount a tmpfs"
at_exit "umount -l '$CACHE'"
start_mirror --default-namespace reg.test --max-cache-size 1TiB --min-cache-age 0 ||
	bail "mirror did not start on the tmpfs"
for i in 1 2 3; do
	check "full disk: img$i pulled" pull_image "" "img$i"
done
# 60 MiB are in; the fourth does not fit: it is still streamed whole.
COMMIT_WAIT=no
check "full disk: img4 streams whole although it cannot be stored" pull_image "" img4
COMMIT_WAIT=yes
like "$(cat "$RESPONDER_LOG")" "out of space" "full disk: the storage reports it"
check "full disk: nothing partial left in tmp/" cache_tmp_empty
check "full disk: img4 was not stored" test ! -e "$(blob_file "$LAYER")"
check "full disk: eviction makes room" wait_until 20 under $((50 * MIB))
check "full disk: img4 is cached on its next pull" pull_image "" img4
check "full disk: img4 is now stored" test -e "$(blob_file "$LAYER")"
stop_responder_checked

# --- S3 ---------------------------------------------------------------------------------
# bucket_bytes: the bytes under the bucket's blobs/.
bucket_bytes() {
	s3_cli oci-cache ls mirror/blobs/ | awk '{ s += $2 } END { print s + 0 }'
}
bucket_under() {
	[ "$(bucket_bytes)" -le "$1" ]
}
if "$PYTHON" -c 'import swift.common.middleware.s3api' 2>/dev/null; then
	start_swift || bail "Swift (s3api) did not start"
	s3_cli oci-cache mb || bail "cannot create the bucket"
	S3_ARGS=(s3 --host "$S3_ENDPOINT" --bucket oci-cache --access-key "$S3_TEST_ACCESS_KEY"
		--path-style --prefix mirror)
	spawn responder "$RESPONDER_LOG.s3" env S3_SECRET_KEY="$S3_TEST_SECRET_KEY" "$OCI_REGISTRY" \
		--listen "unix:$FCGI_SOCK" --upstream-config-file "$T/upstream.yaml" \
		--default-namespace reg.test --max-cache-size 64MiB --min-cache-age 0 \
		--usage-file "$T/s3.usage" "${S3_ARGS[@]}"
	wait_ready responder 30 unix_open "$FCGI_SOCK" || bail "responder on S3 did not start"
	COMMIT_WAIT=no
	for i in 1 2 3 4 5; do
		check "S3: img$i pulled whole through the bounded cache" pull_image "" "img$i"
	done
	# A pull ends before its layer's upload (storage/s3.c): the bucket can be
	# under the bound before the uploads land. Settled: the newest layer is
	# stored (img4's, the same size, started first), an eviction ran, and the
	# bucket is under the bound.
	LAST_LAYER=$(upstream_layer img5 v1)
	last_stored() { s3_cli oci-cache ls "mirror/blobs/sha256/${LAST_LAYER:7:2}/${LAST_LAYER:7}" | grep -q .; }
	evicted() { grep -Eq 'eviction objects=[0-9]+ bytes=' "$RESPONDER_LOG.s3"; }
	check "S3: the newest layer is stored" wait_until 60 last_stored
	check "S3: the responder logs its evictions" wait_until 30 evicted
	check "S3: eviction keeps the bucket under the bound" wait_until 30 bucket_under "$BOUND"
	# s3_du: cache du on the bucket into $T/s3du.json.
	s3_du() {
		S3_SECRET_KEY=$S3_TEST_SECRET_KEY timeout 60 "$OCI_REGISTRY" --usage-file "$T/s3.usage" \
			"${S3_ARGS[@]}" cache du --json >"$T/s3du.json" 2>"$T/s3du.err"
	}
	s3_du
	is "$?" 0 "S3: cache du runs on the bucket"
	# Eviction may still be going down to the low-water mark: the two agree once it is done.
	du_matches() { s3_du && [ "$(json_get "$T/s3du.json" bytes)" = "$(bucket_bytes)" ]; }
	check "S3: cache du counts what the bucket holds" wait_until 30 du_matches
	stop responder TERM 15
	is "$?" 0 "S3: the responder exits 0 on SIGTERM"
	check "S3: no sanitizer report" sanitizer_clean "$RESPONDER_LOG.s3"
else
	skip "S3" "python3-swift is not installed"
fi

# --- bench/evict, small ----------------------------------------------------------------
BENCH=$top_builddir/bench/evict
if [ -x "$BENCH" ]; then
	timeout 120 "$BENCH" --images 40 --pulls 400 --every 100 --dir "$T/bench" >"$T/bench.out" 2>&1
	is "$?" 0 "bench/evict: runs"
	result=$(tail -n 1 "$T/bench.out")
	diag "bench/evict: $result"
	eval "$(printf '%s\n' "$result" | tr ' ' '\n' | grep -E '^[a-z_]+=[0-9.]+$' | sed 's/^/bench_/')"
	ok "$([ "${bench_max_bytes:-1}" -le $((${bench_bound:-0} + ${bench_largest_object:-0})) ] && echo 0 || echo 1)" \
		"bench/evict: the cache never held more than the bound and one object"
	ok "$(awk -v a="${bench_hit_ratio:-0}" -v b="${bench_lru_hit_ratio:-1}" \
		'BEGIN { d = a - b; if (d < 0) d = -d; print (d <= 0.05) ? 0 : 1 }')" \
		"bench/evict: hit ratio within 5 points of an exact LRU's"
	check "bench/evict: sanitizer clean" sanitizer_clean "$T/bench.out"
else
	skip "bench/evict" "not built"
fi

done_testing
