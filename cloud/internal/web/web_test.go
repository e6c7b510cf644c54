package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"homeport.dev/proto"
)

var secretRE = regexp.MustCompile(`hp_[a-z0-9]{20,}`)

// TestJourney walks one user from signup to logout through the pages, with
// an admin approving them, and checks what they would notice on the way.
func TestJourney(t *testing.T) {
	e := newEnv(t)
	e.user("root", true, true)
	ctx := context.Background()

	alice := e.browser()
	status, page := alice.get("/")
	must(t, "landing", status, page, 200, "homeport", `href="/signup"`, `href="/login"`)

	alice.get("/signup")
	status, page = alice.post("/signup", url.Values{"username": {"alice"}, "email": {"alice@example.com"}, "password": {"password-alice"}})
	must(t, "signup", status, page, http.StatusCreated, "an admin must approve your account")

	status, page = alice.post("/login", url.Values{"username": {"alice"}, "password": {"password-alice"}})
	must(t, "login while inactive", status, page, http.StatusForbidden, "waiting for an admin to approve", `value="alice"`)
	if alice.cookie("homeport_session") != "" {
		t.Fatal("an inactive user got a session cookie")
	}

	root := e.browser()
	root.login("root")
	status, page = root.get("/admin/users")
	must(t, "admin users", status, page, 200, "<td>alice</td>", "pending")
	if strings.Index(page, "<td>alice</td>") > strings.Index(page, "<td>root</td>") {
		t.Error("pending users are not listed first")
	}
	status, page = root.post("/admin/users/alice/approve", nil)
	must(t, "approve", status, page, 200, "User approved")

	page = alice.login("alice")
	must(t, "first dashboard", 200, page, 200, "Claim a home")

	// Claim a home.
	status, page = alice.post("/homes", url.Values{"public_key": {newKey(t)}})
	must(t, "claim", status, page, 200, "Your home is claimed", e.app.API.SSH.HostKey)
	u, err := e.app.Accounts.User(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	hs, err := e.app.Homes.List(ctx, u)
	if err != nil || len(hs) != 1 {
		t.Fatalf("alice's homes = %v, %v; want one", hs, err)
	}
	slug := hs[0].Slug
	layout := e.app.Homes.Layout()
	must(t, "home facts", status, page, 200, "Home <code>"+slug+"</code>", slug+"@cloud.example.net",
		layout.TunnelPorts(hs[0].Slot).String(), layout.TCPPorts(hs[0].Slot).String(), "no limit")

	// A refused form shows the service's message with the input kept.
	status, page = alice.post("/homes/"+slug+"/domains", url.Values{"domain": {"co.uk"}})
	must(t, "public suffix as base domain", status, page, http.StatusBadRequest, `class="error"`, `value="co.uk"`)

	status, page = alice.post("/homes/"+slug+"/domains", url.Values{"domain": {"Example.com"}})
	must(t, "add base domain", status, page, 200, "Base domain added", `<span class="domain">example.com</span>`)

	status, page = alice.post("/homes/"+slug+"/mappings", url.Values{"scheme": {"https"}, "host": {"app.example.com"}})
	must(t, "add mapping", status, page, 200, "Mapping added", "https://app.example.com", "no_tunnel")

	status, page = alice.post("/homes/"+slug+"/mappings", url.Values{"scheme": {"https"}, "host": {"app.other.org"}})
	must(t, "mapping outside the base domains", status, page, http.StatusForbidden, "not under any base domain", `value="app.other.org"`)

	status, page = alice.post("/homes/"+slug+"/bandwidth", url.Values{"limit_kbps": {"5000"}})
	must(t, "set bandwidth", status, page, 200, "5 Mbit/s")
	status, page = alice.post("/homes/"+slug+"/bandwidth", url.Values{"limit_kbps": {"5"}})
	must(t, "bandwidth out of range", status, page, http.StatusBadRequest, "out of range", `value="5"`)

	// The client config names this cloud, the home and the host key to pin.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/homes/"+slug+"/client.yaml", nil)
	resp, err := alice.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var cc proto.ClientConfig
	if err := yaml.Unmarshal(raw, &cc); err != nil {
		t.Fatalf("client config %q: %v", raw, err)
	}
	if cc.Kind != proto.ClientConfigKind || cc.CloudURL != e.url || cc.Slug != slug || cc.PublicKey != hs[0].PublicKey ||
		cc.SSH.Host != "cloud.example.net" || cc.SSH.Port != 8022 || cc.SSH.User != slug || cc.SSH.HostKey != e.app.API.SSH.HostKey {
		t.Errorf("client config = %+v", cc)
	}
	if secretRE.Match(raw) || strings.Contains(string(raw), "PRIVATE KEY") {
		t.Errorf("the client config holds a secret:\n%s", raw)
	}
	_, page = alice.get("/dashboard")
	must(t, "import command", 200, page, 200, "home import homeport-"+slug+".yaml --private-key")

	// A token's secret is shown once, and works against the API.
	status, page = alice.post("/tokens", url.Values{"name": {"laptop"}})
	must(t, "create token", status, page, http.StatusCreated, "only time it is shown")
	secret := secretRE.FindString(page)
	if secret == "" {
		t.Fatalf("token page shows no secret:\n%s", page)
	}
	_, page = alice.get("/dashboard")
	must(t, "dashboard after token", 200, page, 200, "<td>laptop</td>")
	if strings.Contains(page, secret) || secretRE.MatchString(page) {
		t.Fatal("the dashboard shows a token secret again")
	}
	if got := apiMe(t, e, secret); got != http.StatusOK {
		t.Fatalf("GET /api/v1/me with the new token = %d, want 200", got)
	}
	tokens, _ := e.app.Accounts.Tokens(ctx, u)
	status, page = alice.post("/tokens/"+itoa(tokens[0].ID)+"/rotate", nil)
	must(t, "rotate token", status, page, 200, "old secret no longer works")
	if rotated := secretRE.FindString(page); rotated == "" || rotated == secret || apiMe(t, e, rotated) != 200 || apiMe(t, e, secret) != 401 {
		t.Fatal("rotating did not replace the secret")
	}

	// The JSON API is not behind the UI's CSRF check: a bearer token is enough.
	apiReq, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/tokens", strings.NewReader(`{"name":"ci"}`))
	apiReq.Header.Set("Authorization", "Bearer "+secretRE.FindString(page))
	apiResp, err := http.DefaultClient.Do(apiReq)
	if err != nil {
		t.Fatal(err)
	}
	apiResp.Body.Close()
	if apiResp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/tokens = %d, want 201", apiResp.StatusCode)
	}

	// A form without (or with a wrong) CSRF token is refused and changes nothing.
	before, _ := e.app.Domains.List(ctx, hs[0].ID)
	status, page = alice.postRaw("/homes/"+slug+"/domains", url.Values{"domain": {"forged.example.org"}})
	must(t, "POST without CSRF token", status, page, http.StatusForbidden, "reload the page")
	status, _ = alice.postRaw("/homes/"+slug+"/domains", url.Values{"domain": {"forged.example.org"}, "_csrf": {"wrong"}})
	if status != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token = %d, want 403", status)
	}
	status, _ = alice.postRaw("/homes/"+slug+"/release", nil)
	if status != http.StatusForbidden {
		t.Fatalf("release without CSRF token = %d, want 403", status)
	}
	after, _ := e.app.Domains.List(ctx, hs[0].ID)
	if len(after) != len(before) {
		t.Fatalf("a forged POST changed the base domains: %v -> %v", before, after)
	}
	if hs, _ := e.app.Homes.List(ctx, u); len(hs) != 1 {
		t.Fatal("a forged POST released the home")
	}

	// A non-admin gets the 403 page on admin pages, GET and POST.
	status, page = alice.get("/admin/users")
	must(t, "non-admin on /admin/users", status, page, http.StatusForbidden, "your role (user) may not do this")
	alice.get("/dashboard")
	status, _ = alice.post("/admin/users/root/deactivate", nil)
	if status != http.StatusForbidden {
		t.Fatalf("non-admin deactivating = %d, want 403", status)
	}

	// The admin sees the home and its mapping, and can release it.
	status, page = root.get("/admin/homes")
	must(t, "admin homes", status, page, 200, "<code>"+slug+"</code>", "<td>alice</td>", "5 Mbit/s")
	status, page = root.get("/admin/mappings")
	must(t, "admin mappings", status, page, 200, "https://app.example.com", "<code>"+slug+"</code>")

	// Logout ends the session on the server, not only in this browser.
	session := alice.cookie("homeport_session")
	alice.get("/dashboard")
	status, page = alice.post("/logout", nil)
	must(t, "logout", status, page, 200, "You are logged out", "<h1>Log in</h1>")
	thief := e.browser()
	u0, _ := url.Parse(e.url)
	thief.c.Jar.SetCookies(u0, []*http.Cookie{{Name: "homeport_session", Value: session}})
	status, page = thief.get("/dashboard")
	must(t, "dashboard with a logged-out session", status, page, 200, "<h1>Log in</h1>")

	root.get("/admin/homes")
	status, page = root.post("/admin/homes/"+slug+"/release", nil)
	must(t, "admin release", status, page, 200, "The home is released")
	if hs, _ := e.app.Homes.List(ctx, u); len(hs) != 0 {
		t.Fatal("the admin's release left the home in place")
	}
}

