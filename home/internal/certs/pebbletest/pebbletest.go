// Package pebbletest runs a real ACME CA for tests: Let's Encrypt's Pebble
// and pebble-challtestsrv as its DNS server, on free loopback ports. Every
// name resolves to 127.0.0.1 (A only) unless a test says otherwise, and
// Pebble validates HTTP-01 and TLS-ALPN-01 on the ports the test gives it
// (a test cloud's public HAProxy ports), so challenges travel the real
// path: HAProxy, the tunnel, the home's gateway.
//
// Test support only; the binaries come from
// `go install github.com/letsencrypt/pebble/v2/cmd/pebble@latest` and
// `.../cmd/pebble-challtestsrv@latest` (deploy/install-deps.sh).
package pebbletest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"homeport.dev/proto/testnet"
)

// Pebble is a running Pebble with its DNS server.
type Pebble struct {
	// Directory is the ACME directory URL (acme.ca_url).
	Directory string
	// RootsFile is a PEM file of the root that signs Pebble's own HTTPS
	// certificate (acme.trusted_roots), and Roots the same as a pool.
	RootsFile string
	Roots     *x509.CertPool

	mgmt   string // Pebble's management API, https
	chall  string // challtestsrv's management API, http
	client *http.Client
}

// Options shape a Pebble.
type Options struct {
	// HTTPPort and TLSPort are where Pebble validates HTTP-01 and
	// TLS-ALPN-01 on the resolved address (127.0.0.1).
	HTTPPort, TLSPort int
	// Profiles are certificate profiles besides "default" (90 days), by
	// name, with their validity.
	Profiles map[string]time.Duration
}

// binary finds a Pebble binary on PATH or where `go install` puts it.
func binary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(strings.Split(d, string(os.PathListSeparator))[0], "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in the Go bin directory", name)
}

// Require skips the test, saying how to install them, when the Pebble
// binaries are missing.
func Require(t testing.TB) (pebble, challtestsrv string) {
	t.Helper()
	var err1, err2 error
	pebble, err1 = binary("pebble")
	challtestsrv, err2 = binary("pebble-challtestsrv")
	if err1 != nil || err2 != nil {
		testnet.Missing(t, "the ACME tests need Pebble: go install github.com/letsencrypt/pebble/v2/cmd/pebble@latest github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@latest (deploy/install-deps.sh does)")
	}
	return pebble, challtestsrv
}

// Start runs Pebble and pebble-challtestsrv until the test ends.
func Start(t testing.TB, o Options) *Pebble {
	t.Helper()
	pebbleBin, challBin := Require(t)
	dir := t.TempDir()
	roots, certFile, keyFile := serverCert(t, dir)
	p := &Pebble{RootsFile: filepath.Join(dir, "roots.pem"), Roots: x509.NewCertPool()}
	if err := os.WriteFile(p.RootsFile, roots, 0o600); err != nil {
		t.Fatal(err)
	}
	p.Roots.AppendCertsFromPEM(roots)
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}}

	dns := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	challMgmt := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	p.chall = "http://" + challMgmt
	start(t, "pebble-challtestsrv", challBin, nil,
		"-dnsserver", dns, "-management", challMgmt, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	waitHTTP(t, p.client, p.chall+"/http-request-history", "POST", `{"host":"x"}`)

	listen := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	mgmt := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	profiles := map[string]any{"default": map[string]any{"description": "90 days", "validityPeriod": 7776000}}
	for name, d := range o.Profiles {
		profiles[name] = map[string]any{"description": name, "validityPeriod": int(d / time.Second)}
	}
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": o.HTTPPort, "tlsPort": o.TLSPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter":   map[string]int{"authz": 0, "order": 0},
		"keyAlgorithm": "ecdsa", "profiles": profiles,
	}})
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	// No random validation sleeps, no rejected nonces, no reused
	// authorizations: every issuance answers a fresh challenge, fast.
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	start(t, "pebble", pebbleBin, env, "-config", cfgFile, "-dnsserver", dns, "-strict=false")
	p.Directory = "https://" + listen + "/dir"
	p.mgmt = "https://" + mgmt
	waitHTTP(t, p.client, p.Directory, "GET", "")
	return p
}

// IssuingRoots fetches the roots that sign the certificates Pebble issues
// (they are new at every start), for a client that verifies them.
func (p *Pebble) IssuingRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble /roots/0: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if resp.StatusCode != http.StatusOK || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble /roots/0: %s %q", resp.Status, b)
	}
	return pool
}

// IssuingRootsFile writes the roots that sign the certificates Pebble
// issues to a PEM file, for a client that is given a CA file.
func (p *Pebble) IssuingRootsFile(t testing.TB) string {
	t.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble /roots/0: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !x509.NewCertPool().AppendCertsFromPEM(b) {
		t.Fatalf("pebble /roots/0: %s %q", resp.Status, b)
	}
	path := filepath.Join(t.TempDir(), "pebble-issuing-roots.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// SetA makes host resolve to ip only (instead of 127.0.0.1).
func (p *Pebble) SetA(t testing.TB, host, ip string) {
	t.Helper()
	p.challPost(t, "/add-a", map[string]any{"host": host, "addresses": []string{ip}})
}

// ClearA makes host resolve to 127.0.0.1 again.
func (p *Pebble) ClearA(t testing.TB, host string) {
	t.Helper()
	p.challPost(t, "/clear-a", map[string]any{"host": host})
}

func (p *Pebble) challPost(t testing.TB, path string, body any) {
	b, _ := json.Marshal(body)
	resp, err := p.client.Post(p.chall+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("challtestsrv %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("challtestsrv %s: %s", path, resp.Status)
	}
}

// start runs a binary until the test ends, showing its output if the test
// failed.
func start(t testing.TB, name, bin string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out testnet.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// waitHTTP waits until url answers at all (any status).
func waitHTTP(t testing.TB, c *http.Client, url, method, body string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		resp, err := c.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 15s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverCert makes a throw-away root and a certificate for 127.0.0.1 and
// localhost signed by it, for Pebble's own HTTPS.
func serverCert(t testing.TB, dir string) (rootPEM []byte, certFile, keyFile string) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebbletest root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}), certFile, keyFile
}
