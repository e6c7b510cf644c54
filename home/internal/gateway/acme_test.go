package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/gateway"
)

// dialProxied connects to a gateway handler and sends the PROXY header the
// cloud would.
func dialProxied(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	writeHeader(t, c, "203.0.113.7:4444")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// acmeGateway answers TLS-ALPN-01 for pending.example.com with challenge
// and HTTP-01 for one token.
func acmeGateway(t *testing.T, challenge tls.Certificate) *gateway.Gateway {
	return newGateway(t, gateway.Options{
		ChallengeCert: func(name string) (*tls.Certificate, bool) {
			if name == "pending.example.com" {
				return &challenge, true
			}
			return nil, false
		},
		WrapHTTP: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/.well-known/acme-challenge/token" {
					io.WriteString(w, "key authorization")
					return
				}
				next.ServeHTTP(w, r)
			})
		},
	})
}

// A passthrough entry's local service keeps its TLS; only the CA's
// acme-tls/1 handshake for a pending challenge is answered by the home.
func TestTLSALPNChallengeAnsweredAtHomeForPassthrough(t *testing.T) {
	serviceCert, servicePool := selfSigned(t, "pending.example.com", "other.example.com")
	challenge, challengePool := selfSigned(t, "pending.example.com")
	g := acmeGateway(t, challenge)
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.HTTPS, Target: tlsService(t, serviceCert)}))

	c := tls.Client(dialProxied(t, addr), &tls.Config{ServerName: "pending.example.com", NextProtos: []string{"acme-tls/1"}, RootCAs: challengePool})
	if err := c.Handshake(); err != nil {
		t.Fatalf("acme-tls/1 handshake: %v", err)
	}
	if st := c.ConnectionState(); st.NegotiatedProtocol != "acme-tls/1" || st.PeerCertificates[0].Subject.CommonName != "pending.example.com" {
		t.Errorf("challenge answered with protocol %q", st.NegotiatedProtocol)
	}

	// Browsers, and acme-tls/1 for a name without a pending challenge (a
	// local ACME client's own), go through to the local service.
	for _, tt := range []struct {
		name   string
		protos []string
	}{{"pending.example.com", []string{"h2", "http/1.1"}}, {"other.example.com", []string{"acme-tls/1"}}} {
		c := tls.Client(dialProxied(t, addr), &tls.Config{ServerName: tt.name, NextProtos: tt.protos, RootCAs: servicePool})
		io.WriteString(c, "hello\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "tls hello\n" {
			t.Errorf("%s %v: %q %v; want the local TLS service", tt.name, tt.protos, line, err)
		}
	}
}

// Plain HTTP on an https port (the cloud's route for ACME HTTP-01 on
// https-only hosts) gets challenge answers and 404, never the service.
func TestPlainHTTPOnHTTPSPortServesOnlyChallenges(t *testing.T) {
	challenge, _ := selfSigned(t, "pending.example.com")
	for _, mode := range []string{"passthrough", "terminate"} {
		t.Run(mode, func(t *testing.T) {
			tg := newTarget(t)
			e := gateway.Entry{Kind: gateway.HTTPS, Target: tg.addr}
			if mode == "terminate" {
				cert, _ := selfSigned(t, "app.example.com")
				e.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			}
			addr := serveWith(t, handler(t, acmeGateway(t, challenge), e))
			for path, want := range map[string]int{"/.well-known/acme-challenge/token": 200, "/.well-known/acme-challenge/other": 404, "/": 404} {
				c := dialProxied(t, addr)
				io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil || resp.StatusCode != want {
					t.Fatalf("%s: %v %v, want %d", path, resp, err, want)
				}
				body, _ := io.ReadAll(resp.Body)
				if want == 200 && string(body) != "key authorization" {
					t.Errorf("%s: %q", path, body)
				}
			}
			select {
			case <-tg.conns:
				t.Fatal("plain HTTP on the https port reached the local service")
			default:
			}
		})
	}
}

// Terminated https speaks HTTP/2 and HTTP/1.1 (with upgrades) to the
// client and HTTP/1.1 to the local service, with the forwarding headers.
func TestTerminatedHTTPSSpeaksHTTP2AndUpgrades(t *testing.T) {
	cert, pool := selfSigned(t, "app.example.com")
	g := newGateway(t, gateway.Options{})
	web := httpService(t, make(chan struct{}))
	addr := serveWith(t, handler(t, g, gateway.Entry{Kind: gateway.HTTPS, Target: web,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}}))

	h2 := &http.Transport{
		ForceAttemptHTTP2: true,
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c := tls.Client(dialProxied(t, addr), &tls.Config{ServerName: "app.example.com", RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
			return c, c.HandshakeContext(ctx)
		},
	}
	defer h2.CloseIdleConnections()
	resp, err := (&http.Client{Transport: h2, Timeout: 5 * time.Second}).Get("https://app.example.com/h2?x=1")
	if err != nil {
		t.Fatalf("HTTP/2 request: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("served over %s, want HTTP/2", resp.Proto)
	}
	var seen seenRequest
	if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
		t.Fatal(err)
	}
	if want := (seenRequest{Host: "app.example.com", Path: "/h2?x=1", XFF: "203.0.113.7", XFProto: "https", XFHost: "app.example.com"}); seen != want {
		t.Errorf("local service saw %+v, want %+v", seen, want)
	}

	// A WebSocket-style upgrade over HTTP/1.1 TLS.
	c := tls.Client(dialProxied(t, addr), &tls.Config{ServerName: "app.example.com", RootCAs: pool, NextProtos: []string{"http/1.1"}})
	io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: app.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	up, err := http.ReadResponse(br, nil)
	if err != nil || up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", up, err)
	}
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "echo ping") {
		t.Fatalf("after the upgrade: %q %v", line, err)
	}
}
