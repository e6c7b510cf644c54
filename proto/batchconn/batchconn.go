// Package batchconn is the net.Conn under the SSH transport of the cloud's
// SSH endpoint. x/crypto/ssh reads a packet as a 4-byte length and then the
// rest, through a 4 KiB bufio.Reader, and issues one write system call per
// packet (at most 32 KiB of payload). Moving bulk data, system calls and not
// encryption dominated (DESIGN.md, "Performance notes"), so this connection
// batches both ways. The home agent no longer uses it: with the patched
// x/crypto (third_party/README.md) the bare connection costs it less CPU than
// the batching's extra copy and goroutine (BenchmarkDataPath in
// home/internal/tunnel prints both). The cloud dropped it too: its 256 KiB
// read buffer and flusher goroutine per connection were most of what an
// idle home cost a 10,000-home edge, and downloads measured the same
// without it. What is left is the benchmark's comparison.
package batchconn

import (
	"bufio"
	"net"
	"sync"
)

// Sizes of the batching.
const (
	readBufferSize = 256 << 10 // one read system call fetches several packets
	maxPendingSize = 512 << 10 // writes block while this much awaits the socket
)

// Conn is the net.Conn under the SSH transport. Reads go through a
// large buffer. Writes are queued and a flusher goroutine writes everything
// queued in one system call: an idle connection sends at once (no Nagle-like
// delay), a busy one coalesces the packets queued while the previous write
// was in the kernel. Close stops the flusher; it is the flusher's owner.
type Conn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	cond    *sync.Cond // signals queued data, free space and close
	pending []byte     // queued, not yet handed to the kernel
	spare   []byte     // the flusher's previous batch, reused
	err     error      // sticky: the first write error, or net.ErrClosed
	closed  bool
	done    chan struct{} // closed when the flusher has returned
}

// New wraps c; Close closes c and stops the flusher goroutine.
func New(c net.Conn) *Conn {
	b := &Conn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize), done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.flush()
	return b
}

// Read reads through the large buffer.
func (b *Conn) Read(p []byte) (int, error) { return b.r.Read(p) }

// Write queues p. It blocks only while too much is queued, and returns the
// error of an earlier failed write (TCP reports delivery failures late, too).
func (b *Conn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && len(b.pending) > 0 && len(b.pending)+len(p) > maxPendingSize {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.pending = append(b.pending, p...)
	b.cond.Broadcast()
	return len(p), nil
}

// flush hands queued bytes to the kernel until the connection fails or is
// closed.
func (b *Conn) flush() {
	defer close(b.done)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for len(b.pending) == 0 && !b.closed {
			b.cond.Wait()
		}
		if b.closed {
			return
		}
		batch := b.pending
		b.pending = b.spare[:0]
		b.mu.Unlock()
		_, err := b.Conn.Write(batch)
		b.mu.Lock()
		b.spare = batch
		if err != nil && b.err == nil {
			b.err = err
		}
		b.cond.Broadcast()
		if b.err != nil {
			return
		}
	}
}

// Close closes the connection and waits for the flusher. Queued bytes not
// yet written are dropped, as the kernel would drop unsent ones: the SSH
// client closes its transport without a final message, when the connection
// is lost or the supervisor stops.
func (b *Conn) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.cond.Broadcast()
	b.mu.Unlock()
	err := b.Conn.Close()
	<-b.done
	return err
}
