# hosted.sh - a hosted namespace behind nginx with HTTP Basic on writes
# (contrib/nginx/push-auth.conf, an htpasswd -B file with alice:secret), and
# the helpers of the tests that push to it (push.sh, push_big.sh).
# shellcheck shell=bash disable=SC2154,SC2034 # T, PYTHON: set by common.sh; the rest is for mirror.sh

# No upstream is ever asked: reg.test (a dynamic, mirrored namespace) only refuses writes.
htpasswd -B -b -c "$T/htpasswd" alice secret 2>/dev/null || bail "htpasswd failed"
EXTRA_UPSTREAMS=$(printf '%s\n' '- namespace: hosted.test' '  hosted: true' '  delete: true')
PUSH_AUTH=1
CREDS=(-u alice:secret)

# start_push_responder: the responder on filesystem storage, or on S3 with PUSH_STORAGE=s3.
start_push_responder() {
	local opts=(--default-namespace hosted.test --workers 4)
	if [ "${PUSH_STORAGE:-}" != s3 ]; then
		start_responder "${opts[@]}"
		return
	fi
	CACHE=$T/unused-cache FCGI_SOCK=$T/run/fcgi.sock RESPONDER_LOG=$T/log/responder.log
	mkdir -p "$T/run"
	write_upstream_config "$T/upstream.yaml"
	spawn responder "$RESPONDER_LOG" env S3_SECRET_KEY="$S3_TEST_SECRET_KEY" "$OCI_REGISTRY" \
		--listen "unix:$FCGI_SOCK" --upstream-config-file "$T/upstream.yaml" "${opts[@]}" \
		s3 --host "$S3_ENDPOINT" --bucket oci-push --region us-east-1 \
		--access-key "$S3_TEST_ACCESS_KEY" --path-style
	wait_ready responder 30 unix_open "$FCGI_SOCK"
}

# st METHOD PATH [curl options]: the status of a write as alice.
st() {
	local method=$1 path=$2
	shift 2
	http_status "$path" -X "$method" "${CREDS[@]}" "$@"
}

error_code() {
	json_get "$T/body" errors 0 code 2>/dev/null
}

# expect STATUS CODE WHAT: the last answer's status (given) and error code.
expect() {
	is "$1" "$2" "$4: status $2"
	[ -z "$3" ] || is "$(error_code)" "$3" "$4: error code $3"
}

# blob_file NAME BYTES: random content in $T/NAME.
blob_file() {
	head -c "$2" /dev/urandom >"$T/$1"
}

# session REPO: a new upload session of myorg/REPO; prints its Location.
session() {
	[ "$(st POST "/v2/myorg/$1/blobs/uploads/")" = 202 ] || return 1
	header Location
}

# race_patches REPO: two PATCHes of 8 MiB at once on one session of
# myorg/REPO: one wins (202), the other gets 416, and the blob the session
# closes to is the winner's chunk, whole.
race_patches() {
	local f winner racers=() session
	blob_file a $((8 << 20))
	blob_file b $((8 << 20))
	session=$(session "$1") || bail "no session"
	# Slowed down so that they overlap: each takes about two seconds.
	for f in a b; do
		curl -sS --max-time 60 -o /dev/null -w '%{http_code}\n' "${CREDS[@]}" -X PATCH -T "$T/$f" \
			-H "Content-Range: 0-$(((8 << 20) - 1))" --limit-rate 4M "http://$MIRROR$session" \
			>"$T/race.$f" &
		racers+=($!)
	done
	wait "${racers[@]}"
	is "$(cat "$T/race.a" "$T/race.b" | sort | tr '\n' ' ')" "202 416 " "one PATCH wins, the other gets 416"
	expect "$(http_status "$session")" 204 "" "GET of the raced session"
	is "$(header Range)" "0-$(((8 << 20) - 1))" "it holds one chunk"
	winner=a
	[ "$(cat "$T/race.a")" = 202 ] || winner=b
	expect "$(st PUT "$session?digest=$(sha256_of "$T/$winner")")" 201 "" "the winner's bytes close it"
	is "$(http_status "/v2/myorg/$1/blobs/$(sha256_of "$T/$winner")")" 200 "GET of the raced blob"
	check "it is the winner's chunk, whole" cmp -s "$T/body" "$T/$winner"
}
