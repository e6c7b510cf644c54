// Copyright 2026 The homeport Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// readResult is what a Read or WriteTo started in a goroutine returned.
type readResult struct {
	data string
	err  error
}

func readAsync(r io.Reader) chan readResult {
	done := make(chan readResult, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := r.Read(buf)
		done <- readResult{string(buf[:n]), err}
	}()
	return done
}

func wantTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: got %v, want os.ErrDeadlineExceeded (a net.Error whose Timeout is true)", what, err)
	}
}

// TestChannelReadDeadline (homeport patch): a read waiting for data fails
// with a timeout once its deadline passes; a deadline moved into the past
// ends a waiting read at once (how net/http stops its read ahead); data
// that arrives afterwards is kept for the next read once the deadline is
// cleared, and a cleared deadline never fires.
func TestChannelReadDeadline(t *testing.T) {
	a, b, mux := channelPair(t)
	defer a.Close()
	defer b.Close()
	defer mux.Close()

	start := time.Now()
	a.SetReadDeadline(start.Add(50 * time.Millisecond))
	_, err := a.Read(make([]byte, 8))
	wantTimeout(t, "read past its deadline", err)
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("the read returned after %s, before its deadline", waited)
	}
	// Still expired: fails at once, as a net.Conn's read does.
	_, err = a.Read(make([]byte, 8))
	wantTimeout(t, "second read past the deadline", err)

	// A waiting read, then a deadline in the past.
	a.SetReadDeadline(time.Time{})
	done := readAsync(a)
	select {
	case r := <-done:
		t.Fatalf("read returned %q, %v with no data and no deadline", r.data, r.err)
	case <-time.After(20 * time.Millisecond):
	}
	a.SetReadDeadline(time.Unix(1, 0))
	select {
	case r := <-done:
		wantTimeout(t, "read aborted by a past deadline", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("a deadline in the past did not end the waiting read")
	}

	// Data sent while the deadline is past waits for the next read.
	if _, err := b.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	a.SetReadDeadline(time.Time{}) // cleared before it passes
	time.Sleep(40 * time.Millisecond)
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(a, buf, 4)
	if err != nil || string(buf[:n]) != "kept" {
		t.Fatalf("after the deadline was cleared: read %q, %v; want \"kept\"", buf[:n], err)
	}
}

// TestChannelReadDeadlineMoves (homeport patch): a deadline moved later
// while the timer is set for the earlier one is kept, not the earlier one;
// one moved earlier is kept too.
func TestChannelReadDeadlineMoves(t *testing.T) {
	a, b, mux := channelPair(t)
	defer a.Close()
	defer b.Close()
	defer mux.Close()

	start := time.Now()
	a.SetReadDeadline(start.Add(20 * time.Millisecond))
	a.SetReadDeadline(start.Add(150 * time.Millisecond))
	_, err := a.Read(make([]byte, 8))
	wantTimeout(t, "read past a deadline moved later", err)
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("the read failed after %s, at the deadline moved away (20ms), not at the one set (150ms)", waited)
	}

	start = time.Now()
	a.SetReadDeadline(start.Add(time.Hour))
	a.SetReadDeadline(start.Add(30 * time.Millisecond))
	done := readAsync(a)
	select {
	case r := <-done:
		wantTimeout(t, "read past a deadline moved earlier", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("a deadline moved earlier did not end the read")
	}
}

// TestClosedChannelHoldsNoDeadlineTimer (homeport patch): once a channel
// is closed its deadline timer is stopped and not armed again, so it does
// not keep the channel reachable until a far deadline.
func TestClosedChannelHoldsNoDeadlineTimer(t *testing.T) {
	a, b, mux := channelPair(t)
	defer mux.Close()
	a.SetReadDeadline(time.Now().Add(time.Hour))
	b.Close()
	if _, err := io.ReadAll(a); err != nil { // EOF: a saw b's close
		t.Fatal(err)
	}
	a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.deadlineMu.Lock()
		stopped := a.deadlineStopped
		a.deadlineMu.Unlock()
		if stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the closed channel's deadline timer is still armed")
		}
		time.Sleep(time.Millisecond)
	}
	if a.deadlineTimer.Stop() {
		t.Fatal("the closed channel's deadline timer was still armed")
	}
	a.SetReadDeadline(time.Now().Add(time.Hour))
	if a.deadlineTimer.Stop() {
		t.Fatal("a deadline set after the close armed the timer again")
	}
}

// TestChannelWriteToDeadline (homeport patch): WriteTo, which io.Copy
// uses, keeps the read deadline too, and delivers what came before it.
func TestChannelWriteToDeadline(t *testing.T) {
	a, b, mux := channelPair(t)
	defer a.Close()
	defer b.Close()
	defer mux.Close()

	if _, err := b.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	a.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var got writeRecorder
	done := make(chan error, 1)
	go func() {
		_, err := a.WriteTo(&got)
		done <- err
	}()
	select {
	case err := <-done:
		wantTimeout(t, "WriteTo past its deadline", err)
	case <-time.After(10 * time.Second):
		t.Fatal("WriteTo waited past its deadline")
	}
	if got.String() != "before" {
		t.Fatalf("WriteTo delivered %q before its deadline, want \"before\"", got.String())
	}
}

type writeRecorder struct{ data []byte }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.data = append(w.data, p...)
	return len(p), nil
}

func (w *writeRecorder) String() string { return string(w.data) }
