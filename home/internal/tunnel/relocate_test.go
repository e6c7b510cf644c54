package tunnel_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
)

// TestARefusedLoginFollowsTheCloudsNewEndpoint: a home whose pinned SSH
// endpoint refuses its key (the edge it was moved away from) asks where it
// is served now and connects there at once, with that endpoint's host key;
// its forward serves visitors again.
func TestARefusedLoginFollowsTheCloudsNewEndpoint(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, m := homeWithTCP(t, c, "alice")
	old, oldKey := hometest.RefusingEndpoint(t)
	cfg := fastConfig(h, old)
	cfg.HostKey = oldKey
	cfg.MinBackoff, cfg.MaxBackoff = time.Minute, time.Minute // only relocation can bring it up in time
	var asked atomic.Int32
	cfg.Relocate = func(context.Context) (tunnel.Endpoint, error) {
		asked.Add(1)
		return tunnel.Endpoint{Addr: h.SSHAddr(), HostKey: h.HostKey}, nil
	}
	s := startSupervisor(t, cfg)
	if err := s.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: tcpHandler(t, echoServer(t, "moved"), false)}}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, 10*time.Second, "forwarding at the new endpoint", forwardUp(m.TunnelPort))
	if got, err := ask(publicTCP(m.PublicPort), "ping"); err != nil || got != "moved: ping" {
		t.Fatalf("visitor after the move: %q %v", got, err)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("asked where the home is served %d times, want once", n)
	}
}
