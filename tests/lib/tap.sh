# tap.sh - Test Anything Protocol output for the integration tests.
#
# Sourced by tests/lib/common.sh. The plan ("1..N") is printed at the end by
# done_testing, so a script that dies half way leaves no plan and automake's
# tap-driver.sh reports it as an ERROR instead of a pass.
# shellcheck shell=bash

TAP_COUNT=0
TAP_FAILED=0
TAP_DONE=0

# ok STATUS DESCRIPTION: one test point; STATUS 0 passes (pass "$?" from a command).
ok() {
	local status=$1 desc=$2
	TAP_COUNT=$((TAP_COUNT + 1))
	if [ "$status" -eq 0 ] 2>/dev/null; then
		printf 'ok %d - %s\n' "$TAP_COUNT" "$desc"
	else
		TAP_FAILED=$((TAP_FAILED + 1))
		printf 'not ok %d - %s\n' "$TAP_COUNT" "$desc"
	fi
	[ "$status" -eq 0 ] 2>/dev/null
}

# check DESCRIPTION COMMAND...: runs the command; its exit status is the result.
check() {
	local desc=$1
	shift
	"$@"
	ok "$?" "$desc"
}

# is GOT WANT DESCRIPTION: string equality, showing both sides on failure.
is() {
	local got=$1 want=$2 desc=$3
	[ "$got" = "$want" ]
	ok "$?" "$desc" || diag "got '$got', want '$want'"
}

# isnt GOT UNWANTED DESCRIPTION
isnt() {
	[ "$1" != "$2" ]
	ok "$?" "$3" || diag "got '$1', which it must not be"
}

# like GOT ERE DESCRIPTION: extended regular expression match.
like() {
	local got=$1 re=$2 desc=$3
	# A here-string, not a pipe: grep -q stops reading at the first match,
	# and under pipefail the writer's SIGPIPE would fail the test.
	grep -Eq -- "$re" <<<"$got"
	ok "$?" "$desc" || diag "got '$(printf '%s' "$got" | head -c 500)', want a match of /$re/"
}

# skip DESCRIPTION REASON: a test point that could not run (counted as SKIP).
skip() {
	TAP_COUNT=$((TAP_COUNT + 1))
	printf 'ok %d - %s # SKIP %s\n' "$TAP_COUNT" "$1" "$2"
}

# diag MESSAGE...: a comment line, shown in the test's .log file.
diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

# diag_file FILE [LINES]: the tail of a log file as diagnostics.
diag_file() {
	[ -r "$1" ] || return 0
	diag "--- last ${2:-20} lines of $1:"
	tail -n "${2:-20}" "$1" | sed 's/^/#   /'
}

# bail REASON: setup failed; the whole script is an ERROR, never a pass.
bail() {
	printf 'Bail out! %s\n' "$*"
	TAP_DONE=1
	exit 1
}

# done_testing: print the plan. Returns 0 even when tests failed: the
# "not ok" lines report those, and tap-driver.sh would count a non-zero exit
# as one more ERROR. Only an unfinished script (bail, crash) exits non-zero.
done_testing() {
	TAP_DONE=1
	if [ "$TAP_COUNT" -eq 0 ]; then
		bail "no tests ran"
	fi
	printf '1..%d\n' "$TAP_COUNT"
	[ "$TAP_FAILED" -eq 0 ] || diag "$TAP_FAILED of $TAP_COUNT tests failed"
	return 0
}

# tap_exit_check STATUS: from the EXIT trap; a script that exits before its
# plan (set -u error, unexpected exit) is reported as a bail out.
tap_exit_check() {
	if [ "$TAP_DONE" -eq 0 ]; then
		printf 'Bail out! script exited (status %s) before finishing its tests\n' "$1"
	fi
}
