package tunnel_test

import (
	"bufio"
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/hometest"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// Bounds of BenchmarkVersusOpenSSHD's measurements (each round, each path).
const (
	vsBytes       = 256 << 20 // per throughput transfer (stops earlier at vsDuration)
	vsDuration    = 5 * time.Second
	vsRoundTrips1 = 1000 // 64-byte round trips on 1 connection
	vsRoundTrips  = 100  // per connection at 64 connections
	vsSequential  = 1000 // new connections one after another
	vsParallel    = 2000 // new connections by vsWorkers workers
	vsWorkers     = 16
)

// BenchmarkVersusOpenSSHD measures, in one run and interleaved rounds, the
// path visitor -> HAProxy -> tunnel -> local service of homeport against
// what users would otherwise run: the same cloud's HAProxy (same config,
// same frontend style: public TCP port -> tunnel port with a PROXY v2
// header) in front of OpenSSH's sshd, started by the bench on a loopback
// port with its own config and host key, and `ssh -R` with
// aes128-gcm@openssh.com:
//
//   - sshd-tuned: TCP_NODELAY on both ends. OpenSSH 9.2's client sets it on
//     its SSH socket by itself (also with -N: no session means
//     "interactive"); sshd sets it on its SSH socket only when a session
//     gets a pty, so this client runs `-tt ... sleep` (strace: sshd's
//     setsockopt(TCP_NODELAY) comes from the pty session, never with -N);
//   - sshd-N: `ssh -N -R` (sshd's SSH socket keeps Nagle);
//   - homeport: `cloud serve`'s SSH endpoint and the home agent's supervisor
//     and gateway (this test binary re-executed);
//   - direct: no tunnel, the service itself on a home's tunnel port behind
//     the same HAProxy: the most any tunnel can reach on this machine;
//   - relay (new connections only): a second HAProxy on a home's tunnel
//     port relays to the service: no tunnel, but the accept, connect and
//     copying that any tunnel adds to the direct path, done once, in one
//     process, by HAProxy (C, one event loop per thread). A tunnel does
//     that work and more in two processes (the edge's endpoint and the
//     home's client), so relay/tuned is more than any tunnel's new
//     connections can reach against OpenSSH's on this machine.
//
// Figures per path: download and upload on 1 stream, download on 4 streams,
// 64-byte round trips on 1 connection (p50, p99), round trips/s on 64
// connections, new connections per second (1,000 sequential; 2,000 by 16
// workers; each one connects, sends 64 bytes and reads them back), and the
// CPU time of every process on the path (cloud serve or sshd with its
// children, HAProxy, the tunnel client) per GB during the transfers and per
// new connection during the connection figures. Then the
// edge fan-out: HTTP requests through HAProxy at 64 concurrent clients to
// 500 different homes (all in one agent process, as shipped: one
// processor, sysmon polling) vs to one of them, with each process's CPU
// per request; then the same with the agent stopped and sshd owning the
// 500 homes' tunnel ports through 500 tuned `ssh -R` clients (about 45 s
// to start them).
//
// It prints each figure's median and min..max over the rounds and the
// ratios homeport/anchor per round. It runs as root (sshd):
//
//	cd home && go test ./internal/tunnel -run '^$' -bench VersusOpenSSHD -benchtime 1x
//
// HOMEPORT_BENCH_ROUNDS sets the rounds (default 4), HOMEPORT_BENCH_FANOUT=0
// leaves the fan-out out, HOMEPORT_BENCH_FANOUT_ANCHOR=0 its sshd part,
// HOMEPORT_BENCH_FAN_HOMES=N sets its number of homes, HOMEPORT_BENCH_REUSE=0 runs the cloud with
// --reuse-home-connections=false, HOMEPORT_BENCH_SPARES=N with
// --ssh-spare-channels=N, HOMEPORT_BENCH_HOME_PROCS=N runs the home agent
// with GOMAXPROCS=N instead of tunnel.AgentProcs (HOMEPORT_BENCH_HOME_GOGC=N
// with GOGC=N), HOMEPORT_BENCH_CLOUD_PROCS=N
// the cloud instead of its own choice (all processors but one). HOMEPORT_BENCH_CHURN=SECONDS measures nothing but
// makes new connections (16 workers, or HOMEPORT_BENCH_WORKERS) to homeport, then to sshd-tuned, for
// that long each, printing the pids to profile (perf record -g -p PID)
// and each process's CPU per connection (µs); HOMEPORT_BENCH_RTT=SECONDS
// does the same with round trips on 64 connections (µs per round trip),
// HOMEPORT_BENCH_TRANSFER=U (or D) with uploads (downloads) for 10 s each
// (s per GB).
func BenchmarkVersusOpenSSHD(b *testing.B) {
	testnet.RequireCommand(b, "ssh", "apt-get install openssh-client (deploy/install-deps.sh does)")
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		b.Skip("no /usr/sbin/sshd: apt-get install openssh-server (deploy/install-deps.sh does)")
	}
	if os.Geteuid() != 0 {
		b.Skip("sshd must run as root (privilege separation)")
	}
	warnConntrack()
	rounds := 4
	if v, err := strconv.Atoi(os.Getenv("HOMEPORT_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	fanout := os.Getenv("HOMEPORT_BENCH_FANOUT") != "0"
	slots := 5
	if fanout {
		slots = vsFanHomes + 5
	}
	c := hometest.Start(b, hometest.Options{Slots: slots, Args: []string{"--homes-per-user", strconv.Itoa(slots),
		// Above the 64 connections of one figure: the limits are not what is measured.
		"--ssh-channels-per-home", "1024", "--ssh-channels-per-conn", "1024", "--route-maxconn", "1024",
		// The fan-out's 500 homes are claimed and mapped by one account.
		"--write-rate", "100000",
		// HTTP to homes without a PROXY header, so HAProxy reuses its
		// connections to a home across visitors (HOMEPORT_BENCH_REUSE=0:
		// one connection per visitor, with the header, as before).
		"--reuse-home-connections=" + strconv.FormatBool(os.Getenv("HOMEPORT_BENCH_REUSE") != "0"),
		// HAProxy's idle pool is a quarter of the edge's channels, which
		// this machine's 20,000 files hold for 504 homes only with a small
		// reserve for direct-tcpip opens (not measured; default 32 each).
		"--ssh-pending-per-home", "4",
		// Channels opened ahead of visitors (HOMEPORT_BENCH_SPARES=N sets
		// how many per port; 0 opens each visitor's channel on arrival).
		"--ssh-spare-channels", cmp.Or(os.Getenv("HOMEPORT_BENCH_SPARES"), "2")},
		Env: cloudProcsEnv()})
	u := c.CreateUser(b, "bench")
	hp, tuned, plainN, direct, relayHome := c.ClaimHome(b, u), c.ClaimHome(b, u), c.ClaimHome(b, u), c.ClaimHome(b, u), c.ClaimHome(b, u)
	hpMap := hp.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: hp.TCPPorts.First})
	tunedMap := tuned.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: tuned.TCPPorts.First})
	nMap := plainN.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: plainN.TCPPorts.First})
	directMap := direct.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: direct.TCPPorts.First})
	relayMap := relayHome.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: relayHome.TCPPorts.First})
	cloudPid, haproxyPid := c.Pids()

	plain := benchService(b, false)
	withHeader := benchService(b, true) // ssh -R passes HAProxy's PROXY header on
	public := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

	// The anchor: OpenSSH's sshd owns the other two homes' tunnel ports
	// (they never connect to the cloud), so HAProxy routes to it as to a home.
	sshdAddr, sshdPid, user, key := startSSHD(b)
	tunedPid := startSSHClient(b, sshdAddr, user, key, tunedMap.TunnelPort, withHeader, true)
	nPid := startSSHClient(b, sshdAddr, user, key, nMap.TunnelPort, withHeader, false)
	// No tunnel: the service itself listens on the fourth home's tunnel
	// port, the most any tunnel's figures can reach on this machine.
	benchServiceAt(b, public(directMap.TunnelPort), true)
	homePid, _ := startBenchHome(b, benchHomeConfig{
		Slug: hp.Slug, Addr: hp.SSHAddr(), KeyPath: hp.KeyPath, HostKey: hp.SSH.HostKey,
		TunnelPort: hpMap.TunnelPort, Target: plain,
	})

	paths := []vsPath{
		{name: "homeport", addr: public(hpMap.PublicPort), self: []int{cloudPid}, trees: []int{haproxyPid, homePid}},
		{name: "sshd-tuned", addr: public(tunedMap.PublicPort), trees: []int{haproxyPid, sshdPid, tunedPid}},
		{name: "sshd-N", addr: public(nMap.PublicPort), trees: []int{haproxyPid, sshdPid, nPid}},
		{name: "direct", addr: public(directMap.PublicPort), trees: []int{haproxyPid}},
	}
	relayPid := startRelay(b, relayMap.TunnelPort, plain)
	relay := vsPath{name: "relay", addr: public(relayMap.PublicPort), trees: []int{haproxyPid, relayPid}, connsOnly: true}
	paths = append(paths, relay)
	if secs, _ := strconv.Atoi(os.Getenv("HOMEPORT_BENCH_CHURN")); secs > 0 {
		// The channel-open path: new connections with vsWorkers workers
		// (HOMEPORT_BENCH_WORKERS=1: one after the other).
		workers := vsWorkers
		if v, err := strconv.Atoi(os.Getenv("HOMEPORT_BENCH_WORKERS")); err == nil && v > 0 {
			workers = v
		}
		profile(b, []vsPath{paths[0], paths[1], paths[3], relay}, "churn", time.Duration(secs)*time.Second, "connection", 1e6, func(addr string, d time.Duration) (float64, error) {
			_, n, err := connRateFor(addr, workers, d)
			return float64(n), err
		})
		return
	}
	if secs, _ := strconv.Atoi(os.Getenv("HOMEPORT_BENCH_RTT")); secs > 0 {
		// Round trips on 64 connections at once.
		profile(b, paths[:2], "rtt", time.Duration(secs)*time.Second, "round trip", 1e6, func(addr string, d time.Duration) (float64, error) {
			var total int
			for end := time.Now().Add(d); time.Now().Before(end); {
				_, _, n, err := latency(addr, 64, vsRoundTrips)
				if err != nil {
					return 0, err
				}
				total += n + 64*benchWarmup
			}
			return float64(total), nil
		})
		return
	}
	if mode := os.Getenv("HOMEPORT_BENCH_TRANSFER"); mode == "U" || mode == "D" {
		// 1-stream uploads (U) or downloads (D), CPU per GB.
		profile(b, paths[:2], "transfer "+mode, 10*time.Second, "GB", 1, func(addr string, d time.Duration) (float64, error) {
			var moved int64
			for end := time.Now().Add(d); time.Now().Before(end); {
				n, _, err := transferFor(addr, mode[0], 1, vsBytes, vsDuration)
				if err != nil {
					return 0, err
				}
				moved += n
			}
			return float64(moved) / 1e9, nil
		})
		return
	}
	results := map[string][]vsResult{}
	for b.Loop() {
		for r := range rounds {
			for i := range paths { // a different path goes first each round
				p := paths[(i+r)%len(paths)]
				res, err := p.measure()
				if err != nil {
					b.Fatalf("round %d, %s: %v", r+1, p.name, err)
				}
				results[p.name] = append(results[p.name], res)
			}
		}
	}
	vsReport(results, rounds)
	printSpareUse(c)
	if fanout {
		fanOut(b, c, u, sshdServer{sshdAddr, sshdPid, user, key})
	}
}

