package tunnel_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
)

// homeWithTCP claims a home with one public tcp mapping served by a local
// echo service named name.
func homeWithTCP(t *testing.T, c *hometest.Cloud, user string) (*hometest.Home, proto.Mapping) {
	t.Helper()
	h := c.ClaimHome(t, c.CreateUser(t, user))
	return h, h.Map(t, proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCPPorts.First})
}

func TestForwardedTrafficAndLiveForwardChanges(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, m := homeWithTCP(t, c, "alice")
	m2 := h.Map(t, proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCPPorts.Last})
	s := startSupervisor(t, fastConfig(h, h.SSHAddr()))
	one := tunnel.Forward{TunnelPort: m.TunnelPort, Handler: tcpHandler(t, echoServer(t, "one"), false)}
	two := tunnel.Forward{TunnelPort: m2.TunnelPort, Handler: tcpHandler(t, echoServer(t, "two"), false)}
	if err := s.SetForwards([]tunnel.Forward{one}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, 10*time.Second, "forwarding the first port", forwardUp(m.TunnelPort))
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err != nil || got != "one: ping" {
		t.Fatalf("first forward: %q %v", got, err)
	}

	// Adding a forward on the live connection: no reconnect.
	if err := s.SetForwards([]tunnel.Forward{one, two}); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, s, 5*time.Second, "forwarding the second port", forwardUp(m2.TunnelPort))
	if st.Connects != 1 {
		t.Errorf("adding a forward reconnected: %d connects", st.Connects)
	}
	if got, err := ask(publicTCP(m2.PublicPort), "ping"); err != nil || got != "two: ping" {
		t.Fatalf("added forward: %q %v", got, err)
	}

	// Dropping one cancels it on the cloud: its public port stops answering.
	if err := s.SetForwards([]tunnel.Forward{two}); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, s, 5*time.Second, "without the first forward", func(st tunnel.Status) bool {
		_, ok := st.Forward(m.TunnelPort)
		return !ok
	})
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err == nil {
		t.Errorf("a dropped forward still answers: %q", got)
	}
	if got, err := ask(publicTCP(m2.PublicPort), "ping"); err != nil || got != "two: ping" {
		t.Fatalf("kept forward: %q %v", got, err)
	}
	if st.Connects != 1 {
		t.Errorf("changing forwards reconnected: %d connects", st.Connects)
	}

	s.Stop()
	st = s.Status()
	if f, _ := st.Forward(m2.TunnelPort); st.State != tunnel.StateStopped || f.Up || st.LastError != nil {
		t.Errorf("after a clean Stop: %s, want stopped, forwards down and no error", describe(st))
	}

	if err := s.SetForwards([]tunnel.Forward{two, two}); err == nil {
		t.Error("a port forwarded twice was accepted")
	}
	if err := s.SetForwards([]tunnel.Forward{{TunnelPort: 70000, Handler: two.Handler}}); err == nil {
		t.Error("port 70000 was accepted")
	}
}

func TestReconnectsAfterCloudKill9AndRestart(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, m := homeWithTCP(t, c, "alice")
	s := startSupervisor(t, fastConfig(h, h.SSHAddr()))
	s.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: tcpHandler(t, echoServer(t, "home"), false)}})
	waitStatus(t, s, 10*time.Second, "forwarding", forwardUp(m.TunnelPort))
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err != nil || got != "home: ping" {
		t.Fatalf("before the crash: %q %v", got, err)
	}

	c.Kill(t)
	st := waitStatus(t, s, 5*time.Second, "noticing the crash", func(st tunnel.Status) bool { return st.State != tunnel.StateConnected })
	if f, _ := st.Forward(m.TunnelPort); f.Up {
		t.Errorf("forward still up while disconnected: %s", describe(st))
	}

	c.Restart(t)
	back := time.Now()
	waitStatus(t, s, 5*time.Second, "forwarding again after the restart", forwardUp(m.TunnelPort))
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err != nil || got != "home: ping" {
		t.Fatalf("after the restart: %q %v", got, err)
	}
	if d := time.Since(back); d > 5*time.Second {
		t.Errorf("traffic flowed again %s after the cloud was back, want < 5s", d)
	}
	t.Logf("traffic flowed again %s after the restarted cloud was ready", time.Since(back).Round(time.Millisecond))
}

