package tunnel_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// Bounds of each measurement.
const (
	benchBytes       = 1 << 30 // a throughput run stops after this many bytes or benchDuration
	benchDuration    = 10 * time.Second
	benchStreams     = 4
	benchMessage     = 64 // bytes per latency request and response
	benchRoundTrips1 = 2000
	benchRoundTrips  = 200 // per connection at 64 connections
	benchWarmup      = 10  // round trips per connection not counted
)

// BenchmarkDataPath compares, in one run, three ways to a local service
// behind a public TCP port:
//
//   - direct: the client connects to the local service (the baseline);
//   - openssh: `ssh -N -R` with aes128-gcm@openssh.com, behind the same
//     cloud and HAProxy (what users of a plain SSH tunnel have today);
//   - homeport: the supervisor and gateway, and again with proto/batchconn
//     under the SSH transport (the comparison that keeps it out).
//
// Each tunnel client runs in its own process (OpenSSH's ssh; this test
// binary re-executed as the home agent), so that its CPU time per GB can be
// compared. It prints download throughput with 1 and 4 streams, echo latency
// p50/p99 with 1 and 64 connections, and the homeport/OpenSSH ratios.
//
//	go test -run '^$' -bench DataPath -benchtime 1x ./internal/tunnel/
func BenchmarkDataPath(b *testing.B) {
	testnet.RequireCommand(b, "ssh", "apt-get install openssh-client (deploy/install-deps.sh does)")
	c := hometest.Start(b, hometest.Options{})
	u := c.CreateUser(b, "bench")
	hp, ossh := c.ClaimHome(b, u), c.ClaimHome(b, u)
	hpMap := hp.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: hp.TCPPorts.First})
	osMap := ossh.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: ossh.TCPPorts.First})

	plain := benchService(b, false)
	withHeader := benchService(b, true) // OpenSSH passes HAProxy's PROXY header on
	public := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

	results := map[string]benchResult{}
	for b.Loop() {
		results["direct"] = measure(b, "direct", plain, 0)
		sshPid, stopSSH := startOpenSSH(b, ossh, osMap.TunnelPort, withHeader)
		results["openssh"] = measure(b, "openssh", public(osMap.PublicPort), sshPid)
		stopSSH()
		for _, batched := range []bool{false, true} {
			name := "homeport"
			if batched {
				name = "homeport-batchconn"
			}
			pid, stop := startBenchHome(b, benchHomeConfig{
				Slug: hp.Slug, Addr: hp.SSHAddr(), KeyPath: hp.KeyPath, HostKey: hp.SSH.HostKey,
				TunnelPort: hpMap.TunnelPort, Target: plain, Batched: batched,
			})
			results[name] = measure(b, name, public(hpMap.PublicPort), pid)
			stop()
		}
	}
	report(results, []string{"direct", "openssh", "homeport", "homeport-batchconn"})
	hpRes, osRes := results["homeport"], results["openssh"]
	b.ReportMetric(hpRes.single, "homeport-MB/s")
	b.ReportMetric(hpRes.single/osRes.single, "homeport/openssh-throughput")
	b.ReportMetric(float64(hpRes.p50x1.Microseconds()), "homeport-p50-µs")
}

type benchResult struct {
	single, multi, up            float64 // MB/s: download 1 and benchStreams streams, upload 1 stream
	downCPU, upCPU               float64 // CPU seconds of the tunnel client per GB
	downCalls, upCalls           float64 // read+write system calls of the tunnel client per MB
	p50x1, p99x1, p50x64, p99x64 time.Duration
	samples1, samples64          int
}

