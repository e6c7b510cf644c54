package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/console"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
)

// TestConsoleBeyondLoopbackNeedsAPassword: without a password the console
// refuses to listen beyond loopback.
func TestConsoleBeyondLoopbackNeedsAPassword(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	ctx := context.Background()
	p, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Output: filepath.Join(t.TempDir(), "profile")})
	if err != nil {
		t.Fatal(err)
	}
	db := store.Open(p)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := agent.New(p, db, agent.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := console.New(a, console.Options{Listen: "0.0.0.0:8001", Log: log}); err == nil || !strings.Contains(err.Error(), "--set-password") {
		t.Fatalf("no password, listening beyond loopback: %v", err)
	}
}

// TestConsoleBeyondLoopbackNeedsALogin: with a password every page needs
// the login, forms need their CSRF token, and a wrong password gets
// nothing.
func TestConsoleBeyondLoopbackNeedsALogin(t *testing.T) {
	s := startSite(t, siteOptions{listen: "0.0.0.0:8001", password: true})
	b := s.browser()
	if a := b.get("/status.json", nil); a.status != http.StatusSeeOther || a.header.Get("Location") != "/login" {
		t.Fatalf("status.json without login: %d %s", a.status, a.header.Get("Location"))
	}
	if a := b.get("/login", nil); b.csrf == "" {
		t.Fatalf("login page has no CSRF token: %s", a.body)
	}
	if a := b.do(http.MethodPost, "/login", url.Values{"password": {password}}, nil); a.status != http.StatusForbidden && a.status != http.StatusBadRequest {
		t.Errorf("login without the CSRF token: %d", a.status)
	}
	if a := b.login("wrong passphrase"); a.status != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", a.status)
	}
	if b.loggedIn() {
		t.Fatal("a wrong password logged in")
	}
	if a := b.login(password); a.status != http.StatusSeeOther {
		t.Fatalf("right password: %d", a.status)
	}
	if !b.loggedIn() {
		t.Error("the right password did not log in")
	}
	if a := b.get("/", nil); !strings.Contains(a.body, `action="/logout"`) {
		t.Error("the dashboard has no logout button")
	}
}
