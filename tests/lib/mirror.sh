# mirror.sh - the system under test: oci-registry on a unix socket behind
# nginx, configured with contrib/nginx/*.conf changed only in ports and paths.
# shellcheck shell=bash disable=SC2154 # top_srcdir, T, PYTHON: set by common.sh

# write_upstream_config FILE: reg.test -> the TLS upstream of upstream.sh (when started),
# its certificate checked against UPSTREAM_CA_FILE (default the test CA alone),
# trusted for MANIFEST_INVALIDATION_TIME (default 1h), its blobs kept for
# BLOB_INVALIDATION_TIME (default 30d), followed by the YAML
# entries of EXTRA_UPSTREAMS when a test sets it.
write_upstream_config() {
	: >"$1"
	# Without the upstream of upstream.sh there is no reg.test (nor its CA, which
	# the responder checks at start).
	[ -z "${UPSTREAM:-}" ] || cat >"$1" <<-EOF
		- namespace: reg.test
		  host: $UPSTREAM
		  tls: true
		  ca_file: ${UPSTREAM_CA_FILE:-$T/pki/ca.pem}
		  manifest_invalidation_time: ${MANIFEST_INVALIDATION_TIME:-1h}
		  blob_invalidation_time: ${BLOB_INVALIDATION_TIME:-30d}
	EOF
	[ -z "${EXTRA_UPSTREAMS:-}" ] || printf '%s\n' "$EXTRA_UPSTREAMS" >>"$1"
}

# slow_upstream_config BYTES_PER_SECOND: $T/slow.yaml, the upstream config of
# write_upstream_config with the upstream reached through tests/lib/throttle.py
# at that pace (for acting on a download halfway).
slow_upstream_config() {
	local port
	port=$(free_ports 1)
	spawn throttle "$T/log/throttle.log" "$PYTHON" "$TESTLIB/throttle.py" "$port" "$UPSTREAM_PORT" "$1"
	wait_ready throttle 10 tcp_open "$port" || return 1
	sed "s|host: $UPSTREAM|host: 127.0.0.1:$port|" "$T/upstream.yaml" >"$T/slow.yaml"
}

# upstream_entry NAMESPACE HOST [KEY: VALUE]...: one YAML entry for EXTRA_UPSTREAMS
# (TLS with the test CA unless one of KEY is tls, ca_file or accept_invalid_certs).
upstream_entry() {
	local ns=$1 host=$2 kv
	shift 2
	printf -- '- namespace: %s\n  host: %s\n' "$ns" "$host"
	case " $* " in
	*" tls: "* | *" ca_file: "* | *" accept_invalid_certs: "*) ;;
	*) printf '  tls: true\n  ca_file: %s\n' "$T/pki/ca.pem" ;;
	esac
	for kv in "$@"; do
		printf '  %s\n' "$kv"
	done
}

# start_responder [OPTIONS...]: oci-registry on $FCGI_SOCK with cache root
# $CACHE, the upstream config of write_upstream_config, and OPTIONS before
# the storage subcommand. Its stderr goes to $RESPONDER_LOG.
start_responder() {
	CACHE=$T/cache
	FCGI_SOCK=$T/run/fcgi.sock
	RESPONDER_LOG=$T/log/responder.log
	mkdir -p "$CACHE" "$T/run"
	write_upstream_config "$T/upstream.yaml"
	spawn responder "$RESPONDER_LOG" "$OCI_REGISTRY" --listen "unix:$FCGI_SOCK" \
		--upstream-config-file "$T/upstream.yaml" "$@" filesystem --root "$CACHE"
	wait_ready responder 20 unix_open "$FCGI_SOCK"
}