func TestSilentCloudIsDetectedByKeepalives(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, m := homeWithTCP(t, c, "alice")
	relay := hometest.NewRelay(t, h.SSHAddr())
	cfg := fastConfig(h, relay.Addr)
	cfg.Keepalive = 150 * time.Millisecond
	s := startSupervisor(t, cfg)
	s.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: tcpHandler(t, echoServer(t, "home"), false)}})
	waitStatus(t, s, 10*time.Second, "forwarding", forwardUp(m.TunnelPort))

	relay.Freeze() // TCP stays open; nothing gets through any more
	frozen := time.Now()
	st := waitStatus(t, s, 3*time.Second, "detecting the silence", func(st tunnel.Status) bool { return st.State != tunnel.StateConnected })
	if st.LastError == nil || !strings.Contains(st.LastError.Error(), "keepalive") {
		t.Errorf("last error = %v, want the keepalive verdict", st.LastError)
	}
	t.Logf("silence detected after %s (keepalive %s, %d missed)", time.Since(frozen).Round(time.Millisecond), cfg.Keepalive, tunnel.DefaultKeepaliveMissed)
	// The verdict comes KeepaliveMissed intervals after the request it
	// waited for, which may have left just before the freeze (one run saw
	// 299.98 ms), so the bound has half an interval of slack.
	limit := time.Duration(tunnel.DefaultKeepaliveMissed) * cfg.Keepalive
	if d := time.Since(frozen); d < limit-cfg.Keepalive/2 {
		t.Errorf("declared dead after %s, before %d keepalives could be missed", d, tunnel.DefaultKeepaliveMissed)
	}

	// A new connection through the (no longer frozen) path takes over.
	st = waitStatus(t, s, 5*time.Second, "reconnected", forwardUp(m.TunnelPort))
	if st.Connects != 2 {
		t.Errorf("connects = %d, want 2", st.Connects)
	}
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err != nil || got != "home: ping" {
		t.Fatalf("after recovering: %q %v", got, err)
	}
}

