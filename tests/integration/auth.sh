#!/usr/bin/env bash
# auth.sh - the mirror authenticates to its upstreams; its clients stay anonymous.
#   Debian's docker-registry in three setups: anonymous TLS with a test CA
#   (ca_file), htpasswd Basic auth, and token auth with the token server of
#   servers.py (RS256 JWTs with an x5c chain to the test CA);
#   wrong or missing credentials give the client 403 DENIED, never a 500;
#   empty username and password (file or environment) are anonymous;
#   a token is fetched once per scope and reused;
#   UPSTREAM_CREDENTIALS wins over the file;
#   credentials are not forwarded when a blob GET redirects to another host;
#   user_agent, accept_invalid_certs and the system trust store;
#   no secret in any log.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program docker-registry skopeo nginx curl openssl htpasswd
need_responder
"$PYTHON" -c 'import cryptography' 2>/dev/null ||
	bail "python3-cryptography is not installed (scripts/test installs it)"

# --- setup: three registries, the token server, two redirecting upstreams ---
start_upstream || bail "anonymous docker-registry did not start"
start_registry basic htpasswd || bail "htpasswd docker-registry did not start"
start_registry token token || bail "token docker-registry did not start"
BASIC=${REG_ADDR[basic]}
TOKEN=${REG_ADDR[token]}

ANON=$(make_image small v1 --layers 2 --size 65536) || bail "cannot push test/small:v1"
PRIV=$(push_image "$BASIC" test/private v1 --layers 3 --size 65536) ||
	bail "cannot push test/private:v1 with Basic auth"
TPUB=$(push_image "$TOKEN" test/pub v1 --layers 3 --size 65536) ||
	bail "cannot push test/pub:v1 with token auth"
TPUB2=$(push_image "$TOKEN" test/pub v2 --layers 1 --size 4096) ||
	bail "cannot push test/pub:v2 with token auth"
TPRIV=$(push_image "$TOKEN" test/priv v1 --layers 2 --size 65536) ||
	bail "cannot push test/priv:v1 with token auth"
# Images of their own for the redirect tests: a blob already cached would not be fetched.
REDIR=$(push_image "$BASIC" test/redir v1 --layers 3 --size 65536) ||
	bail "cannot push test/redir:v1 with Basic auth"
TREDIR=$(push_image "$TOKEN" test/redir v1 --layers 3 --size 65536) ||
	bail "cannot push test/redir:v1 with token auth"

# start_redirector NAME BACKEND: servers.py redirect in front of BACKEND
# (host:port, TLS); sets REDIRECT_ADDR[NAME], its log is $T/log/NAME.log.
declare -A REDIRECT_ADDR=()
start_redirector() {
	local ports
	mapfile -t ports < <(free_ports 2)
	REDIRECT_ADDR[$1]=127.0.0.1:${ports[0]}
	spawn "$1" "$T/log/$1.out" "$PYTHON" "$TESTLIB/servers.py" redirect "${ports[0]}" "${ports[1]}" \
		--backend "https://$2" --cafile "$T/pki/ca.pem" --log "$T/log/$1.log"
	wait_ready "$1" 20 tcp_open "${ports[0]}" && wait_ready "$1" 20 tcp_open "${ports[1]}"
}
start_redirector redirect "$BASIC" || bail "redirecting upstream (Basic) did not start"
start_redirector redirect-token "$TOKEN" || bail "redirecting upstream (token) did not start"

RIGHT=("username: $TEST_USER" "password: $TEST_PASSWORD")
WRONG=("username: $TEST_USER" "password: $WRONG_PASSWORD")
EXTRA_UPSTREAMS=$(
	upstream_entry basic.test "$BASIC" "${RIGHT[@]}"
	upstream_entry basic-anon.test "$BASIC"
	upstream_entry basic-bad.test "$BASIC" "${WRONG[@]}"
	upstream_entry token.test "$TOKEN"
	upstream_entry token-auth.test "$TOKEN" "${RIGHT[@]}"
	upstream_entry token-bad.test "$TOKEN" "${WRONG[@]}"
	upstream_entry token-empty.test "$TOKEN" 'username: ""' 'password: ""'
	upstream_entry token-envempty.test "$TOKEN" "${WRONG[@]}"
	upstream_entry env.test "$BASIC" "${WRONG[@]}"
	upstream_entry redirect.test "${REDIRECT_ADDR[redirect]}" "tls: false" "${RIGHT[@]}"
	upstream_entry redirect-token.test "${REDIRECT_ADDR[redirect-token]}" "tls: false" \
		"ca_file: $T/pki/ca.pem" "${RIGHT[@]}"
	upstream_entry agent.test "$UPSTREAM" 'user_agent: "oci-test-agent/4.2"'
	upstream_entry insecure.test "$UPSTREAM" "accept_invalid_certs: true"
	upstream_entry untrusted.test "$UPSTREAM" "tls: true"
)
export EXTRA_UPSTREAMS
CREDENTIALS_JSON=$(printf '{"env.test": {"username": "%s", "password": "%s"}, %s}' \
	"$TEST_USER" "$TEST_PASSWORD" '"token-envempty.test": {"username": "", "password": ""}')
