# packages.sh - the Debian 12 packages that build, test and serve
# oci-registry, installed only when missing. Sourced by scripts/test and
# scripts/serve.
# shellcheck shell=bash disable=SC2034 # the lists are used by the sourcing scripts

BUILD_PACKAGES=(
	autoconf automake libtool pkg-config make gcc
	libfcgi-dev libcurl4-openssl-dev libssl-dev libyaml-dev libcjson-dev libcmocka-dev
)
SERVE_PACKAGES=(nginx-light spawn-fcgi)
TEST_PACKAGES=(
	nginx-light docker-registry skopeo containerd libfcgi-bin spawn-fcgi
	openssl curl python3 ca-certificates coreutils
	apache2-utils python3-cryptography
	lighttpd python3-yaml man-db systemd
	wrk
	python3-swift
	radosgw ceph-mon ceph-osd
	clang libclang-rt-14-dev llvm-14
	prometheus gnuplot-nox
	faketime
)
# The container tests (scripts/test --containers): podman with runc, the CNI
# plugins of its bridge network, catatonit for kube play's pause image,
# debootstrap for the base image, socat to reach the upstream from a
# container's network namespace. npm (for helm) is checked by its command.
CONTAINER_PACKAGES=(
	podman podman-compose runc containernetworking-plugins iptables catatonit
	fuse-overlayfs slirp4netns uidmap debootstrap socat iproute2 util-linux python3-yaml
)

# missing_packages PKG...: those not installed, one per line.
missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			echo "$p"
	done
}

# ensure_packages PKG...: apt-get install whatever is missing. Services that
# the packages would start (nginx on port 80, containerd, docker-registry)
# are held back with a policy-rc.d: the tests start their own instances.
ensure_packages() {
	local missing policy=/usr/sbin/policy-rc.d added_policy=
	mapfile -t missing < <(missing_packages "$@" | sort -u)
	[ "${#missing[@]}" -gt 0 ] || return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages (run as root to install): ${missing[*]}" >&2
		return 1
	fi
	echo "installing: ${missing[*]}"
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	local status=$?
	[ -z "$added_policy" ] || rm -f "$policy"
	return "$status"
}
