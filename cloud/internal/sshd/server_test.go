package sshd_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// cloud is a running cloud (API + SSH endpoint) on loopback.
type cloud struct {
	app       *serve.App
	sshAddr   string
	apiAddr   string
	hostKey   string
	dir       string
	knownHost string
}

// freeBlockBase finds a tunnel-port base whose first blocks are free, so
// parallel test packages do not collide on fixed ports.
func freeBlockBase(t *testing.T) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		base := p - p%16
		if base+64 > 65535 || base < 1024 {
			continue
		}
		ok := true
		for q := base; q < base+64 && ok; q++ {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q)); err != nil {
				ok = false
			} else {
				l.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port block")
	return 0
}

func startCloud(t *testing.T) *cloud {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse([]string{"--data", dir, "--api-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0",
		"--public-host", "127.0.0.1", "--haproxy", "off", "--home-slots", "4", "--homes-per-user", "2",
		"--tunnel-port-base", fmt.Sprint(freeBlockBase(t)), "--log-level", "error"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := serve.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	t.Cleanup(func() {
		cancel()
		<-done
		app.Close()
	})
	signer, err := os.ReadFile(cfg.HostKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	hk, err := ssh.ParsePrivateKey(signer)
	if err != nil {
		t.Fatal(err)
	}
	c := &cloud{app: app, sshAddr: addrs.SSH.String(), apiAddr: addrs.API.String(), dir: dir,
		hostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hk.PublicKey())))}
	_, port, _ := net.SplitHostPort(c.sshAddr)
	c.knownHost = filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(c.knownHost, []byte(fmt.Sprintf("[127.0.0.1]:%s %s\n", port, c.hostKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// testHome is a claimed home with its private key on disk.
type testHome struct {
	store.Home
	keyPath string
	signer  ssh.Signer
	ports   proto.PortRange
}

func (c *cloud) newHome(t *testing.T, user string) testHome {
	t.Helper()
	ctx := context.Background()
	u, err := c.app.Accounts.User(ctx, user)
	if err != nil {
		u, err = c.app.Accounts.Create(ctx, account.NewUser{Username: user, Email: user + "@example.com", Password: "password-" + user, Active: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := ssh.NewPublicKey(pub)
	h, err := c.app.Homes.Claim(ctx, u, string(ssh.MarshalAuthorizedKey(sp)))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := ssh.MarshalPrivateKey(priv, "")
	path := filepath.Join(c.dir, h.Slug+".key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	return testHome{Home: h, keyPath: path, signer: signer, ports: c.app.Homes.Layout().TunnelPorts(h.Slot)}
}

// sshCmd builds an OpenSSH client command against the cloud.
func (c *cloud) sshCmd(h testHome, user string, args ...string) *exec.Cmd {
	_, port, _ := net.SplitHostPort(c.sshAddr)
	base := []string{"-F", "none", "-p", port, "-i", h.keyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + c.knownHost, "-o", "ConnectTimeout=5",
		"-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR", "-l", user}
	return exec.Command("ssh", append(append(base, args...), "127.0.0.1")...)
}

// echoServer listens on loopback and answers every line with "echo: line".
func echoServer(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "echo: %s\n", sc.Text())
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// roundTrip sends one line to 127.0.0.1:port and returns the answer.
func roundTrip(port int) (string, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintln(c, "ping"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// eventually polls cond every 20 ms until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func needSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("OpenSSH client (ssh) not installed: run deploy/install-deps.sh")
	}
}

func TestOpenSSHForwardsOnItsOwnPortOnly(t *testing.T) {
	needSSH(t)
	c := startCloud(t)
	h := c.newHome(t, "alice")
	other := c.newHome(t, "bob")
	svc := echoServer(t)

	ok := c.sshCmd(h, h.Slug, "-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", h.ports.First, svc))
	var stderr strings.Builder
	ok.Stderr = &stderr
	if err := ok.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ok.Process.Kill(); ok.Wait() })
	eventually(t, 10*time.Second, "forward up", func() bool {
		got, err := roundTrip(h.ports.First)
		return err == nil && got == "echo: ping"
	})
	if !c.app.SSH.ForwardUp(h.ID, h.ports.First) {
		t.Errorf("ForwardUp is false while the forward works")
	}

	refused := map[string][]string{
		"another home's port":  {"-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", other.ports.First, svc)},
		"a port outside every": {"-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", 1080, svc)},
		"a shell command":      {"whoami"},
		"a shell":              {"-T"},
	}
	for name, args := range refused {
		cmd := c.sshCmd(h, h.Slug, args...)
		out, err := runFor(cmd, 10*time.Second)
		if err == nil {
			t.Errorf("%s: ssh succeeded: %s", name, out)
		}
		if strings.Contains(out, h.Slug) && name == "a shell command" {
			t.Errorf("whoami ran: %s", out)
		}
	}
	// The other home's port stayed closed.
	if _, err := roundTrip(other.ports.First); err == nil {
		t.Errorf("another home's port was opened")
	}
}

func TestOpenSSHLocalForwardToCloudPortsIsRefused(t *testing.T) {
	needSSH(t)
	c := startCloud(t)
	h := c.newHome(t, "alice")
	_, apiPort, _ := net.SplitHostPort(c.apiAddr)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	local := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := c.sshCmd(h, h.Slug, "-N", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%s", local, apiPort))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(t, 10*time.Second, "local listener", func() bool {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.0\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(conn)
	if strings.Contains(string(b), "200") || strings.Contains(string(b), "ok") {
		t.Errorf("ssh -L reached the cloud's API: %q", b)
	}
}

func TestUnknownKeyAndWrongUserAreRefused(t *testing.T) {
	needSSH(t)
	c := startCloud(t)
	h := c.newHome(t, "alice")
	other := c.newHome(t, "bob")
	stranger := h
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_ = pub
	block, _ := ssh.MarshalPrivateKey(priv, "")
	stranger.keyPath = filepath.Join(c.dir, "stranger.key")
	os.WriteFile(stranger.keyPath, pem.EncodeToMemory(block), 0o600)

	for name, cmd := range map[string]*exec.Cmd{
		"unknown key":            c.sshCmd(stranger, h.Slug, "-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", h.ports.First)),
		"another home's name":    c.sshCmd(h, other.Slug, "-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", other.ports.First)),
		"a name that is no home": c.sshCmd(h, "root", "-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", h.ports.First)),
	} {
		out, err := runFor(cmd, 10*time.Second)
		if err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("%s: err=%v output=%q, want Permission denied", name, err, out)
		}
	}
}

