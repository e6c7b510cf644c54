package sshd

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// readBufferSize is the most one read from a home's SSH connection takes.
//
// The SSH library reads through a 1 KiB buffer of its own (sized for an
// edge's idle homes; third_party/README.md): a 32 KiB data packet costs two
// reads from the socket, its first kilobyte and the rest. Reading up to
// 64 KiB at once costs one system call per 64 KiB however the packets fall,
// for a copy the library's buffer makes anyway; the home agent reads its
// connection the same way (home/internal/tunnel/readbuf.go).
const readBufferSize = 64 << 10

// readBuffers are the buffers of pooledReads. A connection holds one only
// from a read until the library has taken the bytes it read: a few
// microseconds, not while it waits for data, so an idle home holds none.
var readBuffers = sync.Pool{New: func() any {
	b := make([]byte, readBufferSize)
	return &b
}}

// pooledReads is a home's SSH connection whose reads take up to
// readBufferSize bytes into a pooled buffer. It waits for data through the
// connection's RawConn, holding no buffer meanwhile (deadlines apply as to
// Read); everything but Read is the connection's own.
type pooledReads struct {
	net.Conn
	rc   syscall.RawConn
	held *[]byte // the pooled buffer holding rest, or nil
	rest []byte  // read and not yet taken
}

// newPooledReads wraps c, unless it cannot give its RawConn (then c reads
// as it is).
func newPooledReads(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &pooledReads{Conn: c, rc: rc}
}

func (c *pooledReads) Read(p []byte) (int, error) {
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
	var n int
	var err error
	var buf *[]byte
	waitErr := c.rc.Read(func(fd uintptr) bool {
		dst := p
		if len(p) < readBufferSize {
			if buf == nil {
				buf = readBuffers.Get().(*[]byte)
			}
			dst = *buf
		}
		for {
			n, err = syscall.Read(int(fd), dst)
			if err != syscall.EINTR {
				break
			}
		}
		if err == syscall.EAGAIN {
			// Nothing yet: wait without the buffer.
			if buf != nil {
				readBuffers.Put(buf)
				buf = nil
			}
			return false
		}
		return true
	})
	switch {
	case waitErr != nil: // closed, or past the deadline
		c.putBack(buf)
		return 0, waitErr
	case err != nil:
		c.putBack(buf)
		return 0, os.NewSyscallError("read", err)
	case n == 0:
		c.putBack(buf)
		return 0, io.EOF
	case buf == nil: // read into p
		return n, nil
	}
	got := copy(p, (*buf)[:n])
	if got == n {
		readBuffers.Put(buf)
		return got, nil
	}
	c.held, c.rest = buf, (*buf)[got:n]
	return got, nil
}

// release gives the held buffer back once its bytes are taken.
func (c *pooledReads) release() {
	if c.held != nil {
		readBuffers.Put(c.held)
		c.held, c.rest = nil, nil
	}
}

func (c *pooledReads) putBack(buf *[]byte) {
	if buf != nil {
		readBuffers.Put(buf)
	}
}
