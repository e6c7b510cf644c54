package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	rtrace "runtime/trace"
	"testing"

	"golang.org/x/exp/trace"
)

// TestLoopbackDialDoesNotWaitOnTheNetwork dials a local service under Go's
// execution tracer and checks that the dialing goroutine never waited for
// the network: Go's connect(2) found the connection made (connectAhead).
// Before, it always parked until the poller reported the socket writable,
// which on the agent's one processor comes only once every other runnable
// goroutine has run.
func TestLoopbackDialDoesNotWaitOnTheNetwork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g := New(Options{})
	defer g.Close()

	var buf bytes.Buffer
	if err := rtrace.Start(&buf); err != nil {
		t.Skipf("the execution tracer is in use: %v", err)
	}
	var c net.Conn
	rtrace.WithRegion(context.Background(), "dial", func() {
		c, err = g.dialer.DialContext(context.Background(), "tcp", ln.Addr().String())
	})
	rtrace.Stop()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	waits, found := dialWaits(t, &buf)
	if !found {
		t.Fatal("the trace has no dial region")
	}
	if len(waits) > 0 {
		t.Errorf("the dialing goroutine waited: %v", waits)
	}
}

// dialWaits reads a trace and returns why the goroutine of the "dial"
// region stopped running inside it, if it did (a wait for the network
// reads "network").
func dialWaits(t *testing.T, r io.Reader) (waits []string, found bool) {
	t.Helper()
	tr, err := trace.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	var g trace.GoID = trace.NoGoroutine
	for {
		ev, err := tr.ReadEvent()
		if errors.Is(err, io.EOF) {
			return waits, found
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind() {
		case trace.EventRegionBegin:
			if ev.Region().Type == "dial" {
				g, found = ev.Goroutine(), true
			}
		case trace.EventRegionEnd:
			if ev.Region().Type == "dial" {
				g = trace.NoGoroutine
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if g == trace.NoGoroutine || st.Resource.Kind != trace.ResourceGoroutine || st.Resource.Goroutine() != g {
				continue
			}
			if _, to := st.Goroutine(); to == trace.GoWaiting {
				waits = append(waits, st.Reason)
			}
		}
	}
}
