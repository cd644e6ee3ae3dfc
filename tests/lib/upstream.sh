# upstream.sh - a real upstream registry for the tests: a private CA, Debian's
# docker-registry (CNCF distribution) over TLS, and images pushed with skopeo.
# shellcheck shell=bash disable=SC2154,SC2034 # top_srcdir, T, PYTHON: set by common.sh

# make_pki: a CA and a server certificate for 127.0.0.1 and localhost in
# $T/pki; $T/pki/certs.d is a skopeo --*-cert-dir with the CA.
make_pki() {
	local d=$T/pki
	mkdir -p "$d/certs.d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=oci-registry test CA' \
		-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
		-keyout "$d/ca.key" -out "$d/ca.pem" >"$d/openssl.log" 2>&1 &&
		openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' \
			-keyout "$d/server.key" -out "$d/server.csr" >>"$d/openssl.log" 2>&1 &&
		printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
			'extendedKeyUsage=serverAuth' 'basicConstraints=CA:FALSE' >"$d/server.ext" &&
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/server.pem" >>"$d/openssl.log" 2>&1 &&
		cp "$d/ca.pem" "$d/certs.d/ca.crt"
}

# start_upstream: docker-registry on a free port with TLS; sets UPSTREAM_PORT,
# UPSTREAM_LOG (its access log lines go there) and UPSTREAM (host:port).
start_upstream() {
	start_registry upstream none || return 1
	UPSTREAM=${REG_ADDR[upstream]}
	UPSTREAM_PORT=${UPSTREAM##*:}
	UPSTREAM_LOG=${REG_LOG[upstream]}
}

declare -A REG_ADDR=() # registry name -> 127.0.0.1:port
declare -A REG_LOG=()  # registry name -> its log (access log lines included)

# make_secrets: TEST_USER with TEST_PASSWORD, the account of the private
# registries, and WRONG_PASSWORD; random, so a grep of the logs finds no
# false positives. skopeo gets them from $T/auth.json, never on its command line.
make_secrets() {
	[ -z "${TEST_PASSWORD:-}" ] || return 0
	TEST_USER=tester
	TEST_PASSWORD=right-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	WRONG_PASSWORD=wrong-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	printf '%s:%s\n' "$TEST_USER" "$TEST_PASSWORD" >"$T/users"
}

# start_registry NAME none|htpasswd|token: docker-registry over TLS on a free
# port, data in $T/NAME, log in $T/log/NAME.log; sets REG_ADDR[NAME] and
# REG_LOG[NAME]. htpasswd: Basic auth for TEST_USER. token: auth by the
# token server of start_token_server (started when not running yet);
# anonymous users may pull test/pub*, TEST_USER may pull and push anything.
start_registry() {
	local name=$1 auth=${2:-none} d=$T/$1 port
	mkdir -p "$d/data"
	[ -f "$T/pki/server.pem" ] || make_pki || return 1
	port=$(free_ports 1)
	REG_ADDR[$name]=127.0.0.1:$port
	REG_LOG[$name]=$T/log/$name.log
	cat >"$d/config.yml" <<-EOF
		version: 0.1
		log:
		  level: info
		  accesslog:
		    disabled: false
		storage:
		  filesystem:
		    rootdirectory: $d/data
		  delete:
		    enabled: true
		http:
		  addr: 127.0.0.1:$port
		  tls:
		    certificate: $T/pki/server.pem
		    key: $T/pki/server.key
	EOF
	case $auth in
	none) ;;
	htpasswd)
		make_secrets
		htpasswd -bBc "$d/htpasswd" "$TEST_USER" "$TEST_PASSWORD" >/dev/null 2>&1 || return 1
		registry_login "${REG_ADDR[$name]}"
		cat >>"$d/config.yml" <<-EOF
			auth:
			  htpasswd:
			    realm: oci-test
			    path: $d/htpasswd
		EOF
		;;
	token)
		running tokens || start_token_server || return 1
		registry_login "${REG_ADDR[$name]}"
		cat >>"$d/config.yml" <<-EOF
			auth:
			  token:
			    realm: https://127.0.0.1:$TOKEN_PORT/token
			    service: oci-test-registry
			    issuer: oci-test-issuer
			    rootcertbundle: $T/pki/ca.pem
		EOF
		;;
	*) return 1 ;;
	esac
	spawn "$name" "${REG_LOG[$name]}" docker-registry serve "$d/config.yml"
	wait_ready "$name" 20 registry_answers "${REG_ADDR[$name]}"
}

upstream_answers() {
	curl -fsS -o /dev/null --max-time 2 --cacert "$T/pki/ca.pem" "https://$UPSTREAM/v2/" 2>/dev/null
}

# registry_answers HOST:PORT: the registry answers /v2/ (401 counts: auth is on).
registry_answers() {
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$T/pki/ca.pem" \
		"https://$1/v2/" 2>/dev/null)
	[ "$code" = 200 ] || [ "$code" = 401 ]
}

