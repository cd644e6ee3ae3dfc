#!/usr/bin/env bash
# security.sh - where the mirror's credentials may go, and what the config refuses at start.
#   A config that would send credentials with an empty name, put control
#   characters into upstream request headers or name a missing ca_file stops
#   the program at start: exit 2, one line naming the entry and the key.
#   Against fakeauth.py (an upstream, a host it redirects to, a token realm):
#   a 401 after a redirect to another host is followed only to that host's
#   own realm (same origin), anonymously, and the retry goes there, with a
#   token kept for that host only (a new one when it is refused); credentials go
#   only to a realm on the upstream's host or its token_realm_hosts, and
#   over plain http only when the entry has tls: false; other realms get an
#   anonymous request; a token with CR LF is refused, not sent as headers;
#   a namespace named only in UPSTREAM_CREDENTIALS stays behind the address guard.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program nginx curl openssl
need_responder
make_pki || bail "cannot make the test PKI"
SECRET=s3cret-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

# --- refused at start -----------------------------------------------------

# start_refused DESC WANT YAML [ENV-CREDENTIALS]: the responder, with YAML as its
# upstream config, exits 2 before serving with one line on stderr that
# contains WANT and not the secret.
start_refused() {
	local desc=$1 want=$2 status
	printf '%s\n' "$3" >"$T/bad.yaml"
	UPSTREAM_CREDENTIALS=${4:-} timeout 20 "$OCI_REGISTRY" --listen "unix:$T/bad.sock" \
		--upstream-config-file "$T/bad.yaml" filesystem --root "$T/bad-cache" >"$T/bad.out" 2>&1
	status=$?
	is "$status" 2 "$desc: exit status 2"
	is "$(wc -l <"$T/bad.out")" 1 "$desc: one line" || diag_file "$T/bad.out" 5
	like "$(cat "$T/bad.out")" "$want" "$desc: the message says why"
	check "$desc: the message holds no secret" lacks_secret "$T/bad.out"
}

lacks_secret() {
	! grep -qF -- "$SECRET" "$1"
}

GOOD='- namespace: good.test
  host: 127.0.0.1:1'
start_refused "username empty, password set" \
	"bad.yaml:3: upstream 'a.test': 'password' is set but 'username' is empty" \
	"$GOOD
- namespace: a.test
  host: a.test
  username: \"\"
  password: $SECRET"
start_refused "username set, no password" \
	"upstream 'a.test': 'username' is set but 'password' is empty" \
	'- namespace: a.test
  host: a.test
  username: robot'
start_refused "user_agent with CR LF" "upstream 'a.test': 'user_agent' holds a control character" \
	'- namespace: a.test
  host: a.test
  user_agent: "ua\r\nX-Injected: 1"'
start_refused "password with LF" "upstream 'a.test': 'password' holds a control character" \
	"- namespace: a.test
  host: a.test
  username: robot
  password: \"$SECRET\\nX-Injected: 1\""
start_refused "missing ca_file" \
	"bad.yaml: upstream 'a.test': ca_file '$T/missing.pem': No such file or directory" \
	"$GOOD
- namespace: a.test
  host: a.test
  ca_file: $T/missing.pem"
start_refused "UPSTREAM_CREDENTIALS, password without username" \
	"^oci-registry: UPSTREAM_CREDENTIALS: 'a.test': 'password' is set but 'username' is empty\$" \
	"$GOOD" "{\"a.test\": {\"username\": \"\", \"password\": \"$SECRET\"}}"
start_refused "UPSTREAM_CREDENTIALS, CR LF in a username" \
	"UPSTREAM_CREDENTIALS: 'a.test': 'username' holds a control character" \
	"$GOOD" "{\"a.test\": {\"username\": \"r\\r\\nX: 1\", \"password\": \"$SECRET\"}}"
