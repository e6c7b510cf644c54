#!/usr/bin/env bash
# End-to-end smoke test of the deploy artifacts with a real container engine:
# builds the three images, starts compose.yaml on a fresh volume, waits for
# the cloud's healthcheck, starts HAProxy, creates an admin, registers a home
# (examples/home-compose, deploy/Dockerfile.home) over the cloud's own HTTPS
# with the chain verified, publishes a service at home and fetches it through
# HAProxy's public port 80. Then restarts the cloud container alone and
# checks that the route still answers (HAProxy must follow the cloud's
# namespace). Cleans up everything it made, also on failure.
#
#   deploy/smoke.sh                 # docker (with the compose plugin), or podman
#   ENGINE=podman deploy/smoke.sh
#
# Settings (environment):
#   ENGINE              docker or podman (default: docker if its daemon runs)
#   SMOKE_COMPOSE       compose: `$ENGINE compose` runs compose.yaml;
#                       podman-run: plain `podman run`s made from compose.yaml
#                       by deploy/compose-run.py (same images, users, caps,
#                       sysctl, ports, volumes, environment, commands; the
#                       shared namespace as --network container:NAME; the
#                       services started in depends_on's order, HAProxy
#                       after the healthcheck passes). Default: compose if
#                       `$ENGINE compose` works, else podman-run (podman 4.3
#                       has no `podman compose`).
#   SMOKE_PODMAN_FLAGS  podman's global flags (storage, runtime), for every
#                       podman command, e.g. "--storage-driver overlay
#                       --runtime /usr/local/lib/sandbox-crun/crun".
#   SMOKE_RUN_FLAGS     extra flags for every container run, e.g.
#                       "--cgroups=disabled".
#   SMOKE_BUILD_FLAGS   extra flags for the builds, e.g. "--network host".
#   SMOKE_LOG_DIR       if set, every container's log is saved there.
#
# The sandbox this project is developed in (no registry, no
# CAP_SYS_RESOURCE, hybrid cgroups) runs it as README.md's "Deploy on a
# server" shows, after deploy/local-base-images.sh.
#
# Needs: an engine that can pull or already has the base images
# (golang:1.26.8-bookworm, debian:12.11-slim), network access for the
# builds (Go modules, Debian packages), free host ports 80, 443, 8022 and
# 10000-10099, and openssl, curl and python3 (with yaml for podman-run) on
# the host. It runs a cloud whose certificate comes from a throwaway CA made
# here (--tls-cert/--tls-key), since no public CA can reach a test machine.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

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
read -r -a gflags <<<"${SMOKE_PODMAN_FLAGS:-}"
read -r -a runflags <<<"${SMOKE_RUN_FLAGS:-}"
read -r -a buildflags <<<"${SMOKE_BUILD_FLAGS:-}"
[ "$engine" = podman ] || gflags=()
eng() { "$engine" "${gflags[@]}" "$@"; }

mode=${SMOKE_COMPOSE:-}
if [ -z "$mode" ]; then
	if eng compose version >/dev/null 2>&1; then mode=compose; else mode=podman-run; fi
fi
case $mode in
compose) ;;
podman-run)
	python3 -c 'import yaml' 2>/dev/null || { echo "smoke: podman-run needs python3's yaml (apt-get install python3-yaml)" >&2; exit 2; } ;;
*) echo "smoke: SMOKE_COMPOSE is compose or podman-run, not $mode" >&2; exit 2 ;;
esac
for tool in openssl curl python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "smoke: $tool is required" >&2; exit 2; }
done

project=homeport-smoke
host=cloud.smoke.test   # the cloud's name; resolved with --resolve / --add-host, never DNS
work=$(mktemp -d)
app_pid=""

