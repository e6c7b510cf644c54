package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/certs"
	"homeport.dev/home/internal/store"
)

// TestCertificatesThroughTheTunnel is the acceptance test of certificates:
// a fresh profile exposes app.test with TLS terminated at home; the CA
// (Pebble) validates through the cloud's HAProxy and the tunnel, first by
// TLS-ALPN-01, then, with TLS-ALPN-01 off, by HTTP-01; an internet client
// that trusts only the CA's root reaches the local app with a valid chain;
// the cloud holds no key; failures say what is wrong and leave the
// certificate in service.
func TestCertificatesThroughTheTunnel(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t, agent.Options{})
	e.expose(t, "app.test", e.app, store.ModeTerminate)

	info := e.waitCert(t, "app.test", "", 20*time.Second)
	if info.Challenge != certs.TLSALPN01 || !info.Managed {
		t.Errorf("first certificate: %+v; want it validated by tls-alpn-01 and managed", info)
	}
	got, serial, err := e.get(t, e.client, "https://app.test/")
	if err != nil {
		t.Fatalf("HTTPS through the cloud with the home's certificate: %v", err)
	}
	if got.App != "hello from the home app" || got.Proto != "https" || got.Host != "app.test" || got.XFF != "127.0.0.1" {
		t.Errorf("the local app saw %+v", got)
	}
	if serial != info.Serial {
		t.Errorf("served serial %s, agent reports %s", serial, info.Serial)
	}
	keyFile := filepath.Join(e.p.CertsPath(), "app.test", "privkey.pem")
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v (mode %v), want 0600", keyFile, err, st.Mode().Perm())
	}

	// HTTP-01 with TLS-ALPN-01 off: the CA's request on port 80 for an
	// https-only name takes the cloud's ACME route to the https tunnel port,
	// where the gateway answers it.
	e.p.ACME.DisableTLSALPN = true
	if err := e.p.Save(); err != nil {
		t.Fatal(err)
	}
	e.start(t, agent.Options{})
	e.waitForward(t, "app.test")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var steps []string
	info, err = e.agent.IssueCertificate(ctx, "app.test", true, func(s string) { steps = append(steps, s) })
	if err != nil || info.Challenge != certs.HTTP01 || info.Serial == serial {
		t.Fatalf("renewal by HTTP-01: %+v %v\n%s", info, err, strings.Join(steps, "\n"))
	}
	if !strings.Contains(strings.Join(steps, "\n"), "answering http-01 through the tunnel") {
		t.Errorf("progress: %q", steps)
	}
	e.client.CloseIdleConnections()
	if _, served, err := e.get(t, e.client, "https://app.test/again"); err != nil || served != info.Serial {
		t.Fatalf("after renewal: serial %s (want %s), %v", served, info.Serial, err)
	}

	// The cloud never holds the private key, nor any certificate key.
	assertNoKeyMaterial(t, e.cloud.Dir, keyFile)

	// Failures: a name that is not exposed; a name whose DNS points
	// elsewhere. The certificate in service stays.
	if _, err := e.agent.IssueCertificate(ctx, "nothere.test", false, nil); certs.ReasonOf(err) != certs.NoMapping || !strings.Contains(err.Error(), "no mapping for nothere.test: expose it first") {
		t.Errorf("unexposed name: %v", err)
	}
	e.ca.SetA(t, "app.test", "127.0.0.9")
	_, err = e.agent.IssueCertificate(ctx, "app.test", true, nil)
	if certs.ReasonOf(err) != certs.DNS || !strings.Contains(err.Error(), "check that the DNS of app.test (A/AAAA record) points at the cloud (127.0.0.1)") {
		t.Fatalf("renewal with DNS elsewhere: %v", err)
	}
	st := e.agent.Status()
	if len(st.Certificates) != 1 || st.Certificates[0].State != certs.Failed || !strings.Contains(st.Certificates[0].Summary(), "stays in service") {
		t.Errorf("status after the failure: %+v", st.Certificates)
	}
	e.client.CloseIdleConnections()
	if _, served, err := e.get(t, e.client, "https://app.test/still"); err != nil || served != info.Serial {
		t.Errorf("after the failed renewal: serial %s (want the previous %s), %v", served, info.Serial, err)
	}
}

