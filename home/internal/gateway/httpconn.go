package gateway

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// httpConn is a connection the gateway's HTTP server serves. net/http
// needs read deadlines of it, for its timeouts and to stop the read it
// keeps waiting between requests; it gets the connection's own (an SSH
// channel has them: see tunnel's channelConn and third_party/README.md),
// so an idle keep-alive connection holds no goroutine and no buffer of the
// gateway's. Write deadlines are not set: a write to an SSH channel waits
// for the peer's window, and the tunnel's keepalives end a dead peer.
type httpConn struct {
	net.Conn
	route     *route
	closeOnce sync.Once
	closed    chan struct{} // closed by Close: the server is done with it
}

// newHTTPConn wraps c, which must have read deadlines: without them a
// request's timeouts would not work and net/http would wait forever to
// stop its read between requests.
func newHTTPConn(c net.Conn, r *route) (*httpConn, error) {
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("serving HTTP needs read deadlines: %w", err)
	}
	return &httpConn{Conn: c, route: r, closed: make(chan struct{})}, nil
}

func (c *httpConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		close(c.closed)
		err = c.Conn.Close()
	})
	return err
}

// SetDeadline sets the read deadline only (see httpConn).
func (c *httpConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// SetWriteDeadline does nothing (see httpConn).
func (c *httpConn) SetWriteDeadline(time.Time) error { return nil }
