package serve_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
	"homeport.dev/proto/testnet"
)

// A cloud whose name no ACME CA certifies (a single label, the default host
// name) serves plain HTTP, says so at start, and starts no TLS listener;
// Prometheus scrapes --metrics-addr without a token.
func TestPlainCloudWarnsAndServesMetricsAddr(t *testing.T) {
	// An external HAProxy: the public addresses are rendered, not bound.
	cfg, err := config.Parse([]string{"--data", t.TempDir(), "--haproxy", "external", "--haproxy-socket", "/nonexistent/admin.sock",
		"--api-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:18080", "--https-addr", "127.0.0.1:18443", "--public-host", "myserver", "--shape-dev", "off"})
	if err != nil {
		t.Fatal(err)
	}
	var logs testnet.Buffer
	app, err := serve.New(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan serve.Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, func(a serve.Addrs) { ready <- a }) }()
	var addrs serve.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	defer func() { cancel(); <-done }()
	if addrs.TLS != nil || app.TLS != nil {
		t.Errorf("a TLS listener for a single-label name: %v", addrs.TLS)
	}
	if !strings.Contains(logs.String(), "HTTPS is off: --api-host myserver is an IP address or a single label") {
		t.Errorf("no warning at start:\n%s", logs.String())
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addrs.Metrics.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("homeport_users ")) {
		t.Errorf("--metrics-addr: %s %.200s", resp.Status, b)
	}
	// Go's profiles are not served unless --debug-pprof asks for them.
	resp, err = c.Get("http://" + addrs.Metrics.String() + "/debug/pprof/heap")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct == "application/octet-stream" {
		t.Errorf("--metrics-addr serves a heap profile (%s) without --debug-pprof", ct)
	}
}
