package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// TestSSHEndpointOutlivesFdExhaustion runs the real binary with a small
// open-files limit, takes every descriptor it has with idle API
// connections, and checks that the SSH endpoint, which used to give up on
// the first EMFILE (every home dropped until a manual restart), accepts
// logins again by itself once descriptors are free, and that /readyz says
// so.
func TestSSHEndpointOutlivesFdExhaustion(t *testing.T) {
	testnet.RequireCommand(t, "prlimit", "util-linux's prlimit runs the cloud with a small open-files limit")
	bin := cloudtest.Binary(t)
	data := t.TempDir()
	create := exec.Command(bin, "users", "create", "alice", "--email", "alice@example.com", "--approved", "--data", data)
	create.Stdin = strings.NewReader("a long passphrase\n")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	tunnels, tcp := testnet.CloudPorts(t, 2, 16, 2)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	sshAddr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := exec.CommandContext(ctx, "prlimit", "--nofile=160:160", bin, "serve", "--data", data, "--dev",
		"--api-addr", apiAddr, "--ssh-addr", sshAddr, "--haproxy", "off", "--shape-dev", "off",
		"--home-slots", "2", "--tunnel-port-base", fmt.Sprint(tunnels.First), "--tcp-ports", tcp.String(), "--tcp-block", "2",
		"--auth-rate", "1000", "--metrics-addr", "off")
	stdout, _ := serve.StdoutPipe()
	stderrPipe, _ := serve.StderrPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	// The cloud's log, and whether it said its SSH endpoint ran out.
	var logMu sync.Mutex
	var logText strings.Builder
	var sawRetry atomic.Bool
	go func() {
		sc := bufio.NewScanner(stderrPipe)
		for sc.Scan() {
			logMu.Lock()
			logText.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), "SSH endpoint cannot accept connections, retrying") {
				sawRetry.Store(true)
			}
		}
	}()
	stderr := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return logText.String()
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	readyLine := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "cloud ready") {
				readyLine <- sc.Text()
			}
		}
	}()
	select {
	case <-readyLine:
	case err := <-exited:
		t.Fatalf("cloud serve exited: %v\n%s", err, stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("cloud serve not ready\n%s", stderr())
	}

	// A home to log in with.
	token := apiToken(t, apiAddr)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	var home proto.Home
	if code := apiCall(t, apiAddr, token, "POST", "/api/v1/homes", proto.ClaimHomeRequest{PublicKey: string(ssh.MarshalAuthorizedKey(signer.PublicKey()))}, &home); code != 201 {
		t.Fatalf("claim: %d", code)
	}
	// A login with a deadline on the whole handshake (ssh.Dial's Timeout
	// covers only the TCP connect, which the kernel completes even when the
	// cloud cannot accept).
	login := func() error {
		c, err := net.DialTimeout("tcp", sshAddr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		sc, chans, reqs, err := ssh.NewClientConn(c, sshAddr, &ssh.ClientConfig{User: home.Slug, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		if err != nil {
			return err
		}
		return ssh.NewClient(sc, chans, reqs).Close()
	}
	if err := login(); err != nil {
		t.Fatalf("login before the exhaustion: %v", err)
	}

	// Take every descriptor: idle API connections, until one is no longer
	// answered (the cloud cannot accept it).
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 400; i++ {
		c, err := net.DialTimeout("tcp", apiAddr, 2*time.Second)
		if err != nil {
			break
		}
		idle = append(idle, c)
	}
	// Logins now meet an endpoint without descriptors (a descriptor freed
	// for an instant may still let one through: try until one did not).
	for i := 0; i < 10 && !sawRetry.Load(); i++ {
		login()
	}
	if !sawRetry.Load() {
		t.Fatalf("the SSH endpoint never ran out of descriptors: the test did not exhaust the cloud\n%s", stderr())
	}
	for _, c := range idle {
		c.Close()
	}
	idle = nil

	// Descriptors are free again: logins work without a restart.
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("cloud serve exited after running out of descriptors: %v\n%s", err, stderr())
		default:
		}
		err := login()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login within 15 s of the descriptors coming back: %v\n%s", err, stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var health proto.Health
	apiCall(t, apiAddr, "", "GET", "/readyz", nil, &health)
	if health.Checks["ssh"] != "ok" {
		t.Errorf("/readyz ssh = %q after recovery, want ok (%+v)", health.Checks["ssh"], health)
	}
}

func apiToken(t *testing.T, apiAddr string) string {
	t.Helper()
	var tok proto.Token
	if code := apiCall(t, apiAddr, "", "POST", "/api/v1/auth/token", map[string]string{"username": "alice", "password": "a long passphrase"}, &tok); code != 200 && code != 201 {
		t.Fatalf("token: %d", code)
	}
	return tok.Token
}

func apiCall(t *testing.T, apiAddr, token, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+apiAddr+path, r)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}
