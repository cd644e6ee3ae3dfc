#!/usr/bin/env bash
# lighttpd.sh - real clients pull through lighttpd + oci-registry, with
# contrib/lighttpd as shipped (only port, paths and users changed), both ways
# lighttpd runs with the responder:
#   spawn:   lighttpd starts the responder itself (bin-path)
#   connect: the responder runs under spawn-fcgi; lighttpd connects to it
# Each way: Docker default-namespace, cri-o path prefix and containerd ?ns=
# pulls, the second pull served from the cache, blob hits handed to
# lighttpd with X-Sendfile, and clients at once on a miss following one
# download (the followers' bytes are sent from the file, behind our own
# FastCGI records).

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/containerd.sh
. "$TESTLIB/containerd.sh"
# shellcheck source=tests/lib/lighttpd.sh
. "$TESTLIB/lighttpd.sh"

need_program docker-registry skopeo lighttpd spawn-fcgi curl cgi-fcgi openssl containerd ctr
need_responder

start_upstream || bail "docker-registry upstream did not start"
SMALL=$(make_image small v1 --layers 3 --size 1048576) || bail "cannot push test/small:v1"
MULTI=$(make_image multi v1 --layers 2 --size 65536 --index) || bail "cannot push test/multi:v1"
CTRD=$(make_image ctrd v1 --layers 2 --size 262144) || bail "cannot push test/ctrd:v1"
make_image follow v1 --layers 1 --size $((32 << 20)) >/dev/null || bail "cannot push test/follow:v1"
upstream_curl /v2/test/follow/manifests/v1 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	-o "$T/follow-manifest.json" || bail "cannot read test/follow's manifest"
FOLLOW=$(json_get "$T/follow-manifest.json" layers 0 digest) || bail "no layer in test/follow"
write_upstream_config "$T/upstream.yaml"
diag "upstream $UPSTREAM, test dir $T"

