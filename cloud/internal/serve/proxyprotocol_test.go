package serve_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/haproxy"
	"homeport.dev/proto"
)

// plainApp stands in for what `ssh -R` forwards a tunnel port to: an
// ordinary TLS, HTTP or TCP server that knows nothing of PROXY headers. It
// reports, per connection, whether one came first anyway (then it refuses,
// like the sample app's "400 Bad Request").
func plainApp(t *testing.T, port int, mode string) <-chan bool {
	t.Helper()
	header := make(chan bool, 16)
	cert := selfSigned(t)
	serveTunnelPort(t, port, func(conn net.Conn) {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		// A PROXY v2 signature starts with '\r'; no visitor's bytes here do.
		if b, err := br.Peek(1); err != nil {
			return
		} else if b[0] == '\r' {
			header <- true
			proxyproto.Read(br)
			io.WriteString(conn, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
			return
		}
		header <- false
		var rw io.ReadWriter = &bufConn{Conn: conn, r: br}
		if mode == "tls" {
			if rw, br = serveTLS(conn, br, cert); rw == nil {
				return
			}
		}
		if mode == "http" {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body := "plain app saw " + req.Host + " from " + req.Header.Get("X-Forwarded-For")
			fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
			return
		}
		line, _ := br.ReadString('\n')
		fmt.Fprintf(rw, "hello %s\n", strings.TrimSpace(line))
	})
	return header
}

func gotHeader(t *testing.T, what string, ch <-chan bool, want bool) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Errorf("%s: the tunnel got a PROXY header: %v, want %v", what, got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the tunnel received no connection", what)
	}
}