// TestSecondSupervisorOfAHomeTakesOver: a second copy of a profile takes
// the tunnel over at once; the first is told where the profile runs now
// and stops, instead of taking the tunnel back a moment later (two copies
// used to flap every few seconds with only "connection lost: EOF" to show).
func TestSecondSupervisorOfAHomeTakesOver(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, m := homeWithTCP(t, c, "alice")
	public := publicTCP(m.PublicPort)

	// Both retry quickly: were A to reconnect, it would within milliseconds.
	a, err := tunnel.New(fastConfig(h, h.SSHAddr()))
	if err != nil {
		t.Fatal(err)
	}
	a.Start(context.Background())
	defer a.Stop()
	a.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: tcpHandler(t, echoServer(t, "A"), false)}})
	waitStatus(t, a, 10*time.Second, "A forwarding", forwardUp(m.TunnelPort))
	if got, err := ask(public, "ping"); err != nil || got != "A: ping" {
		t.Fatalf("A: %q %v", got, err)
	}

	before := time.Now()
	b := startSupervisor(t, fastConfig(h, h.SSHAddr()))
	b.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: tcpHandler(t, echoServer(t, "B"), false)}})
	// B gets the port at once: no "port already in use" from A's session.
	st := waitStatus(t, b, 5*time.Second, "B forwarding", forwardUp(m.TunnelPort))
	if f, _ := st.Forward(m.TunnelPort); f.LastError != nil {
		t.Errorf("B's forward: %v", f.LastError)
	}
	stA := waitStatus(t, a, 5*time.Second, "A replaced", func(st tunnel.Status) bool { return st.State != tunnel.StateConnected })
	var replaced *tunnel.ReplacedError
	if stA.State != tunnel.StateReplaced || !errors.As(stA.LastError, &replaced) {
		t.Fatalf("A after the takeover: %s, want replaced with the cloud's reason", describe(stA))
	}
	if !strings.HasPrefix(replaced.By, "127.0.0.1:") || replaced.Since.Before(before.Add(-time.Second)) || replaced.Since.After(time.Now()) {
		t.Errorf("A was told B runs on %q since %s; want B's address and login time (after %s)", replaced.By, replaced.Since, before)
	}
	if want := "this profile is running on " + replaced.By + " since "; !strings.HasPrefix(stA.LastError.Error(), want) {
		t.Errorf("A's error %q does not start with %q", stA.LastError, want)
	}
	if got, err := ask(public, "ping"); err != nil || got != "B: ping" {
		t.Fatalf("after the takeover: %q %v", got, err)
	}
	if _, err := a.Dial(ctxTimeout(t, 5*time.Second), m.TunnelPort); !errors.As(err, &replaced) {
		t.Errorf("Dial through the replaced supervisor: %v, want where the profile runs", err)
	}

	// No flapping: over many of A's retry intervals (at most 300 ms), A
	// stays replaced and B keeps its one connection.
	for range 10 {
		time.Sleep(200 * time.Millisecond) // the observation window: nothing to wait for
		if got, err := ask(public, "ping"); err != nil || got != "B: ping" {
			t.Fatalf("B lost the tunnel: %q %v", got, err)
		}
	}
	if st := a.Status(); st.State != tunnel.StateReplaced || st.Connects != 1 {
		t.Errorf("A after the window: %s, want still replaced after its one connection", describe(st))
	}
	if st := b.Status(); st.State != tunnel.StateConnected || st.Connects != 1 {
		t.Errorf("B after the window: %s, want its first connection still up", describe(st))
	}

	a.Stop()
	if got, err := ask(public, "ping"); err != nil || got != "B: ping" {
		t.Fatalf("the survivor after A stopped: %q %v", got, err)
	}
	// B stopping frees the ports for whoever comes next.
	b.Stop()
	c2 := startSupervisor(t, fastConfig(h, h.SSHAddr()))
	c2.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: tcpHandler(t, echoServer(t, "C"), false)}})
	waitStatus(t, c2, 5*time.Second, "C forwarding", forwardUp(m.TunnelPort))
	if got, err := ask(public, "ping"); err != nil || got != "C: ping" {
		t.Fatalf("after both stopped: %q %v", got, err)
	}
}

// TestUnreachableCloudIsRetriedWithinTheCap: however many attempts fail
// because nothing answers, each wait stays within UnreachableBackoff (it
// used to double up to MaxBackoff, so traffic came back long after the
// cloud); a cloud that answers and refuses the key is asked ever more
// slowly.
func TestUnreachableCloudIsRetriedWithinTheCap(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, _ := homeWithTCP(t, c, "alice")
	const unreachableCap = 100 * time.Millisecond
	slowCap := func(cfg tunnel.Config) tunnel.Config {
		cfg.MinBackoff, cfg.MaxBackoff, cfg.UnreachableBackoff = 20*time.Millisecond, 10*time.Second, unreachableCap
		return cfg
	}

	closed := fmt.Sprintf("127.0.0.1:%d", hometest.FreePort(t)) // nothing listens
	s := startSupervisor(t, slowCap(fastConfig(h, closed)))
	waitStatus(t, s, 10*time.Second, "12 refused attempts, each retried within the cap", func(st tunnel.Status) bool {
		if st.State == tunnel.StateBackoff {
			if wait := st.NextAttempt.Sub(st.Since); wait > unreachableCap+unreachableCap/2 {
				t.Fatalf("after %d attempts the next one waits %v, want at most %v: %s", st.Attempts, wait, unreachableCap, describe(st))
			}
		}
		return st.Attempts >= 12
	})
	s.Stop()

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(otherKey)
	cfg := slowCap(fastConfig(h, h.SSHAddr()))
	cfg.Signer = signer
	r := startSupervisor(t, cfg)
	st := waitStatus(t, r, 10*time.Second, "backing off past the unreachable cap", func(st tunnel.Status) bool {
		return st.State == tunnel.StateBackoff && st.NextAttempt.Sub(st.Since) > unreachableCap
	})
	if st.LastError == nil || !strings.Contains(st.LastError.Error(), "refused the home's key") {
		t.Errorf("last error %v, want the refused key", st.LastError)
	}
}

