package gateway_test

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"homeport.dev/home/internal/gateway"
	"homeport.dev/proto/testnet"
)

// echo is a local service that sends back whatever it reads, through a
// buffer small enough not to count in heap figures.
func echo(c net.Conn) {
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

// echoed writes msg on c and reads it back.
func echoed(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: got %q, %v", msg, got, err)
	}
}

// heapInUse is the heap the live objects take, once pools are emptied (a
// pool's buffers survive one collection).
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// TestIdleForwardedConnectionsHoldNoCopyBuffer: forwarded TCP connections
// that carried data both ways and then wait (websockets between messages)
// cost the home well under a 128 KiB copy buffer each, and still carry
// data afterwards.
func TestIdleForwardedConnectionsHoldNoCopyBuffer(t *testing.T) {
	const conns = 200
	const copyBufferSize = 128 << 10 // what each held before
	service := testnet.Serve(t, testnet.Listen(t), echo)
	g := newGateway(t, gateway.Options{})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.TCP, Target: service}))
	before := heapInUse()
	clients := make([]net.Conn, 0, conns)
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		writeHeader(t, c, "203.0.113.7:4444")
		// Back from the local service: both directions of the pipe copy.
		echoed(t, c, "hello\n")
	}
	grown := heapInUse() - before
	t.Logf("heap in use grew by %d KiB for %d idle connections (%d bytes each)", grown>>10, conns, grown/conns)
	if limit := int64(conns * copyBufferSize / 4); grown > limit {
		t.Errorf("%d idle connections take %d KiB of heap, want under %d KiB: each holds a copy buffer while it waits", conns, grown>>10, limit>>10)
	}
	for _, c := range clients {
		echoed(t, c, "still there\n")
	}
}