start_refused "UPSTREAM_CREDENTIALS, malformed" \
	'^oci-registry: UPSTREAM_CREDENTIALS: malformed JSON$' "$GOOD" "{\"a.test\": \"$SECRET"

# --- the fake world and the mirror ----------------------------------------
mapfile -t PORTS < <(free_ports 4)
FAKE=127.0.0.1:${PORTS[0]}
FAKE_LOG=$T/log/fake.log
: >"$FAKE_LOG"
spawn fake "$T/log/fake.out" "$PYTHON" "$TESTLIB/fakeauth.py" "${PORTS[@]}" \
	--tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key" --log "$FAKE_LOG"
wait_ready fake 20 tcp_open "${PORTS[3]}" || bail "fakeauth.py did not start"

# reg.test (mirror.sh's entry): the fake's HTTPS listener, trusted through ca_file.
UPSTREAM=127.0.0.1:${PORTS[3]}
CREDS=("username: robot" "password: $SECRET")
EXTRA_UPSTREAMS=$(
	upstream_entry redirect.test "$FAKE" "tls: false" "${CREDS[@]}"
	upstream_entry plain.test "$FAKE" "tls: false" "${CREDS[@]}"
	upstream_entry listed.test "$FAKE" "tls: false" "token_realm_hosts: [localhost]" "${CREDS[@]}"
	upstream_entry anon.test "$FAKE" "tls: false"
)
export EXTRA_UPSTREAMS
CREDENTIALS_JSON=$(printf '{"reg.test": {"username": "robot", "password": "%s"}, "localhost:%s": {"username": "robot", "password": "%s"}}' \
	"$SECRET" "${PORTS[3]}" "$SECRET")
UPSTREAM_CREDENTIALS=$CREDENTIALS_JSON start_mirror --workers 4 || bail "mirror did not start"
diag "mirror $MIRROR, fake upstream $FAKE (https :${PORTS[3]}), realm :${PORTS[2]}, test dir $T"

ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'

# get_manifest PATH: the mirror's status for a manifest GET (body in $T/body).
get_manifest() {
	http_status "$1" -H "$ACCEPT"
}

# served DESC PATH: the mirror serves the manifest at PATH.
served() {
	is "$(get_manifest "$2")" 200 "$1"
}

# realm_saw PATH-ERE AUTH-ERE: how many requests the realm got on PATH with AUTH.
realm_saw() {
	grep -Ec "^realm GET $1[? ].* auth=$2( |$)" "$FAKE_LOG" || true
}

# denied DESC PATH: the mirror answers the manifest GET of PATH with 403 DENIED.
denied() {
	is "$(get_manifest "$2")" 403 "$1: the mirror answers 403"
	is "$(json_get "$T/body" errors 0 code 2>/dev/null)" DENIED "$1: error code DENIED" ||
		diag "body: $(head -c 300 "$T/body")"
}

# --- a 401 after a redirect to another host is not the upstream's ----------
denied "redirect to another host that answers 401" /v2/redirect.test/redirect/manifests/v1
is "$(grep -c '^elsewhere GET /v2/redirect/manifests/v1 ' "$FAKE_LOG")" 1 \
	"... the redirect was followed to the other host, once"
is "$(realm_saw /steal '.*')" 0 "... and the realm it named got no request at all"
served "redirect to a registry with a realm of its own (lscr.io to ghcr.io): served" \
	/v2/redirect.test/redirect-own/manifests/v1
is "$(grep -Ec '^elsewhere GET /token[? ].* auth=none ' "$FAKE_LOG")" 1 \
	"... its realm got one anonymous token request"
is "$(grep -Ec '^elsewhere .* auth=basic' "$FAKE_LOG")" 0 "... and no request there had the credentials"
is "$(grep -Ec '^elsewhere GET /v2/redirect-own/manifests/v1 auth=bearer .*status=200' "$FAKE_LOG")" 1 \
	"... the retry with the token went straight to where the redirect led"