// profile puts one kind of load on each path for d (homeport, then
// sshd-tuned), printing first the pids to profile (perf record -g -p PID,
// strace -c -f -p PID), then the load's rate and the CPU of each process
// per unit of it (in seconds times scale: 1e6 prints microseconds).
func profile(b *testing.B, paths []vsPath, what string, d time.Duration, unit string, scale float64, load func(addr string, d time.Duration) (units float64, err error)) {
	for _, p := range paths {
		fmt.Printf("%s %s for %s: pids self %v trees %v\n", what, p.name, d, p.self, p.trees)
		before := perProcessCPU(p)
		start := time.Now()
		units, err := load(p.addr, d)
		if err != nil {
			b.Fatalf("%s, %s: %v", what, p.name, err)
		}
		rate := units / time.Since(start).Seconds()
		var per []string
		for i, c := range perProcessCPU(p) {
			per = append(per, fmt.Sprintf("%.3g", (c-before[i]).Seconds()*scale/units))
		}
		fmt.Printf("%s %s: %.4g %s/s, CPU per %s by process (self, then trees) %s\n", what, p.name, rate, unit, unit,
			strings.Join(per, " "))
	}
}

// printSpareUse prints how homeport's visitors got their channel: a spare
// opened ahead of them (--ssh-spare-channels) or one opened for them.
func printSpareUse(c *hometest.Cloud) {
	for _, line := range visitorChannels(c) {
		fmt.Println("cloud:", line)
	}
}

