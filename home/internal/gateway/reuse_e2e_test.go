package gateway_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"homeport.dev/home/internal/gateway"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/tunnel"
	"homeport.dev/proto"
)

// visitorSeen is what a local app reports about a request.
type visitorSeen struct {
	App, XFF, XFProto, XFHost string
}

// visitorApp is a local web app named name that reports what it saw.
func visitorApp(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(visitorSeen{App: name, XFF: strings.Join(r.Header.Values("X-Forwarded-For"), ","),
			XFProto: r.Header.Get("X-Forwarded-Proto"), XFHost: r.Header.Get("X-Forwarded-Host")})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// visitor sends every request to addr (the cloud's HAProxy) from its own
// loopback address, on a new connection each time: visitors come and go.
func visitor(ip, addr string) *http.Client {
	d := &net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
}

// TestVisitorsShareConnectionsToAHome: two visitors (127.0.0.2, 127.0.0.3)
// take turns at two HTTP mappings of two tenants' homes, each request on a new
// connection to HAProxy with a forged X-Forwarded-For. With
// --reuse-home-connections (the default) HAProxy sends the requests of both
// over the connections (SSH channels) it already holds to that mapping, so
// the home accepts fewer channels than it serves requests, and still every
// request reaches its own mapping's app with its own visitor's address.
// Switched off, every visitor connection is its own channel with a PROXY
// header, as before, with the same addresses. The plain-HTTP side of an
// https mapping (ACME HTTP-01) is served in both modes too.
func TestVisitorsShareConnectionsToAHome(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		t.Run("reuse "+strconv.FormatBool(reuse), func(t *testing.T) { testVisitorsShareConnections(t, reuse) })
	}
}

// countFirstRead adds one to n at the first byte read from the connection.
type countFirstRead struct {
	net.Conn
	n    *atomic.Int64
	once sync.Once
}

func (c *countFirstRead) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { c.n.Add(1) })
	}
	return n, err
}

func testVisitorsShareConnections(t *testing.T, reuse bool) {
	c := hometest.Start(t, hometest.Options{Args: []string{"--reuse-home-connections=" + strconv.FormatBool(reuse)}})
	h := c.ClaimHome(t, c.CreateUser(t, "alice"))
	h.AddBaseDomain(t, "example.com")
	one := h.Map(t, proto.MappingRequest{Scheme: "http", Host: "one.example.com"})
	// "two" is another tenant's home: a connection HAProxy keeps to one
	// home must never carry a request for the other.
	other := c.ClaimHome(t, c.CreateUser(t, "bob"))
	other.AddBaseDomain(t, "example.net")
	two := other.Map(t, proto.MappingRequest{Scheme: "http", Host: "two.example.net"})
	secure := h.Map(t, proto.MappingRequest{Scheme: "https", Host: "secure.example.com"})
	homeCert, _ := selfSigned(t, "secure.example.com")

	g := newGateway(t, gateway.Options{Home: h.Slug, WrapHTTP: func(next http.Handler) http.Handler {
		// The home's ACME HTTP-01 answer, naming the visitor the gateway saw.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/.well-known/acme-challenge/token" {
				host, _, _ := net.SplitHostPort(r.RemoteAddr)
				io.WriteString(w, "key authorization for "+host)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	g2 := newGateway(t, gateway.Options{Home: other.Slug})
	channels := map[string]*atomic.Int64{"one": {}, "two": {}, "secure": {}}
	entries := []struct {
		name string
		g    *gateway.Gateway
		port int
		e    gateway.Entry
	}{
		{"one", g, one.TunnelPort, gateway.Entry{Kind: gateway.HTTP, Target: visitorApp(t, "one")}},
		{"two", g2, two.TunnelPort, gateway.Entry{Kind: gateway.HTTP, Target: visitorApp(t, "two")}},
		{"secure", g, secure.TunnelPort, gateway.Entry{Kind: gateway.HTTPS, Target: visitorApp(t, "secure"),
			TLS: &tls.Config{Certificates: []tls.Certificate{homeCert}}}},
	}
	forwards := map[*gateway.Gateway][]tunnel.Forward{}
	for _, en := range entries {
		serve, n := handler(t, en.g, en.e), channels[en.name]
		forwards[en.g] = append(forwards[en.g], tunnel.Forward{TunnelPort: en.port, Handler: func(ctx context.Context, conn net.Conn) {
			// A forwarded connection that carried bytes: one SSH channel
			// used (spares the cloud opened and withdrew carry none).
			serve(ctx, &countFirstRead{Conn: conn, n: n})
		}})
	}
	runHome(t, h, forwards[g])
	runHome(t, other, forwards[g2])
	hosts := map[string]string{"one": "one.example.com", "two": "two.example.net"}

	visitors := map[string]*http.Client{"127.0.0.2": visitor("127.0.0.2", c.HTTPAddr), "127.0.0.3": visitor("127.0.0.3", c.HTTPAddr)}
	const rounds = 4
	for i := range rounds {
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			for _, app := range []string{"one", "two"} {
				host := hosts[app]
				req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
				req.Header.Set("X-Forwarded-For", "6.6.6.6") // forged: HAProxy drops it
				resp, err := visitors[ip].Do(req)
				if err != nil {
					t.Fatalf("round %d, %s to %s: %v", i, ip, host, err)
				}
				var seen visitorSeen
				err = json.NewDecoder(resp.Body).Decode(&seen)
				resp.Body.Close()
				want := visitorSeen{App: app, XFF: ip, XFProto: "http", XFHost: host}
				if err != nil || seen != want {
					t.Errorf("round %d, %s to %s: the app saw %+v (%v), want %+v", i, ip, host, seen, err, want)
				}
			}
			// The https mapping's plain-HTTP side: ACME HTTP-01 only.
			resp, err := visitors[ip].Get("http://secure.example.com/.well-known/acme-challenge/token")
			if err != nil {
				t.Fatalf("round %d, %s: ACME HTTP-01: %v", i, ip, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := "key authorization for " + ip; resp.StatusCode != http.StatusOK || string(body) != want {
				t.Errorf("round %d, %s: ACME HTTP-01 answered %d %q, want %q", i, ip, resp.StatusCode, body, want)
			}
		}
	}
	requests := int64(rounds * len(visitors)) // to each mapping
	for name, n := range channels {
		got := n.Load()
		t.Logf("%s: %d requests over %d channels", name, requests, got)
		if reuse && got >= requests {
			t.Errorf("%s: %d channels for %d requests: HAProxy did not reuse its connections to the home", name, got, requests)
		}
		if !reuse && got != requests {
			t.Errorf("%s: %d channels for %d requests, want one per visitor connection (PROXY header)", name, got, requests)
		}
	}
}
