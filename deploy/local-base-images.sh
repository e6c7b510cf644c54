#!/usr/bin/env bash
# Makes the base images the Dockerfiles pin, locally, for a machine that can
# reach Debian's mirror but no container registry (the sandbox the project
# is developed in). Never needed where a registry is reachable: there the
# engine pulls the real images.
#
#   deploy/local-base-images.sh          # as root (debootstrap, chroot)
#
# debian:12.11-slim      a debootstrap'd bookworm (--variant=minbase), with
#                        the official image's sources (bookworm, -updates,
#                        -security) and empty apt lists and caches.
# golang:1.26.8-bookworm that system plus this machine's Go (/usr/local/go,
#                        which must be the pinned version) and what the
#                        official image has for cgo and modules: gcc,
#                        libc6-dev, make, git, ca-certificates; GOPATH=/go,
#                        GOTOOLCHAIN=local and PATH as the official image;
#                        and this machine's own CAs (/usr/local/share/
#                        ca-certificates: a TLS-intercepting egress proxy),
#                        so that `go mod download` in the build stages
#                        reaches the module proxy. Only the build stages
#                        see them; the final images are debian:12.11-slim's.
#
# ENGINE (podman or docker) and PODMAN_FLAGS (global podman flags, e.g.
# "--storage-driver vfs") as in deploy/smoke.sh; MIRROR overrides Debian's
# mirror. Images that already exist are left alone (FORCE=1 remakes them).
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${ENGINE:-podman}
read -r -a flags <<<"${PODMAN_FLAGS:-}"
[ "$engine" = podman ] || flags=()
eng() { "$engine" "${flags[@]}" "$@"; }
mirror=${MIRROR:-http://deb.debian.org/debian}

debian_tag=$(sed -n 's/^FROM \(debian:[^ ]*\).*/\1/p' deploy/Dockerfile.cloud | head -1)
golang_tag=$(sed -n 's/^FROM \(golang:[^ ]*\).*/\1/p' deploy/Dockerfile.cloud | head -1)
go_version=${golang_tag#golang:}
go_version=${go_version%%-*}
[ "$(id -u)" = 0 ] || { echo "local-base-images: debootstrap needs root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "local-base-images: apt-get install debootstrap" >&2; exit 2; }

have() { [ "${FORCE:-}" != 1 ] && eng image exists "$1" 2>/dev/null; }
if have "$debian_tag" && have "$golang_tag"; then
	echo "local-base-images: $debian_tag and $golang_tag exist"
	exit 0
fi
local_go=$(/usr/local/go/bin/go env GOVERSION)
if [ "$local_go" != "go$go_version" ]; then
	echo "local-base-images: /usr/local/go is $local_go, $golang_tag needs go$go_version" >&2
	exit 2
fi

work=$(mktemp -d /var/tmp/homeport-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

echo "local-base-images: debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
clean() { rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb "$1"/var/log/*.log "$1"/tmp/*; }
clean "$root"
rm -f "$root/etc/resolv.conf" "$root/etc/hostname" # the engine provides them

if ! have "$debian_tag"; then
	echo "local-base-images: importing $debian_tag"
	tar -C "$root" --numeric-owner -c . | eng import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' - "$debian_tag" >/dev/null
fi

if ! have "$golang_tag"; then
	echo "local-base-images: $golang_tag: gcc, libc6-dev, make, git, ca-certificates and /usr/local/go"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	install -d "$root/usr/local/share/ca-certificates"
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
	mount --bind /proc "$root/proc"
	trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
	chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev make git ca-certificates pkg-config openssh-client >/dev/null && update-ca-certificates >/dev/null'
	umount "$root/proc"
	clean "$root"
	rm -f "$root/etc/resolv.conf"
	cp -a /usr/local/go "$root/usr/local/go"
	install -d -m 1777 "$root/go" "$root/go/bin" "$root/go/src"
	tar -C "$root" --numeric-owner -c . | eng import \
		--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV GOLANG_VERSION='"$go_version" \
		--change 'ENV GOTOOLCHAIN=local' \
		--change 'ENV GOPATH=/go' \
		--change 'WORKDIR /go' \
		--change 'CMD ["bash"]' - "$golang_tag" >/dev/null
fi
eng images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "debian|golang"
