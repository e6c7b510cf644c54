package tunnel_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
)

// Bounds of each measurement.
const (
	benchBytes       = 1 << 30 // a throughput run stops after this many bytes...
	benchDuration    = 10 * time.Second
	benchStreams     = 4
	benchMessage     = 64 // bytes per latency request and response
	benchRoundTrips1 = 2000
	benchRoundTrips  = 200 // per connection at 64 connections
	benchWarmup      = 10  // round trips per connection not counted
)

// BenchmarkDataPath compares, in one run, the data path of a public TCP
// port: straight to the local service (baseline), OpenSSH `ssh -N -R` with
// aes128-gcm behind the same HAProxy and cloud, and homeport's supervisor +
// gateway (with and without the batched I/O under the SSH transport). It
// prints download throughput (1 and 4 streams) and request latency (1 and
// 64 connections), and the homeport/OpenSSH ratios.
//
//	go test -run '^$' -bench DataPath -benchtime 1x ./internal/tunnel/
func BenchmarkDataPath(b *testing.B) {
	if _, err := exec.LookPath("ssh"); err != nil {
		b.Skip("the OpenSSH client (ssh) is not installed: apt-get install openssh-client")
	}
	c := hometest.Start(b, hometest.Options{})
	u := c.CreateUser(b, "bench")
	hp, ossh := c.ClaimHome(b, u), c.ClaimHome(b, u)
	hpMap := hp.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: hp.TCPPorts.First})
	osMap := ossh.Map(b, proto.MappingRequest{Scheme: "tcp", PublicPort: ossh.TCPPorts.First})

	plain := benchService(b, false)
	withHeader := benchService(b, true) // OpenSSH passes HAProxy's PROXY header on
	startOpenSSH(b, ossh, osMap.TunnelPort, withHeader)

	g := gateway.New(gateway.Options{Home: hp.Slug, Log: testLog()})
	b.Cleanup(func() { g.Close() })
	h, err := g.Handler(gateway.Entry{Kind: gateway.TCP, Target: plain})
	if err != nil {
		b.Fatal(err)
	}
	cfg := tunnel.Config{Home: hp.Slug, Addr: hp.SSHAddr(), Signer: hp.Signer, HostKey: hp.HostKey, Log: testLog()}
	homeport := func(cfg tunnel.Config) *tunnel.Supervisor {
		s := startSupervisor(b, cfg)
		s.SetForwards([]tunnel.Forward{{TunnelPort: hpMap.TunnelPort, Handler: h}})
		waitStatus(b, s, 10*time.Second, "forwarding", forwardUp(hpMap.TunnelPort))
		return s
	}
	public := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

	results := map[string]benchResult{}
	for b.Loop() {
		results["direct"] = measure(b, "direct", plain)
		results["openssh"] = measure(b, "openssh", public(osMap.PublicPort))
		s := homeport(cfg)
		results["homeport"] = measure(b, "homeport", public(hpMap.PublicPort))
		s.Stop()
		// Before/after: the same path without the batched I/O under SSH.
		s = homeport(tunnel.Unbuffered(cfg))
		results["homeport-unbuffered"] = measure(b, "homeport-unbuffered", public(hpMap.PublicPort))
		s.Stop()
	}
	report(results, []string{"direct", "openssh", "homeport", "homeport-unbuffered"})
	hpRes, osRes := results["homeport"], results["openssh"]
	b.ReportMetric(hpRes.single, "homeport-MB/s")
	b.ReportMetric(hpRes.single/osRes.single, "homeport/openssh-throughput")
	b.ReportMetric(float64(hpRes.p50x1.Microseconds()), "homeport-p50-us")
}

type benchResult struct {
	single, multi                float64 // MB/s
	p50x1, p99x1, p50x64, p99x64 time.Duration
	samples1, samples64          int
}

func measure(b *testing.B, name, addr string) benchResult {
	b.Helper()
	var r benchResult
	var err error
	if r.single, err = download(addr, 1, benchBytes); err != nil {
		b.Fatalf("%s: single stream: %v", name, err)
	}
	if r.multi, err = download(addr, benchStreams, benchBytes/benchStreams); err != nil {
		b.Fatalf("%s: %d streams: %v", name, benchStreams, err)
	}
	if r.p50x1, r.p99x1, r.samples1, err = latency(addr, 1, benchRoundTrips1); err != nil {
		b.Fatalf("%s: latency, 1 connection: %v", name, err)
	}
	if r.p50x64, r.p99x64, r.samples64, err = latency(addr, 64, benchRoundTrips); err != nil {
		b.Fatalf("%s: latency, 64 connections: %v", name, err)
	}
	return r
}

