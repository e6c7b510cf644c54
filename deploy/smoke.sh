#!/usr/bin/env bash
# End-to-end smoke test of the deploy artifacts with a real container engine:
# builds the three images, starts compose.yaml on a fresh volume, creates an
# admin, registers a home (deploy/Dockerfile.home, as in
# examples/home-compose) over the cloud's own HTTPS with the chain verified,
# publishes a service at home and fetches it through HAProxy's public port
# 80. Then restarts the cloud container alone and checks that the route
# still answers (HAProxy must follow the cloud's namespace). Cleans up
# everything it made, also on failure.
#
#   deploy/smoke.sh            # docker (with the compose plugin), or podman
#   ENGINE=podman deploy/smoke.sh
#
# Needs: an engine that can pull or already has the base images
# (golang:1.26.8-bookworm, debian:12.11-slim), network access for the
# builds (Go modules, Debian packages), free host ports 80, 443, 8022 and
# 10000-10099, and openssl, curl and python3 on the host. It runs a cloud
# whose certificate comes from a throwaway CA made here (--tls-cert/--tls-key),
# since no public CA can reach a test machine.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${ENGINE:-}
if [ -z "$engine" ]; then
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		engine=docker
	elif command -v podman >/dev/null 2>&1; then
		engine=podman
	else
		echo "smoke: no container engine (docker with a running daemon, or podman); nothing was run" >&2
		exit 2
	fi
fi
compose=("$engine" compose)
"${compose[@]}" version >/dev/null 2>&1 || { echo "smoke: '$engine compose' is not available" >&2; exit 2; }
for tool in openssl curl python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "smoke: $tool is required" >&2; exit 2; }
done

project=homeport-smoke
host=cloud.smoke.test   # the cloud's name; resolved with --resolve / --add-host, never DNS
work=$(mktemp -d)
app_pid=""
cleanup() {
	status=$?
	if [ $status -ne 0 ]; then
		echo "smoke: FAILED; the stack's logs:" >&2
		"${compose[@]}" -p "$project" logs --no-color --tail 60 >&2 || true
		"$engine" logs --tail 40 "$project-home" >&2 || true
	fi
	[ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
	"$engine" rm -f "$project-home" >/dev/null 2>&1 || true
	"$engine" volume rm -f "$project-profile" >/dev/null 2>&1 || true
	"${compose[@]}" -p "$project" -f compose.yaml -f "$work/override.yaml" down -v --remove-orphans >/dev/null 2>&1 || true
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT

step() { echo "smoke: $*"; }

# bounded_wait N CMD...: runs CMD every second until it succeeds, N times at most.
bounded_wait() {
	local n=$1
	shift
	for _ in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 1
	done
	"$@"
}

step "a throwaway CA and a certificate for $host"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=homeport smoke CA" \
	-keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$host" \
	-keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$host" >"$work/san.ext"
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
	-extfile "$work/san.ext" -out "$work/tls.pem" 2>/dev/null
chmod 0644 "$work"/*.pem "$work/tls.key" # read by uid 10001 in the container

# The operator's certificate instead of ACME: the only change to compose.yaml.
cat >"$work/override.yaml" <<EOF
services:
  cloud:
    environment:
      CLOUD_TLS_CERT: /run/homeport-tls/tls.pem
      CLOUD_TLS_KEY: /run/homeport-tls/tls.key
    volumes:
      - $work:/run/homeport-tls:ro
EOF
export HOMEPORT_PUBLIC_HOST=$host
stack=("${compose[@]}" -p "$project" -f compose.yaml -f "$work/override.yaml")

step "building the images"
"$engine" build -q -f deploy/Dockerfile.cloud -t homeport/cloud:local . >/dev/null
"$engine" build -q -f deploy/Dockerfile.haproxy -t homeport/haproxy:local . >/dev/null
"$engine" build -q -f deploy/Dockerfile.home -t homeport/home:local . >/dev/null

step "starting compose.yaml on a fresh volume"
"${stack[@]}" up -d --wait --wait-timeout 120

step "first admin"
echo 'smoke test passphrase' | "${stack[@]}" exec -T cloud cloud users create admin --email admin@example.com --admin >/dev/null

api() { curl -fsS --cacert "$work/ca.pem" --resolve "$host:443:127.0.0.1" "$@"; }
step "the web UI over HTTPS, certificate verified"
bounded_wait 30 api -o /dev/null "https://$host/login"
token=$(api -X POST -H 'Content-Type: application/json' \
	-d '{"username":"admin","password":"smoke test passphrase","name":"smoke"}' \
	"https://$host/api/v1/auth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
if curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:8000/healthz 2>/dev/null; then
	echo "smoke: the plain API port 8000 is reachable from outside the stack" >&2
	exit 1
fi

step "a service at home"
mkdir -p "$work/site"
echo "hello from a home in a container" >"$work/site/index.html"
app_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$app_port" --bind 127.0.0.1 --directory "$work/site" >/dev/null 2>&1 &
app_pid=$!

step "home register over HTTPS into an empty volume, chain verified with --ca-file"
"$engine" volume create "$project-profile" >/dev/null
home_run=("$engine" run --rm --network host --add-host "$host:127.0.0.1" -v "$project-profile:/profile" -v "$work:/smoke:ro")
"${home_run[@]}" homeport/home:local register --cloud "https://$host" --token "$token" --output /profile --ca-file /smoke/ca.pem
"$engine" run -d --name "$project-home" --network host --add-host "$host:127.0.0.1" \
	-v "$project-profile:/profile" homeport/home:local console >/dev/null
bounded_wait 30 "$engine" exec "$project-home" home status
"$engine" exec "$project-home" home domains add homes.test
"$engine" exec "$project-home" home expose http app.homes.test --to "localhost:$app_port"

routed() { curl -fsS --max-time 5 -H 'Host: app.homes.test' http://127.0.0.1/ | grep -q 'hello from a home'; }
step "a request routed: visitor -> HAProxy :80 -> tunnel -> home -> service"
bounded_wait 60 routed

step "restarting the cloud container alone"
"${stack[@]}" restart cloud
bounded_wait 60 routed
step "ok: the stack serves after a cloud restart"
