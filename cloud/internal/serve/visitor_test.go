package serve_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/cloudtest"
)

// TestVisitorsOfAnOfflineHomeAreToldSo: a home's mappings are routed while
// the home is not connected; its visitors get the offline page on HTTP
// (not HAProxy's stock page, not the unknown-name page) and a clean close
// on TCP and TLS, and the site is back on the next request once the home
// listens again.
func TestVisitorsOfAnOfflineHomeAreToldSo(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true})
	r := setup(t, c) // no tunnel listens: the home is offline

	status, body, err := httpGet(c.HTTPAddr, "web.example.com")
	if err != nil || status != 503 || !strings.Contains(body, "This site's home server is offline") {
		t.Fatalf("offline home over http: %d %v\n%s\nwant 503 with the offline page", status, err, body)
	}
	for _, leak := range []string{"HAProxy", "No server is available", "127.0.0.1", fmt.Sprint(r.http.TunnelPort)} {
		if strings.Contains(body, leak) {
			t.Errorf("the offline page shows %q", leak)
		}
	}
	if status, body, _ := httpGet(c.HTTPAddr, "unknown.example.com"); status != 503 || !strings.Contains(body, "No service is published at this address") {
		t.Errorf("unknown name: %d %q, want the no-service page", status, body)
	}
	if got, err := tlsGet(c.HTTPSAddr, "app.example.com"); err == nil || got != "" {
		t.Errorf("offline home over TLS: %q %v, want the handshake refused", got, err)
	}
	if got, err := tcpGet(fmt.Sprintf("127.0.0.1:%d", r.tcp.PublicPort)); err == nil || got != "" {
		t.Errorf("offline home over TCP: %q %v, want the connection closed", got, err)
	}

	tunnelServer(t, r.http.TunnelPort, "http") // the home is back
	if status, body, err := httpGet(c.HTTPAddr, "web.example.com"); err != nil || status != 200 || body != "hello" {
		t.Errorf("home back online: %d %q %v, want the site", status, body, err)
	}
}

// TestRedirectBehindAPortForward: with --public-https-port 443 (the edge
// listens elsewhere, a NAT forwards 443 to it) the redirect to https names
// no port.
func TestRedirectBehindAPortForward(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true, Args: []string{"--public-https-port", "443"}})
	setup(t, c)
	if _, port, _ := net.SplitHostPort(c.HTTPSAddr); port == "443" {
		t.Fatal("the test edge listens on 443: the case is not tested")
	}
	if status, loc, err := httpGet(c.HTTPAddr, "secure.example.com"); err != nil || status != 302 || loc != "https://secure.example.com/path?q=1" {
		t.Errorf("https-only host on 80: %d %q %v, want 302 to https://secure.example.com/path?q=1", status, loc, err)
	}
}
