package agent_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/store"
)

// BenchmarkExposeToCertificate measures, against Pebble, the time from
// "expose" (the cloud mapping and the entry created, the running agent
// told) to a certificate that an internet client verifies through the
// cloud's HAProxy and the tunnel; the baseline beside it is one HTTPS
// request on a new connection through the same path once the certificate
// is there. The target is under 5 s.
//
//	cd home && go test ./internal/agent -run '^$' -bench ExposeToCertificate -benchtime 5x
func BenchmarkExposeToCertificate(b *testing.B) {
	e := newEnv(b, nil)
	e.start(b, agent.Options{})
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", e.cloud.HTTPSAddr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: e.roots},
		DisableKeepAlives: true,
	}}
	var toCert, request time.Duration
	n := 0
	for b.Loop() {
		host := fmt.Sprintf("b%d.app.test", n)
		start := time.Now()
		e.expose(b, host, e.app, store.ModeTerminate)
		waitVerified(b, e, host, 30*time.Second)
		toCert += time.Since(start)

		start = time.Now()
		if got, _, err := e.get(b, plain, "https://"+host+"/"); err != nil || got.App == "" {
			b.Fatalf("HTTPS request to %s: %+v %v", host, got, err)
		}
		request += time.Since(start)
		n++
	}
	certMs := float64(toCert.Microseconds()) / 1000 / float64(n)
	reqMs := float64(request.Microseconds()) / 1000 / float64(n)
	b.ReportMetric(certMs, "ms/expose-to-cert")
	b.ReportMetric(reqMs, "ms/https-request")
	b.ReportMetric(certMs/reqMs, "x-baseline")
	fmt.Printf("expose -> valid certificate: %.0f ms (target < 5000 ms); baseline HTTPS request on a new connection: %.1f ms; ratio %.0fx (%d names)\n",
		certMs, reqMs, certMs/reqMs, n)
}

// waitVerified polls a TLS handshake through the cloud until the client,
// trusting only Pebble's roots, verifies host's certificate.
func waitVerified(b *testing.B, e *env, host string, limit time.Duration) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", e.cloud.HTTPSAddr, &tls.Config{ServerName: host, RootCAs: e.roots})
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("no verified certificate for %s within %s: %v", host, limit, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