is "$(grep -Ec '^upstream GET /v2/redirect-own/manifests/v1 ' "$FAKE_LOG")" 1 "... the upstream was asked once"
served "another tag behind that redirect: served" /v2/redirect.test/redirect-own/manifests/v2
is "$(grep -Ec '^elsewhere GET /token[? ].* auth=none ' "$FAKE_LOG")" 1 \
	"... with the token kept for that host's origin: no second token request"
is "$(grep -Ec '^elsewhere GET /v2/redirect-own/manifests/v2 auth=bearer .*status=200' "$FAKE_LOG")" 1 \
	"... the kept token went where the redirect led"
is "$(grep -Ec '^upstream GET /v2/redirect-own/manifests/v2 ' "$FAKE_LOG") $(grep -Ec '^upstream GET /v2/redirect-own/.* auth=bearer' "$FAKE_LOG")" "1 0" \
	"... and never to the upstream (asked once, never with a bearer token)"
curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:${PORTS[1]}/revoke" || diag "cannot revoke the tokens"
served "a kept token that host no longer takes: served with a new one" \
	/v2/redirect.test/redirect-own/manifests/v3
is "$(grep -Ec '^elsewhere GET /v2/redirect-own/manifests/v3 auth=bearer .*status=(401|200)' "$FAKE_LOG")" 2 \
	"... the kept token refused, the new one taken"
is "$(grep -Ec '^elsewhere GET /token[? ].* auth=none ' "$FAKE_LOG")" 2 "... one more token request"

# --- credentials only to the upstream's own host (any port) ---------------
served "realm on the upstream's host (tls: false): the manifest is served" /v2/plain.test/own/manifests/v1
is "$(realm_saw /token 'basic user=robot')" 1 "... the realm got the credentials"
served "realm on another host: served with an anonymous token" /v2/plain.test/foreign/manifests/v1
is "$(realm_saw /token 'none')" 1 "... the other host's realm got an anonymous request"
is "$(realm_saw /token 'basic.*')" 1 "... and no credentials"
served "realm on a host of token_realm_hosts: served" /v2/listed.test/foreign/manifests/v1
is "$(realm_saw /token 'basic user=robot')" 2 "... and that realm got the credentials"

# --- never over plain http unless tls: false -------------------------------
served "HTTPS upstream with a plain http realm on its host: served" /v2/reg.test/own/manifests/v1
is "$(realm_saw /token 'basic.*')" 2 "... the plain http realm got no credentials"
is "$(realm_saw /token 'none')" 2 "... but an anonymous request"
check "... the HTTPS upstream was asked with the token" \
	grep -q '^upstream-tls GET /v2/own/manifests/v1 auth=bearer .*status=200' "$FAKE_LOG"

# --- a token with CR LF is refused, not sent as headers --------------------
denied "token with CR LF" /v2/anon.test/inject/manifests/v1
is "$(realm_saw /inject none)" 1 "... the realm was asked"
is "$(grep -c 'injected=yes' "$FAKE_LOG")" 0 "... and no upstream request carried the injected header"
is "$(grep -Ec '^upstream GET /v2/inject/manifests/v1 ' "$FAKE_LOG")" 1 \
	"... nor was the upstream asked again with it"

# --- UPSTREAM_CREDENTIALS alone does not lift the address guard ------------
# localhost:PORT is the fake's HTTPS listener (a dynamic namespace is HTTPS).
before=$(grep -c . "$FAKE_LOG")
denied "namespace named only in UPSTREAM_CREDENTIALS" "/v2/library/x/manifests/v1?ns=localhost:${PORTS[3]}"
is "$(grep -c . "$FAKE_LOG")" "$before" "... and nothing reached the loopback upstream"
check "... the refusal is logged" grep -q "localhost:${PORTS[3]}.*address refused" "$RESPONDER_LOG"

check "no log holds the password" lacks_secret "$RESPONDER_LOG"
stop nginx
stop_responder_checked
done_testing
