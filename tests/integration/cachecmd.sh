#!/usr/bin/env bash
# cachecmd.sh - the operator's `cache` command on a cache filled through
# nginx: ls (all, one namespace, one repository, --json), du, verify (a
# corrupted blob is found, exit 1, quarantined with --repair and fetched
# again), evict --to, rm of a tag, a manifest, a blob, a repository and a
# namespace; a blob being sent by nginx while it is removed still arrives
# whole; progress shows on a terminal only; bad command lines exit 2.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/cache.sh
. "$TESTLIB/cache.sh"

need_program docker-registry skopeo nginx curl script
need_responder

MIB=$((1024 * 1024))

# cachecmd ARGS...: the cache command on the test's cache; sets STATUS, OUT, ERR.
cachecmd() {
	timeout 60 "$OCI_REGISTRY" --min-cache-age 0 filesystem --root "$CACHE" cache "$@" \
		</dev/null >"$T/out" 2>"$T/err"
	STATUS=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	cat "$T/err" >>"$T/all-err"
}

start_upstream || bail "docker-registry upstream did not start"
make_image one v1 --layers 1 --size $((2 * MIB)) >/dev/null || bail "cannot push test/one"
make_image two v1 --layers 1 --size $((2 * MIB)) >/dev/null || bail "cannot push test/two"
make_image big v1 --layers 1 --size $((24 * MIB)) >/dev/null || bail "cannot push test/big"
EXTRA_UPSTREAMS=$(upstream_entry other.test "$UPSTREAM")
start_mirror --default-namespace reg.test || bail "mirror did not start"
check "pull reg.test/test/one" pull_image reg.test one
check "pull reg.test/test/two" pull_image reg.test two
check "pull other.test/test/one" pull_image other.test one
ONE_LAYER=$(json_get "$T/one.json" layers 0 digest)
TWO_LAYER=$(json_get "$T/two.json" layers 0 digest)
ONE_MANIFEST=$(sha256_of "$T/one.json")

# --- ls ---------------------------------------------------------------------------------
cachecmd ls
is "$STATUS" 0 "ls: exit 0"
like "$OUT" "reg.test/test/one:v1	$ONE_MANIFEST	[0-9]+	cached	20[0-9-]+T" "ls: a tag, its digest, size, last use"
like "$OUT" "other.test/test/one:v1" "ls: every namespace"
cachecmd ls reg.test/test/two
is "$(printf '%s\n' "$OUT" | grep -c .)" 2 "ls NS/REPO: that repository's records only (tag and digest)"
like "$OUT" "reg.test/test/two@sha256:" "ls NS/REPO: the record by digest"
cachecmd ls other.test --json
is "$STATUS" 0 "ls --json: exit 0"
is "$(json_get - 0 repository <<<"$OUT")" test/one "ls --json: the repository"
is "$(json_get - 0 digest <<<"$OUT")" "$ONE_MANIFEST" "ls --json: the digest"
cachecmd ls 'Not A Name!'
is "$STATUS" 2 "ls with a bad filter: exit 2"

