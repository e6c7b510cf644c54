// Package pooledio reads sockets into pooled buffers taken only while data
// is there. A read waits for the socket to be readable through its
// syscall.RawConn, holding no buffer, then reads into a buffer from the pool
// of its size, given back once the bytes are passed on. A connection that
// waits (an idle home at the cloud, an idle visitor, a websocket between
// messages at a home) so costs no buffer, where a bufio.Reader or an
// io.CopyBuffer loop holds one for the connection's whole life: 200 idle
// connections through a home's gateway took 27 MiB of heap with a 128 KiB
// copy buffer each, 1.5-2 MiB with Copy (home/internal/gateway,
// TestIdleForwardedConnectionsHoldNoCopyBuffer). Bulk transfers still read
// a whole buffer per system call.
package pooledio

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// SSHReadSize is the most one read from an SSH connection takes, at both
// ends of the tunnel.
//
// The SSH library reads through a 1 KiB buffer of its own (sized for an
// edge's idle homes; third_party/README.md): a 32 KiB data packet costs two
// reads from the socket, its first kilobyte and the rest, and a burst of
// small packets one read per kilobyte. Reading up to 64 KiB at once costs
// one system call per 64 KiB however the packets fall, for a copy the
// library's buffer makes anyway (at the cloud: download through the tunnel
// 135 -> 92 system calls per MB).
const SSHReadSize = 64 << 10

// pools holds one pool of buffers per size in use, shared by every
// connection and copy of that size. It is looked up once per connection or
// copy, not per read.
var pools struct {
	sync.Mutex
	bySize map[int]*sync.Pool
}

// poolOf returns the pool of size-byte buffers (*[]byte).
func poolOf(size int) *sync.Pool {
	if size <= 0 {
		panic("pooledio: buffer size must be positive")
	}
	pools.Lock()
	defer pools.Unlock()
	p := pools.bySize[size]
	if p == nil {
		p = &sync.Pool{New: func() any {
			b := make([]byte, size)
			return &b
		}}
		if pools.bySize == nil {
			pools.bySize = make(map[int]*sync.Pool)
		}
		pools.bySize[size] = p
	}
	return p
}

// conn is a connection whose reads take up to size bytes into a pooled
// buffer, held from a read until the caller has taken the bytes. It waits
// for data through the connection's RawConn, holding no buffer meanwhile
// (deadlines apply as to Read); everything but Read is the connection's own.
type conn struct {
	net.Conn
	rc   syscall.RawConn
	pool *sync.Pool
	size int
	held *[]byte // the pooled buffer holding rest, or nil
	rest []byte  // read and not yet taken
}

// NewConn wraps c so that its reads go through pooled buffers of size
// bytes, unless c cannot give its RawConn (then c reads as it is).
func NewConn(c net.Conn, size int) net.Conn {
	rc, ok := rawConnOf(c)
	if !ok {
		return c
	}
	return &conn{Conn: c, rc: rc, pool: poolOf(size), size: size}
}

// rawConnOf returns the RawConn of x if it has one this system's
// readPooled can read from.
func rawConnOf(x any) (syscall.RawConn, bool) {
	sc, ok := x.(syscall.Conn)
	if !ok || !rawReads {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		if len(c.rest) == 0 {
			c.release()
		}
		return n, nil
	}
	var into []byte
	if len(p) >= c.size {
		into = p
	}
	buf, n, err := readPooled(c.rc, c.pool, into)
	if err != nil || buf == nil {
		return n, err
	}
	got := copy(p, (*buf)[:n])
	if got == n {
		c.pool.Put(buf)
		return got, nil
	}
	c.held, c.rest = buf, (*buf)[got:n]
	return got, nil
}

// release gives the held buffer back once its bytes are taken.
func (c *conn) release() {
	if c.held != nil {
		c.pool.Put(c.held)
		c.held, c.rest = nil, nil
	}
}

// Copy copies src to dst until src's EOF (a nil error) or an error, reading
// up to size bytes at once into a pooled buffer held from a read until
// dst.Write has returned: waiting for src holds none. dst gets plain Writes
// (its ReadFrom, if any, is not used). A src without a RawConn (or on a
// system without readPooled) is copied through one pooled buffer held for
// the whole copy.
func Copy(dst io.Writer, src io.Reader, size int) (int64, error) {
	pool := poolOf(size)
	rc, ok := rawConnOf(src)
	if !ok {
		buf := pool.Get().(*[]byte)
		defer pool.Put(buf)
		return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *buf)
	}
	var total int64
	for {
		buf, n, err := readPooled(rc, pool, nil)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		m, err := dst.Write((*buf)[:n])
		pool.Put(buf)
		total += int64(m)
		if err != nil {
			return total, err
		}
	}
}

// Buffers hands out pooled buffers of one size through the Get and Put of
// net/http/httputil's BufferPool: without one, a ReverseProxy allocates a
// 32 KiB buffer for every response it copies, which at a home's HTTP
// gateway made most of the garbage and the collector's work per request.
type Buffers struct {
	pool *sync.Pool
	size int
}

// NewBuffers returns the pool of size-byte buffers (shared with Copy and
// NewConn of that size).
func NewBuffers(size int) Buffers { return Buffers{pool: poolOf(size), size: size} }

// Get returns a buffer of the pool's size.
func (b Buffers) Get() []byte { return *b.pool.Get().(*[]byte) }

// Put gives buf back to the pool; a buffer of another size is left to the
// collector.
func (b Buffers) Put(buf []byte) {
	if cap(buf) != b.size {
		return
	}
	buf = buf[:b.size]
	b.pool.Put(&buf)
}
