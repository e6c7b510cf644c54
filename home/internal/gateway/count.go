package gateway

import "sync/atomic"

// Counter counts the bytes of an entry's connections as the gateway moves
// them: in arrived through the tunnel (from visitors; the PROXY header not
// included), out went back. It costs an atomic add per read or write of
// data the gateway moves anyway: no copy, no lock. Bytes piped from the
// tunnel to a tcp or https passthrough service are added when that
// direction of the connection ends (proxiedConn.WriteTo says why); every
// other byte as it passes.
type Counter struct {
	in, out atomic.Uint64
}

// Bytes returns the bytes counted so far, by direction.
func (c *Counter) Bytes() (in, out uint64) { return c.in.Load(), c.out.Load() }

// Add counts bytes moved outside the gateway's own connections.
func (c *Counter) Add(in, out uint64) {
	c.in.Add(in)
	c.out.Add(out)
}
