#!/usr/bin/env bash
# make dist: the home agent as one static binary (CGO_ENABLED=0: no C
# library, no SQLite) for each platform a home runs on, into dist/ with
# SHA256SUMS. The cloud is not built here: it keeps cgo SQLite and ships as
# a container or a systemd service (README, Deploy on a server).
#
#   deploy/dist.sh                  # dist/home-linux-amd64 ... dist/SHA256SUMS
#   DIST_DIR=/tmp/out JOBS=2 deploy/dist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${DIST_DIR:-dist}")
jobs=${JOBS:-2}
# GOOS/GOARCH[/GOARM]: linux/arm/7 is a Raspberry Pi 2 and later on a 32-bit OS.
targets=(linux/amd64 linux/arm64 linux/arm/7 darwin/arm64 windows/amd64)

rm -rf "$out"
mkdir -p "$out"
build() {
	local os arch arm name
	IFS=/ read -r os arch arm <<<"$1"
	name="home-$os-$arch${arm:+v$arm}"
	[ "$os" = windows ] && name+=.exe
	(cd home && CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=$arm \
		go build -trimpath -ldflags "-s -w" -o "$out/$name" ./cmd/home)
	echo "built $name"
}
running=0
for t in "${targets[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	build "$t" &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n
	running=$((running - 1))
done
(cd "$out" && sha256sum home-* >SHA256SUMS)
echo "dist: $(ls "$out" | wc -l) files in $out"
