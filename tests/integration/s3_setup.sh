#!/usr/bin/env bash
# s3_setup.sh - S3 storage set up as people run it, against Swift with s3api
# (which verifies SigV4):
#   - keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and from the shared
#     credentials file with AWS_PROFILE, none on the command line;
#   - an HTTPS endpoint with a private CA (nginx with the test CA's
#     certificate in front of Swift): --ca-file, a refused start without it,
#     and nginx checking the endpoint's certificate when it fetches hits;
#   - virtual-hosted-style addressing (BUCKET.s3.test, resolved through an
#     /etc/hosts of the responder's own mount namespace);
#   - ListObjectsV2 paging: cleanup sees the objects past the first page.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"

need_program docker-registry nginx curl cgi-fcgi openssl unshare
need_responder
"$PYTHON" -c 'import swift.common.middleware.s3api' 2>/dev/null ||
	bail "Debian's python3-swift is not installed (scripts/test installs it)"

BUCKET=oci-cache
mkdir -p "$T/run"
CACHE=$T/unused-cache
start_upstream || bail "docker-registry upstream did not start"
SMALL=$(make_image small v1 --layers 1 --size 262144) || bail "cannot push test/small:v1"
LAYER=$(upstream_curl /v2/test/small/manifests/v1 -H 'Accept: application/vnd.oci.image.manifest.v1+json' |
	json_get - layers 0 digest)
start_swift || bail "Swift (s3api) did not start"
s3_cli "$BUCKET" mb || bail "cannot create the bucket"
BLOB_INVALIDATION_TIME=1s write_upstream_config "$T/upstream.yaml"

# s3_start NAME [ENV=VALUE...] -- [OPTIONS...] -- [S3 OPTIONS...]: a responder
# on $T/run/NAME.sock, logging to $T/log/NAME.log, with no S3_* variable but
# those given. Waits for its socket.
s3_start() {
	local name=$1 envs=() opts=() s3=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	s3=("$@")
	spawn "$name" "$T/log/$name.log" env -u S3_ACCESS_KEY -u S3_SECRET_KEY HOME="$T/home" "${envs[@]}" \
		${S3_WRAP:+"${S3_WRAP[@]}"} "$OCI_REGISTRY" --listen "unix:$T/run/$name.sock" \
		--upstream-config-file "$T/upstream.yaml" --default-namespace reg.test --workers 4 \
		"${opts[@]}" s3 --bucket "$BUCKET" "${s3[@]}"
	wait_ready "$name" 30 unix_open "$T/run/$name.sock"
}

# ready_via NAME: /readyz straight to a responder's socket says ready.
ready_via() {
	FCGI_SOCK=$T/run/$1.sock fcgi_request GET /readyz | body_of /dev/stdin | grep -q '^ready$'
}

# streams_blob NAME: the responder streams the layer itself (as for a front
# without an S3 location) and the bytes match its digest.
streams_blob() {
	FCGI_SOCK=$T/run/$1.sock FCGI_SERVER_SOFTWARE=lighttpd/1.4.69 \
		fcgi_request GET "/v2/test/small/blobs/$LAYER" | body_of /dev/stdin >"$T/$1.blob"
	[ "$(sha256_of "$T/$1.blob")" = "$LAYER" ]
}

# --- keys from the AWS environment variables ---
s3_start envkeys AWS_ACCESS_KEY_ID="$S3_TEST_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_TEST_SECRET_KEY" \
	-- -- --host "$S3_ENDPOINT" --path-style
ok $? "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: the responder starts (no --access-key)"
check "AWS_* keys: /readyz says ready (SigV4 accepted by Swift)" ready_via envkeys
check "AWS_* keys: a miss is fetched and stored" streams_blob envkeys
stop envkeys TERM 15
is "$?" 0 "AWS_* keys: exits 0 on SIGTERM"

# --- keys from the shared credentials file, by profile ---
mkdir -p "$T/aws"
cat >"$T/aws/credentials" <<-EOF2
	[default]
	aws_access_key_id = $S3_TEST_ACCESS_KEY
	aws_secret_access_key = not-the-secret

	[ci]
	aws_access_key_id = $S3_TEST_ACCESS_KEY
	aws_secret_access_key = $S3_TEST_SECRET_KEY
EOF2
s3_start profile AWS_SHARED_CREDENTIALS_FILE="$T/aws/credentials" AWS_PROFILE=ci -- -- \
	--host "$S3_ENDPOINT" --path-style
