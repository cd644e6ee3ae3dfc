#!/usr/bin/env bash
# errors.sh - when an upstream cannot answer, the client's error says why.
#   Each reason produced for real on loopback: connection refused (a closed
#   port), DNS (a configured host under .invalid), TLS verification (a
#   certificate from a CA the mirror is not told to trust), a deadline (a
#   listener that never answers), upstream 5xx and 429. The JSON error's
#   detail names the namespace and host, never a URL or a credential, and a
#   Retry-After comes where a retry may help (the upstream's own for a 429).
#   Proxies: with http_proxy/https_proxy set, configured upstreams go
#   through the proxy; a dynamic namespace never does, so the address guard
#   judges the real destination, not the proxy.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program nginx curl openssl
need_responder

ACCEPT=(-H 'Accept: application/vnd.oci.image.manifest.v1+json')
DEADLINE=3 # UPSTREAM_TIMEOUT: seconds for a manifest answer

# --- setup: the failing upstreams, then the mirror ---
make_pki || bail "cannot make the test CA"
read -r CLOSED TLS_PORT SILENT_PORT STATIC_PORT PROXY_PORT < <(free_ports 5 | tr '\n' ' ')
SECRET=secret-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')
PROXY_LOG=$T/log/proxy.log
STATIC_MODE=$T/static.mode
"$PYTHON" "$TESTLIB/util.py" mkimage "$T/static" v1 --layers 1 --size 4096 >/dev/null ||
	bail "cannot make the static upstream's image"
echo 500 >"$STATIC_MODE"
: >"$PROXY_LOG"
spawn tls "$T/log/tls.out" "$PYTHON" "$TESTLIB/faults.py" tls "$TLS_PORT" \
	--cert "$T/pki/server.pem" --key "$T/pki/server.key"
spawn silent "$T/log/silent.out" "$PYTHON" "$TESTLIB/faults.py" silent "$SILENT_PORT"
spawn proxy "$T/log/proxy.out" "$PYTHON" "$TESTLIB/faults.py" proxy "$PROXY_PORT" --log "$PROXY_LOG"
spawn static "$T/log/static.out" "$PYTHON" "$TESTLIB/servers.py" static "$STATIC_PORT" \
	--layout "$T/static" --mode-file "$STATIC_MODE" --log "$T/log/static.log"
for p in tls:$TLS_PORT silent:$SILENT_PORT proxy:$PROXY_PORT static:$STATIC_PORT; do
	wait_ready "${p%%:*}" 20 tcp_open "${p#*:}" || bail "${p%%:*} did not start"
done

UPSTREAM=127.0.0.1:$CLOSED # reg.test: nothing listens there
EXTRA_UPSTREAMS=$(
	upstream_entry dns.test registry.oci-test.invalid "tls: false"
	upstream_entry tls.test "127.0.0.1:$TLS_PORT" "tls: true"
	upstream_entry silent.test "127.0.0.1:$SILENT_PORT" "tls: false"
	upstream_entry static.test "127.0.0.1:$STATIC_PORT" "tls: false"
	upstream_entry secret.test "127.0.0.1:$CLOSED" "tls: false" "username: tester" \
		"password: $SECRET"
)
export EXTRA_UPSTREAMS
# The new limits come as variables, so the same script runs against an older responder.
UPSTREAM_TIMEOUT=$DEADLINE start_mirror --workers 8 --connect-timeout 5 || bail "mirror did not start"
diag "mirror $MIRROR, closed port $CLOSED, test dir $T"

# fails_with LABEL PATH STATUS CODE DETAIL-ERE RETRY-AFTER: a manifest or
# blob request through nginx gets STATUS with CODE, a detail matching
# DETAIL-ERE, and RETRY-AFTER ("" for none); bounded in time.
fails_with() {
	local label=$1 path=$2 status=$3 code=$4 detail=$5 retry=$6 start=$SECONDS got
	got=$(http_status "$path" "${ACCEPT[@]}")
	is "$got" "$status" "$label: $status"
	is "$(json_get "$T/body" errors 0 code 2>/dev/null)" "$code" "$label: $code"
	like "$(json_get "$T/body" errors 0 detail 2>/dev/null)" "$detail" "$label: the detail says why"
	is "$(header Retry-After)" "$retry" "$label: Retry-After '${retry}'"
	ok "$((SECONDS - start <= DEADLINE + 3 ? 0 : 1))" "$label: answered in $((SECONDS - start)) s"
}

