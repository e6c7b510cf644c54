package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
)

// TestCloudAnswersOnlyItsOwnNames: a page whose name an attacker rebinds to
// the cloud's address reaches it with its own name in Host; the cloud
// refuses it, for the web UI (no page, no CSRF token) and the API alike,
// and answers to --public-host/--api-host, localhost and IP addresses.
// Probes answer any name.
func TestCloudAnswersOnlyItsOwnNames(t *testing.T) {
	e := newEnv(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(e.url, "http://"), ":")
	b := e.browser()
	for _, host := range []string{"evil.example", "evil.example:" + port, "cloud.example.net.evil.example", "127.0.0.1.nip.io:" + port} {
		for _, path := range []string{"/", "/login", "/signup"} {
			req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
			req.Host = host
			req.Header.Set("Accept", "text/html")
			status, page := b.do(req)
			if status != http.StatusForbidden || strings.Contains(page, `name="_csrf"`) || !strings.Contains(page, "does not answer to the name") {
				t.Errorf("GET %s with Host %s = %d, want 403 naming the rule:\n%s", path, host, status, page)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/auth/token", strings.NewReader(`{"username":"bob","password":"guess"}`))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env proto.ErrorEnvelope
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || err != nil || env.Error.Code != proto.CodeForbidden {
			t.Errorf("POST /api/v1/auth/token with Host %s = %d %+v, want the JSON 403", host, resp.StatusCode, env)
		}
	}
	for _, host := range []string{"cloud.example.net", "CLOUD.example.net:443", "localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "192.0.2.10"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/login", nil)
		req.Host = host
		if status, page := b.do(req); status != http.StatusOK || !strings.Contains(page, `name="_csrf"`) {
			t.Errorf("GET /login with Host %s = %d, want the login form", host, status)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		req.Host = "cloud-container:8000"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden {
			t.Errorf("probe %s by another name = %d", path, resp.StatusCode)
		}
	}
}

// TestCloudRefusesCrossOriginForms: a form posted to the web UI from
// another site (by Origin, Referer or Sec-Fetch-Site) changes nothing, even
// with the victim's session and a valid CSRF token; the cloud's own pages
// still work, by the host they were loaded from or by the cloud's name.
func TestCloudRefusesCrossOriginForms(t *testing.T) {
	e := newEnv(t)
	bob := e.user("bob", true, false)
	b := e.browser()
	b.login("bob")
	_, port, _ := strings.Cut(strings.TrimPrefix(e.url, "http://"), ":")
	post := func(name string, header map[string]string) int {
		t.Helper()
		b.get("/dashboard")
		form := url.Values{"name": {name}, "_csrf": {b.csrf}}
		req, _ := http.NewRequest(http.MethodPost, e.url+"/tokens", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		status, _ := b.do(req)
		return status
	}
	refused := map[string]map[string]string{
		"evil":      {"Origin": "http://evil.example"},
		"null":      {"Origin": "null"},
		"otherport": {"Origin": "http://127.0.0.1:1"},
		"attackip":  {"Origin": "http://192.0.2.66:" + port},
		"referer":   {"Referer": "https://evil.example/page"},
		"crosssite": {"Sec-Fetch-Site": "cross-site"},
		"suffix":    {"Origin": "https://cloud.example.net.evil.example"},
	}
	for name, header := range refused {
		if status := post(name, header); status != http.StatusForbidden {
			t.Errorf("POST /tokens with %v = %d, want 403", header, status)
		}
	}
	allowed := map[string]map[string]string{
		"own":   {"Origin": e.url, "Sec-Fetch-Site": "same-origin"},
		"named": {"Origin": "https://cloud.example.net"},
		"plain": {},
	}
	for name, header := range allowed {
		if status := post(name, header); status != http.StatusCreated {
			t.Errorf("POST /tokens with %v = %d, want 201", header, status)
		}
	}
	tokens, err := e.app.Accounts.Tokens(context.Background(), bob)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tk := range tokens {
		names = append(names, tk.Name)
		if _, bad := refused[tk.Name]; bad {
			t.Errorf("the refused form from %v created token %s", refused[tk.Name], tk.Name)
		}
	}
	if len(tokens) != len(allowed) {
		t.Errorf("tokens %v; want one per allowed form", names)
	}
}

// TestCloudSessionExpires: a session past its lifetime opens nothing, and
// its cookie is cleared.
func TestCloudSessionExpires(t *testing.T) {
	e := newEnv(t)
	e.user("bob", true, false)
	b := e.browser()
	b.login("bob")
	if err := e.app.DB.Model(&store.Session{}).Where("1 = 1").Update("expires_at", time.Now().Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	status, page := b.get("/dashboard")
	must(t, "dashboard with an expired session", status, page, 200, "<h1>Log in</h1>")
	if b.cookie("homeport_session") != "" {
		t.Error("the expired session's cookie was kept")
	}
}
