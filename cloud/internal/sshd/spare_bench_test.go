package sshd_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/sshd"
	"homeport.dev/cloud/internal/store"
)

// BenchmarkNewConnectionOverAWANLink measures what a visitor of a home
// behind a slow link waits for a new connection's first answer (connect,
// send, read the echo), with spare channels (--ssh-spare-channels 2)
// against none, in the same run. The home's SSH connection goes through a
// proxy that delays each direction by wanDelay, as a home on the other end
// of the internet would be:
//
//	cd cloud && go test ./internal/sshd -run '^$' -bench OverAWANLink -benchtime 1x
func BenchmarkNewConnectionOverAWANLink(b *testing.B) {
	const (
		wanDelay = 10 * time.Millisecond // each way: a 20 ms round trip
		visitors = 40
	)
	c := cloudtest.Start(b, cloudtest.Options{})
	measure := func(spares int, user string) time.Duration {
		h := c.NewHome(b, user)
		addr := delayed(b, endpoint(b, c, sshd.Options{SpareChannels: spares,
			PublicPort: func(context.Context, store.Home, int) bool { return true }}, nil), wanDelay)
		home := startGatedHome(b, addr, h, agentVersion)
		home.answer(visitors * 4)
		if err := echoes(h.Tunnel.First, 10*time.Second); err != nil { // the first visitor starts the spares
			b.Fatal(err)
		}
		var total time.Duration
		for range visitors {
			start := time.Now()
			if err := echoes(h.Tunnel.First, 10*time.Second); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
		}
		return total / visitors
	}
	for b.Loop() {
		none := measure(0, "wan-none")
		with := measure(2, "wan-spares")
		fmt.Printf("new connection over a %s round trip: %s without spare channels, %s with; %.2fx faster\n",
			2*wanDelay, none.Round(100*time.Microsecond), with.Round(100*time.Microsecond), float64(none)/float64(with))
	}
}

// delayed listens on a loopback port and forwards each connection to addr,
// holding every chunk of bytes for d in each direction.
func delayed(tb testing.TB, addr string, d time.Duration) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				continue
			}
			go delayCopy(out, in, d)
			go delayCopy(in, out, d)
		}
	}()
	return ln.Addr().String()
}

// delayCopy copies src to dst, each chunk d after it was read, in order.
func delayCopy(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	q := make(chan chunk, 1024)
	go func() {
		defer dst.Close()
		for c := range q {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.data); err != nil {
				io.Copy(io.Discard, src)
				return
			}
		}
	}()
	defer close(q)
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{at: time.Now().Add(d), data: buf[:n]}
		}
		if err != nil {
			return
		}
	}
}
