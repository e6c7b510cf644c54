package tunnel_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"homeport.dev/proto/sysmon"
	"homeport.dev/proto/testnet"

	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
)

func TestMain(m *testing.M) {
	if specPath := os.Getenv(benchHomeEnv); specPath != "" {
		sysmon.KeepPolling()            // as the home command does,
		tunnel.UseAgentProcs()          // both
		os.Exit(runBenchHome(specPath)) // the benchmark's home agent process
	}
	os.Exit(hometest.Main(m))
}

// testLog discards logs unless HOMETEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("HOMETEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// fastConfig is a home's tunnel config with test timings: quick retries so
// that reconnects take milliseconds. Keepalive stays at its default unless
// a test shortens it.
func fastConfig(h *hometest.Home, addr string) tunnel.Config {
	return tunnel.Config{
		Home: h.Slug, Addr: addr, Signer: h.Signer, HostKey: h.HostKey,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		ConnectTimeout: 5 * time.Second, Log: testLog(),
	}
}

// startSupervisor starts a supervisor that stops when the test ends.
func startSupervisor(t testing.TB, cfg tunnel.Config) *tunnel.Supervisor {
	t.Helper()
	s, err := tunnel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// waitStatus waits, through Subscribe, until ok holds for the status.
func waitStatus(t testing.TB, s *tunnel.Supervisor, limit time.Duration, what string, ok func(tunnel.Status) bool) tunnel.Status {
	t.Helper()
	ch, cancel := s.Subscribe()
	defer cancel()
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	var last tunnel.Status
	for {
		select {
		case st, open := <-ch:
			if !open {
				t.Fatalf("supervisor stopped while waiting for %s; last status %s", what, describe(last))
			}
			last = st
			if ok(st) {
				return st
			}
		case <-timeout.C:
			t.Fatalf("not %s within %s; status %s", what, limit, describe(last))
		}
	}
}

// forwardUp is a waitStatus condition: connected, with port forwarded.
func forwardUp(port int) func(tunnel.Status) bool {
	return func(st tunnel.Status) bool {
		f, ok := st.Forward(port)
		return st.State == tunnel.StateConnected && ok && f.Up
	}
}

func describe(st tunnel.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{%s since %s, attempts %d, connects %d, last error: %v", st.State, st.Since.Format("15:04:05.000"), st.Attempts, st.Connects, st.LastError)
	for _, f := range st.Forwards {
		fmt.Fprintf(&b, "; port %d up=%v err=%v", f.TunnelPort, f.Up, f.LastError)
	}
	b.WriteString("}")
	return b.String()
}

// echoServer is a local service that answers each line with name + ": " +
// the line.
func echoServer(t testing.TB, name string) string {
	t.Helper()
	return testnet.Serve(t, testnet.Listen(t), func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := io.WriteString(c, name+": "+line); err != nil {
				return
			}
		}
	})
}

// tcpHandler is the gateway handler of a tcp entry to target.
func tcpHandler(t testing.TB, target string, private bool) func(context.Context, net.Conn) {
	t.Helper()
	g := gateway.New(gateway.Options{Log: testLog(), HeaderTimeout: 5 * time.Second})
	t.Cleanup(func() { g.Close() })
	h, err := g.Handler(gateway.Entry{Kind: gateway.TCP, Target: target, Private: private})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// ask sends one line to addr and returns the answer line.
func ask(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return askConn(c, line)
}

func askConn(c net.Conn, line string) (string, error) {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

// publicTCP is the public address of a tcp mapping on the cloud.
func publicTCP(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