# --- du ---------------------------------------------------------------------------------
cachecmd du --json
is "$STATUS" 0 "du: exit 0"
is "$(json_get - namespaces 0 namespace <<<"$OUT")" other.test "du: namespaces in order"
is "$(json_get - namespaces 0 blobs <<<"$OUT")" 3 "du: other.test names 3 blobs (manifest, config, layer)"
is "$(json_get - namespaces 1 blobs <<<"$OUT")" 6 "du: reg.test names 6 blobs"
total=$(find "$CACHE/blobs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
is "$(json_get - bytes <<<"$OUT")" "$total" "du: the total is the bytes under blobs/"

# --- verify -----------------------------------------------------------------------------
cachecmd verify
is "$STATUS" 0 "verify: a sound cache exits 0"
like "$OUT" "checked [0-9]+ blobs .*: 0 corrupt" "verify: says what it checked"
is "$ERR" "" "verify: no progress on a pipe"
printf 'X' | dd of="$(blob_file "$TWO_LAYER")" bs=1 seek=1000 conv=notrunc status=none
cachecmd verify --json
is "$STATUS" 1 "verify: a corrupt blob exits 1"
is "$(json_get - corrupt 0 <<<"$OUT")" "blobs/sha256/${TWO_LAYER:7:2}/${TWO_LAYER:7}" "verify: names it"
check "verify: without --repair it stays" test -e "$(blob_file "$TWO_LAYER")"
cachecmd verify --repair
is "$STATUS" 1 "verify --repair: still exits 1 (something was wrong)"
like "$OUT" "1 corrupt, 1 quarantined" "verify --repair: quarantined"
check "verify --repair: out of blobs/" test ! -e "$(blob_file "$TWO_LAYER")"
check "verify --repair: kept in quarantine/" test -e "$CACHE/quarantine/sha256/${TWO_LAYER:7:2}/${TWO_LAYER:7}"
check "verify --repair: the blob is fetched again, whole" pull_image reg.test two
cachecmd verify
is "$STATUS" 0 "verify: sound again"
TERM=dumb script -qec "'$OCI_REGISTRY' filesystem --root '$CACHE' cache verify" /dev/null >"$T/tty" 2>&1
like "$(tr '\r' '\n' <"$T/tty")" "verify: [0-9]+/[0-9]+ blobs" "verify: progress on a terminal"
TERM=dumb script -qec "'$OCI_REGISTRY' filesystem --root '$CACHE' cache du" /dev/null >"$T/tty2" 2>&1
like "$(tr '\r' '\n' <"$T/tty2")" "du: [0-9]+/[0-9]+ manifest records" "du: progress on a terminal"
cachecmd du
is "$ERR" "" "du: no progress on a pipe"

# --- rm ---------------------------------------------------------------------------------
cachecmd rm reg.test/test/one:v1
is "$STATUS" 0 "rm NS/REPO:TAG: exit 0"
like "$OUT" "removed 1 records and 0 blobs" "rm NS/REPO:TAG: the tag's record only"
cachecmd rm reg.test/test/one:v1
is "$STATUS" 1 "rm of what is not cached: exit 1"
like "$ERR" "nothing cached under" "rm of what is not cached: says so"
check "a removed tag is pulled again" pull_image reg.test one again
cachecmd rm "reg.test/test/one@$ONE_MANIFEST" --json
is "$(json_get - records <<<"$OUT")" 2 "rm NS/REPO@DIGEST: its record and the tag pointing at it"
is "$(json_get - blobs <<<"$OUT")" 1 "rm NS/REPO@DIGEST: and its content"
cachecmd ls other.test/test/one
like "$OUT" "other.test/test/one:v1	$ONE_MANIFEST	[0-9]+	evicted" \
	"ls: another namespace's record of that manifest shows its content gone"
check "that other namespace's pull fetches it again" pull_image other.test one
cachecmd rm "$ONE_LAYER"
like "$OUT" "removed 0 records and 1 blobs" "rm DIGEST: a blob"
check "rm DIGEST: gone" test ! -e "$(blob_file "$ONE_LAYER")"
cachecmd rm reg.test/test/two
like "$OUT" "removed 2 records" "rm NS/REPO: the repository's records"
cachecmd rm other.test
is "$STATUS" 0 "rm NS: exit 0"
cachecmd ls other.test
is "$OUT" "" "rm NS: nothing left of the namespace"

# --- evict, and a blob sent by nginx while it is removed --------------------------------
check "pull reg.test/test/big" pull_image reg.test big
BIG=$(json_get "$T/big.json" layers 0 digest)
mirror_curl "/v2/reg.test/test/big/blobs/$BIG" --limit-rate 4M --max-time 60 -o "$T/slow" &
slow=$!
wait_until 10 test -s "$T/slow"
cachecmd evict --to 0
is "$STATUS" 0 "evict --to 0: exit 0"
is "$ERR" "" "evict: no progress on a pipe"
like "$OUT" "evicted [0-9]+ blobs" "evict --to 0: says what it did"
check "evict --to 0: the big blob is gone" test ! -e "$(blob_file "$BIG")"
wait "$slow"
is "$?" 0 "the blob being sent while evicted: the download ends well"
is "$(sha256_of "$T/slow")" "$BIG" "the blob being sent while evicted: arrived whole"
is "$(find "$CACHE/blobs" -type f | wc -l)" 0 "evict --to 0: nothing left"
check "after evict, a pull fetches everything again" pull_image reg.test big
TERM=dumb script -qec "'$OCI_REGISTRY' --min-cache-age 0 filesystem --root '$CACHE' cache evict --to 0" \
	/dev/null >"$T/tty3" 2>&1
like "$(tr '\r' '\n' <"$T/tty3")" "evict: [0-9]+/[0-9]+ candidates" "evict: progress on a terminal"

# --- bad command lines ------------------------------------------------------------------
for args in "frob" "evict" "evict --to 12XB" "rm" "rm a/b/../c" "du extra" "verify --to 5" "ls a b"; do
	# shellcheck disable=SC2086 # the words are the arguments
	cachecmd $args
	is "$STATUS" 2 "cache $args: exit 2"
	is "$(wc -l <"$T/err")" 1 "cache $args: one line on stderr"
done
timeout 20 "$OCI_REGISTRY" filesystem --root "$CACHE" cache </dev/null >/dev/null 2>"$T/err"
is "$?" 2 "cache without a command: exit 2"
stop_responder_checked
cat "$T/err" "$T/tty" "$T/tty2" "$T/tty3" >>"$T/all-err"
check "the cache command left no sanitizer report" sanitizer_clean "$T/all-err"

done_testing
