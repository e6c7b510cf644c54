package pooledio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"homeport.dev/proto/testnet"
)

// sendRandom writes 5 MiB of random bytes on w in random pieces of up to
// maxPiece bytes, then half-closes w, in a goroutine of its own; it returns
// the bytes.
func sendRandom(w net.Conn, seed uint64, maxPiece int) []byte {
	data := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	go func() {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(maxPiece))
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.(*net.TCPConn).CloseWrite()
	}()
	return data
}

// TestConnDeliversEveryByte: 5 MiB written in random pieces and read
// through NewConn in random sizes (below and above its buffer) arrive
// whole and in order, then EOF; no buffer is held once all is taken.
func TestConnDeliversEveryByte(t *testing.T) {
	w, r := testnet.Pair(t)
	pr := NewConn(r, SSHReadSize).(*conn)
	data := sendRandom(w, 1, 100<<10)
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, 2*SSHReadSize)
	rr := rand.New(rand.NewPCG(3, 4))
	for {
		n, err := pr.Read(buf[:1+rr.IntN(len(buf))])
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read %d bytes that differ from the %d written", got.Len(), len(data))
	}
	if pr.held != nil {
		t.Error("a pooled buffer is still held after every byte was taken")
	}
}

// TestConnHoldsNoBufferBetweenReads: a small read keeps the rest of
// what arrived in a pooled buffer until it is taken, then gives it back;
// a read deadline ends a wait as on the connection itself.
func TestConnHoldsNoBufferBetweenReads(t *testing.T) {
	w, r := testnet.Pair(t)
	pr := NewConn(r, SSHReadSize).(*conn)
	w.Write(bytes.Repeat([]byte("x"), 3000))
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	small := make([]byte, 1000)
	if _, err := io.ReadFull(pr, small); err != nil {
		t.Fatal(err)
	}
	// The first read may have taken part of the 3000 bytes only; read
	// until they are all taken.
	if _, err := io.ReadFull(pr, make([]byte, 2000)); err != nil {
		t.Fatal(err)
	}
	if pr.held != nil {
		t.Fatal("a pooled buffer is held with nothing left to take")
	}
	r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := pr.Read(small); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a deadline error", err)
	}
	if pr.held != nil {
		t.Fatal("a pooled buffer is held by a read that waited and timed out")
	}
}

// TestCopyCopiesEveryByte: Copy moves 5 MiB from a socket to a writer
// whole and in order, ending with a nil error at EOF, in writes no larger
// than its buffer size, for each size in use (the SSH connections', the
// home gateway's 128 KiB).
func TestCopyCopiesEveryByte(t *testing.T) {
	for _, size := range []int{SSHReadSize, 128 << 10} {
		t.Run(fmt.Sprint(size>>10, "KiB"), func(t *testing.T) {
			w, r := testnet.Pair(t)
			data := sendRandom(w, 5, 300<<10)
			r.SetReadDeadline(time.Now().Add(30 * time.Second))
			got := &largestWrite{}
			n, err := Copy(got, r, size)
			if err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("Copy = %d, %v; want all %d bytes in order and nil", n, err, len(data))
			}
			if got.largest > size {
				t.Errorf("a write of %d bytes from a copy with %d-byte buffers", got.largest, size)
			}
		})
	}
}

// largestWrite is a buffer that records its largest Write.
type largestWrite struct {
	bytes.Buffer
	largest int
}

func (w *largestWrite) Write(p []byte) (int, error) {
	w.largest = max(w.largest, len(p))
	return w.Buffer.Write(p)
}

// TestBuffersAreAlwaysTheirSize: Get returns buffers of the pool's size,
// also after a shortened one was put back; one of another size is not
// taken into the pool.
func TestBuffersAreAlwaysTheirSize(t *testing.T) {
	b := NewBuffers(1000)
	buf := b.Get()
	b.Put(buf[:10])
	b.Put(make([]byte, 10))
	b.Put(make([]byte, 10, 2000))
	for range 100 {
		if got := b.Get(); len(got) != 1000 || cap(got) != 1000 {
			t.Fatalf("Get returned len %d cap %d, want 1000", len(got), cap(got))
		}
	}
}
