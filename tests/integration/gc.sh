#!/usr/bin/env bash
# gc.sh - `oci-registry gc` while the registry serves, on filesystem storage
# and on S3 (Swift with s3api): skopeo pushes two images that share a layer
# to a hosted namespace, one is deleted (delete: true), and gc --dry-run
# lists what only it used without removing anything; gc then removes those
# links and bytes and nothing else: the other image still pulls with skopeo
# and verifies, the shared layer stays, and a blob pushed within the grace
# period survives. A bad command line exits 2, a storage that does not
# answer 1.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"

need_program skopeo nginx curl
need_responder

EXTRA_UPSTREAMS=$(printf '%s\n' '- namespace: hosted.test' '  hosted: true' '  delete: true' \
	'  anonymous_push: true')
GRACE=5 # seconds: pushes older than this are collected, younger ones stay
REPO=myorg/gc

# Two images in one OCI layout, tagged a and b: a shared layer and one of their own each.
"$PYTHON" - "$TESTLIB" "$T/layout" <<'EOF' || bail "cannot make the images"
import os, random, sys
sys.path.insert(0, sys.argv[1])
import util

layout, rng = util.Layout(sys.argv[2]), random.Random(os.urandom(16))
shared = util.make_layer(rng, 0, 150000)
for tag, number in (("a", 1), ("b", 2)):
    layers = [shared, util.make_layer(rng, number, 120000 + number)]
    config = {"architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]}}
    manifest = {"schemaVersion": 2, "mediaType": util.OCI_MANIFEST,
                "config": layout.json_blob(config, util.OCI_CONFIG),
                "layers": [layout.blob(data, util.OCI_LAYER) for data, _ in layers]}
    layout.tag(layout.json_blob(manifest, util.OCI_MANIFEST), tag)
EOF
# manifest_of TAG: the image's manifest file in the layout.
manifest_of() {
	local d
	d=$("$PYTHON" -c 'import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    if m["annotations"]["org.opencontainers.image.ref.name"] == sys.argv[2]: print(m["digest"])' \
		"$T/layout/index.json" "$1")
	printf '%s\n' "$T/layout/blobs/sha256/${d#sha256:}"
}
A=$(sha256_of "$(manifest_of a)")
B=$(sha256_of "$(manifest_of b)")
SHARED=$(json_get "$(manifest_of a)" layers 0 digest)
A_OWN=$(json_get "$(manifest_of a)" layers 1 digest)
B_OWN=$(json_get "$(manifest_of b)" layers 1 digest)
B_CONFIG=$(json_get "$(manifest_of b)" config digest)
A_CONFIG=$(json_get "$(manifest_of a)" config digest)

# start_storage_responder: the responder on the storage of STORAGE_ARGS, and nginx.
start_storage_responder() {
	FCGI_SOCK=$T/run/fcgi.sock RESPONDER_LOG=$T/log/responder-$LABEL.log
	mkdir -p "$T/run"
	write_upstream_config "$T/upstream.yaml"
	spawn responder "$RESPONDER_LOG" env S3_SECRET_KEY="$S3_TEST_SECRET_KEY" "$OCI_REGISTRY" \
		--listen "unix:$FCGI_SOCK" --upstream-config-file "$T/upstream.yaml" \
		--default-namespace hosted.test --workers 4 --usage-file "$T/usage-$LABEL" \
		"${STORAGE_ARGS[@]}"
	wait_ready responder 30 unix_open "$FCGI_SOCK" && start_nginx
}

# run_gc NAME [GC OPTIONS...]: gc on the storage; output in $T/NAME.out, stderr in
# $T/NAME.err; returns its exit status.
run_gc() {
	local name=$1
	shift
	S3_SECRET_KEY=$S3_TEST_SECRET_KEY timeout 120 "$OCI_REGISTRY" --usage-file "$T/usage-$LABEL" \
		"${STORAGE_ARGS[@]}" gc "$@" >"$T/$name.out" 2>"$T/$name.err"
}

# blob_status DIGEST: the registry's answer to a HEAD of a blob of the repository.
blob_status() {
	http_status "/v2/$REPO/blobs/$1" -I
}

# stored DIGEST: true when the storage holds the blob's bytes.
stored() {
	local hex=${1#sha256:}
	if [ "$LABEL" = s3 ]; then
		s3_cli oci-gc ls "blobs/sha256/${hex:0:2}/$hex" | grep -q .
	else
		[ -e "$CACHE/blobs/sha256/${hex:0:2}/$hex" ]
	fi
}

# listed NAME DIGEST: the lines of $T/NAME.out that name DIGEST.
listed() {
	grep -c -e "${2#sha256:}" "$T/$1.out"
}

# clock_past EPOCH: true once the clock is past EPOCH.
clock_past() {
	[ "$(date +%s)" -gt "$1" ]
}

gc_scenario() {
	local c fresh pushed_at
	start_storage_responder || bail "$LABEL: the responder did not start"
	for tag in a b; do
		check "$LABEL: skopeo pushes image $tag" skopeo_q copy --dest-tls-verify=false \
			"oci:$T/layout:$tag" "docker://$MIRROR/$REPO:$tag"
	done
	pushed_at=$(date +%s)
	is "$(http_status "/v2/$REPO/manifests/$B" -X DELETE)" 202 "$LABEL: image b is deleted"

	# A blob pushed now, inside the grace period, referenced by nothing yet. Swift's
	# LastModified is its timestamp rounded up to the second: a second more.
	check "$LABEL: the pushes are older than the grace period" \
		wait_until 30 clock_past $((pushed_at + GRACE + 1))
	head -c 50000 /dev/urandom >"$T/fresh"
	fresh=$(sha256_of "$T/fresh")
	is "$(http_status "/v2/$REPO/blobs/uploads/?digest=$fresh" -X POST --data-binary "@$T/fresh")" \
		201 "$LABEL: a blob is pushed just before gc"

	run_gc dry --dry-run --grace "${GRACE}s"
	is "$?" 0 "$LABEL: gc --dry-run exits 0"
	for c in "$B_CONFIG" "$B_OWN"; do
		is "$(listed dry "$c")" 2 "$LABEL: the dry run lists ${c:0:15}: link and bytes"
	done
	is "$(grep -c '^would remove' "$T/dry.out")" 4 "$LABEL: the dry run lists nothing else"
	like "$(tail -1 "$T/dry.out")" '2 links to remove, .* 2 blobs to remove' \
		"$LABEL: the dry run's summary"
	is "$(blob_status "$B_OWN")" 200 "$LABEL: the dry run removed nothing"

	run_gc real --grace "${GRACE}s"
	is "$?" 0 "$LABEL: gc exits 0"
	like "$(tail -1 "$T/real.out")" '^gc: 1 repositories, 1 manifests marked, 0 manifests removed, 2 links removed, 4 blobs kept, 2 blobs removed' \
		"$LABEL: gc's summary"
	for c in "$B_CONFIG" "$B_OWN"; do
		like "$(grep "${c#sha256:}" "$T/real.out" | tr '\n' ' ')" \
			'^removed.link.*removed.blob' "$LABEL: gc removes ${c:0:15}: link, then bytes"
		is "$(blob_status "$c")" 404 "$LABEL: ${c:0:15} of image b is gone from the repository"
		check "$LABEL: ${c:0:15}'s bytes are gone from storage" eval "! stored $c"
	done
	for c in "$SHARED" "$A_OWN" "$A_CONFIG" "$fresh"; do
		is "$(blob_status "$c")" 200 "$LABEL: ${c:0:15} stays"
		check "$LABEL: ${c:0:15}'s bytes stay" stored "$c"
	done
	check "$LABEL: image a still pulls with skopeo" pull_through "a-$LABEL" "$REPO:a"
	pulled_ok "a-$LABEL" "$A" "$LABEL: image a after gc"
	check "$LABEL: gc wrote no sanitizer report" sanitizer_clean "$T/real.err"

	run_gc again --grace "${GRACE}s"
	like "$(tail -1 "$T/again.out")" ' 0 links removed, .* 0 blobs removed' \
		"$LABEL: a second gc finds nothing more"
	stop nginx
	stop_responder_checked
}

CACHE=$T/cache-fs # nginx's files location; S3 hits go through presigned URLs
LABEL=fs
STORAGE_ARGS=(filesystem --root "$CACHE")
mkdir -p "$CACHE"
gc_scenario

run_gc usage --grace soon
is "$?" 2 "gc --grace with a bad duration exits 2"
like "$(cat "$T/usage.err")" "--grace must be a duration" "and says why"
run_gc usage --no-such-option
is "$?" 2 "gc with an unknown option exits 2"

if "$PYTHON" -c 'import swift.common.middleware.s3api' 2>/dev/null; then
	start_swift || bail "Swift (s3api) did not start"
	s3_cli oci-gc mb || bail "cannot create the bucket"
	LABEL=s3
	STORAGE_ARGS=(s3 --host "$S3_ENDPOINT" --bucket oci-gc --region us-east-1
		--access-key "$S3_TEST_ACCESS_KEY" --path-style)
	gc_scenario
	stop_swift TERM
	run_gc down --grace "${GRACE}s"
	is "$?" 1 "S3: gc on a storage that does not answer exits 1"
else
	skip "gc on S3" "Debian's python3-swift is not installed (scripts/test installs it)"
fi
done_testing
