#!/bin/sh
# Regenerates third_party/golang.org/x/crypto: the packages of
# golang.org/x/crypto that homeport builds with, copied from the Go module
# cache at $VERSION, plus xcrypto-ssh.patch (pooled receive buffers for SSH
# channel data; see third_party/README.md), formatted with gofmt. Run it
# after changing VERSION, then build and `go test golang.org/x/crypto/ssh`
# from home/.
#
#	third_party/xcrypto.sh           rewrite the copy
#	third_party/xcrypto.sh --check   exit 1 if the committed copy differs
#	third_party/xcrypto.sh --diff    rewrite the patch from the edited copy
set -eu
VERSION=v0.58.0
# The packages the modules import (go list -deps -test ./... in each), and
# what the ssh package's own tests need.
PACKAGES="acme acme/autocert argon2 bcrypt blake2b blowfish chacha20
cryptobyte cryptobyte/asn1 curve25519 internal/alias internal/poly1305 ocsp
ssh ssh/internal/bcrypt_pbkdf ssh/terminal ssh/testdata"

here=$(cd "$(dirname "$0")" && pwd)
dest=$here/golang.org/x/crypto
src=$(cd "$here/../home" && go mod download -json golang.org/x/crypto@$VERSION |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "xcrypto.sh: golang.org/x/crypto@$VERSION not in the module cache" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cp "$src/go.mod" "$src/go.sum" "$src/LICENSE" "$src/PATENTS" "$out/"
for p in $PACKAGES; do
	mkdir -p "$out/$p"
	for f in "$src/$p"/*; do
		[ -f "$f" ] || continue
		case $p/$(basename "$f") in
		ssh/*_test.go | ssh/testdata/*) cp "$f" "$out/$p/" ;; # upstream's ssh tests run against the patch
		*_test.go) ;;
		*) cp "$f" "$out/$p/" ;;
		esac
	done
done
chmod -R u+w "$out"
# Upstream leaves ssh/testdata/keys.go unformatted; the repository's Go is
# all gofmt-clean, and formatting changes nothing else. The patch applies
# to the formatted copy.
gofmt -w "$out"

if [ "${1:-}" = --diff ]; then
	mkdir "$out.d"
	trap 'rm -rf "$out" "$out.d"' EXIT
	mv "$out" "$out.d/a"
	cp -r "$dest" "$out.d/b"
	# diff exits 1 when the trees differ, which is the point here.
	(cd "$out.d" && diff -ruN a b | sed -E 's/^(---|\+\+\+) ([^\t]*)\t.*/\1 \2/' >"$here/xcrypto-ssh.patch") || true
	echo "third_party/xcrypto-ssh.patch: $(grep -c '' "$here/xcrypto-ssh.patch") lines"
	exit 0
fi
(cd "$out" && patch -s -p1 <"$here/xcrypto-ssh.patch")

if [ "${1:-}" = --check ]; then
	if ! diff -r "$out" "$dest" >/dev/null; then
		echo "xcrypto.sh: third_party/golang.org/x/crypto differs from $VERSION + xcrypto-ssh.patch;" >&2
		echo "  edit the patch, not the copy, then run third_party/xcrypto.sh" >&2
		exit 1
	fi
	exit 0
fi
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
cp -r "$out" "$dest"
echo "third_party/golang.org/x/crypto: $VERSION + xcrypto-ssh.patch"
