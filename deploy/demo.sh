#!/usr/bin/env bash
# The demo, on one machine: a cloud (with its managed HAProxy, on loopback
# ports 8000/8022/8080/8443), a registered home, and a sample web app at home
# reachable through HAProxy -> the cloud's SSH endpoint -> the home's tunnel.
# State lives in ./demo-data (reused by the next run). Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
mkdir -p bin
echo "building cloud, home and the sample app..."
go build -o bin/cloud ./cloud/cmd/cloud
go build -o bin/home ./home/cmd/home
go build -o bin/hello ./examples/hello

data=$PWD/demo-data
mkdir -p "$data" && chmod 700 "$data"
export HOMEPORT_PROFILES=$data/profiles
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# Wait for a readiness signal: a command that succeeds, bounded in time.
wait_for() {
	local what=$1; shift
	for _ in $(seq 1 100); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "demo: $what did not come up; see $data/*.log" >&2
	exit 1
}

pwfile=$data/admin-password
if [ ! -f "$pwfile" ]; then
	head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwfile"
	chmod 600 "$pwfile"
	./bin/cloud users create admin --email admin@example.com --admin --data "$data/cloud" <"$pwfile"
fi
pw=$(cat "$pwfile")

./bin/cloud serve --dev --data "$data/cloud" >"$data/cloud.log" 2>&1 &
pids+=($!)
wait_for "the cloud" curl -fsS http://127.0.0.1:8000/readyz

./bin/hello --listen 127.0.0.1:8090 >"$data/hello.log" 2>&1 &
pids+=($!)

if [ ! -d "$HOMEPORT_PROFILES" ] || [ -z "$(ls -A "$HOMEPORT_PROFILES" 2>/dev/null)" ]; then
	token=$(curl -fsS -d "{\"username\":\"admin\",\"password\":\"$pw\",\"name\":\"demo\"}" http://127.0.0.1:8000/api/v1/auth/token |
		sed 's/.*"token":"\([^"]*\)".*/\1/')
	./bin/home register --cloud http://127.0.0.1:8000 --token "$token" --name demo
	./bin/home domains add demo.test
	./bin/home expose http hello.demo.test --to localhost:8090
fi

./bin/home console >"$data/console.log" 2>&1 &
pids+=($!)
wait_for "the tunnel" sh -c './bin/home status --json | grep -q "\"up\": true"'

echo
echo "== a request from the internet side, through HAProxy, the cloud and the tunnel:"
echo "\$ curl -H 'Host: hello.demo.test' http://127.0.0.1:8080/"
curl -fsS -H 'Host: hello.demo.test' http://127.0.0.1:8080/
cat <<MSG

  cloud web UI + API   http://127.0.0.1:8000   (admin / $pw)
  home console         http://127.0.0.1:8001
  public HTTP/HTTPS    127.0.0.1:8080 / 127.0.0.1:8443 (HAProxy)
  home status          HOMEPORT_PROFILES=$HOMEPORT_PROFILES ./bin/home status
  logs                 $data/*.log

MSG
if [ -n "${DEMO_EXIT:-}" ]; then exit 0; fi
echo "running; Ctrl-C stops the demo"
wait
