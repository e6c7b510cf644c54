package agent_test

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/config"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
	"homeport.dev/home/internal/tunnel"
)

// TestAgentFollowsAHomeMovedToAnotherEdge: a profile pinned to an SSH
// endpoint that now refuses the home (the edge it was moved away from)
// connects to the endpoint the cloud's API names, and pins that endpoint
// and its host key in config.yaml, so the next start goes there directly.
func TestAgentFollowsAHomeMovedToAnotherEdge(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, h, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Output: filepath.Join(t.TempDir(), "profile")})
	if err != nil {
		t.Fatal(err)
	}
	right := p.Cloud.SSH
	oldAddr, oldKey := hometest.RefusingEndpoint(t)
	host, port, _ := net.SplitHostPort(oldAddr)
	p.Cloud.SSH.Host, p.Cloud.SSH.HostKey = host, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(oldKey)))
	if p.Cloud.SSH.Port, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	p, err = config.Load(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(p, store.Open(p), agent.Options{Log: testLog(), Tunnel: tunnel.Config{MinBackoff: time.Minute, MaxBackoff: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	changes, unsubscribe := a.Subscribe()
	defer unsubscribe()
	deadline := time.After(15 * time.Second)
	for a.Status().Tunnel.State != "connected" {
		select {
		case <-changes:
		case <-deadline:
			t.Fatalf("home %s never connected at the endpoint the API names; tunnel %+v", h.Slug, a.Status().Tunnel)
		}
	}
	pinned, err := config.Load(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if pinned.Cloud.SSH.Host != right.Host || pinned.Cloud.SSH.Port != right.Port || pinned.Cloud.SSH.HostKey != right.HostKey {
		t.Errorf("config.yaml pins %s:%d, want the endpoint the API names, %s:%d, with its host key", pinned.Cloud.SSH.Host, pinned.Cloud.SSH.Port, right.Host, right.Port)
	}
}
