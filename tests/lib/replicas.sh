# replicas.sh - replicas on one S3 bucket: responders of the program under
# test, replica I with its own TMPDIR (spool, usage and metrics files), run
# directory and logs under $T/rI, each behind its own nginx (contrib's
# configuration, s3.conf included), sharing nothing but the bucket that
# S3_ARGS names. Used by tests/integration/s3_replicas.sh and bench/run.
# shellcheck shell=bash disable=SC2154 # T, OCI_REGISTRY: set by common.sh

# Set by the user of this file: the storage subcommand with its options
# (s3 --host ... --bucket ...), and the responder's options before it.
S3_ARGS=()
REPLICA_ARGS=(--default-namespace reg.test)
# FRONT[I]: host:port of replica I's nginx.
declare -A FRONT=()
REPLICA_RUNS=0

# replica_up I CONFIG [WRAPPER...]: the responder of replica I with its own
# TMPDIR and run directory, the upstream config CONFIG, run by WRAPPER;
# its log is REPLICA_LOG, one per start.
replica_up() {
	local i=$1 config=$2 d=$T/r$1
	shift 2
	mkdir -p "$d/tmp" "$d/run" "$d/log"
	rm -f "$d/run/fcgi.sock"
	REPLICA_RUNS=$((REPLICA_RUNS + 1))
	REPLICA_LOG=$d/log/responder-$REPLICA_RUNS.log
	# Without RUNTIME_DIRECTORY, the metrics file is in TMPDIR: one per replica.
	spawn "r$i" "$REPLICA_LOG" env -u RUNTIME_DIRECTORY TMPDIR="$d/tmp" "$@" "$OCI_REGISTRY" \
		"${REPLICA_ARGS[@]}" --listen "unix:$d/run/fcgi.sock" --upstream-config-file "$config" \
		"${S3_ARGS[@]}"
	wait_ready "r$i" 30 unix_open "$d/run/fcgi.sock"
}

# replica_log I: every log line of replica I's responders so far.
replica_log() { cat "$T/r$1"/log/responder-*.log; }

# start_replica I CONFIG: replica I behind its own nginx (FRONT[I]).
start_replica() {
	replica_up "$1" "$2" || return 1
	NGINX_NAME=nginx$1 NGINX_RUN=$T/r$1/run NGINX_LOG=$T/r$1/log start_nginx || return 1
	FRONT[$1]=$MIRROR
}

# stop_replica I: replica I's nginx and responder.
stop_replica() {
	stop "nginx$1" TERM 10
	stop "r$1" TERM 15
	return 0
}

# pull I PATH OUT: GET PATH through replica I's front into OUT; OUT.code has
# the status, OUT.end the time it ended (seconds since 1970).
pull() {
	curl -sS --max-time 300 -o "$3" -w '%{http_code}' "http://${FRONT[$1]}$2" >"$3.code" 2>"$3.err"
	date +%s >"$3.end"
}

# key_of DIGEST: the blob's object key in the bucket.
key_of() { echo "blobs/sha256/${1:7:2}/${1:7}"; }
