#!/usr/bin/env bash
# bench.sh - bench/run works: on a tiny workload (--quick) it sets up every
# system, runs every workload against each and writes a well-formed JSON
# file. It measures nothing: benchmarks are not tests.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

need_program wrk docker-registry skopeo nginx curl openssl radosgw ceph-mon ceph-osd
need_responder

# The bench's own work directory goes under ours, removed with it.
TMPDIR=$T OCI_REGISTRY=$OCI_REGISTRY timeout 600 "$top_srcdir/bench/run" --quick \
	--json "$T/bench.json" >"$T/log/bench.out" 2>&1
status=$?
is "$status" 0 "bench/run --quick exits 0" || diag_file "$T/log/bench.out" 40

# json_check PYTHON-EXPRESSION DESCRIPTION: true when the expression, over
# the parsed file `d`, is true.
json_check() {
	"$PYTHON" - "$T/bench.json" "$1" <<-'EOF'
		import json, sys
		d = json.load(open(sys.argv[1]))
		sys.exit(0 if eval(sys.argv[2]) else 1)
	EOF
	ok "$?" "$2"
}

check "the JSON file parses" "$PYTHON" -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/bench.json"
systems='["oci-registry", "docker-registry", "limit"]'
num='lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)'
for w in manifest_tag manifest_digest blob_hit_1 blob_hit_4 cold_pull cold_concurrent memory; do
	json_check "all(s in d['workloads']['$w'] for s in $systems)" "$w: present for every system"
	json_check "all(len(d['workloads']['$w'][s]['runs']) == d['config']['repeat'] for s in $systems)" \
		"$w: one run per repeat for every system"
done
# The numbers each workload is about, as medians, for every system.
for spec in manifest_tag:rps manifest_tag:p50_ms manifest_tag:p99_ms \
	manifest_digest:rps manifest_digest:p99_ms blob_hit_1:mbps blob_hit_4:mbps \
	cold_pull:seconds cold_pull:upstream_bytes cold_concurrent:seconds \
	cold_concurrent:upstream_blob_bytes cold_concurrent:ttfb_first_ms cold_concurrent:ttfb_last_ms \
	memory:idle_rss memory:peak_rss; do
	w=${spec%%:*} k=${spec#*:}
	json_check "all(($num)(d['workloads']['$w'][s]['median'].get('$k')) and d['workloads']['$w'][s]['median']['$k'] > 0 for s in $systems)" \
		"$w: a positive median $k for every system"
done
json_check "($num)(d['workloads']['memory']['oci-registry']['median'].get('peak_responder_rss'))" \
	"memory: the responder's peak RSS"
# The push workloads: oci-registry and docker-registry as hosted registries; the pull back also from the limit.
for spec in push_image:seconds push_mono:mbps push_chunked:mbps pull_pushed:mbps; do
	w=${spec%%:*} k=${spec#*:} on='("oci-registry", "docker-registry")'
	[ "$w" != pull_pushed ] || on=$systems
	json_check "all(($num)(d['workloads']['$w'][s]['median'].get('$k')) and d['workloads']['$w'][s]['median']['$k'] > 0 and all(r.get('errors', 0) == 0 for r in d['workloads']['$w'][s]['runs']) for s in $on)" \
		"$w: a positive median $k and no error"
done
json_check "all(($num)(d['workloads'][w]['oci-registry']['median'].get('responder_hwm')) for w in ('push_mono', 'push_chunked'))" \
	"push: the responder's peak RSS"
json_check "all(r.get('errors', 0) == 0 for w in d['workloads'] if w not in ('memory', 'replicas') for s in ('oci-registry', 'limit') for r in d['workloads'][w][s]['runs'])" \
	"oci-registry and the limit answered every request of every run"
json_check "len(d['targets']) >= 10 and all(t['met'] in (True, False) for t in d['targets'].values())" \
	"every target is judged"
# Replicas on one S3 bucket: 3 of them, then 1 alone, once per repeat. A
# client's error is the bench's to report (a target), not this test's.
for s in replicas-3 replicas-1; do
	json_check "len(d['workloads']['replicas']['$s']['runs']) == d['config']['repeat']" "replicas: one run of $s per repeat"
	json_check "all(r['upstream_blob_gets'] == 1 and ($num)(r.get('sha256_ok')) and r['ttfb_last_ms'] > 0 for r in d['workloads']['replicas']['$s']['runs'])" \
		"replicas: $s: one upstream GET, the clients' sha256 checked, a time to first byte"
done
like "$(cat "$T/log/bench.out")" 'cold concurrent' "the table is printed"
like "$(cat "$T/log/bench.out")" 'replicas, 16 clients, one S3 bucket' "the replicas' table is printed"

done_testing
