// Package cloudtest starts whole clouds for tests: real database, real API
// server, real SSH endpoint and, when asked, a real managed HAProxy, all on
// loopback with free ports.
package cloudtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// Cloud is a running cloud.
type Cloud struct {
	App       *serve.App
	Dir       string
	APIURL    string
	SSHAddr   string
	HostKey   string // authorized_keys line
	KnownHost string // a known_hosts file pinning HostKey
	HTTPAddr  string // public HTTP (HAProxy), when managed
	HTTPSAddr string // public HTTPS (HAProxy), when managed
	TCPPorts  proto.PortRange

	stop func()
	opts Options
}

// FreePort returns a free loopback port outside the ephemeral range.
func FreePort(t testing.TB) int { return testnet.FreePort(t) }

// Options shape a test cloud.
type Options struct {
	Dir     string   // reuse a data directory (restart tests); default a new temp dir
	HAProxy bool     // run a managed HAProxy (the test is skipped when haproxy is missing)
	Slots   int      // home slots; default 4
	Args    []string // more `cloud serve` flags

	restart  bool     // keep ports (Restart)
	ports    []string // the port flags chosen at first start
	shapeDev string   // the dummy link chosen at first start
}

// Start runs a cloud until the test ends (or Stop).
func Start(t testing.TB, o Options) *Cloud {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Slots == 0 {
		o.Slots = 4
	}
	c := &Cloud{Dir: o.Dir}
	if !o.restart {
		if !hasDB(o.Args) { // kept in o: a restart reopens the same database
			o.Args = append(slices.Clip(o.Args), DBArgs(t)...)
		}
		tunnels, tcp := testnet.CloudPorts(t, o.Slots, 16, 2)
		o.ports = []string{"--tunnel-port-base", fmt.Sprint(tunnels.First), "--tcp-ports", tcp.String()}
		if o.HAProxy {
			o.ports = append(o.ports, "--http-addr", fmt.Sprintf("127.0.0.1:%d", FreePort(t)), "--https-addr", fmt.Sprintf("127.0.0.1:%d", FreePort(t)))
		}
	}
	args := []string{"--data", o.Dir, "--api-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0",
		"--public-host", "127.0.0.1", "--home-slots", fmt.Sprint(o.Slots), "--homes-per-user", "2",
		"--tcp-block", "2", "--auth-rate", "1000", "--log-level", "error", "--metrics-addr", "127.0.0.1:0"}
	args = append(args, o.ports...)
	if o.HAProxy {
		RequireHAProxy(t)
		args = append(args, "--haproxy", "managed")
	} else {
		args = append(args, "--haproxy", "off")
	}
	if !slices.ContainsFunc(o.Args, func(a string) bool { return strings.HasPrefix(a, "--shape-dev") }) {
		if o.shapeDev == "" {
			o.shapeDev = ShapeDev(t)
		}
		args = append(args, "--shape-dev", o.shapeDev)
	}
	c.opts = o
	cfg, err := config.Parse(append(args, o.Args...))
	if err != nil {
		t.Fatal(err)
	}
	c.TCPPorts, c.HTTPAddr, c.HTTPSAddr = cfg.TCPPorts, cfg.HTTPAddr, cfg.HTTPSAddr
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("CLOUDTEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	app, err := serve.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan serve.Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, func(a serve.Addrs) { ready <- a }) }()
	var addrs serve.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	stopped := false
	c.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		app.Close()
	}
	t.Cleanup(c.Stop)
	c.App, c.APIURL, c.SSHAddr = app, "http://"+addrs.API.String(), addrs.SSH.String()
	if o.HAProxy {
		wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer wcancel()
		if err := c.WaitRoutes(wctx); err != nil {
			t.Fatalf("haproxy never took the routes: %v", err)
		}
	}
	b, err := os.ReadFile(cfg.HostKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	hk, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	c.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hk.PublicKey())))
	_, port, _ := net.SplitHostPort(c.SSHAddr)
	c.KnownHost = filepath.Join(o.Dir, "known_hosts")
	if err := os.WriteFile(c.KnownHost, []byte(fmt.Sprintf("[127.0.0.1]:%s %s\n", port, c.HostKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// Restart stops the cloud and starts it again on the same data directory
// and ports, as an operator restarting the service would.
func (c *Cloud) Restart(t testing.TB) *Cloud {
	t.Helper()
	c.Stop()
	o := c.opts
	o.restart = true
	return Start(t, o)
}

// Stop ends the cloud (idempotent; also runs at test cleanup).
func (c *Cloud) Stop() { c.stop() }

// WaitRoutes waits until HAProxy holds the database's routes.
func (c *Cloud) WaitRoutes(ctx context.Context) error {
	for {
		err := c.App.Routes.Check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RequireHAProxy skips the test, saying why, when haproxy is not installed.
func RequireHAProxy(t testing.TB) {
	t.Helper()
	testnet.RequireCommand(t, "haproxy", "run deploy/install-deps.sh (apt-get install haproxy)")
}

// Home is a claimed home with its private key on disk.
type Home struct {
	store.Home
	User    store.User
	KeyPath string
	Signer  ssh.Signer
	Tunnel  proto.PortRange
	TCP     proto.PortRange
}

// NewKey returns a fresh ed25519 key pair: the signer and the public key in
// authorized_keys form.
func NewKey(t testing.TB) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " test@home"
}

// NewHome claims a home for user (created active when missing).
func (c *Cloud) NewHome(t testing.TB, user string) Home {
	t.Helper()
	ctx := context.Background()
	u, err := c.App.Accounts.User(ctx, user)
	if err != nil {
		u, err = c.App.Accounts.Create(ctx, account.NewUser{Username: user, Email: user + "@example.com", Password: "password-" + user, Active: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	h, err := c.App.Homes.Claim(ctx, u, string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := ssh.MarshalPrivateKey(priv, "")
	path := filepath.Join(c.Dir, h.Slug+".key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	l := c.App.Homes.Layout()
	return Home{Home: h, User: u, KeyPath: path, Signer: signer, Tunnel: l.TunnelPorts(h.Slot), TCP: l.TCPPorts(h.Slot)}
}

// Token returns a new API token for user.
func (c *Cloud) Token(t testing.TB, user store.User) string {
	t.Helper()
	tok, err := c.App.Accounts.CreateToken(context.Background(), user, "test")
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// Dial logs h in to c's SSH endpoint as its home agent would, with the
// cloud's host key pinned.
func (c *Cloud) Dial(h Home) (*ssh.Client, error) {
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.HostKey))
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", c.SSHAddr, &ssh.ClientConfig{
		User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)}, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second,
	})
}

// Forward asks the cloud to forward port over cl (a home's connection) and
// runs handle for each visitor the cloud hands over, until the test ends.
func Forward(t testing.TB, cl *ssh.Client, port int, handle func(net.Conn)) {
	t.Helper()
	ln, err := cl.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("forward of port %d refused: %v", port, err)
	}
	testnet.Serve(t, ln, handle)
}