ok $? "credentials file, AWS_PROFILE=ci: the responder starts"
check "credentials file: /readyz says ready" ready_via profile
stop profile TERM 15
env -u S3_ACCESS_KEY -u S3_SECRET_KEY AWS_SHARED_CREDENTIALS_FILE="$T/aws/credentials" \
	timeout 60 "$OCI_REGISTRY" --listen "unix:$T/run/wrong.sock" s3 --bucket "$BUCKET" \
	--host "$S3_ENDPOINT" --path-style >"$T/wrong.out" 2>&1
is "$?" 2 "credentials file, profile default with a wrong secret: exit 2"
like "$(tail -n 1 "$T/wrong.out")" 'SignatureDoesNotMatch' "the wrong secret is named as the cause"
check "the secret is not printed" eval "! grep -q not-the-secret '$T/wrong.out' '$T/log/profile.log'"
env -u S3_ACCESS_KEY -u S3_SECRET_KEY HOME="$T/home" timeout 60 "$OCI_REGISTRY" \
	--listen "unix:$T/run/nokeys.sock" s3 --bucket "$BUCKET" --host "$S3_ENDPOINT" >"$T/nokeys.out" 2>&1
is "$?" 2 "no keys anywhere: exit 2"
like "$(cat "$T/nokeys.out")" 'S3 needs credentials.*AWS_ACCESS_KEY_ID' "no keys: the message names where keys may come from"

# --- an HTTPS endpoint with a private CA ---
TLS_PORT=$(free_ports 1)
mkdir -p "$T/s3tls"
cat >"$T/s3tls/nginx.conf" <<-EOF2
	pid $T/s3tls/nginx.pid;
	error_log $T/log/s3tls-error.log;
	events { worker_connections 256; }
	http {
	    access_log $T/log/s3tls-access.log;
	    client_body_temp_path $T/s3tls;
	    proxy_temp_path $T/s3tls;
	    server {
	        listen 127.0.0.1:$TLS_PORT ssl;
	        ssl_certificate $T/pki/server.pem;
	        ssl_certificate_key $T/pki/server.key;
	        client_max_body_size 0;
	        location / {
	            proxy_pass $S3_ENDPOINT;
	            proxy_set_header Host \$http_host;
	            proxy_request_buffering off;
	            proxy_buffering off;
	            proxy_http_version 1.1;
	        }
	    }
	}
EOF2
spawn s3tls "$T/log/s3tls.out" nginx -e "$T/log/s3tls-startup.log" -p "$T/s3tls" -c "$T/s3tls/nginx.conf" \
	-g 'daemon off; user root;'
wait_ready s3tls 20 tcp_open "$TLS_PORT" || bail "the TLS front of Swift did not start"
S3_TLS=https://127.0.0.1:$TLS_PORT
env -u S3_ACCESS_KEY S3_SECRET_KEY="$S3_TEST_SECRET_KEY" timeout 60 "$OCI_REGISTRY" \
	--listen "unix:$T/run/noca.sock" s3 --bucket "$BUCKET" --host "$S3_TLS" --path-style \
	--access-key "$S3_TEST_ACCESS_KEY" >"$T/noca.out" 2>&1
is "$?" 2 "https endpoint of a private CA without --ca-file: exit 2"
like "$(tail -n 1 "$T/noca.out")" 'TLS certificate is not trusted.*--ca-file' "without --ca-file: the message says to name the CA"
FCGI_SOCK=$T/run/responder.sock
RESPONDER_LOG=$T/log/responder.log
s3_start responder AWS_ACCESS_KEY_ID="$S3_TEST_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_TEST_SECRET_KEY" \
	-- -- --host "$S3_TLS" --path-style --ca-file "$T/pki/ca.pem"
