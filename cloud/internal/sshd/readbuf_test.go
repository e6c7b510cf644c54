package sshd

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestPooledReadsDeliverEveryByte: 5 MiB written in random pieces and read
// through pooledReads in random sizes (below and above its buffer) arrive
// whole and in order, then EOF; no buffer is held once all is taken.
func TestPooledReadsDeliverEveryByte(t *testing.T) {
	w, r := tcpPair(t)
	pr := newPooledReads(r).(*pooledReads)
	data := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	go func() {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(100<<10))
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.(*net.TCPConn).CloseWrite()
	}()
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, 2*readBufferSize)
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

// TestPooledReadsHoldNoBufferBetweenReads: a small read keeps the rest of
// what arrived in a pooled buffer until it is taken, then gives it back;
// a read deadline ends a wait as on the connection itself.
func TestPooledReadsHoldNoBufferBetweenReads(t *testing.T) {
	w, r := tcpPair(t)
	pr := newPooledReads(r).(*pooledReads)
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

// TestCopyPooledCopiesEveryByte: copyPooled moves 5 MiB from a socket to a
// writer whole and in order, ending with a nil error at EOF.
func TestCopyPooledCopiesEveryByte(t *testing.T) {
	w, r := tcpPair(t)
	data := make([]byte, 5<<20)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	go func() {
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(100<<10))
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.(*net.TCPConn).CloseWrite()
	}()
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got bytes.Buffer
	n, err := copyPooled(&got, r)
	if err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("copyPooled = %d, %v; want all %d bytes in order and nil", n, err, len(data))
	}
}