func report(results map[string]benchResult, order []string) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "path\t1-stream MB/s\t%d-stream MB/s\tp50 @1\tp99 @1\tp50 @64\tp99 @64\t\n", benchStreams)
	for _, name := range order {
		r := results[name]
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t\n", name, r.single, r.multi, us(r.p50x1), us(r.p99x1), us(r.p50x64), us(r.p99x64))
	}
	hp, ossh := results["homeport"], results["openssh"]
	fmt.Fprintf(w, "homeport/openssh\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", hp.single/ossh.single, hp.multi/ossh.multi,
		ratio(hp.p50x1, ossh.p50x1), ratio(hp.p99x1, ossh.p99x1), ratio(hp.p50x64, ossh.p50x64), ratio(hp.p99x64, ossh.p99x64))
	w.Flush()
	fmt.Printf("(throughput: higher is better; latency ratios: lower is better; %d and %d samples per latency row)\n",
		results["homeport"].samples1, results["homeport"].samples64)
}

func us(d time.Duration) string { return fmt.Sprintf("%dµs", d.Microseconds()) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// benchService is the local service of the benchmark: after an optional
// PROXY header, 'D' + 8-byte length asks it to send that many bytes, 'E'
// turns it into an echo of benchMessage-byte messages.
func benchService(b *testing.B, expectProxy bool) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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

// download runs streams parallel downloads of total/streams bytes each,
// stopping at benchDuration, and returns MB/s (10^6 bytes) over all.
func download(addr string, streams int, perStream uint64) (float64, error) {
	var wg sync.WaitGroup
	counts := make([]int64, streams)
	errs := make([]error, streams)
	conns := make([]net.Conn, streams)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[i] = c
	}
	start := time.Now()
	deadline := start.Add(benchDuration)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(deadline)
			req := make([]byte, 9)
			req[0] = 'D'
			binary.BigEndian.PutUint64(req[1:], perStream)
			if _, err := c.Write(req); err != nil {
				errs[i] = err
				return
			}
			buf := make([]byte, 256<<10)
			for counts[i] < int64(perStream) {
				n, err := c.Read(buf)
				counts[i] += int64(n)
				if err != nil {
					if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
						errs[i] = fmt.Errorf("after %d bytes: %w", counts[i], err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var total int64
	for i := range counts {
		if errs[i] != nil {
			return 0, errs[i]
		}
		total += counts[i]
	}
	return float64(total) / elapsed.Seconds() / 1e6, nil
}

// latency opens conns echo connections and makes each do roundTrips
// requests of benchMessage bytes (stopping at benchDuration); it returns the
// median and 99th percentile round trip.
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
// forward is up ("remote forward success" on ssh's verbose log).
func startOpenSSH(b *testing.B, h *hometest.Home, tunnelPort int, target string) {
	b.Helper()
	host, port, _ := net.SplitHostPort(h.SSHAddr())
	args := []string{"-F", "/dev/null", "-N", "-T", "-v",
		"-c", "aes128-gcm@openssh.com",
		"-i", h.KeyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + h.KnownHosts(b), "-o", "StrictHostKeyChecking=yes",
		"-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
		"-p", port, "-R", fmt.Sprintf("127.0.0.1:%d:%s", tunnelPort, target),
		h.Slug + "@" + host}
	cmd := exec.Command("ssh", args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("ssh: %v", err)
	}
	up := make(chan struct{})
	exited := make(chan struct{})
	var log strings.Builder
	var logMu sync.Mutex
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if !seen && strings.Contains(sc.Text(), "remote forward success") {
				seen = true
				close(up)
			}
		}
		cmd.Wait()
	}()
	b.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	select {
	case <-up:
	case <-exited:
		logMu.Lock()
		defer logMu.Unlock()
		b.Fatalf("ssh exited before its forward was up:\n%s", log.String())
	case <-time.After(10 * time.Second):
		b.Fatal("ssh forward not up within 10s")
	}
}
