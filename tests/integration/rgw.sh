#!/usr/bin/env bash
# rgw.sh - what Debian's Ceph radosgw (tests/lib/rgw.sh) does with S3
# conditional writes, the facts that replicas coordinating through one
# bucket rely on, so that CI notices when Debian's Ceph changes them:
# PUT with If-None-Match: * creates once (one winner of a race), PUT with
# If-Match: ETAG replaces only that version (the ETag unquoted), while
# CompleteMultipartUpload and DELETE ignore the conditions; every answer
# has a Date; path-style and virtual-hosted addressing, ListObjectsV2
# pages, UploadPartCopy and ListMultipartUploads work; and the cluster
# leaves no process behind.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/rgw.sh
. "$TESTLIB/rgw.sh"

need_program ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph curl

started=$SECONDS
start_rgw || bail "radosgw did not start"
diag "one-node Ceph up in $((SECONDS - started)) s, S3 $S3_ENDPOINT, test dir $T"
B=$S3_ENDPOINT/$S3_TEST_BUCKET

# req CURLARGS...: a signed request; prints the status, keeps the headers
# in $T/hdr and the body in $T/body.
req() {
	rgw_curl -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@"
}

# etag_of KEY: the object's ETag without its quotes.
etag_of() {
	rgw_curl -I "$B/$1" | tr -d '\r' | sed -n 's/^etag: "\(.*\)"$/\1/Ip'
}

# error_code: the <Code> of the last error body.
error_code() {
	sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p' "$T/body"
}

# has_date: the last answer carried a Date header.
has_date() {
	grep -qi '^date: .* GMT' "$T/hdr"
}

# race N CURLARGS...: N identical requests at once; prints their statuses,
# keeps their headers in $T/race-I.hdr.
race() {
	local n=$1 i pids=()
	shift
	for ((i = 0; i < n; i++)); do
		rgw_curl -o /dev/null -D "$T/race-$i.hdr" -w '%{http_code}\n' "$@" &
		pids+=($!)
	done
	wait "${pids[@]}" # these alone: the cluster's daemons are children too
}

# --- If-None-Match: * on PUT: create only ---
is "$(req -X PUT -H 'If-None-Match: *' --data-binary v1 "$B/lease")" 200 \
	"PUT If-None-Match: * of a new object: 200"
has_date
ok $? "the 200 has a Date header"
is "$(req -X PUT -H 'If-None-Match: *' --data-binary v2 "$B/lease")" 412 \
	"PUT If-None-Match: * of an existing object: 412"
is "$(error_code)" PreconditionFailed "the 412's error code is PreconditionFailed"
has_date
ok $? "the 412 has a Date header"
is "$(rgw_curl "$B/lease")" v1 "the refused PUT left the object alone"

for round in 1 2 3; do
	statuses=$(race 8 -X PUT -H 'If-None-Match: *' --data-binary "r$round" "$B/race$round" |
		sort | uniq -c | tr -s ' ' | paste -sd,)
	is "$statuses" " 1 200, 7 412" "8 racing If-None-Match: * creates, round $round: one 200, seven 412"
done

# --- If-Match: ETAG on PUT: replace only that version ---
v1=$(etag_of lease)
is "$(req -X PUT -H "If-Match: \"$v1\"" --data-binary v2 "$B/lease")" 412 \
	"PUT If-Match with the current ETag quoted (as RFC 7232 writes it): 412 all the same"
is "$(req -X PUT -H "If-Match: $v1" --data-binary v2 "$B/lease")" 200 \
	"PUT If-Match with the current ETag unquoted: 200"
is "$(rgw_curl "$B/lease")" v2 "the object was replaced"
is "$(req -X PUT -H "If-Match: $v1" --data-binary v3 "$B/lease")" 412 \
	"PUT If-Match with a stale ETag: 412"
is "$(error_code)" PreconditionFailed "the 412's error code is PreconditionFailed"
is "$(req -X PUT -H "If-Match: $v1" --data-binary v1 "$B/missing")" 412 \
	"PUT If-Match of a missing object: 412 (not 404)"
is "$(req -X PUT -H 'If-Match: *' --data-binary v1 "$B/missing")" 412 \
	"PUT If-Match: * of a missing object: 412"
is "$(req -X PUT -H 'If-Match: *' --data-binary v3 "$B/lease")" 200 \
	"PUT If-Match: * of an existing object: 200"
v3=$(etag_of lease)
is "$(req -X PUT -H "If-Match: ${v3}trailing" --data-binary v4 "$B/lease")" 200 \
	"PUT If-Match compares only the ETag's length: a value that starts with it matches"

for round in 1 2 3; do
	tag=$(etag_of lease)
	statuses=$(race 8 -X PUT -H "If-Match: $tag" --data-binary "m$round" "$B/lease" | sort)
	is "$(grep -c '^200$' <<<"$statuses")" 1 "8 racing If-Match renewals, round $round: one 200"
	like "$(grep -v '^200$' <<<"$statuses" | sort -u | paste -sd,)" '^(412|500)(,(412|500))?$' \
		"the losers get 412, or 500 UnknownError when they lost inside the OSD"
	is "$(grep -Li '^date: .* GMT' "$T"/race-*.hdr)" "" "every answer of the race has a Date header"
done

