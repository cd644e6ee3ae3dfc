# lighttpd.sh - the system under test behind lighttpd, configured with
# contrib/lighttpd/*.conf changed only in port, paths and users.
# shellcheck shell=bash disable=SC2154,SC2034 # top_srcdir, T, CACHE: set by common.sh and the test; ACCESS_LOG: for it

# template_lighttpd DIR PORT spawn|connect: the contrib configuration with our
# port and paths, lighttpd starting $OCI_REGISTRY itself (spawn, as shipped)
# or connecting to one started elsewhere (connect: bin_path ""). The
# server.username/groupname lines go: run as root, lighttpd would switch to
# www-data, which cannot enter the test's private directory. Logs go to
# $T/log/MODE, the socket to $T/run/MODE.
template_lighttpd() {
	local dir=$1 port=$2 mode=$3 f
	mkdir -p "$dir" "$T/log/$mode" "$T/run/$mode"
	for f in lighttpd.conf oci-registry.conf; do
		sed -e "s|/etc/oci-registry/lighttpd/|$dir/|g" \
			-e "s|^server\.port = 8080\$|server.port = $port|" \
			-e '/^server\.username = /d' -e '/^server\.groupname = /d' \
			-e "s|/run/oci-registry|$T/run/$mode|g" \
			-e "s|/var/cache/oci-registry|$CACHE|g" \
			-e "s|/var/log/oci-registry|$T/log/$mode|g" \
			-e "s|/usr/bin/oci-registry|$OCI_REGISTRY|g" \
			"$top_srcdir/contrib/lighttpd/$f" >"$dir/$f" || return 1
	done
	# PUSH_AUTH=1: writes need a user of $T/htpasswd (contrib/lighttpd/push-auth.conf).
	[ -z "${PUSH_AUTH:-}" ] ||
		sed -e "s|/etc/oci-registry/htpasswd|$T/htpasswd|g" \
			"$top_srcdir/contrib/lighttpd/push-auth.conf" >"$dir/push-auth.conf" || return 1
	if [ "$mode" = connect ]; then
		sed -i 's|^var\.oci_registry_bin_path = .*|var.oci_registry_bin_path = ""|' "$dir/lighttpd.conf"
	fi
	grep -q "^server.port = $port\$" "$dir/lighttpd.conf"
}

# start_lighttpd spawn|connect [VAR=VALUE...]: lighttpd in the foreground on
# a free port, with the VARs in its environment (a responder it spawns
# inherits them); sets LIGHTTPD_PORT, MIRROR, LIGHTTPD_LOG (lighttpd's
# stderr, where a spawned responder logs) and ACCESS_LOG.
start_lighttpd() {
	local mode=$1
	shift
	LIGHTTPD_PORT=$(free_ports 1)
	MIRROR=127.0.0.1:$LIGHTTPD_PORT
	LIGHTTPD_LOG=$T/log/lighttpd-$mode.out
	ACCESS_LOG=$T/log/$mode/lighttpd-access.log
	template_lighttpd "$T/lighttpd-$mode" "$LIGHTTPD_PORT" "$mode" || return 1
	lighttpd -tt -f "$T/lighttpd-$mode/lighttpd.conf" >"$T/log/lighttpd-$mode.tt" 2>&1 || {
		diag_file "$T/log/lighttpd-$mode.tt"
		return 1
	}
	spawn lighttpd "$LIGHTTPD_LOG" env "$@" lighttpd -D -f "$T/lighttpd-$mode/lighttpd.conf"
	wait_ready lighttpd 20 lighttpd_answers
}

# lighttpd_answers: /v2/ (or $LIGHTTPD_PING) through lighttpd answers 200 (the responder is up).
lighttpd_answers() {
	[ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://$MIRROR${LIGHTTPD_PING:-/v2/}" 2>/dev/null)" = 200 ]
}