UPSTREAM_CREDENTIALS=$CREDENTIALS_JSON start_mirror --workers 8 || bail "mirror did not start"
diag "mirror $MIRROR, anonymous $UPSTREAM, basic $BASIC, token $TOKEN (tokens :$TOKEN_PORT), test dir $T"

# expect_denied DESC PATH: the mirror answers 403 with an OCI DENIED error.
expect_denied() {
	local code
	code=$(http_status "$2" -H 'Accept: application/vnd.oci.image.manifest.v1+json')
	is "$code" 403 "$1: the mirror answers 403"
	is "$(json_get "$T/body" errors 0 code 2>/dev/null)" DENIED "$1: error code DENIED"
}

# pull_ok DESC NAME REF WANT: a pull through the mirror gives the upstream's
# manifest, and every blob verifies.
pull_ok() {
	check "$1: skopeo pulls $3" pull_through "$2" "$3"
	is "$(pulled_digest "$2")" "$4" "$1: manifest digest equals the upstream's"
	check "$1: config and layers verify against their digests" pulled_verifies "$2"
}

# refused DESC NAME REF: the pull fails with a denied error, not a server error.
refused() {
	check "$1: skopeo's pull of $3 fails" pull_refused "$2" "$3"
	like "$(cat "$T/pulled/$2.err")" 'denied' "$1: skopeo reports the access as denied" ||
		diag_file "$T/pulled/$2.err" 5
}

# lacks FILE ERE: no line of FILE matches ERE.
lacks() {
	! grep -Eq -- "$2" "$1"
}

# count FILE ERE: lines of FILE matching ERE (0 when none).
count() {
	grep -Ec -- "$2" "$1" 2>/dev/null || true
}

# --- anonymous TLS upstream, trusted through ca_file ---
pull_ok "anonymous TLS (ca_file)" anon reg.test/test/small:v1 "$ANON"
check "default User-Agent is oci-registry/VERSION" \
	grep -q '"GET /v2/test/small/manifests/v1 HTTP/[0-9.]*" 200 .*"oci-registry/[0-9]' "$UPSTREAM_LOG"

# --- htpasswd Basic auth ---
pull_ok "Basic auth" basic basic.test/test/private:v1 "$PRIV"
refused "Basic auth, no credentials" basic-anon basic-anon.test/test/private:v1
expect_denied "Basic auth, no credentials" /v2/basic-anon.test/test/private/manifests/v1
refused "Basic auth, wrong password" basic-bad basic-bad.test/test/private:v1
expect_denied "Basic auth, wrong password" /v2/basic-bad.test/test/private/manifests/v1
# Cached blobs are shared by all namespaces (content addressing); an uncached one is asked for.
UNCACHED=sha256:$(head -c 64 /dev/urandom | sha256sum | cut -d' ' -f1)
expect_denied "Basic auth, wrong password, uncached blob" "/v2/basic-bad.test/test/private/blobs/$UNCACHED"
check "the error body does not contain the password" lacks "$T/body" "$WRONG_PASSWORD"

# --- token auth ---
tokens0=$(count "$TOKEN_LOG" .)
reqs0=$(count "${REG_LOG[token]}" '"(GET|HEAD) /v2/test/pub/.*" 200 ')
pull_ok "token auth, anonymous" tpub token.test/test/pub:v1 "$TPUB"
reqs1=$(count "${REG_LOG[token]}" '"(GET|HEAD) /v2/test/pub/.*" 200 ')
is "$(count "$TOKEN_LOG" 'user=anonymous .*scope=repository:test/pub:pull .*status=200')" 1 \
	"token auth: one anonymous token for repository:test/pub:pull"
ok "$((reqs1 - reqs0 >= 5 ? 0 : 1))" \
	"token auth: ... reused for all $((reqs1 - reqs0)) successful requests of the pull (manifest, config, 3 layers)"
pull_ok "token auth, second tag of the repository" tpub2 token.test/test/pub:v2 "$TPUB2"
is "$(count "$TOKEN_LOG" 'scope=repository:test/pub:pull ')" 1 \
	"token auth: the cached token served a later pull too (no new token request)"
