# s3server.sh - the S3 server of an S3 integration test: Swift's s3api
# (tests/lib/swift.sh) by default, a one-node Ceph radosgw (tests/lib/rgw.sh)
# with OCI_TEST_S3=rgw. Both set S3_ENDPOINT, S3_TEST_ACCESS_KEY and
# S3_TEST_SECRET_KEY; s3_cli (swift.sh) works on either.
# shellcheck shell=bash disable=SC2154,SC2034 # TESTLIB: set by common.sh; S3_PROC: read by the test

# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"
# shellcheck source=tests/lib/rgw.sh
. "$TESTLIB/rgw.sh"

# start_s3: start the server, or start it again after stop_s3 with what it
# stored (radosgw alone restarts; the Ceph cluster under it stays up).
# stop_s3 [SIGNAL]: stop it (TERM; KILL for a crash).
# s3_log: its request lines, `"METHOD /bucket/key?query HTTP/1.1"` in each.
# S3_PROC: its name for the proc.sh functions (PROC_PID, running, stop).
case ${OCI_TEST_S3:-swift} in
rgw)
	S3_PROC=radosgw
	start_s3() {
		if [ -n "$RGW_DIR" ]; then rgw_start_gateway; else start_rgw; fi
	}
	stop_s3() { rgw_stop_gateway "$@"; }
	s3_log() { rgw_log; }
	;;
swift)
	S3_PROC=swift
	start_s3() { start_swift; }
	stop_s3() { stop_swift "$@"; }
	s3_log() { swift_log; }
	;;
*)
	bail "OCI_TEST_S3 is swift or rgw, not '$OCI_TEST_S3'"
	;;
esac