func TestForwardOutsideTheBlockIsReportedFailed(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, m := homeWithTCP(t, c, "alice")
	outside := h.TunnelPorts.Last + 1 // the next home's block
	s := startSupervisor(t, fastConfig(h, h.SSHAddr()))
	handler := tcpHandler(t, echoServer(t, "home"), false)
	s.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: handler}, {TunnelPort: outside, Handler: handler}})
	st := waitStatus(t, s, 10*time.Second, "the refusal reported", func(st tunnel.Status) bool {
		f, _ := st.Forward(outside)
		return f.LastError != nil
	})
	bad, _ := st.Forward(outside)
	good, _ := st.Forward(m.TunnelPort)
	if bad.Up || !strings.Contains(bad.LastError.Error(), "refused") || !strings.Contains(bad.LastError.Error(), fmt.Sprint(outside)) {
		t.Errorf("outside forward: up=%v err=%v, want down with the cloud's refusal", bad.Up, bad.LastError)
	}
	st = waitStatus(t, s, 5*time.Second, "the good forward up", forwardUp(m.TunnelPort))
	if good, _ = st.Forward(m.TunnelPort); good.LastError != nil {
		t.Errorf("a refusal of another port marked this one: %v", good.LastError)
	}
	if st.State != tunnel.StateConnected {
		t.Errorf("a refused forward dropped the connection: %s", describe(st))
	}
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err != nil || got != "home: ping" {
		t.Fatalf("the good forward: %q %v", got, err)
	}
}

func TestHostKeyMismatchRefusesToConnect(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, _ := homeWithTCP(t, c, "alice")
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(pub)
	cfg := fastConfig(h, h.SSHAddr())
	cfg.HostKey = other
	s := startSupervisor(t, cfg)
	st := waitStatus(t, s, 10*time.Second, "refusing the cloud's key", func(st tunnel.Status) bool { return st.Attempts >= 2 })
	var mismatch *tunnel.HostKeyMismatchError
	if !errors.As(st.LastError, &mismatch) {
		t.Fatalf("last error = %v, want a host key mismatch", st.LastError)
	}
	want := fmt.Sprintf("host key mismatch: the cloud presented %s, the profile pins %s; re-register or fix the profile",
		ssh.FingerprintSHA256(h.HostKey), ssh.FingerprintSHA256(other))
	if st.LastError.Error() != want {
		t.Errorf("error = %q\nwant    %q", st.LastError, want)
	}
	if st.Connects != 0 || st.State == tunnel.StateConnected {
		t.Errorf("connected despite the mismatch: %s", describe(st))
	}
	if _, err := s.Dial(ctxTimeout(t, 100*time.Millisecond), 1); err == nil {
		t.Error("Dial worked without a connection")
	}
}

