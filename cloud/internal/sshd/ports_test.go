package sshd

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"homeport.dev/proto/testnet"
)

// TestTunnelPortsShareOneGoroutine listens on 200 tunnel ports: visitors of
// every port are handed over, the ports cost one goroutine together (not
// one each), a closed port refuses visitors and can be listened on again at
// once, and after stop every port is closed and listening fails.
func TestTunnelPortsShareOneGoroutine(t *testing.T) {
	const n = 200
	r := testnet.FreeRange(t, n, 16)
	p := newPorts(func(err error, retry time.Duration) { t.Errorf("accept error: %v", err) })
	echo := func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	}
	before := runtime.NumGoroutine()
	ls := make([]*portListener, n)
	for i := range ls {
		l, err := p.listen(r.First+i, echo)
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
	}
	if g := runtime.NumGoroutine() - before; g > 1 {
		t.Errorf("%d listening ports cost %d goroutines, want 1", n, g)
	}
	visit := func(port int) error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "port %d", port)
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if want := fmt.Sprintf("port %d", port); string(got) != want {
			return fmt.Errorf("port %d echoed %q (%v), want %q", port, got, err, want)
		}
		return nil
	}
	for i := range ls {
		if err := visit(r.First + i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.listen(r.First, echo); err == nil {
		t.Fatal("a second listen on a port in use succeeded")
	}
	// Closed: refused; listened on again (its last visitor's socket is in
	// TIME_WAIT): served again.
	if err := ls[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := visit(r.First); err == nil {
		t.Fatal("a closed port still took a visitor")
	}
	l, err := p.listen(r.First, echo)
	if err != nil {
		t.Fatalf("listen again on a closed port: %v", err)
	}
	ls[0] = l
	if err := visit(r.First); err != nil {
		t.Fatal(err)
	}
	p.stop()
	// The loop's goroutine, and the last visitor's handler, end just after
	// they signal it: give them a moment (bounded) before counting.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if g := runtime.NumGoroutine() - before; g > 0 {
		t.Errorf("%d goroutines left after stop", g)
	}
	for i := range ls {
		if err := visit(r.First + i); err == nil {
			t.Fatalf("port %d still took a visitor after stop", r.First+i)
		}
	}
	if _, err := p.listen(r.First, echo); err == nil {
		t.Fatal("listen after stop succeeded")
	}
}

// TestVisitorConnsKeepNoDelayAndAddresses: a visitor accepted on a tunnel
// port has TCP_NODELAY (small writes towards HAProxy are not held back by
// Nagle), the visitor's own address as RemoteAddr and the tunnel port as
// LocalAddr, and CloseWrite gives the visitor EOF while it can still send.
func TestVisitorConnsKeepNoDelayAndAddresses(t *testing.T) {
	r := testnet.FreeRange(t, 1, 16)
	p := newPorts(func(err error, retry time.Duration) { t.Errorf("accept error: %v", err) })
	defer p.stop()
	type seen struct {
		nodelay       int
		local, remote string
		echoed        string
	}
	got := make(chan seen, 1)
	if _, err := p.listen(r.First, func(c net.Conn) {
		defer c.Close()
		var s seen
		s.local, s.remote = c.LocalAddr().String(), c.RemoteAddr().String()
		rc, err := c.(interface {
			SyscallConn() (syscall.RawConn, error)
		}).SyscallConn()
		if err == nil {
			rc.Control(func(fd uintptr) {
				s.nodelay, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
			})
		}
		c.Write([]byte("hello"))
		c.(interface{ CloseWrite() error }).CloseWrite()
		b, _ := io.ReadAll(c) // the visitor still sends after our EOF
		s.echoed = string(b)
		got <- s
	}); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.First), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if string(b) != "hello" || err != nil {
		t.Fatalf("visitor read %q, %v; want hello then EOF", b, err)
	}
	c.Write([]byte("still here"))
	c.(*net.TCPConn).CloseWrite()
	s := <-got
	if s.nodelay == 0 {
		t.Error("the accepted visitor socket has Nagle on (TCP_NODELAY unset)")
	}
	if s.remote != c.LocalAddr().String() || s.local != fmt.Sprintf("127.0.0.1:%d", r.First) {
		t.Errorf("visitor conn addresses local %s remote %s, want 127.0.0.1:%d and %s", s.local, s.remote, r.First, c.LocalAddr())
	}
	if s.echoed != "still here" {
		t.Errorf("after CloseWrite the conn read %q, want the visitor's later bytes", s.echoed)
	}
}

// TestEveryVisitorIsAccepted: 16 dialers make 4,000 connections to 50
// tunnel ports at once, as fast as they can; each is accepted and served
// (the loop waits in Go's poller between visitors, and none may be left
// in a listen queue for want of a wake-up).
func TestEveryVisitorIsAccepted(t *testing.T) {
	const ports, dialers, each = 50, 16, 250
	r := testnet.FreeRange(t, ports, 16)
	p := newPorts(func(err error, retry time.Duration) { t.Errorf("accept error: %v", err) })
	defer p.stop()
	for i := range ports {
		if _, err := p.listen(r.First+i, func(c net.Conn) {
			defer c.Close()
			io.Copy(c, c)
		}); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, dialers)
	for d := range dialers {
		go func() {
			for i := range each {
				port := r.First + (d*each+i)%ports
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Write([]byte{byte(i)})
				b := make([]byte, 1)
				if err == nil {
					_, err = io.ReadFull(c, b)
				}
				c.Close()
				if err != nil {
					errs <- fmt.Errorf("visitor %d of port %d: %w", i, port, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range dialers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
