package apitls

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"

	"homeport.dev/cloud/internal/acceptloop"
)

// peekTimeout bounds how long a connection may take to send its PROXY
// header and first byte before it is dropped.
const peekTimeout = 10 * time.Second

// splitter accepts HAProxy's connections (a PROXY v2 header first, required)
// and sorts them by their first byte: a TLS handshake record (0x16) goes to
// tls, anything else (HTTP from HAProxy's public HTTP port) to plain.
type splitter struct {
	ln         net.Listener
	tls, plain *queue
	wg         sync.WaitGroup // one peek per connection being sorted

	mu      sync.Mutex
	pending map[net.Conn]struct{} // being sorted; closed with the splitter
	closed  bool
}

func newSplitter(ln net.Listener) *splitter {
	pl := &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: peekTimeout,
		ConnPolicy:        func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil },
	}
	return &splitter{ln: pl, tls: newQueue(ln.Addr()), plain: newQueue(ln.Addr()), pending: map[net.Conn]struct{}{}}
}

// run accepts until the listener is closed, riding out running out of
// file descriptors like the cloud's other listeners (acceptloop).
func (s *splitter) run() {
	loop := acceptloop.Loop{Name: "HTTPS listener"}
	loop.Serve(context.Background(), s.ln, func(c net.Conn) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.pending[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		s.sort(c)
	})
	// The listener is closed: no sorting starts any more, and a sorted
	// connection nobody accepts now is dropped (put sees the queue closed).
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.tls.close()
	s.plain.close()
	s.wg.Wait()
}

func (s *splitter) sort(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(peekTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1) // reads the PROXY header first
	s.mu.Lock()
	delete(s.pending, c)
	s.mu.Unlock()
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	q := s.plain
	if first[0] == 0x16 {
		q = s.tls
	}
	if !q.put(pc) {
		c.Close()
	}
}

// close stops accepting and drops the connections not sorted yet.
func (s *splitter) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.pending {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
}

// peekedConn is a connection whose first bytes were read ahead.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// queue is a net.Listener fed by the splitter.
type queue struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newQueue(addr net.Addr) *queue {
	return &queue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// put hands c to Accept; false once the queue is closed.
func (q *queue) put(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *queue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *queue) close()         { q.once.Do(func() { close(q.done) }) }
func (q *queue) Close() error   { q.close(); return nil }
func (q *queue) Addr() net.Addr { return q.addr }