// visitorChannels is the cloud's homeport_ssh_visitor_channels_total lines.
func visitorChannels(c *hometest.Cloud) []string {
	resp, err := http.Get(c.APIURL + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "homeport_ssh_visitor_channels_total{") {
			lines = append(lines, line)
		}
	}
	return lines
}

// visitorsTotal is how many visitors the cloud's tunnel ports accepted.
func visitorsTotal(c *hometest.Cloud) int64 {
	var n int64
	for _, line := range visitorChannels(c) {
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		n += int64(v)
	}
	return n
}

// warnConntrack warns when the kernel's connection-tracking table is over
// half full. Each new connection of the bench is tracked on every hop
// (client -> HAProxy -> tunnel port, home -> service, and the anchor's),
// and a closed one stays for nf_conntrack_tcp_timeout_time_wait (120 s by
// default): runs back to back can fill the table, and then the kernel
// drops SYNs (dmesg: "nf_conntrack: table full"), which shows as 1 s
// stalls and timeouts that have nothing to do with what is measured.
func warnConntrack() {
	read := func(name string) int {
		b, err := os.ReadFile("/proc/sys/net/netfilter/" + name)
		if err != nil {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	count, max := read("nf_conntrack_count"), read("nf_conntrack_max")
	if max > 0 && count > max/2 {
		fmt.Printf("WARNING: the connection-tracking table holds %d of %d entries; this run may fill it (the kernel then drops new connections). "+
			"Wait %ds, or raise net.netfilter.nf_conntrack_max.\n", count, max, read("nf_conntrack_tcp_timeout_time_wait"))
	}
}

// perProcessCPU is the CPU time of each process of p: the self ones alone,
// then the trees with their descendants.
func perProcessCPU(p vsPath) []time.Duration {
	var out []time.Duration
	for _, pid := range p.self {
		out = append(out, pathCPU([]int{pid}, nil))
	}
	for _, pid := range p.trees {
		out = append(out, pathCPU(nil, []int{pid}))
	}
	return out
}

// vsPath is one way to the local service and the processes it runs on.
type vsPath struct {
	name  string
	addr  string // HAProxy's public port
	self  []int  // processes counted alone (cloud serve: its HAProxy is in trees)
	trees []int  // processes counted with their descendants
	// connsOnly: measure new connections only (the relay)
	connsOnly bool
}

type vsResult struct {
	down, up, down4    float64 // MB/s
	p50, p99           time.Duration
	rtps               float64 // round trips/s at 64 connections
	seqConns, parConns float64 // new connections/s
	cpuPerConn         float64 // CPU µs of every process on the path per new connection
	cpuPerGB           float64 // CPU seconds of every process on the path per GB moved
}

func (p vsPath) cpu() time.Duration {
	return pathCPU(p.self, p.trees)
}

func (p vsPath) measure() (vsResult, error) {
	var r vsResult
	if p.connsOnly {
		return p.measureConns(r)
	}
	before := p.cpu()
	n1, d1, err := vsTransfer(p.addr, 'D', 1)
	if err != nil {
		return r, fmt.Errorf("download: %w", err)
	}
	nu, du, err := vsTransfer(p.addr, 'U', 1)
	if err != nil {
		return r, fmt.Errorf("upload: %w", err)
	}
	n4, d4, err := vsTransfer(p.addr, 'D', benchStreams)
	if err != nil {
		return r, fmt.Errorf("download, %d streams: %w", benchStreams, err)
	}
	used := p.cpu() - before
	r.down, r.up, r.down4 = mbps(n1, d1), mbps(nu, du), mbps(n4, d4)
	r.cpuPerGB = used.Seconds() / (float64(n1+nu+n4) / 1e9)
	if r.p50, r.p99, _, err = latency(p.addr, 1, vsRoundTrips1); err != nil {
		return r, fmt.Errorf("round trips, 1 connection: %w", err)
	}
	start := time.Now()
	_, _, n, err := latency(p.addr, 64, vsRoundTrips)
	if err != nil {
		return r, fmt.Errorf("round trips, 64 connections: %w", err)
	}
	r.rtps = float64(n+64*benchWarmup) / time.Since(start).Seconds()
	return p.measureConns(r)
}

// measureConns adds the new-connection figures to r.
func (p vsPath) measureConns(r vsResult) (vsResult, error) {
	before := p.cpu()
	var c1, c16 int
	var err error
	if r.seqConns, c1, err = connRate(p.addr, 1, vsSequential); err != nil {
		return r, fmt.Errorf("sequential connections: %w", err)
	}
	if r.parConns, c16, err = connRate(p.addr, vsWorkers, vsParallel); err != nil {
		return r, fmt.Errorf("connections, %d workers: %w", vsWorkers, err)
	}
	r.cpuPerConn = float64((p.cpu() - before).Microseconds()) / float64(c1+c16)
	return r, nil
}

func vsTransfer(addr string, mode byte, streams int) (int64, time.Duration, error) {
	return transferFor(addr, mode, streams, vsBytes/uint64(streams), vsDuration)
}

// connRate makes total new connections (fewer if vsDuration runs out) with
// workers goroutines; each connection asks for the echo, sends
// benchMessage bytes, reads them back and closes. It returns connections
// per second and how many connections it made.
func connRate(addr string, workers, total int) (float64, int, error) {
	return connRateLimited(addr, workers, total, vsDuration)
}

// connRateFor makes new connections as connRate does for d.
func connRateFor(addr string, workers int, d time.Duration) (float64, int, error) {
	return connRateLimited(addr, workers, 1<<30, d)
}

func connRateLimited(addr string, workers, total int, limit time.Duration) (float64, int, error) {
	var next, done atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(limit)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 1+benchMessage)
			msg[0] = 'E'
			reply := make([]byte, benchMessage)
			for next.Add(1) <= int64(total) && time.Now().Before(end) {
				if err := oneConn(addr, msg, reply); err != nil {
					errs[w] = err
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, 0, err
		}
	}
	return float64(done.Load()) / elapsed.Seconds(), int(done.Load()), nil
}

func oneConn(addr string, msg, reply []byte) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_, err = io.ReadFull(c, reply)
	return err
}

