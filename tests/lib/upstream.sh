# upstream.sh - a real upstream registry for the tests: a private CA, Debian's
# docker-registry (CNCF distribution) over TLS, and images pushed with skopeo.
# shellcheck shell=bash disable=SC2154 # top_srcdir, T, PYTHON: set by common.sh

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
	local d=$T/upstream
	mkdir -p "$d/data"
	[ -f "$T/pki/server.pem" ] || make_pki || return 1
	UPSTREAM_PORT=$(free_ports 1)
	UPSTREAM=127.0.0.1:$UPSTREAM_PORT
	UPSTREAM_LOG=$T/log/upstream.log
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
		  addr: $UPSTREAM
		  tls:
		    certificate: $T/pki/server.pem
		    key: $T/pki/server.key
	EOF
	spawn upstream "$UPSTREAM_LOG" docker-registry serve "$d/config.yml"
	wait_ready upstream 20 upstream_answers
}

upstream_answers() {
	curl -fsS -o /dev/null --max-time 2 --cacert "$T/pki/ca.pem" "https://$UPSTREAM/v2/" 2>/dev/null
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
	local name=$1 tag=$2 dir=$T/images/$1 digest
	shift 2
	digest=$("$PYTHON" "$TESTLIB/util.py" mkimage "$dir" "$tag" "$@") || return 1
	skopeo_q copy --all --dest-cert-dir "$T/pki/certs.d" \
		"oci:$dir:$tag" "docker://$UPSTREAM/test/$name:$tag" || return 1
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

# upstream_blob_gets: how many blob GETs the upstream has answered so far.
upstream_blob_gets() {
	grep -Ec '"GET /v2/[^ ]+/blobs/sha256:[0-9a-f]{64}' "$UPSTREAM_LOG"
}
