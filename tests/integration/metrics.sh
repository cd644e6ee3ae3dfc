#!/usr/bin/env bash
# metrics.sh - GET /metrics through nginx with contrib/nginx: Prometheus text
# that promtool accepts, scraped by a real Prometheus server whose counters
# move as a pull through the mirror should move them (misses, then hits,
# upstream requests, bytes from the upstream and from the cache); request ids
# from nginx in answers and in the responder's outcome lines, joined with
# nginx's access log; /metrics cannot be used to make series; the Grafana
# dashboard asks only for series that exist; and two responders under
# spawn-fcgi -F 2 show one view.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/prometheus.sh
. "$TESTLIB/prometheus.sh"

need_program docker-registry skopeo nginx curl cgi-fcgi openssl promtool prometheus spawn-fcgi gnuplot
need_responder

start_upstream || bail "docker-registry upstream did not start"
SMALL=$(make_image small v1 --layers 3 --size 1048576) || bail "cannot push test/small:v1"
start_mirror --default-namespace reg.test --workers 8 || bail "mirror did not start"
diag "upstream $UPSTREAM, mirror $MIRROR, test dir $T"

# --- the exposition ---
is "$(http_status /metrics)" 200 "GET /metrics through nginx: 200"
is "$(header Content-Type)" "text/plain; version=0.0.4; charset=utf-8" "/metrics is text format 0.0.4"
cp "$T/body" "$T/metrics0.txt"
check "promtool check metrics accepts it" promtool check metrics <"$T/metrics0.txt" ||
	diag_file "$T/metrics0.txt" 30
like "$(grep '^oci_registry_build_info' "$T/metrics0.txt")" \
	'^oci_registry_build_info\{version="[^"]+",storage="filesystem"\} 1$' "build info: version and storage"
like "$(grep -c 'namespace="reg.test"' "$T/metrics0.txt")" '^[1-9]' "the configured namespace has series of its own"
is "$(header X-Cache-Status)" "" "/metrics is not kept by nginx's cache"

# untouched FILE: the sum of the series that nothing in this test moves.
untouched() {
	grep -E '^oci_registry_(evicted|cleanup|stale|singleflight|token|cache_size|cache_objects|cache_bound|s3)' "$1" |
		awk '{ s += $2 } END { print s + 0 }'
}
is "$(untouched "$T/metrics0.txt")" 0 "a new counters file starts from zero"

# --- bad input: no other path, no series from a request ---
is "$(http_status /metrics/x)" 404 "GET /metrics/x: 404"
is "$(http_status /metricsx)" 404 "GET /metricsx: 404"
is "$(http_status '/metrics?ns=evil.example')" 200 "GET /metrics?ns=evil.example: 200, the query ignored"
is "$(http_status '/v2/test/small/manifests/v1?ns=203.0.113.9')" 403 "GET with ?ns=203.0.113.9: 403"
scrape "$T/metrics1.txt"
is "$(grep -c 'evil\|203\.0\.113' "$T/metrics1.txt")" 0 "no series names what a client sent"
is "$(fcgi_request GET /metrics/../metrics | head_of /dev/stdin | sed -n 's/^Status: //p')" "404 Not Found" \
	"GET /metrics/../metrics straight to the responder: 404"

# --- request ids: nginx's, in answers and in the responder's lines ---
is "$(http_status /v2/)" 200 "GET /v2/: 200"
like "$(header X-Request-Id)" '^[0-9a-f]{32}$' "an answer of the responder carries nginx's request id"
FCGI_REQUEST_ID='a-b.c_1' fcgi_request GET /v2/ >"$T/fcgi-ok"
is "$(head_of "$T/fcgi-ok" | sed -n 's/^X-Request-Id: //p')" 'a-b.c_1' "a valid REQUEST_ID is echoed"
FCGI_REQUEST_ID='bad id"<x>' fcgi_request GET /v2/test/small/manifests/v@1 >"$T/fcgi-bad"
own=$(head_of "$T/fcgi-bad" | sed -n 's/^X-Request-Id: //p')
like "$own" '^[0-9a-f]{32}$' "an id with other characters is replaced by one of the responder's"
check "... not logged" eval "! grep -q 'bad id' '$RESPONDER_LOG'"
like "$(grep "request id=$own .*path=/v2/test/small/manifests/v@1 " "$RESPONDER_LOG")" 'status=4[0-9][0-9] ' \
	"the error is logged in one key=value line, with the id answered"
