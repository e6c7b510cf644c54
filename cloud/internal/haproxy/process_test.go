package haproxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// After a kill -9 of either process, the Process starts a new haproxy that
// loads the map files, so routes persisted there work with no further call.
// Not parallel: it takes the shared HAProxy down.
func TestRestartAfterKillKeepsRoutes(t *testing.T) {
	e := needEnv(t)
	ctx := context.Background()

	host := uniqueHost()
	tlsLn, tlsPort := e.listenTunnel(t)
	tlsGot := serveTCP(t, tlsLn, &tls.Config{Certificates: []tls.Certificate{selfSigned(t, host)}})
	tcpLn, tcpPort := e.listenTunnel(t)
	tcpGot := serveTCP(t, tcpLn, nil)
	publicKey := strconv.Itoa(e.params.TCPPorts.First + tcpPortRestart)

	// What the cloud does for a new mapping: runtime API, then the files.
	e.addRoute(t, MapHTTPS, host, tlsPort)
	e.addRoute(t, MapTCP, publicKey, tcpPort)
	if err := WriteMaps(e.dir, map[Map][]Entry{
		MapHTTPS: {{host, strconv.Itoa(tlsPort)}},
		MapTCP:   {{publicKey, strconv.Itoa(tcpPort)}},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { WriteMaps(e.dir, nil) })

	routesWork := func(t *testing.T) {
		t.Helper()
		c, err := dialTLS(e, host)
		if err != nil {
			t.Fatalf("https: %v", err)
		}
		wantProxyV2(t, tlsGot, c)
		echo(t, c)
		c.Close()
		tc := dialTCP(t, e, tcpPortRestart)
		wantProxyV2(t, tcpGot, tc)
		echo(t, tc)
	}

	for _, victim := range []string{"worker", "master"} {
		t.Run(victim, func(t *testing.T) {
			routesWork(t)
			info, err := e.client.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			master, worker := e.proc.Pid(), info.Pid
			restarts, readies := e.proc.Restarts(), e.onReady.Load()
			pid := worker
			if victim == "master" {
				pid = master
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			waitFor(t, 10*time.Second, "a restart", func() bool { return e.proc.Restarts() > restarts })
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := e.proc.WaitReady(wctx); err != nil {
				t.Fatalf("not ready after restart: %v", err)
			}
			t.Logf("kill -9 %s: ready again after %v", victim, time.Since(start).Round(time.Millisecond))
			if got := e.onReady.Load(); got != readies+1 {
				t.Errorf("OnReady called %d times for one restart", got-readies)
			}
			if e.proc.Pid() == master {
				t.Errorf("master pid unchanged (%d)", master)
			}
			for _, old := range []int{master, worker} {
				if alive(old) {
					t.Errorf("old haproxy process %d still alive", old)
				}
			}
			routesWork(t)
		})
	}
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// A haproxy that cannot start is retried with backoff and never reported
// ready; cancelling stops the loop.
func TestProcessCrashLoopNotReady(t *testing.T) {
	t.Parallel()
	needEnv(t)
	dir := t.TempDir()
	p := NewProcess(ProcessConfig{
		ConfigPath: filepath.Join(dir, "missing.cfg"),
		SocketPath: filepath.Join(dir, "admin.sock"),
		Logger:     slog.New(slog.DiscardHandler),
		MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
		OnReady:    func(int) { t.Error("OnReady called for a haproxy that cannot start") },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, 5*time.Second, "three restarts", func() bool { return p.Restarts() >= 3 })
	if p.Ready() {
		t.Error("Ready() = true for a haproxy that cannot start")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if st := p.State(); st != StateStopped {
		t.Errorf("State after Run = %v, want stopped", st)
	}
	if err := p.WaitReady(context.Background()); err == nil {
		t.Error("WaitReady after Run returned nil")
	}
}

func TestProcessMissingBinary(t *testing.T) {
	t.Parallel()
	p := NewProcess(ProcessConfig{Binary: "/nonexistent/haproxy", Logger: slog.New(slog.DiscardHandler)})
	if err := p.Run(context.Background()); err == nil {
		t.Fatal("Run with a missing binary returned nil")
	}
}
