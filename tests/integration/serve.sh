#!/usr/bin/env bash
# serve.sh - scripts/serve as a newcomer runs it (as root), with the program
# of this build (OCI_REGISTRY): two instances from one checkout, on their own
# ports, caches and default namespaces, each answer from its own cache; a
# second instance on a taken address is refused; the leftovers of a killed
# instance do not block the next; the responder and the front server's
# workers run as the unprivileged user oci-registry; SIGTERM stops all.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

if [ "$(id -u)" -ne 0 ]; then
	TAP_DONE=1
	echo "1..0 # SKIP scripts/serve drops privileges only as root"
	exit 0
fi
need_program nginx curl setpriv flock htpasswd
need_responder

SERVE=$top_srcdir/scripts/serve
SERVE_USER=oci-registry
# The caches live in $T: let the unprivileged user traverse it.
chmod 0755 "$T"
mapfile -t PORTS < <(free_ports 4)
for p in "${PORTS[@]}"; do
	at_exit rm -rf "/run/oci-registry-serve/127.0.0.1_$p"
done

# seed_blob ROOT NAME: a blob of its own in the cache ROOT; prints its digest.
seed_blob() {
	local root=$1 name=$2 digest hex
	printf 'blob %s of %s\n' "$name" "$root" >"$T/$name"
	digest=$(sha256_of "$T/$name")
	hex=${digest#sha256:}
	mkdir -p "$root/blobs/sha256/${hex:0:2}" && cp "$T/$name" "$root/blobs/sha256/${hex:0:2}/$hex"
	echo "$digest"
}

# serve NAME PORT ARGS...: scripts/serve on 127.0.0.1:PORT, in the background.
serve() {
	local name=$1 port=$2
	shift 2
	spawn "$name" "$T/log/$name.log" "$SERVE" --listen "127.0.0.1:$port" --connect-timeout 2 "$@"
}

# serving NAME: scripts/serve says it serves.
serving() {
	wait_ready "$1" 60 grep -q 'is serving on' "${PROC_LOG[$1]}"
}

# refused NAME WHY: scripts/serve exited with status 2 and said WHY.
refused() {
	local status
	wait_until 60 eval "! running $1"
	stop "$1"
	status=$?
	is "$status" 2 "$1: refused with exit status 2" &&
		like "$(cat "${PROC_LOG[$1]}")" "$2" "$1: says why"
}

# blob PORT DIGEST: the body of a blob GET, or "HTTP <status>" when not 200.
blob() {
	local out=$T/got.$$ status
	status=$(curl -s -o "$out" -w '%{http_code}' --max-time 20 \
		"http://127.0.0.1:$1/v2/library/t/blobs/$2")
	if [ "$status" = 200 ]; then cat "$out"; else echo "HTTP $status"; fi
}

# tree PID: PID and its descendants, one per line.
tree() {
	local child
	echo "$1"
	for child in $(pgrep -P "$1"); do tree "$child"; done
}

# master_of PORT: the pid of the nginx master of the instance on PORT, which
# runs daemonized (known by its pid file).
master_of() {
	cat "/run/oci-registry-serve/127.0.0.1_$1/nginx.pid" 2>/dev/null
}

# instance NAME PORT: the processes of scripts/serve NAME on PORT: its tree
# and that of its nginx master.
instance() {
	local master
	tree "${PROC_PID[$1]}"
	master=$(master_of "$2") || return 0
	tree "$master"
}

# users_of PIDS...: "command:user" of each live process, sorted and unique.
users_of() {
	ps -o comm=,user= -p "$(echo "$@" | tr ' ' ,)" 2>/dev/null | awk '{ print $1 ":" $2 }' | sort -u
}

# all_gone PID...: none of them runs any more.
all_gone() {
	local pid
	for pid in "$@"; do ! proc_alive "$pid" || return 1; done
}

A=$T/cache-a B=$T/cache-b
DA=$(seed_blob "$A" a) DB=$(seed_blob "$B" b)

serve a "${PORTS[0]}" --root "$A" --default-namespace a.test
serving a || bail "scripts/serve a did not start"
serve b "${PORTS[1]}" --root "$B" --default-namespace b.test
check "a second instance from the same checkout starts on another port" serving b

is "$(blob "${PORTS[0]}" "$DA")" "$(cat "$T/a")" "instance a answers a blob from its own cache"
is "$(blob "${PORTS[1]}" "$DB")" "$(cat "$T/b")" "instance b answers a blob from its own cache"
like "$(blob "${PORTS[0]}" "$DB")" '^HTTP [45]' "instance a does not answer b's blob"

# The same address again, with another cache: refused, and a is untouched.
serve a2 "${PORTS[0]}" --root "$T/cache-a2"
refused a2 "another scripts/serve is running on 127\.0\.0\.1:${PORTS[0]}"
is "$(blob "${PORTS[0]}" "$DA")" "$(cat "$T/a")" "instance a still answers from its own cache"

# Who runs what: the masters as root, the rest as the unprivileged user.
mapfile -t A_PIDS < <(instance a "${PORTS[0]}")
A_USERS=$(users_of "${A_PIDS[@]}")
like "$A_USERS" "oci-registry:$SERVE_USER" "the responder runs as $SERVE_USER"
like "$A_USERS" "nginx:$SERVE_USER" "nginx's workers run as $SERVE_USER"
is "$A_USERS" "bash:root"$'\n'"nginx:$SERVE_USER"$'\n'"nginx:root"$'\n'"oci-registry:$SERVE_USER"$'\n'"tail:root" \
	"only scripts/serve, its watch of nginx's master (tail) and that master run as root"
isnt "$(awk '{ print $4 }' "/proc/$(master_of "${PORTS[0]}")/stat")" "${PROC_PID[a]}" "nginx's master runs daemonized, not as a child of scripts/serve"
is "$(stat -c %U "$A" "$A/blobs/sha256")" "$SERVE_USER"$'\n'"$SERVE_USER" "the cache belongs to $SERVE_USER"

# A cache the user cannot reach (like one under /root) is refused up front.
mkdir -m 0700 "$T/closed"
serve closed "${PORTS[2]}" --root "$T/closed/cache"
refused closed "user $SERVE_USER cannot reach $T/closed/cache"

# SIGTERM stops the instance and everything it started.
stop a TERM 20
is "$?" 0 "instance a exits 0 on SIGTERM"
check "nothing of instance a is left running (nginx's master included)" wait_until 10 all_gone "${A_PIDS[@]}"
like "$(cat "${PROC_LOG[a]}")" 'oci-registry stopped' "instance a says it stopped"

# --htpasswd: writes need a user of the file; a hosted namespace takes pushes.
htpasswd -B -b -c "$T/htpasswd" alice secret 2>/dev/null
printf '%s\n' '- namespace: hosted.test' '  hosted: true' >"$T/hosted.yaml"
serve p "${PORTS[0]}" --root "$A" --htpasswd "$T/htpasswd" --upstream-config-file "$T/hosted.yaml" \
	--default-namespace hosted.test
if check "--htpasswd starts" serving p; then
	is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X POST \
		"http://127.0.0.1:${PORTS[0]}/v2/org/app/blobs/uploads/")" 401 "--htpasswd: a push without a user gets 401"
	is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X POST -u alice:secret \
		"http://127.0.0.1:${PORTS[0]}/v2/org/app/blobs/uploads/")" 202 "--htpasswd: alice starts an upload"
