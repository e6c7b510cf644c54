package tunnel_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/tunnel"
)

func testKeys(t *testing.T) (ssh.Signer, ssh.PublicKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	hostPub, _, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := ssh.NewPublicKey(hostPub)
	return signer, host
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	signer, host := testKeys(t)
	good := tunnel.Config{Home: "h1", Addr: "127.0.0.1:8022", Signer: signer, HostKey: host}
	tests := []struct {
		name string
		edit func(*tunnel.Config)
		want string
	}{
		{"no home", func(c *tunnel.Config) { c.Home = "" }, "Home"},
		{"bad address", func(c *tunnel.Config) { c.Addr = "cloud.example.com" }, "host:port"},
		{"no key", func(c *tunnel.Config) { c.Signer = nil }, "Signer"},
		{"no pinned host key", func(c *tunnel.Config) { c.HostKey = nil }, "no trust on first use"},
		{"negative keepalive", func(c *tunnel.Config) { c.Keepalive = -time.Second }, "negative"},
	}
	for _, tt := range tests {
		cfg := good
		tt.edit(&cfg)
		if _, err := tunnel.New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.name, err, tt.want)
		}
	}
	if _, err := tunnel.New(good); err != nil {
		t.Errorf("complete config: %v", err)
	}
}

// An unreachable cloud: the supervisor backs off, counts attempts, says
// why, and stops cleanly, closing its subscribers' channels.
func TestUnreachableCloudBacksOffAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	signer, host := testKeys(t)
	s, err := tunnel.New(tunnel.Config{Home: "h1", Addr: addr, Signer: signer, HostKey: host,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != tunnel.StateStopped {
		t.Errorf("before Start: %s", st.State)
	}
	ch, _ := s.Subscribe()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("a second Start was accepted")
	}
	st := waitStatus(t, s, 5*time.Second, "three failed attempts", func(st tunnel.Status) bool { return st.Attempts >= 3 })
	if st.State == tunnel.StateConnected || st.Connects != 0 {
		t.Errorf("status %s", describe(st))
	}
	if st.LastError == nil || !strings.Contains(st.LastError.Error(), "connection refused") {
		t.Errorf("last error %v, want the refusal", st.LastError)
	}
	if _, err := s.Dial(ctxTimeout(t, 50*time.Millisecond), 1234); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial while disconnected: %v, want the context's deadline", err)
	}

	s.Stop()
	if st := s.Status(); st.State != tunnel.StateStopped {
		t.Errorf("after Stop: %s", st.State)
	}
	var last tunnel.Status
	for st := range ch { // closed by Stop: the loop ends
		last = st
	}
	if last.State != tunnel.StateStopped {
		t.Errorf("last status delivered: %s, want stopped", last.State)
	}
	if _, err := s.Dial(context.Background(), 1234); !errors.Is(err, tunnel.ErrStopped) {
		t.Errorf("Dial after Stop: %v", err)
	}
	s.Stop() // idempotent
}

func TestStatusJSON(t *testing.T) {
	st := tunnel.Status{Home: "h1", State: tunnel.StateBackoff, LastError: errors.New("boom"),
		Forwards: []tunnel.ForwardStatus{{TunnelPort: 20000, LastError: errors.New("refused")}}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state":"backoff"`, `"last_error":"boom"`, `"tunnel_port":20000`, `"last_error":"refused"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
