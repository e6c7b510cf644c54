package gateway

import (
	"net"
	"os"
	"sync"
	"time"
)

// deadlineConn gives a connection without deadlines (an SSH channel) the
// read deadlines net/http relies on, for timeouts and to abort its
// background read. A pump goroutine reads ahead into two alternating
// buffers; Read waits for the pump, the deadline or Close. The pump is
// owned by the connection: it returns once the underlying Read fails,
// which Close causes.
type deadlineConn struct {
	net.Conn
	route *route

	chunks  chan []byte // from the pump; closed after readErr is set
	readErr error
	pending []byte // rest of the current chunk; used by Read only

	rdl       deadline
	closeOnce sync.Once
	closed    chan struct{}
}

const pumpBufferSize = 32 << 10

func newDeadlineConn(c net.Conn, r *route) *deadlineConn {
	dc := &deadlineConn{Conn: c, route: r, chunks: make(chan []byte), closed: make(chan struct{})}
	dc.rdl.cancel = make(chan struct{})
	go dc.pump()
	return dc
}

func (c *deadlineConn) pump() {
	bufs := [2][]byte{make([]byte, pumpBufferSize), make([]byte, pumpBufferSize)}
	for i := 0; ; i ^= 1 {
		n, err := c.Conn.Read(bufs[i])
		if n > 0 {
			// The chunk is handed over unbuffered: by the time the pump
			// reads into this buffer again, Read has consumed it.
			select {
			case c.chunks <- bufs[i][:n]:
			case <-c.closed:
				return
			}
		}
		if err != nil {
			c.readErr = err
			close(c.chunks)
			return
		}
	}
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		select {
		case <-c.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		default:
		}
		select {
		case chunk, ok := <-c.chunks:
			if !ok {
				return 0, c.readErr
			}
			c.pending = chunk
		case <-c.rdl.wait():
			return 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *deadlineConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.Conn.Close()
	})
	return err
}

// SetDeadline sets the read deadline; writes have none (the SSH channel's
// flow control and the tunnel's keepalives bound them).
func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }

// deadline is a resettable timer whose channel closes when it passes (as
// in net.Pipe).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // never nil
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
