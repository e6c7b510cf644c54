package tunnel

import (
	"bufio"
	"net"
)

// readBufferSize is the read buffer of the home's SSH connection.
//
// The SSH library reads through a 1 KiB buffer of its own (small, because
// a cloud holds one per home; third_party/README.md): a 32 KiB data packet
// costs two reads from the socket, its first kilobyte and the rest, and a
// burst of small packets one read per kilobyte. The home has a single
// connection, so it reads through 64 KiB more: one system call per 64 KiB
// however the packets fall, for a copy the library's buffer makes anyway.
const readBufferSize = 64 << 10

// readBuffered is a connection whose reads go through a readBufferSize
// buffer; everything else is the connection's own.
type readBuffered struct {
	net.Conn
	r *bufio.Reader
}

func newReadBuffered(c net.Conn) *readBuffered {
	return &readBuffered{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}
}

func (c *readBuffered) Read(p []byte) (int, error) { return c.r.Read(p) }
