package sshd_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"homeport.dev/proto/testnet"

	"golang.org/x/crypto/ssh"
	"homeport.dev/cloud/internal/cloudtest"
)

// sshCmd builds an OpenSSH client command against the cloud.
func sshCmd(c *cloudtest.Cloud, keyPath, user string, args ...string) *exec.Cmd {
	_, port, _ := net.SplitHostPort(c.SSHAddr)
	base := []string{"-F", "none", "-p", port, "-i", keyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + c.KnownHost, "-o", "ConnectTimeout=5",
		"-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR", "-l", user}
	return exec.Command("ssh", append(append(base, args...), "127.0.0.1")...)
}

// echoServer listens on loopback and answers every line with "echo: line".
func echoServer(t *testing.T) int {
	t.Helper()
	addr := testnet.Serve(t, testnet.Listen(t), func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			fmt.Fprintf(c, "echo: %s\n", sc.Text())
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
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
	testnet.RequireCommand(t, "ssh", "run deploy/install-deps.sh (apt-get install openssh-client)")
}

func TestOpenSSHForwardsOnItsOwnPortOnly(t *testing.T) {
	needSSH(t)
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	other := c.NewHome(t, "bob")
	svc := echoServer(t)

	ok := sshCmd(c, h.KeyPath, h.Slug, "-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", h.Tunnel.First, svc))
	var stderr strings.Builder
	ok.Stderr = &stderr
	if err := ok.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ok.Process.Kill(); ok.Wait() })
	eventually(t, 10*time.Second, "forward up", func() bool {
		got, err := roundTrip(h.Tunnel.First)
		return err == nil && got == "echo: ping"
	})
	if !c.App.SSH.ForwardUp(h.ID, h.Tunnel.First) {
		t.Errorf("ForwardUp is false while the forward works")
	}

	refused := map[string][]string{
		"another home's port":  {"-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", other.Tunnel.First, svc)},
		"a port outside every": {"-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", 1080, svc)},
		"a shell command":      {"whoami"},
		"a shell":              {"-T"},
	}
	for name, args := range refused {
		cmd := sshCmd(c, h.KeyPath, h.Slug, args...)
		out, err := runFor(cmd, 10*time.Second)
		if err == nil {
			t.Errorf("%s: ssh succeeded: %s", name, out)
		}
		if strings.Contains(out, h.Slug) && name == "a shell command" {
			t.Errorf("whoami ran: %s", out)
		}
	}
	// The other home's port stayed closed.
	if _, err := roundTrip(other.Tunnel.First); err == nil {
		t.Errorf("another home's port was opened")
	}
}

func TestOpenSSHLocalForwardToCloudPortsIsRefused(t *testing.T) {
	needSSH(t)
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	_, apiPort, _ := net.SplitHostPort(strings.TrimPrefix(c.APIURL, "http://"))
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	local := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := sshCmd(c, h.KeyPath, h.Slug, "-N", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%s", local, apiPort))
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
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	other := c.NewHome(t, "bob")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	stranger := filepath.Join(c.Dir, "stranger.key")
	os.WriteFile(stranger, pem.EncodeToMemory(block), 0o600)

	for name, cmd := range map[string]*exec.Cmd{
		"unknown key":            sshCmd(c, stranger, h.Slug, "-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", h.Tunnel.First)),
		"another home's name":    sshCmd(c, h.KeyPath, other.Slug, "-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", other.Tunnel.First)),
		"a name that is no home": sshCmd(c, h.KeyPath, "root", "-N", "-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", h.Tunnel.First)),
	} {
		out, err := runFor(cmd, 10*time.Second)
		if err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("%s: err=%v output=%q, want Permission denied", name, err, out)
		}
	}
}

func TestReconnectTakesOverPortsAndReleaseDisconnects(t *testing.T) {
	c := cloudtest.Start(t, cloudtest.Options{})
	h := c.NewHome(t, "alice")
	svc := echoServer(t)
	dial := func() *ssh.Client {
		cl, err := ssh.Dial("tcp", c.SSHAddr, &ssh.ClientConfig{
			User: h.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
			HostKeyCallback: func(string, net.Addr, ssh.PublicKey) error { return nil }, Timeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	serveForward := func(cl *ssh.Client) {
		ln, err := cl.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", h.Tunnel.First))
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
	if got, err := roundTrip(h.Tunnel.First); err != nil || got != "echo: ping" {
		t.Fatalf("first connection: %q %v", got, err)
	}
	// A second connection of the same home takes the port over at once.
	second := dial()
	serveForward(second)
	if got, err := roundTrip(h.Tunnel.First); err != nil || got != "echo: ping" {
		t.Fatalf("after takeover: %q %v", got, err)
	}
	if err := first.Wait(); err == nil {
		t.Log("first connection closed cleanly")
	}
	// Releasing the home closes its live connection within a second.
	start := time.Now()
	if err := c.App.Homes.Release(context.Background(), h.Home); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatalf("connection still open %v after release", time.Since(start))
	}
	if _, err := roundTrip(h.Tunnel.First); err == nil {
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
