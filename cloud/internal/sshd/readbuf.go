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
	var into []byte
	if len(p) >= readBufferSize {
		into = p
	}
	buf, n, err := readPooled(c.rc, into)
	if err != nil || buf == nil {
		return n, err
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

// readPooled waits until rc has data, holding no buffer meanwhile, and
// reads it: into dst if not nil (buf is nil then), else into a pooled
// buffer of readBufferSize, which it returns (nil on any error) for the
// caller to give back. EOF is io.EOF; a wait ended by a deadline or Close
// returns that error.
func readPooled(rc syscall.RawConn, dst []byte) (buf *[]byte, n int, err error) {
	waitErr := rc.Read(func(fd uintptr) bool {
		into := dst
		if into == nil {
			if buf == nil {
				buf = readBuffers.Get().(*[]byte)
			}
			into = *buf
		}
		for {
			n, err = syscall.Read(int(fd), into)
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
	case waitErr != nil:
		err = waitErr
	case err != nil:
		err = os.NewSyscallError("read", err)
	case n == 0:
		err = io.EOF
	default:
		return buf, n, nil
	}
	if buf != nil {
		readBuffers.Put(buf)
	}
	return nil, 0, err
}

// copyPooled copies src to dst until src's EOF (a nil error) or an error,
// reading up to readBufferSize at once into a pooled buffer held from a
// read until dst has taken the bytes: waiting for src holds none, so an
// idle visitor costs no copy buffer. A src without a RawConn is copied as
// io.Copy does.
func copyPooled(dst io.Writer, src io.Reader) (int64, error) {
	sc, ok := src.(syscall.Conn)
	if !ok {
		return io.Copy(dst, struct{ io.Reader }{src})
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return io.Copy(dst, struct{ io.Reader }{src})
	}
	var total int64
	for {
		buf, n, err := readPooled(rc, nil)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		m, err := dst.Write((*buf)[:n])
		readBuffers.Put(buf)
		total += int64(m)
		if err != nil {
			return total, err
		}
	}
}
