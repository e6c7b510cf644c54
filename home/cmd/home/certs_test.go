package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/certs/pebbletest"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/hometest"
)

func portOf(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The certificate commands as a user runs them, against a real cloud and
// a real ACME CA (Pebble): expose probes the app and picks terminate,
// `certs issue` without a console connects the tunnel itself, `certs
// renew` with a console goes through it, status and list show the state,
// and an internet client gets the app over HTTPS with the home's
// certificate.
func TestCertificatesFromTheCLI(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	ca := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(t, c.HTTPAddr), TLSPort: portOf(t, c.HTTPSAddr)})
	u := newUser(t)
	profile := register(u, c, c.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "p"))
	p, err := config.Load(profile)
	if err != nil {
		t.Fatal(err)
	}
	p.ACME = config.ACME{CAURL: ca.Directory, TrustedRoots: ca.RootsFile, Email: "alice@example.com"}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	u.must("--config", profile, "domains", "add", "app.test")
	deploy := filepath.Join(t.TempDir(), "deploy")
	out := u.must("--config", profile, "expose", "https", "app.test", "--to", web(t, "app"), "--deploy-path", deploy)
	if !strings.Contains(out, "mode terminate: ") || !strings.Contains(out, "speaks plain HTTP") {
		t.Errorf("expose did not say it probed the app and chose terminate:\n%s", out)
	}

	// Before issuance, status says what visitors meet.
	if out := u.must("--config", profile, "status"); !strings.Contains(out, "https://app.test: certificate pending: visitors see a TLS error until it is issued (") {
		t.Errorf("status before issuance does not warn of the pending certificate:\n%s", out)
	}

	// No console: the command connects the tunnel for the issuance.
	out = u.must("--config", profile, "certs", "issue", "app.test")
	for _, want := range []string{"no console runs", "answering tls-alpn-01 through the tunnel", "copied fullchain.pem and privkey.pem to " + deploy, "app.test: valid until "} {
		if !strings.Contains(out, want) {
			t.Errorf("certs issue output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(deploy, "privkey.pem")); err != nil {
		t.Errorf("deploy path: %v", err)
	}
	if out := u.must("--config", profile, "certs", "list"); !strings.Contains(out, "app.test") || !strings.Contains(out, "valid until") || !strings.Contains(out, "tls-alpn-01") {
		t.Errorf("certs list without a console:\n%s", out)
	}
	u.fails("no mapping for nothere.test", "--config", profile, "certs", "issue", "nothere.test")

	// With the console: renew goes through it, with progress.
	u.console(profile)
	u.waitUp(profile, 1)
	out = u.must("--config", profile, "certs", "renew", "app.test")
	for _, want := range []string{"renewing (the current certificate stays in service meanwhile)", "issued by", "app.test: valid until "} {
		if !strings.Contains(out, want) {
			t.Errorf("certs renew output lacks %q:\n%s", want, out)
		}
	}
	var st control.Status
	if err := json.Unmarshal([]byte(u.must("--config", profile, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Certificates) != 1 || st.Certificates[0].State != certs.Valid || !st.Certificates[0].Managed {
		t.Errorf("status --json certificates: %+v", st.Certificates)
	}
	if out := u.must("--config", profile, "status"); !strings.Contains(out, "CERTIFICATES") || !strings.Contains(out, "app.test  valid until") || strings.Contains(out, "certificate pending") {
		t.Errorf("status:\n%s", out)
	}

	// An internet client that trusts only the CA's root.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", c.HTTPSAddr)
		},
		TLSClientConfig: &tls.Config{RootCAs: ca.IssuingRoots(t)},
	}}
	resp, err := client.Get("https://app.test/")
	if err != nil {
		t.Fatalf("HTTPS through the cloud: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "app xff=127.0.0.1") {
		t.Errorf("the app answered %q", body)
	}
}
