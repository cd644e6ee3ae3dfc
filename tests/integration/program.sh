#!/usr/bin/env bash
# program.sh - the program's command line: help and version, one-line errors
# with exit status 2 for bad options and configuration, serving FastCGI on
# fd 0 (spawn-fcgi) or on --listen, and a clean exit 0 on SIGTERM.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program spawn-fcgi cgi-fcgi
need_responder
CACHE=$T/cache
mkdir -p "$CACHE" "$T/run"

# run_prog ARGS...: run the program; sets STATUS, OUT (stdout), ERR (stderr).
run_prog() {
	timeout 20 "$OCI_REGISTRY" "$@" </dev/null >"$T/out" 2>"$T/err"
	STATUS=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}

# expect_usage_error DESC ERE ARGS...: exit 2 and one stderr line matching ERE.
expect_usage_error() {
	local desc=$1 re=$2
	shift 2
	run_prog "$@"
	is "$STATUS" 2 "$desc: exit status 2"
	is "$(wc -l <"$T/err")" 1 "$desc: exactly one line on stderr" || diag "stderr: $ERR"
	like "$ERR" "$re" "$desc: the message names the problem"
}

# --- help and version ---
run_prog --help
is "$STATUS" 0 "--help exits 0"
like "$OUT" 'filesystem' "--help describes the filesystem storage"
run_prog --version
is "$STATUS" 0 "--version exits 0"
like "$OUT" '^oci-registry .*[0-9]+\.[0-9]+' "--version prints name and version"

# --- bad command lines ---
expect_usage_error "unknown option" 'bogus' --bogus filesystem --root "$CACHE"
expect_usage_error "missing storage subcommand" '[Ss]torage|filesystem|subcommand' --workers 2
expect_usage_error "unknown storage" 'floppy' floppy --root "$CACHE"
expect_usage_error "filesystem without --root" 'root' filesystem
expect_usage_error "non-numeric --workers" 'workers|abc' --workers abc filesystem --root "$CACHE"
expect_usage_error "--max-fetches above --workers" 'max-fetches.*workers' \
	--workers 8 --max-fetches 9 filesystem --root "$CACHE"
expect_usage_error "--max-fetches-per-upstream above --max-fetches" 'per-upstream.*max-fetches' \
	--max-fetches 4 --max-fetches-per-upstream 5 filesystem --root "$CACHE"
expect_usage_error "--low-speed-limit of 0" 'LOW_SPEED_LIMIT|low-speed-limit' \
	--low-speed-limit 0 filesystem --root "$CACHE"
expect_usage_error "--front-cache-time that is no duration" "front-cache-time.*'forever'" \
	--front-cache-time forever filesystem --root "$CACHE"
FRONT_CACHE_TIME=-1 expect_usage_error "FRONT_CACHE_TIME that is no duration" "FRONT_CACHE_TIME.*'-1'" \
	filesystem --root "$CACHE"

# --- bad upstream configuration ---
expect_usage_error "missing config file" "$T/nonexistent.yaml" \
	--upstream-config-file "$T/nonexistent.yaml" filesystem --root "$CACHE"
expect_usage_error "config file is a directory" "$T/run" \
	--upstream-config-file "$T/run" filesystem --root "$CACHE"

printf '%s\n' '- namespace: reg.test' '  host: a: b' >"$T/bad-syntax.yaml"
expect_usage_error "invalid YAML" "$T/bad-syntax.yaml:2" \
	--upstream-config-file "$T/bad-syntax.yaml" filesystem --root "$CACHE"

printf '%s\n' '- namespace: reg.test' '  host: 127.0.0.1:5000' '  tls: maybe' >"$T/bad-bool.yaml"
expect_usage_error "invalid tls value" "$T/bad-bool.yaml:3" \
	--upstream-config-file "$T/bad-bool.yaml" filesystem --root "$CACHE"

printf '%s\n' '- namespace: reg.test' '  host: 127.0.0.1:5000' '  manifest_invalidation_time: soon' \
	>"$T/bad-time.yaml"
expect_usage_error "invalid duration" "$T/bad-time.yaml:3" \
	--upstream-config-file "$T/bad-time.yaml" filesystem --root "$CACHE"

# --- serving ---
# check_v2 DESC: GET /v2/ straight to $FCGI_SOCK answers 200 with {}.
check_v2() {
	local resp
	resp=$(fcgi_request GET /v2/ | tr -d '\r')
	like "$resp" '^(Status: 200|[A-Za-z-]+: )' "$1: answers GET /v2/ with headers"
	unlike_status "$resp" "$1"
	like "$resp" 'Docker-Distribution-API-Version: registry/2.0' "$1: API version header"
	is "$(printf '%s\n' "$resp" | sed '1,/^$/d' | tr -d ' \n')" '{}' "$1: body {}"
}

# unlike_status RESPONSE DESC: a Status header, if any, says 200.
unlike_status() {
	local status
	status=$(printf '%s\n' "$1" | sed -n 's/^Status: \([0-9]*\).*/\1/p;/^$/q')
	is "${status:-200}" 200 "$2: status 200"
}

# stop_checked NAME DESC: SIGTERM, exit 0 within 10 s, no sanitizer report.
stop_checked() {
	local start=$SECONDS status
	stop "$1" TERM 10
	status=$?
	is "$status" 0 "$2: SIGTERM -> exit 0"
	ok "$((SECONDS - start <= 5 ? 0 : 1))" "$2: ... within 5 s"
	check "$2: no sanitizer report" sanitizer_clean "${PROC_LOG[$1]}" ||
		diag_file "${PROC_LOG[$1]}" 40
}

FCGI_SOCK=$T/run/spawn.sock
# -n: spawn-fcgi binds the socket to fd 0 and execs the program, so the pid
# it runs under is the responder's.
spawn fd0 "$T/log/fd0.log" spawn-fcgi -n -s "$FCGI_SOCK" -- \
	"$OCI_REGISTRY" --default-namespace docker.io filesystem --root "$CACHE"
if check "spawn-fcgi: socket accepts" wait_ready fd0 20 unix_open "$FCGI_SOCK"; then
	check_v2 "FastCGI on fd 0"
	stop_checked fd0 "FastCGI on fd 0"
fi

FCGI_SOCK=$T/run/listen.sock
spawn listen_unix "$T/log/listen-unix.log" \
	"$OCI_REGISTRY" --listen "unix:$FCGI_SOCK" --workers 2 filesystem --root "$CACHE"
if check "--listen unix: socket accepts" wait_ready listen_unix 20 unix_open "$FCGI_SOCK"; then
	check_v2 "--listen unix"
	stop_checked listen_unix "--listen unix"
fi

PORT=$(free_ports 1)
FCGI_SOCK=127.0.0.1:$PORT
spawn listen_tcp "$T/log/listen-tcp.log" \
	"$OCI_REGISTRY" --listen "$FCGI_SOCK" filesystem --root "$CACHE"
if check "--listen tcp: port accepts" wait_ready listen_tcp 20 tcp_open "$PORT"; then
	check_v2 "--listen tcp"
	stop_checked listen_tcp "--listen tcp"
fi

check "cache tmp/ is empty" cache_tmp_empty
done_testing
