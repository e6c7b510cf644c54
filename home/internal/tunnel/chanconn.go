package tunnel

import (
	"errors"
	"io"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// ErrNoDeadline is returned by SetDeadline and SetWriteDeadline of
// forwarded connections: a write to an SSH channel waits for the peer's
// window and cannot be interrupted but by closing the channel. Read
// deadlines work (SetReadDeadline; third_party/README.md).
var ErrNoDeadline = errors.New("tunnel: write deadlines are not supported on forwarded connections")

// channelConn is a forwarded-tcpip channel seen as a net.Conn: LocalAddr is
// the tunnel port on the cloud, RemoteAddr the cloud-side peer that opened
// it (HAProxy, or the cloud itself for direct-tcpip).
type channelConn struct {
	ssh.Channel
	local, remote net.Addr
	// wanted reports whether the channel's forward is still wanted. Read
	// asks it at the first bytes received: the cloud opens channels to a
	// busy public port ahead of its visitors (--ssh-spare-channels), and
	// one accepted before the home dropped the forward must not serve a
	// visitor after it. (The gateway reads a public connection's first
	// bytes, its PROXY header or HTTP request, with Read; a private
	// mapping's connection gets no spares and may start with WriteTo.)
	// Reads are made by one goroutine at a time.
	wanted  func() bool
	started bool
}

// ErrForwardDropped is returned by the first read of a forwarded
// connection whose forward the home dropped after the channel opened.
var ErrForwardDropped = errors.New("tunnel: the forward of this port was dropped")

func (c *channelConn) Read(p []byte) (int, error) {
	n, err := c.Channel.Read(p)
	if n > 0 && !c.started {
		c.started = true
		if c.wanted != nil && !c.wanted() {
			c.Channel.Close()
			return 0, ErrForwardDropped
		}
	}
	return n, err
}

func (c *channelConn) LocalAddr() net.Addr  { return c.local }
func (c *channelConn) RemoteAddr() net.Addr { return c.remote }

// WriteTo hands the channel's received data to w as the SSH library
// received it, without copying it into a buffer first (io.Copy uses it; the
// library's channels implement io.WriterTo, see third_party/README.md).
func (c *channelConn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Channel.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Channel})
}

// SetReadDeadline sets the deadline of Read and WriteTo, as a net.Conn's:
// past it they fail with os.ErrDeadlineExceeded, and data that arrives
// meanwhile waits for the next read (the SSH library's channels have read
// deadlines, see third_party/README.md).
func (c *channelConn) SetReadDeadline(t time.Time) error {
	if rd, ok := c.Channel.(interface{ SetReadDeadline(time.Time) error }); ok {
		return rd.SetReadDeadline(t)
	}
	return errors.New("tunnel: this SSH library's channels have no read deadlines")
}

func (c *channelConn) SetDeadline(time.Time) error      { return ErrNoDeadline }
func (c *channelConn) SetWriteDeadline(time.Time) error { return ErrNoDeadline }

// forwardedPayload is the extra data of a forwarded-tcpip channel (RFC 4254
// 7.2): the address the forward was requested for, and the peer.
type forwardedPayload struct {
	Addr       string
	Port       uint32
	OriginAddr string
	OriginPort uint32
}

// forwardRequest is the payload of tcpip-forward and cancel-tcpip-forward.
type forwardRequest struct {
	Addr string
	Port uint32
}

// forwardBindAddr is the address forwards are requested on. The cloud binds
// every tunnel port on 127.0.0.1 whatever is asked; asking for it explicitly
// keeps the echoed address in forwarded-tcpip channels unambiguous.
const forwardBindAddr = "127.0.0.1"

func tcpAddr(host string, port uint32) net.Addr {
	ip := net.ParseIP(host)
	if ip == nil {
		ip = net.IPv4zero
	}
	return &net.TCPAddr{IP: ip, Port: int(port)}
}