// measure runs every measurement against addr; pid, when not 0, is the
// tunnel client process whose CPU time is counted during the downloads.
func measure(b *testing.B, name, addr string, pid int) benchResult {
	b.Helper()
	var r benchResult
	before := usage(pid)
	n1, d1, err := transfer(addr, 'D', 1, benchBytes)
	if err != nil {
		b.Fatalf("%s: single stream: %v", name, err)
	}
	n4, d4, err := transfer(addr, 'D', benchStreams, benchBytes/benchStreams)
	if err != nil {
		b.Fatalf("%s: %d streams: %v", name, benchStreams, err)
	}
	mid := usage(pid)
	nu, du, err := transfer(addr, 'U', 1, benchBytes)
	if err != nil {
		b.Fatalf("%s: upload: %v", name, err)
	}
	after := usage(pid)
	r.single, r.multi, r.up = mbps(n1, d1), mbps(n4, d4), mbps(nu, du)
	if pid != 0 {
		r.downCPU, r.downCalls = mid.sub(before).per(n1 + n4)
		r.upCPU, r.upCalls = after.sub(mid).per(nu)
	}
	if r.p50x1, r.p99x1, r.samples1, err = latency(addr, 1, benchRoundTrips1); err != nil {
		b.Fatalf("%s: latency, 1 connection: %v", name, err)
	}
	if r.p50x64, r.p99x64, r.samples64, err = latency(addr, 64, benchRoundTrips); err != nil {
		b.Fatalf("%s: latency, 64 connections: %v", name, err)
	}
	return r
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

func report(results map[string]benchResult, order []string) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "path\tdown MB/s\tdown %dx MB/s\tup MB/s\tCPU s/GB down\tup\tsyscalls/MB down\tup\tp50 @1\tp99 @1\tp50 @64\tp99 @64\t\n", benchStreams)
	for _, name := range order {
		r := results[name]
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, r.single, r.multi, r.up,
			opt(r.downCPU), opt(r.upCPU), opt(r.downCalls), opt(r.upCalls), us(r.p50x1), us(r.p99x1), us(r.p50x64), us(r.p99x64))
	}
	hp, ossh := results["homeport"], results["openssh"]
	fmt.Fprintf(w, "homeport/openssh\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
		hp.single/ossh.single, hp.multi/ossh.multi, hp.up/ossh.up, hp.downCPU/ossh.downCPU, hp.upCPU/ossh.upCPU,
		hp.downCalls/ossh.downCalls, hp.upCalls/ossh.upCalls,
		ratio(hp.p50x1, ossh.p50x1), ratio(hp.p99x1, ossh.p99x1), ratio(hp.p50x64, ossh.p50x64), ratio(hp.p99x64, ossh.p99x64))
	w.Flush()
	fmt.Printf("Throughput: higher is better; CPU, system calls (of the tunnel client process) and latency: lower is better.\n"+
		"Transfers stop at %d MiB or %s; latency: %d-byte echo, %d samples @1 and %d @64 connections.\n",
		benchBytes>>20, benchDuration, benchMessage, hp.samples1, hp.samples64)
}

func opt(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func us(d time.Duration) string { return fmt.Sprintf("%dµs", d.Microseconds()) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// procUsage is what a process has consumed so far.
type procUsage struct {
	cpu   time.Duration // user + system
	calls int64         // read and write system calls (/proc/PID/io syscr + syscw)
}

func (u procUsage) sub(v procUsage) procUsage { return procUsage{u.cpu - v.cpu, u.calls - v.calls} }

// per returns CPU seconds per GB and system calls per MB for n bytes.
func (u procUsage) per(n int64) (float64, float64) {
	return u.cpu.Seconds() / (float64(n) / 1e9), float64(u.calls) / (float64(n) / 1e6)
}

// usage reads pid's CPU time and system call counts (zero for pid 0).
func usage(pid int) procUsage {
	var u procUsage
	if pid == 0 {
		return u
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		_, rest, _ := strings.Cut(string(b), ") ")
		if f := strings.Fields(rest); len(f) > 12 { // f[0] is field 3; utime, stime are fields 14, 15
			utime, _ := strconv.ParseInt(f[11], 10, 64)
			stime, _ := strconv.ParseInt(f[12], 10, 64)
			const clockTicks = 100 // USER_HZ
			u.cpu = time.Duration(utime+stime) * time.Second / clockTicks
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			if k == "syscr" || k == "syscw" {
				n, _ := strconv.ParseInt(v, 10, 64)
				u.calls += n
			}
		}
	}
	return u
}

// benchService is the local service of the benchmark: after an optional
// PROXY header, 'D' + 8-byte length asks it to send that many bytes, 'U'
// makes it read until EOF and answer with the count, 'E' turns it into an
// echo of benchMessage-byte messages.
func benchService(b *testing.B, expectProxy bool) string {
	b.Helper()
	return benchServiceAt(b, "127.0.0.1:0", expectProxy)
}

// benchServiceAt is benchService listening on addr.
func benchServiceAt(b *testing.B, addr string, expectProxy bool) string {
	b.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serveBench(c, expectProxy)
			}()
		}
	}()
	return ln.Addr().String()
}

