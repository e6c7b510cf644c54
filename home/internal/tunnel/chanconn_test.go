package tunnel_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
)

// TestForwardedConnectionsHaveReadDeadlines: a forwarded connection, a real
// channel through the cloud and HAProxy, takes a read deadline as a
// net.Conn does (net/http relies on it for its timeouts): a read waiting
// past it fails with os.ErrDeadlineExceeded, and what the visitor sends
// afterwards is read whole once the deadline is cleared. Write deadlines
// are refused, saying so.
func TestForwardedConnectionsHaveReadDeadlines(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	h, m := homeWithTCP(t, c, "alice")
	s := startSupervisor(t, fastConfig(h, h.SSHAddr()))
	timedOut := make(chan error, 1)
	report := func(err error) {
		select {
		case timedOut <- err:
		default: // one visitor only
		}
	}
	handler := func(ctx context.Context, conn net.Conn) {
		defer conn.Close()
		// HAProxy's PROXY header; a spare channel the cloud withdraws
		// without a visitor ends here.
		if _, err := conn.Read(make([]byte, 64)); err != nil {
			return
		}
		if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); !errors.Is(err, tunnel.ErrNoDeadline) {
			report(errors.New("SetWriteDeadline did not refuse"))
			return
		}
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := conn.Read(make([]byte, 64))
		conn.SetReadDeadline(time.Time{})
		report(err)
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err == nil {
			io.WriteString(conn, "got "+line)
		}
	}
	if err := s.SetForwards([]tunnel.Forward{{TunnelPort: m.TunnelPort, Handler: handler}}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s, 10*time.Second, "forwarding the port", forwardUp(m.TunnelPort))

	visitor, err := net.DialTimeout("tcp", publicTCP(m.PublicPort), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer visitor.Close()
	select {
	case err := <-timedOut:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a read past its deadline returned %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read with a deadline 100ms ahead was still waiting after 10s")
	}
	got, err := askConn(visitor, "late")
	if err != nil || got != "got late" {
		t.Fatalf("after the deadline was cleared: %q %v, want \"got late\"", got, err)
	}
}