FCGI_REQUEST_ID=$(printf 'x%.0s' {1..65}) fcgi_request GET /v2/ >"$T/fcgi-long"
like "$(head_of "$T/fcgi-long" | sed -n 's/^X-Request-Id: //p')" '^[0-9a-f]{32}$' \
	"an id longer than 64 is replaced too"
fcgi_request GET /v2/ >"$T/fcgi-none"
other=$(head_of "$T/fcgi-none" | sed -n 's/^X-Request-Id: //p')
like "$other" '^[0-9a-f]{32}$' "a request without an id (lighttpd) gets one of the responder's"
isnt "$other" "$own" "... another one"

# --- a real Prometheus scrapes it; a pull moves the counters ---
start_prometheus "$MIRROR" || bail "prometheus did not start"
check "prometheus scrapes the mirror (up == 1)" wait_until 30 prom_at_least 'up{job="oci-registry"}' 1
check "prometheus has the build info" wait_until 10 prom_at_least oci_registry_build_info 1
pull_start=$(date +%s)
scrape "$T/before.txt"
miss0=$(series_sum "$T/before.txt" oci_registry_cache_misses_total kind=blob)
hit0=$(series_sum "$T/before.txt" oci_registry_cache_hits_total kind=blob)

docker_miss_then_hit nginx docker # a miss (3 layers + config), then a hit
scrape "$T/after.txt"
miss=$(series_sum "$T/after.txt" oci_registry_cache_misses_total kind=blob)
hit=$(series_sum "$T/after.txt" oci_registry_cache_hits_total kind=blob)
up=$(series_sum "$T/after.txt" oci_registry_upstream_requests_total namespace=reg.test method=GET status=200)
upbytes=$(series_sum "$T/after.txt" oci_registry_upstream_received_bytes_total namespace=reg.test)
served=$(series_sum "$T/after.txt" oci_registry_cache_served_bytes_total kind=blob)
like "$((miss - miss0))" '^([4-9]|[1-9][0-9]+)$' "the miss: 4 or more blob misses (3 layers, 1 config)"
like "$((hit - hit0))" '^([4-9]|[1-9][0-9]+)$' "the hit: 4 or more blob hits"
like "$up" '^([5-9]|[1-9][0-9]+)$' "upstream GETs of reg.test with 200: 5 or more (manifest and blobs)"
check "bytes from the upstream: 3 MiB or more" test "$upbytes" -ge $((3 * 1048576))
check "bytes from the cache: 3 MiB or more" test "$served" -ge $((3 * 1048576))
like "$(series_sum "$T/after.txt" oci_registry_upstream_request_duration_seconds_count namespace=reg.test)" \
	'^[1-9]' "upstream latency histogram has counts"
check "prometheus sees the misses" wait_until 20 prom_at_least 'oci_registry_cache_misses_total{kind="blob"}' "$miss"
check "prometheus sees the hits" wait_until 20 prom_at_least 'oci_registry_cache_hits_total{kind="blob"}' "$hit"
check "prometheus sees the upstream requests" wait_until 20 prom_at_least \
	'sum(oci_registry_upstream_requests_total{namespace="reg.test",status="200"})' "$up"
check "prometheus sees bytes from the upstream" wait_until 20 prom_at_least \
	'oci_registry_upstream_received_bytes_total{namespace="reg.test"}' "$upbytes"
check "prometheus sees bytes from the cache" wait_until 20 prom_at_least \
	'oci_registry_cache_served_bytes_total{kind="blob"}' "$served"
