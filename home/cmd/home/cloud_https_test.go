package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/certs/pebbletest"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// The cloud's own name over HTTPS, as an operator and a user meet it: a
// fresh cloud gets a certificate for cloud.test from a real ACME CA
// (Pebble) through its own HAProxy; a login over HTTPS through HAProxy's
// public port verifies against the CA's root, with HSTS and Secure
// cookies; plain HTTP for the name is redirected and /metrics is not
// anonymous; `home register` over HTTPS verifies the chain with --ca-file
// (and refuses without it), and the profile keeps verifying it; the
// short-lived certificate is renewed while clients keep connecting, none
// refused.
func TestCloudServesItsOwnNameOverHTTPS(t *testing.T) {
	hometest.RequireHAProxy(t)
	pebbletest.Require(t)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	ca := pebbletest.Start(t, pebbletest.Options{
		HTTPPort: portOf(t, httpAddr), TLSPort: portOf(t, httpsAddr),
		Profiles: map[string]time.Duration{"short": 30 * time.Second},
	})
	c := hometest.Start(t, hometest.Options{Args: []string{
		// Clients reach cloud.test on 443 (the dialers below forward it to
		// httpsAddr, as a NAT would): redirects and links name no port.
		"--http-addr", httpAddr, "--https-addr", httpsAddr, "--public-https-port", "443",
		"--api-host", "cloud.test", "--tls-addr", fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t)),
		"--acme-ca", ca.Directory, "--acme-trusted-roots", ca.RootsFile, "--acme-email", "ops@example.com",
		"--acme-profile", "short", "--acme-renew-check", "1s",
	}})
	// hometest.Start waited for /readyz, which waits for the certificate.

	// An internet client: cloud.test resolves to the public HTTPS port, and
	// only Pebble's root is trusted.
	roots := ca.IssuingRoots(t)
	dial := func(addr string) func(ctx context.Context, _, _ string) (net.Conn, error) {
		return func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DialContext: dial(httpsAddr), TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}

	alice := c.CreateUser(t, "alice")
	body, _ := json.Marshal(proto.TokenRequest{Username: "alice", Password: alice.Password})
	resp, err := client.Post("https://cloud.test/api/v1/auth/token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("login over HTTPS through HAProxy: %v", err)
	}
	var tok proto.Token
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || tok.Token == "" {
		t.Fatalf("POST /api/v1/auth/token over HTTPS: %s", resp.Status)
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName == "" || !strings.Contains(resp.TLS.PeerCertificates[0].Issuer.CommonName, "Pebble") {
		t.Errorf("certificate not from Pebble: %+v", resp.TLS.PeerCertificates[0].Issuer)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("no HSTS on HTTPS: %q", got)
	}
	resp, err = client.Get("https://cloud.test/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) == 0 || !cs[0].Secure {
		t.Errorf("the login page's cookies are not Secure: %v", resp.Header["Set-Cookie"])
	}
	resp, err = client.Get("https://cloud.test/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous /metrics over HTTPS: %s, want 401", resp.Status)
	}
	plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial(httpAddr)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = plain.Get("http://cloud.test/login?next=/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://cloud.test/login?next=/" {
		t.Errorf("plain HTTP for the cloud's name: %s to %q, want a redirect to https", resp.Status, resp.Header.Get("Location"))
	}

	// `home register` over HTTPS, cloud.test reached through a proxy as DNS
	// would (the home binary is unchanged: HTTPS_PROXY is standard).
	proxy := connectProxy(t, "cloud.test:443", httpsAddr)
	u := newUser(t)
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, homeBin, args...)
		cmd.Env = append(os.Environ(), "HOMEPORT_PROFILES="+u.profiles, "HOME_CONFIG=", "HTTPS_PROXY=http://"+proxy, "https_proxy=", "NO_PROXY=", "no_proxy=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	dir := filepath.Join(t.TempDir(), "p")
	out, err := run("register", "--cloud", "https://cloud.test", "--token", tok.Token, "--output", dir)
	if err == nil || !strings.Contains(out, "the cloud's certificate is not trusted") || !strings.Contains(out, "--ca-file") {
		t.Fatalf("register without the CA: err=%v\n%s", err, out)
	}
	out, err = run("register", "--cloud", "https://cloud.test", "--token", tok.Token, "--output", dir, "--ca-file", ca.IssuingRootsFile(t))
	if err != nil || !strings.Contains(out, "registered home") {
		t.Fatalf("register over HTTPS with --ca-file: %v\n%s", err, out)
	}
	if out, err := run("--config", dir, "domains", "add", "app.test"); err != nil {
		t.Fatalf("a later API call from the profile (its stored CA): %v\n%s", err, out)
	}

	// Renewal without dropping the API: new connections all the while,
	// each must succeed, until a new certificate is served.
	first := serial(t, client)
	deadline := time.Now().Add(45 * time.Second)
	var requests int
	for {
		resp, err := client.Get("https://cloud.test/healthz")
		if err != nil {
			t.Fatalf("request %d during renewal failed: %v", requests, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d during renewal: %s", requests, resp.Status)
		}
		requests++
		if resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first) != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the certificate (serial %x) was not renewed within 45s", first)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("renewed after %d requests, none failed", requests)
}

// serial is the serial number of the certificate the cloud serves now.
func serial(t *testing.T, c *http.Client) *big.Int {
	t.Helper()
	resp, err := c.Get("https://cloud.test/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber
}

// connectProxy is an HTTPS proxy that takes the client to target for
// CONNECT host (and refuses anything else), until the test ends.
func connectProxy(t *testing.T, host, target string) string {
	t.Helper()
	return testnet.Serve(t, testnet.Listen(t), func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect || req.Host != host {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\n\r\n")
			return
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer up.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		done := make(chan struct{})
		// When the test ends, Serve closes c: this copy ends, the target
		// sees the close and the other copy ends too.
		go func() { io.Copy(up, br); up.(*net.TCPConn).CloseWrite(); close(done) }()
		io.Copy(c, up)
		<-done
	})
}
