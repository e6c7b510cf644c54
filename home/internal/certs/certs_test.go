package certs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/certs/pebbletest"
	"homeport.dev/proto/testnet"
)

func testLog() *slog.Logger {
	if os.Getenv("HOMETEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// validationPorts serves the CA's validation requests the way the gateway
// does, without a cloud: TLS with m's GetCertificate on one port (it
// answers acme-tls/1) and HTTP with m's HTTPHandler on another. set swaps
// the manager behind them.
func validationPorts(t *testing.T) (httpPort, tlsPort int, set func(*certs.Manager)) {
	t.Helper()
	var mu sync.Mutex
	var cur *certs.Manager
	get := func() *certs.Manager {
		mu.Lock()
		defer mu.Unlock()
		return cur
	}
	httpPort, tlsPort = testnet.FreePort(t), testnet.FreePort(t)
	hl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get().HTTPHandler(http.NotFoundHandler()).ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(hl)
	tl, err := tls.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort), &tls.Config{
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return get().GetCertificate(h) },
		NextProtos:     []string{"acme-tls/1", "http/1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	t.Cleanup(func() { hs.Close(); tl.Close() })
	return httpPort, tlsPort, func(m *certs.Manager) { mu.Lock(); cur = m; mu.Unlock() }
}

func newManager(t *testing.T, cfg certs.Config) *certs.Manager {
	t.Helper()
	cfg.Log = testLog()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	m, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// serves reports whether a client trusting roots gets a valid chain for
// name from m, and the certificate's serial.
func serves(t *testing.T, m *certs.Manager, name string, roots *x509.CertPool) string {
	t.Helper()
	c, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
	if err != nil {
		t.Fatalf("no certificate served for %s: %v", name, err)
	}
	inter := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		ic, _ := x509.ParseCertificate(der)
		inter.AddCert(ic)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("the certificate served for %s does not verify against the CA's root: %v", name, err)
	}
	return c.Leaf.SerialNumber.Text(16)
}

func TestIssueRenewAndFailAgainstPebble(t *testing.T) {
	httpPort, tlsPort, use := validationPorts(t)
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
	dir := filepath.Join(t.TempDir(), "certs")
	deployDir := filepath.Join(t.TempDir(), "deploy")
	cfg := certs.Config{Dir: dir, CA: ca.Directory, Roots: ca.Roots, Email: "admin@example.com", DeployPath: deployDir, Cloud: "cloud.example"}
	m := newManager(t, cfg)
	use(m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	roots := ca.IssuingRoots(t)

	// A name the home does not expose: refused before the CA is asked.
	if _, err := m.Issue(ctx, "nothere.test", nil); certs.ReasonOf(err) != certs.NoMapping || !strings.Contains(err.Error(), "no mapping for nothere.test") {
		t.Fatalf("unexposed name: %v", err)
	}
	// Exposed but the tunnel is down.
	m.SetDomains([]certs.Domain{{Name: "app.test", Down: certs.NotConnected, Why: "the tunnel is connecting"}})
	if _, err := m.Issue(ctx, "app.test", nil); certs.ReasonOf(err) != certs.NotConnected || !strings.Contains(err.Error(), "the tunnel is connecting") {
		t.Fatalf("tunnel down: %v", err)
	}

	m.SetDomains([]certs.Domain{{Name: "app.test", TLSALPN: true, HTTP01: true}})
	var steps []string
	info, err := m.Issue(ctx, "app.test", func(s string) { steps = append(steps, s) })
	if err != nil {
		t.Fatalf("issue: %v\nsteps: %q", err, steps)
	}
	if info.State != certs.Valid || info.Challenge != certs.TLSALPN01 || !strings.HasPrefix(info.Summary(), "valid until ") {
		t.Errorf("after issuance: %+v (%s)", info, info.Summary())
	}
	if got := m.Answered(); got[certs.TLSALPN01] == 0 || got[certs.HTTP01] != 0 {
		t.Errorf("validations answered: %v, want TLS-ALPN-01 only", got)
	}
	joined := strings.Join(steps, "\n")
	for _, want := range []string{"ACME account", "answering tls-alpn-01", "issued by", "copied fullchain.pem and privkey.pem to " + filepath.Join(deployDir, "app.test")} {
		if !strings.Contains(joined, want) {
			t.Errorf("progress lacks %q:\n%s", want, joined)
		}
	}
	first := serves(t, m, "app.test", roots)

	// Keys stay private; the deploy copy matches what is served.
	for _, f := range []string{filepath.Join(dir, "app.test", "privkey.pem"), filepath.Join(deployDir, "app.test", "privkey.pem")} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("certificates directory mode %v, want 0700", st.Mode().Perm())
	}
	a, _ := os.ReadFile(filepath.Join(dir, "app.test", "fullchain.pem"))
	b, _ := os.ReadFile(filepath.Join(deployDir, "app.test", "fullchain.pem"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("deploy copy differs from the stored chain")
	}

	// Issue again: the valid certificate is kept, the CA not asked.
	if again, err := m.Issue(ctx, "app.test", nil); err != nil || again.Serial != info.Serial {
		t.Errorf("second issue replaced a valid certificate: %+v %v", again, err)
	}

	// With TLS-ALPN-01 off (a new manager on the same directory, as after
	// a restart with acme.disable_tls_alpn), renewal validates by HTTP-01.
	cfg.DisableTLSALPN = true
	m2 := newManager(t, cfg)
	use(m2)
	if got := serves(t, m2, "app.test", roots); got != first {
		t.Fatalf("the stored certificate was not loaded: serial %s, want %s", got, first)
	}
	m2.SetDomains([]certs.Domain{{Name: "app.test", TLSALPN: true, HTTP01: true}})
	info, err = m2.Renew(ctx, "app.test", nil)
	if err != nil || info.Challenge != certs.HTTP01 || m2.Answered()[certs.HTTP01] == 0 || m2.Answered()[certs.TLSALPN01] != 0 {
		t.Fatalf("renew by HTTP-01: %+v %v (answered %v)", info, err, m2.Answered())
	}
	second := serves(t, m2, "app.test", roots)
	if second == first {
		t.Fatal("renewal kept the old certificate")
	}

	// DNS pointing elsewhere: the CA cannot reach the home; the message
	// says so and the current certificate stays in service.
	ca.SetA(t, "app.test", "127.0.0.9")
	_, err = m2.Renew(ctx, "app.test", nil)
	if certs.ReasonOf(err) != certs.DNS || !strings.Contains(err.Error(), "check that the DNS of app.test (A/AAAA record) points at the cloud (cloud.example)") {
		t.Fatalf("renewal with DNS elsewhere: %v", err)
	}
	info = m2.Info("app.test")
	if info.State != certs.Failed || !strings.Contains(info.Summary(), "stays in service") || info.NextAttempt.IsZero() {
		t.Errorf("after the failure: %+v %q", info, info.Summary())
	}
	if got := serves(t, m2, "app.test", roots); got != second {
		t.Errorf("a failed renewal replaced the certificate in service")
	}
	ca.ClearA(t, "app.test")

	// On its own: a name the home wants a certificate for is obtained
	// without being asked; a failure is retried after the backoff and
	// succeeds once DNS is fixed.
	cfg.RetryMin = 300 * time.Millisecond
	m3 := newManager(t, cfg)
	use(m3)
	ca.SetA(t, "auto.test", "127.0.0.9")
	go m3.Run(ctx)
	m3.SetDomains([]certs.Domain{{Name: "auto.test", Auto: true, TLSALPN: true, HTTP01: true}})
	wait := func(what string, ok func(certs.Info) bool) certs.Info {
		t.Helper()
		for {
			if i := m3.Info("auto.test"); ok(i) {
				return i
			}
			if ctx.Err() != nil {
				t.Fatalf("auto.test never %s: %+v", what, m3.Info("auto.test"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	failed := wait("failed", func(i certs.Info) bool { return i.State == certs.Failed })
	if !strings.Contains(failed.Error, "check that the DNS of auto.test") || !failed.NextAttempt.After(time.Now().Add(-time.Second)) {
		t.Errorf("first automatic attempt: %+v", failed)
	}
	ca.ClearA(t, "auto.test")
	wait("valid", func(i certs.Info) bool { return i.State == certs.Valid })
	serves(t, m3, "auto.test", roots)
}

func TestCAUnreachable(t *testing.T) {
	m := newManager(t, certs.Config{Dir: t.TempDir(), CA: fmt.Sprintf("https://127.0.0.1:%d/dir", testnet.FreePort(t))})
	m.SetDomains([]certs.Domain{{Name: "app.test", TLSALPN: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := m.Issue(ctx, "app.test", nil)
	if certs.ReasonOf(err) != certs.CAUnreachable || !strings.Contains(err.Error(), "cannot reach the ACME CA at https://127.0.0.1:") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("unreachable CA: %v", err)
	}
	if info := m.Info("app.test"); info.State != certs.Failed || info.Error != err.Error() {
		t.Errorf("state after the failure: %+v", info)
	}
}

// A CA that answers newAccount with a rate-limit problem, as Let's
// Encrypt does.
func TestRateLimited(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Replay-Nonce", fmt.Sprintf("n%d", time.Now().UnixNano()))
		switch r.URL.Path {
		case "/dir":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"newNonce": srv.URL + "/nonce", "newAccount": srv.URL + "/account", "newOrder": srv.URL + "/order"})
		case "/nonce":
		default:
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new registrations (10) from this IP address in the last 3h0m0s, retry after 2099-01-02 15:04:05 UTC: see https://letsencrypt.org/docs/rate-limits/"}`)
		}
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	m := newManager(t, certs.Config{Dir: t.TempDir(), CA: srv.URL + "/dir", Roots: roots})
	m.SetDomains([]certs.Domain{{Name: "app.test", TLSALPN: true, Auto: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := m.Issue(ctx, "app.test", nil)
	var ce *certs.Error
	if !errors.As(err, &ce) || ce.Reason != certs.RateLimited || !strings.Contains(err.Error(), "the CA's rate limit for app.test was hit: too many new registrations") {
		t.Fatalf("rate limited: %v", err)
	}
	if info := m.Info("app.test"); info.NextAttempt.Year() != 2099 {
		t.Errorf("next attempt %v, want after the CA's retry-after (2099)", info.NextAttempt)
	}
}
