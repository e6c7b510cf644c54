package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"homeport.dev/home/internal/hometest"
)

// TestStoppedHomeRecoversByItself freezes a running console with SIGSTOP for
// 60 s, long enough for the cloud to drop it as silent (45 s), then thaws
// it: the home must notice and reconnect with no user action.
func TestStoppedHomeRecoversByItself(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over a minute; skipped with -short")
	}
	t.Parallel()
	c := hometest.Start(t, hometest.Options{})
	u := newUser(t)
	profile := register(u, c, c.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "p"))
	u.must("--config", profile, "domains", "add", "example.com")
	u.must("--config", profile, "expose", "http", "web.example.com", "--to", web(t, "frozen"))
	u.console(profile)
	u.waitUp(profile, 1)

	pid := u.consoles[profile]
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Second) // the fault itself: nothing to wait for but time
	if _, err := visit(t, c, "web.example.com"); err == nil {
		t.Errorf("the route still worked while the home was stopped for 60 s")
	}
	thawed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := visit(t, c, "web.example.com")
		if err == nil && strings.HasPrefix(got, "frozen") {
			t.Logf("traffic flows again %v after SIGCONT", time.Since(thawed).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 20 s after SIGCONT: %q %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
