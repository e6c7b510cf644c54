package haproxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// arrival is what a tunnel saw at the start of one connection.
type arrival struct {
	proxy bool   // it began with a PROXY v2 header
	first []byte // the visitor's first bytes after the header, if any
}

// sniffTunnel runs a tunnel on ln that accepts a connection with or without
// a PROXY v2 header (as a plain `ssh -R` target would see it) and reports
// which, with the first bytes of what followed. It echoes four bytes and
// answers an HTTP request with 200, so the client sees the route work.
func sniffTunnel(t testing.TB, ln net.Listener) <-chan arrival {
	t.Helper()
	ch := make(chan arrival, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				var a arrival
				// A PROXY v2 signature starts with '\r', no visitor's bytes here
				// do: one byte tells, without waiting for more than the visitor sends.
				if b, err := br.Peek(1); err == nil && b[0] == '\r' {
					if _, err := proxyproto.Read(br); err != nil {
						return
					}
					a.proxy = true
				}
				a.first, _ = br.Peek(4)
				a.first = bytes.Clone(a.first)
				ch <- a
				switch {
				case bytes.HasPrefix(a.first, []byte("GET ")):
					if req, err := http.ReadRequest(br); err == nil {
						fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(req.Host), req.Host)
					}
				case len(a.first) > 0 && a.first[0] == 0x16: // a TLS ClientHello: seen, that is enough
				default: // echo's ping
					io.CopyN(c, br, 4)
				}
			}()
		}
	}()
	return ch
}

func wantArrival(t testing.TB, ch <-chan arrival, proxy bool, prefix string) {
	t.Helper()
	select {
	case a := <-ch:
		if a.proxy != proxy {
			t.Errorf("tunnel got a PROXY header: %v, want %v", a.proxy, proxy)
		}
		if !bytes.HasPrefix(a.first, []byte(prefix)) {
			t.Errorf("tunnel's first bytes after any header = %q, want the visitor's %q", a.first, prefix)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tunnel received no connection")
	}
}

// TestRawTunnelPortsGetTheVisitorsBytesOnly: a tunnel port in the raw map
// receives exactly what the visitor sent, on all three frontends (TLS
// passthrough, HTTP, TCP), and the PROXY header is back for the next
// connection once the port leaves the map, without a reload.
func TestRawTunnelPortsGetTheVisitorsBytesOnly(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()
	host := uniqueHost()
	tlsLn, tlsPort := e.listenTunnel(t)
	httpLn, httpPort := e.listenTunnel(t)
	tcpLn, tcpPort := e.listenTunnel(t)
	tlsSeen, httpSeen, tcpSeen := sniffTunnel(t, tlsLn), sniffTunnel(t, httpLn), sniffTunnel(t, tcpLn)
	e.addRoute(t, MapHTTPS, host, tlsPort)
	e.addRoute(t, MapHTTP, host, httpPort)
	e.addRoute(t, MapTCP, strconv.Itoa(e.params.TCPPorts.First+tcpPortRaw), tcpPort)

	visit := func(proxy bool) {
		t.Helper()
		if c, err := dialTLS(e, host); err == nil { // the tunnel never answers the handshake
			c.Close()
		}
		wantArrival(t, tlsSeen, proxy, "\x16\x03")
		resp, body, _ := httpGet(t, e, host, "/", nil)
		if resp.StatusCode != 200 || body != host {
			t.Errorf("HTTP through the route: %d %q, want 200 from the tunnel", resp.StatusCode, body)
		}
		wantArrival(t, httpSeen, proxy, "GET ")
		c := dialTCP(t, e, tcpPortRaw)
		echo(t, c)
		c.Close()
		wantArrival(t, tcpSeen, proxy, "ping")
	}
	visit(true)

	for _, p := range []int{tlsPort, httpPort, tcpPort} {
		e.addRoute(t, MapRaw, strconv.Itoa(p), p)
	}
	visit(false)

	for _, p := range []int{tlsPort, httpPort, tcpPort} {
		if err := e.client.DelMap(ctx, e.mapName(MapRaw), strconv.Itoa(p)); err != nil {
			t.Fatal(err)
		}
	}
	visit(true)
}
