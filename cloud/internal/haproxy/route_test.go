package haproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// The tests in this file run in parallel against the shared HAProxy; each
// uses its own hostnames, tunnel ports and public TCP port.
const (
	tcpPortRoute = iota // offsets into TCPPorts
	tcpPortDelete
	tcpPortRestart
	tcpPortUnknown
	tcpPortBusy
	tcpPortRaw
	tcpPortOffline
)

// accepted is what a fake tunnel learned from one connection.
type accepted struct {
	header *proxyproto.Header
	err    error
}

// serveTCP runs a fake tunnel on ln: it requires a PROXY header, reports it,
// optionally completes TLS, then echoes.
func serveTCP(t testing.TB, ln net.Listener, tlsConf *tls.Config) <-chan accepted {
	t.Helper()
	ch := make(chan accepted, 16)
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer raw.Close()
				raw.SetDeadline(time.Now().Add(10 * time.Second))
				pc := proxyproto.NewConn(raw, proxyproto.WithPolicy(proxyproto.REQUIRE))
				h := pc.ProxyHeader()
				if h == nil {
					ch <- accepted{err: errors.New("no PROXY header")}
					return
				}
				ch <- accepted{header: h}
				var c net.Conn = pc
				if tlsConf != nil {
					tc := tls.Server(pc, tlsConf)
					if err := tc.Handshake(); err != nil {
						return
					}
					c = tc
				}
				io.Copy(c, c)
			}()
		}
	}()
	return ch
}

// serveHTTP runs a fake HTTP tunnel on ln that answers with what it saw.
func serveHTTP(t testing.TB, ln net.Listener, name string) {
	t.Helper()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "tunnel=%s remote=%s xff=%s host=%s uri=%s",
				name, r.RemoteAddr, strings.Join(r.Header.Values("X-Forwarded-For"), ","), r.Host, r.RequestURI)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(proxyV2(ln))
	t.Cleanup(func() { srv.Close() })
}

// wantProxyV2 checks the header a tunnel received for client.
func wantProxyV2(t testing.TB, ch <-chan accepted, client net.Conn) {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("tunnel: %v", a.err)
		}
		if a.header.Version != 2 {
			t.Errorf("PROXY version = %d, want 2", a.header.Version)
		}
		if got, want := a.header.SourceAddr.String(), client.LocalAddr().String(); got != want {
			t.Errorf("PROXY source = %s, want the client's address %s", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tunnel received no connection")
	}
}

// echo writes a message on c and expects it back.
func echo(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v; want ping", buf, err)
	}
}

