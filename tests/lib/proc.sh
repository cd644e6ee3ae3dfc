# proc.sh - start, wait for and stop the test's helper processes.
#
# Every process is started through spawn, recorded, and stopped (and reaped)
# by stop_all from the EXIT trap. Waits are bounded polls: nothing here sleeps
# to synchronise.
# shellcheck shell=bash

declare -A PROC_PID=()  # name -> pid
declare -A PROC_LOG=()  # name -> log file
declare -A PROC_DAEMON=() # name -> 1 when not our child (spawn_daemon)
PROC_ORDER=()           # names in start order, stopped in reverse

# spawn NAME LOGFILE COMMAND...: run COMMAND in the background, stdout and
# stderr to LOGFILE, stdin from /dev/null.
spawn() {
	local name=$1 log=$2
	shift 2
	"$@" </dev/null >"$log" 2>&1 &
	PROC_PID[$name]=$!
	PROC_LOG[$name]=$log
	PROC_ORDER+=("$name")
}

# spawn_daemon NAME LOGFILE PIDFILE COMMAND...: run COMMAND, which forks a
# daemon that writes its pid to PIDFILE and exits; record the daemon under
# NAME. Not our child: stop waits for it by polling, and its status is 0.
spawn_daemon() {
	local name=$1 log=$2 pidfile=$3
	shift 3
	rm -f "$pidfile"
	if ! "$@" </dev/null >"$log" 2>&1 || ! wait_until 20 test -s "$pidfile"; then
		diag "$name did not start as a daemon (no $pidfile)"
		diag_file "$log"
		return 1
	fi
	PROC_PID[$name]=$(cat "$pidfile")
	PROC_LOG[$name]=$log
	PROC_DAEMON[$name]=1
	PROC_ORDER+=("$name")
}

# proc_alive PID: true while the process runs (a zombie child is not alive).
proc_alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# running NAME: true while the named process runs.
running() {
	local pid=${PROC_PID[$1]:-}
	[ -n "$pid" ] && proc_alive "$pid"
}

# wait_until SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds;
# fails after SECONDS.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# wait_ready NAME SECONDS COMMAND...: like wait_until, but gives up at once
# if the named process exits; shows its log when it fails.
wait_ready() {
	local name=$1 secs=$2 deadline=$((SECONDS + $2))
	shift 2
	until "$@"; do
		if ! running "$name"; then
			diag "$name exited while starting"
			diag_file "${PROC_LOG[$name]}"
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			diag "$name not ready after $secs s"
			diag_file "${PROC_LOG[$name]}"
			return 1
		fi
		sleep 0.1
	done
}

# tcp_open PORT: true when something accepts on 127.0.0.1:PORT.
tcp_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# unix_open PATH: true when something accepts on the unix socket PATH.
unix_open() {
	[ -S "$1" ] && "$PYTHON" "$TESTLIB/util.py" connect "unix:$1"
}

# stop NAME [SIGNAL] [SECONDS]: signal the process (TERM), wait for it up to
# SECONDS (10), then KILL it. Prints nothing; returns the exit status
# (128+N for a signal, 124 when it had to be killed).
stop() {
	local name=$1 sig=${2:-TERM} secs=${3:-10} pid status
	pid=${PROC_PID[$name]:-}
	[ -n "$pid" ] || return 0
	unset "PROC_PID[$name]"
	kill "-$sig" "$pid" 2>/dev/null
	if ! wait_until "$secs" eval "! proc_alive $pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	if [ -n "${PROC_DAEMON[$name]:-}" ]; then
		unset "PROC_DAEMON[$name]"
		return 0
	fi
	wait "$pid" 2>/dev/null
	status=$?
	return "$status"
}

# stop_all: stop everything still running, newest first (from the EXIT trap).
stop_all() {
	local i name
	for ((i = ${#PROC_ORDER[@]} - 1; i >= 0; i--)); do
		name=${PROC_ORDER[$i]}
		[ -n "${PROC_PID[$name]:-}" ] && stop "$name" TERM 5
	done
	return 0
}