ok $? "https endpoint with --ca-file: the responder starts"
check "https endpoint: /readyz says ready" ready_via responder
ln -s responder.sock "$T/run/fcgi.sock" # where start_nginx's configuration looks
# nginx matches no IP address in a certificate: the endpoint (named by
# address here) is checked for the certificate's name, localhost.
NGINX_S3_CA=$T/pki/ca.pem NGINX_S3_SSL_NAME=localhost start_nginx || bail "nginx did not start"
code=$(http_status "/v2/test/small/blobs/$LAYER")
is "$code" 200 "https endpoint: the blob through nginx (a miss, stored over https)"
is "$(sha256_of "$T/body")" "$LAYER" "https endpoint: the miss matches its digest"
stored() { s3_cli "$BUCKET" ls "blobs/sha256/${LAYER:7:2}/${LAYER:7}" | grep -q .; }
check "https endpoint: the blob is stored" wait_until 30 stored
before=$(grep -c 'X-Amz-Signature=' "$T/log/s3tls-access.log")
code=$(http_status "/v2/test/small/blobs/$LAYER")
is "$code" 200 "https endpoint: the hit through nginx (presigned GET over https, certificate checked)"
is "$(sha256_of "$T/body")" "$LAYER" "https endpoint: the hit matches its digest"
ok "$(($(grep -c 'X-Amz-Signature=' "$T/log/s3tls-access.log") > before ? 0 : 1))" \
	"https endpoint: nginx fetched the hit from S3 over https"
stop nginx
# nginx that does not trust the endpoint's CA refuses to send the hit: a 503, not S3's bytes.
NGINX_S3_CA=/etc/ssl/certs/ca-certificates.crt NGINX_S3_SSL_NAME=localhost start_nginx || bail "nginx did not start"
is "$(http_status "/v2/test/small/blobs/$LAYER")" 503 "nginx without the endpoint's CA: 503, the hit is not sent unverified"
stop nginx
stop responder TERM 15
is "$?" 0 "https endpoint: exits 0 on SIGTERM"

# --- virtual-hosted-style addressing: oci-cache.s3.test ---
if [ "$(id -u)" = 0 ]; then
	printf '127.0.0.1 localhost %s.s3.test s3.test\n' "$BUCKET" >"$T/hosts"
	# shellcheck disable=SC2016 # the inner shell expands them
	S3_WRAP=(unshare --mount sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$T/hosts")
	s3_start vhost AWS_ACCESS_KEY_ID="$S3_TEST_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_TEST_SECRET_KEY" \
		-- -- --host "http://s3.test:${S3_ENDPOINT##*:}"
	ok $? "virtual-hosted style: the responder starts (no --path-style)"
	unset S3_WRAP
	check "virtual-hosted style: /readyz says ready" ready_via vhost
	check "virtual-hosted style: the stored blob is read back" streams_blob vhost
	# Their request lines name no bucket: it was in the Host header.
	check "virtual-hosted style: the bucket was named by the host, not the path" \
		grep -Eq '"(GET|PUT|DELETE) /_health/' <(swift_log)
	stop vhost TERM 15
	is "$?" 0 "virtual-hosted style: exits 0 on SIGTERM"
else
	skip "virtual-hosted style" "needs root for a mount namespace with its own /etc/hosts"
fi

# --- ListObjectsV2 paging: cleanup sees the objects past the first 1,000 ---
# 1,000 records marked used far in the future come first in key order and
# stay; the 10 stale ones after them are only found on the second page.
PAGE=manifests/reg.test/test/paging/_tags
s3_cli "$BUCKET" fill "$PAGE/a" 1000 $(($(date +%s) + 86400)) || bail "cannot fill the bucket"
s3_cli "$BUCKET" fill "$PAGE/z" 10 1 || bail "cannot fill the bucket"
is "$(s3_cli "$BUCKET" ls "$PAGE/" | wc -l)" 1010 "1,010 tag records in the bucket"
s3_start cleaner AWS_ACCESS_KEY_ID="$S3_TEST_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_TEST_SECRET_KEY" \
	-- --cleanup-interval 1 -- --host "$S3_ENDPOINT" --path-style
stale_gone() { [ "$(s3_cli "$BUCKET" ls "$PAGE/z" | wc -l)" = 0 ]; }
check "cleanup removed the 10 stale records past the first page of 1,000" wait_until 300 stale_gone
is "$(s3_cli "$BUCKET" ls "$PAGE/a" | wc -l)" 1000 "the 1,000 records in use stay"
stop cleaner TERM 60
is "$?" 0 "cleaner exits 0 on SIGTERM"

for log in envkeys profile responder vhost cleaner; do
	[ -f "$T/log/$log.log" ] || continue
	check "$log: no sanitizer report" sanitizer_clean "$T/log/$log.log"
	check "$log: no secret in the log" eval "! grep -q '$S3_TEST_SECRET_KEY' '$T/log/$log.log'"
done
done_testing