// dialTLS connects to the public HTTPS frontend with the given SNI.
func dialTLS(e *testEnv, sni string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", e.tlsAddr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dialTCP connects to public TCP port offset off of the shared HAProxy.
func dialTCP(t testing.TB, e *testEnv, off int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.tcpAddr(e.params.TCPPorts.First+off), 5*time.Second)
	if err != nil {
		t.Fatalf("dial public TCP port: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantTCPRefused expects HAProxy to refuse public TCP port offset off: the
// connection is reset or closed at once, and no data passes.
func wantTCPRefused(t testing.TB, e *testEnv, off int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.tcpAddr(e.params.TCPPorts.First+off), 5*time.Second)
	if err != nil {
		return // reset before the handshake completed on our side
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	n, err := c.Read(make([]byte, 1))
	if err == nil || n > 0 {
		t.Fatalf("connection stayed open (read %d bytes, err %v); want it closed", n, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection not closed within 5s; want an immediate close")
	}
}

// httpGet sends one request for host through the public HTTP frontend.
func httpGet(t testing.TB, e *testEnv, host, path string, hdr http.Header) (*http.Response, string, net.Addr) {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.httpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req, _ := http.NewRequest("GET", "http://"+host+path, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("GET http://%s%s: %v", host, path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), c.LocalAddr()
}

func TestHTTPSRoutesBySNI(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	host := uniqueHost()
	ln, port := e.listenTunnel(t)
	got := serveTCP(t, ln, &tls.Config{Certificates: []tls.Certificate{selfSigned(t, host)}})
	e.addRoute(t, MapHTTPS, host, port)

	// SNI matching is case-insensitive, like DNS.
	for _, sni := range []string{host, strings.ToUpper(host)} {
		c, err := dialTLS(e, sni)
		if err != nil {
			t.Fatalf("TLS via SNI %s: %v", sni, err)
		}
		wantProxyV2(t, got, c)
		echo(t, c)
		if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != host {
			t.Errorf("certificate CN = %q, want the tunnel's %q (TLS must pass through)", cn, host)
		}
		c.Close()
	}
}

func TestHTTPRoutesByHost(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	host := uniqueHost()
	ln, port := e.listenTunnel(t)
	serveHTTP(t, ln, "a")
	e.addRoute(t, MapHTTP, host, port)

	// Upper case and an explicit port in Host are normalised; a client's
	// own X-Forwarded-For is replaced. The second client must be reported
	// as itself: HAProxy must not reuse the first client's server connection
	// (and so its PROXY header).
	for range 2 {
		resp, body, local := httpGet(t, e, strings.ToUpper(host)+":80", "/p?q=1", http.Header{"X-Forwarded-For": {"6.6.6.6"}})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, body %q; want 200", resp.StatusCode, body)
		}
		clientIP, _, _ := net.SplitHostPort(local.String())
		for _, want := range []string{"tunnel=a", "remote=" + local.String() + " ", "xff=" + clientIP + " ", "uri=/p?q=1"} {
			if !strings.Contains(body, want) {
				t.Errorf("tunnel saw %q; want it to contain %q", body, want)
			}
		}
	}
}

// Each request on one keep-alive client connection is routed by its own Host
// and carries its own client's address.
func TestHTTPKeepAliveRoutesEachRequest(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	hosts := map[string]string{"a": uniqueHost(), "b": uniqueHost()}
	for name, host := range hosts {
		ln, port := e.listenTunnel(t)
		serveHTTP(t, ln, name)
		e.addRoute(t, MapHTTP, host, port)
	}
	// Another client first leaves idle server connections behind; their
	// PROXY headers name that client, so they must not serve ours.
	for _, host := range hosts {
		httpGet(t, e, host, "/", nil)
	}
	c, err := net.DialTimeout("tcp", e.httpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, name := range []string{"a", "b", "a", "b"} {
		req, _ := http.NewRequest("GET", "http://"+hosts[name]+"/", nil)
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "tunnel="+name+" ") {
			t.Fatalf("request for %s answered by %q", name, body)
		}
		if want := "remote=" + c.LocalAddr().String() + " "; !strings.Contains(string(body), want) {
			t.Errorf("tunnel saw %q; want %q", body, want)
		}
	}
}

func TestTCPRoutesByPort(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ln, port := e.listenTunnel(t)
	got := serveTCP(t, ln, nil)
	e.addRoute(t, MapTCP, strconv.Itoa(e.params.TCPPorts.First+tcpPortRoute), port)

	c := dialTCP(t, e, tcpPortRoute)
	wantProxyV2(t, got, c)
	echo(t, c)
}

func TestUnknownRouteRefused(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	t.Run("https closes", func(t *testing.T) {
		if c, err := dialTLS(e, uniqueHost()); err == nil {
			c.Close()
			t.Fatal("TLS handshake for an unknown SNI succeeded")
		}
	})
	t.Run("https without SNI closes", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", e.tlsAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) // no ServerName: no SNI
		if err := tc.Handshake(); err == nil {
			t.Fatal("TLS handshake without SNI succeeded")
		}
	})
	t.Run("http 503", func(t *testing.T) {
		resp, body, _ := httpGet(t, e, uniqueHost(), "/", nil)
		if resp.StatusCode != http.StatusServiceUnavailable ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "503 Service Unavailable") {
			t.Fatalf("got %d %q %q; want a 503 HTML page", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("tcp closes", func(t *testing.T) {
		wantTCPRefused(t, e, tcpPortUnknown)
	})
}

// TestHTTPSOnlyHostRedirects: a host with only an HTTPS route is sent to
// https on the edge's public HTTPS port, which the test edge has elsewhere
// than 443 (as --dev has on 8443), so the URL names it.
func TestHTTPSOnlyHostRedirects(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	host := uniqueHost()
	_, port := e.listenTunnel(t)
	e.addRoute(t, MapHTTPS, host, port)
	_, httpPort, _ := net.SplitHostPort(e.httpAddr)
	_, httpsPort, _ := net.SplitHostPort(e.tlsAddr)

	resp, _, _ := httpGet(t, e, strings.ToUpper(host)+":"+httpPort, "/a/b?c=d", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d; want 302", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Location"), "https://"+host+":"+httpsPort+"/a/b?c=d"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
}

// ACME HTTP-01 requests for a host with only an HTTPS route go to that
// route's tunnel port, where the home answers them itself; other paths are
// still redirected, and a host with an HTTP route keeps getting them there.
func TestHTTPSOnlyHostRoutesACMEChallenges(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	host, both := uniqueHost(), uniqueHost()
	ln, port := e.listenTunnel(t)
	serveHTTP(t, ln, "https-route")
	e.addRoute(t, MapHTTPS, host, port)
	e.addRoute(t, MapHTTPS, both, port)
	webLn, webPort := e.listenTunnel(t)
	serveHTTP(t, webLn, "http-route")
	e.addRoute(t, MapHTTP, both, webPort)

	const path = "/.well-known/acme-challenge/tok-123"
	resp, body, local := httpGet(t, e, host+":80", path, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "tunnel=https-route ") || !strings.Contains(body, "uri="+path) {
		t.Fatalf("challenge for an https-only host: %d %q; want it at the https route's tunnel port", resp.StatusCode, body)
	}
	if !strings.Contains(body, "remote="+local.String()+" ") {
		t.Errorf("tunnel saw %q; want the client's address %s from the PROXY header", body, local)
	}
	if resp, _, _ := httpGet(t, e, host, "/.well-known/other", nil); resp.StatusCode != http.StatusFound {
		t.Errorf("non-challenge path: status %d, want the 302 to https", resp.StatusCode)
	}
	if _, body, _ := httpGet(t, e, both, path, nil); !strings.Contains(body, "tunnel=http-route ") {
		t.Errorf("challenge for a host with an http route went to %q", body)
	}
}

func TestDeletedRouteRefusesNextConnection(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ctx := context.Background()

	t.Run("https", func(t *testing.T) {
		host := uniqueHost()
		ln, port := e.listenTunnel(t)
		serveTCP(t, ln, &tls.Config{Certificates: []tls.Certificate{selfSigned(t, host)}})
		e.addRoute(t, MapHTTPS, host, port)
		c, err := dialTLS(e, host)
		if err != nil {
			t.Fatalf("before delete: %v", err)
		}
		c.Close()
		if err := e.client.DelMap(ctx, e.mapName(MapHTTPS), host); err != nil {
			t.Fatal(err)
		}
		if c, err := dialTLS(e, host); err == nil {
			c.Close()
			t.Fatal("TLS handshake succeeded after the route was deleted")
		}
	})
	t.Run("http", func(t *testing.T) {
		host := uniqueHost()
		ln, port := e.listenTunnel(t)
		serveHTTP(t, ln, "d")
		e.addRoute(t, MapHTTP, host, port)
		if resp, _, _ := httpGet(t, e, host, "/", nil); resp.StatusCode != 200 {
			t.Fatalf("before delete: status %d", resp.StatusCode)
		}
		if err := e.client.DelMap(ctx, e.mapName(MapHTTP), host); err != nil {
			t.Fatal(err)
		}
		if resp, _, _ := httpGet(t, e, host, "/", nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("after delete: status %d, want 503", resp.StatusCode)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		ln, port := e.listenTunnel(t)
		serveTCP(t, ln, nil)
		key := strconv.Itoa(e.params.TCPPorts.First + tcpPortDelete)
		e.addRoute(t, MapTCP, key, port)
		echo(t, dialTCP(t, e, tcpPortDelete))
		if err := e.client.DelMap(ctx, e.mapName(MapTCP), key); err != nil {
			t.Fatal(err)
		}
		wantTCPRefused(t, e, tcpPortDelete)
	})
}

// A map value outside TunnelPorts must never be dialled: a bad row must not
// expose e.g. the admin API on a loopback port.
func TestPortOutsideTunnelRangeRefused(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	// The kernel may pick a port inside the tunnel range: hold it and ask
	// again, so the test never skips.
	var outside net.Listener
	for try := 0; outside == nil; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if !e.params.TunnelPorts.Contains(ln.Addr().(*net.TCPAddr).Port) {
			outside = ln
		} else if try == 50 {
			t.Fatalf("50 ports in a row inside the tunnel range %v", e.params.TunnelPorts)
		}
	}
	port := outside.Addr().(*net.TCPAddr).Port
	reached := make(chan struct{}, 1)
	go func() {
		if c, err := outside.Accept(); err == nil {
			c.Close()
			reached <- struct{}{}
		}
	}()
	httpsHost, httpHost := uniqueHost(), uniqueHost()
	e.addRoute(t, MapHTTPS, httpsHost, port)
	e.addRoute(t, MapHTTP, httpHost, port)

	if c, err := dialTLS(e, httpsHost); err == nil {
		c.Close()
		t.Error("https reached a port outside the tunnel range")
	}
	if resp, _, _ := httpGet(t, e, httpHost, "/", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("http: status %d, want 503", resp.StatusCode)
	}
	select {
	case <-reached:
		t.Error("a listener outside the tunnel range received a connection")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestRouteConnectionLimit: one route holds at most RouteMaxConn
// connections at once; the next is closed while the others keep working,
// and a freed slot serves again.
func TestRouteConnectionLimit(t *testing.T) {
	t.Parallel()
	e := needEnv(t)
	ln, port := e.listenTunnel(t)
	got := serveTCP(t, ln, nil)
	go func() {
		for range got {
		}
	}()
	e.addRoute(t, MapTCP, strconv.Itoa(e.params.TCPPorts.First+tcpPortBusy), port)
	limit := e.params.withDefaults().RouteMaxConn
	held := make([]net.Conn, 0, limit)
	for i := 0; i < limit; i++ {
		c := dialTCP(t, e, tcpPortBusy)
		echo(t, c)
		held = append(held, c)
	}
	wantTCPRefused(t, e, tcpPortBusy)
	echo(t, held[0])
	held[1].Close()
	// HAProxy counts the slot free once it has seen the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Refused while HAProxy still counts the slot: a reset, possibly
		// already at connect.
		buf := make([]byte, 4)
		c, err := net.DialTimeout("tcp", e.tcpAddr(e.params.TCPPorts.First+tcpPortBusy), 5*time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			io.WriteString(c, "ping")
			_, err = io.ReadFull(c, buf)
			c.Close()
		}
		if err == nil && string(buf) == "ping" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a freed slot never served again: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
