package gateway_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/hometest"
)

func TestMain(m *testing.M) { os.Exit(hometest.Main(m)) }

func testLog() *slog.Logger {
	if os.Getenv("HOMETEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// serveWith runs handler on every connection to a loopback listener, the
// way the tunnel runs it on forwarded connections, and returns the address.
// Handlers are waited for when the test ends.
func serveWith(t *testing.T, handler func(context.Context, net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		cancel()
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				handler(ctx, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// target is a local service that records connections and answers each line
// with "got " + line.
type target struct {
	addr  string
	conns chan net.Conn // one per accepted connection
}

func newTarget(t *testing.T) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tg := &target{addr: ln.Addr().String(), conns: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.conns <- c
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, "got "+line)
				}
			}()
		}
	}()
	return tg
}

func newGateway(t *testing.T, o gateway.Options) *gateway.Gateway {
	t.Helper()
	o.Log = testLog()
	g := gateway.New(o)
	t.Cleanup(func() { g.Close() })
	return g
}

func handler(t *testing.T, g *gateway.Gateway, e gateway.Entry) func(context.Context, net.Conn) {
	t.Helper()
	h, err := g.Handler(e)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func writeHeader(t *testing.T, c net.Conn, src string) {
	t.Helper()
	srcAddr, _ := net.ResolveTCPAddr("tcp", src)
	dst := c.RemoteAddr()
	if _, err := proxyproto.HeaderProxyFromAddrs(2, srcAddr, dst).WriteTo(c); err != nil {
		t.Fatal(err)
	}
}

func TestConnectionWithoutProxyHeaderIsRefused(t *testing.T) {
	tg := newTarget(t)
	g := newGateway(t, gateway.Options{})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.TCP, Target: tg.addr}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "hello, I skipped HAProxy\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes, want the connection closed", n)
	}
	select {
	case <-tg.conns:
		t.Fatal("the local service was reached without a PROXY header")
	default:
	}
}

func TestSilentConnectionIsDroppedAfterHeaderTimeout(t *testing.T) {
	tg := newTarget(t)
	g := newGateway(t, gateway.Options{HeaderTimeout: 200 * time.Millisecond})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.TCP, Target: tg.addr}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read: %v, want the gateway to close the connection", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("closed after %s, want about the 200ms header timeout", d)
	}
}

// TestWithdrawnSpareIsQuiet: a forwarded connection that ends before its
// first byte (a channel the cloud opened ahead of a visitor and withdrew,
// --ssh-spare-channels) reaches no local service and is not logged at info
// level, for every kind; one that sends something else than a PROXY header
// still is.
func TestWithdrawnSpareIsQuiet(t *testing.T) {
	tg := newTarget(t)
	var logs strings.Builder
	g := gateway.New(gateway.Options{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	t.Cleanup(func() { g.Close() })
	serve := func(kind gateway.Kind, send string) {
		h := handler(t, g, gateway.Entry{Kind: kind, Target: tg.addr})
		home, cloud := net.Pipe()
		go func() {
			io.WriteString(cloud, send)
			cloud.Close()
		}()
		h(context.Background(), home) // returns once the connection is done
	}
	for _, kind := range []gateway.Kind{gateway.TCP, gateway.HTTP, gateway.HTTPS} {
		serve(kind, "")
	}
	if logs.Len() > 0 {
		t.Errorf("withdrawn spares were logged:\n%s", logs.String())
	}
	select {
	case <-tg.conns:
		t.Error("a withdrawn spare reached the local service")
	default:
	}
	serve(gateway.TCP, "not a PROXY header\n")
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("a connection without a header was not logged: %q", logs.String())
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestTCPPipesBothWaysAndHalfCloses(t *testing.T) {
	tg := newTarget(t)
	g := newGateway(t, gateway.Options{})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.TCP, Target: tg.addr}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeHeader(t, c, "203.0.113.7:4444")
	// Data sent right behind the header must not be lost.
	io.WriteString(c, "one\ntwo\n")
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got one\ngot two\n" {
		t.Fatalf("got %q, %v; want both answers, then EOF", got, err)
	}
}

func TestPrivateEntryTakesConnectionsWithoutHeader(t *testing.T) {
	tg := newTarget(t)
	g := newGateway(t, gateway.Options{})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.TCP, Target: tg.addr, Private: true}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hi\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "got hi\n" {
		t.Fatalf("%q %v", line, err)
	}
}

func TestUnreachableLocalServiceClosesTheConnection(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	g := newGateway(t, gateway.Options{})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.TCP, Target: dead}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeHeader(t, c, "203.0.113.7:4444")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read: %v, want the connection closed", err)
	}
}

func TestLANTargetsNeedTheFeature(t *testing.T) {
	off := newGateway(t, gateway.Options{})
	_, err := off.Handler(gateway.Entry{Kind: gateway.HTTP, Target: "192.168.1.20:8080"})
	if err == nil || !strings.Contains(err.Error(), "features.lan_forwarding: true") {
		t.Fatalf("LAN target with the feature off: %v, want an error naming features.lan_forwarding: true", err)
	}
	on := newGateway(t, gateway.Options{AllowLAN: true})
	if _, err := on.Handler(gateway.Entry{Kind: gateway.HTTP, Target: "192.168.1.20:8080"}); err != nil {
		t.Fatalf("LAN target with the feature on: %v", err)
	}
}

func TestWrapHTTPAnswersBeforeTheProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "from the service "+r.URL.Path)
	}))
	g := newGateway(t, gateway.Options{WrapHTTP: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
				io.WriteString(w, "key authorization")
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.HTTP, Target: ln.Addr().String()}))
	for path, want := range map[string]string{
		"/.well-known/acme-challenge/token": "key authorization",
		"/index.html":                       "from the service /index.html",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		writeHeader(t, c, "203.0.113.7:4444")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: web.example.com\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		if string(body) != want {
			t.Errorf("%s: %q, want %q", path, body, want)
		}
	}
}
