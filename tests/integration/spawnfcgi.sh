#!/usr/bin/env bash
# spawnfcgi.sh - the responder started by spawn-fcgi with -F 2 (two processes
# serving one socket, spawn-fcgi itself gone) behind nginx with contrib/nginx:
# pulls work, the second is served from the cache, either process alone
# keeps serving, and both stop cleanly on SIGTERM.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"

need_program docker-registry skopeo nginx spawn-fcgi curl openssl
need_responder

start_upstream || bail "docker-registry upstream did not start"
SMALL=$(make_image small v1 --layers 3 --size 1048576) || bail "cannot push test/small:v1"
MULTI=$(make_image multi v1 --layers 2 --size 65536 --index) || bail "cannot push test/multi:v1"

CACHE=$T/cache
FCGI_SOCK=$T/run/fcgi.sock
RESPONDER_LOG=$T/log/responder.log
gone() { ! proc_alive "$1"; }

spawn_fcgi 2 --default-namespace reg.test --workers 8
is "$?" 0 "spawn-fcgi -F 2 starts the responder and exits"
mapfile -t PIDS < <(spawned_pids)
is "${#PIDS[@]}" 2 "spawn-fcgi wrote two pids" || diag_file "$T/log/spawn-fcgi.log"
[ "${#PIDS[@]}" -eq 2 ] || bail "no two responders to test"
check "both responders run" eval "proc_alive ${PIDS[0]} && proc_alive ${PIDS[1]}"
same_socket() {
	[ "$(readlink "/proc/${PIDS[0]}/fd/0")" = "$(readlink "/proc/${PIDS[1]}/fd/0")" ] &&
		[[ $(readlink "/proc/${PIDS[0]}/fd/0") == socket:* ]]
}
check "both serve the same listening socket on fd 0" same_socket
check "the socket accepts" wait_until 20 unix_open "$FCGI_SOCK"
start_nginx || bail "nginx did not start"
diag "upstream $UPSTREAM, mirror $MIRROR, responders ${PIDS[*]}, test dir $T"


docker_miss_then_hit "spawn-fcgi -F 2" docker
check "path-prefix style: pull the multi-arch index with --all (miss)" \
	skopeo_q copy --all --src-tls-verify=false "docker://$MIRROR/reg.test/test/multi:v1" "oci:$T/pulled/multi:v1"
is "$(json_get "$T/pulled/multi/index.json" manifests 0 digest 2>/dev/null)" "$MULTI" \
	"path-prefix style: index digest equals the upstream's"
check "cache tmp/ is empty after the pulls" cache_tmp_empty

# One of the two stops: the other goes on serving the same socket.
kill -TERM "${PIDS[0]}"
check "the first responder exits on SIGTERM" wait_until 15 gone "${PIDS[0]}"
check "the second responder still runs" proc_alive "${PIDS[1]}"
gets2=$(upstream_blob_gets)
# A stopping responder must leave the shared listening socket alone.
check "with one responder left: pull by digest (hit)" \
	pull_dir docker3 "docker://$MIRROR/test/small@$SMALL" --src-tls-verify=false
pulled_ok docker3 "$SMALL" "one responder left"
is "$(upstream_blob_gets)" "$gets2" "with one responder left: no blob GET upstream"

stop nginx
kill -TERM "${PIDS[1]}"
check "the second responder exits on SIGTERM" wait_until 15 gone "${PIDS[1]}"
is "$(grep -c 'serving fd 0 with 8 workers' "$RESPONDER_LOG")" 2 "both responders logged serving fd 0"
is "$(grep -Ec 'info (\[[0-9]+\] )?stopped$' "$RESPONDER_LOG")" 2 "both responders finished their requests and stopped"
check "responder log has no sanitizer report" sanitizer_clean "$RESPONDER_LOG" ||
	diag_file "$RESPONDER_LOG" 40

# --- a supervisor that keeps the socket (systemd's oci-registry.socket) ---
# It binds the socket once and starts the responder on it twice in a row, as
# systemd does on `systemctl restart oci-registry` (StandardInput=socket);
# each time a real FastCGI request must be answered, SIGTERM must give 0.
# shellcheck disable=SC2016
"$PYTHON" - "$T/run/held.sock" "$T/log/held.log" "$OCI_REGISTRY" --upstream-config-file "$T/upstream.yaml" \
	--default-namespace reg.test filesystem --root "$CACHE" >"$T/held.out" 2>&1 <<'PY'
import os, signal, socket, subprocess, sys, time
path, log, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(path)
sock.listen(64)
env = dict(os.environ, REQUEST_METHOD="GET", REQUEST_URI="/v2/", SERVER_SOFTWARE="nginx/1.22.1")
for n in (1, 2):
    with open(log, "ab") as err:
        p = subprocess.Popen(cmd, stdin=sock.fileno(), stdout=subprocess.DEVNULL, stderr=err)
    served = False
    deadline = time.time() + (20 if n == 1 else 10)
    while not served and time.time() < deadline and p.poll() is None:
        try:
            out = subprocess.run(["cgi-fcgi", "-bind", "-connect", path], env=env,
                                 capture_output=True, timeout=5).stdout
            served = b"Status: 200" in out
        except subprocess.TimeoutExpired:
            pass
        if not served:
            time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    print("round %d served=%s exit=%d" % (n, "yes" if served else "no", rc))
PY
diag_file "$T/held.out" 5
check "held socket: the first responder serves it" grep -q '^round 1 served=yes' "$T/held.out"
check "held socket: the first responder exits 0 on SIGTERM" grep -q '^round 1 .* exit=0$' "$T/held.out"
check "held socket: a responder started again on the same socket serves it" \
	grep -q '^round 2 served=yes' "$T/held.out"
check "held socket: the second responder exits 0 on SIGTERM" grep -q '^round 2 .* exit=0$' "$T/held.out"
check "held socket: responder log has no sanitizer report" sanitizer_clean "$T/log/held.log"
done_testing