// waitForward waits until the agent's forward of host is up.
func (e *env) waitForward(t testing.TB, host string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, f := range e.agent.Status().Forwards {
			if f.Up && strings.HasSuffix(f.Public, "://"+host) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("forward of %s not up: %+v", host, e.agent.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertNoKeyMaterial fails if any file under dir holds the key in keyFile
// (PEM or DER) or any PEM private key other than the cloud's own SSH host
// key.
func assertNoKeyMaterial(t *testing.T, dir, keyFile string) {
	t.Helper()
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		t.Fatalf("%s holds no PEM", keyFile)
	}
	if _, err := x509.ParseECPrivateKey(blk.Bytes); err != nil {
		t.Fatalf("%s: %v", keyFile, err)
	}
	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err // directories, HAProxy's admin socket
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, bad := range [][]byte{blk.Bytes, bytes.TrimSpace(keyPEM), []byte("BEGIN EC PRIVATE KEY"), []byte("BEGIN PRIVATE KEY"), []byte("BEGIN RSA PRIVATE KEY")} {
			if bytes.Contains(b, bad) {
				t.Errorf("%s holds private key material (%.30q)", path, bad)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walking the cloud's data directory %s: %v (%d files)", dir, err, files)
	}
}

// TestShortLivedCertificatesRenewOnTheirOwn: with certificates valid for
// 6 s, the home renews ahead of expiry without being asked, and a client
// connection opened before the renewal keeps working through it.
func TestShortLivedCertificatesRenewOnTheirOwn(t *testing.T) {
	e := newEnv(t, map[string]time.Duration{"short": 6 * time.Second})
	e.start(t, agent.Options{Certs: certs.Config{Profile: "short"}})
	e.expose(t, "app.test", e.app, store.ModeTerminate)
	first := e.waitCert(t, "app.test", "", 20*time.Second)
	if life := first.NotAfter.Sub(first.NotBefore); life > 7*time.Second {
		t.Fatalf("certificate valid for %s; the short profile was not used", life)
	}

	// One keep-alive HTTP/1.1 connection, opened with the first
	// certificate, used throughout.
	conn, err := tls.Dial("tcp", e.cloud.HTTPSAddr, &tls.Config{ServerName: "app.test", RootCAs: e.roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	request := func(path string) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		req, _ := http.NewRequest("GET", "https://app.test"+path, nil)
		if err := req.Write(conn); err != nil {
			t.Fatalf("the connection opened before the renewal dropped: %v", err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("the connection opened before the renewal dropped: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	request("/before")
	var renewed certs.Info
	deadline := time.Now().Add(15 * time.Second)
	for renewed.Serial == "" {
		request("/during")
		for _, c := range e.agent.Certificates() {
			if c.Domain == "app.test" && c.State == certs.Valid && c.Serial != first.Serial {
				renewed = c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not renewed within 15s: %+v", e.agent.Certificates())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !renewed.NotAfter.After(first.NotAfter) || !renewed.NotBefore.Before(first.NotAfter) {
		t.Errorf("renewed certificate %s..%s, first %s..%s: want the renewal before the first expired",
			renewed.NotBefore, renewed.NotAfter, first.NotBefore, first.NotAfter)
	}
	request("/after")
	// New connections get the new certificate.
	e.client.CloseIdleConnections()
	if _, served, err := e.get(t, e.client, "https://app.test/new"); err != nil || served == first.Serial {
		t.Errorf("a new connection after the renewal: serial %s (first %s), %v", served, first.Serial, err)
	}
}