func serveBench(c net.Conn, expectProxy bool) {
	c.SetDeadline(time.Now().Add(2 * benchDuration))
	br := bufio.NewReaderSize(c, 64<<10)
	if expectProxy {
		if _, err := proxyproto.Read(br); err != nil {
			return
		}
	}
	mode, err := br.ReadByte()
	if err != nil {
		return
	}
	switch mode {
	case 'D':
		var n uint64
		if binary.Read(br, binary.BigEndian, &n) != nil {
			return
		}
		buf := make([]byte, 256<<10)
		for sent := uint64(0); sent < n; {
			chunk := buf[:min(uint64(len(buf)), n-sent)]
			if _, err := c.Write(chunk); err != nil {
				return
			}
			sent += uint64(len(chunk))
		}
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, br)
	case 'U':
		n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{br}, make([]byte, 256<<10))
		binary.Write(c, binary.BigEndian, uint64(n))
	case 'E':
		buf := make([]byte, benchMessage)
		for {
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
}

// transfer runs streams parallel downloads (mode 'D') or uploads ('U') of
// perStream bytes each, stopping at benchDuration, and returns the bytes
// moved and the time it took.
func transfer(addr string, mode byte, streams int, perStream uint64) (int64, time.Duration, error) {
	return transferFor(addr, mode, streams, perStream, benchDuration)
}

// transferFor is transfer stopping at limit.
func transferFor(addr string, mode byte, streams int, perStream uint64, limit time.Duration) (int64, time.Duration, error) {
	var wg sync.WaitGroup
	counts := make([]int64, streams)
	errs := make([]error, streams)
	conns := make([]net.Conn, streams)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, 0, err
		}
		defer c.Close()
		conns[i] = c
	}
	start := time.Now()
	deadline := start.Add(limit)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(deadline)
			counts[i], errs[i] = transferOne(c, mode, perStream)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var total int64
	for i := range counts {
		if errs[i] != nil {
			return 0, 0, errs[i]
		}
		total += counts[i]
	}
	return total, elapsed, nil
}

// transferOne moves n bytes over c; running into the deadline is not an
// error, it just ends the transfer.
func transferOne(c net.Conn, mode byte, n uint64) (int64, error) {
	req := make([]byte, 9)
	req[0] = mode
	binary.BigEndian.PutUint64(req[1:], n)
	if mode == 'U' {
		req = req[:1]
	}
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	buf := make([]byte, 256<<10)
	var done int64
	for done < int64(n) {
		var k int
		var err error
		if mode == 'U' {
			k, err = c.Write(buf[:min(int64(len(buf)), int64(n)-done)])
		} else {
			k, err = c.Read(buf)
		}
		done += int64(k)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return done, nil
			}
			return done, fmt.Errorf("after %d bytes: %w", done, err)
		}
	}
	return done, nil
}

