package serve_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
	"homeport.dev/proto/testnet"
)

// dyingListener fails for good on the first Accept after die is closed.
type dyingListener struct {
	net.Listener
	die chan struct{}
}

var errDead = errors.New("listener broke for good")

func (d *dyingListener) Accept() (net.Conn, error) {
	<-d.die
	return nil, errDead
}

// TestListenerDyingForGoodEndsRun: when a listener fails with a permanent
// error, Run returns it (so `cloud serve` exits non-zero and systemd or
// compose restart it) instead of hanging with a dead endpoint, which it did
// when it waited for its goroutines before stopping them.
func TestListenerDyingForGoodEndsRun(t *testing.T) {
	tunnels, tcp := testnet.CloudPorts(t, 2, 16, 2)
	cfg, err := config.Parse([]string{"--data", t.TempDir(), "--api-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0",
		"--haproxy", "off", "--shape-dev", cloudtest.ShapeDev(t), "--home-slots", "2", "--tunnel-port-base", strconv.Itoa(tunnels.First),
		"--tcp-ports", tcp.String(), "--tcp-block", "2", "--metrics-addr", "off", "--dev"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := serve.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	die := make(chan struct{})
	app.WrapSSHListener(func(ln net.Listener) net.Listener { return &dyingListener{Listener: ln, die: die} })
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- app.Run(ctx, func(serve.Addrs) { close(die) }) }()
	select {
	case err := <-done:
		if !errors.Is(err, errDead) {
			t.Fatalf("Run = %v, want the listener's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its SSH listener died for good")
	}
}