// pathCPU is the CPU time (user + system) of the processes in self and of
// those in trees with all their descendants.
func pathCPU(self, trees []int) time.Duration {
	var total time.Duration
	for _, pid := range self {
		total += usage(pid).cpu
	}
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid := parentPid(pid); ppid > 0 {
			children[ppid] = append(children[ppid], pid)
		}
	}
	seen := map[int]bool{}
	var walk func(int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		total += usage(pid).cpu
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, pid := range trees {
		walk(pid)
	}
	return total
}

func parentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// startSSHD runs OpenSSH's sshd on a free loopback port with its own
// config, host key and authorized_keys (one fresh client key, for root),
// remote forwarding only. It returns the address, the listener's pid, the
// user and the client key's path.
func startSSHD(b *testing.B) (addr string, pid int, user, keyPath string) {
	b.Helper()
	dir := b.TempDir()
	hostKey := writeKey(b, filepath.Join(dir, "host_key"))
	keyPath = filepath.Join(dir, "client_key")
	clientKey := writeKey(b, keyPath)
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, ssh.MarshalAuthorizedKey(clientKey.PublicKey()), 0o600); err != nil {
		b.Fatal(err)
	}
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	port := testnet.FreePort(b)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(dir, "sshd_config")
	text := fmt.Sprintf(`ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
AllowTcpForwarding remote
GatewayPorts no
X11Forwarding no
Ciphers aes128-gcm@openssh.com
MaxStartups 100
LogLevel INFO
`, addr, filepath.Join(dir, "host_key"), ak)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	_ = hostKey
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", conf)
	pid, _ = startReady(b, cmd, "sshd", "Server listening on", false, true)
	return addr, pid, "root", keyPath
}

