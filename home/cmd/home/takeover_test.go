package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"homeport.dev/home/internal/control"
	"homeport.dev/home/internal/hometest"
)

// TestSecondCopyOfAProfileTakesOverAndTheFirstStops runs one profile twice
// (a copy of its directory, as on a second machine): the second copy takes
// the tunnel over, the first says where the profile runs now and does not
// reconnect, so the two no longer take the tunnel from each other every
// few seconds. The user's say (sync-tunnels) takes it back; a foreground
// run that is replaced exits non-zero saying where the profile runs.
func TestSecondCopyOfAProfileTakesOverAndTheFirstStops(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := newUser(t)
	first := register(u, c, c.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "first"))
	u.must("--config", first, "domains", "add", "example.com")
	u.must("--config", first, "expose", "http", "web.example.com", "--to", web(t, "home"))
	second := filepath.Join(t.TempDir(), "second")
	if out, err := exec.Command("cp", "-a", first, second).CombinedOutput(); err != nil {
		t.Fatalf("copy the profile: %v %s", err, out)
	}

	_, stopFirst := u.console(first)
	u.waitUp(first, 1)
	u.console(second)
	u.waitUp(second, 1)
	st := u.waitTunnel(first, "replaced")
	if !strings.HasPrefix(st.Tunnel.RunningOn, "127.0.0.1:") || st.Tunnel.RunningSince.IsZero() {
		t.Errorf("the replaced copy says the profile runs on %q since %s, want the second copy's address and time", st.Tunnel.RunningOn, st.Tunnel.RunningSince)
	}
	if want := "this profile is running on " + st.Tunnel.RunningOn + " since "; !strings.HasPrefix(st.Tunnel.LastError, want) {
		t.Errorf("the replaced copy's error %q, want it to start with %q", st.Tunnel.LastError, want)
	}
	if out := u.must("--config", first, "status"); !strings.Contains(out, "tunnel: replaced") || !strings.Contains(out, "this profile is running on 127.0.0.1:") {
		t.Errorf("home status of the replaced copy:\n%s", out)
	}

	// No flapping: over 5 s (the first copy used to retry within 0.5 s and
	// take the tunnel back), no new SSH connection, and visitors get the
	// second copy all along.
	before := sshConnects(t, c)
	for range 25 {
		time.Sleep(200 * time.Millisecond) // the observation window: nothing to wait for
		if got, err := visit(t, c, "web.example.com"); err != nil || !strings.HasPrefix(got, "home") {
			t.Fatalf("visitors during the window: %q %v", got, err)
		}
	}
	if after := sshConnects(t, c); after != before {
		t.Errorf("homeport_ssh_connects_total went from %d to %d in 5 s: the copies flap", before, after)
	}
	if st := u.status(second); st.Tunnel.State != "connected" {
		t.Errorf("the second copy after the window: %+v", st.Tunnel)
	}
	if st := u.status(first); st.Tunnel.State != "replaced" {
		t.Errorf("the first copy after the window: %+v", st.Tunnel)
	}

	// The user's say: sync-tunnels takes the tunnel back.
	u.must("--config", first, "sync-tunnels")
	u.waitTunnel(first, "connected")
	u.waitTunnel(second, "replaced")
	stopFirst()

	// A foreground run that another copy replaces ends, non-zero.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fg := exec.CommandContext(ctx, homeBin, "--config", first, "sync-tunnels", "--foreground")
	fg.Env = append(fg.Environ(), "HOMEPORT_PROFILES="+u.profiles)
	var out strings.Builder
	fg.Stdout, fg.Stderr = &out, &out
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- fg.Wait() }()
	u.waitTunnel(first, "connected")
	u.must("--config", second, "sync-tunnels")
	select {
	case err := <-exited:
		if err == nil || !regexp.MustCompile(`this profile is running on 127\.0\.0\.1:\d+ since `).MatchString(out.String()) {
			t.Errorf("the replaced foreground run ended with %v, want non-zero and where the profile runs; output:\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the replaced foreground run is still running 20 s later; output:\n%s", out.String())
	}
	if st := u.status(second); st.Tunnel.State != "connected" {
		t.Errorf("the second copy after taking the tunnel back: %+v", st.Tunnel)
	}
}

// TestTrafficIsBackSoonAfterALongCloudOutage stops the cloud for longer than
// the old 30 s backoff cap: the home used to come back up to 30 s after the
// cloud (21 s after a 25 s outage); now it retries within 2 s while the
// cloud does not answer. (The retry schedule itself is asserted in
// internal/tunnel, TestUnreachableCloudIsRetriedWithinTheCap.)
func TestTrafficIsBackSoonAfterALongCloudOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over 40 s; skipped with -short")
	}
	t.Parallel()
	c := hometest.Start(t, hometest.Options{})
	u := newUser(t)
	profile := register(u, c, c.CreateUser(t, "alice").Token, filepath.Join(t.TempDir(), "p"))
	u.must("--config", profile, "domains", "add", "example.com")
	u.must("--config", profile, "expose", "http", "web.example.com", "--to", web(t, "home"))
	u.console(profile)
	u.waitUp(profile, 1)

	c.Kill(t)
	time.Sleep(35 * time.Second) // the outage itself: nothing to wait for but time
	c.Restart(t)                 // returns once /readyz answers
	ready := time.Now()
	deadline := ready.Add(30 * time.Second)
	for {
		got, err := visit(t, c, "web.example.com")
		if err == nil && strings.HasPrefix(got, "home") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no traffic 30 s after the cloud was ready: %q %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	back := time.Since(ready)
	t.Logf("traffic flows again %v after /readyz (outage 35 s)", back.Round(time.Millisecond))
	// The promise, with room for a loaded machine: the retries
	// come every 1-2 s (the old backoff measured 7-9 s here, up to 30 s).
	if back > 5*time.Second {
		t.Errorf("traffic back %v after the cloud was ready, want within 5 s (retries every 1-2 s while it was down)", back.Round(time.Millisecond))
	}
}

// status is the running agent's status of a profile.
func (u *user) status(profile string) control.Status {
	u.t.Helper()
	var st control.Status
	out := u.must("--config", profile, "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		u.t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

// waitTunnel waits (bounded) until the profile's tunnel is in state.
func (u *user) waitTunnel(profile, state string) control.Status {
	u.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := u.status(profile)
		if st.Tunnel.State == state {
			return st
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("%s: tunnel not %s within 15 s: %+v", profile, state, st.Tunnel)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sshConnects is the cloud's homeport_ssh_connects_total.
func sshConnects(t *testing.T, c *hometest.Cloud) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^homeport_ssh_connects_total (\d+)$`).FindStringSubmatch(metrics(t, c))
	if m == nil {
		t.Fatal("no homeport_ssh_connects_total in the cloud's metrics")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
