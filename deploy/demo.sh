#!/usr/bin/env bash
# The demo: builds the binaries, seeds an admin account and runs a cloud on
# loopback (--dev) with its state in ./demo-data. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
mkdir -p bin
go build -o bin/cloud ./cloud/cmd/cloud
go build -o bin/home ./home/cmd/home

data=./demo-data
pwfile=$data/admin-password
if [ ! -f "$pwfile" ]; then
	mkdir -p "$data" && chmod 700 "$data"
	head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwfile"
	chmod 600 "$pwfile"
	./bin/cloud users create admin --email admin@example.com --admin --data "$data" <"$pwfile"
fi
pw=$(cat "$pwfile")
cat <<MSG

  homeport demo
  admin user:  admin / $pw   (also in $pwfile)
  API:         http://127.0.0.1:8000/api/v1   (OpenAPI at /api/openapi.json)

  try, in another terminal:
    TOKEN=\$(curl -s -d '{"username":"admin","password":"$pw"}' http://127.0.0.1:8000/api/v1/auth/token | sed 's/.*"token":"\([^"]*\)".*/\1/')
    ./bin/home keygen --output demo-data/home-key
    curl -s -H "Authorization: Bearer \$TOKEN" -d "{\"public_key\":\"\$(cat demo-data/home-key.pub)\"}" http://127.0.0.1:8000/api/v1/homes

MSG
exec ./bin/cloud serve --dev --data "$data" --haproxy off
