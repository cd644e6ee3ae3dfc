# prometheus.sh - a real Prometheus server (Debian's prometheus) scraping the
# mirror's /metrics on loopback, and reading counters from it and from
# /metrics itself.
# shellcheck shell=bash disable=SC2154 # T, PYTHON, TESTLIB: set by common.sh

# start_prometheus TARGET: Prometheus on a free loopback port with its own data
# directory, scraping http://TARGET/metrics every second; sets PROM_PORT.
start_prometheus() {
	local target=$1 dir=$T/prometheus
	PROM_PORT=$(free_ports 1)
	mkdir -p "$dir/data"
	cat >"$dir/prometheus.yml" <<-EOF
		global:
		  scrape_interval: 1s
		  scrape_timeout: 1s
		  evaluation_interval: 1s
		scrape_configs:
		  - job_name: oci-registry
		    metrics_path: /metrics
		    static_configs:
		      - targets: ['$target']
	EOF
	spawn prometheus "$T/log/prometheus.log" prometheus --config.file="$dir/prometheus.yml" \
		--storage.tsdb.path="$dir/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
		--storage.tsdb.retention.time=1h
	wait_ready prometheus 60 prom_ready
}

prom_ready() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready")" = 200 ]
}

# prom_value EXPR: the value of an instant query (the sum of its samples);
# empty when it has none.
prom_value() {
	curl -sS --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
		"$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
if r:
    v = sum(float(s["value"][1]) for s in r)
    print(int(v) if v == int(v) else v)'
}

# prom_at_least EXPR MIN: true when Prometheus has EXPR at MIN or more.
prom_at_least() {
	local v
	v=$(prom_value "$1") && [ -n "$v" ] && awk -v v="$v" -v m="$2" 'BEGIN { exit !(v >= m) }'
}

# scrape FILE: GET /metrics through the front server into FILE.
scrape() {
	mirror_curl /metrics -o "$1"
}

# series_sum FILE NAME [LABEL=VALUE...]: the sum of the samples of NAME in an
# exposition whose labels include every LABEL=VALUE given (0 when none).
series_sum() {
	local file=$1 name=$2
	shift 2
	awk -v name="$name" -v want="$*" '
		BEGIN { n = split(want, w, " ") }
		/^#/ { next }
		{
			series = $1; value = $2
			base = series; sub(/\{.*/, "", base)
			if (base != name) next
			for (i = 1; i <= n; i++) {
				split(w[i], kv, "=")
				if (index(series, kv[1] "=\"" kv[2] "\"") == 0) next
			}
			sum += value
		}
		END { printf "%d\n", sum }' "$file"
}
