# common.sh - sourced first by every integration test.
#
# Sets up: TAP output, process bookkeeping, a private state directory $T
# (removed at exit), a private HOME (skopeo reads registries.conf from it),
# and the paths of the source tree, the build tree and the program.
# shellcheck shell=bash

set -u -o pipefail

TESTLIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# automake exports these; running a test by hand from a build tree works too.
top_srcdir=${top_srcdir:-$(cd "$TESTLIB/../.." && pwd)}
top_builddir=${top_builddir:-$PWD}
OCI_REGISTRY=${OCI_REGISTRY:-$top_builddir/oci-registry}
# Debian's interpreter: others on PATH may lack the standard setup.
PYTHON=${PYTHON:-/usr/bin/python3}
export top_srcdir top_builddir OCI_REGISTRY PYTHON

# shellcheck source=tests/lib/tap.sh
. "$TESTLIB/tap.sh"
# shellcheck source=tests/lib/proc.sh
. "$TESTLIB/proc.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/oci-test.XXXXXX") || {
	echo "Bail out! cannot create a temporary directory"
	exit 1
}
export HOME=$T/home XDG_RUNTIME_DIR=$T/xdg XDG_CONFIG_HOME=$T/home/.config
# Where responders on S3 storage keep their shared counters (as systemd's
# RuntimeDirectory= would say): in the test's directory, not /tmp.
export RUNTIME_DIRECTORY=$T/runtime
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$RUNTIME_DIRECTORY" "$T/log"
# curl and skopeo must reach 127.0.0.1 directly whatever the CI's proxy says.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*'

# Cleanups run at exit in reverse order of registration.
EXIT_HOOKS=()
at_exit() { EXIT_HOOKS+=("$*"); }

on_exit() {
	local status=$? i
	trap - EXIT INT TERM
	for ((i = ${#EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
		eval "${EXIT_HOOKS[$i]}" || true
	done
	stop_all
	tap_exit_check "$status"
	if [ -n "${KEEP_TEST_DIR:-}" ]; then
		echo "# test directory kept: $T"
	else
		rm -rf "$T"
	fi
	exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# need_program NAME...: bail out when a program the test drives is missing.
need_program() {
	local p
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || bail "$p is not installed (scripts/test installs it)"
	done
}

# need_responder: the program under test must have been built.
need_responder() {
	[ -x "$OCI_REGISTRY" ] || bail "$OCI_REGISTRY not built"
}

# free_ports N: N free TCP ports, one per line.
free_ports() {
	"$PYTHON" "$TESTLIB/util.py" freeport "$1"
}

# sha256_of FILE: "sha256:<hex>" of a file.
sha256_of() {
	printf 'sha256:%s\n' "$(sha256sum "$1" | cut -d' ' -f1)"
}

# json_get FILE|- KEY...: a value out of JSON.
json_get() {
	"$PYTHON" "$TESTLIB/util.py" json "$@"
}

# sanitizer_clean LOG: no ASan/LSan/UBSan report in a log file.
sanitizer_clean() {
	! grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer' "$1"
}