func TestDialReachesPrivateMappingsOfTheSameAccountOnly(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	server, client := c.ClaimHome(t, u), c.ClaimHome(t, u)
	private := server.Map(t, proto.MappingRequest{Name: "private", Scheme: "tcp", Private: true})
	public := server.Map(t, proto.MappingRequest{Scheme: "tcp", PublicPort: server.TCPPorts.First})
	srv := startSupervisor(t, fastConfig(server, server.SSHAddr()))
	srv.SetForwards([]tunnel.Forward{
		{TunnelPort: private.TunnelPort, Handler: tcpHandler(t, echoServer(t, "gpu"), true)},
		{TunnelPort: public.TunnelPort, Handler: tcpHandler(t, echoServer(t, "web"), false)},
	})
	waitStatus(t, srv, 10*time.Second, "server forwarding", func(st tunnel.Status) bool {
		return forwardUp(private.TunnelPort)(st) && forwardUp(public.TunnelPort)(st)
	})

	cli := startSupervisor(t, fastConfig(client, client.SSHAddr()))
	conn, err := cli.Dial(ctxTimeout(t, 10*time.Second), private.TunnelPort)
	if err != nil {
		t.Fatalf("Dial to the private mapping: %v", err)
	}
	defer conn.Close()
	if got, err := askConn(conn, "hello"); err != nil || got != "gpu: hello" {
		t.Fatalf("through direct-tcpip: %q %v", got, err)
	}
	if _, err := cli.Dial(ctxTimeout(t, 5*time.Second), public.TunnelPort); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Dial to a public mapping's tunnel port: %v, want the cloud's refusal", err)
	}

	// Another account's home cannot reach it either.
	stranger := c.ClaimHome(t, c.CreateUser(t, "mallory"))
	st := startSupervisor(t, fastConfig(stranger, stranger.SSHAddr()))
	if _, err := st.Dial(ctxTimeout(t, 5*time.Second), private.TunnelPort); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Dial from another account: %v, want the cloud's refusal", err)
	}
}

func TestNoLeaksAcross200Reconnects(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, m := homeWithTCP(t, c, "alice")
	relay := hometest.NewRelay(t, h.SSHAddr())
	handler := tcpHandler(t, echoServer(t, "home"), false)
	before := snapshotResources()

	cfg := fastConfig(h, relay.Addr)
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	s, err := tunnel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	s.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: handler}})
	waitStatus(t, s, 10*time.Second, "forwarding", forwardUp(m.TunnelPort))
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err != nil || got != "home: ping" {
		t.Fatalf("%q %v", got, err)
	}
	steady := snapshotResources()

	const cycles = 200
	start := time.Now()
	for i := 2; i <= cycles+1; i++ {
		relay.Cut()
		waitStatus(t, s, 5*time.Second, fmt.Sprintf("reconnected (cycle %d)", i-1), func(st tunnel.Status) bool {
			return st.Connects >= i && forwardUp(m.TunnelPort)(st)
		})
	}
	t.Logf("%d reconnect cycles in %s", cycles, time.Since(start).Round(time.Millisecond))
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err != nil || got != "home: ping" {
		t.Fatalf("after the cycles: %q %v", got, err)
	}
	settle(t, "connected, after the cycles", steady, 5)

	s.Stop()
	relay.Cut()
	settle(t, "after Stop", before, 2)
}

// resources counts what a leak would grow.
type resources struct{ goroutines, fds int }

func snapshotResources() resources {
	fds, _ := os.ReadDir("/proc/self/fd")
	return resources{runtime.NumGoroutine(), len(fds)}
}

// settle waits (bounded) for the counts to come back within tolerance of
// base: connections close asynchronously.
func settle(t *testing.T, when string, base resources, tolerance int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		now := snapshotResources()
		if now.goroutines <= base.goroutines+tolerance && now.fds <= base.fds+tolerance {
			t.Logf("%s: %d goroutines, %d fds (baseline %d, %d)", when, now.goroutines, now.fds, base.goroutines, base.fds)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%s: %d goroutines and %d fds, baseline %d and %d (tolerance %d)\n%s", when, now.goroutines, now.fds, base.goroutines, base.fds, tolerance, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
