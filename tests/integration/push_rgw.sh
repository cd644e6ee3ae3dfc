#!/usr/bin/env bash
# push_rgw.sh - uploads on S3 storage that several hosts share, on a server
# with conditional writes (a one-node radosgw, tests/lib/rgw.sh): two PATCHes
# at once on one session, as two replicas would take them, leave one writer
# (202) and one 416, never two clients told 202 for the same bytes; the
# session's lease is given back, so the upload goes on and closes whole.
# (push_s3.sh runs the whole protocol on Swift, which has no conditional
# writes: there the second PATCH still wins silently.)

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"
# shellcheck source=tests/lib/rgw.sh
. "$TESTLIB/rgw.sh"
# shellcheck source=tests/lib/hosted.sh
. "$TESTLIB/hosted.sh"

need_program nginx curl htpasswd radosgw ceph-mon ceph-osd
need_responder

S3_TEST_BUCKET=oci-push start_rgw || bail "radosgw did not start"
PUSH_STORAGE=s3 start_push_responder || bail "the responder did not start"
start_nginx || bail "nginx did not start"
diag "mirror $MIRROR, S3 (radosgw) $S3_ENDPOINT, test dir $T"
check "the responder found conditional writes" \
	wait_until 10 grep -q 'honours conditional writes' "$RESPONDER_LOG"

race_patches race
SESSION=$(session after) || bail "no session"
blob_file c 100000
expect "$(st PATCH "$SESSION" -T "$T/c" -H 'Content-Range: 0-99999')" 202 "" \
	"a PATCH after the race: the session leases are given back"
expect "$(st PUT "$(header Location)?digest=$(sha256_of "$T/c")")" 201 "" "and the upload closes"
is "$(s3_cli oci-push ls _leases/ | wc -l)" 0 "no lease is left in the bucket"

stop_responder_checked
done_testing