# spawn_fcgi N [RESPONDER OPTIONS...]: N responders forked by spawn-fcgi (which
# exits) on $FCGI_SOCK, with cache $CACHE (or the storage subcommand in the
# array SPAWN_STORAGE, when set), the upstream config $T/upstream.yaml and
# OPTIONS; their stderr is appended to $RESPONDER_LOG. Sets PIDFILE; they are
# stopped at exit (stop_spawned). Returns spawn-fcgi's status.
spawn_fcgi() {
	local n=$1 storage=(filesystem --root "$CACHE")
	shift
	[ -z "${SPAWN_STORAGE+set}" ] || storage=("${SPAWN_STORAGE[@]}")
	PIDFILE=$T/run/spawn-fcgi.pid
	mkdir -p "$CACHE" "$T/run"
	[ -f "$T/upstream.yaml" ] || write_upstream_config "$T/upstream.yaml"
	at_exit stop_spawned
	# Forked children get /dev/null as stderr from spawn-fcgi; a shell in
	# between keeps their logs.
	# shellcheck disable=SC2016 # expanded by that shell
	spawn-fcgi -s "$FCGI_SOCK" -F "$n" -P "$PIDFILE" -- /bin/sh -c 'exec "$@" 2>>"$0"' "$RESPONDER_LOG" \
		"$OCI_REGISTRY" --upstream-config-file "$T/upstream.yaml" "$@" \
		"${storage[@]}" >"$T/log/spawn-fcgi.log" 2>&1
}

# spawned_pids: the pids spawn-fcgi wrote, one a line. The children are not
# ours (spawn-fcgi forks them and exits): they are stopped by these.
spawned_pids() { cat "${PIDFILE:-/nonexistent}" 2>/dev/null; }

# stop_spawned: SIGTERM the spawned responders; KILL those still there after 10 s.
stop_spawned() {
	local pid
	for pid in $(spawned_pids); do kill -TERM "$pid" 2>/dev/null; done
	for pid in $(spawned_pids); do wait_until 10 eval "! proc_alive $pid" || kill -KILL "$pid" 2>/dev/null; done
}

# template_nginx DIR PORT: the contrib configuration with our port and paths
# (NGINX_RUN, NGINX_LOG: its run and log directories, default $T/run and
# $T/log, so that several fronts can run side by side; NGINX_S3_CA: the CA
# bundle nginx trusts for an https S3 endpoint; NGINX_S3_SSL_NAME: the name
# its certificate is checked for, since nginx matches no IP address in a
# certificate). s3.conf, the locations serving hits from S3, unless
# NGINX_S3=off (a filesystem cache, as deployed).
template_nginx() {
	local dir=$1 port=$2 f files=(nginx.conf oci-registry.conf s3.conf)
	[ "${NGINX_S3:-on}" != off ] || files=(nginx.conf oci-registry.conf)
	mkdir -p "$dir"
	rm -f "$dir/s3.conf"
	for f in "${files[@]}"; do
		sed -e "s|/etc/oci-registry/nginx/oci-registry.conf|$dir/oci-registry.conf|g" \
			-e "s|127\.0\.0\.1:8080|127.0.0.1:$port|g" \
			-e "s|/run/oci-registry|${NGINX_RUN:-$T/run}|g" \
			-e "s|/var/cache/oci-registry|$CACHE|g" \
			-e "s|/var/log/oci-registry|${NGINX_LOG:-$T/log}|g" \
			-e "s|/etc/oci-registry/nginx/push-auth|$dir/push-auth|g" \
			-e "s|/etc/oci-registry/nginx/s3|$dir/s3|g" \
			-e "s|/etc/oci-registry/htpasswd|$T/htpasswd|g" \
			-e "s|/etc/ssl/certs/ca-certificates.crt|${NGINX_S3_CA:-/etc/ssl/certs/ca-certificates.crt}|g" \
			-e "s|proxy_ssl_verify on;|&${NGINX_S3_SSL_NAME:+ proxy_ssl_name $NGINX_S3_SSL_NAME;}|" \
			"$top_srcdir/contrib/nginx/$f" >"$dir/$f" || return 1
	done
	# PUSH_AUTH=1: writes need a user of $T/htpasswd (contrib/nginx/push-auth.conf).
	[ -z "${PUSH_AUTH:-}" ] ||
		sed -e "s|/etc/oci-registry/htpasswd|$T/htpasswd|g" \
			"$top_srcdir/contrib/nginx/push-auth.conf" >"$dir/push-auth.conf"
}