// writeKey writes a fresh ed25519 key in OpenSSH format (0600).
func writeKey(b *testing.B, path string) ssh.Signer {
	b.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		b.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// startSSHClient runs `ssh -R 127.0.0.1:tunnelPort:target` against sshd;
// tuned asks for a pty (-tt, running sleep) so that sshd sets TCP_NODELAY
// on its end, else -N. It returns once the forward is up.
func startSSHClient(b *testing.B, sshdAddr, user, key string, tunnelPort int, target string, tuned bool) int {
	b.Helper()
	host, port, _ := net.SplitHostPort(sshdAddr)
	args := []string{"-F", "/dev/null", "-v", "-c", "aes128-gcm@openssh.com",
		"-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
		"-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
		"-p", port, "-R", fmt.Sprintf("127.0.0.1:%d:%s", tunnelPort, target)}
	if tuned {
		args = append(args, "-tt", user+"@"+host, "sleep", "3600")
	} else {
		args = append(args, "-N", "-T", user+"@"+host)
	}
	pid, _ := startReady(b, exec.Command("ssh", args...), "ssh", "remote forward success", false, true)
	return pid
}

func vsReport(results map[string][]vsResult, rounds int) {
	type figure struct {
		name, unit string
		higher     bool
		get        func(vsResult) float64
		conns      bool // a new-connection figure: the relay has it too
	}
	figures := []figure{
		{"download, 1 stream", "MB/s", true, func(r vsResult) float64 { return r.down }, false},
		{"upload, 1 stream", "MB/s", true, func(r vsResult) float64 { return r.up }, false},
		{fmt.Sprintf("download, %d streams", benchStreams), "MB/s", true, func(r vsResult) float64 { return r.down4 }, false},
		{"round trip p50, 1 conn", "µs", false, func(r vsResult) float64 { return float64(r.p50.Microseconds()) }, false},
		{"round trip p99, 1 conn", "µs", false, func(r vsResult) float64 { return float64(r.p99.Microseconds()) }, false},
		{"round trips/s, 64 conns", "1/s", true, func(r vsResult) float64 { return r.rtps }, false},
		{fmt.Sprintf("new conns, %d sequential", vsSequential), "conn/s", true, func(r vsResult) float64 { return r.seqConns }, true},
		{fmt.Sprintf("new conns, %d workers", vsWorkers), "conn/s", true, func(r vsResult) float64 { return r.parConns }, true},
		{"CPU per GB, whole path", "s", false, func(r vsResult) float64 { return r.cpuPerGB }, false},
		{"CPU per new conn, whole path", "µs", false, func(r vsResult) float64 { return r.cpuPerConn }, true},
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "figure (%d rounds)\thomeport\tsshd-tuned\tsshd-N\tdirect\trelay\thomeport/tuned\thomeport/N\thomeport/direct\ttuned/direct\trelay/tuned\t\n", rounds)
	for _, f := range figures {
		col := func(name string) (vals []float64) {
			for _, r := range results[name] {
				vals = append(vals, f.get(r))
			}
			return vals
		}
		hp, tuned, n, direct := col("homeport"), col("sshd-tuned"), col("sshd-N"), col("direct")
		var relay []float64
		if f.conns {
			relay = col("relay")
		}
		format := "%.0f"
		if f.unit == "s" {
			format = "%.2f"
		}
		fmt.Fprintf(w, "%s (%s, %s)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.name, f.unit, better(f.higher),
			spread(hp, format), spread(tuned, format), spread(n, format), spread(direct, format), spread(relay, format),
			spread(ratios(hp, tuned), "%.2f"), spread(ratios(hp, n), "%.2f"),
			spread(ratios(hp, direct), "%.2f"), spread(ratios(tuned, direct), "%.2f"), spread(ratios(relay, tuned), "%.2f"))
	}
	w.Flush()
	fmt.Println("median (min..max); ratios are homeport/anchor taken round by round.")
}

func better(higher bool) string {
	if higher {
		return "higher is better"
	}
	return "lower is better"
}

func ratios(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		out = append(out, a[i]/b[i])
	}
	return out
}

// spread formats the median and the range of vals.
func spread(vals []float64, format string) string {
	if len(vals) == 0 {
		return "-"
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	return fmt.Sprintf(format+" ("+format+".."+format+")", s[len(s)/2], s[0], s[len(s)-1])
}

// sshdServer is the anchor's sshd: its address, its listener's pid, the
// user and the client key's path.
type sshdServer struct {
	addr      string
	pid       int
	user, key string
}

// startRelay runs a second HAProxy on the tunnel port, relaying to target:
// no tunnel, but the accept, connect and relay every tunnel adds.
func startRelay(b *testing.B, tunnelPort int, target string) int {
	b.Helper()
	conf := filepath.Join(b.TempDir(), "relay.cfg")
	text := fmt.Sprintf(`global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend relay
    bind 127.0.0.1:%d accept-proxy
    default_backend service
backend service
    server s %s
`, tunnelPort, target)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	pid, _ := startReady(b, exec.Command("haproxy", "-W", "-db", "-f", conf), "relay haproxy", "Loading success", false, true)
	return pid
}
