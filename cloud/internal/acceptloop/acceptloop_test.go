package acceptloop_test

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"homeport.dev/cloud/internal/acceptloop"
)

// flakyListener fails its first n accepts with err, then hands out real
// connections of an inner listener.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, f.err
	}
	return f.Listener.Accept()
}

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// TestLoopSurvivesFdExhaustion is the edge running out of file descriptors:
// accept fails with EMFILE many times, the loop reports not ready meanwhile,
// and accepts again once descriptors are back.
func TestLoopSurvivesFdExhaustion(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: inner, err: emfile()}
	fl.fails.Store(8)
	var l acceptloop.Loop
	l.Name = "test endpoint"
	sawNotReady := make(chan error, 1)
	l.OnError = func(error, time.Duration) {
		select {
		case sawNotReady <- l.Check(context.Background()):
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	got := make(chan struct{}, 1)
	go func() {
		done <- l.Serve(ctx, fl, func(c net.Conn) { c.Close(); got <- struct{}{} })
	}()
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-got:
	case err := <-done:
		t.Fatalf("loop gave up on EMFILE: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("connection never accepted after the errors")
	}
	if err := <-sawNotReady; err == nil {
		t.Error("Check said ready while accept was failing")
	}
	if err := l.Check(ctx); err != nil {
		t.Errorf("Check after recovery: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if l.Check(context.Background()) == nil {
		t.Error("Check said ready after the loop stopped")
	}
}

// TestLoopEndsOnPermanentError: a listener closed under the loop (not by
// its context) ends it with an error, so the process can exit non-zero.
func TestLoopEndsOnPermanentError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l acceptloop.Loop
	l.Name = "test endpoint"
	done := make(chan error, 1)
	go func() { done <- l.Serve(context.Background(), ln, func(c net.Conn) { c.Close() }) }()
	ln.Close()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve = %v, want the accept error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not end when its listener died")
	}
	if l.Check(context.Background()) == nil {
		t.Error("Check said ready with a dead listener")
	}
}

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{emfile(), true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, true},
		{net.ErrClosed, false},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{errors.New("boom"), false},
	} {
		if got := acceptloop.Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
