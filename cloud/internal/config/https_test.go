package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The cloud's own name decides its HTTPS: a DNS name gets ACME and keeps
// the plain API on loopback; an IP or a single label cannot, and says so;
// --dev stays plain; an operator's address choice is kept.
func TestHTTPSModes(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--data", dir, "--haproxy", "managed"}
	parse := func(args ...string) Config {
		t.Helper()
		c, err := Parse(append(append([]string{}, base...), args...))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := parse("--public-host", "Cloud.Example.com")
	if c.TLS.Mode != HTTPSACME || c.APIHost != "cloud.example.com" || c.APIAddr != "127.0.0.1:8000" ||
		c.TLS.ACMECA != LetsEncrypt || c.TLS.Addr != "127.0.0.1:8444" || c.MetricsAddr != "127.0.0.1:9100" || len(c.Warnings) != 0 {
		t.Errorf("a DNS name: %+v", c)
	}
	if c.StorageDir() != filepath.Join(dir, "certmagic") {
		t.Errorf("storage %s", c.StorageDir())
	}
	if c := parse("--public-host", "cloud.example.com", "--api-addr", ":8000"); c.APIAddr != ":8000" || !c.TLS.On() {
		t.Errorf("explicit --api-addr: %s", c.APIAddr)
	}
	t.Setenv("CLOUD_API_ADDR", "0.0.0.0:8000")
	if c := parse("--public-host", "cloud.example.com"); c.APIAddr != "0.0.0.0:8000" {
		t.Errorf("CLOUD_API_ADDR: %s", c.APIAddr)
	}
	os.Unsetenv("CLOUD_API_ADDR")
	for _, host := range []string{"203.0.113.5", "myserver"} {
		c := parse("--public-host", host)
		if c.TLS.On() || c.APIAddr != "127.0.0.1:8000" || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "HTTPS is off: --api-host "+host) {
			t.Errorf("--public-host %s: mode %q, api %s, warnings %q", host, c.TLS.Mode, c.APIAddr, c.Warnings)
		}
	}
	if c := parse("--public-host", "203.0.113.5", "--api-host", "cloud.example.com"); c.TLS.Mode != HTTPSACME {
		t.Errorf("--api-host beside an IP public host: %q", c.TLS.Mode)
	}
	if c := parse("--dev", "--public-host", "cloud.example.com"); c.TLS.On() || len(c.Warnings) != 0 || c.APIAddr != "127.0.0.1:8000" {
		t.Errorf("--dev: %+v", c)
	}
	if c := parse("--public-host", "cloud.example.com", "--haproxy", "off"); c.TLS.On() {
		t.Errorf("--haproxy off: %q", c.TLS.Mode)
	}
	if c := parse("--public-host", "cloud.example.com", "--metrics-addr", "off"); c.MetricsAddr != "" {
		t.Errorf("--metrics-addr off: %q", c.MetricsAddr)
	}
	certFile, keyFile := selfSigned(t, dir)
	if c := parse("--public-host", "203.0.113.5", "--api-host", "cloud.example.com", "--tls-cert", certFile, "--tls-key", keyFile); c.TLS.Mode != HTTPSFiles || c.APIAddr != "127.0.0.1:8000" {
		t.Errorf("operator's files: %+v", c.TLS)
	}
}

func TestHTTPSBadInput(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not pem"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", certFile}, "--tls-cert: give both"},
		{[]string{"--tls-cert", certFile, "--tls-key", garbage}, "--tls-cert: " + certFile + " with " + garbage},
		{[]string{"--tls-cert", certFile, "--tls-key", keyFile, "--dev"}, "--dev serves plain HTTP"},
		{[]string{"--tls-cert", certFile, "--tls-key", keyFile, "--api-host", "203.0.113.5"}, "is not a DNS name"},
		{[]string{"--acme-ca", "http://ca.example/dir"}, "--acme-ca"},
		{[]string{"--acme-email", "Me <me@example.com>"}, "--acme-email"},
		{[]string{"--acme-profile", "short lived"}, "--acme-profile"},
		{[]string{"--acme-trusted-roots", garbage}, "holds no PEM certificate"},
		{[]string{"--acme-trusted-roots", filepath.Join(dir, "missing.pem")}, "--acme-trusted-roots"},
		{[]string{"--tls-addr", "0.0.0.0:8444"}, "--tls-addr"},
		{[]string{"--tls-addr", "127.0.0.1:0"}, "--tls-addr"},
		{[]string{"--tls-addr", "[::1]:8444"}, "--tls-addr"},
		{[]string{"--metrics-addr", "metrics.example:9100"}, "--metrics-addr"},
	} {
		args := append([]string{"--data", dir, "--haproxy", "managed", "--public-host", "cloud.example.com"}, c.args...)
		if _, err := Parse(args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
}

// selfSigned writes a throw-away certificate and key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cloud.example.com"},
		DNSNames: []string{"cloud.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestNoClearTextBeyondLoopbackByDefault: without HTTPS (no DNS name, no
// HAProxy), the plain web UI and API listen on loopback unless the operator
// sets --api-addr, and the start warning says which it is.
func TestNoClearTextBeyondLoopbackByDefault(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args    []string
		api     string
		warnHas string
	}{
		{[]string{"--public-host", "203.0.113.5"}, "127.0.0.1:8000", "on this machine only"},
		{[]string{"--public-host", "cloud.example.com", "--haproxy", "off"}, "127.0.0.1:8000", ""},
		{[]string{"--public-host", "203.0.113.5", "--api-addr", ":8000"}, ":8000", "in clear on :8000"},
	} {
		c, err := Parse(append([]string{"--data", dir, "--shape-dev", "off"}, tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		if c.APIAddr != tc.api {
			t.Errorf("%v: plain API on %s, want %s", tc.args, c.APIAddr, tc.api)
		}
		if tc.warnHas != "" && (len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], tc.warnHas)) {
			t.Errorf("%v: warnings %q, want one saying %q", tc.args, c.Warnings, tc.warnHas)
		}
	}
}
