package tunnel_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

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
	old, oldKey := refusingEndpoint(t)
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

// refusingEndpoint is an SSH server that refuses every key, as an edge does
// for a home it does not serve; it returns its address and host key.
func refusingEndpoint(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, &ssh.BannerError{Err: errors.New("other edge"), Message: "homeport: this home is served by another edge\r\n"}
	}}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				ssh.NewServerConn(conn, cfg)
			}()
		}
	}()
	return ln.Addr().String(), signer.PublicKey()
}
