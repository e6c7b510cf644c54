package agent_test

import (
	"context"
	"os"
	"regexp"
	"testing"
	"time"

	"homeport.dev/home/internal/agent"
)

// TestDisconnectAllHoldsUntilTheUserReconnects: after "Disconnect all", a
// hand edit of config.yaml that the agent picks up on its own does not
// bring the tunnel back; the user's Reload does. (The console's Chromium
// test saw the tunnel reconnect right after Disconnect all, when the poll
// noticed the file the console had just written.)
func TestDisconnectAllHoldsUntilTheUserReconnects(t *testing.T) {
	e := newEnv(t, nil)
	e.start(t, agent.Options{})
	e.expose(t, "a.app.test", e.app, "terminate")
	waitTunnel(t, e.agent, "connected")

	ctx := context.Background()
	if err := e.agent.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	// A second forward, indented as the file's list is.
	item := regexp.MustCompile(`(?m)^( *)- scheme:`).FindStringSubmatch(string(raw))
	if item == nil {
		t.Fatalf("no forward in config.yaml:\n%s", raw)
	}
	edited := string(raw) + item[1] + "- {scheme: http, host: b.app.test, target: \"" + e.app + "\"}\n"
	if err := os.WriteFile(e.p.ConfigPath(), []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	// The readiness signal: the agent has read the edit (two forwards).
	deadline := time.Now().Add(15 * time.Second)
	for len(e.agent.Status().Forwards) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the agent never read the hand edit: %+v", e.agent.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := e.agent.Status().Tunnel.State; st != "stopped" {
		t.Fatalf("after Disconnect all, a hand edit brought the tunnel back: %s", st)
	}
	if err := e.agent.Reload(ctx); err != nil {
		t.Logf("reload: %v", err)
	}
	waitTunnel(t, e.agent, "connected")
}

func waitTunnel(t *testing.T, a *agent.Agent, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for a.Status().Tunnel.State != state {
		if time.Now().After(deadline) {
			t.Fatalf("tunnel never %s: %+v", state, a.Status().Tunnel)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