check "prometheus sees requests by method, route and status" wait_until 20 prom_at_least \
	'oci_registry_requests_total{method="GET",route="blob",status="200"}' 8
check "the hit ratio query of the dashboard has a value" wait_until 20 prom_at_least \
	'sum(rate(oci_registry_cache_hits_total[1m])) / (sum(rate(oci_registry_cache_hits_total[1m])) + sum(rate(oci_registry_cache_misses_total[1m])))' 0
check "bench/plot-metrics draws the pull from prometheus' query API" \
	"$top_srcdir/bench/plot-metrics" --prometheus "http://127.0.0.1:$PROM_PORT" --start "$pull_start" \
	--end "$(date +%s)" --step 1 --out "$T/plot.png"
is "$(head -c 4 "$T/plot.png" | tail -c 3)" PNG "... into a PNG"

# --- one outcome line per miss, joined with nginx's access log by id ---
miss_line=$(grep -m1 'request id=[0-9a-f]\{32\} method=GET route=blob .*cache=miss' "$RESPONDER_LOG")
like "$miss_line" 'status=200 cache=miss stale=0 upstream_requests=[1-9][0-9]* upstream_bytes=[1-9]' \
	"a fetched miss is logged: key=value, with its upstream requests and bytes"
id=$(sed -n 's/.*request id=\([0-9a-f]*\) .*/\1/p' <<<"$miss_line")
like "$(grep -c "request_id=$id" "$T/log/nginx-access.log")" '^1$' "its id is on one line of nginx's access log"
is "$(grep -c 'route=blob .*cache=hit' "$RESPONDER_LOG")" 0 "hits are not logged"

# --- a manifest kept by nginx says the id of the request it answers ---
accept=(-H 'Accept: application/vnd.oci.image.manifest.v1+json')
http_status /v2/test/small/manifests/v1 "${accept[@]}" >/dev/null
id1=$(header X-Request-Id)
is "$(http_status /v2/test/small/manifests/v1 "${accept[@]}")" 200 "a manifest again: 200"
is "$(header X-Cache-Status)" HIT "... from nginx's cache"
like "$(header X-Request-Id)" '^[0-9a-f]{32}$' "... with a request id"
isnt "$(header X-Request-Id)" "$id1" "... its own, not the one of the answer it keeps"
is "$(grep -ci '^X-Request-Id' "$T/headers")" 1 "... once"

# --- a Range of a hit counts its length; a HEAD counts none ---
LAYER=$(json_get "$T/pulled/docker/manifest.json" layers 0 digest)
is "$(http_status "/v2/test/small/blobs/$LAYER" -r 1000-1999)" 206 "Range on a cached blob: 206"
like "$(header X-Request-Id)" '^[0-9a-f]{32}$' "an answer by X-Accel-Redirect carries the request id"
is "$(grep -ci '^X-Request-Id' "$T/headers")" 1 "... once"
is "$(http_status "/v2/test/small/blobs/$LAYER" -I)" 200 "HEAD of a cached blob: 200"
scrape "$T/range.txt"
is "$(($(series_sum "$T/range.txt" oci_registry_cache_served_bytes_total kind=blob) - served))" 1000 \
	"bytes from the cache: the Range's 1000 bytes, none for the HEAD"
is "$(($(series_sum "$T/range.txt" oci_registry_cache_hits_total kind=blob) - hit))" 2 "two more blob hits"

# --- the Grafana dashboard asks only for what the responder exports ---
check "contrib/grafana dashboard: valid, and every query names an exported metric" \
	"$PYTHON" "$TESTLIB/dashboard.py" "$top_srcdir/contrib/grafana/oci-registry.json" "$T/after.txt"
stop prometheus
stop nginx
stop_responder_checked

