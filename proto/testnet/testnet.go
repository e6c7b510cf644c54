// Package testnet gives tests of both binaries loopback ports that are
// free and outside the kernel's ephemeral range, so parallel test processes
// and outgoing connections do not take each other's ports. Test support
// only; nothing in the binaries uses it.
package testnet

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"homeport.dev/proto"
)

// FreePort returns a loopback port that was free a moment ago, outside the
// kernel's ephemeral range: an outgoing connection may grab an ephemeral
// port between a cloud's kill and its restart, or before a home's forward.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreeRange(t, 1, 1).First
}

// CloudPorts returns a cloud's tunnel ports (tunnelBlock per home slot,
// aligned to the block) and its public TCP ports (tcpBlock per slot), free
// and apart: one range holds both, so they can never overlap (the cloud
// refuses to start if they do).
func CloudPorts(t testing.TB, slots, tunnelBlock, tcpBlock int) (tunnels, tcp proto.PortRange) {
	t.Helper()
	r := FreeRange(t, slots*(tunnelBlock+tcpBlock), tunnelBlock)
	tunnels = proto.PortRange{First: r.First, Last: r.First + slots*tunnelBlock - 1}
	tcp = proto.PortRange{First: tunnels.Last + 1, Last: r.Last}
	return tunnels, tcp
}

// FreeRange finds n consecutive free loopback ports starting at a multiple
// of align, outside the kernel's ephemeral range, and reserves them for the
// test (see Reserve) until it ends.
func FreeRange(t testing.TB, n, align int) proto.PortRange {
	t.Helper()
	r, release, err := Reserve(n, align)
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(release)
	return r
}

// blockSize is the granularity of reservations: ports are reserved in
// aligned blocks of this many.
const blockSize = 16

// Reserve finds n consecutive free loopback ports starting at a multiple of
// align, outside the kernel's ephemeral range, at a random place, and holds
// them until release: every test process of this machine reserves through
// lock files (flock, released when the process dies), so two processes
// never pick overlapping ports even before either binds them (a cloud binds
// its tunnel ports only when a home forwards them).
func Reserve(n, align int) (r proto.PortRange, release func(), err error) {
	lo, hi := portSpace()
	lo += (blockSize - lo%blockSize) % blockSize
	if align < blockSize {
		align = blockSize // a reservation starts on a block
	}
	slots := (hi - lo + 1 - n) / align
	for try := 0; slots > 0 && try < 200; try++ {
		first := lo + mrand.IntN(slots)*align
		first += (align - first%align) % align
		if first+n-1 > hi {
			continue
		}
		unlock, ok := lockBlocks(first/blockSize, (first+n-1)/blockSize)
		if !ok {
			continue
		}
		if rangeFree(first, n) {
			return proto.PortRange{First: first, Last: first + n - 1}, unlock, nil
		}
		unlock()
	}
	return proto.PortRange{}, nil, fmt.Errorf("no %d free consecutive ports aligned to %d in %d-%d", n, align, lo, hi)
}

// lockBlocks takes the lock of every block from first to last (inclusive),
// or none.
func lockBlocks(first, last int) (unlock func(), ok bool) {
	var held []func()
	unlock = func() {
		for _, u := range held {
			u()
		}
	}
	for b := first; b <= last; b++ {
		u, ok := lockFile(filepath.Join(os.TempDir(), "homeport-test-ports", strconv.Itoa(b)))
		if !ok {
			unlock()
			return nil, false
		}
		held = append(held, u)
	}
	return unlock, true
}

// portSpace is the larger stretch of ports above 1024 outside the kernel's
// ephemeral range (/proc/sys/net/ipv4/ip_local_port_range).
func portSpace() (lo, hi int) {
	elo, ehi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, errA := strconv.Atoi(f[0])
			z, errZ := strconv.Atoi(f[1])
			if errA == nil && errZ == nil && a <= z {
				elo, ehi = a, z
			}
		}
	}
	if below, above := elo-1-10000, 65535-(ehi+1); below >= above {
		return 10000, elo - 1
	}
	return ehi + 1, 65535
}

func rangeFree(first, n int) bool {
	for q := first; q < first+n; q++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// Serve accepts connections on ln until the test ends, running handle for
// each in its own goroutine and closing the connection after it. Cleanup
// closes ln and every open connection, then waits for the handlers, so a
// handler blocked on a read never outlives its test. It returns ln's address.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// Listen is a loopback listener on a free port, for Serve.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Pair returns both ends of a new loopback TCP connection (the dialer's
// first), closed when the test ends.
func Pair(t testing.TB) (client, server net.Conn) {
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
		client.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