# start_nginx: nginx in front of the responder on a free port; sets
# NGINX_PORT and MIRROR (host:port). NGINX_NAME (default nginx) names the
# process and its directory $T/NAME, for a test that runs several. The
# master runs in the foreground (daemon off) so it is an ordinary child that
# stop_all can stop; NGINX_DAEMON=on runs it daemonized, as scripts/serve
# does (bench/run measures that), known by the pid file of its nginx.conf.
# `user root` lets the workers, which would otherwise run as nobody, read
# the cache and the socket that this root-run test creates in its private
# 0700 directory; it is given on the command line, not in the file.
start_nginx() {
	NGINX_PORT=$(free_ports 1)
	MIRROR=127.0.0.1:$NGINX_PORT
	local name=${NGINX_NAME:-nginx} log=${NGINX_LOG:-$T/log}
	template_nginx "$T/$name" "$NGINX_PORT" || return 1
	local cmd=(nginx -e "$log/nginx-startup.log" -p "$T/$name" -c "$T/$name/nginx.conf")
	if [ "${NGINX_DAEMON:-off}" = on ]; then
		spawn_daemon "$name" "$log/nginx.out" \
			"$(awk '$1 == "pid" { sub(/;$/, "", $2); print $2 }' "$T/$name/nginx.conf")" \
			"${cmd[@]}" -g 'daemon on; user root;' || return 1
	else
		spawn "$name" "$log/nginx.out" "${cmd[@]}" -g 'daemon off; user root;'
	fi
	wait_ready "$name" 20 tcp_open "$NGINX_PORT"
}

# start_mirror [RESPONDER OPTIONS...]: upstream config, responder, nginx.
start_mirror() {
	start_responder "$@" && start_nginx
}

# stop_responder_checked: SIGTERM the responder and test that it exits 0
# with no sanitizer report (leaks are reported at exit).
stop_responder_checked() {
	local status
	stop responder TERM 15
	status=$?
	is "$status" 0 "responder exits 0 on SIGTERM"
	check "responder log has no sanitizer report" sanitizer_clean "$RESPONDER_LOG" ||
		diag_file "$RESPONDER_LOG" 40
}

# mirror_curl PATH [curl options]: a request through nginx (plain HTTP).
mirror_curl() {
	local path=$1
	shift
	curl -sS --max-time 30 "$@" "http://$MIRROR$path"
}

# http_status PATH [curl options]: the status code of a request through nginx;
# the body is left in $T/body, the headers in $T/headers.
http_status() {
	local path=$1
	shift
	mirror_curl "$path" -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@"
}

# header NAME [FILE]: a header's value from a curl -D dump (last response).
header() {
	tr -d '\r' <"${2:-$T/headers}" | awk -v IGNORECASE=1 -v h="$1" '
		tolower($0) ~ "^" tolower(h) ":" { sub(/^[^:]*:[ \t]*/, ""); v = $0 } END { print v }'
}

# fcgi_request METHOD URI [QUERY]: one request straight to the responder's
# socket with cgi-fcgi, with the parameters nginx's fastcgi_params sends.
# FCGI_SERVER_SOFTWARE (default nginx/1.22.1) poses as another front server;
# FCGI_REQUEST_ID is sent as nginx sends $request_id (none when empty).
# Prints the raw CGI response (headers, blank line, body).
fcgi_request() {
	local method=$1 uri=$2 query=${3:-} path=${2%%\?*}
	env -i REQUEST_METHOD="$method" REQUEST_URI="$uri${query:+?$query}" \
		SCRIPT_NAME="$path" SCRIPT_FILENAME="$path" DOCUMENT_URI="$path" \
		DOCUMENT_ROOT=/nonexistent QUERY_STRING="$query" SERVER_PROTOCOL=HTTP/1.1 \
		REQUEST_SCHEME=http GATEWAY_INTERFACE=CGI/1.1 SERVER_SOFTWARE="${FCGI_SERVER_SOFTWARE:-nginx/1.22.1}" \
		REMOTE_ADDR=127.0.0.1 REMOTE_PORT=40000 SERVER_ADDR=127.0.0.1 SERVER_PORT=80 \
		SERVER_NAME=localhost CONTENT_TYPE='' CONTENT_LENGTH='' \
		HTTP_HOST=localhost REQUEST_ID="${FCGI_REQUEST_ID:-}" \
		HTTP_ACCEPT='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json' \
		timeout 30 cgi-fcgi -bind -connect "$FCGI_SOCK"
}

