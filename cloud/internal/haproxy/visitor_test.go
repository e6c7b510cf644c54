package haproxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// offlinePort is a tunnel port nobody listens on: the tunnel port of a home
// that is not connected (sshd listens only while the home is).
func (e *testEnv) offlinePort(t testing.TB) int {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.nextPort > e.params.TunnelPorts.Last {
		t.Fatal("no free tunnel port left")
	}
	port := e.nextPort
	e.nextPort++
	return port
}

// wantNoInternals fails when a visitor-facing answer names anything of the
// edge: HAProxy, a loopback address or a port.
func wantNoInternals(t testing.TB, what, text string, ports ...int) {
	t.Helper()
	lower := strings.ToLower(text)
	for _, leak := range []string{"haproxy", "127.0.0.1", "no server is available"} {
		if strings.Contains(lower, leak) {
			t.Errorf("%s shows %q:\n%s", what, leak, text)
		}
	}
	for _, p := range ports {
		if strings.Contains(text, strconv.Itoa(p)) {
			t.Errorf("%s shows port %d:\n%s", what, p, text)
		}
	}
}

// dump is a response's headers and body as a visitor's browser gets them.
func dump(resp *http.Response, body string) string {
	var b strings.Builder
	resp.Header.Write(&b)
	return b.String() + "\n" + body
}

// TestOfflineHomeGetsTheOfflinePage: a mapped name whose home is not
// connected answers 503 with the "home server is offline" page, marked
// not to be cached and to be retried, on a plain and on a raw route, and
// nothing in it tells the visitor about the edge.
func TestOfflineHomeGetsTheOfflinePage(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
			host, port := uniqueHost(), e.offlinePort(t)
			e.addRoute(t, MapHTTP, host, port)
			if raw {
				e.addRoute(t, MapRaw, strconv.Itoa(port), port)
			}
			resp, body, _ := httpGet(t, e, host, "/some/page", nil)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, body %q; want 503", resp.StatusCode, body)
			}
			if !strings.Contains(body, "This site's home server is offline") {
				t.Errorf("body lacks the offline text:\n%s", body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q, want text/html", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store (the page must go once the home is back)", cc)
			}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 {
				t.Errorf("Retry-After = %q, want a number of seconds", resp.Header.Get("Retry-After"))
			}
			wantNoInternals(t, "the offline page", dump(resp, body), port, e.params.TunnelPorts.First)
		})
	}
}

// TestUnknownNameKeepsItsPage: the offline page is for a known name
// only; an unknown name keeps saying nothing is published there.
func TestUnknownNameKeepsItsPage(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	resp, body, _ := httpGet(t, e, uniqueHost(), "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "No service is published at this address") {
		t.Fatalf("unknown name: %d %q; want the 503 \"no service is published\" page", resp.StatusCode, body)
	}
	if strings.Contains(body, "offline") {
		t.Errorf("an unknown name got the offline page:\n%s", body)
	}
	wantNoInternals(t, "the unknown-name page", dump(resp, body))
}

// TestHomesOwnErrorPassesThrough: with the home online but its local
// service down, the home's gateway answers 502 with its own page; HAProxy
// hands it to the visitor unchanged.
func TestHomesOwnErrorPassesThrough(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	const page = "<!doctype html><p>home gateway: the local service at this name is not answering</p>"
	host := uniqueHost()
	ln, port := e.listenTunnel(t)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("X-Home", "gateway")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, page)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(proxyV2(ln))
	t.Cleanup(func() { srv.Close() })
	e.addRoute(t, MapHTTP, host, port)

	resp, body, _ := httpGet(t, e, host, "/", nil)
	if resp.StatusCode != http.StatusBadGateway || body != page || resp.Header.Get("X-Home") != "gateway" {
		t.Fatalf("got %d %q (X-Home %q); want the home's own 502 page unchanged", resp.StatusCode, body, resp.Header.Get("X-Home"))
	}
}

// TestOfflineHomeClosesTCPAndTLS: on the TCP range and on 443 (SNI
// passthrough) a route to an offline home is closed: the visitor reads no
// byte, and a TLS client gets a failed handshake, not a stray answer.
func TestOfflineHomeClosesTCPAndTLS(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	t.Run("tcp", func(t *testing.T) {
		e.addRoute(t, MapTCP, strconv.Itoa(e.params.TCPPorts.First+tcpPortOffline), e.offlinePort(t))
		wantTCPRefused(t, e, tcpPortOffline)
	})
	t.Run("sni", func(t *testing.T) {
		host := uniqueHost()
		e.addRoute(t, MapHTTPS, host, e.offlinePort(t))
		raw, err := net.DialTimeout("tcp", e.tlsAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(5 * time.Second))
		counted := &countingConn{Conn: raw}
		tc := tls.Client(counted, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		err = tc.Handshake()
		if err == nil {
			t.Fatal("TLS handshake to an offline home succeeded")
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("handshake: %v; want the connection closed, not left hanging", err)
		}
		if counted.read > 0 {
			t.Errorf("the visitor read %d bytes from a route to an offline home; want none", counted.read)
		}
	})
}

// countingConn counts the bytes read from the connection.
type countingConn struct {
	net.Conn
	read int
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read += n
	return n, err
}
