#!/usr/bin/env bash
# Installs what homeport's demo and tests need on a fresh Debian machine:
# system packages with apt-get (only when something is missing) and Go
# tools with `go install`. Safe to run again.
set -euo pipefail

need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)   # the data-path bench's anchor: HAProxy + OpenSSH sshd + ssh -R
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v chromium >/dev/null 2>&1 || need+=(chromium)   # web UI browser tests
command -v patch >/dev/null 2>&1 || need+=(patch)       # third_party/xcrypto.sh --check
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)   # deploy/dist_test.go runs the arm64 and armv7 agents
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)   # home/internal/legacydb: the reader checked against real SQLite files
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # deploy/systemd units: verify, security
python3 -c 'import yaml' >/dev/null 2>&1 || need+=(python3-yaml)   # deploy/compose-run.py (smoke.sh's podman runs)
# The concurrent-writer tests run a throwaway PostgreSQL (cloud/internal/store/pgtest);
# Debian keeps its server binaries off PATH.
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "installing: ${need[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || { echo "Go 1.26 or newer is required: https://go.dev/dl/" >&2; exit 1; }

# The certificate tests run a real ACME CA: Let's Encrypt's Pebble and its
# DNS server, built from source with `go install` (they look on PATH, then
# in the Go bin directory).
gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
for tool in pebble pebble-challtestsrv; do
	if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "$gobin/$tool" ]; then
		echo "installing: $tool (go install)"
		go install "github.com/letsencrypt/pebble/v2/cmd/$tool@v2.10.1"
	fi
done