# --- CompleteMultipartUpload: the conditions are ignored ---
# multipart KEY BODY HEADERS...: a one-part upload completed with HEADERS; prints the status.
multipart() {
	local key=$1 body=$2 id etag
	shift 2
	id=$(rgw_curl -X POST "$B/$key?uploads=" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p')
	etag=$(rgw_curl -D - -o /dev/null -X PUT --data-binary "$body" \
		"$B/$key?partNumber=1&uploadId=$id" | tr -d '\r' | sed -n 's/^etag: //Ip')
	req -X POST "$@" --data-binary \
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$etag</ETag></Part></CompleteMultipartUpload>" \
		"$B/$key?uploadId=$id"
}
is "$(multipart mp one -H 'If-None-Match: *')" 200 "CompleteMultipartUpload If-None-Match: * of a new object: 200"
is "$(multipart mp two -H 'If-None-Match: *')" 200 \
	"CompleteMultipartUpload If-None-Match: * of an existing object: 200 (ignored)"
is "$(rgw_curl "$B/mp")" two "the object was replaced"
is "$(multipart mp three -H 'If-Match: 0123')" 200 "CompleteMultipartUpload If-Match with a wrong ETag: 200 (ignored)"
like "$(cat "$T/body")" '<ETag></ETag>' "CompleteMultipartUpload answers with an empty ETag element"
like "$(etag_of mp)" '^[0-9a-f]{32}-1$' "HEAD gives the multipart ETag"

# --- DELETE: If-Match is ignored ---
is "$(req -X DELETE -H 'If-Match: 0123' "$B/mp")" 204 "DELETE If-Match with a wrong ETag: 204 (ignored)"
is "$(req -I "$B/mp")" 404 "the object is gone"
has_date
ok $? "the 404 has a Date header"

# --- addressing, listing, copies, uploads ---
is "$(rgw_curl --connect-to "$S3_TEST_BUCKET.localhost:$RGW_PORT:127.0.0.1:$RGW_PORT" \
	"http://$S3_TEST_BUCKET.localhost:$RGW_PORT/lease")" "$(rgw_curl "$B/lease")" \
	"virtual-hosted addressing (BUCKET.localhost) reads what path-style wrote"

is "$(S3_REGION=eu-west-1 rgw_curl "$B/lease")" "$(rgw_curl "$B/lease")" \
	"a request signed for another region is accepted too"
is "$(req -X PUT "$B")" 200 "creating the user's own bucket again: 200"

for i in 1 2 3 4 5; do rgw_curl -o /dev/null -X PUT --data-binary "$i" "$B/page/$i"; done
keys='' token='' pages=0
while :; do
	# curl signs the query as given: keep it sorted.
	xml=$(rgw_curl "$B?${token:+continuation-token=$token&}list-type=2&max-keys=2&prefix=page%2F")
	pages=$((pages + 1))
	keys+=$(grep -o '<Key>[^<]*</Key>' <<<"$xml" | sed 's:<Key>\(.*\)</Key>:\1 :' | tr -d '\n')
	token=$(sed -n 's:.*<NextContinuationToken>\([^<]*\)<.*:\1:p' <<<"$xml")
	if [ -z "$token" ] || [ "$pages" -ge 10 ]; then break; fi
	token=$("$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$token")
done
is "$keys|$pages" "page/1 page/2 page/3 page/4 page/5 |3" \
	"ListObjectsV2 with max-keys=2 pages through five keys with continuation tokens"

id=$(rgw_curl -X POST "$B/copy?uploads=" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p')
is "$(req -X PUT --data-binary "" -H "x-amz-copy-source: /$S3_TEST_BUCKET/lease" \
	"$B/copy?partNumber=1&uploadId=$id")" 200 \
	"UploadPartCopy (with Content-Length: 0; radosgw answers 411 without one): 200"
like "$(cat "$T/body")" '<CopyPartResult.*<ETag>' "UploadPartCopy answers with a CopyPartResult"
like "$(rgw_curl "$B?uploads=")" "<Key>copy</Key><UploadId>$id</UploadId>" \
	"ListMultipartUploads lists the open upload"
is "$(req -X DELETE "$B/copy?uploadId=$id")" 204 "AbortMultipartUpload: 204"

# --- outage: radosgw alone stops and comes back ---
rgw_stop_gateway
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$S3_ENDPOINT/")" 000 "with the gateway stopped, S3 does not answer"
check "the gateway comes back on the same port" rgw_start_gateway
is "$(rgw_curl "$B/race1" | head -c 1)" r "objects written before the outage are still there"

# --- nothing left running ---
mapfile -t pids < <(rgw_pids)
is "${#pids[@]}" 3 "radosgw, the OSD and the monitor were running"
# listening_addrs: the local addresses the cluster's processes listen on.
listening_addrs() {
	local pid
	for pid in "${pids[@]}"; do
		ss -ltnpH | awk -v p="pid=$pid," 'index($0, p) { print $4 }'
	done
}
if command -v ss >/dev/null; then
	addrs=$(listening_addrs)
	like "$addrs" '127\.0\.0\.1:' "the cluster listens ($(wc -l <<<"$addrs") sockets)"
	is "$(grep -v '^127\.0\.0\.1:' <<<"$addrs")" "" "... on 127.0.0.1 only"
else
	skip "the cluster listens on 127.0.0.1 only" "ss (iproute2) is not installed"
fi
stop_rgw
gone() {
	local pid
	for pid in "${pids[@]}"; do ! proc_alive "$pid" || return 1; done
	! pgrep -f -- "-c $RGW_CONF" >/dev/null
}
check "stop_rgw leaves no process of the cluster" gone

done_testing
