package gateway

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestLoopbackDialDoesNotWaitForThePoller dials a local service on one
// processor while another goroutine stays runnable, as the agent's other
// channels keep it: the dial must come back without waiting for Go's
// poller, which is asked only once nothing else is runnable (here: only
// by the runtime's monitor, after up to 10 ms). Before connectAhead the
// other goroutine ran thousands of times meanwhile.
func TestLoopbackDialDoesNotWaitForThePoller(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g := New(Options{})
	defer g.Close()

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var turns atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			turns.Add(1)
			runtime.Gosched()
		}
	}()
	for turns.Load() == 0 {
		runtime.Gosched()
	}
	before := turns.Load()
	c, err := g.dialer.DialContext(context.Background(), "tcp", ln.Addr().String())
	meanwhile := turns.Load() - before
	close(stop)
	<-stopped
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if meanwhile > 50 {
		t.Errorf("another goroutine ran %d times during the dial: it waited for the poller", meanwhile)
	}
	// The connection is a working one.
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

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