// TestPages checks what every page carries: security headers, HTML errors,
// and that the API keeps its JSON answers.
func TestPages(t *testing.T) {
	e := newEnv(t)
	e.user("root", true, true)
	e.user("bob", true, false)
	b := e.browser()

	resp, err := b.c.Get(e.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") == "" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("security headers: %v", h)
	}

	// Cookies: the session is HttpOnly and SameSite=Lax.
	b.get("/login")
	req, _ := http.NewRequest(http.MethodPost, e.url+"/login", strings.NewReader(url.Values{
		"username": {"bob"}, "password": {"password-bob"}, "_csrf": {b.csrf},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	noFollow := &http.Client{Jar: b.c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	set := resp.Header.Values("Set-Cookie")
	var session string
	for _, c := range set {
		if strings.HasPrefix(c, "homeport_session=") {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(session, "HttpOnly") || !strings.Contains(session, "SameSite=Lax") {
		t.Errorf("login answered %d with cookies %q", resp.StatusCode, set)
	}

	// Logged-in users skip the landing page; anonymous ones are sent to log in.
	status, page := b.get("/")
	must(t, "landing while logged in", status, page, 200, "<h1>Dashboard</h1>")
	status, page = e.browser().get("/dashboard")
	must(t, "dashboard anonymous", status, page, 200, "<h1>Log in</h1>")

	// Wrong password: the message, the username kept, no session.
	anon := e.browser()
	anon.get("/login")
	status, page = anon.post("/login", url.Values{"username": {"bob"}, "password": {"wrong-password"}})
	must(t, "wrong password", status, page, http.StatusUnauthorized, "wrong username or password", `value="bob"`)

	// Another user's home is not found, as a page.
	status, page = b.post("/homes/nosuchslug/domains", url.Values{"domain": {"example.com"}})
	must(t, "someone else's home", status, page, http.StatusNotFound, "you have no home")

	// Unknown pages are HTML for browsers; the API keeps its JSON envelope.
	status, page = b.get("/no/such/page")
	must(t, "unknown page", status, page, http.StatusNotFound, "There is no page here")
	resp, err = http.Get(e.url + "/api/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	var env proto.ErrorEnvelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 404 || env.Error.Code != proto.CodeNotFound {
		t.Errorf("GET /api/v1/nope = %d %+v, %v; want the JSON 404", resp.StatusCode, env, err)
	}
	resp.Body.Close()

	resp, err = http.Get(e.url + "/static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("GET /static/style.css = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Admin pages list homes and mappings.
	root := e.browser()
	root.login("root")
	for _, p := range []string{"/admin/users", "/admin/homes", "/admin/mappings"} {
		status, page := root.get(p)
		must(t, p, status, page, 200)
	}
}

// apiMe calls GET /api/v1/me with a bearer token and returns the status.
func apiMe(t *testing.T, e *env, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		var u proto.User
		if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || u.Username != "alice" {
			t.Fatalf("GET /api/v1/me = %+v, %v; want alice", u, err)
		}
	}
	return resp.StatusCode
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestSetupCommand: a user with no home gets the exact first-run command,
// with a token made for it that is shown once and claims a home.
func TestSetupCommand(t *testing.T) {
	e := newEnv(t)
	e.user("alice", true, false)
	bob := e.browser()
	page := bob.login("alice")
	must(t, "empty dashboard", 200, page, 200, `action="/setup"`, "Show my setup command", "Or claim a home with a key you have")

	status, page := bob.post("/setup", nil)
	must(t, "setup page", status, page, http.StatusCreated, "shown only this once",
		"home up --cloud "+e.url+" --token hp_", "--to localhost:3000", "home register --cloud "+e.url+" --token hp_", `data-copy="cmd-up"`)
	secret := secretRE.FindString(page)
	if code := apiMe(t, e, secret); code != http.StatusOK {
		t.Fatalf("the setup token does not work against the API: %d", code)
	}
	_, page = bob.get("/dashboard")
	if strings.Contains(page, secret) {
		t.Fatal("the dashboard shows the setup token again")
	}
	must(t, "token listed", 200, page, 200, "home setup ")
}

// TestPlainOpenSSHMapping: a home claimed in the web UI and served by plain
// `ssh -R` gets a mapping without the PROXY header from the form, and the
// page shows the exact ssh line for it.
func TestPlainOpenSSHMapping(t *testing.T) {
	e := newEnv(t)
	e.user("alice", true, false)
	alice := e.browser()
	alice.login("alice")
	h := alice.claimHome("alice")
	slug := h.Slug
	alice.post("/homes/"+slug+"/domains", url.Values{"domain": {"example.com"}})
	status, page := alice.post("/homes/"+slug+"/mappings", url.Values{"scheme": {"http"}, "host": {"raw.example.com"}, "client": {"openssh"}})
	must(t, "openssh mapping", status, page, 200, "Mapping added", "served by plain OpenSSH", "ssh -N -R 127.0.0.1:")
	status, page = alice.post("/homes/"+slug+"/mappings", url.Values{"scheme": {"http"}, "host": {"agent.example.com"}})
	must(t, "agent mapping", status, page, 200, "Mapping added")
	ms, err := e.app.Mappings.List(context.Background(), h.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("mappings %v %v", ms, err)
	}
	for _, m := range ms {
		if want := m.HostName() == "agent.example.com"; m.ProxyProtocol != want {
			t.Errorf("%s: proxy_protocol %v, want %v", m.HostName(), m.ProxyProtocol, want)
		}
		if !m.ProxyProtocol && !strings.Contains(page, "ssh -N -R 127.0.0.1:"+strconv.Itoa(m.TunnelPort)+":localhost:3000 -p 8022 "+slug+"@cloud.example.net") {
			t.Errorf("the page does not show the ssh line for %s:\n%s", m.HostName(), page)
		}
	}
	if strings.Count(page, "served by plain OpenSSH") != 1 {
		t.Error("the ssh line is shown for a mapping that gets the PROXY header")
	}
}

// TestPrivateMappingNames: the add form takes a private mapping's name
// (required, kept on a refused form), the dashboard and the admin's mapping
// list show it, with the `home connect SLUG/NAME` that reaches it.
func TestPrivateMappingNames(t *testing.T) {
	e := newEnv(t)
	e.user("root", true, true)
	e.user("alice", true, false)
	alice := e.browser()
	alice.login("alice")
	h := alice.claimHome("alice")
	slug := h.Slug

	status, page := alice.post("/homes/"+slug+"/mappings", url.Values{"scheme": {"tcp"}, "private": {"on"}})
	must(t, "private mapping without a name", status, page, http.StatusBadRequest, `class="error"`, "a private mapping needs a name")
	status, page = alice.post("/homes/"+slug+"/mappings", url.Values{"scheme": {"tcp"}, "private": {"on"}, "name": {"gpu-ui"}})
	must(t, "private mapping", status, page, 200, "Mapping added", "<td><code>gpu-ui</code></td>", "private (home connect only)", "home connect "+slug+"/NAME")
	status, page = alice.post("/homes/"+slug+"/mappings", url.Values{"scheme": {"tcp"}, "private": {"on"}, "name": {"gpu-ui"}})
	must(t, "the same name again", status, page, http.StatusConflict, "already has a mapping named gpu-ui", `value="gpu-ui"`)
	if ms, _ := e.app.Mappings.List(context.Background(), h.ID); len(ms) != 1 || ms[0].MappingName() != "gpu-ui" {
		t.Fatalf("mappings after the forms: %+v", ms)
	}

	root := e.browser()
	root.login("root")
	status, page = root.get("/admin/mappings")
	must(t, "admin mappings", status, page, 200, "<code>"+slug+"</code></td><td><code>gpu-ui</code>")
}

// TestFormsShareTheAccountsChangeBudget: web forms and API calls of one
// account draw on one --write-rate budget; past it a form gets the 429
// page and changes nothing.
func TestFormsShareTheAccountsChangeBudget(t *testing.T) {
	e := newEnv(t, "--write-rate", "3")
	u := e.user("alice", true, false)
	alice := e.browser()
	alice.login("alice")
	tok, err := e.app.Accounts.CreateToken(context.Background(), u, "api")
	if err != nil {
		t.Fatal(err)
	}
	slug := alice.claimHome("alice").Slug // change 1 (the form)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/homes/"+slug+"/base-domains", strings.NewReader(`{"domain":"api.example.com"}`))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req) // change 2 (the API)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("API change: %v %v", resp, err)
	}
	resp.Body.Close()
	status, page := alice.post("/homes/"+slug+"/domains", url.Values{"domain": {"form.example.com"}}) // change 3
	must(t, "third change", status, page, 200, "Base domain added")
	status, page = alice.post("/homes/"+slug+"/domains", url.Values{"domain": {"over.example.com"}})
	must(t, "fourth change", status, page, http.StatusTooManyRequests, "too many changes")
	if _, page = alice.get("/dashboard"); strings.Contains(page, "over.example.com") {
		t.Error("a refused form changed something")
	}
}