# --- spawn-fcgi -F 2: two processes, one view ---
CACHE=$T/cache2
FCGI_SOCK=$T/run/fcgi2.sock
RESPONDER_LOG=$T/log/spawned.log
spawn_fcgi 2 --default-namespace reg.test --workers 2
mapfile -t PIDS < <(spawned_pids)
is "${#PIDS[@]}" 2 "spawn-fcgi -F 2 started two responders" || diag_file "$T/log/spawn-fcgi.log"
[ "${#PIDS[@]}" -eq 2 ] || bail "no two responders to test"
check "the socket accepts" wait_until 20 unix_open "$FCGI_SOCK"
# Each maps the counters file under its lock at start, then serves.
serving() { grep -q "\[$1\] .* serving " "$RESPONDER_LOG"; }
check "both responders got past the counters file and serve" \
	wait_until 20 eval "serving ${PIDS[0]} && serving ${PIDS[1]}"

# bad_request: one refused manifest request (a 4xx, no upstream), a connection of its own.
bad_request() {
	fcgi_request GET /v2/test/small/manifests/v@1 >/dev/null
}
# served_by PID: how many of those the process PID logged.
served_by() {
	grep -c "\[$1\] request id=[0-9a-f]\{32\} method=GET route=manifest .*status=4[0-9][0-9] " "$RESPONDER_LOG"
}
# Which process accepts a connection is up to the kernel and libfcgi (one of
# them may take all): whoever served them, every scrape counts all.
for ((sent = 0; sent < 12; sent++)); do
	bad_request || break
done
is "$sent" 12 "12 refused requests answered"
views=""
for i in 1 2 3 4 5 6; do
	fcgi_request GET /metrics | body_of /dev/stdin >"$T/view$i.txt"
	views+="$(series_sum "$T/view$i.txt" oci_registry_requests_total route=manifest) "
done
is "$views" "12 12 12 12 12 12 " "every scrape, whichever process answers it, counts all 12"
check "promtool accepts the shared view" promtool check metrics <"$T/view1.txt"
# The process that served most of them stops; the other, which served the rest
# (maybe none), answers the next scrape with all of them.
if [ "$(served_by "${PIDS[0]}")" -ge "$(served_by "${PIDS[1]}")" ]; then
	busy=${PIDS[0]} other=${PIDS[1]}
else
	busy=${PIDS[1]} other=${PIDS[0]}
fi
diag "served: $(served_by "$busy") by $busy, $(served_by "$other") by $other"
kill -TERM "$busy"
check "the busier responder exits" wait_until 15 eval "! proc_alive $busy"
fcgi_request GET /metrics | body_of /dev/stdin >"$T/view-other.txt"
is "$(series_sum "$T/view-other.txt" oci_registry_requests_total route=manifest)" 12 \
	"the other process, having served $(served_by "$other") of them, counts all 12"
is "$(find "$CACHE" -maxdepth 1 -name '_metrics*' | wc -l)" 1 "one counters file in the cache root"
check "the spawned responders' log has no sanitizer report" sanitizer_clean "$RESPONDER_LOG" ||
	diag_file "$RESPONDER_LOG" 40

# --- a counters file of another layout is replaced, not trusted ---
stop_spawned
printf 'OCIMETR\0garbage' >"$CACHE/_metrics"
RESPONDER_LOG=$T/log/responder3.log
FCGI_SOCK=$T/run/fcgi3.sock
spawn responder "$RESPONDER_LOG" "$OCI_REGISTRY" --listen "unix:$FCGI_SOCK" \
	--upstream-config-file "$T/upstream.yaml" --default-namespace reg.test filesystem --root "$CACHE"
wait_ready responder 20 unix_open "$FCGI_SOCK" || bail "responder did not start"
like "$(cat "$RESPONDER_LOG")" 'metrics file .*_metrics has another layout: replaced' "an old file is replaced"
fcgi_request GET /metrics | body_of /dev/stdin >"$T/view-new.txt"
check "promtool accepts the new file's view" promtool check metrics <"$T/view-new.txt"
is "$(series_sum "$T/view-new.txt" oci_registry_requests_total route=manifest)" 0 \
	"the new file starts from zero"
is "$(untouched "$T/view-new.txt")" 0 "... in every series"
stop_responder_checked

done_testing
