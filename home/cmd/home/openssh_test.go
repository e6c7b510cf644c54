package main

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/hometest"
	"homeport.dev/proto"
	"homeport.dev/proto/testnet"
)

// TestPlainOpenSSHReachesAnOrdinaryApp: a user without the agent claims a
// home, maps a name with proxy_protocol off and runs the documented
// `ssh -N -R` line; an ordinary HTTP app behind it answers visitors. The
// same app behind a mapping with the PROXY header on gets the header as
// its first bytes and refuses the request: the switch is what makes the
// plain OpenSSH path work. (With --reuse-home-connections, the default,
// HTTP carries no PROXY header either way; the switch matters for HTTP with
// it off, as here, and for TLS and TCP always.)
func TestPlainOpenSSHReachesAnOrdinaryApp(t *testing.T) {
	testnet.RequireCommand(t, "ssh", "run deploy/install-deps.sh (apt-get install openssh-client)")
	c := hometest.Start(t, hometest.Options{Args: []string{"--reuse-home-connections=false"}})
	alice := c.CreateUser(t, "alice")
	h := c.ClaimHome(t, alice)
	h.AddBaseDomain(t, "example.com")
	off := false
	raw := h.Map(t, proto.MappingRequest{Scheme: "http", Host: "raw.example.com", ProxyProtocol: &off})
	if raw.ProxyProtocol {
		t.Fatalf("mapping created with proxy_protocol false says %+v", raw)
	}
	with := h.Map(t, proto.MappingRequest{Scheme: "http", Host: "proxied.example.com"})
	if !with.ProxyProtocol {
		t.Fatalf("a mapping's PROXY header is on by default: %+v", with)
	}
	app := web(t, "plain-app")
	_, port, _ := net.SplitHostPort(h.SSHAddr())
	ssh := exec.Command("ssh", "-F", "none", "-N", "-p", port, "-i", h.KeyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+h.KnownHosts(t), "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR",
		"-R", "127.0.0.1:"+strconv.Itoa(raw.TunnelPort)+":"+app,
		"-R", "127.0.0.1:"+strconv.Itoa(with.TunnelPort)+":"+app,
		h.Slug+"@"+h.SSH.Host)
	var stderr strings.Builder
	ssh.Stderr = &stderr
	if err := ssh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ssh.Process.Kill(); ssh.Wait() })

	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := visit(t, c, "raw.example.com")
		if err == nil {
			if !strings.HasPrefix(got, "plain-app xff=127.0.0.1") {
				t.Fatalf("the app behind ssh -R answered %q", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("raw.example.com through ssh -R: %v (ssh: %s)", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := visit(t, c, "proxied.example.com"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("an app that gets the PROXY header answered %v; the contrast this test rests on is gone", err)
	}
}
