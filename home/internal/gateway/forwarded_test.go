package gateway_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"homeport.dev/home/internal/gateway"
)

// xffService is a local HTTP service answering with the X-Forwarded-For,
// X-Forwarded-Proto and X-Forwarded-Host it got; hits counts its requests.
func xffService(t *testing.T, hits *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, strings.Join(r.Header.Values("X-Forwarded-For"), ",")+" "+r.Header.Get("X-Forwarded-Proto")+" "+r.Header.Get("X-Forwarded-Host"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// cloudConn runs a gateway with one HTTP entry in front of xffService and
// connects to it as a cloud that shares its connections (no PROXY header),
// for at most d. It returns the connection and its reader.
func cloudConn(t *testing.T, hits *atomic.Int64, d time.Duration) (net.Conn, *bufio.Reader) {
	t.Helper()
	g := newGateway(t, gateway.Options{})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.HTTP, Target: xffService(t, hits)}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(d))
	return c, bufio.NewReader(c)
}

// A cloud that shares its connections to a home between visitors sends
// HTTP without a PROXY header; every request on such a connection is its
// own visitor's, named by the last X-Forwarded-For value (the one HAProxy
// appends). A request without one did not come through HAProxy.
func TestHTTPWithoutProxyHeaderIsServedForEachRequestsVisitor(t *testing.T) {
	var hits atomic.Int64
	c, br := cloudConn(t, &hits, 5*time.Second)
	for _, tc := range []struct{ xff, want string }{
		{"203.0.113.7", "203.0.113.7 http web.example.com"},
		{"6.6.6.6, 198.51.100.9", "198.51.100.9 http web.example.com"},
		{"2001:db8::1", "2001:db8::1 http web.example.com"},
	} {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.example.com\r\nX-Forwarded-For: "+tc.xff+"\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("X-Forwarded-For %s: %v", tc.xff, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != tc.want {
			t.Errorf("X-Forwarded-For %s: the local service saw %d %q, want %q", tc.xff, resp.StatusCode, body, tc.want)
		}
	}
	before := hits.Load()
	for _, xff := range []string{"", "not-an-address"} {
		req := "GET / HTTP/1.1\r\nHost: web.example.com\r\n"
		if xff != "" {
			req += "X-Forwarded-For: " + xff + "\r\n"
		}
		io.WriteString(c, req+"\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("X-Forwarded-For %q: %v", xff, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("X-Forwarded-For %q: %d, want 400", xff, resp.StatusCode)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("the local service got %d requests without a visitor address", n)
	}
}

// Only plain HTTP may come without the PROXY header: TCP entries, and TLS
// on https entries, still need it (nothing else carries their visitor).
func TestNonHTTPWithoutProxyHeaderIsRefused(t *testing.T) {
	cert, _ := selfSigned(t, "app.example.com")
	hello := clientHello(t, "app.example.com")
	for name, tc := range map[string]struct {
		entry gateway.Entry
		send  []byte
	}{
		"http request on a tcp entry":      {gateway.Entry{Kind: gateway.TCP}, []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n")},
		"tls on a passthrough https entry": {gateway.Entry{Kind: gateway.HTTPS}, hello},
		"tls on a terminated https entry":  {gateway.Entry{Kind: gateway.HTTPS, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, hello},
	} {
		t.Run(name, func(t *testing.T) {
			tg := newTarget(t)
			tc.entry.Target = tg.addr
			addr := serveWith(t, handler(t, newGateway(t, gateway.Options{}), tc.entry))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write(tc.send)
			if n, err := io.Copy(io.Discard, c); n > 0 || isTimeout(err) {
				t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
			}
			select {
			case <-tg.conns:
				t.Fatal("the local service was reached without a PROXY header")
			default:
			}
		})
	}
}

// clientHello is the first flight of a TLS client for serverName.
func clientHello(t *testing.T, serverName string) []byte {
	t.Helper()
	client, server := net.Pipe()
	go tls.Client(client, &tls.Config{ServerName: serverName}).Handshake()
	defer client.Close()
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 16<<10)
	n, err := server.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return b[:n]
}

// getAsVisitor sends a GET on c as the cloud's HAProxy does on a connection
// it shares between visitors (no PROXY header; the visitor, 203.0.113.7,
// in X-Forwarded-For) and checks that xffService answered for that visitor.
func getAsVisitor(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.example.com\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "203.0.113.7 ") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// TestHTTPGatewayTakesNoCopyBufferPerRequest: the reverse proxy copies each
// response through a pooled buffer. Requests on a kept-alive connection
// allocate well under ReverseProxy's 32 KiB copy buffer each, counting all
// of this process: the client, the gateway and the local service. A buffer
// per response was most of a home's garbage per HTTP request, and its
// collector's work.
func TestHTTPGatewayTakesNoCopyBufferPerRequest(t *testing.T) {
	var hits atomic.Int64
	c, br := cloudConn(t, &hits, 30*time.Second)
	get := func() { getAsVisitor(t, c, br) }
	for range 20 {
		get() // the connection to the local service, the pools
	}
	const n = 500
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		get()
	}
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per request", perRequest)
	if perRequest >= 24<<10 {
		t.Errorf("%d bytes allocated per request through the gateway, want well under ReverseProxy's 32 KiB copy buffer", perRequest)
	}
}

// TestIdleHTTPConnectionsHoldNoReadBuffer: keep-alive connections from the
// cloud that carried a request and now wait for the next (HAProxy keeps
// such connections to every home it serves) cost the home no goroutine and
// no buffer of the gateway's own: net/http gets its read deadlines from the
// connection, where a pump goroutine with two 32 KiB buffers per
// connection used to give them. They still serve the next request.
func TestIdleHTTPConnectionsHoldNoReadBuffer(t *testing.T) {
	const conns = 200
	const pumpBuffers = 64 << 10 // what each held before
	var hits atomic.Int64
	g := newGateway(t, gateway.Options{})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.HTTP, Target: xffService(t, &hits)}))
	get := func(c net.Conn, br *bufio.Reader) {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		getAsVisitor(t, c, br)
	}
	type client struct {
		c  net.Conn
		br *bufio.Reader
	}
	clients := make([]client, 0, conns)
	t.Cleanup(func() {
		for _, cl := range clients {
			cl.c.Close()
		}
	})
	dial := func() client {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		cl := client{c, bufio.NewReader(c)}
		clients = append(clients, cl)
		get(cl.c, cl.br)
		return cl
	}
	dial() // the connection to the local service, the pools
	heapBefore, goroutinesBefore := heapInUse(), runtime.NumGoroutine()
	for range conns {
		dial()
	}
	grown := heapInUse() - heapBefore
	goroutines := runtime.NumGoroutine() - goroutinesBefore
	t.Logf("%d idle HTTP connections: heap in use +%d KiB (%d bytes each), +%d goroutines", conns, grown>>10, grown/conns, goroutines)
	if limit := int64(conns * pumpBuffers / 2); grown > limit {
		t.Errorf("%d idle HTTP connections take %d KiB of heap, want under %d KiB: each holds read buffers while it waits", conns, grown>>10, limit>>10)
	}
	// Each: the gateway's handler waiting for the HTTP server to be done
	// with it, and the server's own goroutine (the pump was a third).
	if goroutines > 2*conns {
		t.Errorf("%d idle HTTP connections hold %d goroutines, want at most 2 each", conns, goroutines)
	}
	for _, cl := range clients {
		get(cl.c, cl.br)
	}
}