# registry_login HOST:PORT: TEST_USER's credentials for HOST:PORT in $T/auth.json.
registry_login() {
	make_secrets
	"$PYTHON" - "$T/auth.json" "$1" "$TEST_USER:$TEST_PASSWORD" <<-'EOF'
		import base64, json, os, sys
		path, host, creds = sys.argv[1:4]
		auths = json.load(open(path)) if os.path.exists(path) else {"auths": {}}
		auths["auths"][host] = {"auth": base64.b64encode(creds.encode()).decode()}
		json.dump(auths, open(path, "w"))
	EOF
}

# make_token_cert: a token signing key and certificate issued by the test CA.
make_token_cert() {
	local d=$T/pki
	[ -f "$d/token.pem" ] && return 0
	openssl req -newkey rsa:2048 -nodes -subj '/CN=oci-test token signer' \
		-keyout "$d/token.key" -out "$d/token.csr" >>"$d/openssl.log" 2>&1 &&
		printf '%s\n' 'keyUsage=critical,digitalSignature' 'basicConstraints=CA:FALSE' >"$d/token.ext" &&
		openssl x509 -req -in "$d/token.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -extfile "$d/token.ext" -out "$d/token.pem" >>"$d/openssl.log" 2>&1
}

# start_token_server: the token server of servers.py over HTTPS (certificate of
# the test CA) on a free port, for the registries started with `token`; sets
# TOKEN_PORT and TOKEN_LOG (one line per token request: user, scope, what was
# granted, status).
start_token_server() {
	[ -f "$T/pki/ca.pem" ] || make_pki || return 1
	make_token_cert || return 1
	make_secrets
	TOKEN_PORT=$(free_ports 1)
	TOKEN_LOG=$T/log/tokens.log
	: >"$TOKEN_LOG"
	spawn tokens "$T/log/tokens.out" "$PYTHON" "$TESTLIB/servers.py" token "$TOKEN_PORT" \
		--cert "$T/pki/token.pem" --key "$T/pki/token.key" --service oci-test-registry \
		--issuer oci-test-issuer --users "$T/users" --log "$TOKEN_LOG" \
		--tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key"
	wait_ready tokens 20 tcp_open "$TOKEN_PORT"
}

# skopeo_q ARGS...: skopeo with no system policy needed, output logged, and
# a time limit so that a hanging mirror fails the test instead of stalling it.
skopeo_q() {
	timeout 120 skopeo --insecure-policy "$@" >>"$T/log/skopeo.log" 2>&1 || {
		diag "skopeo $* failed"
		diag_file "$T/log/skopeo.log" 10
		return 1
	}
}

# make_image NAME TAG [mkimage options]: generate an image in $T/images/NAME
# (an OCI layout) and push it to the upstream as test/NAME:TAG. Prints the
# digest of the pushed manifest or index.
make_image() {
	local name=$1
	shift
	push_image "$UPSTREAM" "test/$name" "$@"
}

# push_image HOST:PORT REPO TAG [mkimage options]: generate an image in
# $T/images/HOST_PORT/REPO (an OCI layout) and push it to the registry as REPO:TAG,
# with the credentials of $T/auth.json when there are some. Prints the
# digest of the pushed manifest or index.
push_image() {
	local addr=$1 repo=$2 tag=$3 dir=$T/images/${1//[.:]/_}/${2//\//_} digest auth=()
	shift 3
	[ ! -f "$T/auth.json" ] || auth=(--dest-authfile "$T/auth.json")
	digest=$("$PYTHON" "$TESTLIB/util.py" mkimage "$dir" "$tag" "$@") || return 1
	skopeo_q copy --all --dest-cert-dir "$T/pki/certs.d" "${auth[@]}" \
		"oci:$dir:$tag" "docker://$addr/$repo:$tag" || return 1
	echo "$digest"
}

# upstream_curl PATH [curl options]: a request straight to the upstream.
upstream_curl() {
	local path=$1
	shift
	curl -sS --max-time 30 --cacert "$T/pki/ca.pem" "$@" "https://$UPSTREAM$path"
}

# upstream_digest NAME REF: digest of the manifest the upstream serves.
upstream_digest() {
	upstream_curl "/v2/test/$1/manifests/$2" -o "$T/upstream-manifest" \
		-H 'Accept: application/vnd.oci.image.index.v1+json' \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' &&
		sha256_of "$T/upstream-manifest"
}

# upstream_layer NAME TAG: the digest of the first layer of test/NAME:TAG.
upstream_layer() {
	upstream_curl "/v2/test/$1/manifests/$2" -H 'Accept: application/vnd.oci.image.manifest.v1+json' |
		json_get - layers 0 digest
}

# upstream_gets_of DIGEST: how many GETs of that blob the upstream has
# answered so far (docker-registry logs a GET when it ends, cut short or not).
upstream_gets_of() {
	grep -c "\"GET /v2/[^ ]*/blobs/$1" "$UPSTREAM_LOG"
}

# upstream_blob_gets: how many blob GETs the upstream has answered so far.
upstream_blob_gets() {
	grep -Ec '"GET /v2/[^ ]+/blobs/sha256:[0-9a-f]{64}' "$UPSTREAM_LOG"
}
