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
# install-deps.sh installed every program the tests use, so a test that
# skips for a missing one fails instead (testnet.Missing); a root-only test
# (netns, tc) skips only when this is not run as root, and each skip is
# written to $HOMEPORT_TEST_SKIPLOG so the count below cannot be missed.
export HOMEPORT_TEST_STRICT=1
HOMEPORT_TEST_SKIPLOG=$(mktemp)
export HOMEPORT_TEST_SKIPLOG
trap 'rm -f "$HOMEPORT_TEST_SKIPLOG"' EXIT
status=0
go test -count=1 -timeout 20m "${mods[@]}" golang.org/x/crypto/ssh || status=$?
# The API, web and serve suites once more with every test cloud on a
# PostgreSQL database (cloudtest.DBArgs); the store-level tests ran both
# engines above.
HOMEPORT_TEST_DB=postgres go test -count=1 -timeout 20m homeport.dev/cloud/internal/api homeport.dev/cloud/internal/web homeport.dev/cloud/internal/serve || status=$?
if [ -s "$HOMEPORT_TEST_SKIPLOG" ]; then
	echo "!!! $(wc -l <"$HOMEPORT_TEST_SKIPLOG") tests were SKIPPED, NOT RUN (run as root to run them):" >&2
	sort "$HOMEPORT_TEST_SKIPLOG" | sed 's/^/!!!   /' >&2
fi
[ "$status" -eq 0 ] || exit "$status"
# Every fuzz target for a few seconds (FUZZTIME=8s each by default).
./deploy/fuzz.sh