func TestReconnectTakesOverPortsAndReleaseDisconnects(t *testing.T) {
	c := startCloud(t)
	h := c.newHome(t, "alice")
	svc := echoServer(t)
	dial := func() *ssh.Client {
		cl, err := ssh.Dial("tcp", c.sshAddr, &ssh.ClientConfig{
			User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.signer)},
			HostKeyCallback: func(string, net.Addr, ssh.PublicKey) error { return nil }, Timeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	serveForward := func(cl *ssh.Client) {
		ln, err := cl.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", h.ports.First))
		if err != nil {
			t.Fatalf("forward: %v", err)
		}
		go func() {
			for {
				in, err := ln.Accept()
				if err != nil {
					return
				}
				out, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", svc))
				if err != nil {
					in.Close()
					continue
				}
				go func() { io.Copy(out, in); out.Close() }()
				go func() { io.Copy(in, out); in.Close() }()
			}
		}()
	}
	first := dial()
	serveForward(first)
	if got, err := roundTrip(h.ports.First); err != nil || got != "echo: ping" {
		t.Fatalf("first connection: %q %v", got, err)
	}
	// A second connection of the same home takes the port over at once.
	second := dial()
	serveForward(second)
	if got, err := roundTrip(h.ports.First); err != nil || got != "echo: ping" {
		t.Fatalf("after takeover: %q %v", got, err)
	}
	if err := first.Wait(); err == nil {
		t.Log("first connection closed cleanly")
	}
	// Releasing the home closes its live connection within a second.
	u, _ := c.app.Accounts.User(context.Background(), "alice")
	home, _ := c.app.Homes.Get(context.Background(), u, h.Slug)
	start := time.Now()
	if err := c.app.Homes.Release(context.Background(), home); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatalf("connection still open %v after release", time.Since(start))
	}
	if _, err := roundTrip(h.ports.First); err == nil {
		t.Errorf("the released home's port still answers")
	}
}

func runFor(cmd *exec.Cmd, d time.Duration) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return out.String(), nil // still running = it was accepted
	}
}
