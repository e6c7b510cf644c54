#!/usr/bin/env bash
# Every test of every module, plus the checks CI cares about. This is the
# README's test command; .ci/run calls nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh

unformatted=$(gofmt -l proto cloud home examples deploy third_party)
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
mods=(homeport.dev/proto/... homeport.dev/cloud/... homeport.dev/home/... homeport.dev/examples/... homeport.dev/deploy/...)
go vet "${mods[@]}"
# The patched copy of x/crypto is upstream + third_party/xcrypto-ssh.patch,
# and upstream's own ssh tests pass against it.
./third_party/xcrypto.sh --check
go test -count=1 -timeout 20m "${mods[@]}" golang.org/x/crypto/ssh
