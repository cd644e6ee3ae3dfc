# containerd.sh - a private containerd (Debian's 1.6) for pulls through the
# mirror the way containerd does them: hosts.toml mirror, `?ns=` on every request.
# shellcheck shell=bash disable=SC2154 # top_srcdir, T, PYTHON: set by common.sh

# start_containerd: containerd with its own root, state and sockets under
# $T/containerd and the CRI plugin disabled (no kubelet here); sets CTR_SOCK.
start_containerd() {
	local d=$T/containerd
	mkdir -p "$d"
	CTR_SOCK=$d/containerd.sock
	cat >"$d/config.toml" <<-EOF
		version = 2
		root = "$d/root"
		state = "$d/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri"]
		[grpc]
		  address = "$CTR_SOCK"
		[ttrpc]
		  address = "$CTR_SOCK.ttrpc"
		[debug]
		  address = "$d/debug.sock"
	EOF
	spawn containerd "$T/log/containerd.log" containerd --config "$d/config.toml"
	wait_ready containerd 20 ctr_q version
}

# ctr_q ARGS...: ctr against the private containerd, output logged, time-limited.
ctr_q() {
	timeout 120 ctr --address "$CTR_SOCK" --namespace oci-test "$@" >>"$T/log/ctr.log" 2>&1
}

# ctr_pull REF: ctr pulls and unpacks REF through the mirror of $T/certs.d
# (write_hosts_dir); shows ctr's last words when it fails.
ctr_pull() {
	ctr_q images pull --hosts-dir "$T/certs.d" --snapshotter native "$1" || {
		diag_file "$T/log/ctr.log" 10
		return 1
	}
}

# ctr_digest REF: the digest containerd recorded for an image.
ctr_digest() {
	timeout 30 ctr --address "$CTR_SOCK" --namespace oci-test images ls 2>/dev/null |
		awk -v ref="$1" '$1 == ref { print $3 }'
}

# write_hosts_dir DIR REGISTRY MIRROR: certs.d/REGISTRY/hosts.toml that sends
# every pull of REGISTRY to http://MIRROR first. The fallback `server` is
# https://REGISTRY, which does not resolve here: a pull that bypasses the
# mirror fails loudly instead of passing.
write_hosts_dir() {
	mkdir -p "$1/$2"
	cat >"$1/$2/hosts.toml" <<-EOF
		server = "https://$2"

		[host."http://$3"]
		  capabilities = ["pull", "resolve"]
	EOF
}

# containerd_miss_then_hit LABEL: containerd pulls reg.test/test/ctrd:v1 (not
# cached: a miss through ?ns=) and reg.test/test/small:v1 (cached: no blob
# GET upstream) through $MIRROR; both digests must be the upstream's ($CTRD,
# $SMALL). Needs a started containerd and upstream.sh's upstream_blob_gets.
containerd_miss_then_hit() {
	local label=$1 gets
	write_hosts_dir "$T/certs.d" reg.test "$MIRROR"
	check "$label: ctr pulls reg.test/test/ctrd:v1 (miss through ?ns=)" ctr_pull reg.test/test/ctrd:v1
	is "$(ctr_digest reg.test/test/ctrd:v1)" "$CTRD" "$label: digest equals the upstream's"
	gets=$(upstream_blob_gets)
	check "$label: ctr pulls reg.test/test/small:v1 (cached)" ctr_pull reg.test/test/small:v1
	is "$(ctr_digest reg.test/test/small:v1)" "$SMALL" "$label: cached image digest equals the upstream's"
	is "$(upstream_blob_gets)" "$gets" "$label: the cached image made no blob GET upstream"
}
