package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"homeport.dev/cloud/internal/cloudtest"
	"homeport.dev/proto"
)

// TestUsersLifecycleByTheCLI runs `cloud users invite|role|reset-password|
// delete` as their own processes against a running cloud's database: the
// links they print work once through the cloud, the last admin keeps the
// role, and a deleted user's home goes offline at once (SSH connection
// closed, route withdrawn, key and token refused).
func TestUsersLifecycleByTheCLI(t *testing.T) {
	bin := cloudtest.Binary(t)
	c := cloudtest.Start(t, cloudtest.Options{HAProxy: true})
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(append([]string{"users"}, args...), "--data", c.Dir)...).CombinedOutput()
		return string(out), err
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("cloud users %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	root := c.NewHome(t, "root")
	mustCLI("approve", "root")
	mustCLI("role", "root", "admin")
	admin := c.Token(t, root.User)
	out, err := cli("role", "root", "operator")
	if err == nil || !strings.Contains(out, "last active admin") {
		t.Fatalf("demoting the last admin: %v\n%s", err, out)
	}

	// An invitation printed by the CLI, accepted through the API.
	out = mustCLI("invite", "--role", "viewer", "--url", c.APIURL)
	link := regexp.MustCompile(`/invite/(hpi_[a-z0-9]+)`).FindStringSubmatch(out)
	if link == nil || !strings.Contains(out, c.APIURL+"/invite/") {
		t.Fatalf("invite printed no link:\n%s", out)
	}
	accept := proto.AcceptInvitationRequest{Token: link[1], Username: "vera", Email: "vera@example.com", Password: "a long passphrase"}
	if st, body := call(t, c, "", "POST", "/api/v1/auth/invitations/accept", accept); st != http.StatusCreated || !strings.Contains(string(body), `"role":"viewer"`) {
		t.Fatalf("accept: %d %s", st, body)
	}
	if st, _ := call(t, c, "", "POST", "/api/v1/auth/invitations/accept", accept); st != http.StatusConflict {
		t.Fatalf("second accept: %d, want 409", st)
	}

	// A reset link printed by the CLI.
	out = mustCLI("reset-password", "vera")
	reset := regexp.MustCompile(`/reset/(hpr_[a-z0-9]+)`).FindStringSubmatch(out)
	if reset == nil {
		t.Fatalf("reset-password printed no link:\n%s", out)
	}
	if st, body := call(t, c, "", "POST", "/api/v1/auth/password-reset", proto.ResetPasswordRequest{Token: reset[1], Password: "another passphrase"}); st != http.StatusOK {
		t.Fatalf("reset: %d %s", st, body)
	}

	// A deleted user's home goes offline.
	h := c.NewHome(t, "alice")
	mustCLI("approve", "alice")
	token := c.Token(t, h.User)
	st, body := call(t, c, token, "POST", "/api/v1/homes/"+h.Slug+"/base-domains", proto.BaseDomainRequest{Domain: "alice.test"})
	if st != http.StatusCreated {
		t.Fatalf("base domain: %d %s", st, body)
	}
	var m proto.Mapping
	st, body = call(t, c, token, "POST", "/api/v1/homes/"+h.Slug+"/mappings", proto.MappingRequest{Scheme: "http", Host: "app.alice.test"})
	if st != http.StatusCreated {
		t.Fatalf("mapping: %d %s", st, body)
	}
	json.Unmarshal(body, &m)
	home := connect(t, c, h, m.TunnelPort)
	waitFor(t, "the route to serve", func() bool { return visit(t, c, "app.alice.test") == "200 hello from alice" })
	unknown := visit(t, c, "nobody.alice.test")

	mustCLI("delete", "alice")
	select {
	case <-home.closed:
	case <-time.After(1500 * time.Millisecond): // the watcher polls every 250 ms; the rest is slack
		t.Fatal("the deleted user's SSH connection is still open")
	}
	waitFor(t, "HAProxy to drop the route", func() bool { return liveRoute(t, c, admin, "app.alice.test") == "" })
	if got := visit(t, c, "app.alice.test"); got != unknown {
		t.Fatalf("a visitor of the deleted user's name gets %q, not %q", got, unknown)
	}
	if _, err := c.Dial(h); err == nil {
		t.Fatal("the deleted user's key logged in")
	}
	if st, _ := call(t, c, token, "GET", "/api/v1/me", nil); st != http.StatusUnauthorized {
		t.Fatalf("the deleted user's token: %d, want 401", st)
	}
	if _, err := c.App.Accounts.User(context.Background(), "alice"); err == nil {
		t.Fatal("alice still exists")
	}
	out = mustCLI("list")
	if strings.Contains(out, "alice") || !strings.Contains(out, "vera") {
		t.Fatalf("users list after the deletion:\n%s", out)
	}
}
