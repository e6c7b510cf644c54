"""Median time of each step of a new connection, from a loopback capture.

usage: connsteps.py LISTEN PCAP, where LISTEN is `ss -ltnpH` taken during
the capture (which process listens where) and PCAP a tcpdump of lo while
new connections are made one after another (deploy/bench/connsteps.sh).
"""
import collections
import re
import statistics
import subprocess
import sys

listen = {}
for l in open(sys.argv[1]):
    f = l.split()
    port = int(f[3].rsplit(':',1)[1]); m = re.search(r'"([^"]+)"', l)
    listen[port] = m.group(1) if m else '?'
pat = re.compile(r'^(\d+\.\d+) IP (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\].*length (\d+)')
out = subprocess.run(['tcpdump','-nn','-tt','-r',sys.argv[2]], capture_output=True, text=True).stdout
P = []
for line in out.splitlines():
    m = pat.search(line)
    if m: P.append((float(m.group(1)), int(m.group(3)), int(m.group(5)), m.group(6), int(m.group(7))))
# roles: the busiest listening ports by SYN count
syns = collections.Counter(p[2] for p in P if p[3] == 'S' and p[2] in listen)
print('SYNs by port:', [(listen[k], k, n) for k, n in syns.most_common(4)])
pub = [k for k, n in syns.most_common() if listen[k] == 'haproxy'][0]
tun = [k for k, n in syns.most_common() if listen[k] in ('cloud', 'sshd')][0]
svc = [k for k, n in syns.most_common() if listen[k] not in ('haproxy', 'cloud', 'sshd')][0]
# the SSH connection: the busiest non-SYN flow with a cloud/sshd listener other than tun
flows = collections.Counter((p[1], p[2]) for p in P if p[2] in listen and listen[p[2]] in ('cloud', 'sshd') and p[2] != tun and p[4] > 0)
sshport = flows.most_common(1)[0][0][1]
print('public', pub, 'tunnel', tun, 'service', svc, 'ssh', sshport)
names = ['client SYN', 'client data', 'HAProxy SYN to tunnel port', 'first data to tunnel port', 'last data to tunnel port',
         'SSH data edge->home', 'home SYN to service', 'data to service', 'service reply', 'SSH data home->edge',
         'reply tunnel port->HAProxy', 'reply HAProxy->client']
rows = []
i = 0
while i < len(P):
    p = P[i]
    if not (p[3] == 'S' and p[2] == pub):
        i += 1; continue
    t = [p[0]]; cport = p[1]; j = i + 1
    def find(cond, start):
        for k in range(start, min(len(P), start + 400)):
            if cond(P[k]): return k
        return None
    k = find(lambda q: q[1] == cport and q[2] == pub and q[4] > 0, j)
    if k is None: i += 1; continue
    t.append(P[k][0])
    k2 = find(lambda q: q[3] == 'S' and q[2] == tun, i)
    if k2 is None: i += 1; continue
    t.append(P[k2][0]); tport = P[k2][1]
    k3 = find(lambda q: q[1] == tport and q[2] == tun and q[4] > 0, k2)
    if k3 is None: i += 1; continue
    t.append(P[k3][0])
    # last data to tunnel port before the service SYN
    k4 = find(lambda q: q[3] == 'S' and q[2] == svc, k3)
    if k4 is None: i += 1; continue
    last = max(q for q in range(k3, k4) if P[q][1] == tport and P[q][2] == tun and P[q][4] > 0)
    t.append(P[last][0])
    ks = find(lambda q: q[1] == sshport and q[4] > 0, last)
    t.append(P[ks][0] if ks is not None and ks < k4 else float('nan'))
    t.append(P[k4][0]); vport = P[k4][1]
    k5 = find(lambda q: q[1] == vport and q[2] == svc and q[4] > 0, k4)
    k6 = find(lambda q: q[1] == svc and q[2] == vport and q[4] > 0, k4)
    if k5 is None or k6 is None: i += 1; continue
    t.append(P[k5][0]); t.append(P[k6][0])
    k7 = find(lambda q: q[2] == sshport and q[4] > 0, k6)
    k8 = find(lambda q: q[1] == tun and q[2] == tport and q[4] > 0, k6)
    k9 = find(lambda q: q[1] == pub and q[2] == cport and q[4] > 0, k6)
    if None in (k7, k8, k9): i += 1; continue
    t += [P[k7][0], P[k8][0], P[k9][0]]
    rows.append([(x - t[0]) * 1e6 for x in t])
    i = k + 1
print(len(rows), 'connections')
prev = 0
for n, name in enumerate(names):
    vals = [r[n] for r in rows if r[n] == r[n]]
    med = statistics.median(vals)
    print('%-28s %6.0f us  (+%4.0f)' % (name, med, med - prev))
    prev = med
