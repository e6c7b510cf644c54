package batchconn

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"homeport.dev/proto/testnet"
)

// TestBytesArriveInOrderBothWays writes many packets of odd sizes through a
// batching connection and reads them back, in both directions.
func TestBytesArriveInOrderBothWays(t *testing.T) {
	raw, peer := testnet.Pair(t)
	c := New(raw)
	defer c.Close()
	want := make([]byte, 8<<20)
	rand.Read(want)
	go func() {
		for off := 0; off < len(want); {
			n := min(1+off%37000, len(want)-off) // sizes from 1 byte to ~36 KiB
			if _, err := c.Write(want[off : off+n]); err != nil {
				return
			}
			off += n
		}
	}()
	got := make([]byte, len(want))
	peer.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("peer read %v, equal=%v", err, bytes.Equal(got, want))
	}
	go peer.Write(want[:1<<20])
	back := make([]byte, 1<<20)
	raw.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(c, back); err != nil || !bytes.Equal(back, want[:1<<20]) {
		t.Fatalf("read back %v", err)
	}
}

func TestWriteAfterCloseFails(t *testing.T) {
	raw, _ := testnet.Pair(t)
	c := New(raw)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
}
