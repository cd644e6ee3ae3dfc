#!/usr/bin/env bash
# deploy.sh - what can be checked of the deployment files without a
# container engine, a cluster or systemd as init: contrib/docker-compose,
# contrib/helm, the Dockerfile, contrib/systemd and contrib/lighttpd parse
# and name files that exist; their nginx and lighttpd configurations pass the
# servers' own checks; the settings they give the responder are its real
# options and start it; `make install` puts everything where the README says.

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

need_program nginx lighttpd cgi-fcgi make readelf dpkg-query apt-cache man systemd-analyze
need_responder
"$PYTHON" -c 'import yaml' 2>/dev/null || bail "python3-yaml is not installed (scripts/test installs it)"

SRC=$top_srcdir
CHART=$SRC/contrib/helm/oci-registry
COMPOSE=$SRC/contrib/docker-compose/compose.yaml
deploy() { "$PYTHON" "$TESTLIB/deploy.py" "$@"; }
HELP=$("$OCI_REGISTRY" --help) || bail "oci-registry --help failed"

# --- YAML parses; every file named exists ---
out=$(deploy yaml "$COMPOSE" "$CHART/Chart.yaml" "$CHART/values.yaml" "$SRC/example.yaml" 2>&1)
ok $? "compose.yaml, Chart.yaml, values.yaml and example.yaml parse" || diag "$out"
deploy get "$CHART/values.yaml" registry upstream config contents >"$T/chart-upstream.yaml"
out=$(deploy yaml "$T/chart-upstream.yaml" 2>&1)
ok $? "the chart's registry.upstream.config.contents parses" || diag "$out"
out=$(deploy chart-refs "$CHART" 2>&1)
ok $? "the chart's templates use only values, files and templates that exist" || diag "$out"
is "$(deploy get "$CHART/values.yaml" registry storage mode)" filesystem "values: registry.storage.mode is filesystem"
for key in "registry default_namespace" "registry storage s3 auth secret" "registry storage s3 bucket" \
	"registry storage s3 region" replicas "service port" "ingress enabled" resources; do
	# shellcheck disable=SC2086 # the key path is words
	deploy get "$CHART/values.yaml" $key >/dev/null 2>&1
	ok $? "values.yaml has ${key// /.}"
done
check "chart files/oci-registry.conf is contrib/nginx/oci-registry.conf" \
	cmp -s "$CHART/files/oci-registry.conf" "$SRC/contrib/nginx/oci-registry.conf"
check "chart files/s3.conf is contrib/nginx/s3.conf" \
	cmp -s "$CHART/files/s3.conf" "$SRC/contrib/nginx/s3.conf"
check "chart files/nginx.conf is contrib/docker-compose/nginx.conf" \
	cmp -s "$CHART/files/nginx.conf" "$SRC/contrib/docker-compose/nginx.conf"
check "chart files/push-auth.conf is contrib/nginx/push-auth.conf" \
	cmp -s "$CHART/files/push-auth.conf" "$SRC/contrib/nginx/push-auth.conf"
missing=
while read -r p; do [ -e "$p" ] || missing="$missing $p"; done < <(deploy compose-paths "$COMPOSE")
is "$missing" "" "every path compose.yaml names exists (build context, Dockerfile, mounts)"
missing=
while read -r p; do
	[ "$p" = . ] || [ -e "$SRC/$p" ] || missing="$missing $p"
