#!/usr/bin/env bash
# pull.sh - real clients pull through nginx + oci-registry from a real
# upstream (docker-registry over TLS), in the three ways clients use a mirror:
#   Docker registry-mirrors: no registry hint -> --default-namespace
#   cri-o/podman/skopeo registries.conf mirror: path prefix /v2/reg.test/...
#   containerd hosts.toml mirror: ?ns=reg.test on every request
# and the second pull is served from the cache.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/containerd.sh
. "$TESTLIB/containerd.sh"

need_program docker-registry skopeo nginx curl cgi-fcgi openssl containerd ctr
need_responder

# --- setup: upstream with two images, the mirror in front of it ---
start_upstream || bail "docker-registry upstream did not start"
SMALL=$(make_image small v1 --layers 3 --size 1048576) || bail "cannot push test/small:v1"
MULTI=$(make_image multi v1 --layers 2 --size 65536 --index) || bail "cannot push test/multi:v1"
CTRD=$(make_image ctrd v1 --layers 2 --size 262144) || bail "cannot push test/ctrd:v1"
start_mirror --default-namespace reg.test --workers 8 || bail "mirror did not start"
diag "upstream $UPSTREAM, mirror $MIRROR, test dir $T"


# --- Docker style: default namespace, domain-root mirror ---
docker_miss_then_hit nginx docker
gets1=$GETS

check "docker style: pull by digest" \
	pull_dir docker3 "docker://$MIRROR/test/small@$SMALL" --src-tls-verify=false
pulled_ok docker3 "$SMALL" "docker style, by digest"

# --- cri-o / podman / skopeo style: registries.conf mirror with a path prefix ---
use_crio_mirror
check "cri-o style: pull reg.test/test/small:v1 through the mirror" \
	pull_dir crio docker://reg.test/test/small:v1
pulled_ok crio "$SMALL" "cri-o style"
check "cri-o style: pull by digest" pull_dir crio2 "docker://reg.test/test/small@$SMALL"
pulled_ok crio2 "$SMALL" "cri-o style, by digest"
is "$(upstream_blob_gets)" "$gets1" "cri-o style pulls of a cached image made no blob GET upstream"

gets2=$(upstream_blob_gets)
rm -rf "$T/pulled/multi"
check "cri-o style: pull the multi-arch index with --all" \
	skopeo_q copy --all docker://reg.test/test/multi:v1 "oci:$T/pulled/multi:v1"
is "$(json_get "$T/pulled/multi/index.json" manifests 0 digest 2>/dev/null)" "$MULTI" \
	"cri-o style: index digest equals the upstream's"
gets3=$(upstream_blob_gets)
check "cri-o style: second pull of the index" \
	skopeo_q copy --all docker://reg.test/test/multi:v1 "oci:$T/pulled/multi2:v1"
is "$(upstream_blob_gets)" "$gets3" "second pull of the index made no blob GET upstream ($((gets3 - gets2)) on the first)"
drop_crio_mirror

# --- containerd style: hosts.toml mirror, ?ns=reg.test ---

containerd_pulls() {
	write_hosts_dir "$T/certs.d" reg.test "$MIRROR"
	check "containerd: ctr pulls and unpacks reg.test/test/small:v1 through the mirror" \
		ctr_pull reg.test/test/small:v1
	is "$(ctr_digest reg.test/test/small:v1)" "$SMALL" "containerd: image digest equals the upstream's"
	check "containerd: pull the index by digest (unpacks linux/amd64)" \
		ctr_pull "reg.test/test/multi@$MULTI"
	is "$(upstream_blob_gets)" "$gets3" "containerd pulls of cached images made no blob GET upstream"
	check "containerd: pull reg.test/test/ctrd:v1, not cached yet (a miss through ?ns=)" \
		ctr_pull reg.test/test/ctrd:v1
	is "$(ctr_digest reg.test/test/ctrd:v1)" "$CTRD" "containerd: digest of the missed image equals the upstream's"
	check "the mirror saw containerd's ?ns=reg.test requests" \
		grep -q 'ns=reg.test' "$T/log/nginx-access.log"
}
if check "containerd starts" start_containerd; then
	containerd_pulls
	stop containerd
fi

# --- HTTP details through nginx ---
hit_details nginx docker
health_checks nginx

# --- nginx keeps manifest answers for as long as the responder says ---
# A HEAD first, then GETs, by digest, as containerd asks (an image nobody pulled).
FRESH=$(make_image fresh v1 --layers 1 --size 1024) || bail "cannot push test/fresh:v1"
MANIFEST_BY_DIGEST=/v2/test/fresh/manifests/$FRESH
code=$(http_status "$MANIFEST_BY_DIGEST" -I)
is "$code $(header X-Cache-Status)" "200 MISS" "HEAD manifest by digest: asks the responder"
code=$(http_status "$MANIFEST_BY_DIGEST")
is "$code $(header X-Cache-Status)" "200 MISS" "GET after a HEAD: not the HEAD's kept answer"
is "$(sha256_of "$T/body")" "$FRESH" "GET after a HEAD: the whole manifest"
code=$(http_status "$MANIFEST_BY_DIGEST")
is "$code $(header X-Cache-Status)" "200 HIT" "GET again: answered from nginx's cache"
is "$(sha256_of "$T/body")" "$FRESH" "GET from nginx's cache: the whole manifest"
is "$(header Docker-Content-Digest)" "$FRESH" "GET from nginx's cache: Docker-Content-Digest"
check "nginx does not pass X-Accel-Expires on" eval "! grep -qi '^X-Accel' '$T/headers'"
for i in 1 2; do
	code=$(http_status /v2/test/small/manifests/no-such-tag)
	is "$code $(header X-Cache-Status)" "404 MISS" "an error is never kept ($i)"
done

# --- straight to the responder: blob hits are handed to nginx, manifests answered whole ---
fcgi_request GET "/v2/test/small/blobs/$LAYER" >"$T/fcgi-blob" 2>"$T/fcgi.err"
like "$(head_of "$T/fcgi-blob")" \
	"X-Accel-Redirect: /_oci_cache/blobs/sha256/${LAYER:7:2}/${LAYER:7}" \
	"FastCGI: a cached blob is answered with X-Accel-Redirect"
for uri in /v2/test/small/manifests/v1 /v2/reg.test/test/small/manifests/v1; do
	fcgi_request GET "$uri" >"$T/fcgi-manifest" 2>>"$T/fcgi.err"
	body_of "$T/fcgi-manifest" >"$T/fcgi-manifest.body"
	is "$(sha256_of "$T/fcgi-manifest.body")" "$SMALL" "FastCGI: $uri is answered whole"
	# A tag stays right for the rest of its hour here: nginx keeps it for
	# --front-cache-time of that (a minute by default).
	is "$(header X-Accel-Expires <(head_of "$T/fcgi-manifest"))" 60 \
		"FastCGI: $uri may be kept by nginx for a minute (--front-cache-time)"
done
fcgi_request GET "/v2/test/small/manifests/$SMALL" >"$T/fcgi-manifest" 2>>"$T/fcgi.err"
is "$(header X-Accel-Expires <(head_of "$T/fcgi-manifest"))" 60 \
	"FastCGI: a manifest by digest too (right as long as blobs are kept, 30 days)"

check "cache tmp/ is empty after all pulls" cache_tmp_empty
check "the blob files are in the cache layout" \
	test -s "$CACHE/blobs/sha256/${LAYER:7:2}/${LAYER:7}"
check "the tag record is in the cache layout" test -e "$CACHE/manifests/reg.test/test/small/_tags/v1"

stop nginx
stop_responder_checked
done_testing
