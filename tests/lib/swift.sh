# swift.sh - a real S3 server for the tests: OpenStack Swift (Debian's
# python3-swift) with its s3api and tempauth middlewares, one node in $T,
# run by tests/lib/swift_runner.py. It verifies SigV4 signatures, presigned
# URLs and payload hashes, as AWS does.
# shellcheck shell=bash disable=SC2154 # T, PYTHON, TESTLIB: set by common.sh

S3_TEST_ACCESS_KEY=test:tester
S3_TEST_SECRET_KEY=testing

# start_swift: Swift on free ports (the same ones again on a restart), data
# in $T/swift; sets S3_ENDPOINT (http://127.0.0.1:PORT). Each run logs one
# line per request to $T/log/swift-N.log.
SWIFT_RUNS=0
start_swift() {
	mkdir -p "$T/swift"
	# shellcheck disable=SC2207 # four numbers
	[ -n "${SWIFT_PORTS:-}" ] || SWIFT_PORTS=($(free_ports 4))
	S3_ENDPOINT=http://127.0.0.1:${SWIFT_PORTS[0]}
	SWIFT_RUNS=$((SWIFT_RUNS + 1))
	spawn swift "$T/log/swift-$SWIFT_RUNS.log" "$PYTHON" "$TESTLIB/swift_runner.py" "$T/swift" \
		"${SWIFT_PORTS[@]}"
	wait_ready swift 60 swift_answers
}

swift_answers() {
	curl -s -o /dev/null --max-time 2 "$S3_ENDPOINT/" 2>/dev/null
}

# swift_log: the request lines of every run so far.
swift_log() {
	cat "$T"/log/swift-*.log
}

# stop_swift [SIGNAL]: stop it (TERM by default; KILL for a crash).
stop_swift() {
	stop swift "${1:-TERM}" 10
	return 0
}

# s3_cli ARGS...: tests/lib/s3.py against the test bucket's endpoint, with the test keys.
s3_cli() {
	S3_ACCESS_KEY=$S3_TEST_ACCESS_KEY S3_SECRET_KEY=$S3_TEST_SECRET_KEY \
		"$PYTHON" "$TESTLIB/s3.py" "$S3_ENDPOINT" "$@"
}
