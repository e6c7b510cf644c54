// Copyright 2026 The homeport Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
)

// wireRecorder is a keyingTransport whose wire is a list of writes: the
// packets buffered since the last write go out together at the next flush
// (homeport patch, handshakeTransport.writePacket).
type wireRecorder struct {
	mu       sync.Mutex
	buffered [][]byte
	writes   [][][]byte // each write to the connection, as its packets
}

func (w *wireRecorder) writePacket(p []byte) error {
	w.writePacketBuffered(p)
	return w.flush()
}

func (w *wireRecorder) writePacketBuffered(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buffered = append(w.buffered, bytes.Clone(p))
	return nil
}

func (w *wireRecorder) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buffered) > 0 {
		w.writes = append(w.writes, w.buffered)
		w.buffered = nil
	}
	return nil
}

func (w *wireRecorder) wire() (writes [][][]byte, unflushed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes, len(w.buffered)
}

func (w *wireRecorder) readPacket() ([]byte, error)                              { select {} }
func (w *wireRecorder) Close() error                                             { return nil }
func (w *wireRecorder) prepareKeyChange(*NegotiatedAlgorithms, *kexResult) error { return nil }
func (w *wireRecorder) setStrictMode() error                                     { return nil }
func (w *wireRecorder) setInitialKEXDone()                                       {}

func newRecordingTransport() (*handshakeTransport, *wireRecorder) {
	w := &wireRecorder{}
	t := &handshakeTransport{conn: w, writePacketsLeft: math.MaxUint32, writeBytesLeft: math.MaxInt64}
	t.writeCond = sync.NewCond(&t.mu)
	return t, w
}

// TestLoneWriterFlushesAtOnce: a packet written while no other writer waits
// is on the wire when writePacket returns (nothing waits for a later one).
func TestLoneWriterFlushesAtOnce(t *testing.T) {
	ht, w := newRecordingTransport()
	for i := range 3 {
		if err := ht.writePacket([]byte{msgChannelData, byte(i)}); err != nil {
			t.Fatal(err)
		}
		writes, unflushed := w.wire()
		if len(writes) != i+1 || unflushed != 0 {
			t.Fatalf("after packet %d: %d writes and %d packets unflushed, want %d and 0", i, len(writes), unflushed, i+1)
		}
	}
}

// TestQueuedWritersShareOneWrite: writers that queue behind the one
// writing leave their packets for the last of them, which writes them all
// at once; every packet is on the wire, once, in the order the writers got
// the lock, when the last writePacket returns.
func TestQueuedWritersShareOneWrite(t *testing.T) {
	ht, w := newRecordingTransport()
	const writers = 5
	ht.mu.Lock() // a write in progress: the writers below queue
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if err := ht.writePacket([]byte{msgChannelData, byte(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for ht.writers.Load() < writers {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writers queued", ht.writers.Load(), writers)
		}
		time.Sleep(time.Millisecond)
	}
	ht.mu.Unlock()
	wg.Wait()
	writes, unflushed := w.wire()
	if len(writes) != 1 || unflushed != 0 {
		t.Fatalf("%d queued writers made %d writes, %d packets left unflushed; want 1 write, 0 left", writers, len(writes), unflushed)
	}
	seen := map[byte]bool{}
	for _, p := range writes[0] {
		seen[p[1]] = true
	}
	if len(writes[0]) != writers || len(seen) != writers {
		t.Fatalf("the write holds packets %v, want each of the %d writers' once", writes[0], writers)
	}
}

// TestRunnableWritersShareOneWrite: writers made runnable at once (as a
// network poll readies the goroutines of several connections with data)
// on one processor, none of them queued for the lock, leave their packets
// for each other: fewer writes than writers, every packet on the wire once
// when the last writePacket returns.
func TestRunnableWritersShareOneWrite(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ht, w := newRecordingTransport()
	const writers = 8
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			if err := ht.writePacket([]byte{msgChannelData, byte(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	runtime.Gosched() // the writers wait for start
	close(start)
	wg.Wait()
	writes, unflushed := w.wire()
	var packets int
	for _, wr := range writes {
		packets += len(wr)
	}
	if packets != writers || unflushed != 0 {
		t.Fatalf("%d packets on the wire and %d unflushed, want %d and 0", packets, unflushed, writers)
	}
	if len(writes) > writers/2 {
		t.Fatalf("%d writers runnable at once made %d writes, want at most %d", writers, len(writes), writers/2)
	}
	t.Logf("%d writers, %d writes", writers, len(writes))
}

// TestConcurrentWritersLoseNothing: many writers at once over a real
// transport and aes-gcm; every packet arrives, each writer's in its order,
// and nothing is left in the buffer when they are done.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	client, server, err := sshPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	defer server.Close()
	const channels, msgs = 16, 200
	got := make(chan error, channels)
	go func() {
		for range channels {
			nc, err := server.Accept()
			if err != nil {
				return
			}
			ch, reqs, err := nc.Accept()
			if err != nil {
				got <- err
				continue
			}
			go DiscardRequests(reqs)
			go func() {
				var all bytes.Buffer
				_, err := all.ReadFrom(ch)
				var want bytes.Buffer
				id := string(nc.ExtraData())
				for j := range msgs {
					fmt.Fprintf(&want, "%s:%d;", id, j)
				}
				if err == nil && !bytes.Equal(all.Bytes(), want.Bytes()) {
					err = fmt.Errorf("channel %s received %d bytes, not its %d messages in order", id, all.Len(), msgs)
				}
				got <- err
			}()
		}
	}()
	var wg sync.WaitGroup
	for i := range channels {
		id := fmt.Sprint(i)
		ch, reqs, err := client.OpenChannel("data", []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		go DiscardRequests(reqs)
		wg.Go(func() {
			for j := range msgs {
				fmt.Fprintf(ch, "%s:%d;", id, j)
			}
			ch.Close()
		})
	}
	wg.Wait()
	for range channels {
		select {
		case err := <-got:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a channel's data never arrived whole (a packet left unflushed?)")
		}
	}
}