// TestProxyProtocolOffReachesAPlainApp: mappings created with
// proxy_protocol false hand the visitor's bytes to the tunnel untouched, so
// a plain `ssh -R` target (an ordinary TLS, HTTP or TCP server) answers, on
// a base-domain name and on a name picked under the shared domain; the
// agent's mappings keep the header; delete+create switches it at once; and a
// data directory from before raw.map starts and routes.
func TestProxyProtocolOffReachesAPlainApp(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--shared-domain", "homes.example.net"}})
	h := c.NewHome(t, "alice")
	tok := c.Token(t, h.User)
	base := "/api/v1/homes/" + h.Slug
	off := false
	create := func(req proto.MappingRequest) proto.Mapping {
		t.Helper()
		var m proto.Mapping
		if st := api(t, c, tok, "POST", base+"/mappings", req, &m); st != 201 {
			t.Fatalf("create %+v: %d", req, st)
		}
		return m
	}
	if st := api(t, c, tok, "POST", base+"/base-domains", proto.BaseDomainRequest{Domain: "example.com"}, nil); st != 201 {
		t.Fatalf("base domain: %d", st)
	}
	rawTLS := create(proto.MappingRequest{Scheme: "https", Host: "ssh.example.com", ProxyProtocol: &off})
	rawHTTP := create(proto.MappingRequest{Scheme: "http", Host: "ssh.example.com", ProxyProtocol: &off})
	rawTCP := create(proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCP.First, ProxyProtocol: &off})
	shared := create(proto.MappingRequest{Scheme: "http", ProxyProtocol: &off})
	agent := create(proto.MappingRequest{Scheme: "https", Host: "agent.example.com"})
	if shared.Host != h.Slug+".homes.example.net" {
		t.Errorf("picked %s, want %s.homes.example.net", shared.Host, h.Slug)
	}
	tlsSeen, httpSeen, tcpSeen := plainApp(t, rawTLS.TunnelPort, "tls"), plainApp(t, rawHTTP.TunnelPort, "http"), plainApp(t, rawTCP.TunnelPort, "tcp")
	sharedSeen, agentSeen := plainApp(t, shared.TunnelPort, "http"), plainApp(t, agent.TunnelPort, "tls")

	visit := func(when string) {
		t.Helper()
		if got, err := tlsGet(c.HTTPSAddr, "ssh.example.com"); err != nil || got != "hello ping\n" {
			t.Errorf("%s: https to the plain app: %q %v", when, got, err)
		}
		gotHeader(t, when+": https", tlsSeen, false)
		if st, body, err := httpGet(c.HTTPAddr, "ssh.example.com"); err != nil || st != 200 || body != "plain app saw ssh.example.com from 127.0.0.1" {
			t.Errorf("%s: http to the plain app: %d %q %v", when, st, body, err)
		}
		gotHeader(t, when+": http", httpSeen, false)
		if got, err := tcpGet(fmt.Sprintf("127.0.0.1:%d", rawTCP.PublicPort)); err != nil || got != "hello ping\n" {
			t.Errorf("%s: tcp to the plain app: %q %v", when, got, err)
		}
		gotHeader(t, when+": tcp", tcpSeen, false)
		if st, _, err := httpGet(c.HTTPAddr, shared.Host); err != nil || st != 200 {
			t.Errorf("%s: http on the shared domain: %d %v", when, st, err)
		}
		gotHeader(t, when+": shared", sharedSeen, false)
		tlsGet(c.HTTPSAddr, "agent.example.com") // the plain app refuses: it got a header
		gotHeader(t, when+": agent", agentSeen, true)
	}
	visit("live")

	// Switched on for the same host by delete+create: the next connection
	// carries the header, with no restart.
	if st := api(t, c, tok, "DELETE", fmt.Sprintf("%s/mappings/%d", base, rawTLS.ID), nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	on := create(proto.MappingRequest{Scheme: "https", Host: "ssh.example.com"})
	if on.TunnelPort != rawTLS.TunnelPort || !on.ProxyProtocol {
		t.Fatalf("recreated %+v, want tunnel port %d with proxy_protocol on", on, rawTLS.TunnelPort)
	}
	tlsGet(c.HTTPSAddr, "ssh.example.com")
	gotHeader(t, "switched on", tlsSeen, true)
	if st := api(t, c, tok, "DELETE", fmt.Sprintf("%s/mappings/%d", base, on.ID), nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	create(proto.MappingRequest{Scheme: "https", Host: "ssh.example.com", ProxyProtocol: &off})
	if got, err := tlsGet(c.HTTPSAddr, "ssh.example.com"); err != nil || got != "hello ping\n" {
		t.Errorf("switched off again: %q %v", got, err)
	}
	gotHeader(t, "switched off again", tlsSeen, false)

	// A data directory from before raw.map: the restart writes it.
	c.Stop()
	if err := os.Remove(haproxy.MapPath(filepath.Join(c.Dir, "haproxy"), haproxy.MapRaw)); err != nil {
		t.Fatal(err)
	}
	c = c.Restart(t)
	visit("after a restart without raw.map")
}

// TestHAProxyWithAnOldConfigKeepsRouting: an HAProxy still running a
// configuration from before raw.map (an external one not restarted after
// the upgrade) keeps every other route in sync; /readyz says what is wrong
// and what to do, and once HAProxy loads the current configuration the
// PROXY switch works.
func TestHAProxyWithAnOldConfigKeepsRouting(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true})
	cfgPath := filepath.Join(c.App.Config.HAProxyDir(), "haproxy.cfg")
	current, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var old []string
	for _, line := range strings.Split(string(current), "\n") {
		if !strings.Contains(line, "raw.map") {
			old = append(old, line)
		}
	}
	restartHAProxy := func(cfg string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o640); err != nil {
			t.Fatal(err)
		}
		before := c.App.HAProxy.Restarts()
		if err := syscall.Kill(c.App.HAProxy.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); c.App.HAProxy.Restarts() <= before || !c.App.HAProxy.Ready(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("haproxy not restarted within 10s (state %v)", c.App.HAProxy.State())
			}
		}
	}
	restartHAProxy(strings.Join(old, "\n"))

	h := c.NewHome(t, "alice")
	tok := c.Token(t, h.User)
	off := false
	var raw, agent proto.Mapping
	if st := api(t, c, tok, "POST", "/api/v1/homes/"+h.Slug+"/mappings", proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCP.First, ProxyProtocol: &off}, &raw); st != 201 {
		t.Fatalf("create: %d", st)
	}
	if st := api(t, c, tok, "POST", "/api/v1/homes/"+h.Slug+"/mappings", proto.MappingRequest{Scheme: "tcp", PublicPort: h.TCP.Last}, &agent); st != 201 {
		t.Fatalf("create: %d", st)
	}
	rawSeen, agentSeen := plainApp(t, raw.TunnelPort, "tcp"), plainApp(t, agent.TunnelPort, "tcp")
	var ready proto.Health
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(ready.Checks["haproxy"], "restart HAProxy"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("readyz haproxy = %q, want it to say HAProxy needs a restart", ready.Checks["haproxy"])
		}
		api(t, c, "", "GET", "/readyz", nil, &ready)
	}
	// Routes are applied all the same (the header stays, as HAProxy can do no else).
	tcpGet(fmt.Sprintf("127.0.0.1:%d", raw.PublicPort))
	gotHeader(t, "old config, raw mapping", rawSeen, true)
	tcpGet(fmt.Sprintf("127.0.0.1:%d", agent.PublicPort))
	gotHeader(t, "old config, agent mapping", agentSeen, true)

	restartHAProxy(string(current))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, err := tcpGet(fmt.Sprintf("127.0.0.1:%d", raw.PublicPort)); err == nil && got == "hello ping\n" {
			break
		}
		select {
		case <-rawSeen:
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatal("the raw mapping still gets the header 10 s after HAProxy loaded the current configuration")
		}
	}
	gotHeader(t, "current config, raw mapping", rawSeen, false)
	if err := c.WaitRoutes(context.Background()); err != nil {
		t.Errorf("routes after the restart: %v", err)
	}
}
