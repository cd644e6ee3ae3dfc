# rgw.sh - a real S3 server with conditional writes for the tests: a
# throwaway one-node Ceph (Debian's ceph-mon, ceph-osd and radosgw, Ceph 16)
# in $T/rgw. One monitor, one OSD on memstore (objects in RAM, nothing on
# disk but the monitor's small store), no manager (I/O works without one),
# pools of one replica, radosgw with its beast frontend on 127.0.0.1 only.
# cephx is off: the cluster is reachable only through loopback ports, for
# the life of one test. Every path is under $T/rgw, given by a generated
# ceph.conf; nothing in /etc/ceph or /var/lib/ceph is read or written.
#
# Ports: the monitor and radosgw get ports from free_ports; the OSD binds
# its messengers in Ceph's own range (6800-7300), trying the next port
# when one is taken, as every OSD does.
# shellcheck shell=bash disable=SC2154 # T, PYTHON: set by common.sh

# The S3 user's keys (no colon: curl --user splits on it), the bucket that
# start_rgw creates, and the region to sign for (radosgw takes any region
# in the credential scope; its zonegroup is "default").
RGW_ACCESS_KEY=RGWTESTACCESSKEY0001
RGW_SECRET_KEY=rgwtestsecretkey000000000000000000000001
S3_TEST_BUCKET=${S3_TEST_BUCKET:-oci-cache}
S3_REGION=${S3_REGION:-us-east-1}

RGW_DIR=
RGW_CONF=
RGW_PORT=
RGW_RUNS=0

# rgw_write_conf DIR MON_PORT RGW_PORT: the cluster's ceph.conf.
rgw_write_conf() {
	local dir=$1 mon_port=$2 rgw_port=$3
	cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
# radosgw asks for a secure monitor session by default, which needs cephx.
ms mon client mode = crc
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
keyring = $dir/keyring
mon data = $dir/mon
mon data avail warn = 1
mon data avail crit = 0
# The monitor batches map changes once a second by default: every pool
# radosgw creates would wait for that.
paxos propose interval = 0.01
paxos min wait = 0.001
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = 805306368
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
# Virtual-hosted addressing: BUCKET.localhost:PORT.
rgw dns name = localhost
rgw thread pool size = 64
EOF
}

# start_rgw: a fresh cluster in $T/rgw with the S3 user and $S3_TEST_BUCKET;
# sets S3_ENDPOINT (http://127.0.0.1:PORT), S3_TEST_ACCESS_KEY and
# S3_TEST_SECRET_KEY. Stopped by stop_rgw, which runs at exit.
start_rgw() {
	local mon_port osd_uuid
	RGW_DIR=$T/rgw
	RGW_CONF=$RGW_DIR/ceph.conf
	rm -rf "$RGW_DIR"
	mkdir -p "$RGW_DIR"/{mon,osd,rgw,run,log}
	read -r mon_port RGW_PORT < <(free_ports 2 | tr '\n' ' ')
	rgw_write_conf "$RGW_DIR" "$mon_port" "$RGW_PORT"
	# The names tests/lib/swift.sh sets, for tests that can run on either.
	# shellcheck disable=SC2034 # read by the sourcing test
	S3_ENDPOINT=http://127.0.0.1:$RGW_PORT S3_TEST_ACCESS_KEY=$RGW_ACCESS_KEY \
		S3_TEST_SECRET_KEY=$RGW_SECRET_KEY
	at_exit stop_rgw

	monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" \
		--fsid "$(sed -n 's/^fsid = //p' "$RGW_CONF")" "$RGW_DIR/monmap" >/dev/null &&
		ceph-mon -c "$RGW_CONF" -i a --mkfs --monmap "$RGW_DIR/monmap" || return 1
	spawn ceph-mon "$RGW_DIR/log/mon.out" ceph-mon -c "$RGW_CONF" -i a -d
	wait_ready ceph-mon 30 tcp_open "$mon_port" || return 1
	# The OSD must exist in the map before it boots.
	osd_uuid=$(cat /proc/sys/kernel/random/uuid)
	rgw_ceph osd new "$osd_uuid" 0 >/dev/null &&
		ceph-osd -c "$RGW_CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" \
			>"$RGW_DIR/log/osd-mkfs.out" 2>&1 || return 1
	spawn ceph-osd "$RGW_DIR/log/osd.out" ceph-osd -c "$RGW_CONF" -i 0 -d
	wait_ready ceph-osd 60 rgw_osd_up || return 1
	rgw_start_gateway || return 1
	rgw_admin user create --uid=tester --display-name=tester \
		--access-key="$RGW_ACCESS_KEY" --secret-key="$RGW_SECRET_KEY" >/dev/null || return 1
	[ "$(rgw_curl -o /dev/null -w '%{http_code}' -X PUT "$S3_ENDPOINT/$S3_TEST_BUCKET")" = 200 ]
}

# rgw_ceph ARGS...: the ceph command against the test cluster, bounded.
rgw_ceph() {
	timeout 30 ceph -c "$RGW_CONF" --connect-timeout 20 "$@"
}

# rgw_admin ARGS...: radosgw-admin against the test cluster, bounded.
rgw_admin() {
	timeout 60 radosgw-admin -c "$RGW_CONF" "$@"
}

rgw_osd_up() {
	rgw_ceph osd dump 2>/dev/null | grep -q '^osd\.0 up'
}

rgw_answers() {
	curl -s -o /dev/null --max-time 2 "$S3_ENDPOINT/"
}

# rgw_start_gateway: (re)start radosgw alone on the same port, the cluster
# untouched; waits until it answers. The first start creates radosgw's
# pools. The daemons log to stderr (-d): run N of radosgw to
# $T/rgw/log/rgw-N.out, the others to mon.out and osd.out, shown when one
# fails to start.
rgw_start_gateway() {
	RGW_RUNS=$((RGW_RUNS + 1))
	spawn radosgw "$RGW_DIR/log/rgw-$RGW_RUNS.out" radosgw -c "$RGW_CONF" -n client.rgw -d
	wait_ready radosgw 90 rgw_answers
}

# rgw_stop_gateway [SIGNAL]: stop radosgw alone (TERM by default; KILL for
# a crash, STOP to hang it is up to the test): S3 is unavailable until
# rgw_start_gateway.
rgw_stop_gateway() {
	stop radosgw "${1:-TERM}" 10
	return 0
}

# stop_rgw: stop radosgw, the OSD and the monitor, in that order (each
# takes a few tenths of a second on TERM; stop kills one that hangs).
stop_rgw() {
	rgw_stop_gateway TERM
	stop ceph-osd TERM 10
	stop ceph-mon TERM 10
	return 0
}

# rgw_curl CURLARGS...: curl signing with SigV4 as the test user.
rgw_curl() {
	curl -s --max-time 30 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
		--user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

# rgw_log: radosgw's access lines of every run so far, as
# `... "METHOD /bucket/key?query HTTP/1.1" STATUS ...`.
rgw_log() {
	grep -h ' beast: ' "$RGW_DIR"/log/rgw-*.out
}

# rgw_pids: the pids of the cluster's processes still running, one a line.
rgw_pids() {
	local name
	for name in radosgw ceph-osd ceph-mon; do
		running "$name" && echo "${PROC_PID[$name]}"
	done
	return 0
}