check "token auth: the registry verified the token (no invalid token in its log)" \
	lacks "${REG_LOG[token]}" '[Ii]nvalid token|untrusted key'

refused "token auth, anonymous, private repository" tpriv-anon token.test/test/priv:v1
expect_denied "token auth, anonymous, private repository" /v2/token.test/test/priv/manifests/v1
pull_ok "token auth with credentials" tpriv token-auth.test/test/priv:v1 "$TPRIV"
is "$(count "$TOKEN_LOG" "user=$TEST_USER .*scope=repository:test/priv:pull .*granted=test/priv:pull status=200")" 1 \
	"token auth: one token for $TEST_USER, scope repository:test/priv:pull, granted pull"
refused "token auth, wrong password" tbad token-bad.test/test/priv:v1
expect_denied "token auth, wrong password" /v2/token-bad.test/test/priv/manifests/v1
check "token auth: the token server refused the wrong password" \
	grep -q 'user=invalid .*scope=repository:test/priv:pull .*status=401' "$TOKEN_LOG"
diag "token requests: $(($(count "$TOKEN_LOG" .) - tokens0))"

# --- empty credentials are anonymous (Helm renders an unset value as "") ---
invalid0=$(count "$TOKEN_LOG" 'user=invalid')
pull_ok "empty username and password" tempty token-empty.test/test/pub:v1 "$TPUB"
pull_ok "empty username and password in UPSTREAM_CREDENTIALS" tenvempty \
	token-envempty.test/test/pub:v1 "$TPUB"
is "$(count "$TOKEN_LOG" 'user=invalid')" "$invalid0" \
	"empty credentials: no token request carried Basic credentials (none refused as invalid)"

# --- UPSTREAM_CREDENTIALS wins over the file's wrong password ---
pull_ok "UPSTREAM_CREDENTIALS overrides the file" env env.test/test/private:v1 "$PRIV"

# --- redirects: credentials stay with the upstream ---
# redirect_checks NAME SCHEME: what the redirecting upstream NAME logged.
redirect_checks() {
	local name=$1 scheme=$2
	ok "$(($(count "$T/log/$name.log" "^registry GET /v2/test/[a-z]+/blobs/sha256:[0-9a-f]+ auth=$scheme status=307") >= 4 ? 0 : 1))" \
		"$name: blob GETs reached the upstream with $scheme credentials and were redirected"
	ok "$(($(count "$T/log/$name.log" '^cdn GET .* auth=none status=200') >= 4 ? 0 : 1))" \
		"$name: the other host served the blobs"
	is "$(count "$T/log/$name.log" '^cdn .* auth=(basic|bearer|other)')" 0 \
		"$name: no Authorization header was sent to the other host"
}
pull_ok "redirected blobs (Basic)" redirect redirect.test/test/redir:v1 "$REDIR"
redirect_checks redirect basic
pull_ok "redirected blobs (token)" redirect-token redirect-token.test/test/redir:v1 "$TREDIR"
redirect_checks redirect-token bearer

# --- TLS and identity options ---
pull_ok "user_agent" agent agent.test/test/small:v1 "$ANON"
check "user_agent: the upstream saw the configured User-Agent" \
	grep -q '"oci-test-agent/4.2"' "$UPSTREAM_LOG"
pull_ok "accept_invalid_certs: true, no ca_file" insecure insecure.test/test/small:v1 "$ANON"
start=$SECONDS
code=$(http_status /v2/untrusted.test/test/small/manifests/v1)
like "$code" '^50[23]$' "an untrusted certificate (system store, test CA unknown) gives 502/503" ||
	diag "body: $(cat "$T/body")"
ok "$((SECONDS - start < 15 ? 0 : 1))" "... at once ($((SECONDS - start)) s)"
check "the TLS failure is logged" grep -q 'untrusted.test.*error=' "$RESPONDER_LOG"

# --- secrets never logged ---
# secret_free: no log under $T/log holds either password.
secret_free() {
	! grep -rlF -e "$TEST_PASSWORD" -e "$WRONG_PASSWORD" "$T/log"
}
check "no log (responder, nginx, registries, token server, skopeo) contains a password" secret_free
check "the responder logged the token fetches" grep -q '^.*token token.test scope=repository:test/pub:pull status=200' "$RESPONDER_LOG"
UPSTREAM_CREDENTIALS=$CREDENTIALS_JSON "$OCI_REGISTRY" --help >"$T/help" 2>&1
check "--help does not show the environment's credentials" lacks "$T/help" "$TEST_PASSWORD"

stop nginx
stop_responder_checked
check "no secret in the responder's final log either" secret_free
done_testing