# The stack and the home, in either mode.
stack_files=(compose.yaml "$work/override.yaml")
home_files=(examples/home-compose/compose.yaml "$work/home-override.yaml")
compose_stack() { eng compose -p "$project" -f "${stack_files[0]}" -f "${stack_files[1]}" "$@"; }
compose_home() { eng compose -p "$project-home" -f "${home_files[0]}" -f "${home_files[1]}" "$@"; }
run_args() { # run_args [--run] PROJECT SERVICE FILE... [-- ARG...]: into the array args
	mapfile -t args < <(python3 deploy/compose-run.py "$@")
	[ ${#args[@]} -gt 0 ]
}
stack_up() {
	if [ "$mode" = compose ]; then
		compose_stack up -d --wait --wait-timeout 120
		return
	fi
	eng network create "${project}_default" >/dev/null
	eng volume create "${project}_homeport" >/dev/null
	for s in netns cloud; do # depends_on: netns started, then cloud
		run_args "$project" "$s" "${stack_files[@]}"
		eng run -d "${runflags[@]}" "${args[@]}" >/dev/null
	done
	mapfile -t health < <(python3 deploy/compose-run.py --health "$project" cloud "${stack_files[@]}")
	healthy() { eng exec "$project-cloud" "${health[@]}"; }
	bounded_wait 120 healthy # depends_on: cloud service_healthy
	run_args "$project" haproxy "${stack_files[@]}"
	eng run -d "${runflags[@]}" "${args[@]}" >/dev/null
}
stack_exec() { # stack_exec SERVICE CMD..., stdin passed
	if [ "$mode" = compose ]; then compose_stack exec -T "$@"; else
		local s=$1
		shift
		eng exec -i "$project-$s" "$@"
	fi
}
stack_restart() {
	if [ "$mode" = compose ]; then compose_stack restart "$1"; else eng restart "$project-$1" >/dev/null; fi
}
stack_running() { # stack_running SERVICE
	if [ "$mode" = compose ]; then
		[ -n "$(compose_stack ps --status running -q "$1")" ]
	else
		[ "$(eng inspect -f '{{.State.Running}}' "$project-$1")" = true ]
	fi
}
home_run() { # home_run ARG...: `compose run --rm home ARG...`
	if [ "$mode" = compose ]; then compose_home run --rm -T home "$@"; else
		run_args --run "$project" home "${home_files[@]}" -- "$@"
		eng run --rm "${runflags[@]}" "${args[@]}"
	fi
}
home_up() {
	if [ "$mode" = compose ]; then compose_home up -d; else
		run_args "$project" home "${home_files[@]}"
		eng run -d "${runflags[@]}" "${args[@]}" >/dev/null
	fi
}
home_exec() {
	if [ "$mode" = compose ]; then compose_home exec -T home home "$@"; else eng exec "$project-home" home "$@"; fi
}

cleanup() {
	status=$?
	if [ $status -ne 0 ]; then
		echo "smoke: FAILED; the containers' logs:" >&2
		if [ "$mode" = compose ]; then
			compose_stack logs --no-color --tail 60 >&2 || true
			compose_home logs --no-color --tail 40 >&2 || true
		else
			for c in netns cloud haproxy home; do
				echo "--- $project-$c" >&2
				eng logs --tail 40 "$project-$c" >&2 || true
			done
		fi
	fi
	if [ -n "${SMOKE_LOG_DIR:-}" ]; then
		mkdir -p "$SMOKE_LOG_DIR"
		if [ "$mode" = compose ]; then
			compose_stack logs --no-color >"$SMOKE_LOG_DIR/stack.log" 2>&1 || true
			compose_home logs --no-color >"$SMOKE_LOG_DIR/home.log" 2>&1 || true
		else
			for c in netns cloud haproxy home; do eng logs "$project-$c" >"$SMOKE_LOG_DIR/$c.log" 2>&1 || true; done
		fi
	fi
	[ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true
	if [ "$mode" = compose ]; then
		compose_home down -v --remove-orphans >/dev/null 2>&1 || true
		compose_stack down -v --remove-orphans >/dev/null 2>&1 || true
	else
		for c in home-run home haproxy cloud netns; do eng rm -f -t 3 "$project-$c" >/dev/null 2>&1 || true; done
		eng volume rm -f "${project}_profile" "${project}_homeport" >/dev/null 2>&1 || true
		eng network rm -f "${project}_default" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	echo "smoke: $((SECONDS - started))s" >&2
	exit $status
}
trap cleanup EXIT

step() { echo "smoke: [$((SECONDS - started))s] $*"; }

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
chmod 0755 "$work"
chmod 0644 "$work"/*.pem "$work/tls.key" # read by uid 10001 and 10002 in the containers

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
# The home: the cloud's name resolves to this machine (the home shares the
# host's network, where the stack publishes 443 and 8022), and the CA to
# verify the cloud with.
cat >"$work/home-override.yaml" <<EOF
services:
  home:
    extra_hosts:
      - "$host:127.0.0.1"
    volumes:
      - $work:/smoke:ro
EOF
export HOMEPORT_PUBLIC_HOST=$host

step "building the images ($engine, $mode)"
for image in cloud haproxy home; do
	eng build -q "${buildflags[@]}" -f "deploy/Dockerfile.$image" -t "homeport/$image:local" . >/dev/null
done

step "starting compose.yaml on a fresh volume; HAProxy after the cloud's healthcheck"
stack_up
bounded_wait 10 stack_running haproxy

step "first admin"
echo 'smoke test passphrase' | stack_exec cloud cloud users create admin --email admin@example.com --admin >/dev/null

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
home_run register --cloud "https://$host" --token "$token" --output /profile --ca-file /smoke/ca.pem
home_up
bounded_wait 30 home_exec status
home_exec domains add homes.test
home_exec expose http app.homes.test --to "localhost:$app_port"

routed() { curl -fsS --max-time 5 -H 'Host: app.homes.test' http://127.0.0.1/ | grep -q 'hello from a home'; }
step "a request routed: visitor -> HAProxy :80 -> tunnel -> home -> service"
bounded_wait 60 routed

step "cloud check with HAProxy, and a backup as README.md's procedure takes it"
stack_exec cloud cloud check
mode=$(stack_exec cloud stat -c '%a %u' /var/lib/homeport)
[ "$mode" = "700 10001" ] || { echo "smoke: the data volume is $mode (mode, owner), want 700 10001" >&2; exit 1; }
stack_exec cloud cloud backup --output /var/lib/homeport/backup.db
stack_exec cloud rm /var/lib/homeport/backup.db

step "restarting the cloud container alone"
stack_restart cloud
bounded_wait 60 routed
stack_running haproxy
step "ok: the stack serves after a cloud restart"
