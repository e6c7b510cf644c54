package web_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"homeport.dev/cloud/internal/cloudtest"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/config"
	"homeport.dev/cloud/internal/serve"
	"homeport.dev/cloud/internal/store"
)

// env is a real cloud (API and web UI on one router) on a real HTTP server
// over a fresh database.
type env struct {
	t   *testing.T
	app *serve.App
	url string
}

// newEnv starts a cloud; flags are added to the test's own.
func newEnv(t *testing.T, flags ...string) *env {
	t.Helper()
	cfg, err := config.Parse(append([]string{"--data", t.TempDir(), "--api-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:8022",
		"--public-host", "cloud.example.net", "--haproxy", "off", "--auth-rate", "1000", "--log-level", "error", "--shape-dev", cloudtest.ShapeDev(t)},
		append(cloudtest.DBArgs(t), flags...)...))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := serve.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.API)
	t.Cleanup(func() { srv.Close(); app.Close() })
	return &env{t: t, app: app, url: srv.URL}
}

// user creates an account directly in the store; its password is
// "password-" + name.
func (e *env) user(name string, active, admin bool) store.User {
	e.t.Helper()
	u, err := e.app.Accounts.Create(context.Background(), account.NewUser{
		Username: name, Email: name + "@example.com", Password: "password-" + name, Active: active, Admin: admin,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// browser is an HTTP client with a cookie jar that remembers the CSRF token
// of the last page it saw, as a browser's forms would.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, c: &http.Client{Jar: jar}}
}

var csrfRE = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)

// get fetches a page and returns the final status and the page's text.
func (b *browser) get(path string) (int, string) {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.url+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	return b.do(req)
}

// post submits a form with the CSRF token of the last page seen.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.e.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("_csrf", b.csrf)
	return b.postRaw(path, f)
}

// postRaw submits a form as given, without adding a CSRF token.
func (b *browser) postRaw(path string, form url.Values) (int, string) {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	return b.do(req)
}

func (b *browser) do(req *http.Request) (int, string) {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, html.UnescapeString(string(body))
}

// claimHome claims a home in the web UI for name, logged in with b, and
// returns it, the only home name has.
func (b *browser) claimHome(name string) store.Home {
	b.e.t.Helper()
	b.post("/homes", url.Values{"public_key": {newKey(b.e.t)}})
	u, err := b.e.app.Accounts.User(context.Background(), name)
	if err != nil {
		b.e.t.Fatal(err)
	}
	hs, err := b.e.app.Homes.List(context.Background(), u)
	if err != nil || len(hs) != 1 {
		b.e.t.Fatalf("homes %v %v", hs, err)
	}
	return hs[0]
}

// login logs in through the form and fails the test unless it lands on the
// dashboard.
func (b *browser) login(name string) string {
	b.e.t.Helper()
	b.get("/login")
	status, page := b.post("/login", url.Values{"username": {name}, "password": {"password-" + name}})
	if status != http.StatusOK || !strings.Contains(page, "<h1>Dashboard</h1>") {
		b.e.t.Fatalf("login as %s = %d, want the dashboard:\n%s", name, status, page)
	}
	return page
}

// cookie returns the value of the named cookie the browser holds for the
// server.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.url)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// newKey returns a fresh ed25519 public key in authorized_keys form.
func newKey(t *testing.T) string {
	_, pub := cloudtest.NewKey(t)
	return pub
}

// must fails the test unless the answer has status want and contains every
// one of texts.
func must(t *testing.T, what string, status int, page string, want int, texts ...string) {
	t.Helper()
	if status != want {
		t.Fatalf("%s = %d, want %d:\n%s", what, status, want, page)
	}
	for _, s := range texts {
		if !strings.Contains(page, s) {
			t.Fatalf("%s: page lacks %q:\n%s", what, s, page)
		}
	}
}
