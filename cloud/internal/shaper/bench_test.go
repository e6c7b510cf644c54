package shaper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// BenchmarkClassification measures what shaping costs the traffic it does
// not limit: a flow on an unlimited home's tunnel port over the loopback of
// a network namespace, with no qdisc at all (the baseline, measured in the
// same run), with an HTB root but no filter (the qdisc's own cost), and
// with 1, 100 and 5,000 limited homes (blocks of 8 ports from 20000, so
// 5,000 homes fit). Every packet of the flow walks the u32 tree
// and misses, the most a packet can cost. Two flows:
//
//   - stream: 64 KiB writes, as bulk traffic (MB/s);
//   - rr: 1-byte request and answer, two packets per op, where the
//     per-packet cost shows (ns/op).
//
// Extra metrics: x-no-qdisc is the throughput relative to the baseline
// (1 = no cost), ns/pkt-added the classification and queueing cost per
// packet over the baseline.
//
//	sudo go test -run '^$' -bench Classification ./internal/shaper
func BenchmarkClassification(b *testing.B) {
	n := newTestNetns(b)
	ports := Ports{Base: 20000, Block: 8, Slots: 5001}
	unlimited := ports.Base + 5000*ports.Block // slot 5000's block
	db := &limitTable{}
	s, err := New(Options{Device: "lo", Ports: ports, Source: db.source, Netns: n.ns, Log: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	// The clients bind ports below every block: an ephemeral port could
	// fall in a limited home's block and be shaped.
	stream := dialPair(b, n, unlimited+1, 11001, func(c net.Conn) { io.Copy(io.Discard, c) })
	rr := dialPair(b, n, unlimited+2, 11002, func(c net.Conn) {
		buf := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	const chunk = 64 << 10
	data := make([]byte, chunk)
	var baseMBps, baseNs float64
	// -1: HTB root without a filter, to tell the qdisc's own cost from the
	// classification's.
	for _, homes := range []int{0, -1, 1, 100, 5000} {
		db.mu.Lock()
		db.m = map[int]int64{}
		for slot := range homes {
			db.m[slot] = 10_000
		}
		db.mu.Unlock()
		start := time.Now()
		if _, err := s.Reconcile(context.Background()); err != nil {
			b.Fatal(err)
		}
		root := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: n.lo.Attrs().Index, Handle: Root(), Parent: netlink.HANDLE_ROOT})
		name := "no-qdisc"
		switch {
		case homes < 0:
			name = "htb-no-filters"
			if err := n.nl.QdiscAdd(root); err != nil {
				b.Fatal(err)
			}
		case homes > 0:
			name = fmt.Sprintf("homes=%d", homes)
			b.Logf("%d limited homes applied in %v", homes, time.Since(start).Round(time.Millisecond))
		}
		b.Run(name+"/stream", func(b *testing.B) {
			b.SetBytes(chunk)
			for b.Loop() {
				if _, err := stream.Write(data); err != nil {
					b.Fatal(err)
				}
			}
			mbps := float64(b.N) * chunk / 1e6 / b.Elapsed().Seconds()
			if homes == 0 {
				baseMBps = mbps
			} else if baseMBps > 0 {
				b.ReportMetric(mbps/baseMBps, "x-no-qdisc")
			}
		})
		b.Run(name+"/rr", func(b *testing.B) {
			buf := make([]byte, 1)
			for b.Loop() {
				if _, err := rr.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rr, buf); err != nil {
					b.Fatal(err)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if homes == 0 {
				baseNs = ns
			} else if baseNs > 0 {
				b.ReportMetric(baseNs/ns, "x-no-qdisc")
				b.ReportMetric((ns-baseNs)/2, "ns/pkt-added")
			}
		})
		if homes < 0 {
			if err := n.nl.QdiscDel(root); err != nil {
				b.Fatal(err)
			}
		}
	}
	db.mu.Lock()
	db.m = nil
	db.mu.Unlock()
	if _, err := s.Reconcile(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// dialPair connects 127.0.0.1:from to 127.0.0.1:to inside n, serves the
// accepted side with serve, and returns the client side.
func dialPair(b *testing.B, n *testNetns, to, from int, serve func(net.Conn)) net.Conn {
	b.Helper()
	var client net.Conn
	n.run(b, func() error {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", to))
		if err != nil {
			return err
		}
		go func() {
			defer ln.Close()
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			serve(c)
		}()
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: from}}
		client, err = d.Dial("tcp", ln.Addr().String())
		return errors.Join(err)
	})
	b.Cleanup(func() { client.Close() })
	return client
}
