package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"homeport.dev/home/internal/agent"
	"homeport.dev/home/internal/console"
	"homeport.dev/home/internal/hometest"
	"homeport.dev/home/internal/profile"
	"homeport.dev/home/internal/store"
)

// TestConsoleBeyondLoopbackNeedsALogin: without a password the console
// refuses to listen beyond loopback; with one, every page needs the login,
// forms need their CSRF token, and a wrong password gets nothing.
func TestConsoleBeyondLoopbackNeedsALogin(t *testing.T) {
	c := hometest.Start(t, hometest.Options{})
	u := c.CreateUser(t, "alice")
	ctx := context.Background()
	p, _, err := profile.Register(ctx, profile.RegisterOptions{Cloud: c.APIURL, Token: u.Token, Output: filepath.Join(t.TempDir(), "profile")})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, p.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := agent.New(p, db, agent.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := console.New(a, "0.0.0.0:8001", log); err == nil || !strings.Contains(err.Error(), "--set-password") {
		t.Fatalf("no password, listening beyond loopback: %v", err)
	}
	hash, err := console.HashPassword("a long passphrase")
	if err != nil {
		t.Fatal(err)
	}
	p.Console.PasswordHash = hash
	con, err := console.New(a, "0.0.0.0:8001", log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := client.Get(srv.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("status.json without login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	page, _ := client.Get(srv.URL + "/login")
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("login page has no CSRF token: %s", b)
	}
	post := func(form url.Values) int {
		resp, err := client.PostForm(srv.URL+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(url.Values{"password": {"a long passphrase"}}); st != http.StatusForbidden && st != http.StatusBadRequest {
		t.Errorf("login without the CSRF token: %d", st)
	}
	if st := post(url.Values{"password": {"wrong passphrase"}, "csrf": {string(m[1])}}); st != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", st)
	}
	if st := post(url.Values{"password": {"a long passphrase"}, "csrf": {string(m[1])}}); st != http.StatusSeeOther {
		t.Fatalf("right password: %d", st)
	}
	resp, err = client.Get(srv.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), p.Cloud.Home) {
		t.Errorf("after login: %d %s", resp.StatusCode, body)
	}
}