// latency opens conns echo connections and makes each do roundTrips
// requests of benchMessage bytes (stopping at benchDuration); it returns the
// median and 99th percentile round trip and the number of samples.
func latency(addr string, conns, roundTrips int) (p50, p99 time.Duration, n int, err error) {
	var mu sync.Mutex
	var samples []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	deadline := time.Now().Add(benchDuration)
	ready := make(chan struct{})
	for range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, 0, 0, err
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(deadline)
			local := make([]time.Duration, 0, roundTrips)
			msg, reply := make([]byte, benchMessage), make([]byte, benchMessage)
			if _, err := c.Write([]byte{'E'}); err != nil {
				setErr(&mu, &firstErr, err)
				return
			}
			<-ready
			for i := 0; i < roundTrips+benchWarmup; i++ {
				t0 := time.Now()
				if _, err := c.Write(msg); err != nil {
					setErr(&mu, &firstErr, err)
					break
				}
				if _, err := io.ReadFull(c, reply); err != nil {
					setErr(&mu, &firstErr, err)
					break
				}
				if i >= benchWarmup {
					local = append(local, time.Since(t0))
				}
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}()
	}
	close(ready)
	wg.Wait()
	if firstErr != nil {
		return 0, 0, 0, firstErr
	}
	if len(samples) == 0 {
		return 0, 0, 0, fmt.Errorf("no samples")
	}
	slices.Sort(samples)
	return samples[len(samples)/2], samples[len(samples)*99/100], len(samples), nil
}

func setErr(mu *sync.Mutex, dst *error, err error) {
	mu.Lock()
	defer mu.Unlock()
	if *dst == nil {
		*dst = err
	}
}

// startOpenSSH runs `ssh -N -R` for home h: the cloud forwards tunnelPort
// to the OpenSSH client, which connects to target. It returns once the
// forward is up ("remote forward success" in ssh's verbose log), with the
// pid and a function that stops ssh.
func startOpenSSH(b *testing.B, h *hometest.Home, tunnelPort int, target string) (int, func()) {
	b.Helper()
	host, port, _ := net.SplitHostPort(h.SSHAddr())
	cmd := exec.Command("ssh", "-F", "/dev/null", "-N", "-T", "-v",
		"-c", "aes128-gcm@openssh.com",
		"-i", h.KeyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+h.KnownHosts(b), "-o", "StrictHostKeyChecking=yes",
		"-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
		"-p", port, "-R", fmt.Sprintf("127.0.0.1:%d:%s", tunnelPort, target),
		h.Slug+"@"+host)
	return startReady(b, cmd, "ssh", "remote forward success", false, true)
}

// startReady starts cmd and waits (60 s at most) for a line containing
// marker on its stderr (or stdout, if onStdout). It returns the pid and a
// function that ends the process (closing stdin, and with term sending
// SIGTERM; SIGKILL after 5 s) and waits for it; the function also runs when
// the benchmark ends.
func startReady(b *testing.B, cmd *exec.Cmd, what, marker string, onStdout, term bool) (int, func()) {
	b.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	var out io.ReadCloser
	if onStdout {
		out, err = cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
	} else {
		out, err = cmd.StderrPipe()
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", what, err)
	}
	up, exited := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var log strings.Builder
	go func() { // owned by the process: ends when its output closes
		defer close(exited)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !seen && strings.Contains(sc.Text(), marker) {
				seen = true
				close(up)
			}
		}
		cmd.Wait()
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stdin.Close()
			if term {
				cmd.Process.Signal(syscall.SIGTERM)
			}
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	b.Cleanup(stop)
	select {
	case <-up:
	case <-exited:
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("%s exited before it was ready:\n%s", what, log.String())
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("%s not ready within 60s; its output:\n%s", what, log.String())
	}
	return cmd.Process.Pid, stop
}

// benchHomeEnv names the environment variable that turns the test binary
// into the benchmark's home agent (see TestMain): supervisor + gateway per
// home, in a process of its own like OpenSSH's client, on the processors
// and with the sysmon setting of the agent as shipped.
const benchHomeEnv = "HOMEPORT_BENCH_HOME"

// benchHomeConfig is one home of the agent process: a forward of
// TunnelPort to Target, a tcp entry (an http one if HTTP).
type benchHomeConfig struct {
	Slug, Addr, KeyPath, HostKey, Target string
	TunnelPort                           int
	Batched, HTTP                        bool
}

