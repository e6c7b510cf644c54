package gateway

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestLoopbackDialErrorsAreUnchanged: a closed port is refused as before, and
// an address off this machine is refused before any connect.
func TestLoopbackDialErrorsAreUnchanged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := New(Options{})
	defer g.Close()
	if _, err := g.dialer.DialContext(context.Background(), "tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial of a closed port = %v, want connection refused", err)
	}
	if _, err := g.dialer.DialContext(context.Background(), "tcp", "192.0.2.1:80"); !errors.Is(err, ErrLANForwarding) {
		t.Errorf("dial off this machine = %v, want ErrLANForwarding", err)
	}
	if ln6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		defer ln6.Close()
		c, err := g.dialer.DialContext(context.Background(), "tcp", ln6.Addr().String())
		if err != nil {
			t.Fatalf("dial of ::1: %v", err)
		}
		c.Close()
	}
}