# docker_miss_then_hit LABEL DIR: Docker style (the default namespace at
# $MIRROR's root): skopeo pulls test/small:v1 into DIR, a miss that fetches
# blobs upstream and leaves no download in tmp/, then into DIR2, a hit that
# fetches none. Leaves GETS: the upstream's blob GETs after the miss.
docker_miss_then_hit() {
	local label=$1 dir=$2 before
	before=$(upstream_blob_gets)
	check "$label: docker style: skopeo pulls test/small:v1 (cache miss)" \
		pull_dir "$dir" "docker://$MIRROR/test/small:v1" --src-tls-verify=false
	pulled_ok "$dir" "$SMALL" "$label: docker style"
	GETS=$(upstream_blob_gets)
	ok "$((GETS > before ? 0 : 1))" "$label: the miss fetched blobs from the upstream ($((GETS - before)) GETs)"
	check "$label: cache tmp/ is empty after the pull" cache_tmp_empty
	check "$label: docker style: second pull (cache hit)" \
		pull_dir "${dir}2" "docker://$MIRROR/test/small:v1" --src-tls-verify=false
	pulled_ok "${dir}2" "$SMALL" "$label: docker style, cached"
	is "$(upstream_blob_gets)" "$GETS" "$label: the second pull made no blob GET upstream"
}

# hit_details LABEL DIR: the HTTP details of hits of test/small:v1 through
# $MIRROR, as pulled into $T/pulled/DIR: HEAD of the manifest, Range and GET
# of its first layer, with the registry's headers. Leaves LAYER set.
hit_details() {
	local label=$1 dir=$T/pulled/$2 code
	LAYER=$(json_get "$dir/manifest.json" layers 0 digest)
	code=$(http_status /v2/test/small/manifests/v1 -I -H 'Accept: application/vnd.oci.image.manifest.v1+json')
	is "$code" 200 "$label: HEAD manifest: 200"
	is "$(header Content-Length)" "$(stat -c %s "$dir/manifest.json")" "$label: HEAD manifest: Content-Length"
	is "$(header Docker-Content-Digest)" "$SMALL" "$label: HEAD manifest: Docker-Content-Digest"
	code=$(http_status "/v2/test/small/blobs/$LAYER" -r 1000-1999)
	is "$code" 206 "$label: Range on a cached blob: 206"
	cmp -s "$T/body" <(tail -c +1001 "$dir/${LAYER#sha256:}" | head -c 1000)
	ok $? "$label: Range on a cached blob: the right 1000 bytes"
	code=$(http_status "/v2/test/small/blobs/$LAYER")
	is "$code" 200 "$label: GET cached blob: 200"
	is "$(sha256_of "$T/body")" "$LAYER" "$label: GET cached blob: content matches the digest"
	is "$(header Docker-Content-Digest)" "$LAYER" "$label: GET cached blob: Docker-Content-Digest"
}

