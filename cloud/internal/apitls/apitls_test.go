package apitls

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"homeport.dev/cloud/internal/config"
)

// writeCert writes a self-signed certificate for cloud.test with the given
// serial over certFile and keyFile, and returns a pool trusting it.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.CertPool {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "cloud.test"},
		DNSNames: []string{"cloud.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// serve runs a files-mode server on a loopback listener until the test ends.
func serve(t *testing.T, certFile, keyFile string, h http.Handler) (addr string) {
	t.Helper()
	s, err := New(Options{Host: "cloud.test", TLS: config.TLS{Mode: config.HTTPSFiles, CertFile: certFile, KeyFile: keyFile},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check with a valid certificate: %v", err)
	}
	return ln.Addr().String()
}

// viaHAProxy dials addr and sends the PROXY v2 header HAProxy would, for a
// client at 203.0.113.9:4567.
func viaHAProxy(addr string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 4567}, c.RemoteAddr())
	if _, err := h.WriteTo(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The TLS listener serves HTTPS (with HSTS, the client's address from the
// PROXY header), answers plain HTTP only with 404 (ACME challenges), and
// serves a replaced certificate file without a restart.
func TestFilesModeBehindHAProxy(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeCert(t, certFile, keyFile, 1)
	addr := serve(t, certFile, keyFile, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s tls=%v", r.RemoteAddr, r.TLS != nil)
	}))

	get := func(roots *x509.CertPool) (*http.Response, string, error) {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext:       func(context.Context, string, string) (net.Conn, error) { return viaHAProxy(addr) },
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			DisableKeepAlives: true,
		}}
		resp, err := client.Get("https://cloud.test/")
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	resp, body, err := get(pool)
	if err != nil {
		t.Fatal(err)
	}
	if body != "hello 203.0.113.9:4567 tls=true" || !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("HTTPS: %q, HSTS %q", body, resp.Header.Get("Strict-Transport-Security"))
	}

	// Plain HTTP (HAProxy's HTTP port) reaches only the challenge handler.
	c, err := viaHAProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: cloud.test\r\nConnection: close\r\n\r\n")
	pr, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close()
	if err != nil || pr.StatusCode != http.StatusNotFound {
		t.Errorf("plain HTTP: %v %v, want 404", pr, err)
	}

	// Without a PROXY header (anything but HAProxy) nothing is served.
	raw, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "cloud.test"})
	if err == nil {
		raw.Close()
		t.Errorf("a TLS handshake without the PROXY header succeeded")
	}

	// The operator replaces the files: new handshakes get the new
	// certificate (the files are looked at once a second at most).
	both := x509.NewCertPool()
	both.AppendCertsFromPEM(mustRead(t, certFile))
	newPool := writeCert(t, certFile, keyFile, 2)
	both.AppendCertsFromPEM(mustRead(t, certFile))
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, _, err := get(both)
		if err != nil {
			t.Fatalf("a handshake while the files changed: %v", err)
		}
		if resp.TLS.PeerCertificates[0].SerialNumber.Int64() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate was not served within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A broken replacement keeps the previous certificate in service.
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	time.Sleep(1100 * time.Millisecond) // past the recheck interval, so the garbage is read
	if resp, _, err := get(newPool); err != nil || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 2 {
		t.Errorf("after a broken replacement: %v", err)
	}
}
