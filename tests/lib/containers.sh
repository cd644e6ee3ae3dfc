# containers.sh - podman for the container tests: its configuration, the
# network namespaces, a Debian 12 base image made with debootstrap (no image
# registry is reachable) and the images built on it from the source tree.
# shellcheck shell=bash disable=SC2154,SC2034 # top_srcdir, T, TESTLIB: set by common.sh; the names are for the tests

# What outlives a run, to be reused by the next: the base image (in podman's
# own store) and helm; CT_CACHE moves it.
CT_CACHE=${CT_CACHE:-/var/cache/oci-registry-tests}
CT_BASE=localhost/oci-registry-test/debian:bookworm
CT_IMAGE=localhost/oci-registry:test
CT_NGINX=localhost/oci-registry-test/nginx:test

# ct_podman_env: podman as root in this sandbox and in CI needs ulimits it
# may set and runc (crun cannot set RLIMIT_NPROC here); given by
# CONTAINERS_CONF, never by editing /etc.
ct_podman_env() {
	mkdir -p "$T/podman" || return 1
	printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' \
		'[engine]' 'runtime = "runc"' >"$T/podman/containers.conf"
	export CONTAINERS_CONF=$T/podman/containers.conf
}

# online COMMAND...: run COMMAND in the machine's network namespace (fd 7,
# opened before the test moved to its own): builds fetch Debian packages.
online() {
	nsenter --net=/proc/self/fd/7 "$@"
}

# debian_mirror: the Debian archive apt uses on this machine (the first
# deb.sources URI or sources.list line naming a suite of bookworm).
debian_mirror() {
	local url
	url=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
		awk '/^URIs:/ { u = $2 } /^Suites:.*bookworm( |$)/ && u { print u; exit }
			/^deb .* bookworm( |$)/ { print $2; exit }')
	echo "${url:-http://deb.debian.org/debian}"
}

# ct_base_image: CT_BASE, made once by debootstrap (minbase) and kept in
# podman's store; without apt's lists, caches and the docs, as debian:12-slim.
ct_base_image() {
	local root=$T/rootfs mirror
	podman image exists "$CT_BASE" && return 0
	mirror=$(debian_mirror)
	diag "debootstrap bookworm from $mirror"
	online debootstrap --variant=minbase bookworm "$root" "$mirror" >"$T/log/debootstrap.log" 2>&1 || {
		diag_file "$T/log/debootstrap.log"
		return 1
	}
	tar -C "$root" --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' \
		--exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' --exclude='./usr/share/locale/*' \
		-c . | podman import - "$CT_BASE" >"$T/log/import.log" 2>&1
	local status=$?
	rm -rf "$root"
	[ "$status" -eq 0 ] || diag_file "$T/log/import.log"
	return "$status"
}

# ct_build IMAGE CONTAINERFILE: build from the source tree on CT_BASE; the
# build's RUN steps use the machine's network (apt).
ct_build() {
	local image=$1 file=$2 log=$T/log/build-${1##*/}.log
	online podman build --network host --build-arg "BASE_IMAGE=$CT_BASE" -f "$file" -t "$image" \
		"$top_srcdir" >"$log" 2>&1 || {
		diag_file "$log" 30
		return 1
	}
}

# ct_size IMAGE: its size in bytes.
ct_size() {
	podman image inspect --format '{{.Size}}' "$1"
}

# ct_pid CONTAINER: the host pid of its first process (its namespaces).
ct_pid() {
	podman inspect --format '{{.State.Pid}}' "$1"
}

# ct_bridge NAME CONTAINER PORT: 127.0.0.1:PORT inside CONTAINER's network
# namespace forwards to 127.0.0.1:PORT of the test's, through a unix socket
# (which crosses namespaces): the responder reaches the upstream at the
# address its certificate names.
ct_bridge() {
	local name=$1 pid sock=$T/$1.sock
	pid=$(ct_pid "$2") || return 1
	spawn "$name-out" "$T/log/$name-out.log" socat "UNIX-LISTEN:$sock,fork" "TCP:127.0.0.1:$3"
	wait_ready "$name-out" 10 test -S "$sock" || return 1
	spawn "$name-in" "$T/log/$name-in.log" nsenter --net="/proc/$pid/ns/net" \
		socat "TCP-LISTEN:$3,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$sock"
	wait_ready "$name-in" 10 nsenter --net="/proc/$pid/ns/net" bash -c "exec 3<>/dev/tcp/127.0.0.1/$3" 2>/dev/null
}

# ct_logs CONTAINER: its state and the end of its output, as diagnostics.
ct_logs() {
	diag "$1: $(podman inspect --format '{{.State.Status}} exit {{.State.ExitCode}}' "$1" 2>&1)"
	podman logs --tail 20 "$1" 2>&1 | sed 's/^/#   /'
}

# ct_ip CONTAINER: its address on its (first) network.
ct_ip() {
	podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | cut -d' ' -f1
}