fi
stop p TERM 20
is "$?" 0 "the --htpasswd instance exits 0 on SIGTERM"

# SIGKILL to every process of b leaves its socket, lock and pid file behind;
# the next instance on b's address starts anyway.
mapfile -t B_PIDS < <(instance b "${PORTS[1]}")
kill -KILL "${B_PIDS[@]}"
stop b
check "instance b is killed" wait_until 10 all_gone "${B_PIDS[@]}"
check "instance b left its socket behind" test -S "/run/oci-registry-serve/127.0.0.1_${PORTS[1]}/responder/fcgi.sock"
check "instance b left nginx's pid file behind" test -s "/run/oci-registry-serve/127.0.0.1_${PORTS[1]}/nginx.pid"
serve b2 "${PORTS[1]}" --root "$B" --default-namespace b.test
check "a new instance starts over a killed one's leftovers" serving b2
is "$(blob "${PORTS[1]}" "$DB")" "$(cat "$T/b")" "the new instance answers from its cache"
stop b2 TERM 20
is "$?" 0 "the new instance exits 0 on SIGTERM"

# lighttpd in front: its process drops to the unprivileged user too.
if command -v lighttpd >/dev/null; then
	serve l "${PORTS[3]}" --root "$A" --front lighttpd
	if check "--front lighttpd starts" serving l; then
		is "$(blob "${PORTS[3]}" "$DA")" "$(cat "$T/a")" "lighttpd sends a blob from the cache"
		mapfile -t L_PIDS < <(tree "${PROC_PID[l]}")
		like "$(users_of "${L_PIDS[@]}")" "lighttpd:$SERVE_USER" "lighttpd runs as $SERVE_USER"
		like "$(users_of "${L_PIDS[@]}")" "oci-registry:$SERVE_USER" "its responder runs as $SERVE_USER"
	fi
	stop l TERM 20
	is "$?" 0 "the lighttpd instance exits 0 on SIGTERM"
else
	skip "--front lighttpd" "lighttpd is not installed"
fi

for name in a b2 l p; do
	[ -n "${PROC_LOG[$name]:-}" ] || continue
	check "$name: no sanitizer report" sanitizer_clean "${PROC_LOG[$name]}" || diag_file "${PROC_LOG[$name]}"
done

done_testing