// startBenchHome starts the agent process with homes and waits until all
// their forwards are up.
func startBenchHome(b *testing.B, homes ...benchHomeConfig) (int, func()) {
	b.Helper()
	spec, _ := json.Marshal(homes)
	path := filepath.Join(b.TempDir(), "homes.json") // 500 homes outgrow an environment variable
	if err := os.WriteFile(path, spec, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchHomeEnv+"="+path)
	if v := os.Getenv("HOMEPORT_BENCH_HOME_PROCS"); v != "" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+v) // instead of tunnel.AgentProcs
	}
	if v := os.Getenv("HOMEPORT_BENCH_HOME_GOGC"); v != "" {
		cmd.Env = append(cmd.Env, "GOGC="+v)
	}
	return startReady(b, cmd, "home agent", "ready", true, false)
}

// cloudProcsEnv is the cloud's environment for HOMEPORT_BENCH_CLOUD_PROCS=N:
// GOMAXPROCS=N instead of the cloud's own choice (serve.EdgeProcs).
func cloudProcsEnv() []string {
	if v := os.Getenv("HOMEPORT_BENCH_CLOUD_PROCS"); v != "" {
		return []string{"GOMAXPROCS=" + v}
	}
	return nil
}

// runBenchHome is the home agent process: each home of the JSON file at
// specPath forwards its tunnel port to its entry; it prints "ready" once
// every forward is up, and stops when stdin closes.
func runBenchHome(specPath string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "bench home:", err)
		return 1
	}
	var homes []benchHomeConfig
	spec, err := os.ReadFile(specPath)
	if err == nil {
		err = json.Unmarshal(spec, &homes)
	}
	if err != nil {
		return fail(err)
	}
	if path := os.Getenv("HOMEPORT_BENCH_CPUPROFILE"); path != "" && !homes[0].Batched {
		// Profiling the home agent: go tool pprof -top PATH (PATH.fanout
		// for the agent of the fan-out's homes, however many: both
		// agents run at once).
		if homes[0].HTTP {
			path += ".fanout"
		}
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, cfg := range homes {
		s, stop, err := startBenchForward(cfg)
		if err != nil {
			return fail(err)
		}
		defer stop()
		ch, cancel := s.Subscribe()
		for up := false; !up; {
			select {
			case st := <-ch:
				f, _ := st.Forward(cfg.TunnelPort)
				up = f.Up
			case <-time.After(time.Until(deadline)):
				return fail(fmt.Errorf("%s: forward not up within 60s: %+v", cfg.Slug, s.Status()))
			}
		}
		cancel()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// startBenchForward starts one home of the agent process: its gateway and
// its supervisor with the one forward.
func startBenchForward(cfg benchHomeConfig) (*tunnel.Supervisor, func(), error) {
	pem, err := os.ReadFile(cfg.KeyPath)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, nil, err
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.HostKey))
	if err != nil {
		return nil, nil, err
	}
	g := gateway.New(gateway.Options{Home: cfg.Slug, Log: testLog()})
	kind := gateway.TCP
	if cfg.HTTP {
		kind = gateway.HTTP
	}
	h, err := g.Handler(gateway.Entry{Kind: kind, Target: cfg.Target})
	if err != nil {
		g.Close()
		return nil, nil, err
	}
	tc := tunnel.Config{Home: cfg.Slug, Addr: cfg.Addr, Signer: signer, HostKey: hostKey, Log: testLog()}
	if cfg.Batched {
		tc = tunnel.Batched(tc)
	}
	s, err := tunnel.New(tc)
	if err != nil {
		g.Close()
		return nil, nil, err
	}
	s.Start(context.Background())
	s.SetForwards([]tunnel.Forward{{TunnelPort: cfg.TunnelPort, Handler: h}})
	return s, func() { s.Stop(); g.Close() }, nil
}
