#!/usr/bin/env bash
# s3_hostile.sh - the S3 backend against a broken or hostile S3 server
# (tests/lib/s3_hostile.py): listings that never end (pages that go back,
# a repeated continuation token, endless empty pages) or are too large stop
# the clean-up pass with an error instead of keeping it forever; a redirect
# of the responder's signed request is not followed; and nginx's /_oci_s3/
# location does not let S3's answer send it to another host or set cookies.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program nginx curl cgi-fcgi
need_responder

BUCKET=oci-cache
PREFIX=mirror
BLOB=sha256:$(printf 'blob' | sha256sum | cut -d' ' -f1)
mkdir -p "$T/run"
CACHE=$T/unused-cache # the filesystem location of contrib/nginx, unused here
FCGI_SOCK=$T/run/fcgi.sock
# The upstream is never reached: port 1 refuses.
printf -- '- namespace: reg.test\n  host: 127.0.0.1:1\n  tls: false\n' >"$T/upstream.yaml"

# start_hostile SCENARIO: the hostile server and its trap on free ports;
# its request lines go to $HOSTILE_LOG.
start_hostile() {
	local ports
	mapfile -t ports < <(free_ports 2)
	HOSTILE_PORT=${ports[0]}
	TRAP_PORT=${ports[1]}
	HOSTILE_LOG=$T/log/hostile-$1.log
	spawn hostile "$HOSTILE_LOG" "$PYTHON" "$TESTLIB/s3_hostile.py" "$HOSTILE_PORT" "$TRAP_PORT" "$1"
	wait_ready hostile 20 tcp_open "$HOSTILE_PORT" && wait_ready hostile 20 tcp_open "$TRAP_PORT"
}

# start_on_hostile SCENARIO [OPTIONS...]: the hostile server, and a responder
# on it that runs a clean-up pass every second.
start_on_hostile() {
	local scenario=$1
	shift
	RESPONDER_LOG=$T/log/responder-$scenario.log
	start_hostile "$scenario" || return 1
	spawn responder "$RESPONDER_LOG" env S3_SECRET_KEY=secret \
		"$OCI_REGISTRY" --listen "unix:$FCGI_SOCK" --upstream-config-file "$T/upstream.yaml" \
		--default-namespace reg.test --workers 2 --low-speed-timeout 3 --cleanup-interval 1 "$@" \
		s3 --host "http://127.0.0.1:$HOSTILE_PORT" --bucket "$BUCKET" --region us-east-1 \
		--access-key test --path-style --prefix "$PREFIX"
	wait_ready responder 30 unix_open "$FCGI_SOCK"
}

# stop_scenario LABEL: the responder exits 0 on SIGTERM (a pass in progress
# must end first) with a clean log; then the hostile server goes.
stop_scenario() {
	stop responder TERM 15
	is "$?" 0 "$1: responder exits 0 on SIGTERM"
	check "$1: responder log has no sanitizer report" sanitizer_clean "$RESPONDER_LOG" ||
		diag_file "$RESPONDER_LOG" 40
	stop hostile
	rm -f "$FCGI_SOCK"
}

# lists PREFIX: the listing requests for a key prefix so far.
lists() {
	grep -c "^S3 GET /$BUCKET/?.*list-type=2&prefix=$PREFIX%2F$1%2F" "$HOSTILE_LOG"
}
# The pass lists manifests/, then hosted/ (what hosted repositories hold,
# which must be known before any blob is removed), then blobs/.
hosted_listed() { [ "$(lists hosted)" -gt 0 ]; }
logged() { grep -q "$1" "$RESPONDER_LOG"; }

# --- listings that never end: the pass stops at the first bad page ---
for scenario in cycle same-token endless; do
	start_on_hostile "$scenario" || bail "responder on the hostile server ($scenario) did not start"
	check "$scenario: the manifests listing ends, and the pass goes on" \
		wait_until 20 hosted_listed
	n=$(lists manifests)
	ok "$((n <= 12 ? 0 : 1))" "$scenario: the first listing took $n requests, not endless"
	case $scenario in
	cycle) like "$(cat "$RESPONDER_LOG")" "listing: key .* out of order" "cycle: the log says why" ;;
	same-token) like "$(cat "$RESPONDER_LOG")" "without a new continuation token" "same-token: the log says why" ;;
	endless) like "$(cat "$RESPONDER_LOG")" "truncated pages in a row without a key" "endless: the log says why" ;;
	esac
	check "$scenario: the hosted listing fails alike, so no blob is removed" \
		wait_until 20 logged "cannot list the hosted repositories; no blob removed"
	stop_scenario "$scenario"
done

# --- a listing page too large to hold: an error, not a listing cut short ---
start_on_hostile huge || bail "responder on the hostile server (huge) did not start"
check "huge: the pass reports the page as too large" wait_until 30 logged "listing: a page of more than"
stop_scenario huge

# --- a redirect of the responder's own signed request is not followed ---
start_on_hostile redirect || bail "responder on the hostile server (redirect) did not start"
fcgi_request GET "/v2/test/small/blobs/$BLOB" >"$T/redirect.out" 2>&1
check "redirect: the responder asked S3 for the blob" grep -q "^S3 HEAD /$BUCKET/$PREFIX/blobs/" "$HOSTILE_LOG"
is "$(grep -c '^TRAP' "$HOSTILE_LOG")" 0 "redirect: nothing reached the other host (no credentials sent there)"
stop_scenario redirect

# --- nginx's /_oci_s3/ location: S3 cannot send nginx elsewhere ---
start_on_hostile steer || bail "responder on the hostile server (steer) did not start"
start_nginx || bail "nginx did not start"
code=$(http_status "/v2/test/small/blobs/$BLOB")
check "steer: nginx fetched the blob by presigned URL" \
	grep -q "^S3 GET /$BUCKET/$PREFIX/blobs/.*X-Amz-Signature=" "$HOSTILE_LOG"
is "$(grep -c '^TRAP' "$HOSTILE_LOG")" 0 \
	"steer: S3's X-Accel-Redirect and X-Oci-Presigned-Url did not send nginx to another host"
isnt "$(cat "$T/body")" trap "steer: the client did not get the other host's answer (status $code)"
is "$(header Set-Cookie)" "" "steer: S3 sets no cookie for the registry's site"
stop nginx
stop_scenario steer

done_testing
