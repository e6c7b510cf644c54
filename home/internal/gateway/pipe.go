package gateway

import (
	"context"
	"net"
	"sync/atomic"

	"homeport.dev/proto/pooledio"
)

// copyBufferSize is the most one read from a local service takes. Larger
// than io.Copy's 32 KiB so that a bulk transfer makes fewer, larger writes
// to the SSH channel (which splits them into packets).
const copyBufferSize = 128 << 10

// pipe copies a to b and b to a until both directions end, half-closing
// the side whose direction finishes first, and closes both: the direction
// that finishes last does not half-close (on the channel, an EOF right
// before its CLOSE would be one more SSH packet to write, read and wake up
// for, saying nothing the CLOSE does not). ctx ending (the
// tunnel lost, the cloud closed the channel) closes both at once, so a side
// that never finishes cannot hold the pipe open.
func (g *Gateway) pipe(ctx context.Context, a, b net.Conn) {
	stop := context.AfterFunc(ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	var finished atomic.Int32 // directions done
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.copyHalf(b, a, &finished)
	}()
	g.copyHalf(a, b, &finished)
	<-done
	a.Close()
	b.Close()
}

// copyHalf copies src to dst, then half-closes dst if it is the first
// direction of the pipe to finish (finished counts them). Data from the tunnel
// (a proxiedConn) goes out as received, without a copy (proxiedConn.WriteTo).
// The local service's data is read up to copyBufferSize at once into a
// pooled buffer taken only while bytes are there (pooledio.Copy, which
// writes to dst with plain Writes): an idle connection, such as a websocket
// between messages, holds no copy buffer (a 128 KiB one for its whole life
// before: TestIdleForwardedConnectionsHoldNoCopyBuffer).
func (g *Gateway) copyHalf(dst, src net.Conn, finished *atomic.Int32) {
	if p, ok := src.(*proxiedConn); ok {
		p.WriteTo(dst)
	} else {
		pooledio.Copy(dst, src, copyBufferSize)
	}
	if finished.Add(1) == 1 {
		closeWrite(dst)
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