BLOB=sha256:$(printf x | sha256sum | cut -d' ' -f1)

# lacks STRING FILE: FILE does not contain STRING.
lacks() {
	! grep -qF -- "$1" "$2"
}

# --- A: each reason, as the client sees it ---
fails_with "refused" /v2/reg.test/test/x/manifests/v1 503 UNAVAILABLE \
	"^upstream reg\.test \(127\.0\.0\.1:$CLOSED\): connection refused$" 5
fails_with "refused, blob" "/v2/reg.test/test/x/blobs/$BLOB" 503 UNAVAILABLE \
	"^upstream reg\.test \(127\.0\.0\.1:$CLOSED\): connection refused$" 5
fails_with "DNS" /v2/dns.test/test/x/manifests/v1 503 UNAVAILABLE \
	"^upstream dns\.test \(registry\.oci-test\.invalid\): its host name does not resolve$" ""
fails_with "TLS" /v2/tls.test/test/x/manifests/v1 503 UNAVAILABLE \
	"^upstream tls\.test \(127\.0\.0\.1:$TLS_PORT\): TLS certificate verification failed$" ""
fails_with "no answer" /v2/silent.test/test/x/manifests/v1 503 UNAVAILABLE \
	"^upstream silent\.test \(127\.0\.0\.1:$SILENT_PORT\): no complete answer in time$" 5
fails_with "upstream 500" /v2/static.test/test/s/manifests/v1 502 UPSTREAM_FAILED \
	"^upstream static\.test \(127\.0\.0\.1:$STATIC_PORT\) answered 500$" 5
echo 429 >"$STATIC_MODE"
fails_with "upstream 429" /v2/static.test/test/s/manifests/v1 429 TOOMANYREQUESTS \
	"^upstream static\.test \(127\.0\.0\.1:$STATIC_PORT\) answered 429$" 7

# Credentials of the upstream never show: not in the body, not in the log.
fails_with "with credentials" /v2/secret.test/test/x/manifests/v1 503 UNAVAILABLE \
	"^upstream secret\.test \(127\.0\.0\.1:$CLOSED\): connection refused$" 5
check "the error body holds no credential" lacks "$SECRET" "$T/body"
check "the responder log holds no credential" lacks "$SECRET" "$RESPONDER_LOG"

# --- C: proxies from the environment ---
stop responder TERM 15
is "$?" 0 "the first responder exits 0"
check "the first responder's log has no sanitizer report" sanitizer_clean "$RESPONDER_LOG"
echo ok >"$STATIC_MODE"
http_proxy=http://127.0.0.1:$PROXY_PORT https_proxy=http://127.0.0.1:$PROXY_PORT no_proxy='' \
	UPSTREAM_TIMEOUT=$DEADLINE start_responder --workers 8 --connect-timeout 5 ||
	bail "the responder with a proxy did not start"

# A configured upstream goes through the proxy (libcurl honours the variables).
code=$(http_status /v2/static.test/test/s/manifests/v1 "${ACCEPT[@]}")
is "$code" 502 "configured upstream through the proxy: the proxy's 502 is an upstream failure"
check "the proxy was asked for the configured upstream" \
	grep -q "^GET http://127\.0\.0\.1:$STATIC_PORT/v2/test/s/manifests/v1 " "$PROXY_LOG"

# A dynamic namespace does not: the guard must see where the name leads. Here
# the name does not resolve; through the proxy the guard would have judged
# (and refused) the proxy's own loopback address instead.
code=$(http_status "/v2/library/x/manifests/latest?ns=registry.oci-test.invalid" "${ACCEPT[@]}")
is "$code" 503 "dynamic namespace with a proxy set: 503 (its own DNS), not the proxy's address refused"
like "$(json_get "$T/body" errors 0 detail 2>/dev/null)" \
	"^upstream registry\.oci-test\.invalid \(registry\.oci-test\.invalid\): its host name does not resolve$" \
	"dynamic namespace with a proxy set: the detail says DNS"
check "the proxy was never asked for the dynamic namespace" lacks oci-test.invalid "$PROXY_LOG"

stop_responder_checked
done_testing