# followers MODE LOG: 8 clients at once on the uncached 32 MiB blob: one
# leads the download, the others follow it; each gets the whole blob, the
# upstream is asked once.
followers() {
	local m=$1 log=$2 i before id pids=()
	before=$(upstream_blob_gets)
	for ((i = 1; i <= 8; i++)); do
		mirror_curl "/v2/test/follow/blobs/$FOLLOW" --max-time 60 | sha256sum | cut -d' ' -f1 >"$T/$m-follow.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	is "$(sort -u "$T/$m-follow".*)" "${FOLLOW#sha256:}" "$m: 8 clients at once on a miss all get the blob"
	is "$(($(upstream_blob_gets) - before))" 1 "$m: 8 clients at once: the upstream is asked once"
	check "$m: 8 clients at once: some followed the download" grep -q "following the download" "$log"
	# lighttpd has no request id: the responder's own joins the two logs.
	id=$(sed -n 's/.*request id=\([0-9a-f]\{32\}\) method=GET route=blob path=[^ ]*follow.*cache=miss.*/\1/p' "$log" | head -1)
	check "$m: a miss's id in the responder's log is on a line of lighttpd's access log" \
		wait_until 10 grep -q "request_id=${id:-none}\$" "$ACCESS_LOG"
}

# client_pulls MODE: every client style through $MIRROR, into a cache that
# starts empty, and the answers of cache hits.
client_pulls() {
	local m=$1 gets1 gets2
	docker_miss_then_hit "$m" "$m-docker"
	gets1=$GETS

	# cri-o / podman / skopeo: registries.conf mirror with a path prefix.
	use_crio_mirror
	check "$m: cri-o style: pull reg.test/test/small:v1 (cached)" pull_dir "$m-crio" docker://reg.test/test/small:v1
	pulled_ok "$m-crio" "$SMALL" "$m: cri-o style"
	is "$(upstream_blob_gets)" "$gets1" "$m: cri-o style pull of a cached image made no blob GET upstream"
	check "$m: cri-o style: pull the multi-arch index with --all (miss)" \
		skopeo_q copy --all docker://reg.test/test/multi:v1 "oci:$T/pulled/$m-multi:v1"
	is "$(json_get "$T/pulled/$m-multi/index.json" manifests 0 digest 2>/dev/null)" "$MULTI" \
		"$m: cri-o style: index digest equals the upstream's"
	gets2=$(upstream_blob_gets)
	check "$m: cri-o style: second pull of the index" \
		skopeo_q copy --all docker://reg.test/test/multi:v1 "oci:$T/pulled/$m-multi2:v1"
	is "$(upstream_blob_gets)" "$gets2" "$m: second pull of the index made no blob GET upstream"
	drop_crio_mirror

	# containerd: hosts.toml mirror, ?ns=reg.test; a fresh containerd each time.
	rm -rf "$T/containerd" "$T/certs.d"
	if check "$m: containerd starts" start_containerd; then
		containerd_miss_then_hit "$m: containerd"
		# lighttpd writes its access log in batches.
		check "$m: lighttpd saw containerd's ?ns=reg.test requests" \
			wait_until 10 grep -q 'ns=reg.test' "$ACCESS_LOG"
		stop containerd
	fi

	# HTTP details of hits sent by lighttpd (X-Sendfile keeps the headers).
	hit_details "$m" "$m-docker"
	health_checks "$m"
	is "$(http_status /_oci_cache/blobs/sha256/"${LAYER:7:2}"/"${LAYER:7}")" 403 "$m: nothing but /v2/ is served"

	# Straight to the responder, as lighttpd asks: hits are handed over with X-Sendfile.
	FCGI_SERVER_SOFTWARE=lighttpd/1.4.69 fcgi_request GET "/v2/test/small/blobs/$LAYER" >"$T/$m-fcgi-blob" 2>>"$T/fcgi.err"
	like "$(head_of "$T/$m-fcgi-blob")" "X-Sendfile: $CACHE/blobs/sha256/${LAYER:7:2}/${LAYER:7}" \
		"$m: FastCGI: a cached blob is answered with X-Sendfile"
	FCGI_SERVER_SOFTWARE=lighttpd/1.4.69 fcgi_request GET /v2/reg.test/test/small/manifests/v1 >"$T/$m-fcgi-manifest" 2>>"$T/fcgi.err"
	body_of "$T/$m-fcgi-manifest" >"$T/$m-fcgi-manifest.body"
	is "$(sha256_of "$T/$m-fcgi-manifest.body")" "$SMALL" \
		"$m: FastCGI: a cached manifest (path prefix) is answered whole"
	check "$m: FastCGI: no nginx header for lighttpd" \
		eval "! grep -q '^X-Accel' '$T/$m-fcgi-manifest'"
	check "$m: the blob is in the cache layout" test -s "$CACHE/blobs/sha256/${LAYER:7:2}/${LAYER:7}"
}

# --- lighttpd starts the responder (bin-path), options from its environment ---
CACHE=$T/cache-spawn
mkdir -p "$CACHE"
if start_lighttpd spawn DEFAULT_NAMESPACE=reg.test UPSTREAM_CONFIG_FILE="$T/upstream.yaml" WORKERS=8; then
	ok 0 "spawn: lighttpd starts the responder (bin-path) and answers /v2/"
	FCGI_SOCK=$T/run/spawn/fcgi.sock-0
	client_pulls spawn
	followers spawn "$LIGHTTPD_LOG"
	stop lighttpd TERM 20
	is "$?" 0 "spawn: lighttpd exits 0 on SIGTERM"
	# lighttpd SIGTERMs its backend on the way out but does not wait for it.
	check "spawn: lighttpd stopped the responder it started (SIGTERM)" \
		wait_until 20 grep -Eq 'info (\[[0-9]+\] )?stopped$' "$LIGHTTPD_LOG"
	check "spawn: responder log has no sanitizer report" sanitizer_clean "$LIGHTTPD_LOG" ||
		diag_file "$LIGHTTPD_LOG" 40
else
	ok 1 "spawn: lighttpd starts the responder (bin-path) and answers /v2/"
fi

# --- the responder under spawn-fcgi, lighttpd connects (bin_path "") ---
CACHE=$T/cache-connect
FCGI_SOCK=$T/run/connect/fcgi.sock
RESPONDER_LOG=$T/log/responder-connect.log
mkdir -p "$CACHE" "$T/run/connect"
# -n: spawn-fcgi creates the socket and execs the responder on it (no fork),
# so it is our child and its log and exit status can be checked.
spawn responder "$RESPONDER_LOG" spawn-fcgi -n -s "$FCGI_SOCK" -- "$OCI_REGISTRY" \
	--upstream-config-file "$T/upstream.yaml" --default-namespace reg.test --workers 8 \
	filesystem --root "$CACHE"
wait_ready responder 20 unix_open "$FCGI_SOCK" || bail "the responder did not start under spawn-fcgi"
check "connect: lighttpd connects to the spawn-fcgi responder" start_lighttpd connect
client_pulls connect
followers connect "$RESPONDER_LOG"
# The responder was not told its front: auto tells them apart per request.
fcgi_request GET "/v2/test/small/blobs/$LAYER" >"$T/connect-fcgi-nginx" 2>>"$T/fcgi.err"
like "$(head_of "$T/connect-fcgi-nginx")" "X-Accel-Redirect: /_oci_cache/" \
	"connect: the same responder still answers nginx (SERVER_SOFTWARE nginx) with X-Accel-Redirect"
stop lighttpd TERM 20
is "$?" 0 "connect: lighttpd exits 0 on SIGTERM"
stop_responder_checked

done_testing