done < <(grep -v '^COPY --from' "$SRC/Dockerfile" | sed -n 's/^COPY \([^ ]*\) .*/\1/p')
is "$missing" "" "every file the Dockerfile copies from the tree exists"
check "Dockerfile: multi-stage from debian:12-slim (BASE_IMAGE), non-root user" \
	eval "grep -qx 'ARG BASE_IMAGE=debian:12-slim' '$SRC/Dockerfile' &&
		[ \"\$(grep -c '^FROM \${BASE_IMAGE}' '$SRC/Dockerfile')\" -eq 2 ] && grep -q '^USER 10001' '$SRC/Dockerfile'"
for f in configure.ac Makefile.am fcgi/main.c example.yaml; do
	grep -qx "$f" "$SRC/.dockerignore" && diag ".dockerignore excludes $f"
done
ok 0 ".dockerignore keeps the sources (see diagnostics if not)"

# The runtime packages of the image exist in Debian 12 and hold every shared
# library the program links directly.
RUNTIME=$(sed -n '/^FROM ${BASE_IMAGE}$/,$p' "$SRC/Dockerfile" | sed -n '2,/ca-certificates/p' |
	grep -o 'lib[a-z0-9.+-]*\|ca-certificates' | sort -u)
check "Dockerfile: the runtime packages exist in Debian 12" eval "apt-cache show $(echo "$RUNTIME" | tr '\n' ' ') >/dev/null 2>&1"
needed_packages() {
	local lib path
	for lib in $(readelf -d "$OCI_REGISTRY" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		case $lib in libasan* | libubsan* | libc.so* | libm.so* | libpthread* | libdl* | ld-linux*) continue ;; esac
		path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
		dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1
	done | sort -u
}
missing=
for pkg in $(needed_packages); do grep -qx "$pkg" <<<"$RUNTIME" || missing="$missing $pkg"; done
is "$missing" "" "Dockerfile: the runtime packages cover the program's libraries ($(needed_packages | tr '\n' ' '))"

# --- nginx and lighttpd accept the configurations as shipped, paths moved here ---
mkdir -p "$T/nginx" "$T/run" "$T/cache" "$T/tmp"
sed -e "s|/tmp/nginx|$T/tmp/nginx|g" -e "s|/etc/oci-registry/nginx/|$T/nginx/|g" \
	-e "s|/run/oci-registry|$T/run|g" -e "s|/var/cache/oci-registry|$T/cache|g" \
	"$SRC/contrib/docker-compose/nginx.conf" >"$T/nginx/nginx.conf"
cp "$CHART/files/oci-registry.conf" "$T/nginx/oci-registry.conf"
sed -i "s|/var/cache/oci-registry|$T/cache|g" "$T/nginx/oci-registry.conf"
out=$(nginx -t -p "$T/nginx" -c "$T/nginx/nginx.conf" -g 'user root;' 2>&1)
ok $? "nginx -t: the compose/chart nginx.conf with contrib/nginx/oci-registry.conf" || diag "$out"
# With push on, as the chart mounts it: push-auth.conf beside oci-registry.conf.
sed "s|/etc/oci-registry/htpasswd|$T/nginx/htpasswd|" "$CHART/files/push-auth.conf" >"$T/nginx/push-auth.conf"
: >"$T/nginx/htpasswd"
out=$(nginx -t -p "$T/nginx" -c "$T/nginx/nginx.conf" -g 'user root;' 2>&1)
ok $? "nginx -t: the same with the chart's push-auth.conf included" || diag "$out"
rm "$T/nginx/push-auth.conf"
for mode in spawn connect; do
	d=$T/lighttpd-$mode
	mkdir -p "$d"
	for f in lighttpd.conf oci-registry.conf; do
		sed -e "s|/etc/oci-registry/lighttpd/|$d/|g" -e "s|/run/oci-registry|$T/run|g" \
			-e "s|/var/cache/oci-registry|$T/cache|g" -e "s|/var/log/oci-registry|$T/log|g" \
			-e "s|/usr/bin/oci-registry|$OCI_REGISTRY|g" "$SRC/contrib/lighttpd/$f" >"$d/$f"
	done
	[ "$mode" = spawn ] || sed -i 's|^var\.oci_registry_bin_path = .*|var.oci_registry_bin_path = ""|' "$d/lighttpd.conf"
	out=$(lighttpd -tt -f "$d/lighttpd.conf" 2>&1)
	ok $? "lighttpd -tt: contrib/lighttpd ($mode)" || diag "$out"
done

# --- the settings given to the responder are its options ---
# help_knows NAME: an environment variable that --help documents.
help_knows() {
	grep -q "\[$1\]\|\[$1=" <<<"$HELP" || { [ "$1" = UPSTREAM_CREDENTIALS ] && grep -q "$1" <<<"$HELP"; }
}
unknown=
for v in $(deploy compose-env "$COMPOSE" oci-registry | cut -d= -f1); do help_knows "$v" || unknown="$unknown $v"; done
is "$unknown" "" "compose.yaml sets only variables that oci-registry --help documents"
unknown=
s3=
while read -r a b; do
	if [ "$a" = s3 ]; then s3="$s3 $b"; else help_knows "$a" || unknown="$unknown $a"; fi
done < <(deploy chart-env-names "$CHART")
is "$unknown" "" "the chart sets only variables that oci-registry --help documents"
if grep -q '^  s3 ' <<<"$HELP"; then
	unknown=
	# TMPDIR: where the libc and the s3 storage put temporary files.
	for v in $s3; do [ "$v" = TMPDIR ] || help_knows "$v" || unknown="$unknown $v"; done
	is "$unknown" "" "the chart's s3 variables are documented options"
else
	skip "the chart's s3 variables ($s3 ) are documented options" "this build has no s3 storage"
fi
unknown=
while read -r v; do
	help_knows "$v" || unknown="$unknown $v"
done < <(sed -n 's/^#\?\([A-Z_]*\)=.*/\1/p' "$SRC/contrib/systemd/oci-registry.default")
is "$unknown" "" "contrib/systemd/oci-registry.default names only documented variables"
like "$(sed -n 's/^CMD //p' "$SRC/Dockerfile") $(deploy get "$COMPOSE" services oci-registry command 0)" \
	'^\["filesystem"\] filesystem$' "the image's and compose's command is the filesystem storage"
grep -q '^  filesystem --root' <<<"$HELP"
ok $? "--help documents the filesystem storage subcommand"

# run_with_env NAME ENVFILE UPSTREAM: start the responder with an environment
# (container paths moved here) and the filesystem command; it must answer
# /v2/ over FastCGI and exit 0 on SIGTERM.
run_with_env() {
	local name=$1 envf=$2 up=$3 args=() sock=$T/run/$1.sock line
	while IFS= read -r line; do
		line=${line//unix:\/run\/oci-registry\/fcgi.sock/unix:$sock}
		line=${line//\/var\/cache\/oci-registry/$T/cache-$name}
		line=${line//\/etc\/oci-registry\/upstream.yaml/$up}
		args+=("$line")
	done <"$envf"
	mkdir -p "$T/cache-$name"
	spawn "$name" "$T/log/$name.log" env "${args[@]}" "$OCI_REGISTRY" filesystem
	wait_ready "$name" 20 "$PYTHON" "$TESTLIB/util.py" connect "unix:$sock" || return 1
	env -i REQUEST_METHOD=GET REQUEST_URI=/v2/ SERVER_SOFTWARE=nginx/1.22.1 \
		timeout 30 cgi-fcgi -bind -connect "$sock" >"$T/$name.answer" 2>&1
	grep -q '^Status: 200' "$T/$name.answer" || return 1
	stop "$name" TERM 15
}
deploy compose-env "$COMPOSE" oci-registry >"$T/compose.env"
check "the compose environment (with example.yaml) starts the responder, which answers /v2/ and stops with 0" \
	run_with_env compose "$T/compose.env" "$SRC/example.yaml" || diag_file "$T/log/compose.log"
deploy chart-env "$CHART" >"$T/chart.env"
check "the chart's default environment and upstream config start the responder likewise" \
	run_with_env chart "$T/chart.env" "$T/chart-upstream.yaml" || diag_file "$T/log/chart.log"

# --- make install puts the files where the README says ---
DEST=$T/inst
(unset MAKEFLAGS MFLAGS MAKELEVEL && make -s -C "$top_builddir" install prefix=/usr DESTDIR="$DEST") >"$T/log/install.log" 2>&1
ok $? "make install prefix=/usr DESTDIR=..." || diag_file "$T/log/install.log"
DOC=$DEST/usr/share/doc/oci-registry
for f in usr/bin/oci-registry usr/share/man/man8/oci-registry.8 \
	usr/share/doc/oci-registry/README.md usr/share/doc/oci-registry/example.yaml; do
	check "installed: /$f" test -s "$DEST/$f"
done
for f in nginx/nginx.conf nginx/oci-registry.conf lighttpd/lighttpd.conf lighttpd/oci-registry.conf \
	systemd/oci-registry.socket systemd/oci-registry.service systemd/oci-registry-spawn-fcgi.service \
	systemd/oci-registry-nginx.service systemd/oci-registry.sysusers systemd/oci-registry.default \
	docker-compose/compose.yaml docker-compose/nginx.conf \
	helm/oci-registry/Chart.yaml helm/oci-registry/values.yaml helm/oci-registry/templates/deployment.yaml \
	helm/oci-registry/files/nginx.conf helm/oci-registry/files/push-auth.conf systemd/oci-registry-gc.timer; do
	check "installed: /usr/share/doc/oci-registry/contrib/$f" cmp -s "$DOC/contrib/$f" "$SRC/contrib/$f"
done
check "the README names the install locations" \
	eval "grep -q 'share/doc/oci-registry/contrib' '$SRC/README.md' && grep -q 'man8/oci-registry.8' '$SRC/README.md'"

# The man page: renders without warnings, and documents every option and variable of --help.
out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$DEST/usr/share/man/man8/oci-registry.8" 2>&1 >"$T/man.txt")
ok "$([ -z "$out" ] && [ -s "$T/man.txt" ] && echo 0 || echo 1)" "oci-registry(8) renders without warnings" || diag "$out"
missing=
for o in $(grep -o -- '--[a-z][a-z0-9-]*' <<<"$HELP" | sort -u) $(grep -o '\[[A-Z_]*' <<<"$HELP" | tr -d '[' | sort -u); do
	grep -q -- "$o" "$T/man.txt" || missing="$missing $o"
done
is "$missing" "" "oci-registry(8) documents every option and variable of --help"
missing=
for s in SYNOPSIS OPTIONS STORAGE FILES SIGNALS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
	grep -q "^$s" "$T/man.txt" || missing="$missing $s"
done
is "$missing" "" "oci-registry(8) has the usual sections"

# --- systemd units: systemd-analyze verify, with the installed binary ---
# (systemd is installed for it by tests/lib/packages.sh, not run as init.)
u=$T/units
mkdir -p "$u"
for f in "$DOC"/contrib/systemd/*.service "$DOC"/contrib/systemd/*.socket "$DOC"/contrib/systemd/*.timer; do
	sed "s|/usr/bin/oci-registry|$DEST/usr/bin/oci-registry|g" "$f" >"$u/${f##*/}"
done
out=$(cd "$u" && timeout 120 systemd-analyze verify --man=no ./*.socket ./*.service ./*.timer 2>&1)
ok $? "systemd-analyze verify: the units" || diag "$out"
exposure=$(cd "$u" && timeout 120 systemd-analyze security --offline=yes ./oci-registry.service 2>/dev/null |
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
ok "$(awk -v e="${exposure:-99}" 'BEGIN { print (e < 3.0 ? 0 : 1) }')" \
	"systemd-analyze security: oci-registry.service exposure ${exposure:-unknown} is below 3.0"
check "oci-registry.service serves the socket of oci-registry.socket on fd 0" \
	grep -q '^StandardInput=socket$' "$SRC/contrib/systemd/oci-registry.service"
check "oci-registry.service keeps stdout off the socket" \
	grep -q '^StandardOutput=journal$' "$SRC/contrib/systemd/oci-registry.service"

done_testing
