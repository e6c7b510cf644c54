#!/usr/bin/env bash
# connsteps.sh: where the time of a new connection goes, hop by hop.
#
# Runs BenchmarkVersusOpenSSHD's sequential churn (HOMEPORT_BENCH_CHURN,
# one connection after another) and captures 1 s of loopback packets while
# it runs through homeport, then 1 s through sshd-tuned, and prints for
# each path the median time of every step of a connection (client SYN,
# HAProxy's connect to the tunnel port, the tunnel's packet, the dial of
# the service...), from the client's SYN. Needs root, tcpdump and what the
# bench needs (deploy/install-deps.sh).
#
#   deploy/bench/connsteps.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
command -v tcpdump >/dev/null || { echo "connsteps: needs tcpdump (apt-get install tcpdump)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd home && go test -c -o "$work/tb" ./internal/tunnel)
cd home/internal/tunnel
HOMEPORT_BENCH_CHURN=8 HOMEPORT_BENCH_WORKERS=1 HOMEPORT_BENCH_FANOUT=0 \
	"$work/tb" -test.run '^$' -test.bench VersusOpenSSHD -test.benchtime 1x >"$work/churn.out" 2>&1 &
bench=$!
capture() { # wait for the path's churn to start, then take 1 s of packets
	for _ in $(seq 600); do grep -q "churn $1 for" "$work/churn.out" && break; sleep 0.25; done
	sleep 2
	ss -ltnpH >"$work/listen-$1.txt"
	timeout 1 tcpdump -i lo -nn -w "$work/$1.pcap" 2>/dev/null || true
}
capture homeport
capture sshd-tuned
wait "$bench" || true
grep '^churn .*:' "$work/churn.out"
for path in homeport sshd-tuned; do
	echo "== $path"
	python3 "$root/deploy/bench/connsteps.py" "$work/listen-$path.txt" "$work/$path.pcap"
done