# health_checks LABEL: /healthz, /readyz and /metrics through the front
# server are answered by the responder (200, text), junk after them is
# refused, and the readiness probe leaves no object behind in a filesystem
# cache.
health_checks() {
	local label=$1
	is "$(http_status /healthz)" 200 "$label: GET /healthz: 200"
	is "$(cat "$T/body")" ok "$label: /healthz says ok"
	is "$(http_status /healthz -I)" 200 "$label: HEAD /healthz: 200"
	is "$(http_status /readyz)" 200 "$label: GET /readyz: 200 (storage written, read back, removed)"
	is "$(head -n 1 "$T/body")" ready "$label: /readyz says ready (first line; details may follow)"
	is "$(header Content-Type)" text/plain "$label: /readyz is text/plain"
	like "$(http_status /healthz/x)" '^40[34]$' "$label: /healthz/x is refused"
	like "$(http_status /readyzz)" '^40[34]$' "$label: /readyzz is refused"
	is "$(http_status /metrics)" 200 "$label: GET /metrics: 200"
	like "$(header Content-Type)" '^text/plain; version=0\.0\.4' "$label: /metrics is Prometheus text 0.0.4"
	is "$(grep -c '^oci_registry_build_info{' "$T/body")" 1 "$label: /metrics has the build info"
	like "$(http_status /metrics/x)" '^40[34]$' "$label: /metrics/x is refused"
	is "$(http_status /metrics --interface 127.0.0.2)" 403 "$label: /metrics from 127.0.0.2 (not allowed) is refused"
	if [ -d "${CACHE:-}" ]; then
		is "$(find "$CACHE/_health" -type f 2>/dev/null | wc -l)" 0 "$label: no readiness probe object is left"
	fi
}

# head_of FILE: the CGI head of a raw cgi-fcgi answer, without CRs.
head_of() {
	tr -d '\r' <"$1" | sed '/^$/q'
}

# body_of FILE: the body of a raw cgi-fcgi answer, as sent.
body_of() {
	sed '1,/^\r\{0,1\}$/d' "$1"
}

# cache_tmp_empty: no in-progress download left in the cache.
cache_tmp_empty() {
	[ -z "$(find "$CACHE/tmp" -mindepth 1 2>/dev/null | head -n 1)" ]
}

# use_crio_mirror: skopeo (like cri-o and podman, containers-registries.conf)
# pulls reg.test through $MIRROR with the path prefix /reg.test. reg.test does
# not resolve, so a pull that falls back past the mirror fails loudly.
# drop_crio_mirror undoes it.
use_crio_mirror() {
	mkdir -p "$HOME/.config/containers"
	cat >"$HOME/.config/containers/registries.conf" <<-EOF
		[[registry]]
		location = "reg.test"

		[[registry.mirror]]
		location = "$MIRROR/reg.test"
		insecure = true
	EOF
}

drop_crio_mirror() {
	rm -f "$HOME/.config/containers/registries.conf"
}

# pull_dir NAME SKOPEO-SOURCE [skopeo options]: skopeo copy into dir:$T/pulled/NAME.
pull_dir() {
	local dest=$T/pulled/$1 src=$2
	shift 2
	rm -rf "$dest"
	mkdir -p "$dest"
	skopeo_q copy "$@" "$src" "dir:$dest"
}

# pull_through NAME REF [skopeo options]: skopeo copy docker://$MIRROR/REF into
# dir:$T/pulled/NAME (path-prefix style: REF is NAMESPACE/REPO:TAG or @DIGEST).
pull_through() {
	local name=$1 ref=$2
	shift 2
	pull_dir "$name" "docker://$MIRROR/$ref" --src-tls-verify=false "$@"
}

# pulled_ok NAME WANT-DIGEST STYLE: the pulled manifest is the upstream's and
# every blob hashes to its digest (two test points).
pulled_ok() {
	is "$(pulled_digest "$1")" "$2" "$3: manifest digest equals the upstream's"
	check "$3: config and layers verify against their digests" pulled_verifies "$1"
}

# pull_refused NAME REF: a pull through the mirror that must fail; true when
# it does. skopeo's messages are left in $T/pulled/NAME.err.
pull_refused() {
	local dest=$T/pulled/$1
	rm -rf "$dest"
	mkdir -p "$dest"
	! timeout 120 skopeo --insecure-policy copy --src-tls-verify=false \
		"docker://$MIRROR/$2" "dir:$dest" >"$dest.err" 2>&1
}

# pulled_verifies NAME: every blob of $T/pulled/NAME hashes to its digest.
pulled_verifies() {
	"$PYTHON" "$TESTLIB/util.py" verify-dir "$T/pulled/$1" >/dev/null
}

# pulled_digest NAME: the digest of the manifest skopeo pulled.
pulled_digest() {
	sha256_of "$T/pulled/$1/manifest.json"
}
