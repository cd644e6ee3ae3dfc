#!/usr/bin/env bash
# headers.sh - header values from an upstream reach neither a client nor the
# cache unchecked. An upstream (tests/lib/badheaders.py) answers manifests
# with a Content-Type holding a bare CR or a control byte, a mediaType field
# holding a control byte, and 429s with a Retry-After holding a bare CR or an
# HTTP-date; behind real nginx and lighttpd (both in front of one responder)
# the client gets a clean answer - the manifest with its JSON mediaType, or
# 502 UPSTREAM_FAILED saying why, or a 429 with a Retry-After in seconds or
# none - and no tag record holds a bad media type.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/lighttpd.sh
. "$TESTLIB/lighttpd.sh"

need_program nginx lighttpd curl
need_responder

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
BAD_PORT=$(free_ports 1)
: >"$T/log/badheaders.log"
spawn badheaders "$T/log/badheaders.out" "$PYTHON" "$TESTLIB/badheaders.py" "$BAD_PORT" \
	--log "$T/log/badheaders.log"
wait_ready badheaders 20 tcp_open "$BAD_PORT" || bail "the bad-headers upstream did not start"

EXTRA_UPSTREAMS=$(upstream_entry bad.test "127.0.0.1:$BAD_PORT" "tls: false")
export EXTRA_UPSTREAMS
start_mirror --default-namespace bad.test --workers 4 || bail "mirror did not start"
NGINX_MIRROR=$MIRROR
# lighttpd's contrib config connects to $T/run/connect/fcgi.sock: the same responder.
mkdir -p "$T/run/connect"
ln -s "$FCGI_SOCK" "$T/run/connect/fcgi.sock"
start_lighttpd connect || bail "lighttpd did not start"
LIGHTTPD_MIRROR=$MIRROR
diag "bad-headers upstream 127.0.0.1:$BAD_PORT, nginx $NGINX_MIRROR, lighttpd $LIGHTTPD_MIRROR, test dir $T"

# headers_clean: the last answer's header lines hold no control byte but
# their CRLF ends (a bare CR would have started a header of the upstream's).
headers_clean() {
	! sed 's/\r$//' "$T/headers" | LC_ALL=C grep -q '[[:cntrl:]]'
}

# tag_record TAG: the cache's record of test/x:TAG at bad.test ("" if none).
tag_record() {
	cat "$CACHE/manifests/bad.test/test/x/_tags/$1" 2>/dev/null
}

# record_clean TAG: the record is one line "<digest> <size> $OCI_MANIFEST\n",
# printable but for its newline.
record_clean() {
	[ "$(tag_record "$1" | wc -l)" = 1 ] &&
		[ -z "$(tag_record "$1" | LC_ALL=C tr -d '[:print:]\n')" ] &&
		[ "$(tag_record "$1" | cut -d' ' -f3)" = "$OCI_MANIFEST" ]
}

# clean_manifest FRONT CASE: a bad Content-Type falls back to the manifest's
# mediaType, for the fetch, its hit and a HEAD, and the record holds that.
clean_manifest() {
	local f=$1 tag=$2.$1 path=/v2/test/x/manifests/$2.$1 i
	for i in miss hit; do
		is "$(http_status "$path")" 200 "$f: $2 ($i): 200"
		is "$(header Content-Type)" "$OCI_MANIFEST" "$f: $2 ($i): Content-Type is the manifest's mediaType"
		check "$f: $2 ($i): no control byte in the answer's headers" headers_clean
		is "$(json_get "$T/body" mediaType)" "$OCI_MANIFEST" "$f: $2 ($i): the manifest is the body"
	done
	is "$(http_status "$path" -I)" 200 "$f: $2 (HEAD): 200"
	is "$(header Content-Type)" "$OCI_MANIFEST" "$f: $2 (HEAD): Content-Type"
	check "$f: $2: the tag record holds the clean media type" record_clean "$tag" ||
		diag "record: $(tag_record "$tag" | od -c | head -n 5)"
}

# refused_manifest FRONT CASE WHY: 502 UPSTREAM_FAILED whose detail says WHY; no record.
refused_manifest() {
	local f=$1 tag=$2.$1
	is "$(http_status "/v2/test/x/manifests/$tag")" 502 "$f: $2: 502"
	is "$(json_get "$T/body" errors 0 code)" UPSTREAM_FAILED "$f: $2: UPSTREAM_FAILED"
	like "$(json_get "$T/body" errors 0 detail)" "$3" "$f: $2: the error says why"
	check "$f: $2: no control byte in the answer's headers" headers_clean
	is "$(tag_record "$tag")" "" "$f: $2: no tag record was stored"
}

# too_many FRONT PATH RETRY-AFTER-ERE LABEL: a 429 whose Retry-After matches
# the ERE, or that has none when the ERE is "".
too_many() {
	is "$(http_status "$2")" 429 "$1: $4: 429"
	is "$(json_get "$T/body" errors 0 code)" TOOMANYREQUESTS "$1: $4: TOOMANYREQUESTS"
	if [ -z "$3" ]; then
		check "$1: $4: no Retry-After" eval "! grep -qi '^Retry-After:' '$T/headers'"
	else
		like "$(header Retry-After)" "$3" "$1: $4: Retry-After"
	fi
	check "$1: $4: no control byte in the answer's headers" headers_clean
}

for front in nginx lighttpd; do
	if [ "$front" = nginx ]; then MIRROR=$NGINX_MIRROR; else MIRROR=$LIGHTTPD_MIRROR; fi
	clean_manifest "$front" crtype
	clean_manifest "$front" ctltype
	refused_manifest "$front" crbare "Content-Type is not a media type"
	refused_manifest "$front" ctlmedia "mediaType is not a media type"
	too_many "$front" "/v2/test/x/manifests/retrycr.$front" "" "Retry-After with a CR dropped"
	too_many "$front" "/v2/test/x/manifests/retrydate.$front" '^([1-5][0-9]|6[01])$' \
		"an HTTP-date Retry-After made seconds"
	too_many "$front" "/v2/test/x/manifests/retryok.$front" '^7$' "Retry-After: 7 passed on"
	too_many "$front" "/v2/test/x/blobs/sha256:$(printf '0%.0s' {1..64})" "" \
		"a blob's Retry-After with a CR dropped"
done

check "the upstream was asked for every case" grep -q 'manifests/ctlmedia.lighttpd' "$T/log/badheaders.log"
check "nginx logged no 5xx but the upstream's failures" \
	eval "! grep -E '\" 5[0-9][0-9] ' '$T/log/nginx-access.log' | grep -Ev 'manifests/(crbare|ctlmedia)\\.'"
like "$(grep -c 'is not a media type' "$RESPONDER_LOG")" '^[1-9]' "the responder logged why it refused manifests"

stop lighttpd TERM 20
is "$?" 0 "lighttpd exits 0 on SIGTERM"
stop nginx
stop_responder_checked
done_testing
