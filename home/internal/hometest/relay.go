package hometest

import (
	"net"
	"sync"
	"testing"
)

// Relay is a TCP relay between a home and its cloud that a test can
// silence (the cloud's host freezes, or a NAT drops the flow without a
// reset) or cut (the network drops every connection).
type Relay struct {
	Addr string // connect here instead of the target

	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[*relayed]struct{}
	closed bool
	wg     sync.WaitGroup // accept loop and every copy goroutine
}

type relayed struct {
	a, b   net.Conn
	frozen bool // guarded by Relay.mu
}

// NewRelay relays connections to target until the test ends.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: ln.Addr().String(), ln: ln, target: target, conns: map[*relayed]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.Close)
	return r
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		a, err := r.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", r.target)
		if err != nil {
			a.Close()
			continue
		}
		c := &relayed{a: a, b: b}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			a.Close()
			b.Close()
			return
		}
		r.conns[c] = struct{}{}
		r.wg.Add(2)
		r.mu.Unlock()
		go r.copy(c, b, a)
		go r.copy(c, a, b)
	}
}

// copy moves src to dst; while c is frozen, what arrives is dropped, like
// a black-holed path.
func (r *Relay) copy(c *relayed, dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			frozen := c.frozen
			r.mu.Unlock()
			if !frozen {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
		}
		if err != nil {
			break
		}
	}
	c.a.Close()
	c.b.Close()
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// Freeze silences every current connection in both directions, without
// closing it. New connections are relayed normally.
func (r *Relay) Freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.frozen = true
	}
}

// Cut closes every current connection.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.a.Close()
		c.b.Close()
	}
}

// Close stops the relay and waits for its goroutines.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.ln.Close()
	r.Cut()
	r.wg.Wait()
}
